// Unit tests of the kafka sink's transaction state machine (ExactlyOnceWriter)
// against a test double of the producer. The double models a broker's
// transactions: commit, abort, fencing by init_transactions of a newer
// producer with the same transactional.id (which also aborts the transaction
// the older one left open), injected abortable / retriable / fatal errors, and
// read_committed filtering, switchable off to model the librdkafka mock
// broker. These are the cases the mock cluster cannot show.

#include <gtest/gtest.h>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "exactly_once_writer.h"

namespace sluice::kafka_sink {
namespace {

namespace fs = std::filesystem;

enum class TxnState { kOpen, kCommitted, kAborted };

// The broker side: every record ever appended and the fate of each transaction.
struct FakeBroker {
  struct Record {
    std::string topic, key, value;
    int transaction = -1;
  };
  std::vector<Record> log;
  std::vector<TxnState> transactions;
  std::map<std::string, int> epoch_of;             // transactional.id -> current producer epoch
  std::map<std::string, int> open_transaction_of;  // transactional.id -> its open transaction
  bool hides_aborted = true;                       // false: like the librdkafka mock

  // What a read_committed consumer of `topic` sees.
  std::vector<Record> ReadCommitted(const std::string& topic) const {
    std::vector<Record> out;
    for (const Record& r : log)
      if (r.topic == topic && (!hides_aborted || r.transaction < 0 || transactions[r.transaction] == TxnState::kCommitted))
        out.push_back(r);
    return out;
  }
  std::vector<std::string> CommittedValues(const std::string& topic) const {
    std::vector<std::string> values;
    for (const Record& r : ReadCommitted(topic)) values.push_back(r.value);
    return values;
  }
};

class FakeProducer final : public KafkaProducerClient {
 public:
  FakeProducer(FakeBroker& broker, std::string transactional_id)
      : broker_(broker), transactional_id_(std::move(transactional_id)) {}

  // Injected failures, consumed in order; an empty queue means success.
  std::deque<KafkaOutcome> produce_failures, commit_failures;
  int fail_produce_at = -1;  // index among this producer's Produce calls
  // Runs before each Produce call (e.g. to start a newer producer midway).
  std::function<void(int)> before_produce;
  // A commit failure whose commit nonetheless happened on the broker.
  bool commit_then_fail = false;
  int produce_calls = 0;

  KafkaOutcome InitTransactions() override {
    epoch_ = ++broker_.epoch_of[transactional_id_];
    if (auto open = broker_.open_transaction_of.find(transactional_id_); open != broker_.open_transaction_of.end()) {
      broker_.transactions[open->second] = TxnState::kAborted;
      broker_.open_transaction_of.erase(open);
    }
    return KafkaOutcome::Ok();
  }
  KafkaOutcome BeginTransaction() override {
    if (auto fenced = Fenced()) return *fenced;
    transaction_ = static_cast<int>(broker_.transactions.size());
    broker_.transactions.push_back(TxnState::kOpen);
    broker_.open_transaction_of[transactional_id_] = transaction_;
    return KafkaOutcome::Ok();
  }
  KafkaOutcome Produce(const OutgoingRecord& record) override {
    if (before_produce) before_produce(produce_calls);
    if (produce_calls++ == fail_produce_at && !produce_failures.empty()) {
      KafkaOutcome failure = produce_failures.front();
      produce_failures.pop_front();
      return failure;
    }
    if (auto fenced = Fenced()) return *fenced;
    broker_.log.push_back({std::string(record.topic), record.key ? std::string(*record.key) : "",
                           record.value ? std::string(*record.value) : "", transaction_});
    return KafkaOutcome::Ok();
  }
  KafkaOutcome Flush() override { return Fenced().value_or(KafkaOutcome::Ok()); }
  KafkaOutcome CommitTransaction() override {
    if (auto fenced = Fenced()) return *fenced;
    if (!commit_failures.empty()) {
      KafkaOutcome failure = commit_failures.front();
      commit_failures.pop_front();
      if (commit_then_fail) End(TxnState::kCommitted);
      return failure;
    }
    End(TxnState::kCommitted);
    return KafkaOutcome::Ok();
  }
  KafkaOutcome AbortTransaction() override {
    if (auto fenced = Fenced()) return *fenced;
    End(TxnState::kAborted);
    return KafkaOutcome::Ok();
  }
  KafkaOutcome EnsureTopic(const std::string&) override { return KafkaOutcome::Ok(); }
  KafkaOutcome ReadCommitted(const std::string& topic, std::vector<ConsumedRecord>& out) override {
    for (const FakeBroker::Record& r : broker_.ReadCommitted(topic)) out.push_back({r.key, r.value, 0, 0});
    return KafkaOutcome::Ok();
  }

