// Tests of the kafka sink through its real shared library against the
// librdkafka mock cluster (a Kafka-protocol broker in this process, served
// over TCP): records read back with kcat (keys, partitions, per-row topics,
// headers), the exactly-once path with its markers and skipped replays,
// crash points in a child process killed by SIGKILL, and validation of
// pass-through options.
//
// What the mock cannot show: it does not filter aborted or open transactions
// for read_committed consumers. The crash tests therefore compute what a
// read_committed consumer of a real broker would see (see
// ReadCommittedViewOnARealBroker); the state machine's behaviour under
// fencing and abortable errors is unit-tested against a double in
// exactly_once_writer_test.cpp.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

using testing::MakeBatch;
using testing::MakeSink;
using testing::RunShell;
using testing::TempDir;

// The mock cluster: three brokers on loopback, up while the object lives.
class MockCluster {
 public:
  MockCluster() {
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "2", error, sizeof error);
    handle_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    cluster_ = rd_kafka_mock_cluster_new(handle_, 3);
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(handle_);
  }
  void CreateTopic(const std::string& topic, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  const std::string& bootstrap() const { return bootstrap_; }

 private:
  rd_kafka_t* handle_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  std::string bootstrap_;
};

// Every record of `topic`, as kcat prints it with `format` (one per line).
std::vector<std::string> KcatRead(const std::string& bootstrap, const std::string& topic, const std::string& format) {
  auto result = RunShell("kcat -b " + bootstrap + " -t " + topic + " -C -e -o beginning -q -f '" + format + "'");
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::vector<std::string> lines;
  std::stringstream text(result.out);
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  return lines;
}

std::vector<std::string> Sorted(std::vector<std::string> lines) {
  std::sort(lines.begin(), lines.end());
  return lines;
}

BatchData MakeBatchData(int64_t batch_id, std::vector<RecordBatchPtr> batches) {
  BatchData data;
  data.batch_id = batch_id;
  data.schema = batches.empty() ? nullptr : batches.front()->schema();
  data.batches = std::move(batches);
  return data;
}

std::shared_ptr<Sink> NewSink(const std::string& bootstrap, const std::string& ddl,
                              std::map<std::string, OptionValue> options, const std::string& checkpoint_dir = "") {
  options["kafka.bootstrap.servers"] = bootstrap;
  auto sink = MakeSink("kafka", options, ParseSchemaDdl(ddl).value(), checkpoint_dir);
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  return sink.ok() ? *sink : nullptr;
}

TEST(KafkaSinkTest, AtLeastOnceWritesKeysPartitionsTopicsAndHeadersThatKcatReads) {
  MockCluster cluster;
  cluster.CreateTopic("out", 3);
  cluster.CreateTopic("other", 1);
  const char* ddl = "key STRING, value STRING, partition BIGINT, topic STRING, headers STRING";
  auto sink = NewSink(cluster.bootstrap(), ddl, {{"topic", std::string("out")}});
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->guarantee(), DeliveryGuarantee::kAtLeastOnce);
  EXPECT_EQ(sink->Description(), "KafkaSink[topic=out, at-least-once]");
  auto batch = MakeBatch(ddl, {
                                  {"k1", "v1", "2", "null", R"([{"key":"h1","value":"aGk="},{"key":"h2","value":null}])"},
                                  {"null", "v2", "0", "null", "null"},
                                  {"k3", "v3", "0", "other", "[]"},
                                  {"k4", "v4", "null", "other", "null"},
                              });
  Status st = sink->AddBatch(MakeBatchData(0, {batch}));
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(Sorted(KcatRead(cluster.bootstrap(), "out", "%k|%s|%p\\n")), Sorted({"k1|v1|2", "|v2|0"}));
  EXPECT_EQ(Sorted(KcatRead(cluster.bootstrap(), "other", "%k|%s|%p\\n")), Sorted({"k3|v3|0", "k4|v4|0"}));
  // Header h1 is "hi"; h2 has a null value, which kcat prints as NULL.
  const auto headers = KcatRead(cluster.bootstrap(), "out", "%k:%h\\n");
  EXPECT_NE(std::find(headers.begin(), headers.end(), "k1:h1=hi,h2=NULL"), headers.end())
      << ::testing::PrintToString(headers);
  ASSERT_TRUE(sink->Stop().ok());
}

