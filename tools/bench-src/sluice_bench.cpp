// sluice-bench: end-to-end benchmarks of whole queries, run in-process with
// the real framework and the plugins of this build loaded from their shared
// libraries, exactly as `sluice run` loads them. Every run prints the machine,
// the build type, its exact configuration (including the pipeline TOML it
// measured) and a reference measured in the same process, so that ratios
// still mean something on a noisy machine. Driven by tools/bench.
//
//   sluice-bench windowed-count [--keys K] [--rows N] [--batches B] [--threads T] [--partitions P]
//                               [--event-minutes M]
//   sluice-bench stateless [--rows N] [--files F] [--files-per-batch G] [--threads T] [--repeats R]
//   sluice-bench state-providers [--keys K] [--rows N] [--batches B] [--threads T] [--partitions P]
//                                [--event-minutes M] [--lmdb-snapshot-interval S] [--upload-delay-ms D]
//                                [--block-cache-mb 64] [--progress 1]
//
// Input is generated before anything is timed. Figures come from the
// engine's own progress events (triggerExecution, stateOperators) and from
// getrusage / the file system.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "exec/micro_batch_executor.h"
#include "pipeline/pipeline_spec.h"
#include "plugin/plugin_registry.h"
#include "sluice/sluice.h"

namespace sluice::bench {
namespace {

namespace fs = std::filesystem;

using PushFn = void(const std::string&, RecordBatchPtr);
using ClearFn = void(const std::string&);

// 2024-05-01T00:00:00Z in microseconds: where generated event time starts.
constexpr int64_t kEventTimeBaseMicros = 1714521600LL * 1000000;
constexpr int64_t kMicrosPerMinute = 60LL * 1000000;

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "sluice-bench: %s\n", message.c_str());
  std::exit(1);
}

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---------------------------------------------------------------- machine

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

int64_t MemTotalBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") return kib * 1024;
    in.ignore(1 << 10, '\n');
  }
  return 0;
}

int64_t PeakRssBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

int64_t CurrentRssBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Resets the kernel's peak-RSS mark (VmHWM) so that a later PeakRssSinceReset
// covers only what ran in between. Returns false where that is unsupported.
bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

int64_t PeakRssSinceReset() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  return 0;
}

double CpuSecondsUsed() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return secs(usage.ru_utime) + secs(usage.ru_stime);
}

// The 1-minute load average: other work on the machine skews absolute figures
// (the same-run reference keeps ratios meaningful).
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one.empty() ? "unknown" : one;
}

int HardwareThreads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

std::string Mib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string Fixed(double v, int decimals = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void PrintMachine(const std::string& command_line) {
  utsname u{};
  uname(&u);
  std::printf("command:     %s\n", command_line.c_str());
  std::printf("machine:     nproc=%d, cpu=%s, ram=%s, kernel=%s %s\n", HardwareThreads(), CpuModel().c_str(),
              Mib(MemTotalBytes()).c_str(), u.sysname, u.release);
  std::printf("build:       %s, g++ %s, sluice %s\n", SLUICE_BENCH_BUILD_TYPE, __VERSION__, SLUICE_VERSION_STRING);
  std::printf("load:        1-minute load average %s at start\n", LoadAverage().c_str());
}

// ---------------------------------------------------------------- helpers

// A fresh directory under $TMPDIR (or /tmp), removed when the object goes away.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& tag) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/sluice-bench-" + tag + "-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) Fail("cannot create a temporary directory from " + templ);
    path_ = buf.data();
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int64_t DirectoryBytes(const std::string& dir, int64_t* files = nullptr) {
  int64_t total = 0, count = 0;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec)) {
      total += static_cast<int64_t>(it->file_size(ec));
      ++count;
    }
  }
  if (files) *files = count;
  return total;
}

// Nearest-rank percentile of `values` (not empty).
int64_t Percentile(std::vector<int64_t> values, double p) {
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

// --name value flags with integer values; unknown flags are an error.
class Flags {
 public:
  Flags(int argc, char** argv, int first, std::map<std::string, int64_t> defaults) : values_(std::move(defaults)) {
    for (int i = first; i < argc; ++i) {
      std::string name = argv[i];
      std::string value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        Fail(name + " needs a value");
      }
      if (name.rfind("--", 0) != 0 || !values_.count(name.substr(2))) Fail("unknown option " + name + Usage());
      char* end = nullptr;
      long long parsed = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || parsed < 0) Fail(name + " wants a non-negative integer, got '" + value + "'");
      values_[name.substr(2)] = parsed;
    }
  }
  int64_t operator[](const std::string& name) const { return values_.at(name); }
  std::string Usage() const {
    std::string u = "; options:";
    for (const auto& [k, v] : values_) u += " --" + k + " (" + std::to_string(v) + ")";
    return u;
  }
  std::string Describe() const {
    std::string d;
    for (const auto& [k, v] : values_) d += (d.empty() ? "" : " ") + ("--" + k + " " + std::to_string(v));
    return d;
  }

 private:
  std::map<std::string, int64_t> values_;
};

// Loads the build's plugins (the same libraries `sluice run` loads).
PluginRegistry& Plugins() {
  static PluginRegistry* registry = [] {
    auto* r = new PluginRegistry();
    const char* dir = std::getenv("SLUICE_BENCH_PLUGIN_DIR");
    Status st = r->LoadDirectories({dir && *dir ? dir : SLUICE_BENCH_PLUGIN_DIR});
    if (!st.ok()) Fail("loading plugins: " + st.ToString());
    return r;
  }();
  return *registry;
}

std::unique_ptr<Query> BuildFromToml(const std::string& toml, const std::string& virtual_path) {
  std::vector<Diagnostic> diags;
  PipelineSpec spec = LoadPipelineString(toml, virtual_path, &diags);
  auto query = diags.empty() ? BuildQuery(spec, Plugins(), {}, &diags) : nullptr;
  if (!query) {
    std::string all;
    for (const auto& d : diags) all += "\n  " + d.ToString();
    Fail("pipeline does not build:" + all + "\n" + toml);
  }
  return query;
}

void PrintIndented(const std::string& title, const std::string& text) {
  std::printf("%s\n", title.c_str());
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) std::printf("    %s\n", text.substr(start, end - start).c_str());
    start = end + 1;
  }
}

