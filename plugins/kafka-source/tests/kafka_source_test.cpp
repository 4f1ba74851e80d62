// Tests of the "kafka" source, loaded from its shared library as production
// loads it, against librdkafka's mock Kafka cluster started in this process
// (real Kafka protocol over loopback TCP): exact rows and offsets, Spark's
// options, discovery of new partitions and topics, data loss, kcat interop,
// option validation, parallel reads and lag-monitoring commits.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace sluice {
namespace {

using testing::CollectingReadContext;
using testing::MakeSource;
using testing::ReadRange;
using testing::TempDir;
using testing::ToJsonLines;
using Lines = std::vector<std::string>;

constexpr int64_t kTimestampMillis = 1714564800000;  // 2024-05-01T12:00:00Z

// A mock cluster and a producer connected to it over TCP.
class MockKafka {
 public:
  explicit MockKafka(int brokers = 3) {
    char error[512];
    rd_kafka_conf_t* host_conf = rd_kafka_conf_new();
    rd_kafka_conf_set(host_conf, "log_level", "3", error, sizeof(error));
    host_ = rd_kafka_new(RD_KAFKA_PRODUCER, host_conf, error, sizeof(error));
    cluster_ = rd_kafka_mock_cluster_new(host_, brokers);
    bootstrap_ = rd_kafka_mock_cluster_bootstraps(cluster_);
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_.c_str(), error, sizeof(error));
    rd_kafka_conf_set(conf, "linger.ms", "0", error, sizeof(error));
    producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof(error));
  }
  ~MockKafka() {
    rd_kafka_destroy(producer_);
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(host_);
  }
  const std::string& bootstrap() const { return bootstrap_; }

  void CreateTopic(const std::string& topic, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, topic.c_str(), partitions, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // Produces one record and waits until the broker has it.
  void Produce(const std::string& topic, int32_t partition, const char* key, const std::string& value,
               int64_t timestamp_millis = kTimestampMillis, const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
    for (const auto& [name, v] : headers) rd_kafka_header_add(hdrs, name.c_str(), -1, v.data(), v.size());
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_TIMESTAMP(timestamp_millis), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_END);
    ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
    ASSERT_EQ(rd_kafka_flush(producer_, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  void ProduceValues(const std::string& topic, int32_t partition, int count, const std::string& prefix = "v") {
    for (int i = 0; i < count; ++i)
      rd_kafka_producev(producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                        RD_KAFKA_V_VALUE(const_cast<char*>((prefix + std::to_string(i)).c_str()),
                                         (prefix + std::to_string(i)).size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    ASSERT_EQ(rd_kafka_flush(producer_, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // Offsets committed by consumer group `group` for the given partitions.
  std::map<int32_t, int64_t> Committed(const std::string& group, const std::string& topic, int partitions) {
    char error[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_.c_str(), error, sizeof(error));
    rd_kafka_conf_set(conf, "group.id", group.c_str(), error, sizeof(error));
    rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof(error));
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) rd_kafka_topic_partition_list_add(list, topic.c_str(), p);
    std::map<int32_t, int64_t> committed;
    if (rd_kafka_committed(consumer, list, 30000) == RD_KAFKA_RESP_ERR_NO_ERROR)
      for (int i = 0; i < list->cnt; ++i) committed[list->elems[i].partition] = list->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    return committed;
  }

 private:
  rd_kafka_t* host_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
  rd_kafka_t* producer_ = nullptr;
  std::string bootstrap_;
};

std::shared_ptr<Source> NewSource(const MockKafka& kafka, std::map<std::string, OptionValue> options,
                                  const std::string& checkpoint_dir = "") {
  options["kafka.bootstrap.servers"] = kafka.bootstrap();
  auto source = MakeSource("kafka", options, checkpoint_dir);
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  return source.ok() ? *source : nullptr;
}

std::optional<Offset> Latest(Source& source, const std::optional<Offset>& start,
                             ReadLimit limit = ReadLimit::kDefault) {
  auto latest = source.LatestOffset(start, limit);
  EXPECT_TRUE(latest.ok()) << latest.status().ToString();
  return latest.ok() ? *latest : std::nullopt;
}

// Rows as "key|value|topic|partition|offset", independent of the timestamp.
Lines Compact(const std::vector<RecordBatchPtr>& batches) {
  Lines rows;
  for (const auto& batch : batches)
    for (int64_t i = 0; i < batch->num_rows(); ++i)
      rows.push_back((batch->column(0).is_null(i) ? std::string("null") : std::string(batch->column(0).string_at(i))) +
                     "|" + std::string(batch->column(1).string_at(i)) + "|" +
                     std::string(batch->column(2).string_at(i)) + "|" +
                     std::to_string(batch->column(3).int64_at(i)) + "|" + std::to_string(batch->column(4).int64_at(i)));
  return rows;
}

Lines ReadCompact(Source& source, const std::optional<Offset>& start, const Offset& end) {
  auto batches = ReadRange(source, start, end);
  EXPECT_TRUE(batches.ok()) << batches.status().ToString();
  return batches.ok() ? Compact(*batches) : Lines{};
}

Lines Values(const std::string& prefix, int from, int until, const std::string& topic, int partition) {
  Lines rows;
  for (int i = from; i < until; ++i)
    rows.push_back("null|" + prefix + std::to_string(i) + "|" + topic + "|" + std::to_string(partition) + "|" +
                   std::to_string(i));
  return rows;
}

TEST(KafkaSource, ReadsExactlyTheRowsOfARange) {
  MockKafka kafka;
  kafka.CreateTopic("t", 1);
  kafka.Produce("t", 0, "k1", "v1");
  kafka.Produce("t", 0, nullptr, "v2");
  kafka.Produce("t", 0, "k3", "");
  auto source = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", "earliest"}});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->schema().ToString(),
            "key BINARY, value BINARY, topic STRING, partition BIGINT, offset BIGINT, timestamp TIMESTAMP, "
            "timestampType BIGINT");
  EXPECT_EQ(source->Description(), "KafkaSource[t]");
  auto end = Latest(*source, std::nullopt);
  ASSERT_EQ(end, R"({"t":{"0":3}})");
  auto batches = ReadRange(*source, std::nullopt, *end);
  ASSERT_TRUE(batches.ok()) << batches.status().ToString();
  EXPECT_EQ(ToJsonLines(*batches),
            (Lines{
                R"({"key":"azE=","value":"djE=","topic":"t","partition":0,"offset":0,"timestamp":"2024-05-01T12:00:00Z","timestampType":0})",
                R"({"key":null,"value":"djI=","topic":"t","partition":0,"offset":1,"timestamp":"2024-05-01T12:00:00Z","timestampType":0})",
                R"({"key":"azM=","value":"","topic":"t","partition":0,"offset":2,"timestamp":"2024-05-01T12:00:00Z","timestampType":0})",
            }));
  EXPECT_EQ(Latest(*source, end), end) << "nothing new: the start comes back";
  // A later range reads only what came after.
  kafka.Produce("t", 0, "k4", "v4");
  auto next = Latest(*source, end);
  ASSERT_EQ(next, R"({"t":{"0":4}})");
  EXPECT_EQ(ReadCompact(*source, end, *next), (Lines{"k4|v4|t|0|3"}));
}

TEST(KafkaSource, OffsetsNameEveryPartitionOfEveryTopic) {
  MockKafka kafka;
  kafka.CreateTopic("a", 3);
  kafka.CreateTopic("b", 1);
  kafka.ProduceValues("a", 0, 2);
  kafka.ProduceValues("a", 2, 5);
  kafka.ProduceValues("b", 0, 1);
  auto source = NewSource(kafka, {{"subscribe", "a, b"}, {"startingOffsets", "earliest"}});
  ASSERT_TRUE(source);
  EXPECT_EQ(Latest(*source, std::nullopt), R"({"a":{"0":2,"1":0,"2":5},"b":{"0":1}})");
}

TEST(KafkaSource, MaxOffsetsPerTriggerSplitsAcrossPartitionsByLag) {
  MockKafka kafka;
  kafka.CreateTopic("t", 3);
  kafka.ProduceValues("t", 0, 10);
  kafka.ProduceValues("t", 1, 20);
  kafka.ProduceValues("t", 2, 70);
  auto source = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", "earliest"}, {"maxOffsetsPerTrigger", int64_t{10}}});
  ASSERT_TRUE(source);
  auto first = Latest(*source, std::nullopt);
  ASSERT_EQ(first, R"({"t":{"0":1,"1":2,"2":7}})");
  Lines expected = Values("v", 0, 1, "t", 0);
  for (auto& row : Values("v", 0, 2, "t", 1)) expected.push_back(row);
  for (auto& row : Values("v", 0, 7, "t", 2)) expected.push_back(row);
  EXPECT_EQ(ReadCompact(*source, std::nullopt, *first), expected);
  // Remaining lags 9, 18, 63 (total 90): shares 1, 2, 7 again.
  EXPECT_EQ(Latest(*source, first), R"({"t":{"0":2,"1":4,"2":14}})");
  EXPECT_EQ(Latest(*source, first, ReadLimit::kAll), R"({"t":{"0":10,"1":20,"2":70}})") << "kAll ignores the limit";
}

// librdkafka 2.0.2's mock cluster cannot add partitions to an existing topic
// (it implements no CreatePartitions), so partitions appear the one way it
// allows: the subscribed topic is created after the query started. To the
// source these are partitions missing from the start offsets, exactly as
// grown partitions are, and they are read from offset 0 (earliest).
TEST(KafkaSource, NewPartitionsAreReadFromTheirStart) {
  MockKafka kafka;
  kafka.CreateTopic("t", 1);
  kafka.ProduceValues("t", 0, 3, "old");
  auto source = NewSource(kafka, {{"subscribe", "t,u"}});  // startingOffsets = latest
  ASSERT_TRUE(source);
  EXPECT_EQ(Latest(*source, std::nullopt), std::nullopt) << "latest: nothing to read yet";
  kafka.CreateTopic("u", 2);
  kafka.ProduceValues("u", 0, 2, "a");
  kafka.ProduceValues("u", 1, 1, "b");
  kafka.ProduceValues("t", 0, 1, "new");
  auto end = Latest(*source, std::nullopt);
  ASSERT_EQ(end, R"({"t":{"0":4},"u":{"0":2,"1":1}})");
  EXPECT_EQ(ReadCompact(*source, std::nullopt, *end),
            (Lines{"null|new0|t|0|3", "null|a0|u|0|0", "null|a1|u|0|1", "null|b0|u|1|0"}));
}

TEST(KafkaSource, SubscribePatternPicksUpNewTopics) {
  MockKafka kafka;
  kafka.CreateTopic("events-a", 1);
  kafka.CreateTopic("other", 1);
  kafka.ProduceValues("events-a", 0, 1, "a");
  kafka.ProduceValues("other", 0, 1, "o");
  auto source = NewSource(kafka, {{"subscribePattern", "events-.*"}, {"startingOffsets", "earliest"}});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->Description(), "KafkaSource[events-.*]");
  auto first = Latest(*source, std::nullopt);
  ASSERT_EQ(first, R"({"events-a":{"0":1}})");
  EXPECT_EQ(ReadCompact(*source, std::nullopt, *first), (Lines{"null|a0|events-a|0|0"}));
  kafka.CreateTopic("events-b", 2);
  kafka.ProduceValues("events-b", 1, 2, "b");
  auto second = Latest(*source, first);
  ASSERT_EQ(second, R"({"events-a":{"0":1},"events-b":{"0":0,"1":2}})");
  EXPECT_EQ(ReadCompact(*source, first, *second), (Lines{"null|b0|events-b|1|0", "null|b1|events-b|1|1"}));
}

TEST(KafkaSource, StartingOffsetsEarliestLatestAndJson) {
  MockKafka kafka;
  kafka.CreateTopic("t", 2);
  kafka.ProduceValues("t", 0, 3);
  kafka.ProduceValues("t", 1, 2);

  auto earliest = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", "earliest"}});
  auto latest = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", "latest"}});
  auto json = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", R"({"t":{"0":1,"1":-1}})"}});
  auto markers = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", R"({"t":{"0":-1,"1":-2}})"}});
  ASSERT_TRUE(earliest && latest && json && markers);
  EXPECT_EQ(Latest(*latest, std::nullopt), std::nullopt);
  auto json_end = Latest(*json, std::nullopt);
  auto markers_end = Latest(*markers, std::nullopt);
  kafka.ProduceValues("t", 0, 1, "x");

  auto end = Latest(*earliest, std::nullopt);
  ASSERT_EQ(end, R"({"t":{"0":4,"1":2}})");
  EXPECT_EQ(ReadCompact(*earliest, std::nullopt, *end).size(), 6u);
  auto latest_end = Latest(*latest, std::nullopt);
  ASSERT_EQ(latest_end, R"({"t":{"0":4,"1":2}})");
  EXPECT_EQ(ReadCompact(*latest, std::nullopt, *latest_end), (Lines{"null|x0|t|0|3"}));
  ASSERT_EQ(json_end, R"({"t":{"0":3,"1":2}})");
  EXPECT_EQ(ReadCompact(*json, std::nullopt, *json_end), (Lines{"null|v1|t|0|1", "null|v2|t|0|2"}));
  ASSERT_EQ(markers_end, R"({"t":{"0":3,"1":2}})");
  EXPECT_EQ(ReadCompact(*markers, std::nullopt, *markers_end), (Lines{"null|v0|t|1|0", "null|v1|t|1|1"}));

  auto incomplete = MakeSource("kafka", {{"kafka.bootstrap.servers", kafka.bootstrap()}, {"subscribe", "t"},
                                         {"startingOffsets", R"({"t":{"0":1}})"}});
  ASSERT_TRUE(incomplete.ok());
  auto missing = (*incomplete)->LatestOffset(std::nullopt, ReadLimit::kDefault);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("gives no offset for topic 't' partition 1"), std::string::npos)
      << missing.status().message();
}

TEST(KafkaSource, LatestStartIsKeptInTheCheckpointSoARestartReplaysTheSameRange) {
  MockKafka kafka;
  kafka.CreateTopic("t", 1);
  kafka.ProduceValues("t", 0, 2);
  TempDir checkpoint;
  auto first_run = NewSource(kafka, {{"subscribe", "t"}}, checkpoint.path());
  ASSERT_TRUE(first_run);
  EXPECT_EQ(Latest(*first_run, std::nullopt), std::nullopt);
  kafka.ProduceValues("t", 0, 1, "x");
  auto end = Latest(*first_run, std::nullopt);  // the executor logs [none, end) and crashes
  ASSERT_EQ(end, R"({"t":{"0":3}})");
  kafka.ProduceValues("t", 0, 1, "y");
  auto restarted = NewSource(kafka, {{"subscribe", "t"}}, checkpoint.path());
  ASSERT_TRUE(restarted);
  EXPECT_EQ(ReadCompact(*restarted, std::nullopt, *end), (Lines{"null|x0|t|0|2"}));
}

TEST(KafkaSource, EndingOffsetsAndAvailableNowCapTheEnd) {
  MockKafka kafka;
  kafka.CreateTopic("t", 2);
  kafka.ProduceValues("t", 0, 5);
  kafka.ProduceValues("t", 1, 5);
  auto capped = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", "earliest"},
                                  {"endingOffsets", R"({"t":{"0":2,"1":-1}})"}});
  ASSERT_TRUE(capped);
  EXPECT_EQ(Latest(*capped, std::nullopt), R"({"t":{"0":2,"1":5}})");

  auto available_now = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", "earliest"}});
  ASSERT_TRUE(available_now);
  ASSERT_TRUE(available_now->PrepareForAvailableNow().ok());
  kafka.ProduceValues("t", 0, 3, "later");
  auto end = Latest(*available_now, std::nullopt, ReadLimit::kAll);
  ASSERT_EQ(end, R"({"t":{"0":5,"1":5}})");
  EXPECT_EQ(Latest(*available_now, end, ReadLimit::kAll), end) << "nothing beyond the snapshot";
}

