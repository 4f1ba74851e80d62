// Kafka pipelines through the real `sluice` binary against
// tools/kafka-mock-cluster (librdkafka's mock cluster in its own process,
// served over TCP), with kcat as the outside producer and consumer:
//   - pipelines/kafka-etl.toml: JSON events -> filter/project -> windowed count
//     -> Kafka, exact records read back;
//   - Kafka -> (stateless) -> Kafka crash tests: kill -9 at seeded random
//     instants (at_least_once and exactly_once), the sink's and executor's
//     named crash points (exactly_once), and asynchronous progress tracking;
//   - tools/kafka-eos-check run against the mock with few kills.
//
// What the mock cannot show: it does not implement the broker side of
// transactions, so a read_committed consumer also sees records of aborted
// transactions and of transactions left open by a killed producer. The
// exactly_once tests therefore compute what a read_committed consumer of a
// real broker would see (ReadCommittedViewOnARealBroker): every run of
// `sluice` runs alone, so the records that appeared while it ran are its own;
// each record is mapped to its batch through the offset log (the output
// value names the input partition and offset); and a run's attempt of a batch
// counts as committed when the sink's commit file, read right after the run
// ended, says the batch committed ("committedBatchId" is written only after
// commit_transaction returned, plugins/kafka-sink/exactly_once_writer.cpp).
// This is the same rule the sink itself applies on a broker that shows
// aborted transactions. Its one blind spot, shared with the sink: a kill after
// the broker committed a transaction and before the sink recorded it. On the
// mock the sink then writes the batch again and the test counts that attempt
// as uncommitted, which is what a real broker would have hidden only if the
// commit had not reached it; on a real broker the sink learns the truth from
// the markers instead, which tools/kafka-eos-check checks there.
//
// Settle: a killed run's last requests may still be unread in the mock's
// sockets when waitpid returns. The mock serves all connections from one
// thread, which reads those bytes before it answers kcat's later requests
// (kcat's connection is opened after the kill), so the end offsets kcat
// reports after a kill include everything the killed run managed to send.
//
// SLUICE_CRASH_SEED (default 20261125) and SLUICE_CRASH_KILLS (default 30)
// replay or lengthen the random runs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::ReadLines;
using testing::RunShell;
using testing::TempDir;
using testing::WriteFile;

const std::string kMockClusterBin = std::string(SLUICE_TEST_BINARY_DIR) + "/tools/kafka-mock-cluster-src/kafka-mock-cluster";
const std::string kEosCheckBin = std::string(SLUICE_TEST_BINARY_DIR) + "/tools/kafka-eos-check-src/kafka-eos-check";

