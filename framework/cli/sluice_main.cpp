// `sluice`: the command line. Lists plugins, validates pipelines and runs them.
//
//   sluice [--plugin-dir DIR]... plugins [--json]
//   sluice [--plugin-dir DIR]... validate PIPELINE.toml
//   sluice [--plugin-dir DIR]... run PIPELINE.toml [--progress-file FILE]
//   sluice checkpoint inspect DIR
//
// Exit codes: 0 success, 1 the query failed while running, 2 the pipeline or
// the command line is invalid (nothing ran), 130/143 stopped by SIGINT/SIGTERM
// after the current batch.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <thread>

#include "checkpoint/checkpoint_inspector.h"
#include "common/json_writer.h"
#include "common/logging.h"
#include "exec/micro_batch_executor.h"
#include "exec/query.h"
#include "pipeline/pipeline_spec.h"
#include "plugin/plugin_registry.h"
#include "sluice/version.h"

namespace sluice {
namespace {

int PrintDiagnostics(std::vector<Diagnostic> diags) {
  // In file order, whichever stage found them.
  std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::make_pair(a.pos.line, a.pos.column) < std::make_pair(b.pos.line, b.pos.column);
  });
  for (const auto& d : diags) std::fprintf(stderr, "%s\n", d.ToString().c_str());
  std::fprintf(stderr, "%zu error%s\n", diags.size(), diags.size() == 1 ? "" : "s");
  return 2;
}

std::string DefaultText(const OptionSpec& o) {
  if (o.required) return "required";
  if (!o.default_value) return "optional";
  return std::string("default ") + (o.type == OptionType::kString || o.type == OptionType::kPath ||
                                            o.type == OptionType::kDuration
                                        ? "\"" + std::string(o.default_value) + "\""
                                        : std::string(o.default_value));
}

int ListPlugins(const PluginRegistry& registry, bool json) {
  auto all = registry.All();
  if (json) {
    JsonWriter w;
    w.BeginArray();
    for (const auto* p : all) {
      const PluginDescriptor& d = *p->descriptor;
      w.BeginObject().Key("name").String(d.name).Key("kind").String(PluginKindName(d.kind));
      w.Key("version").String(d.version ? d.version : "").Key("description").String(d.description ? d.description : "");
      w.Key("path").String(p->path).Key("options").BeginArray();
      for (uint32_t i = 0; i < d.option_count; ++i) {
        const OptionSpec& o = d.options[i];
        w.BeginObject().Key("key").String(o.key).Key("type").String(OptionTypeName(o.type));
        w.Key("required").Bool(o.required).Key("default");
        if (o.default_value) w.String(o.default_value);
        else w.Null();
        w.Key("allowed");
        if (o.allowed) w.String(o.allowed);
        else w.Null();
        w.Key("description").String(o.description ? o.description : "").EndObject();
      }
      w.EndArray().EndObject();
    }
    w.EndArray();
    std::printf("%s\n", w.str().c_str());
    return 0;
  }
  if (all.empty()) {
    std::printf("no plugins found; searched: ");
    for (const auto& d : PluginRegistry::SearchPath({})) std::printf("%s ", d.c_str());
    std::printf("\n");
    return 0;
  }
  for (const auto* p : all) {
    const PluginDescriptor& d = *p->descriptor;
    std::printf("%-12s %-10s %-8s %s\n", PluginKindName(d.kind), d.name, d.version ? d.version : "",
                d.description ? d.description : "");
    for (uint32_t i = 0; i < d.option_count; ++i) {
      const OptionSpec& o = d.options[i];
      std::string head = std::string(o.key) + " (" + OptionTypeName(o.type) + ", " + DefaultText(o);
      if (o.allowed) {
        std::string allowed = o.allowed;
        for (auto& c : allowed)
          if (c == '|') c = ',';
        head += "; one of " + allowed;
      }
      head += ")";
      std::printf("    %-44s %s\n", head.c_str(), o.description ? o.description : "");
    }
  }
  return 0;
}

std::unique_ptr<Query> LoadAndBuild(const std::string& file, const PluginRegistry& registry,
                                    std::vector<Diagnostic>* diags) {
  PipelineSpec spec = LoadPipelineFile(file, diags);
  if (!spec.parsed) return nullptr;
  // Build even when the file had errors, so one run reports them all.
  // Building touches nothing on disk; the executor creates what it needs.
  BuildOptions options;
  bool had_errors = !diags->empty();
  auto query = BuildQuery(spec, registry, options, diags);
  return had_errors ? nullptr : std::move(query);
}