// What one measured query run produced.
struct RunResult {
  double wall_seconds = 0;
  double cpu_seconds = 0;  // user + system of the whole process during the run
  int64_t input_rows = 0;
  int64_t output_rows = 0;
  std::vector<int64_t> trigger_ms;  // triggerExecution of every batch that had input
  // Of the same batches: stateOperators[0] commitTimeMs and checkpointWaitMs.
  std::vector<int64_t> commit_ms, checkpoint_wait_ms;
  std::optional<StateOperatorProgress> last_state;
  int64_t peak_state_rows = 0;
  int64_t peak_state_memory = 0;
  int64_t commit_ms_total = 0;
  // The batch with the longest triggerExecution: its id and state commit time.
  int64_t slowest_batch_id = -1, slowest_trigger_ms = -1, slowest_commit_ms = 0;
};

// Runs `query` until `done` says so after a progress event; `after_batch`
// (called on the executor thread after each batch) may feed the next batch.
RunResult RunQuery(Query& query, const std::function<bool(const ProgressEvent&)>& after_batch) {
  RunResult result;
  ExecutorOptions options;
  MicroBatchExecutor* executor = nullptr;
  options.on_progress = [&](const ProgressEvent& e) {
    if (e.num_input_rows > 0) result.trigger_ms.push_back(e.trigger_execution_ms);
    if (e.num_input_rows > 0 && !e.state_operators.empty()) {
      result.commit_ms.push_back(e.state_operators[0].commit_time_ms);
      result.checkpoint_wait_ms.push_back(e.state_operators[0].checkpoint_wait_ms);
    }
    if (e.num_input_rows > 0 && e.trigger_execution_ms > result.slowest_trigger_ms) {
      result.slowest_trigger_ms = e.trigger_execution_ms;
      result.slowest_batch_id = e.batch_id;
      result.slowest_commit_ms = e.state_operators.empty() ? 0 : e.state_operators[0].commit_time_ms;
    }
    result.input_rows += e.num_input_rows;
    if (!e.sinks.empty()) result.output_rows += e.sinks[0].num_output_rows;
    if (!e.state_operators.empty()) {
      const auto& s = e.state_operators[0];
      result.last_state = s;
      result.peak_state_rows = std::max(result.peak_state_rows, s.num_rows_total);
      result.peak_state_memory = std::max(result.peak_state_memory, s.memory_used_bytes);
      result.commit_ms_total += s.commit_time_ms;
    }
    if (after_batch(e)) executor->RequestStop();
  };
  MicroBatchExecutor exec(query, options);
  executor = &exec;
  const double cpu_start = CpuSecondsUsed();
  const double start = SteadySeconds();
  Status st = exec.Run();
  result.wall_seconds = SteadySeconds() - start;
  result.cpu_seconds = CpuSecondsUsed() - cpu_start;
  if (!st.ok()) Fail("query failed: " + st.ToString());
  return result;
}

void PrintThroughput(const std::string& label, const RunResult& r, int threads) {
  const double rows_per_sec = static_cast<double>(r.input_rows) / r.wall_seconds;
  std::printf("%s: %" PRId64 " rows in %.3f s = %s rows/s, %s rows/s per core (%d threads); cpu %.2f s (%.2f cores busy)\n",
              label.c_str(), r.input_rows, r.wall_seconds, Fixed(rows_per_sec).c_str(),
              Fixed(rows_per_sec / threads).c_str(), threads, r.cpu_seconds, r.cpu_seconds / r.wall_seconds);
  if (!r.trigger_ms.empty())
    std::printf("%*s  batch latency (triggerExecution over %zu batches): p50 %" PRId64 " ms, p99 %" PRId64
                " ms, max %" PRId64 " ms\n",
                static_cast<int>(label.size()), "", r.trigger_ms.size(), Percentile(r.trigger_ms, 50),
                Percentile(r.trigger_ms, 99), *std::max_element(r.trigger_ms.begin(), r.trigger_ms.end()));
}

// ---------------------------------------------------------------- windowed-count

// The key of row `row`: a full cycle over all `keys` keys every `keys` rows,
// in a scattered order (a stride coprime with `keys`), so every key appears
// and the state sees inserts spread over the whole key space.
class KeyCycle {
 public:
  explicit KeyCycle(int64_t keys) : keys_(keys) {
    stride_ = std::max<int64_t>(1, keys * 618 / 1000);
    while (std::gcd(stride_, keys_) != 1) ++stride_;
    width_ = static_cast<int>(std::to_string(std::max<int64_t>(keys - 1, 0)).size());
  }
  int64_t IdOf(int64_t row) const { return static_cast<int64_t>((static_cast<unsigned __int128>(row) * stride_) % keys_); }
  int width() const { return width_; }

 private:
  int64_t keys_;
  int64_t stride_ = 1;
  int width_ = 1;
};

// Micro-batch b holds rows [b*N/B, (b+1)*N/B), sliced into record batches of
// at most kPreferredBatchRows (what a source emits; larger pushed batches
// would be copied row by row by the memory source). Event time advances
// linearly with the row number over `event_minutes`, with up to 30 s of
// deterministic disorder, so windows close and the watermark evicts state.
std::vector<std::vector<RecordBatchPtr>> GenerateKeyedBatches(int64_t keys, int64_t rows, int64_t batches,
                                                              int64_t event_minutes) {
  auto schema = std::make_shared<const Schema>(
      std::vector<Field>{{"ts", DataType::kTimestamp, true}, {"key", DataType::kString, true}});
  KeyCycle cycle(keys);
  const int64_t span_us = event_minutes * kMicrosPerMinute;
  std::vector<std::vector<RecordBatchPtr>> out(static_cast<size_t>(batches));
  char key[32];
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t begin = b * rows / batches, end = (b + 1) * rows / batches;
    for (int64_t slice = begin; slice < end; slice += kPreferredBatchRows) {
      const int64_t slice_end = std::min(end, slice + kPreferredBatchRows);
      RecordBatchBuilder builder(schema, slice_end - slice);
      for (int64_t r = slice; r < slice_end; ++r) {
        const int64_t in_order = static_cast<int64_t>(static_cast<__int128>(r) * span_us / std::max<int64_t>(rows, 1));
        const int64_t disorder = static_cast<int64_t>((static_cast<uint64_t>(r) * 0x9E3779B97F4A7C15ULL >> 40) %
                                                      (30 * 1000000ULL));
        builder.column(0).AppendTimestamp(kEventTimeBaseMicros + std::max<int64_t>(0, in_order - disorder));
        int n = std::snprintf(key, sizeof key, "key-%0*" PRId64, cycle.width(), cycle.IdOf(r));
        builder.column(1).AppendString(std::string_view(key, static_cast<size_t>(n)));
      }
      out[static_cast<size_t>(b)].push_back(builder.Finish());
    }
  }
  return out;
}

