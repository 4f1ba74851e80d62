// Finds, loads and instantiates plugins.
//
// Plugins are shared libraries named libsluice-*.so found on a search path:
// --plugin-dir, then SLUICE_PLUGIN_PATH (colon-separated), then the install
// directory. Each library exports a PluginDescriptor through the Boost.DLL
// alias `sluice_plugin`; the registry checks its ABI version and size before
// reading anything else, and refuses duplicates (same kind and name). Every
// source and sink, including the ones shipped with sluice, comes through here.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/dll/shared_library.hpp>

#include "sluice/plugin.h"

namespace sluice {

struct LoadedPlugin {
  std::string path;
  const PluginDescriptor* descriptor = nullptr;
  std::shared_ptr<boost::dll::shared_library> library;

  PluginKind kind() const { return descriptor->kind; }
  std::string name() const { return descriptor->name; }
  const OptionSpec* FindOption(std::string_view key) const;
};

class PluginRegistry {
 public:
  // The directories searched, in order: `explicit_dirs` (from --plugin-dir),
  // SLUICE_PLUGIN_PATH, then the install directory.
  static std::vector<std::string> SearchPath(const std::vector<std::string>& explicit_dirs);

  // Loads every libsluice-*.so in each directory (missing directories are
  // skipped). Returns the first error; a bad plugin is never half-registered.
  Status LoadDirectories(const std::vector<std::string>& dirs);
  // Loads one library. Errors name the path and the reason: not a plugin
  // (no `sluice_plugin` symbol), ABI mismatch, duplicate name, bad descriptor.
  Status LoadLibrary(const std::string& path);

  const LoadedPlugin* Find(PluginKind kind, std::string_view name) const;
  std::vector<const LoadedPlugin*> All() const;  // sorted by kind, then name
  // Names of plugins of `kind`, for "expected one of ..." messages.
  std::vector<std::string> Names(PluginKind kind) const;

  // Checks `given` against the plugin's option table (unknown key, missing
  // required key, wrong type, value not allowed), converts durations, and
  // fills in defaults. Then runs the plugin's own Validate hook if it has one.
  // Positions are the caller's business: `key_error` receives the offending key.
  static Result<Options> ResolveOptions(const LoadedPlugin& plugin, const std::map<std::string, OptionValue>& given,
                                        std::string* key_error = nullptr);

  // Instantiates a plugin. The returned object keeps its library loaded.
  // ctx.options must come from ResolveOptions.
  Result<std::shared_ptr<Source>> CreateSource(std::string_view plugin, const SourceContext& ctx) const;
  Result<std::shared_ptr<Sink>> CreateSink(std::string_view plugin, const SinkContext& ctx) const;
  Result<std::shared_ptr<StateStoreProvider>> CreateStateStore(std::string_view plugin,
                                                               const StateStoreContext& ctx) const;

  // An extra function a plugin library exports with BOOST_DLL_ALIAS (the
  // memory source's push function, for example), or null.
  template <typename Fn>
  Fn* FindAlias(PluginKind kind, std::string_view plugin, const char* alias) const {
    const LoadedPlugin* p = Find(kind, plugin);
    if (!p || !p->library->has(alias)) return nullptr;
    return &p->library->get_alias<Fn>(alias);
  }

 private:
  std::map<std::pair<PluginKind, std::string>, LoadedPlugin> plugins_;
};

// Parses "10 seconds", "500 ms", "1.5 minutes", "2 hours", "1 day" into microseconds.
Result<int64_t> ParseDuration(std::string_view text);

}  // namespace sluice