TEST(KafkaSinkTest, AtLeastOnceFailedDeliveryFailsTheBatchNamingTopicAndPartition) {
  MockCluster cluster;
  cluster.CreateTopic("out", 1);
  const char* ddl = "value STRING, partition BIGINT";
  auto sink = NewSink(cluster.bootstrap(), ddl, {{"topic", std::string("out")}});
  ASSERT_TRUE(sink);
  Status st = sink->AddBatch(MakeBatchData(0, {MakeBatch(ddl, {{"fine", "0"}, {"nowhere", "5"}})}));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "kafka sink: batch 0: delivery to topic 'out' partition 5 failed: Local: Unknown partition");
}

TEST(KafkaSinkTest, BadHeadersAndOutOfRangePartitionFailTheBatchNamingTheRow) {
  MockCluster cluster;
  cluster.CreateTopic("out", 1);
  const char* ddl = "value STRING, partition BIGINT, headers STRING";
  auto sink = NewSink(cluster.bootstrap(), ddl, {{"topic", std::string("out")}});
  ASSERT_TRUE(sink);
  Status st = sink->AddBatch(MakeBatchData(0, {MakeBatch(ddl, {{"v", "null", R"([{"key":"h","value":"%%"}])"}})}));
  EXPECT_NE(st.message().find("row 0 of batch 0: headers: header \"h\" has a value that is not base64"),
            std::string::npos) << st.ToString();
  st = sink->AddBatch(MakeBatchData(1, {MakeBatch(ddl, {{"v", "-3", "null"}})}));
  EXPECT_NE(st.message().find("row 0 of batch 1 has partition -3"), std::string::npos) << st.ToString();
}

TEST(KafkaSinkTest, SchemaAndOptionsAreCheckedBeforeAnythingConnects) {
  const std::string nowhere = "127.0.0.1:1";
  // No topic option and no topic column.
  auto sink = MakeSink("kafka", {{"kafka.bootstrap.servers", nowhere}}, ParseSchemaDdl("value STRING").value());
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("set the `topic` option or give the input a 'topic' column"),
            std::string::npos) << sink.status().ToString();
  sink = MakeSink("kafka", {{"kafka.bootstrap.servers", nowhere}, {"topic", std::string("t")}},
                  ParseSchemaDdl("v STRING").value());
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("no 'value' column"), std::string::npos) << sink.status().ToString();
  sink = MakeSink("kafka", {{"kafka.bootstrap.servers", nowhere}, {"topic", std::string("t")}},
                  ParseSchemaDdl("value BIGINT").value());
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("column 'value' must be STRING or BINARY, not BIGINT"), std::string::npos)
      << sink.status().ToString();
  // A topic column is enough.
  EXPECT_TRUE(MakeSink("kafka", {{"kafka.bootstrap.servers", nowhere}},
                       ParseSchemaDdl("value BINARY, topic STRING").value()).ok());
}

TEST(KafkaSinkTest, ValidateReportsABadKafkaOptionWithLibrdkafkasMessage) {
  const Schema schema = ParseSchemaDdl("value STRING").value();
  auto sink = MakeSink("kafka", {{"kafka.bootstrap.servers", std::string("x:1")}, {"topic", std::string("t")},
                                 {"kafka.no.such.property", std::string("1")}}, schema);
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("option 'kafka.no.such.property': No such configuration property: "
                                         "\"no.such.property\""),
            std::string::npos) << sink.status().ToString();
  sink = MakeSink("kafka", {{"kafka.bootstrap.servers", std::string("x:1")}, {"topic", std::string("t")},
                            {"kafka.compression.type", std::string("zip")}}, schema);
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("option 'kafka.compression.type': Invalid value \"zip\" for "
                                         "configuration property \"compression.codec\""),
            std::string::npos)
      << sink.status().ToString();
  sink = MakeSink("kafka", {{"kafka.bootstrap.servers", std::string("x:1")}, {"topic", std::string("t")},
                            {"kafka.transactional.id", std::string("mine")}}, schema);
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("'kafka.transactional.id' is chosen by the sink"), std::string::npos);
  sink = MakeSink("kafka", {{"kafka.bootstrap.servers", std::string("x:1")}, {"topic", std::string("t")},
                            {"guarantee", std::string("exactly-twice")}}, schema);
  ASSERT_FALSE(sink.ok());
}