// Feeds micro-batch 0 now and micro-batch k+1 after the progress event of
// the batch that read micro-batch k; asks the query to stop after the last.
struct Feeder {
  const std::vector<std::vector<RecordBatchPtr>>* batches;
  std::string stream;
  std::string sink_table;
  PushFn* push;
  ClearFn* clear;
  size_t next = 0;

  void PushNext() {
    for (const auto& b : (*batches)[next]) push(stream, b);
    ++next;
  }
  // After a batch: drop the sink's rows (memory stays bounded), feed the next.
  bool AfterBatch(const ProgressEvent& e) {
    clear(sink_table);
    if (e.num_input_rows == 0) return false;
    if (next >= batches->size()) return true;
    PushNext();
    return false;
  }
};

// `state_table` is the [state] table's body (provider and its options).
std::string WindowedCountToml(const std::string& checkpoint, int64_t threads, int64_t partitions,
                              const std::string& stream, const std::string& table,
                              const std::string& state_table = "provider = \"memory\"\n") {
  return "[pipeline]\n"
         "name = \"bench-windowed-count\"\n"
         "trigger = \"default\"\n"
         "checkpoint = \"" + checkpoint + "\"\n"
         "output_mode = \"update\"\n"
         "threads = " + std::to_string(threads) + "\n"
         "shuffle_partitions = " + std::to_string(partitions) + "\n"
         "\n[state]\n" + state_table +
         "\n[sources.events]\n"
         "type = \"memory\"\n"
         "schema = \"ts TIMESTAMP, key STRING\"\n"
         "stream = \"" + stream + "\"\n"
         "with_watermark = { column = \"ts\", delay = \"10 minutes\" }\n"
         "\n[[steps]]\n"
         "name = \"counts\"\n"
         "input = \"events\"\n"
         "group_by = [\"window(ts, '10 minutes')\", \"key\"]\n"
         "aggregate = [\"count(*) AS count\"]\n"
         "\n[sinks.out]\n"
         "type = \"memory\"\n"
         "input = \"counts\"\n"
         "query_name = \"" + table + "\"\n";
}

std::string BatchAggregateToml(int64_t threads, const std::string& stream, const std::string& table) {
  return "[pipeline]\n"
         "name = \"bench-batch-count\"\n"
         "trigger = \"default\"\n"
         "threads = " + std::to_string(threads) + "\n"
         "\n[sources.events]\n"
         "type = \"memory\"\n"
         "schema = \"ts TIMESTAMP, key STRING\"\n"
         "stream = \"" + stream + "\"\n"
         "\n[[steps]]\n"
         "name = \"projected\"\n"
         "input = \"events\"\n"
         "select = [\"ts\", \"key\"]\n"
         "\n[[steps]]\n"
         "name = \"counts\"\n"
         "input = \"projected\"\n"
         "group_by = [\"key\"]\n"
         "aggregate = [\"count(*) AS count\"]\n"
         "scope = \"batch\"\n"
         "\n[sinks.out]\n"
         "type = \"memory\"\n"
         "input = \"counts\"\n"
         "query_name = \"" + table + "\"\n";
}

// `observe`, if set, also sees every progress event (on the executor thread).
RunResult RunFed(const std::string& toml, const std::string& name, const std::vector<std::vector<RecordBatchPtr>>& batches,
                 const std::string& stream, const std::string& table,
                 const std::function<void(const ProgressEvent&)>& observe = nullptr) {
  auto* push = Plugins().FindAlias<PushFn>(PluginKind::kSource, "memory", "sluice_memory_source_push");
  auto* clear = Plugins().FindAlias<ClearFn>(PluginKind::kSink, "memory", "sluice_memory_sink_clear");
  if (!push || !clear) Fail("the memory source/sink plugins do not export their push/clear functions");
  auto query = BuildFromToml(toml, "/virtual/" + name + ".toml");
  Feeder feeder{&batches, stream, table, push, clear};
  feeder.PushNext();
  return RunQuery(*query, [&](const ProgressEvent& e) {
    if (observe) observe(e);
    return feeder.AfterBatch(e);
  });
}