int Run(const std::string& file, const PluginRegistry& registry, const std::string& progress_file) {
  // Block the stop signals in every thread; one thread waits for them, so a
  // signal never interrupts a batch halfway.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::vector<Diagnostic> diags;
  auto query = LoadAndBuild(file, registry, &diags);
  if (!query) return PrintDiagnostics(diags);

  ExecutorOptions options;
  options.progress_file = progress_file;
  MicroBatchExecutor executor(*query, options);
  std::atomic<int> stop_signal{0};
  sigaddset(&signals, SIGUSR1);  // how the run ends the watcher below
  std::thread watcher([&] {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0) {
      if (sig == SIGUSR1) return;  // our own wake-up at the end of the run
      if (stop_signal.exchange(sig) != 0) {
        LogWarn("second stop signal: exiting without finishing the current batch");
        std::_Exit(128 + sig);
      }
      LogInfo(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
              ": stopping after the current batch");
      executor.RequestStop();
    }
  });
  Status st = executor.Run();
  pthread_kill(watcher.native_handle(), SIGUSR1);
  watcher.join();
  if (!st.ok()) {
    LogError("query '" + query->spec.name + "' failed: " + st.ToString());
    return 1;
  }
  int64_t n = executor.batches_run();
  LogInfo("query '" + query->spec.name + "' finished after " + std::to_string(n) + (n == 1 ? " batch" : " batches"));
  int sig = stop_signal.load();
  return sig ? 128 + sig : 0;
}

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) {
  using namespace sluice;
  // SIGUSR1 is how the run ends the signal-watcher thread; block it from the
  // start so every thread inherits the mask.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);

  CLI::App app{"sluice: streaming ETL pipelines declared in TOML"};
  app.require_subcommand(1);
  std::vector<std::string> plugin_dirs;
  std::string log_level = "info";
  app.add_option("--plugin-dir", plugin_dirs, "Directory holding plugin libraries (repeatable; searched first)");
  app.add_option("--log-level", log_level, "debug, info, warn or error")->capture_default_str();

  auto* plugins_cmd = app.add_subcommand("plugins", "List installed plugins, their kinds, versions and options");
  bool json = false;
  plugins_cmd->add_flag("--json", json, "Print as JSON");

  auto* validate_cmd = app.add_subcommand("validate", "Check a pipeline file without running it");
  std::string validate_file;
  validate_cmd->add_option("pipeline", validate_file, "Pipeline TOML file")->required();

  auto* run_cmd = app.add_subcommand("run", "Run a pipeline until its trigger finishes or SIGINT/SIGTERM");
  std::string run_file, progress_file;
  run_cmd->add_option("pipeline", run_file, "Pipeline TOML file")->required();
  run_cmd->add_option("--progress-file", progress_file, "Append progress events (JSON lines) to this file");

  auto* checkpoint_cmd = app.add_subcommand("checkpoint", "Look into a checkpoint directory");
  checkpoint_cmd->require_subcommand(1);
  auto* inspect_cmd = checkpoint_cmd->add_subcommand("inspect", "Print the query id, retained batches and sink manifests");
  std::string inspect_dir;
  inspect_cmd->add_option("dir", inspect_dir, "Checkpoint directory")->required();

  app.add_subcommand("version", "Print the version and ABI version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  LogLevel level;
  if (!ParseLogLevel(log_level, &level)) {
    std::fprintf(stderr, "--log-level must be debug, info, warn or error\n");
    return 2;
  }
  SetLogLevel(level);

  if (app.got_subcommand("version")) {
    std::printf("sluice %s (plugin ABI %u)\n", SLUICE_VERSION_STRING, SLUICE_ABI_VERSION);
    return 0;
  }

  if (app.got_subcommand("checkpoint")) {
    auto text = InspectCheckpoint(inspect_dir);
    if (!text.ok()) {
      std::fprintf(stderr, "error: %s\n", text.status().message().c_str());
      return 2;
    }
    std::printf("%s", text->c_str());
    return 0;
  }

  PluginRegistry registry;
  Status loaded = registry.LoadDirectories(PluginRegistry::SearchPath(plugin_dirs));
  if (!loaded.ok()) {
    std::fprintf(stderr, "error: %s\n", loaded.message().c_str());
    return 2;
  }

  if (app.got_subcommand("plugins")) return ListPlugins(registry, json);
  if (app.got_subcommand("validate")) {
    std::vector<Diagnostic> diags;
    auto query = LoadAndBuild(validate_file, registry, &diags);
    if (!query) return PrintDiagnostics(diags);
    std::printf("%s: ok (%zu source%s, %zu step%s, %zu sink%s)\n", validate_file.c_str(), query->sources.size(),
                query->sources.size() == 1 ? "" : "s", query->spec.steps.size(),
                query->spec.steps.size() == 1 ? "" : "s", query->sinks.size(), query->sinks.size() == 1 ? "" : "s");
    return 0;
  }
  return Run(run_file, registry, progress_file);
}
