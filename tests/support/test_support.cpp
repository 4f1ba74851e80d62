#include "support/test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace sluice::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/sluice-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* made = mkdtemp(buf.data());
  path_ = made ? made : "";
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty() && !std::getenv("SLUICE_KEEP_TEST_DIRS")) fs::remove_all(path_, ec);
}

void WriteFile(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f << content;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool WaitUntil(const std::function<bool()>& condition, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void CopyTree(const std::string& from, const std::string& to) {
  fs::create_directories(to);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  // Copies get their modification time in whatever order the copy ran; give
  // them all one time so sources that order by time fall back to the name.
  const auto fixed = fs::file_time_type::clock::now() - std::chrono::hours(24);
  for (const auto& e : fs::recursive_directory_iterator(to))
    if (e.is_regular_file()) fs::last_write_time(e.path(), fixed);
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) out.push_back(line);
  return out;
}

static std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out.push_back(c);
  }
  return out + "'";
}

CommandResult RunShell(const std::string& command) {
  TempDir tmp;
  std::string out_path = tmp / "stdout", err_path = tmp / "stderr";
  std::string full = "(" + command + ") >" + out_path + " 2>" + err_path + " </dev/null";
  int rc = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  return r;
}

CommandResult RunSluice(const std::vector<std::string>& args, const std::string& cwd) {
  std::string cmd;
  if (!cwd.empty()) cmd += "cd " + ShellQuote(cwd) + " && ";
  cmd += ShellQuote(SLUICE_TEST_SLUICE_BIN) + " --plugin-dir " + ShellQuote(SLUICE_TEST_PLUGIN_DIR);
  for (const auto& a : args) cmd += " " + ShellQuote(a);
  return RunShell(cmd);
}

PluginRegistry& BuildPlugins() {
  static PluginRegistry* registry = [] {
    auto* r = new PluginRegistry();
    Status st = r->LoadDirectories({SLUICE_TEST_PLUGIN_DIR});
    if (!st.ok()) {
      std::fprintf(stderr, "loading build plugins failed: %s\n", st.ToString().c_str());
      std::abort();
    }
    return r;
  }();
  return *registry;
}

Result<std::shared_ptr<Source>> MakeSource(const std::string& plugin, const std::map<std::string, OptionValue>& options,
                                           const std::string& checkpoint_dir) {
  const LoadedPlugin* p = BuildPlugins().Find(PluginKind::kSource, plugin);
  if (!p) return Status::NotFound("no source plugin '" + plugin + "' in " SLUICE_TEST_PLUGIN_DIR);
  SLUICE_ASSIGN_OR_RETURN(Options resolved, PluginRegistry::ResolveOptions(*p, options));
  SourceContext ctx{.name = plugin, .query_id = "test-query", .checkpoint_dir = checkpoint_dir, .options = resolved};
  return BuildPlugins().CreateSource(plugin, ctx);
}

Result<std::shared_ptr<Sink>> MakeSink(const std::string& plugin, const std::map<std::string, OptionValue>& options,
                                       const Schema& input_schema, const std::string& checkpoint_dir,
                                       OutputMode mode) {
  const LoadedPlugin* p = BuildPlugins().Find(PluginKind::kSink, plugin);
  if (!p) return Status::NotFound("no sink plugin '" + plugin + "' in " SLUICE_TEST_PLUGIN_DIR);
  SLUICE_ASSIGN_OR_RETURN(Options resolved, PluginRegistry::ResolveOptions(*p, options));
  SinkContext ctx{.name = plugin,
                  .query_id = "test-query",
                  .checkpoint_dir = checkpoint_dir,
                  .options = resolved,
                  .input_schema = input_schema,
                  .output_mode = mode};
  return BuildPlugins().CreateSink(plugin, ctx);
}

Result<std::shared_ptr<StateStoreProvider>> MakeStateStore(const std::string& plugin,
                                                           const std::map<std::string, OptionValue>& options) {
  const LoadedPlugin* p = BuildPlugins().Find(PluginKind::kStateStore, plugin);
  if (!p) return Status::NotFound("no state store plugin '" + plugin + "' in " SLUICE_TEST_PLUGIN_DIR);
  SLUICE_ASSIGN_OR_RETURN(Options resolved, PluginRegistry::ResolveOptions(*p, options));
  return BuildPlugins().CreateStateStore(plugin, StateStoreContext{plugin, resolved});
}

Status CollectingReadContext::Emit(RecordBatchPtr batch) {
  std::lock_guard<std::mutex> lock(mu_);
  batches.push_back(std::move(batch));
  return Status::OK();
}

Status CollectingReadContext::BadRecord(std::string_view raw, std::string_view position, std::string_view error) {
  std::lock_guard<std::mutex> lock(mu_);
  bad_records.push_back({std::string(raw), std::string(position), std::string(error)});
  if (on_error_ == OnError::kFail)
    return Status::ParseError("malformed record at " + std::string(position) + ": " + std::string(error));
  return Status::OK();
}

Result<std::vector<RecordBatchPtr>> ReadRange(Source& source, const std::optional<Offset>& start, const Offset& end,
                                              CollectingReadContext* ctx) {
  CollectingReadContext local;
  CollectingReadContext& c = ctx ? *ctx : local;
  size_t first = c.batches.size();
  SLUICE_ASSIGN_OR_RETURN(auto parts, source.PlanPartitions(start, end));
  for (const auto& p : parts) SLUICE_RETURN_IF_ERROR(source.ReadPartition(p, c));
  return std::vector<RecordBatchPtr>(c.batches.begin() + static_cast<long>(first), c.batches.end());
}

std::vector<std::string> ToJsonLines(const std::vector<RecordBatchPtr>& batches) {
  std::vector<std::string> out;
  for (const auto& b : batches)
    for (int64_t r = 0; r < b->num_rows(); ++r) {
      std::string line;
      AppendRowJson(line, *b, r);
      out.push_back(std::move(line));
    }
  return out;
}

RecordBatchPtr MakeBatch(const std::string& ddl, const std::vector<std::vector<std::string>>& rows) {
  auto schema = std::make_shared<const Schema>(ParseSchemaDdl(ddl).value());
  RecordBatchBuilder b(schema, static_cast<int64_t>(rows.size()));
  for (const auto& row : rows) {
    for (int c = 0; c < schema->num_fields(); ++c) {
      const std::string& v = row[static_cast<size_t>(c)];
      ColumnBuilder& col = b.column(c);
      if (v == "null") { col.AppendNull(); continue; }
      switch (schema->field(c).type) {
        case DataType::kBool: col.AppendBool(v == "true"); break;
        case DataType::kInt64: col.AppendInt64(std::stoll(v)); break;
        case DataType::kFloat64: col.AppendFloat64(std::stod(v)); break;
        case DataType::kString:
        case DataType::kBinary: col.AppendString(v); break;
        case DataType::kTimestamp: col.AppendTimestamp(*ParseTimestamp(v)); break;
      }
    }
    if (schema->num_fields() == 0) b.AddRowWithoutColumns();
  }
  return b.Finish();
}

}  // namespace sluice::testing
