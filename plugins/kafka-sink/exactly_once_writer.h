// The kafka sink's exactly-once write path: one Kafka transaction per batch,
// with a marker record naming the batch inside the same transaction, and the
// recovery rule that recognises on restart a batch whose transaction
// committed but whose commit-log entry the engine never wrote. The full
// reasoning, and what is proven where, is at the top of exactly_once_writer.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "kafka_producer_client.h"
#include "sluice/status.h"

namespace sluice::kafka_sink {

// The rows of one batch as Kafka records, read one at a time.
class BatchRecords {
 public:
  virtual ~BatchRecords() = default;
  virtual int64_t size() const = 0;
  // Fills `out` for record `index`; `out` stays valid until the next call.
  virtual Status Get(int64_t index, OutgoingRecord& out) = 0;
};

struct ExactlyOnceIdentity {
  std::string query_id;
  std::string sink_name;
  std::string transactional_id;
  std::string marker_topic;
};

// The marker record of one committed batch, and its parser.
std::string MarkerKey(const std::string& query_id, const std::string& sink_name);
std::string MarkerValue(const std::string& query_id, const std::string& sink_name, int64_t batch_id);
// The batch id if `value` is a marker of exactly this query and sink.
std::optional<int64_t> ParseMarkerValue(std::string_view value, const std::string& query_id,
                                        const std::string& sink_name);

// What the sink remembers in its checkpoint directory: a cache, never the
// source of truth on a broker that filters aborted transactions.
struct CachedCommitState {
  std::optional<int64_t> committed_batch_id;   // written after a Kafka commit returned
  std::optional<int64_t> attempting_batch_id;  // written before a batch's transaction began
};

// Reads and atomically replaces <dir>/kafka-sink-commits.json. An empty
// directory means "no checkpoint": nothing is stored and Load finds nothing.
class CommitCache {
 public:
  CommitCache(std::string dir, std::string transactional_id);
  Result<CachedCommitState> Load() const;
  Status Store(const CachedCommitState& state) const;
  std::string path() const;

 private:
  std::string dir_;
  std::string transactional_id_;
};

class ExactlyOnceWriter {
 public:
  ExactlyOnceWriter(KafkaProducerClient& client, ExactlyOnceIdentity identity, CommitCache cache);

  // Writes batch `batch_id` in one transaction, or skips it when it is already
  // committed. OK means the transaction committed (or had committed before).
  Status WriteBatch(int64_t batch_id, BatchRecords& records);

  // After the first WriteBatch: the highest batch known committed, and
  // whether the broker hid an aborted probe transaction from read_committed.
  std::optional<int64_t> committed_through() const { return committed_through_; }
  bool broker_hides_aborted_transactions() const { return broker_hides_aborted_; }

 private:
  enum class State { kUninitialised, kReady, kDead };

  Status Recover();
  Status ProbeAbortFiltering(std::string& probe_nonce);
  OutgoingRecord MarkerTopicRecord(std::string_view key, std::string_view value) const;
  Status Produce(int64_t batch_id, BatchRecords& records);
  Status Commit(int64_t batch_id);
  // Aborts the open transaction after `cause`; returns the batch's error.
  Status AbortAfter(int64_t batch_id, const KafkaOutcome& cause);
  // Turns a failed outcome into the batch's error, marking the writer dead
  // when the producer can no longer be used.
  Status Fail(int64_t batch_id, const std::string& during, const KafkaOutcome& outcome);

  KafkaProducerClient& client_;
  ExactlyOnceIdentity identity_;
  CommitCache cache_;
  State state_ = State::kUninitialised;
  Status dead_status_;
  std::optional<int64_t> committed_through_;
  bool broker_hides_aborted_ = true;
};

}  // namespace sluice::kafka_sink