int WindowedCount(int argc, char** argv, const std::string& command_line) {
  Flags flags(argc, argv, 2,
              {{"keys", 1000000}, {"rows", 4000000}, {"batches", 20}, {"threads", 0}, {"partitions", 4},
               {"event-minutes", 30}});
  const int64_t keys = flags["keys"], rows = flags["rows"], batches = flags["batches"];
  if (keys < 1 || rows < 1 || batches < 1 || flags["partitions"] < 1) Fail("--keys, --rows, --batches and --partitions must be >= 1");
  const int threads = flags["threads"] > 0 ? static_cast<int>(flags["threads"]) : HardwareThreads();
  PrintMachine(command_line);
  std::printf("config:      %s (threads 0 = one per core)\n", flags.Describe().c_str());
  std::printf("input:       %" PRId64 " rows (ts TIMESTAMP, key STRING 'key-NNNNNNN'), every key once per %" PRId64
              " rows, %" PRId64 " micro-batches of ~%" PRId64 " rows in record batches of <= %" PRId64
              " rows; event time spans %" PRId64 " minutes in row order with <= 30 s disorder\n",
              rows, keys, batches, rows / batches, kPreferredBatchRows, flags["event-minutes"]);

  const double gen_start = SteadySeconds();
  auto data = GenerateKeyedBatches(keys, rows, batches, flags["event-minutes"]);
  const int64_t rss_with_input = CurrentRssBytes();
  std::printf("generated:   in %.2f s (not timed below); RSS holding the input: %s\n", SteadySeconds() - gen_start,
              Mib(rss_with_input).c_str());

  ScratchDir scratch("windowed");
  const std::string checkpoint = scratch.path() + "/checkpoint";
  const std::string stateful_toml =
      WindowedCountToml(checkpoint, threads, flags["partitions"], "bench-windowed-in", "bench-windowed-out");
  const std::string reference_toml = BatchAggregateToml(threads, "bench-reference-in", "bench-reference-out");
  PrintIndented("measured pipeline (stateful):", stateful_toml);
  PrintIndented("reference pipeline (stateless select + per-batch count):", reference_toml);
  std::fflush(stdout);

  // The reference first: it holds no state, so the stateful run's peak RSS is the process peak.
  RunResult reference = RunFed(reference_toml, "bench-batch-count", data, "bench-reference-in", "bench-reference-out");
  const int64_t rss_before_stateful = CurrentRssBytes();
  const bool peak_was_reset = ResetPeakRss();
  RunResult stateful = RunFed(stateful_toml, "bench-windowed-count", data, "bench-windowed-in", "bench-windowed-out");
  int64_t state_files = 0;
  const int64_t state_disk = DirectoryBytes(checkpoint + "/state", &state_files);
  const int64_t peak_rss = PeakRssBytes();
  const int64_t stateful_rss_growth = PeakRssSinceReset() - rss_before_stateful;

  std::printf("\nresults\n");
  PrintThroughput("reference   ", reference, threads);
  PrintThroughput("windowed    ", stateful, threads);
  std::printf("ratio:       windowed count takes %.2fx the time of the reference (same rows, same run)\n",
              stateful.wall_seconds / reference.wall_seconds);
  if (stateful.last_state) {
    const auto& s = *stateful.last_state;
    std::printf("state:       after the last batch %" PRId64 " rows, memoryUsedBytes %s = %.0f bytes/row of state; "
                "peak %" PRId64 " rows, %s\n",
                s.num_rows_total, Mib(s.memory_used_bytes).c_str(),
                s.num_rows_total ? static_cast<double>(s.memory_used_bytes) / static_cast<double>(s.num_rows_total) : 0.0,
                stateful.peak_state_rows, Mib(stateful.peak_state_memory).c_str());
    std::printf("             state commits (delta + snapshot files, fsynced): %" PRId64 " ms summed over batches "
                "(max partition per batch)\n",
                stateful.commit_ms_total);
    std::printf("             slowest batch: %" PRId64 " (%" PRId64 " ms, of which state commit %" PRId64
                " ms; the memory store writes a full snapshot every 10th version)\n",
                stateful.slowest_batch_id, stateful.slowest_trigger_ms, stateful.slowest_commit_ms);
  }
  std::printf("on disk:     <checkpoint>/state holds %s in %" PRId64 " files = %.0f bytes per distinct key (%" PRId64
              " keys)\n",
              Mib(state_disk).c_str(), state_files, static_cast<double>(state_disk) / static_cast<double>(keys), keys);
  std::printf("output:      reference %" PRId64 " rows, windowed %" PRId64 " rows (update mode: changed groups)\n",
              reference.output_rows, stateful.output_rows);
  std::printf("peak RSS:    %s (getrusage, whole process, includes the %s input)\n", Mib(peak_rss).c_str(),
              Mib(rss_with_input).c_str());
  if (peak_was_reset && stateful.peak_state_rows > 0)
    std::printf("             the windowed run grew RSS by at most %s over its start = %.0f bytes per peak state row "
                "(real allocations, transient batch structures included)\n",
                Mib(stateful_rss_growth).c_str(),
                static_cast<double>(stateful_rss_growth) / static_cast<double>(stateful.peak_state_rows));
  std::printf("load:        1-minute load average %s at the end\n", LoadAverage().c_str());
  return 0;
}

// ---------------------------------------------------------------- state-providers

// The windowed-count query once per state store provider, each in a child
// process of its own (this program re-executed with --provider N), so that
// peak RSS is per provider and nothing one provider leaves behind (heap,
// page cache of its files aside) weighs on the next. The parent prints the
// children's reports and a table of them.
struct ProviderCase {
  const char* label;
  const char* what;
};
constexpr ProviderCase kProviderCases[] = {
    {"memory", "memory: in-heap map, delta file per version, snapshot every 10th"},
    {"rocksdb", "rocksdb, synchronous checkpoint: Commit returns once the version is copied into the checkpoint"},
    {"rocksdb-async", "rocksdb, async_checkpoint = true: Commit returns after the local commit, a thread copies"},
    {"lmdb", "lmdb: memory-mapped environment, checkpoint file per version"},
};
constexpr int kNumProviderCases = static_cast<int>(sizeof kProviderCases / sizeof kProviderCases[0]);

// The [state] table of case `index` (0-based), every option spelled out.
std::string ProviderStateTable(int index, const std::string& local_dir, const Flags& flags) {
  const std::string delay =
      flags["upload-delay-ms"] > 0 ? "test_upload_delay_ms = " + std::to_string(flags["upload-delay-ms"]) + "\n" : "";
  switch (index) {
    case 0:
      return "provider = \"memory\"\nsnapshot_interval = 10\n";
    case 1:
    case 2:
      return "provider = \"rocksdb\"\nlocal_dir = \"" + local_dir + "\"\nasync_checkpoint = " +
             (index == 2 ? "true" : "false") + "\nblock_cache_mb = " + std::to_string(flags["block-cache-mb"]) +
             "\nwrite_buffer_mb = 16\n" + delay;
    default:
      return "provider = \"lmdb\"\nlocal_dir = \"" + local_dir + "\"\ninitial_map_mb = 64\nsnapshot_interval = " +
             std::to_string(flags["lmdb-snapshot-interval"]) + "\n";
  }
}

// What `du -s` counts: allocated blocks, each hard-linked file once.
struct DiskUsage {
  int64_t allocated = 0;
  int64_t apparent = 0;
  int64_t files = 0;
};