 private:
  std::optional<KafkaOutcome> Fenced() const {
    if (broker_.epoch_of[transactional_id_] == epoch_) return std::nullopt;
    return KafkaOutcome::Error(KafkaErrorKind::kFenced, "Local: This instance has been fenced by a newer instance");
  }
  void End(TxnState state) {
    if (transaction_ < 0) return;
    broker_.transactions[transaction_] = state;
    broker_.open_transaction_of.erase(transactional_id_);
    transaction_ = -1;
  }

  FakeBroker& broker_;
  std::string transactional_id_;
  int epoch_ = 0;
  int transaction_ = -1;
};

class VectorRecords final : public BatchRecords {
 public:
  explicit VectorRecords(std::vector<std::string> values) : values_(std::move(values)) {}
  int64_t size() const override { return static_cast<int64_t>(values_.size()); }
  Status Get(int64_t index, OutgoingRecord& out) override {
    out = OutgoingRecord{};
    out.topic = "out";
    out.value = values_[static_cast<size_t>(index)];
    return Status::OK();
  }

 private:
  std::vector<std::string> values_;
};

VectorRecords RowsOf(int64_t batch_id) {
  return VectorRecords({"b" + std::to_string(batch_id) + "-r0", "b" + std::to_string(batch_id) + "-r1",
                        "b" + std::to_string(batch_id) + "-r2"});
}
std::vector<std::string> ValuesOf(std::initializer_list<int64_t> batch_ids) {
  std::vector<std::string> values;
  for (int64_t id : batch_ids)
    for (int row = 0; row < 3; ++row) values.push_back("b" + std::to_string(id) + "-r" + std::to_string(row));
  return values;
}

const ExactlyOnceIdentity kIdentity{"q1", "out", "sluice-q1-out", "_sluice_commits"};

std::vector<int64_t> CommittedMarkers(const FakeBroker& broker, const ExactlyOnceIdentity& identity = kIdentity) {
  std::vector<int64_t> ids;
  for (const std::string& value : broker.CommittedValues(identity.marker_topic))
    if (auto id = ParseMarkerValue(value, identity.query_id, identity.sink_name)) ids.push_back(*id);
  return ids;
}

class ScratchDir {
 public:
  ScratchDir() {
    char pattern[] = "/tmp/kafka-sink-writer-XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~ScratchDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One run of the sink: a producer and a writer, as a (re)started query has.
struct SinkRun {
  SinkRun(FakeBroker& broker, const std::string& checkpoint_dir, const ExactlyOnceIdentity& identity = kIdentity)
      : producer(broker, identity.transactional_id),
        writer(producer, identity, CommitCache(checkpoint_dir, identity.transactional_id)) {}
  Status Write(int64_t batch_id) {
    VectorRecords rows = RowsOf(batch_id);
    return writer.WriteBatch(batch_id, rows);
  }
  FakeProducer producer;
  ExactlyOnceWriter writer;
};

TEST(ExactlyOnceWriterTest, MarkerRoundTripsAndIgnoresOtherQueriesAndSinks) {
  const std::string marker = MarkerValue("q1", "out", 42);
  EXPECT_EQ(marker, R"({"queryId":"q1","sink":"out","batchId":42})");
  EXPECT_EQ(ParseMarkerValue(marker, "q1", "out"), 42);
  EXPECT_EQ(ParseMarkerValue(marker, "q2", "out"), std::nullopt);
  EXPECT_EQ(ParseMarkerValue(marker, "q1", "other"), std::nullopt);
  EXPECT_EQ(ParseMarkerValue(R"({"probe":"x"})", "q1", "out"), std::nullopt);
  EXPECT_EQ(MarkerKey("q1", "out"), "q1/out");
}

TEST(ExactlyOnceWriterTest, OneTransactionPerBatchWithItsMarkerAndReplaysAreSkipped) {
  FakeBroker broker;
  ScratchDir checkpoint;
  SinkRun run(broker, checkpoint.path());
  for (int64_t id : {0, 1, 2}) ASSERT_TRUE(run.Write(id).ok());
  EXPECT_TRUE(run.writer.broker_hides_aborted_transactions());
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0, 1, 2}));
  EXPECT_EQ(CommittedMarkers(broker), (std::vector<int64_t>{0, 1, 2}));
  ASSERT_TRUE(run.Write(1).ok());  // a replay writes nothing
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0, 1, 2}));

  // A restarted run learns batch 2 from Kafka and skips its replay.
  SinkRun restarted(broker, checkpoint.path());
  ASSERT_TRUE(restarted.Write(2).ok());
  EXPECT_EQ(restarted.writer.committed_through(), 2);
  ASSERT_TRUE(restarted.Write(3).ok());
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0, 1, 2, 3}));
}