TEST(KafkaSource, HeadersAreAJsonColumnWithBase64Values) {
  MockKafka kafka;
  kafka.CreateTopic("t", 1);
  kafka.Produce("t", 0, "k", "v", kTimestampMillis, {{"trace", "abc"}, {"bin", std::string("\x00\xff", 2)}});
  kafka.Produce("t", 0, "k", "w");
  auto source = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", "earliest"}, {"includeHeaders", true}});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->schema().field(7).name, "headers");
  auto end = Latest(*source, std::nullopt);
  ASSERT_TRUE(end);
  auto batches = ReadRange(*source, std::nullopt, *end);
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ((*batches)[0]->num_rows(), 2);
  EXPECT_EQ((*batches)[0]->column(7).string_at(0), R"([{"key":"trace","value":"YWJj"},{"key":"bin","value":"AP8="}])");
  EXPECT_EQ((*batches)[0]->column(7).string_at(1), "[]");
}

// The mock keeps at most 5 MB per partition and drops its oldest message sets
// beyond that, moving the partition's earliest offset forward: retention.
int64_t FillPastMockRetention(MockKafka& kafka, const std::string& topic) {
  const std::string big(256 * 1024, 'x');
  for (int i = 0; i < 24; ++i) kafka.Produce(topic, 0, nullptr, big);  // one message set each
  return 24;
}