DiskUsage DiskUsageOf(const std::string& dir) {
  DiskUsage u;
  std::set<std::pair<dev_t, ino_t>> seen;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return u;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
    u.allocated += static_cast<int64_t>(st.st_blocks) * 512;
    u.apparent += static_cast<int64_t>(st.st_size);
    ++u.files;
  }
  return u;
}

// The child's figures, handed to the parent as one "key=value ..." line.
using Figures = std::map<std::string, double>;
constexpr const char* kResultPrefix = "sluice-bench-result:";

int64_t PercentileOr0(const std::vector<int64_t>& v, double p) { return v.empty() ? 0 : Percentile(v, p); }
int64_t Sum(const std::vector<int64_t>& v) { return std::accumulate(v.begin(), v.end(), int64_t{0}); }

int StateProviderChild(const Flags& flags, int index, int64_t rows) {
  const ProviderCase& c = kProviderCases[index];
  const int64_t keys = flags["keys"], batches = flags["batches"];
  const int threads = flags["threads"] > 0 ? static_cast<int>(flags["threads"]) : HardwareThreads();
  std::printf("provider:    %s\n", c.what);
  std::printf("load:        1-minute load average %s at start\n", LoadAverage().c_str());
  const double gen_start = SteadySeconds();
  auto data = GenerateKeyedBatches(keys, rows, batches, flags["event-minutes"]);
  const int64_t rss_with_input = CurrentRssBytes();
  std::printf("generated:   in %.2f s (not timed); RSS holding the input: %s\n", SteadySeconds() - gen_start,
              Mib(rss_with_input).c_str());

  ScratchDir scratch(std::string("providers-") + c.label);
  const std::string checkpoint = scratch.path() + "/checkpoint";
  const std::string local_dir = scratch.path() + "/local";
  const std::string state_table = ProviderStateTable(index, local_dir, flags);
  PrintIndented("[state]", state_table);
  const std::string toml = WindowedCountToml(checkpoint, threads, flags["partitions"], "bench-providers-in",
                                             "bench-providers-out", state_table);
  std::fflush(stdout);

  // The local working directory (rocksdb, lmdb) is removed when the provider
  // closes: its size is sampled after every batch.
  DiskUsage local_peak;
  RunResult r = RunFed(toml, "bench-state-providers", data, "bench-providers-in", "bench-providers-out",
                       [&](const ProgressEvent& e) {
                         DiskUsage u = DiskUsageOf(local_dir);
                         if (u.allocated > local_peak.allocated) local_peak = u;
                         if (flags["progress"] > 0 && !e.state_operators.empty()) {
                           const auto& s = e.state_operators[0];
                           std::printf("  batch %" PRId64 ": %" PRId64 " rows, triggerExecution %" PRId64
                                       " ms, commitTimeMs %" PRId64 ", checkpointWaitMs %" PRId64 ", state %" PRId64
                                       " rows (-%" PRId64 "), %.0f s since start\n",
                                       e.batch_id, e.num_input_rows, e.trigger_execution_ms, s.commit_time_ms,
                                       s.checkpoint_wait_ms, s.num_rows_total, s.num_rows_removed,
                                       SteadySeconds() - gen_start);
                         }
                       });
  const DiskUsage state = DiskUsageOf(checkpoint + "/state");
  const double rows_per_sec = static_cast<double>(r.input_rows) / r.wall_seconds;
  PrintThroughput("run", r, threads);
  std::printf("     commitTimeMs (stateOperators, slowest partition per batch, %zu batches): p50 %" PRId64
              " ms, p99 %" PRId64 " ms, summed %" PRId64 " ms = %.0f%% of the summed triggerExecution\n",
              r.commit_ms.size(), PercentileOr0(r.commit_ms, 50), PercentileOr0(r.commit_ms, 99), Sum(r.commit_ms),
              100.0 * static_cast<double>(Sum(r.commit_ms)) / std::max<double>(1.0, static_cast<double>(Sum(r.trigger_ms))));
  std::printf("     checkpointWaitMs (customMetrics): p50 %" PRId64 " ms, max %" PRId64 " ms, summed %" PRId64 " ms\n",
              PercentileOr0(r.checkpoint_wait_ms, 50),
              r.checkpoint_wait_ms.empty() ? 0 : *std::max_element(r.checkpoint_wait_ms.begin(), r.checkpoint_wait_ms.end()),
              Sum(r.checkpoint_wait_ms));
  if (r.last_state)
    std::printf("state:       after the last batch %" PRId64 " rows, memoryUsedBytes %s; peak %" PRId64 " rows\n",
                r.last_state->num_rows_total, Mib(r.last_state->memory_used_bytes).c_str(), r.peak_state_rows);
  std::printf("on disk:     du <checkpoint>/state %s (%s apparent) in %" PRId64 " files = %.0f bytes per distinct key; "
              "local working directory at most %s in %" PRId64 " files\n",
              Mib(state.allocated).c_str(), Mib(state.apparent).c_str(), state.files,
              static_cast<double>(state.allocated) / static_cast<double>(keys), Mib(local_peak.allocated).c_str(),
              local_peak.files);
  std::printf("load:        1-minute load average %s at the end\n", LoadAverage().c_str());

  Figures f{{"rows", static_cast<double>(r.input_rows)},
            {"wall_s", r.wall_seconds},
            {"cpu_s", r.cpu_seconds},
            {"rows_per_s", rows_per_sec},
            {"threads", threads},
            {"batches", static_cast<double>(r.trigger_ms.size())},
            {"p50_ms", static_cast<double>(PercentileOr0(r.trigger_ms, 50))},
            {"p99_ms", static_cast<double>(PercentileOr0(r.trigger_ms, 99))},
            {"trigger_sum_ms", static_cast<double>(Sum(r.trigger_ms))},
            {"commit_p50_ms", static_cast<double>(PercentileOr0(r.commit_ms, 50))},
            {"commit_p99_ms", static_cast<double>(PercentileOr0(r.commit_ms, 99))},
            {"commit_sum_ms", static_cast<double>(Sum(r.commit_ms))},
            {"wait_p50_ms", static_cast<double>(PercentileOr0(r.checkpoint_wait_ms, 50))},
            {"wait_max_ms", r.checkpoint_wait_ms.empty() ? 0.0
                                                         : static_cast<double>(*std::max_element(
                                                               r.checkpoint_wait_ms.begin(), r.checkpoint_wait_ms.end()))},
            {"wait_sum_ms", static_cast<double>(Sum(r.checkpoint_wait_ms))},
            {"state_rows", r.last_state ? static_cast<double>(r.last_state->num_rows_total) : 0.0},
            {"peak_state_rows", static_cast<double>(r.peak_state_rows)},
            {"state_du", static_cast<double>(state.allocated)},
            {"state_files", static_cast<double>(state.files)},
            {"local_du", static_cast<double>(local_peak.allocated)},
            {"rss_input", static_cast<double>(rss_with_input)}};
  std::printf("%s", kResultPrefix);
  for (const auto& [k, v] : f) std::printf(" %s=%.6f", k.c_str(), v);
  std::printf("\n");
  return 0;
}