TEST(ExactlyOnceWriterTest, FencedByANewerProducerMidBatchFailsNamingTheTransactionalId) {
  FakeBroker broker;
  ScratchDir checkpoint;
  SinkRun zombie(broker, checkpoint.path());
  ASSERT_TRUE(zombie.Write(0).ok());
  // While the zombie produces batch 1, a newer run of the same query starts.
  std::unique_ptr<SinkRun> newer;
  zombie.producer.before_produce = [&](int call) {
    if (call == zombie.producer.produce_calls && !newer) {
      newer = std::make_unique<SinkRun>(broker, checkpoint.path());
      ASSERT_EQ(newer->producer.InitTransactions().kind, KafkaErrorKind::kNone);
    }
  };
  Status fenced = zombie.Write(1);
  ASSERT_FALSE(fenced.ok());
  EXPECT_EQ(fenced.code(), StatusCode::kAborted);
  EXPECT_NE(fenced.message().find("transactional.id 'sluice-q1-out' was fenced by a newer producer"),
            std::string::npos) << fenced.message();
  // The zombie stays dead, with the same error.
  EXPECT_EQ(zombie.Write(2).message(), fenced.message());
  // Nothing of the zombie's batch 1 is visible; the newer run writes it once.
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0}));
  ASSERT_TRUE(newer->Write(1).ok());
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0, 1}));
  EXPECT_EQ(CommittedMarkers(broker), (std::vector<int64_t>{0, 1}));
}

TEST(ExactlyOnceWriterTest, AbortableProduceErrorAbortsAndTheRetryWritesTheBatchOnce) {
  FakeBroker broker;
  ScratchDir checkpoint;
  SinkRun run(broker, checkpoint.path());
  ASSERT_TRUE(run.Write(0).ok());
  run.producer.fail_produce_at = run.producer.produce_calls + 1;
  run.producer.produce_failures.push_back(
      KafkaOutcome::Error(KafkaErrorKind::kAbortable, "delivery to topic 'out' partition 0 failed: Broker: timeout"));
  Status failed = run.Write(1);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("batch 1: transaction of transactional.id 'sluice-q1-out' aborted: delivery to "
                                  "topic 'out' partition 0 failed"),
            std::string::npos) << failed.message();
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0}));
  // The producer survives an abort: the same batch is written again, once.
  ASSERT_TRUE(run.Write(1).ok());
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0, 1}));
  EXPECT_EQ(CommittedMarkers(broker), (std::vector<int64_t>{0, 1}));
}