// tools/kafka-mock-cluster as a child process: up from construction until
// destruction (closing its stdin stops it, so a crashed test leaks nothing).
class MockClusterProcess {
 public:
  explicit MockClusterProcess(const std::vector<std::string>& topics) {
    int to_child[2], from_child[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0 || ::pipe2(from_child, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(to_child[0], STDIN_FILENO);
      ::dup2(from_child[1], STDOUT_FILENO);
      std::vector<std::string> args = {kMockClusterBin, "--until-stdin-closes"};
      for (const auto& topic : topics) args.insert(args.end(), {"--topic", topic});
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    stdin_ = to_child[1];
    std::string line;
    char c;
    while (::read(from_child[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(from_child[0]);
    const std::string prefix = "bootstrap.servers=";
    if (line.rfind(prefix, 0) == 0) bootstrap_ = line.substr(prefix.size());
  }
  ~MockClusterProcess() {
    if (stdin_ >= 0) ::close(stdin_);
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }
  // Empty when the cluster did not start (the binary is built by the
  // kafka-mock-cluster target).
  const std::string& bootstrap() const { return bootstrap_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::string bootstrap_;
};

#define ASSERT_CLUSTER_UP(cluster)                                                                 \
  ASSERT_FALSE((cluster).bootstrap().empty())                                                      \
      << kMockClusterBin << " did not start; build it: ninja -C build kafka-mock-cluster"

// Produces "key|value" lines with kcat (to `partition` when >= 0).
void KcatProduce(const std::string& bootstrap, const std::string& topic, const std::vector<std::string>& lines,
                 const std::string& scratch_file, int partition = -1) {
  std::string body;
  for (const auto& line : lines) body += line + "\n";
  WriteFile(scratch_file, body);
  auto result = RunShell("kcat -b " + bootstrap + " -t " + topic + " -P -K '|' " +
                         (partition >= 0 ? "-p " + std::to_string(partition) + " " : "") + "-l " + scratch_file);
  ASSERT_EQ(result.exit_code, 0) << result.err;
}

// Every record of `topic` as kcat prints it with `format`, one per line.
std::vector<std::string> KcatRead(const std::string& bootstrap, const std::string& topic, const std::string& format) {
  auto result = RunShell("kcat -b " + bootstrap + " -t " + topic +
                         " -X isolation.level=read_committed -C -e -o beginning -q -f '" + format + "'");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::vector<std::string> lines;
  std::stringstream text(result.out);
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> Sorted(std::vector<std::string> values) {
  std::sort(values.begin(), values.end());
  return values;
}

// Names of the numbered entries of a checkpoint log directory, ascending.
std::vector<int64_t> LogEntries(const std::string& dir) {
  std::vector<int64_t> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.empty() && std::all_of(name.begin(), name.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      ids.push_back(std::stoll(name));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// ---------------------------------------------------------------------------
// pipelines/kafka-etl.toml

// The file as shipped, with its two bootstrap lines pointed at `bootstrap`.
std::string EtlPipelineFor(const std::string& bootstrap) {
  std::string toml = ReadFile(std::string(SLUICE_TEST_SOURCE_DIR) + "/pipelines/kafka-etl.toml");
  const std::string shipped = "\"kafka.bootstrap.servers\" = \"localhost:9092\"";
  int replaced = 0;
  for (size_t at; (at = toml.find(shipped)) != std::string::npos; ++replaced)
    toml.replace(at, shipped.size(), "\"kafka.bootstrap.servers\" = \"" + bootstrap + "\"");
  EXPECT_EQ(replaced, 2) << "the source and the sink each name the bootstrap servers once";
  return toml;
}

TEST(KafkaEtlPipeline, CountsPurchasesPerUserMinuteAndWritesEachClosedWindowOnce) {
  MockClusterProcess cluster({"events:3", "event-counts:2"});
  ASSERT_CLUSTER_UP(cluster);
  TempDir dir;
  fs::create_directories(dir / "pipelines");
  WriteFile(dir / "pipelines/kafka-etl.toml", EtlPipelineFor(cluster.bootstrap()));

  // First run: two users in minute 12:00, bo in 12:01, ana in 12:03; a view,
  // a refund-like zero amount and a malformed record are filtered out.
  KcatProduce(cluster.bootstrap(), "events",
              {
                  R"(e1|{"user":"ana","action":"purchase","amount":5.25,"ts":"2024-05-01 12:00:05"})",
                  R"(e2|{"user":"ana","action":"view","amount":0,"ts":"2024-05-01 12:00:10"})",
                  R"(e3|{"user":"bo","action":"purchase","amount":3.5,"ts":"2024-05-01 12:00:20"})",
                  R"(e4|{"user":"ana","action":"purchase","amount":7.25,"ts":"2024-05-01 12:00:59"})",
                  R"(e5|not json)",
                  R"(e6|{"user":"bo","action":"purchase","amount":1,"ts":"2024-05-01 12:01:30"})",
                  R"(e7|{"user":"bo","action":"purchase","amount":0,"ts":"2024-05-01 12:01:40"})",
                  R"(e8|{"user":"ana","action":"purchase","amount":2,"ts":"2024-05-01 12:03:00"})",
              },
              dir / "events-1.txt");
  auto run = testing::RunSluice({"run", dir / "pipelines/kafka-etl.toml"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // Watermark 12:02:30: minutes 12:00 and 12:01 closed, 12:03 still open.
  const std::vector<std::string> after_first_run = {
      R"(ana@2024-05-01 12:00:00|{"user":"ana","window_start":"2024-05-01 12:00:00","window_end":"2024-05-01 12:01:00","purchases":2,"amount_cents":1250})",
      R"(bo@2024-05-01 12:00:00|{"user":"bo","window_start":"2024-05-01 12:00:00","window_end":"2024-05-01 12:01:00","purchases":1,"amount_cents":350})",
      R"(bo@2024-05-01 12:01:00|{"user":"bo","window_start":"2024-05-01 12:01:00","window_end":"2024-05-01 12:02:00","purchases":1,"amount_cents":100})",
  };
  EXPECT_EQ(Sorted(KcatRead(cluster.bootstrap(), "event-counts", "%k|%s\\n")), Sorted(after_first_run));

  // Second run, restarted from the checkpoint: a late purchase for 12:00
  // (before the watermark) is dropped; ana's 12:03 gets a second purchase;
  // cy at 12:05 moves the watermark to 12:04:30, closing 12:03.
  KcatProduce(cluster.bootstrap(), "events",
              {
                  R"(e9|{"user":"bo","action":"purchase","amount":9,"ts":"2024-05-01 12:00:30"})",
                  R"(e10|{"user":"ana","action":"purchase","amount":0.5,"ts":"2024-05-01 12:03:20"})",
                  R"(e11|{"user":"cy","action":"purchase","amount":4,"ts":"2024-05-01 12:05:00"})",
              },
              dir / "events-2.txt");
  run = testing::RunSluice({"run", dir / "pipelines/kafka-etl.toml"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::vector<std::string> expected = after_first_run;
  expected.push_back(
      R"(ana@2024-05-01 12:03:00|{"user":"ana","window_start":"2024-05-01 12:03:00","window_end":"2024-05-01 12:04:00","purchases":2,"amount_cents":250})");
  EXPECT_EQ(Sorted(KcatRead(cluster.bootstrap(), "event-counts", "%k|%s\\n")), Sorted(expected));

  const std::string progress = ReadFile(dir / "pipelines/checkpoint/kafka-etl/progress.jsonl");
  EXPECT_NE(progress.find("\"numRowsDroppedByWatermark\":1"), std::string::npos) << progress;
}

// ---------------------------------------------------------------------------
// Kafka -> Kafka relay, killed and restarted

constexpr const char* kInputTopic = "numbers";
constexpr const char* kOutputTopic = "relayed";
constexpr const char* kMarkerTopic = "relayed-markers";

// A record of the output or marker topic as the mock holds it.
struct TopicRecord {
  std::string topic;
  int partition = 0;
  int64_t offset = 0;
  std::string value;
};

// One `sluice run`: how it ended, where each output and marker partition
// ended after it (so the records below those ends and above the previous
// run's are its own), and what the sink's commit file said right after it.
struct RunRecord {
  int exit_code = 0;  // 128 + signal when killed
  std::map<std::pair<std::string, int>, int64_t> ends_after;
  std::optional<int64_t> sink_committed_through;
};

class KafkaRelayTest : public ::testing::Test {
 protected:
  KafkaRelayTest() : cluster_({std::string(kInputTopic) + ":3", std::string(kOutputTopic) + ":2",
                               std::string(kMarkerTopic) + ":1"}) {}

  std::string Path(const std::string& rel) { return dir_ / rel; }

  void WritePipeline(const std::string& guarantee, const std::string& sink_extra = "",
                     int max_offsets_per_trigger = 50) {
    guarantee_ = guarantee;
    WriteFile(Path("relay.toml"), R"([pipeline]
name = "kafka-relay"
trigger = "available_now"
checkpoint = "checkpoint"
threads = 2
# every batch's offsets stay readable: the test maps records to batches
min_batches_to_retain = 1000000

[sources.numbers]
type = "kafka"
"kafka.bootstrap.servers" = ")" + cluster_.bootstrap() + R"("
subscribe = ")" + kInputTopic + R"("
startingOffsets = "earliest"
maxOffsetsPerTrigger = )" + std::to_string(max_offsets_per_trigger) + R"(

[[steps]]
name = "tagged"
input = "numbers"
select = ["CAST(key AS STRING) AS key",
          "concat(CAST(value AS STRING), ' ', CAST(partition AS STRING), ':', CAST(offset AS STRING)) AS value"]

[sinks.out]
type = "kafka"
input = "tagged"
"kafka.bootstrap.servers" = ")" + cluster_.bootstrap() + R"("
topic = ")" + kOutputTopic + R"("
exactly_once_marker_topic = ")" + kMarkerTopic + R"("
guarantee = ")" + guarantee + "\"\n" + sink_extra);
  }

  // Produces `count` numbered records "r000042" (keys "k42") with kcat.
  void AddInput(int count, int partition = -1) {
    std::vector<std::string> lines;
    for (int i = 0; i < count; ++i, ++next_number_) {
      char value[16];
      std::snprintf(value, sizeof value, "r%06d", next_number_);
      lines.push_back("k" + std::to_string(next_number_) + "|" + value);
    }
    KcatProduce(cluster_.bootstrap(), kInputTopic, lines, Path("input.txt"), partition);
  }

  // What every output record should be: "r000042 <partition>:<offset>" of
  // its input record, read back from the input topic.
  std::vector<std::string> ExpectedOutput() {
    auto lines = KcatRead(cluster_.bootstrap(), kInputTopic, "%s %p:%o\\n");
    EXPECT_EQ(lines.size(), static_cast<size_t>(next_number_));
    return Sorted(lines);
  }

  pid_t Start(const std::string& crash_at = "") {
    const std::string pipeline = Path("relay.toml"), log = Path("runs.log");
    std::fflush(nullptr);  // or the child's freopen writes our buffered output again
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (!crash_at.empty()) ::setenv("SLUICE_CRASH_AT", crash_at.c_str(), 1);
      if (!std::freopen(log.c_str(), "a", stderr)) ::_exit(126);
      if (!std::freopen("/dev/null", "w", stdout)) ::_exit(126);
      ::execl(SLUICE_TEST_SLUICE_BIN, "sluice", "--plugin-dir", SLUICE_TEST_PLUGIN_DIR, "--log-level", "warn", "run",
              pipeline.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    return pid;
  }

  static int Wait(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // Every record now in the output and marker topics.
  std::vector<TopicRecord> ReadOutputAndMarkers() {
    std::vector<TopicRecord> records;
    for (const char* topic : {kOutputTopic, kMarkerTopic})
      for (const std::string& line : KcatRead(cluster_.bootstrap(), topic, "%p %o %s\\n")) {
        TopicRecord record;
        record.topic = topic;
        std::istringstream fields(line);
        fields >> record.partition >> record.offset;
        std::getline(fields >> std::ws, record.value);
        records.push_back(record);
      }
    return records;
  }

  // "committedBatchId" of the sink's commit file, absent when null or missing.
  std::optional<int64_t> SinkCommittedThrough() {
    static const std::regex committed(R"re("committedBatchId":(-?\d+))re");
    std::smatch match;
    const std::string text = ReadFile(Path("checkpoint/sinks/out/kafka-sink-commits.json"));
    if (std::regex_search(text, match, committed)) return std::stoll(match[1]);
    return std::nullopt;
  }

  // Records the run that just ended (or was killed) with `exit_code`.
  void RecordRun(int exit_code) {
    RunRecord run;
    run.exit_code = exit_code;
    std::string query;
    for (const auto& [topic, partitions] : {std::pair{kOutputTopic, 2}, std::pair{kMarkerTopic, 1}})
      for (int p = 0; p < partitions; ++p) query += std::string(" -t ") + topic + ":" + std::to_string(p) + ":-1";
    // kcat -Q with time -1 prints "<topic> [<partition>] offset <end offset>".
    auto result = RunShell("kcat -b " + cluster_.bootstrap() + " -Q" + query);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    static const std::regex end_line(R"re((\S+) \[(\d+)\] offset (\d+))re");
    for (std::sregex_iterator it(result.out.begin(), result.out.end(), end_line), end; it != end; ++it)
      run.ends_after[{(*it)[1], std::stoi((*it)[2])}] = std::stoll((*it)[3]);
    EXPECT_EQ(run.ends_after.size(), 3u) << result.out;
    run.sink_committed_through = SinkCommittedThrough();
    runs_.push_back(std::move(run));
  }

  // The index in runs_ of the run that wrote `record`.
  size_t RunOf(const TopicRecord& record) const {
    size_t run = 0;
    while (run < runs_.size() && record.offset >= runs_[run].ends_after.at({record.topic, record.partition})) ++run;
    EXPECT_LT(run, runs_.size()) << record.topic << " record '" << record.value << "' was written after the last run";
    return run;
  }

  int RunToEnd(const std::string& crash_at = "") {
    const int exit_code = Wait(Start(crash_at));
    RecordRun(exit_code);
    return exit_code;
  }

  // Per batch id, the end offset (exclusive) of each input partition, from
  // the offset log.
  std::map<int64_t, std::map<int, int64_t>> BatchEnds() {
    static const std::regex partition_end(R"re("(\d+)":(\d+))re");
    std::map<int64_t, std::map<int, int64_t>> ends;
    for (int64_t batch : LogEntries(Path("checkpoint/offsets"))) {
      const auto lines = ReadLines(Path("checkpoint/offsets/" + std::to_string(batch)));
      EXPECT_EQ(lines.size(), 3u) << "offsets/" << batch;
      if (lines.size() < 3) continue;
      for (std::sregex_iterator it(lines[2].begin(), lines[2].end(), partition_end), end; it != end; ++it)
        ends[batch][std::stoi((*it)[1])] = std::stoll((*it)[2]);
    }
    return ends;
  }

  // The batch an output value ("r000042 <partition>:<offset>") belongs to.
  static std::optional<int64_t> BatchOfOutput(const std::map<int64_t, std::map<int, int64_t>>& ends,
                                              const std::string& value) {
    int partition = 0;
    long long offset = 0;
    if (std::sscanf(value.c_str(), "r%*d %d:%lld", &partition, &offset) != 2) return std::nullopt;
    for (const auto& [batch, partition_ends] : ends)
      if (auto it = partition_ends.find(partition); it != partition_ends.end() && offset < it->second) return batch;
    return std::nullopt;
  }

  static std::optional<int64_t> BatchOfMarker(const std::string& value) {
    static const std::regex marker(R"re(^\{"queryId":"[^"]*","sink":"out","batchId":(\d+)\}$)re");
    std::smatch match;
    if (std::regex_match(value, match, marker)) return std::stoll(match[1]);
    return std::nullopt;
  }

  struct ReadCommittedView {
    std::vector<std::string> output;   // values of the output topic, sorted
    std::vector<int64_t> marker_batches;  // batch ids of markers, sorted
    int64_t hidden_records = 0;       // output records of attempts that never committed
  };

  // See the top of this file: the records of each run's attempts that the
  // sink's commit file shows committed; probes (always aborted) never count.
  ReadCommittedView ReadCommittedViewOnARealBroker() {
    const auto ends = BatchEnds();
    ReadCommittedView view;
    for (const TopicRecord& record : ReadOutputAndMarkers()) {
      const size_t run = RunOf(record);
      if (run >= runs_.size()) continue;
      const bool is_marker = record.topic == kMarkerTopic;
      if (is_marker && record.value.find("\"probe\"") != std::string::npos) continue;
      const auto batch = is_marker ? BatchOfMarker(record.value) : BatchOfOutput(ends, record.value);
      EXPECT_TRUE(batch.has_value()) << record.topic << " record '" << record.value << "' belongs to no batch";
      if (!batch) continue;
      const auto& committed_through = runs_[run].sink_committed_through;
      if (!committed_through || *batch > *committed_through) {
        view.hidden_records += !is_marker;
        continue;
      }
      if (is_marker) view.marker_batches.push_back(*batch);
      else view.output.push_back(record.value);
    }
    std::sort(view.output.begin(), view.output.end());
    std::sort(view.marker_batches.begin(), view.marker_batches.end());
    return view;
  }

  // Every batch the offset log planned, each once.
  std::vector<int64_t> AllBatches() { return LogEntries(Path("checkpoint/offsets")); }

  void RandomKills(int default_kills);

  TempDir dir_;
  MockClusterProcess cluster_;
  std::string guarantee_;
  int next_number_ = 0;
  std::vector<RunRecord> runs_;
};

void KafkaRelayTest::RandomKills(int default_kills) {
  const char* seed_env = std::getenv("SLUICE_CRASH_SEED");
  const char* kills_env = std::getenv("SLUICE_CRASH_KILLS");
  const unsigned seed = seed_env ? static_cast<unsigned>(std::strtoul(seed_env, nullptr, 10)) : 20261125u;
  const int wanted_kills = kills_env ? std::atoi(kills_env) : default_kills;
  std::mt19937 rng(seed);
  // A run starts, connects and initialises its producer in about 100-300 ms,
  // then writes one batch of at most 50 records every few milliseconds.
  std::uniform_int_distribution<int> delay_us(0, 450000);
  std::uniform_int_distribution<int> records(20, 160);
  int kills = 0, finished = 0, kills_mid_batch = 0, kills_in_transaction = 0;
  while (kills < wanted_kills) {
    AddInput(records(rng));
    const pid_t pid = Start();
    // The randomised kill instant: not a synchronisation.
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ::kill(pid, SIGKILL);
    const int exit_code = Wait(pid);
    RecordRun(exit_code);
    const auto offsets = LogEntries(Path("checkpoint/offsets")), commits = LogEntries(Path("checkpoint/commits"));
    if (exit_code == 128 + SIGKILL) {
      ++kills;
      // Planned and not committed: the kill landed inside a batch.
      if (!offsets.empty() && (commits.empty() || offsets.back() > commits.back())) ++kills_mid_batch;
      // The sink had begun (or was about to begin) a transaction.
      if (guarantee_ == "exactly_once" && std::regex_search(ReadFile(Path("checkpoint/sinks/out/kafka-sink-commits.json")),
                                                            std::regex(R"re("attemptingBatchId":\d)re")))
        ++kills_in_transaction;
    } else if (exit_code == 0) {
      ++finished;
    } else {
      FAIL() << "run ended with " << exit_code << "\n" << ReadFile(Path("runs.log"));
    }
  }
  const int last = RunToEnd();
  ASSERT_EQ(last, 0) << ReadFile(Path("runs.log"));
  std::printf("%s, seed %u: %d kills (%d inside a batch, %d inside a Kafka transaction), %d runs finished before "
              "their kill, %d records, %zu batches\n",
              guarantee_.c_str(), seed, kills, kills_mid_batch, kills_in_transaction, finished, next_number_,
              AllBatches().size());
  EXPECT_GE(kills_mid_batch, wanted_kills / 10) << "too few kills landed inside a batch to prove much";
}

TEST_F(KafkaRelayTest, AtLeastOnceRandomKillsLoseNoRecord) {
  ASSERT_CLUSTER_UP(cluster_);
  WritePipeline("at_least_once");
  RandomKills(30);
  if (HasFatalFailure()) return;
  // Every expected record is there, nothing else is; replays may repeat some.
  std::vector<std::string> output;
  for (const auto& line : KcatRead(cluster_.bootstrap(), kOutputTopic, "%s\\n")) output.push_back(line);
  std::vector<std::string> distinct = Sorted(output);
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  EXPECT_EQ(distinct, ExpectedOutput());
  std::printf("at_least_once: %zu records written for %d expected (%zu repeated by replays)\n", output.size(),
              next_number_, output.size() - distinct.size());
}

TEST_F(KafkaRelayTest, ExactlyOnceRandomKillsShowEveryRecordOnceToReadCommittedConsumers) {
  ASSERT_CLUSTER_UP(cluster_);
  WritePipeline("exactly_once");
  RandomKills(30);
  if (HasFatalFailure()) return;
  const ReadCommittedView view = ReadCommittedViewOnARealBroker();
  EXPECT_EQ(view.output, ExpectedOutput());
  EXPECT_EQ(view.marker_batches, AllBatches()) << "one committed marker per batch";
  // The mock shows the uncommitted attempts too: what a real broker hides.
  const auto raw = KcatRead(cluster_.bootstrap(), kOutputTopic, "%s\\n");
  EXPECT_EQ(raw.size(), view.output.size() + static_cast<size_t>(view.hidden_records));
  std::printf("exactly_once: the mock holds %zu output records; a read_committed consumer of a real broker sees %zu "
              "(%lld in transactions that never committed)\n",
              raw.size(), view.output.size(), static_cast<long long>(view.hidden_records));
}

// Each point stops the second batch of a run; the restart runs to the end.
// The points after the Kafka commit leave the batch committed in Kafka and
// not in the commit log: the restart must skip it. The others leave it
// uncommitted: the restart must write it whole.
TEST_F(KafkaRelayTest, ExactlyOnceEveryCrashPointThroughTheBinaryRecoversExactlyOnce) {
  ASSERT_CLUSTER_UP(cluster_);
  WritePipeline("exactly_once");
  struct Point {
    std::string name;
    bool kafka_committed;
  };
  const std::vector<Point> points = {{"kafka-sink:before-begin", false},
                                     {"kafka-sink:mid-produce", false},
                                     {"kafka-sink:before-commit", false},
                                     {"kafka-sink:after-commit", true},
                                     {"executor:after-sinks", true}};
  for (const Point& point : points) {
    SCOPED_TRACE(point.name);
    AddInput(150);  // three batches of at most 50
    const auto committed_before = LogEntries(Path("checkpoint/commits"));
    const int64_t crashed_batch = (committed_before.empty() ? -1 : committed_before.back()) + 2;
    ASSERT_EQ(RunToEnd(point.name + "@2"), 128 + SIGKILL) << "the crash point was never reached\n"
                                                          << ReadFile(Path("runs.log"));
    EXPECT_EQ(LogEntries(Path("checkpoint/commits")).back(), crashed_batch - 1);
    EXPECT_EQ(LogEntries(Path("checkpoint/offsets")).back(), crashed_batch);
    EXPECT_EQ(runs_.back().sink_committed_through, point.kafka_committed ? crashed_batch : crashed_batch - 1);
    ASSERT_EQ(RunToEnd(), 0) << ReadFile(Path("runs.log"));
    // The restart wrote the crashed batch only if Kafka had not committed it.
    const auto ends = BatchEnds();
    int rows_of_crashed_batch_rewritten = 0;
    for (const TopicRecord& record : ReadOutputAndMarkers())
      rows_of_crashed_batch_rewritten += record.topic == kOutputTopic && RunOf(record) == runs_.size() - 1 &&
                                         BatchOfOutput(ends, record.value) == crashed_batch;
    const std::vector<std::string> expected_output = ExpectedOutput();
    int expected_rows = 0;
    for (const auto& value : expected_output) expected_rows += BatchOfOutput(ends, value) == crashed_batch;
    EXPECT_EQ(rows_of_crashed_batch_rewritten, point.kafka_committed ? 0 : expected_rows);
    EXPECT_GT(expected_rows, 0);

    const ReadCommittedView view = ReadCommittedViewOnARealBroker();
    EXPECT_EQ(view.output, expected_output);
    EXPECT_EQ(view.marker_batches, AllBatches());
  }
}

// Asynchronous progress tracking (at_least_once only): batches do not wait
// for the offset and commit logs, which a background thread writes at most
// once per interval; a kill -9 may then replay several batches, never lose one.
TEST_F(KafkaRelayTest, AsyncProgressTrackingWritesFewerLogEntriesAndLosesNothingAfterKills) {
  ASSERT_CLUSTER_UP(cluster_);
  WritePipeline("at_least_once",
                "asyncProgressTrackingEnabled = true\nasyncProgressTrackingCheckpointIntervalMs = 60000\n", 20);
  // One partition's worth: 200 records in batches of 20 is exactly 10 batches.
  AddInput(200, 0);
  ASSERT_EQ(RunToEnd(), 0) << ReadFile(Path("runs.log"));
  const auto progress_lines = ReadLines(Path("checkpoint/progress.jsonl"));
  ASSERT_EQ(progress_lines.size(), 10u);
  // The writer writes the first batch it finds at once; the next ones wait
  // for the interval and only the newest is kept; stopping writes the last.
  // Which batch it finds first depends on when its thread wakes (batch 0 on
  // an idle machine, a later one under load), never on more than one.
  const auto offsets = LogEntries(Path("checkpoint/offsets"));
  ASSERT_EQ(offsets.size(), 2u) << ::testing::PrintToString(offsets);
  EXPECT_LT(offsets.front(), 9);
  EXPECT_EQ(offsets.back(), 9);
  EXPECT_EQ(LogEntries(Path("checkpoint/commits")), offsets);

  std::mt19937 rng(20261125u);
  std::uniform_int_distribution<int> delay_us(0, 450000);
  for (int kill_round = 0; kill_round < 5; ++kill_round) {
    AddInput(100, kill_round % 3);
    const pid_t pid = Start();
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));  // the randomised kill instant
    ::kill(pid, SIGKILL);
    const int exit_code = Wait(pid);
    ASSERT_TRUE(exit_code == 0 || exit_code == 128 + SIGKILL) << exit_code << "\n" << ReadFile(Path("runs.log"));
  }
  ASSERT_EQ(RunToEnd(), 0) << ReadFile(Path("runs.log"));
  std::vector<std::string> distinct = Sorted(KcatRead(cluster_.bootstrap(), kOutputTopic, "%s\\n"));
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  EXPECT_EQ(distinct, ExpectedOutput());
}

// ---------------------------------------------------------------------------
// tools/kafka-eos-check against the mock
//
// The mock shows read_committed consumers the records of aborted and open
// transactions, so the tool's raw count there finds duplicates that a real
// broker would hide. With --broker-shows-aborted-transactions it applies the
// same correction as ReadCommittedViewOnARealBroker above and must find
// nothing missing or duplicated; without it, only `missing 0` is meaningful.

TEST(KafkaEosCheckTool, OnTheMockWithTheCorrectionNothingIsMissingOrDuplicated) {
  MockClusterProcess cluster({});
  ASSERT_CLUSTER_UP(cluster);
  TempDir dir;
  auto result = RunShell(kEosCheckBin + " --bootstrap-servers " + cluster.bootstrap() +
                         " --kills 5 --records 600 --seed 7 --create-topics auto --max-kill-delay-ms 400 --broker-shows-aborted-transactions --sluice " +
                         SLUICE_TEST_SLUICE_BIN + " --plugin-dir " + SLUICE_TEST_PLUGIN_DIR + " --work-dir " +
                         dir.path());
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("expected 600, seen 600, missing 0, duplicated 0\n"), std::string::npos)
      << result.out << result.err;
  EXPECT_NE(result.out.find("broker hides aborted transactions from read_committed consumers: no"),
            std::string::npos)
      << result.out;
}

TEST(KafkaEosCheckTool, OnTheMockWithoutTheCorrectionOnlyMissingZeroIsMeaningful) {
  MockClusterProcess cluster({});
  ASSERT_CLUSTER_UP(cluster);
  TempDir dir;
  auto result = RunShell(kEosCheckBin + " --bootstrap-servers " + cluster.bootstrap() +
                         " --kills 5 --records 600 --seed 7 --create-topics auto --max-kill-delay-ms 400 --sluice " + SLUICE_TEST_SLUICE_BIN + " --plugin-dir " +
                         SLUICE_TEST_PLUGIN_DIR + " --work-dir " + dir.path());
  EXPECT_NE(result.out.find("expected 600, seen "), std::string::npos) << result.out << result.err;
  EXPECT_NE(result.out.find(", missing 0, duplicated "), std::string::npos) << result.out << result.err;
  // The tool names the broker's shortcoming instead of claiming a proof.
  EXPECT_NE(result.err.find("--broker-shows-aborted-transactions"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace sluice