// ---------------------------------------------------------------------------
// exactly_once

const char* kRowsDdl = "key STRING, value STRING";

RecordBatchPtr RowsOfBatch(int64_t batch_id) {
  std::vector<std::vector<std::string>> rows;
  for (int row = 0; row < 4; ++row)
    rows.push_back({"k" + std::to_string(row), "b" + std::to_string(batch_id) + "-r" + std::to_string(row)});
  return MakeBatch(kRowsDdl, rows);
}

std::vector<std::string> ValuesOfBatches(std::initializer_list<int64_t> batch_ids) {
  std::vector<std::string> values;
  for (int64_t id : batch_ids)
    for (int row = 0; row < 4; ++row) values.push_back("b" + std::to_string(id) + "-r" + std::to_string(row));
  return Sorted(values);
}

std::map<std::string, OptionValue> ExactlyOnceOptions() {
  return {{"topic", std::string("out")}, {"guarantee", std::string("exactly_once")}};
}

std::string MarkerOf(int64_t batch_id) {
  return R"({"queryId":"test-query","sink":"kafka","batchId":)" + std::to_string(batch_id) + "}";
}

// Marker records, without the startup probes (always aborted, so hidden by a
// real broker).
std::vector<std::string> MarkerValues(const std::vector<std::string>& values) {
  std::vector<std::string> markers;
  for (const auto& value : values)
    if (value.find("\"probe\"") == std::string::npos) markers.push_back(value);
  return Sorted(markers);
}

TEST(KafkaSinkExactlyOnceTest, EachBatchInOneTransactionWithItsMarkerAndReplaysWriteNothing) {
  MockCluster cluster;
  cluster.CreateTopic("out", 2);
  TempDir checkpoint;
  auto sink = NewSink(cluster.bootstrap(), kRowsDdl, ExactlyOnceOptions(), checkpoint.path());
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->guarantee(), DeliveryGuarantee::kExactlyOnce);
  EXPECT_EQ(sink->Description(),
            "KafkaSink[topic=out, exactly-once for read_committed consumers, transactional.id=sluice-test-query-kafka]");
  for (int64_t id : {0, 1, 2}) {
    Status st = sink->AddBatch(MakeBatchData(id, {RowsOfBatch(id)}));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_EQ(Sorted(KcatRead(cluster.bootstrap(), "out", "%s\\n")), ValuesOfBatches({0, 1, 2}));
  EXPECT_EQ(MarkerValues(KcatRead(cluster.bootstrap(), "_sluice_commits", "%s\\n")),
            Sorted({MarkerOf(0), MarkerOf(1), MarkerOf(2)}));
  // Keys reach Kafka too.
  EXPECT_EQ(KcatRead(cluster.bootstrap(), "out", "%k\\n").size(), 12u);

  // The engine replays batch 1 (say, its commit log entry was lost): nothing new.
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {RowsOfBatch(1)})).ok());
  EXPECT_EQ(Sorted(KcatRead(cluster.bootstrap(), "out", "%s\\n")), ValuesOfBatches({0, 1, 2}));
  ASSERT_TRUE(sink->Stop().ok());

  // So does a restarted sink, which learns batch 2 from the marker topic.
  auto restarted = NewSink(cluster.bootstrap(), kRowsDdl, ExactlyOnceOptions(), checkpoint.path());
  ASSERT_TRUE(restarted->AddBatch(MakeBatchData(2, {RowsOfBatch(2)})).ok());
  ASSERT_TRUE(restarted->AddBatch(MakeBatchData(3, {RowsOfBatch(3)})).ok());
  EXPECT_EQ(Sorted(KcatRead(cluster.bootstrap(), "out", "%s\\n")), ValuesOfBatches({0, 1, 2, 3}));
}

// ---------------------------------------------------------------------------
// Crash points
//
// A crash point reads SLUICE_CRASH_AT once per process, so the child
// re-executes this binary running only KafkaSinkCrashChild, with the variable
// set. The child connects to this process's mock cluster over TCP, creates the
// sink as a (re)started query would, writes one batch and is killed at the
// armed point.

constexpr const char* kChildBootstrapVariable = "SLUICE_KAFKA_SINK_TEST_BOOTSTRAP";
constexpr const char* kChildCheckpointVariable = "SLUICE_KAFKA_SINK_TEST_CHECKPOINT";
constexpr const char* kChildBatchVariable = "SLUICE_KAFKA_SINK_TEST_BATCH";

