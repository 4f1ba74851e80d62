// Helpers shared by end-to-end and plugin tests: temporary directories,
// running the real `sluice` binary, loading the real plugin libraries, and
// rendering batches as JSON lines so tests compare exact output.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "plugin/plugin_registry.h"
#include "sluice/sluice.h"

namespace sluice::testing {

// A fresh directory under $TMPDIR, removed when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& content);
std::string ReadFile(const std::string& path);
// Polls `condition` every few milliseconds until it holds or `timeout_ms`
// passes; returns whether it held. For awaiting another process, never as a
// fixed sleep.
bool WaitUntil(const std::function<bool()>& condition, int timeout_ms = 30000);

// Copies a directory tree (pipelines and their sample data into a temp dir),
// giving every file the same modification time.
void CopyTree(const std::string& from, const std::string& to);

// Lines of a file, without trailing newlines.
std::vector<std::string> ReadLines(const std::string& path);

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs `sluice <args>` (the binary from this build) with --plugin-dir set to the
// build's plugin directory, capturing stdout and stderr. `stdin_text` is fed to stdin.
CommandResult RunSluice(const std::vector<std::string>& args, const std::string& cwd = "");
// Runs any command line through /bin/sh.
CommandResult RunShell(const std::string& command);

// The plugins of this build, loaded from their shared libraries.
PluginRegistry& BuildPlugins();

// Creates a plugin instance from string/int/... options, validated by the registry.
Result<std::shared_ptr<Source>> MakeSource(const std::string& plugin, const std::map<std::string, OptionValue>& options,
                                           const std::string& checkpoint_dir = "");
Result<std::shared_ptr<Sink>> MakeSink(const std::string& plugin, const std::map<std::string, OptionValue>& options,
                                       const Schema& input_schema, const std::string& checkpoint_dir = "",
                                       OutputMode mode = OutputMode::kAppend);

Result<std::shared_ptr<StateStoreProvider>> MakeStateStore(const std::string& plugin,
                                                           const std::map<std::string, OptionValue>& options);

// A ReadContext that keeps emitted batches and bad records.
class CollectingReadContext : public ReadContext {
 public:
  enum class OnError { kFail, kDrop };
  explicit CollectingReadContext(OnError on_error = OnError::kDrop) : on_error_(on_error) {}
  Status Emit(RecordBatchPtr batch) override;
  Status BadRecord(std::string_view raw, std::string_view position, std::string_view error) override;
  bool StopRequested() const override { return false; }

  std::vector<RecordBatchPtr> batches;
  struct Bad { std::string raw, position, error; };
  std::vector<Bad> bad_records;

 private:
  OnError on_error_;
  std::mutex mu_;
};

// Plans and reads every partition of [start, end) in order.
Result<std::vector<RecordBatchPtr>> ReadRange(Source& source, const std::optional<Offset>& start, const Offset& end,
                                              CollectingReadContext* ctx = nullptr);

// Every row as a JSON object line, in order (sluice::AppendRowJson).
std::vector<std::string> ToJsonLines(const std::vector<RecordBatchPtr>& batches);

// Builds a batch from a schema DDL and rows of JSON-ish cell text, for tests:
// MakeBatch("a BIGINT, b STRING", {{"1", "x"}, {"null", "y"}}); "null" is null.
RecordBatchPtr MakeBatch(const std::string& ddl, const std::vector<std::vector<std::string>>& rows);

}  // namespace sluice::testing