TEST(KafkaSource, RecordsDeletedBeforeTheyWereReadFailTheQuery) {
  MockKafka kafka;
  kafka.CreateTopic("t", 1);
  const int64_t produced = FillPastMockRetention(kafka, "t");
  auto source = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", R"({"t":{"0":0}})"}});
  ASSERT_TRUE(source);
  auto end = Latest(*source, std::nullopt);
  ASSERT_EQ(end, R"({"t":{"0":)" + std::to_string(produced) + "}}");
  auto batches = ReadRange(*source, std::nullopt, *end);
  ASSERT_FALSE(batches.ok()) << "the mock dropped nothing: raise the volume";
  const std::string& message = batches.status().message();
  EXPECT_NE(message.find("records [0, "), std::string::npos) << message;
  EXPECT_NE(message.find("of topic 't' partition 0 were deleted"), std::string::npos) << message;
  EXPECT_NE(message.find("failOnDataLoss=false"), std::string::npos) << message;
}

TEST(KafkaSource, WithoutFailOnDataLossDeletedRecordsAreSkipped) {
  MockKafka kafka;
  kafka.CreateTopic("t", 1);
  const int64_t produced = FillPastMockRetention(kafka, "t");
  auto source = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", R"({"t":{"0":0}})"}, {"failOnDataLoss", false}});
  ASSERT_TRUE(source);
  auto end = Latest(*source, std::nullopt);
  ASSERT_TRUE(end);
  auto batches = ReadRange(*source, std::nullopt, *end);
  ASSERT_TRUE(batches.ok()) << batches.status().ToString();
  std::vector<int64_t> offsets;
  for (const auto& batch : *batches)
    for (int64_t i = 0; i < batch->num_rows(); ++i) offsets.push_back(batch->column(4).int64_at(i));
  ASSERT_FALSE(offsets.empty());
  EXPECT_GT(offsets.front(), 0) << "the oldest records were deleted";
  EXPECT_EQ(offsets.back(), produced - 1);
  EXPECT_EQ(static_cast<int64_t>(offsets.size()), produced - offsets.front()) << "everything still stored is read";
  // Counted for progress events (sources[].metrics.recordsLost).
  EXPECT_EQ(source->Metrics().at("recordsLost"), offsets.front());
}