TEST(KafkaSinkCrashChild, WritesOneBatchUntilTheArmedPointKillsIt) {
  const char* bootstrap = std::getenv(kChildBootstrapVariable);
  const char* checkpoint = std::getenv(kChildCheckpointVariable);
  const char* batch = std::getenv(kChildBatchVariable);
  if (!bootstrap || !checkpoint || !batch) GTEST_SKIP() << "runs only as the child of KafkaSinkCrashTest";
  auto sink = NewSink(bootstrap, kRowsDdl, ExactlyOnceOptions(), checkpoint);
  ASSERT_TRUE(sink);
  const int64_t id = std::stoll(batch);
  Status st = sink->AddBatch(MakeBatchData(id, {RowsOfBatch(id)}));
  ASSERT_TRUE(st.ok()) << st.ToString();
  // Reaching here means the armed point never fired; the parent says so.
}

struct ChildResult {
  bool killed_by_sigkill = false;
  std::string how_it_ended, output;
};

ChildResult RunCrashingChild(const std::string& crash_at, const std::string& bootstrap,
                             const std::string& checkpoint, int64_t batch_id, const std::string& output_path) {
  ChildResult result;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("SLUICE_CRASH_AT", crash_at.c_str(), 1);
    ::setenv(kChildBootstrapVariable, bootstrap.c_str(), 1);
    ::setenv(kChildCheckpointVariable, checkpoint.c_str(), 1);
    ::setenv(kChildBatchVariable, std::to_string(batch_id).c_str(), 1);
    ::unsetenv("GTEST_OUTPUT");
    const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out >= 0) {
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
    }
    ::execl("/proc/self/exe", "kafka_sink_test", "--gtest_filter=KafkaSinkCrashChild.*", "--gtest_color=no",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.killed_by_sigkill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  result.how_it_ended = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                            : "exited with code " + std::to_string(WEXITSTATUS(status));
  result.output = testing::ReadFile(output_path);
  return result;
}

// A record's place and value: "topic|partition|offset" -> value.
using RecordsByPosition = std::map<std::string, std::string>;

RecordsByPosition ReadAllRecords(const std::string& bootstrap) {
  RecordsByPosition records;
  for (const char* topic : {"out", "_sluice_commits"})
    for (const std::string& line : KcatRead(bootstrap, topic, "%t|%p|%o|%s\\n")) {
      const size_t value_at = line.find('|', line.find('|', line.find('|') + 1) + 1);
      records[line.substr(0, value_at)] = line.substr(value_at + 1);
    }
  return records;
}

// The records written since `before`, once the broker has settled: a killed
// child's last produce request may still be in the broker's socket buffer
// when waitpid returns, so wait until two reads agree.
RecordsByPosition NewRecordsSince(const std::string& bootstrap, const RecordsByPosition& before) {
  RecordsByPosition now = ReadAllRecords(bootstrap), previous;
  testing::WaitUntil([&] {
    previous = now;
    ::usleep(200 * 1000);
    now = ReadAllRecords(bootstrap);
    return now == previous;
  });
  RecordsByPosition added;
  for (const auto& [position, value] : now)
    if (!before.count(position)) added[position] = value;
  return added;
}

// One run of the sink and what it appended to the log.
struct Attempt {
  RecordsByPosition records;
  bool reached_kafka_commit = false;
};

// What a read_committed consumer of a real broker sees: the mock shows every
// record, so the test keeps only the records of attempts that reached their
// Kafka commit, known from where each one was stopped. Every attempt runs
// alone, so the records an attempt appended are exactly those that appeared
// between its start and its end. Within a committing attempt, the startup
// probe is an aborted transaction and is dropped as well.
std::map<std::string, std::vector<std::string>> ReadCommittedViewOnARealBroker(const std::vector<Attempt>& attempts) {
  std::map<std::string, std::vector<std::string>> view;  // topic -> values
  for (const Attempt& attempt : attempts) {
    if (!attempt.reached_kafka_commit) continue;
    for (const auto& [position, value] : attempt.records) {
      if (value.find("\"probe\"") != std::string::npos) continue;
      view[position.substr(0, position.find('|'))].push_back(value);
    }
  }
  for (auto& [topic, values] : view) values = Sorted(values);
  return view;
}