TEST(ExactlyOnceWriterTest, RetriableCommitFailureIsRetried) {
  FakeBroker broker;
  SinkRun run(broker, "");
  run.producer.commit_failures = {KafkaOutcome::Error(KafkaErrorKind::kRetriable, "Broker: coordinator load"),
                                  KafkaOutcome::Error(KafkaErrorKind::kRetriable, "Broker: coordinator load")};
  ASSERT_TRUE(run.Write(0).ok());
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0}));
}

TEST(ExactlyOnceWriterTest, AbortableCommitFailureAbortsTheBatch) {
  FakeBroker broker;
  SinkRun run(broker, "");
  run.producer.commit_failures = {KafkaOutcome::Error(KafkaErrorKind::kAbortable, "Broker: invalid txn state")};
  Status failed = run.Write(0);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("aborted: Broker: invalid txn state"), std::string::npos) << failed.message();
  EXPECT_TRUE(broker.CommittedValues("out").empty());
  EXPECT_TRUE(CommittedMarkers(broker).empty());
  ASSERT_TRUE(run.Write(0).ok());
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0}));
}

TEST(ExactlyOnceWriterTest, CommitWithUnknownOutcomeStopsTheWriterAndTheNextRunFindsOut) {
  FakeBroker broker;
  ScratchDir checkpoint;
  SinkRun run(broker, checkpoint.path());
  // The commit happened on the broker, but the answer was lost.
  run.producer.commit_then_fail = true;
  run.producer.commit_failures = {KafkaOutcome::Error(KafkaErrorKind::kFailed, "Local: Timed out")};
  Status failed = run.Write(0);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("outcome unknown"), std::string::npos) << failed.message();
  EXPECT_FALSE(run.Write(0).ok());  // this producer never guesses

  SinkRun restarted(broker, checkpoint.path());
  ASSERT_TRUE(restarted.Write(0).ok());
  ASSERT_TRUE(restarted.Write(1).ok());
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0, 1}));
}

TEST(ExactlyOnceWriterTest, FatalProduceErrorKillsTheWriter) {
  FakeBroker broker;
  SinkRun run(broker, "");
  run.producer.fail_produce_at = 0;
  run.producer.produce_failures.push_back(
      KafkaOutcome::Error(KafkaErrorKind::kFatal, "TOPIC_AUTHORIZATION_FAILED: Broker: Topic authorization failed"));
  Status failed = run.Write(0);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("fatal error of the producer with transactional.id 'sluice-q1-out'"),
            std::string::npos) << failed.message();
  EXPECT_EQ(run.Write(0).message(), failed.message());
}

// A crash after commit_transaction returned and before the checkpoint cache
// said so: on a broker that filters aborted transactions, Kafka alone decides.
TEST(ExactlyOnceWriterTest, CrashBetweenKafkaCommitAndCacheIsRecognisedFromKafkaAlone) {
  FakeBroker broker;
  ScratchDir checkpoint;
  CommitCache cache(checkpoint.path(), kIdentity.transactional_id);
  {
    SinkRun first(broker, checkpoint.path());
    ASSERT_TRUE(first.Write(0).ok());
    ASSERT_TRUE(first.Write(1).ok());
  }
  ASSERT_TRUE(cache.Store({.committed_batch_id = 0, .attempting_batch_id = 1}).ok());  // as the crash left it
  SinkRun restarted(broker, checkpoint.path());
  ASSERT_TRUE(restarted.Write(1).ok());
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0, 1}));
  EXPECT_EQ(CommittedMarkers(broker), (std::vector<int64_t>{0, 1}));
}

