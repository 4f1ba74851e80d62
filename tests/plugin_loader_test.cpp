// The plugin loader against real shared libraries, including ones broken on
// purpose (tests/loader-plugins): wrong ABI, no entry point, duplicates, and a
// plugin that throws from everything.
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace sluice {
namespace {

using testing::RunSluice;

std::string LoaderPlugin(const std::string& name) {
  return std::string(SLUICE_TEST_BINARY_DIR) + "/loader-plugins/" + name + "/libsluice-" + name + ".so";
}

TEST(PluginLoader, RefusesWrongAbiVersionBeforeReadingAnythingElse) {
  PluginRegistry r;
  Status st = r.LoadLibrary(LoaderPlugin("wrong-abi"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "cannot load plugin " + LoaderPlugin("wrong-abi") +
                              ": it was built for sluice ABI version 999 but this sluice has ABI version " +
                              std::to_string(SLUICE_ABI_VERSION) + "; rebuild the plugin against this sluice's SDK");
  EXPECT_TRUE(r.All().empty());
}

TEST(PluginLoader, RefusesALibraryWithoutEntryPoint) {
  PluginRegistry r;
  Status st = r.LoadLibrary(LoaderPlugin("no-entry"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "cannot load plugin " + LoaderPlugin("no-entry") +
                              ": it does not export 'sluice_plugin' (was it built with "
                              "SLUICE_REGISTER_SOURCE/SINK/STATE_STORE?)");
}

TEST(PluginLoader, RefusesAMissingFileNamingIt) {
  PluginRegistry r;
  Status st = r.LoadLibrary("/nonexistent/libsluice-x.so");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("cannot load plugin /nonexistent/libsluice-x.so: ", 0), 0u) << st.message();
}

TEST(PluginLoader, RefusesASecondPluginWithTheSameKindAndName) {
  PluginRegistry r;
  std::string real = std::string(SLUICE_TEST_PLUGIN_DIR) + "/libsluice-file-source.so";
  ASSERT_TRUE(r.LoadLibrary(real).ok());
  Status st = r.LoadLibrary(LoaderPlugin("duplicate-file"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "cannot load plugin " + LoaderPlugin("duplicate-file") +
                              ": a source named 'file' is already loaded from " + real);
  EXPECT_EQ(r.Find(PluginKind::kSource, "file")->descriptor->version, std::string("0.1.0"));
}

TEST(PluginLoader, ExceptionsInsideAPluginBecomeStatuses) {
  PluginRegistry r;
  ASSERT_TRUE(r.LoadLibrary(LoaderPlugin("throwing")).ok());
  const LoadedPlugin* p = r.Find(PluginKind::kSource, "throwing");
  ASSERT_NE(p, nullptr);

  auto opts = PluginRegistry::ResolveOptions(*p, {{"throw_in_constructor", true}});
  ASSERT_TRUE(opts.ok());
  auto refused = r.CreateSource("throwing", SourceContext{.name = "s", .options = *opts});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "throwing: constructor refused");

  auto defaults = PluginRegistry::ResolveOptions(*p, {});
  auto source = r.CreateSource("throwing", SourceContext{.name = "s", .options = *defaults});
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  auto latest = (*source)->LatestOffset(std::nullopt, ReadLimit::kDefault);
  ASSERT_FALSE(latest.ok());
  EXPECT_EQ(latest.status().message(), "plugin 'throwing' threw: latest offset exploded");
  auto parts = (*source)->PlanPartitions(std::nullopt, "1");
  ASSERT_FALSE(parts.ok());
  EXPECT_EQ(parts.status().message(), "plugin 'throwing' threw: unknown exception");
  testing::CollectingReadContext ctx;
  EXPECT_EQ((*source)->ReadPartition("p", ctx).message(), "plugin 'throwing' threw: read exploded");
  EXPECT_EQ((*source)->Description(), "throwing");
}

TEST(PluginLoader, OptionTableChecksUnknownMissingAndTypedValues) {
  const LoadedPlugin* file = testing::BuildPlugins().Find(PluginKind::kSource, "file");
  ASSERT_NE(file, nullptr);
  std::string key;
  auto missing = PluginRegistry::ResolveOptions(*file, {}, &key);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(key, "path");
  EXPECT_EQ(missing.status().message().rfind("missing required option 'path' for source 'file'", 0), 0u)
      << missing.status().message();

  auto wrong_type = PluginRegistry::ResolveOptions(*file, {{"path", "/x"}, {"max_files_per_trigger", "two"}}, &key);
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(key, "max_files_per_trigger");
  EXPECT_EQ(wrong_type.status().message(), "option 'max_files_per_trigger' of source 'file' must be an integer");

  auto not_allowed = PluginRegistry::ResolveOptions(*file, {{"path", "/x"}, {"format", "xml"}}, &key);
  ASSERT_FALSE(not_allowed.ok());
  EXPECT_EQ(not_allowed.status().message(), "option 'format' of source 'file' is 'xml'; expected one of: text,csv,jsonl");

  auto ok = PluginRegistry::ResolveOptions(*file, {{"path", "/x"}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->GetString("format"), "text");  // default filled in
}

TEST(PluginLoader, SearchPathPutsFlagThenEnvironmentThenInstallDir) {
  setenv("SLUICE_PLUGIN_PATH", "/env/a:/env/b", 1);
  auto dirs = PluginRegistry::SearchPath({"/flag"});
  unsetenv("SLUICE_PLUGIN_PATH");
  ASSERT_EQ(dirs.size(), 4u);
  EXPECT_EQ(dirs[0], "/flag");
  EXPECT_EQ(dirs[1], "/env/a");
  EXPECT_EQ(dirs[2], "/env/b");
  EXPECT_EQ(dirs[3], SLUICE_DEFAULT_PLUGIN_DIR);
}

TEST(SluicePluginsCommand, ListsEveryShippedPluginWithKindVersionAndOptions) {
  auto r = RunSluice({"plugins"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* line : {"source       file       0.1.0", "source       memory     0.1.0",
                           "source       rate       0.1.0", "source       socket     0.1.0",
                           "sink         console    0.1.0", "sink         file       0.1.0",
                           "sink         memory     0.1.0"})
    EXPECT_NE(r.out.find(line), std::string::npos) << "missing '" << line << "' in:\n" << r.out;
  EXPECT_NE(r.out.find("    path (path, required)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    format (string, default \"text\"; one of text,csv,jsonl)"), std::string::npos) << r.out;
}

TEST(SluicePluginsCommand, JsonListingIsMachineReadable) {
  auto r = RunSluice({"plugins", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.front(), '[');
  EXPECT_NE(r.out.find("{\"name\":\"rate\",\"kind\":\"source\",\"version\":\"0.1.0\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("{\"key\":\"rows_per_second\",\"type\":\"integer\",\"required\":false,\"default\":\"1\""),
            std::string::npos)
      << r.out;
}

TEST(SluicePluginsCommand, EnvironmentSearchPathFindsPlugins) {
  auto r = testing::RunShell("SLUICE_PLUGIN_PATH=" + std::string(SLUICE_TEST_PLUGIN_DIR) + " " +
                             SLUICE_TEST_SLUICE_BIN + " plugins");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sink         console"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace sluice