// Runs case `index` in a child process; echoes its report; returns its
// figures plus its peak RSS and CPU time as the kernel accounted them.
std::optional<Figures> RunProviderChild(int argc, char** argv, int index) {
  std::vector<std::string> args{"/proc/self/exe"};
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  args.emplace_back("--provider");
  args.emplace_back(std::to_string(index + 1));
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) Fail("pipe failed");
  std::fflush(stdout);
  std::fflush(stderr);
  const double start = SteadySeconds();
  pid_t pid = fork();
  if (pid < 0) Fail("fork failed");
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execv("/proc/self/exe", cargs.data());
    std::perror("sluice-bench: exec");
    _exit(127);
  }
  close(fds[1]);
  std::FILE* in = fdopen(fds[0], "r");
  std::optional<Figures> figures;
  char line[4096];
  while (std::fgets(line, sizeof line, in)) {
    std::string l(line);
    if (l.rfind(kResultPrefix, 0) == 0) {
      Figures f;
      std::istringstream fields(l.substr(std::strlen(kResultPrefix)));
      std::string kv;
      while (fields >> kv)
        if (auto eq = kv.find('='); eq != std::string::npos) f[kv.substr(0, eq)] = std::atof(kv.c_str() + eq + 1);
      figures = f;
      continue;
    }
    std::printf("  %s", l.c_str());
  }
  std::fclose(in);
  int status = 0;
  rusage usage{};
  if (wait4(pid, &status, 0, &usage) != pid) Fail("wait4 failed");
  const double took = SteadySeconds() - start;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::printf("  the child for %s failed (%s %d) after %.1f s\n", kProviderCases[index].label,
                WIFEXITED(status) ? "exit status" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                took);
    return std::nullopt;
  }
  if (!figures) {
    std::printf("  the child for %s printed no result line\n", kProviderCases[index].label);
    return std::nullopt;
  }
  (*figures)["peak_rss"] = static_cast<double>(usage.ru_maxrss) * 1024;
  (*figures)["child_s"] = took;
  std::printf("  peak RSS:  %s (wait4 of the child: the whole process, including the %s input); child took %.1f s\n",
              Mib(static_cast<int64_t>((*figures)["peak_rss"])).c_str(),
              Mib(static_cast<int64_t>((*figures)["rss_input"])).c_str(), took);
  return figures;
}

int StateProviders(int argc, char** argv, const std::string& command_line) {
  Flags flags(argc, argv, 2,
              {{"keys", 1000000}, {"rows", 0}, {"batches", 20}, {"threads", 0}, {"partitions", 4},
               {"event-minutes", 30}, {"lmdb-snapshot-interval", 10}, {"upload-delay-ms", 0}, {"progress", 0}, {"block-cache-mb", 64},
               {"provider", 0}});
  const int64_t keys = flags["keys"], batches = flags["batches"];
  const int64_t rows = flags["rows"] > 0 ? flags["rows"] : 2 * keys;
  if (keys < 1 || batches < 1 || flags["partitions"] < 1 || flags["lmdb-snapshot-interval"] < 1 ||
      flags["block-cache-mb"] < 1)
    Fail("--keys, --batches, --partitions, --lmdb-snapshot-interval and --block-cache-mb must be >= 1");
  if (flags["provider"] > kNumProviderCases) Fail("--provider is 1.." + std::to_string(kNumProviderCases));
  if (flags["provider"] > 0) return StateProviderChild(flags, static_cast<int>(flags["provider"] - 1), rows);

  const int threads = flags["threads"] > 0 ? static_cast<int>(flags["threads"]) : HardwareThreads();
  PrintMachine(command_line);
  std::printf("config:      %s (rows 0 = 2 x keys; threads 0 = one per core; provider 0 = all, each in a child "
              "process)\n",
              flags.Describe().c_str());
  std::printf("input:       %" PRId64 " rows (ts TIMESTAMP, key STRING 'key-NNNNNNN'), every key once per %" PRId64
              " rows, %" PRId64 " micro-batches of ~%" PRId64 " rows; event time spans %" PRId64
              " minutes in row order with <= 30 s disorder; generated in each child before anything is timed\n",
              rows, keys, batches, rows / batches, flags["event-minutes"]);
  PrintIndented("measured pipeline (the [state] table of each provider is printed with its run):",
                WindowedCountToml("<temporary>/checkpoint", threads, flags["partitions"], "bench-providers-in",
                                  "bench-providers-out", "<provider and options>\n"));
  std::vector<std::optional<Figures>> results;
  for (int i = 0; i < kNumProviderCases; ++i) {
    std::printf("\n%s\n", kProviderCases[i].label);
    results.push_back(RunProviderChild(argc, argv, i));
  }

  std::printf("\nresults (%d threads; per core = rows/s / threads; latencies over the batches with input)\n", threads);
  std::printf("%-14s %10s %9s %6s %8s %8s %7s %7s %8s %8s %11s %11s %10s\n", "provider", "rows/s", "per core", "cores",
              "p50 ms", "p99 ms", "commit", "commit", "wait", "wait", "state du", "local du", "peak RSS");
  std::printf("%-14s %10s %9s %6s %8s %8s %7s %7s %8s %8s %11s %11s %10s\n", "", "", "", "busy", "trigger", "trigger",
              "p50", "p99", "p50", "max", "checkpoint", "peak", "");
  for (int i = 0; i < kNumProviderCases; ++i) {
    if (!results[i]) {
      std::printf("%-14s (failed, see above)\n", kProviderCases[i].label);
      continue;
    }
    Figures& f = *results[i];
    std::printf("%-14s %10.0f %9.0f %6.2f %8.0f %8.0f %7.0f %7.0f %8.0f %8.0f %11s %11s %10s\n", kProviderCases[i].label,
                f["rows_per_s"], f["rows_per_s"] / f["threads"], f["cpu_s"] / f["wall_s"], f["p50_ms"], f["p99_ms"],
                f["commit_p50_ms"], f["commit_p99_ms"], f["wait_p50_ms"], f["wait_max_ms"],
                Mib(static_cast<int64_t>(f["state_du"])).c_str(), Mib(static_cast<int64_t>(f["local_du"])).c_str(),
                Mib(static_cast<int64_t>(f["peak_rss"])).c_str());
  }
  if (results[1] && results[2]) {
    Figures &sync = *results[1], &async = *results[2];
    const double p50_cut = 100.0 * (1.0 - async["p50_ms"] / std::max(1.0, sync["p50_ms"]));
    std::printf("async vs sync: p50 batch latency %.0f -> %.0f ms (%+.0f%%; the goal is a cut of >= 25%%), "
                "p50 commitTimeMs %.0f -> %.0f ms, throughput %.0f -> %.0f rows/s (%+.0f%%)\n",
                sync["p50_ms"], async["p50_ms"], -p50_cut, sync["commit_p50_ms"], async["commit_p50_ms"],
                sync["rows_per_s"], async["rows_per_s"], 100.0 * (async["rows_per_s"] / sync["rows_per_s"] - 1.0));
    std::printf("               summed commitTimeMs / summed triggerExecution: sync %.0f%% (write, flush, local "
                "checkpoint, copy into <checkpoint>/state); async %.0f%% (the same without the copy)\n",
                100.0 * sync["commit_sum_ms"] / std::max(1.0, sync["trigger_sum_ms"]),
                100.0 * async["commit_sum_ms"] / std::max(1.0, async["trigger_sum_ms"]));
  }
  std::printf("load:        1-minute load average %s at the end\n", LoadAverage().c_str());
  for (const auto& r : results)
    if (!r) return 1;
  return 0;
}