// Run 1 commits batch 0; run 2, a child, writes batch 1 and is killed at
// `crash_at`; run 3 restarts the sink, replays batch 1 as the engine would
// (it has no commit-log entry for it) and writes batch 2. Afterwards every
// batch must be in the committed view exactly once, and so must its marker.
void CheckCrashRecovery(const std::string& crash_at, bool child_reaches_kafka_commit, bool lose_checkpoint_cache) {
  MockCluster cluster;
  cluster.CreateTopic("out", 2);
  cluster.CreateTopic("_sluice_commits", 1);
  TempDir scratch;
  const std::string checkpoint = scratch / "sink";
  std::vector<Attempt> attempts;

  RecordsByPosition seen;
  {
    auto first = NewSink(cluster.bootstrap(), kRowsDdl, ExactlyOnceOptions(), checkpoint);
    ASSERT_TRUE(first);
    ASSERT_TRUE(first->AddBatch(MakeBatchData(0, {RowsOfBatch(0)})).ok());
    ASSERT_TRUE(first->Stop().ok());
  }
  attempts.push_back({NewRecordsSince(cluster.bootstrap(), seen), true});
  seen = ReadAllRecords(cluster.bootstrap());

  ChildResult child = RunCrashingChild(crash_at, cluster.bootstrap(), checkpoint, 1, scratch / "child.log");
  ASSERT_TRUE(child.killed_by_sigkill) << "child " << child.how_it_ended << "; its output:\n" << child.output;
  attempts.push_back({NewRecordsSince(cluster.bootstrap(), seen), child_reaches_kafka_commit});
  seen = ReadAllRecords(cluster.bootstrap());
  if (lose_checkpoint_cache) fs::remove_all(checkpoint);

  {
    auto restarted = NewSink(cluster.bootstrap(), kRowsDdl, ExactlyOnceOptions(), checkpoint);
    ASSERT_TRUE(restarted);
    Status st = restarted->AddBatch(MakeBatchData(1, {RowsOfBatch(1)}));
    ASSERT_TRUE(st.ok()) << st.ToString();
    st = restarted->AddBatch(MakeBatchData(2, {RowsOfBatch(2)}));
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_TRUE(restarted->Stop().ok());
  }
  attempts.push_back({NewRecordsSince(cluster.bootstrap(), seen), true});

  auto view = ReadCommittedViewOnARealBroker(attempts);
  EXPECT_EQ(view["out"], ValuesOfBatches({0, 1, 2}));
  EXPECT_EQ(view["_sluice_commits"], Sorted({MarkerOf(0), MarkerOf(1), MarkerOf(2)}));
  // The run that reached the commit wrote batch 1; the restart wrote it only if not.
  int rows_of_batch_1_written_by_restart = 0;
  for (const auto& [position, value] : attempts[2].records) rows_of_batch_1_written_by_restart += value.starts_with("b1-");
  EXPECT_EQ(rows_of_batch_1_written_by_restart, child_reaches_kafka_commit ? 0 : 4);
}

TEST(KafkaSinkCrashTest, BeforeBeginTheRestartWritesTheBatch) {
  CheckCrashRecovery("kafka-sink:before-begin", false, false);
}

TEST(KafkaSinkCrashTest, MidProduceTheRestartWritesTheBatchAgain) {
  CheckCrashRecovery("kafka-sink:mid-produce", false, false);
}

// The child's rows and marker are on the mock but their transaction never
// committed; on the mock it is the checkpoint cache ("attempting 1") that
// tells the restart so (exactly_once_writer.cpp), on Kafka the abort by
// init_transactions alone.
TEST(KafkaSinkCrashTest, BeforeCommitTheRestartWritesTheBatchAgain) {
  CheckCrashRecovery("kafka-sink:before-commit", false, false);
}

TEST(KafkaSinkCrashTest, AfterCommitTheRestartSkipsTheReplay) {
  CheckCrashRecovery("kafka-sink:after-commit", true, false);
}

// The same with the checkpoint cache gone: the marker in Kafka alone makes
// the restart skip the replay.
TEST(KafkaSinkCrashTest, AfterCommitTheMarkerAloneMakesTheRestartSkipTheReplay) {
  CheckCrashRecovery("kafka-sink:after-commit", true, true);
}

}  // namespace
}  // namespace sluice
