// Exactly-once through crashes: a file-to-file pipeline with a checkpoint is
// killed with SIGKILL at named crash points and at random instants, restarted
// each time, and its committed output must hold every input row exactly once.
//
// The random run is seeded (SLUICE_CRASH_SEED, default 20261125) so a failure
// replays; SLUICE_CRASH_KILLS sets how many kills it makes (default 50;
// tools/crash-soak runs it with 1000 or more).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "support/test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::ReadLines;
using testing::TempDir;
using testing::WriteFile;

using CommittedFilesFn = std::vector<std::string>(const std::string&);

class RecoveryTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& rel) { return dir_ / rel; }

  void WritePipeline() {
    WriteFile(Path("p.toml"), R"toml([pipeline]
trigger = "available_now"
checkpoint = "ckpt"
threads = 2
min_batches_to_retain = 5

[sources.rows]
type = "file"
path = "in"
format = "csv"
schema = "id BIGINT, payload STRING"
max_files_per_trigger = 2

[[steps]]
name = "shaped"
input = "rows"
with_column = { name = "payload", expr = "upper(payload)" }

[sinks.out]
type = "file"
input = "shaped"
path = "out"
format = "jsonl"
)toml");
  }

  // The same input, counted per id % 7 across batches through state, in
  // complete mode: every batch's part file is the whole table, so the last
  // committed file must equal counts over all input, exactly once.
  void WriteStatefulPipeline(const std::string& provider = "memory") {
    stateful_ = true;
    std::string state = provider == "rocksdb_async" ? "provider = \"rocksdb\"\nasync_checkpoint = true\n"
                        : provider == "memory"      ? "provider = \"memory\"\nsnapshot_interval = 3\n"
                                                    : "provider = \"" + provider + "\"\n";
    WriteFile(Path("p.toml"), "[state]\n" + state + R"toml(
[pipeline]
trigger = "available_now"
checkpoint = "ckpt"
output_mode = "complete"
shuffle_partitions = 3
min_batches_to_retain = 5

[sources.rows]
type = "file"
path = "in"
format = "csv"
schema = "id BIGINT, payload STRING"
max_files_per_trigger = 2

[[steps]]
name = "keyed"
input = "rows"
with_column = { name = "k", expr = "id % 7" }

[[steps]]
name = "counts"
input = "keyed"
group_by = ["k"]
aggregate = ["count(*) AS n", "sum(id) AS total"]

[sinks.out]
type = "file"
input = "counts"
path = "out"
format = "jsonl"
)toml");
  }

  // Adds input file number `n` with `rows` rows, moved in whole.
  void AddInputFile(int n, int rows) {
    std::string body;
    for (int r = 0; r < rows; ++r) {
      int id = n * 1000 + r;
      body += std::to_string(id) + ",p" + std::to_string(id) + "\n";
      expected_.push_back("{\"id\":" + std::to_string(id) + ",\"payload\":\"P" + std::to_string(id) + "\"}");
      ids_.push_back(id);
    }
    char name[32];
    std::snprintf(name, sizeof name, "%05d.csv", n);
    WriteFile(Path(std::string("in/.") + name + ".tmp"), body);
    fs::rename(Path(std::string("in/.") + name + ".tmp"), Path(std::string("in/") + name));
  }

  // Starts `sluice run`, with SLUICE_CRASH_AT=`crash_at` if given.
  pid_t Start(const std::string& crash_at = "", const char* log_level = "warn") {
    std::string pipeline = Path("p.toml"), log = Path("runs.log");
    pid_t pid = fork();
    if (pid == 0) {
      if (!crash_at.empty()) setenv("SLUICE_CRASH_AT", crash_at.c_str(), 1);
      if (!freopen(log.c_str(), "a", stderr)) _exit(126);
      if (!freopen("/dev/null", "w", stdout)) _exit(126);
      execl(SLUICE_TEST_SLUICE_BIN, "sluice", "--plugin-dir", SLUICE_TEST_PLUGIN_DIR, "--log-level", log_level, "run",
            pipeline.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    return pid;
  }

  // Waits for the process; returns its exit code, or 128 + signal.
  static int Wait(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  int RunToEnd() { return Wait(Start()); }

  // Whether the process ended, without reaping it (Wait still can).
  static bool Ended(pid_t pid) {
    siginfo_t info{};
    return waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
  }

  // How many runs logged "starting query" so far (runs started with log level info).
  size_t QueryStarts() {
    const std::string log = ReadFile(Path("runs.log"));
    size_t count = 0;
    for (size_t at = log.find("starting query"); at != std::string::npos; at = log.find("starting query", at + 1))
      ++count;
    return count;
  }

  // Every row of every file the sink's manifest names, sorted.
  std::vector<std::string> CommittedRows() {
    auto* committed = testing::BuildPlugins().FindAlias<CommittedFilesFn>(PluginKind::kSink, "file",
                                                                           "sluice_file_sink_committed_files");
    EXPECT_NE(committed, nullptr);
    std::vector<std::string> rows;
    if (!committed) return rows;
    auto files = committed(Path("out"));
    if (stateful_ && !files.empty()) files.erase(files.begin(), files.end() - 1);  // the latest complete table
    for (const auto& f : files) {
      auto lines = ReadLines(Path("out/" + f));
      rows.insert(rows.end(), lines.begin(), lines.end());
    }
    std::sort(rows.begin(), rows.end());
    return rows;
  }

  std::vector<std::string> Expected() {
    if (stateful_) {
      std::map<int64_t, std::pair<int64_t, int64_t>> counts;
      for (int64_t id : ids_) {
        auto& c = counts[id % 7];
        ++c.first;
        c.second += id;
      }
      std::vector<std::string> rows;
      for (const auto& [k, c] : counts)
        rows.push_back("{\"k\":" + std::to_string(k) + ",\"n\":" + std::to_string(c.first) + ",\"total\":" +
                       std::to_string(c.second) + "}");
      std::sort(rows.begin(), rows.end());
      return rows;
    }
    auto e = expected_;
    std::sort(e.begin(), e.end());
    return e;
  }

  // Kills `sluice run` at random instants until the wanted number of kills
  // landed (SLUICE_CRASH_KILLS overrides), then checks the committed output.
  void RandomKills(int default_kills);

  TempDir dir_;
  std::vector<std::string> expected_;
  std::vector<int64_t> ids_;
  bool stateful_ = false;
};

TEST_F(RecoveryTest, RestartWithNoNewDataEmitsNothing) {
  WritePipeline();
  for (int f = 0; f < 3; ++f) AddInputFile(f, 4);
  ASSERT_EQ(RunToEnd(), 0) << ReadFile(Path("runs.log"));
  EXPECT_EQ(CommittedRows(), Expected());
  auto manifest_before = testing::RunShell("ls " + Path("out/_sluice_metadata")).out;
  auto offsets_before = testing::RunShell("ls " + Path("ckpt/offsets")).out;
  EXPECT_EQ(offsets_before, "0\n1\n");
  ASSERT_EQ(RunToEnd(), 0) << ReadFile(Path("runs.log"));
  EXPECT_EQ(testing::RunShell("ls " + Path("out/_sluice_metadata")).out, manifest_before);
  EXPECT_EQ(testing::RunShell("ls " + Path("ckpt/offsets")).out, offsets_before);
  EXPECT_EQ(CommittedRows(), Expected());
  // New data later continues with the next batch id.
  AddInputFile(3, 2);
  ASSERT_EQ(RunToEnd(), 0);
  EXPECT_EQ(testing::RunShell("ls " + Path("ckpt/commits")).out, "0\n1\n2\n");
  EXPECT_EQ(CommittedRows(), Expected());
}

TEST_F(RecoveryTest, ChangedSourcesAreRefusedAndCorruptionIsNamed) {
  WritePipeline();
  AddInputFile(0, 2);
  ASSERT_EQ(RunToEnd(), 0) << ReadFile(Path("runs.log"));

  // Renaming the source breaks recovery: refused, naming the difference.
  std::string original = ReadFile(Path("p.toml"));
  std::string renamed = original;
  renamed.replace(renamed.find("[sources.rows]"), 14, "[sources.lines]");
  renamed.replace(renamed.find("input = \"rows\""), 14, "input = \"lines\"");
  WriteFile(Path("p.toml"), renamed);
  auto r = testing::RunSluice({"run", Path("p.toml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot restart from checkpoint " + Path("ckpt") +
                       ": source 'rows' was removed or renamed: the checkpoint was written with sources [rows (file)] "
                       "and the pipeline now has [lines (file)]; start a new checkpoint"),
            std::string::npos)
      << r.err;

  WriteFile(Path("p.toml"), original);

  // A garbled offset log entry stops the query, naming the file and batch.
  WriteFile(Path("ckpt/offsets/0"), "v1\n{\"batchWatermarkMs\":0,\"batchTimestampMs\":1,\"conf\":{}}\n{\"fil");
  r = testing::RunSluice({"run", Path("p.toml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("checkpoint file " + Path("ckpt/offsets/0") + " (offsets/0, batch 0) is truncated"),
            std::string::npos)
      << r.err;

  auto inspect = testing::RunSluice({"checkpoint", "inspect", Path("ckpt")});
  EXPECT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("  batch 0: committed\n    checkpoint file " + Path("ckpt/offsets/0")), std::string::npos)
      << inspect.out;
  EXPECT_NE(inspect.out.find("sink out (file) " + Path("out") + ", manifest:\n    batch 0: part-00000.jsonl\n"),
            std::string::npos)
      << inspect.out;
}

TEST_F(RecoveryTest, EditingAFilterIsACompatibleRestart) {
  WritePipeline();
  AddInputFile(0, 3);
  ASSERT_EQ(RunToEnd(), 0) << ReadFile(Path("runs.log"));
  std::string toml = ReadFile(Path("p.toml"));
  toml.replace(toml.find("upper(payload)"), 14, "lower(payload)");
  WriteFile(Path("p.toml"), toml);
  AddInputFile(1, 1);
  expected_.back() = "{\"id\":1000,\"payload\":\"p1000\"}";
  ASSERT_EQ(RunToEnd(), 0) << ReadFile(Path("runs.log"));
  EXPECT_EQ(CommittedRows(), Expected());
}

TEST_F(RecoveryTest, EveryNamedCrashPointRecoversExactlyOnce) {
  WritePipeline();
  const std::vector<std::string> points = {
      "executor:before-offset-write", "offset-log:after-write",   "file-sink:before-write",
      "file-sink:after-part-rename",  "file-sink:after-manifest", "executor:after-sinks",
      "commit-log:after-write",
  };
  int file = 0;
  for (const auto& point : points) {
    SCOPED_TRACE(point);
    AddInputFile(file++, 3);
    AddInputFile(file++, 3);
    // Crash at the point in the second batch of this run, when there is one.
    AddInputFile(file++, 3);
    int rc = Wait(Start(point + "@2"));
    EXPECT_EQ(rc, 128 + SIGKILL) << "the crash point was never reached";
    ASSERT_EQ(RunToEnd(), 0) << ReadFile(Path("runs.log"));
    EXPECT_EQ(CommittedRows(), Expected());
  }
  // After a normal batch the checkpoint keeps only the newest
  // min_batches_to_retain entries (the last kill came before a purge).
  AddInputFile(file++, 1);
  ASSERT_EQ(RunToEnd(), 0);
  EXPECT_EQ(testing::RunShell("ls " + Path("ckpt/offsets") + " | wc -l").out, "5\n");
}

TEST_F(RecoveryTest, RandomKillsNeverLoseOrDuplicateOutput) {
  WritePipeline();
  RandomKills(50);
}

// The stateful path with every state store: the same checks, plus each
// provider's own crash points.
class StatefulRecoveryTest : public RecoveryTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(StatefulRecoveryTest, StatefulAggregationSurvivesEveryNamedCrashPoint) {
  WriteStatefulPipeline(GetParam());
  std::vector<std::string> points = {"offset-log:after-write", "file-sink:after-part-rename", "executor:after-sinks",
                                     "commit-log:after-write"};
  if (GetParam() == "memory") points.insert(points.end(), {"state-memory:before-commit", "state-memory:after-delta"});
  if (GetParam().rfind("rocksdb", 0) == 0)
    points.insert(points.end(), {"state-rocksdb:before-commit", "state-rocksdb:after-local-commit",
                                 "state-rocksdb:after-sst-copy"});
  if (GetParam() == "lmdb") points.insert(points.end(), {"state-lmdb:before-commit", "state-lmdb:after-local-commit"});
  int file = 0;
  for (const auto& point : points) {
    SCOPED_TRACE(point);
    for (int i = 0; i < 3; ++i) AddInputFile(file++, 5);
    EXPECT_EQ(Wait(Start(point + "@2")), 128 + SIGKILL) << "the crash point was never reached";
    ASSERT_EQ(RunToEnd(), 0) << ReadFile(Path("runs.log"));
    EXPECT_EQ(CommittedRows(), Expected());
  }
}

TEST_P(StatefulRecoveryTest, StatefulAggregationSurvivesRandomKills) {
  WriteStatefulPipeline(GetParam());
  RandomKills(25);
}

INSTANTIATE_TEST_SUITE_P(Providers, StatefulRecoveryTest,
                         ::testing::Values("memory", "rocksdb", "rocksdb_async", "lmdb"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

void RecoveryTest::RandomKills(int default_kills) {
  const char* seed_env = std::getenv("SLUICE_CRASH_SEED");
  const char* kills_env = std::getenv("SLUICE_CRASH_KILLS");
  const unsigned seed = seed_env ? static_cast<unsigned>(std::strtoul(seed_env, nullptr, 10)) : 20261125u;
  const int wanted_kills = kills_env ? std::atoi(kills_env) : default_kills;
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> delay_us(0, 40000);
  std::uniform_int_distribution<int> rows(1, 400);
  int kills = 0, completed = 0, file = 0, kills_mid_batch = 0;
  auto latest_id = [&](const std::string& sub) {
    std::error_code ec;
    long latest = -1;
    for (const auto& e : fs::directory_iterator(Path(sub), ec)) {
      std::string name = e.path().filename().string();
      if (!name.empty() && std::isdigit(static_cast<unsigned char>(name[0]))) latest = std::max(latest, std::stol(name));
    }
    return latest;
  };
  while (kills < wanted_kills) {
    // New input keeps every restart busy: planning, reading and writing.
    AddInputFile(file++, rows(rng));
    if (rng() % 2) AddInputFile(file++, rows(rng));
    const size_t starts_before = QueryStarts();
    pid_t pid = Start("", "info");
    // The random instant counts from the query's start ("starting query" in
    // the log), so a slow process start on a loaded machine does not push
    // every kill before the first batch.
    testing::WaitUntil([&] { return QueryStarts() > starts_before || Ended(pid); });
    // The kill lands at a random instant of the run: this wait is the
    // randomised moment, not a synchronisation.
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    kill(pid, SIGKILL);
    int rc = Wait(pid);
    // A batch planned but not committed: the kill landed between the offset
    // log and the commit log, where exactly-once is hardest.
    if (rc == 128 + SIGKILL && latest_id("ckpt/offsets") > latest_id("ckpt/commits")) ++kills_mid_batch;
    if (rc == 128 + SIGKILL) ++kills;
    else if (rc == 0) ++completed;
    else {
      ADD_FAILURE() << "run ended with " << rc << "\n" << ReadFile(Path("runs.log"));
      return;
    }
  }
  int last = RunToEnd();
  if (last != 0) {
    ADD_FAILURE() << "final run ended with " << last << "\n" << ReadFile(Path("runs.log"));
    return;
  }
  std::printf("seed %u: %d kills (%d inside a batch), %d runs finished before their kill, %d input files, %zu rows\n",
              seed, kills, kills_mid_batch, completed, file, expected_.size());
  EXPECT_GE(kills_mid_batch, wanted_kills / 10) << "too few kills landed inside a batch to prove much";
  EXPECT_EQ(CommittedRows(), Expected()) << "seed " << seed;
}

}  // namespace
}  // namespace sluice