// ---------------------------------------------------------------- stateless

// JSON lines in the shape of pipelines/data/events: a quarter are purchases,
// a few of those with a non-positive amount.
void GenerateEventFiles(const std::string& dir, int64_t rows, int64_t files) {
  fs::create_directories(dir);
  static const char* kActions[] = {"view", "click", "purchase", "refund"};
  std::string buf;
  for (int64_t f = 0; f < files; ++f) {
    char name[64];
    std::snprintf(name, sizeof name, "/%05" PRId64 ".jsonl", f);
    buf.clear();
    const int64_t begin = f * rows / files, end = (f + 1) * rows / files;
    for (int64_t r = begin; r < end; ++r) {
      const uint64_t h = static_cast<uint64_t>(r) * 0x9E3779B97F4A7C15ULL;
      const int64_t ts_s = kEventTimeBaseMicros / 1000000 + r / 10;
      const time_t t = static_cast<time_t>(ts_s);
      tm parts{};
      gmtime_r(&t, &parts);
      char ts[32];
      std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &parts);
      const int amount_cents = static_cast<int>((h >> 20) % 20000) - 500;  // a few <= 0
      char line[256];
      int n = std::snprintf(line, sizeof line,
                            "{\"id\": %" PRId64 ", \"user\": \"user%" PRIu64 "\", \"action\": \"%s\", \"amount\": %d.%02d, "
                            "\"ts\": \"%s\"}\n",
                            r, (h >> 32) % 50000, kActions[(h >> 8) % 4], amount_cents / 100, std::abs(amount_cents % 100), ts);
      buf.append(line, static_cast<size_t>(n));
    }
    std::ofstream out(dir + name, std::ios::binary);
    out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (!out) Fail("cannot write " + dir + name);
  }
}

std::string StatelessToml(const std::string& root, int64_t threads, int64_t files_per_batch) {
  return "[pipeline]\n"
         "name = \"bench-json-etl\"\n"
         "trigger = \"available_now\"\n"
         "threads = " + std::to_string(threads) + "\n"
         "\n[sources.events]\n"
         "type = \"file\"\n"
         "path = \"" + root + "/in\"\n"
         "format = \"jsonl\"\n"
         "schema = \"id BIGINT, user STRING, action STRING, amount DOUBLE, ts TIMESTAMP\"\n"
         "max_files_per_trigger = " + std::to_string(files_per_batch) + "\n"
         "on_error = \"dead_letter\"\n"
         "dead_letter_path = \"" + root + "/dead-letter.jsonl\"\n"
         "\n[[steps]]\n"
         "name = \"purchases\"\n"
         "input = \"events\"\n"
         "where = \"action = 'purchase' AND amount > 0\"\n"
         "\n[[steps]]\n"
         "name = \"shaped\"\n"
         "input = \"purchases\"\n"
         "select = [\"id\", \"upper(user) AS customer\", \"CAST(round(amount * 100) AS BIGINT) AS amount_cents\", \"ts\"]\n"
         "\n[sinks.out]\n"
         "type = \"file\"\n"
         "input = \"shaped\"\n"
         "path = \"" + root + "/out\"\n"
         "format = \"jsonl\"\n";
}

// Wall time of a shell command (its output discarded).
double TimeShell(const std::string& command) {
  const double start = SteadySeconds();
  int rc = std::system((command + " > /dev/null").c_str());
  const double took = SteadySeconds() - start;
  if (rc != 0) Fail("reference command failed: " + command);
  return took;
}