// A crash before the commit leaves the transaction open; the next run's
// init_transactions aborts it and the batch is written again.
TEST(ExactlyOnceWriterTest, CrashBeforeCommitLeavesAnOpenTransactionTheNextRunAborts) {
  for (const bool with_checkpoint : {true, false}) {
    SCOPED_TRACE(with_checkpoint ? "with checkpoint" : "without checkpoint");
    FakeBroker broker;
    ScratchDir checkpoint;
    const std::string dir = with_checkpoint ? checkpoint.path() : "";
    {
      SinkRun crashed(broker, dir);
      ASSERT_TRUE(crashed.Write(0).ok());
      // Dies with the commit call: the fake neither commits nor aborts.
      crashed.producer.commit_failures = {KafkaOutcome::Error(KafkaErrorKind::kFatal, "killed")};
      ASSERT_FALSE(crashed.Write(1).ok());
    }
    SinkRun restarted(broker, dir);
    ASSERT_TRUE(restarted.Write(1).ok());
    EXPECT_EQ(restarted.writer.committed_through(), 1);
    EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0, 1}));
    EXPECT_EQ(CommittedMarkers(broker), (std::vector<int64_t>{0, 1}));
  }
}

// The librdkafka mock shows read_committed consumers every record. The probe
// notices, and the highest marker then needs the checkpoint cache.
TEST(ExactlyOnceWriterTest, OnABrokerThatShowsAbortedRecordsTheCacheDecidesTheHighestMarker) {
  FakeBroker broker;
  broker.hides_aborted = false;
  ScratchDir checkpoint;
  {
    SinkRun crashed(broker, checkpoint.path());
    ASSERT_TRUE(crashed.Write(0).ok());
    EXPECT_FALSE(crashed.writer.broker_hides_aborted_transactions());
    crashed.producer.commit_failures = {KafkaOutcome::Error(KafkaErrorKind::kFatal, "killed")};
    ASSERT_FALSE(crashed.Write(1).ok());  // its marker of batch 1 is visible here
  }
  // The cache says batch 1 was attempting, never committed: it is written again.
  SinkRun restarted(broker, checkpoint.path());
  ASSERT_TRUE(restarted.Write(1).ok());
  EXPECT_EQ(restarted.writer.committed_through(), 1);
  // The batch is now committed: the next run skips its replay.
  SinkRun again(broker, checkpoint.path());
  ASSERT_TRUE(again.Write(1).ok());
  EXPECT_EQ(again.writer.committed_through(), 1);

  // What a filtering broker would show: each batch once.
  broker.hides_aborted = true;
  EXPECT_EQ(broker.CommittedValues("out"), ValuesOf({0, 1}));
  EXPECT_EQ(CommittedMarkers(broker), (std::vector<int64_t>{0, 1}));
}

TEST(ExactlyOnceWriterTest, CommitCacheIsWrittenAtomicallyAndIgnoredForAnotherTransactionalId) {
  ScratchDir checkpoint;
  CommitCache cache(checkpoint.path() + "/sink", "sluice-q1-out");
  ASSERT_TRUE(cache.Load().ok());
  EXPECT_EQ(cache.Load()->committed_batch_id, std::nullopt);
  ASSERT_TRUE(cache.Store({.committed_batch_id = 4, .attempting_batch_id = 5}).ok());
  EXPECT_EQ(cache.Load()->committed_batch_id, 4);
  EXPECT_EQ(cache.Load()->attempting_batch_id, 5);
  const fs::path stored(cache.path());
  EXPECT_FALSE(fs::exists(stored.parent_path() / ("." + stored.filename().string() + ".tmp")));
  EXPECT_EQ(CommitCache(checkpoint.path() + "/sink", "sluice-q1-other").Load()->committed_batch_id, std::nullopt);
  // No checkpoint: nothing stored, nothing found.
  CommitCache none("", "sluice-q1-out");
  ASSERT_TRUE(none.Store({.committed_batch_id = 1, .attempting_batch_id = std::nullopt}).ok());
  EXPECT_EQ(none.Load()->committed_batch_id, std::nullopt);
}

}  // namespace
}  // namespace sluice::kafka_sink