TEST(KafkaSource, ReadsWhatKcatProduced) {
  MockKafka kafka;
  kafka.CreateTopic("k", 2);
  auto produced = testing::RunShell("printf 'user1:clicked\\nuser2:bought\\n' | kcat -b " + kafka.bootstrap() +
                                    " -t k -p 1 -K: -P");
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
  auto source = NewSource(kafka, {{"subscribe", "k"}, {"startingOffsets", "earliest"}});
  ASSERT_TRUE(source);
  auto end = Latest(*source, std::nullopt);
  ASSERT_EQ(end, R"({"k":{"0":0,"1":2}})");
  EXPECT_EQ(ReadCompact(*source, std::nullopt, *end), (Lines{"user1|clicked|k|1|0", "user2|bought|k|1|1"}));
}

TEST(KafkaSource, ValidateReportsOptionsLibrdkafkaRejects) {
  auto bad = MakeSource("kafka", {{"kafka.bootstrap.servers", "localhost:1"}, {"subscribe", "t"},
                                  {"kafka.no.such.property", "1"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("kafka.no.such.property: librdkafka rejects '1': No such configuration "
                                        "property: \"no.such.property\""),
            std::string::npos)
      << bad.status().message();
  auto bad_value = MakeSource("kafka", {{"kafka.bootstrap.servers", "localhost:1"}, {"subscribe", "t"},
                                        {"kafka.fetch.max.bytes", "many"}});
  ASSERT_FALSE(bad_value.ok());
  EXPECT_NE(bad_value.status().message().find("kafka.fetch.max.bytes: librdkafka rejects 'many'"), std::string::npos)
      << bad_value.status().message();
  auto two = MakeSource("kafka", {{"kafka.bootstrap.servers", "localhost:1"}, {"subscribe", "t"}, {"assign", R"({"t":[0]})"}});
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("exactly one of 'subscribe'"), std::string::npos);
  auto reset = MakeSource("kafka", {{"kafka.bootstrap.servers", "localhost:1"}, {"subscribe", "t"},
                                    {"kafka.auto.offset.reset", "earliest"}});
  ASSERT_FALSE(reset.ok());
  EXPECT_NE(reset.status().message().find("startingOffsets"), std::string::npos);
}

TEST(KafkaSource, SluiceValidateShowsLibrdkafkasMessage) {
  TempDir dir;
  testing::WriteFile(dir / "p.toml", R"([pipeline]
name = "kafka-validate"

[sources.events]
type = "kafka"
"kafka.bootstrap.servers" = "localhost:1"
subscribe = "t"
"kafka.session.timeout.ms" = "soon"

[sinks.out]
type = "console"
input = "events"
)");
  auto result = testing::RunSluice({"validate", dir / "p.toml"});
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE((result.out + result.err).find("kafka.session.timeout.ms: librdkafka rejects 'soon'"), std::string::npos)
      << result.out << result.err;
}

TEST(KafkaSource, ParallelReadsGiveTheSameRows) {
  MockKafka kafka;
  kafka.CreateTopic("t", 3);
  for (int p = 0; p < 3; ++p) kafka.ProduceValues("t", p, 4000 + 1000 * p);
  auto source = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", "earliest"}, {"minPartitions", int64_t{8}}});
  ASSERT_TRUE(source);
  auto end = Latest(*source, std::nullopt);
  ASSERT_TRUE(end);
  Lines sequential = ReadCompact(*source, std::nullopt, *end);
  ASSERT_EQ(sequential.size(), 15000u);

  auto pieces = source->PlanPartitions(std::nullopt, *end);
  ASSERT_TRUE(pieces.ok());
  EXPECT_GE(pieces->size(), 8u);
  std::vector<CollectingReadContext> contexts(pieces->size());
  std::vector<Status> statuses(pieces->size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < pieces->size(); ++i)
    threads.emplace_back([&, i] { statuses[i] = source->ReadPartition((*pieces)[i], contexts[i]); });
  for (auto& thread : threads) thread.join();
  Lines parallel;
  for (size_t i = 0; i < pieces->size(); ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].ToString();
    for (auto& row : Compact(contexts[i].batches)) parallel.push_back(row);
  }
  EXPECT_EQ(parallel, sequential) << "pieces in plan order give the rows in order";
}