// Wall time of reading every file of `dir` with read(2) into one buffer,
// counting newlines: what any reader of these files must at least do.
double TimeReadLoop(const std::string& dir, int64_t* lines) {
  std::vector<std::string> paths;
  for (const auto& e : fs::directory_iterator(dir)) paths.push_back(e.path().string());
  std::sort(paths.begin(), paths.end());
  std::vector<char> buf(1 << 20);
  const double start = SteadySeconds();
  *lines = 0;
  for (const auto& p : paths) {
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (!f) Fail("cannot open " + p);
    for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), f)) > 0;)
      *lines += std::count(buf.data(), buf.data() + n, '\n');
    std::fclose(f);
  }
  return SteadySeconds() - start;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int Stateless(int argc, char** argv, const std::string& command_line) {
  Flags flags(argc, argv, 2, {{"rows", 8000000}, {"files", 32}, {"files-per-batch", 8}, {"threads", 0}, {"repeats", 3}});
  const int64_t rows = flags["rows"], files = flags["files"], repeats = flags["repeats"];
  if (rows < 1 || files < 1 || flags["files-per-batch"] < 1 || repeats < 1)
    Fail("--rows, --files, --files-per-batch and --repeats must be >= 1");
  const int threads = flags["threads"] > 0 ? static_cast<int>(flags["threads"]) : HardwareThreads();
  PrintMachine(command_line);
  std::printf("config:      %s (threads 0 = one per core)\n", flags.Describe().c_str());

  ScratchDir scratch("stateless");
  const std::string in_dir = scratch.path() + "/in", out_dir = scratch.path() + "/out";
  const double gen_start = SteadySeconds();
  GenerateEventFiles(in_dir, rows, files);
  const int64_t input_bytes = DirectoryBytes(in_dir);
  std::printf("input:       %" PRId64 " JSON lines in %" PRId64 " files, %s (%.0f bytes/line), generated in %.2f s "
              "(not timed); files are in the page cache\n",
              rows, files, Mib(input_bytes).c_str(), static_cast<double>(input_bytes) / static_cast<double>(rows),
              SteadySeconds() - gen_start);
  const std::string toml = StatelessToml(scratch.path(), threads, flags["files-per-batch"]);
  PrintIndented("measured pipeline (json-etl shape):", toml);
  std::fflush(stdout);

  // References and query alternate, `repeats` times; medians are reported.
  int64_t lines = 0;
  TimeReadLoop(in_dir, &lines);  // warm the page cache
  std::vector<double> read_s, wc_s, query_s;
  RunResult r;
  int64_t output_bytes = 0;
  for (int64_t i = 0; i < repeats; ++i) {
    read_s.push_back(TimeReadLoop(in_dir, &lines));
    wc_s.push_back(TimeShell("wc -l " + in_dir + "/*.jsonl"));
    std::error_code ec;
    fs::remove_all(out_dir, ec);
    auto query = BuildFromToml(toml, "/virtual/bench-json-etl.toml");
    r = RunQuery(*query, [](const ProgressEvent&) { return false; });
    query_s.push_back(r.wall_seconds);
    output_bytes = DirectoryBytes(out_dir);
    if (r.input_rows != rows) Fail("the query read " + std::to_string(r.input_rows) + " rows, expected " + std::to_string(rows));
  }
  auto list = [](const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += (s.empty() ? "" : ", ") + Fixed(x, 3);
    return s;
  };
  const double read_med = Median(read_s), wc_med = Median(wc_s), query_med = Median(query_s);
  const double rows_per_sec = static_cast<double>(rows) / query_med;
  std::printf("\nresults (median of %" PRId64 " runs; every run listed)\n", repeats);
  std::printf("reference:   read(2) loop counting newlines %.3f s = %s/s [%s]\n", read_med,
              Mib(static_cast<int64_t>(static_cast<double>(input_bytes) / read_med)).c_str(), list(read_s).c_str());
  std::printf("             wc -l %.3f s = %s/s [%s]\n", wc_med,
              Mib(static_cast<int64_t>(static_cast<double>(input_bytes) / wc_med)).c_str(), list(wc_s).c_str());
  std::printf("json-etl:    %" PRId64 " rows in %.3f s = %s rows/s, %s rows/s per core (%d threads), %s/s of JSON [%s]\n",
              rows, query_med, Fixed(rows_per_sec).c_str(), Fixed(rows_per_sec / threads).c_str(), threads,
              Mib(static_cast<int64_t>(static_cast<double>(input_bytes) / query_med)).c_str(), list(query_s).c_str());
  std::printf("             last run: cpu %.2f s (%.2f cores busy); batch latency (triggerExecution over %zu batches) "
              "p50 %" PRId64 " ms, p99 %" PRId64 " ms; %" PRId64 " rows out (%s written)\n",
              r.cpu_seconds, r.cpu_seconds / r.wall_seconds, r.trigger_ms.size(), Percentile(r.trigger_ms, 50),
              Percentile(r.trigger_ms, 99), r.output_rows, Mib(output_bytes).c_str());
  std::printf("ratio:       the query takes %.1fx the time of wc -l and %.1fx that of the read(2) loop\n",
              query_med / wc_med, query_med / read_med);
  std::printf("peak RSS:    %s (getrusage, whole process)\n", Mib(PeakRssBytes()).c_str());
  std::printf("load:        1-minute load average %s at the end\n", LoadAverage().c_str());
  return 0;
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  std::string command_line = "sluice-bench";
  for (int i = 1; i < argc; ++i) command_line += std::string(" ") + argv[i];
  if (const char* shown = std::getenv("SLUICE_BENCH_COMMAND"); shown && *shown) command_line = shown;
  sluice::SetLogLevel(sluice::LogLevel::kWarn);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string what = argc > 1 ? argv[1] : "";
  if (what == "windowed-count") return WindowedCount(argc, argv, command_line);
  if (what == "stateless") return Stateless(argc, argv, command_line);
  if (what == "state-providers") return StateProviders(argc, argv, command_line);
  std::fprintf(stderr,
               "usage: sluice-bench windowed-count [--keys K] [--rows N] [--batches B] [--threads T] [--partitions P] "
               "[--event-minutes M]\n"
               "       sluice-bench stateless [--rows N] [--files F] [--files-per-batch G] [--threads T] [--repeats R]\n"
               "       sluice-bench state-providers [--keys K] [--rows N] [--batches B] [--threads T] [--partitions P]\n"
               "                                    [--event-minutes M] [--lmdb-snapshot-interval S] [--upload-delay-ms D]\n"
               "                                    [--block-cache-mb 64] [--progress 1]\n");
  return 2;
}