TEST(KafkaSource, LargeRangesAreEmittedInPreferredBatches) {
  MockKafka kafka;
  kafka.CreateTopic("t", 1);
  kafka.ProduceValues("t", 0, static_cast<int>(kPreferredBatchRows) + 10);
  auto source = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", "earliest"}});
  ASSERT_TRUE(source);
  auto end = Latest(*source, std::nullopt);
  auto batches = ReadRange(*source, std::nullopt, *end);
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 2u);
  EXPECT_EQ((*batches)[0]->num_rows(), kPreferredBatchRows);
  EXPECT_EQ((*batches)[1]->num_rows(), 10);
}

TEST(KafkaSource, CommitRecordsEndOffsetsInTheMonitoringGroup) {
  MockKafka kafka;
  kafka.CreateTopic("t", 2);
  kafka.ProduceValues("t", 0, 3);
  kafka.ProduceValues("t", 1, 5);
  auto source = NewSource(kafka, {{"subscribe", "t"}, {"startingOffsets", "earliest"}});
  ASSERT_TRUE(source);
  auto end = Latest(*source, std::nullopt);
  ASSERT_EQ(end, R"({"t":{"0":3,"1":5}})");
  ASSERT_TRUE(ReadRange(*source, std::nullopt, *end).ok());
  ASSERT_TRUE(source->Commit(*end).ok());
  EXPECT_EQ(kafka.Committed("sluice-test-query", "t", 2), (std::map<int32_t, int64_t>{{0, 3}, {1, 5}}));

  auto named = NewSource(kafka, {{"assign", R"({"t":[1]})"}, {"startingOffsets", "earliest"},
                                 {"kafka.group.id", "dashboards"}});
  ASSERT_TRUE(named);
  auto named_end = Latest(*named, std::nullopt);
  ASSERT_EQ(named_end, R"({"t":{"1":5}})");
  ASSERT_TRUE(named->Commit(*named_end).ok());
  EXPECT_EQ(kafka.Committed("dashboards", "t", 2)[1], 5);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST(KafkaSourcePipeline, SluiceRunReadsTopicsAndCommitsLagOffsets) {
  MockKafka kafka;
  kafka.CreateTopic("events", 2);
  kafka.ProduceValues("events", 0, 2, "a");
  kafka.ProduceValues("events", 1, 1, "b");
  TempDir dir;
  testing::WriteFile(dir / "p.toml", R"([pipeline]
name = "kafka-run"
trigger = "available_now"
checkpoint = "checkpoint"

[sources.events]
type = "kafka"
"kafka.bootstrap.servers" = ")" + kafka.bootstrap() + R"("
"kafka.group.id" = "kafka-run-lag"
subscribe = "events"
startingOffsets = "earliest"

[[steps]]
name = "text"
input = "events"
select = ["CAST(value AS STRING) AS v", "partition", "offset"]

[sinks.out]
type = "console"
input = "text"
)");
  auto result = testing::RunSluice({"run", dir / "p.toml"}, dir.path());
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  for (const char* value : {"a0", "a1", "b0"}) EXPECT_NE(result.out.find(value), std::string::npos) << result.out;
  EXPECT_EQ(kafka.Committed("kafka-run-lag", "events", 2), (std::map<int32_t, int64_t>{{0, 2}, {1, 1}}));
}

}  // namespace
}  // namespace sluice
