// The narrow view of a Kafka producer that the kafka sink's write paths use.
//
// The sink talks to Kafka only through KafkaProducerClient, so its
// transaction state machine (exactly_once_writer.h) runs unchanged against
// librdkafka (rdkafka_producer_client.h) and against a test double that can
// model what the librdkafka mock broker cannot: fencing by a newer producer,
// abortable and retriable errors, and read_committed filtering.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

namespace sluice::kafka_sink {

// librdkafka's RD_KAFKA_PARTITION_UA: let the partitioner choose.
inline constexpr int32_t kAnyPartition = -1;

struct RecordHeader {
  std::string key;
  std::optional<std::string> value;  // a header may have a null value
};

// One record to produce. The views stay valid only during the Produce call;
// the client copies what it keeps.
struct OutgoingRecord {
  std::string_view topic;
  int32_t partition = kAnyPartition;
  std::optional<std::string_view> key;    // nullopt: no key
  std::optional<std::string_view> value;  // nullopt: a null value (a tombstone)
  const std::vector<RecordHeader>* headers = nullptr;
};

// How an operation failed, in the terms librdkafka's transactional API uses:
// what the caller must do next depends only on this.
enum class KafkaErrorKind {
  kNone,
  kRetriable,  // the same call may be retried as is
  kAbortable,  // the current transaction must be aborted; the producer stays usable
  kFenced,     // a newer producer with the same transactional.id exists; this one is dead
  kFatal,      // the producer is unusable (authorization, unsupported, ...)
  kFailed,     // this call failed (timeout, broker down); nothing else is known
};

struct KafkaOutcome {
  KafkaErrorKind kind = KafkaErrorKind::kNone;
  std::string message;

  bool ok() const { return kind == KafkaErrorKind::kNone; }
  static KafkaOutcome Ok() { return {}; }
  static KafkaOutcome Error(KafkaErrorKind kind, std::string message) { return {kind, std::move(message)}; }
};

// A record as a read_committed consumer returns it.
struct ConsumedRecord {
  std::string key;
  std::string value;
  int32_t partition = 0;
  int64_t offset = 0;
};

class KafkaProducerClient {
 public:
  virtual ~KafkaProducerClient() = default;

  // Transactions (exactly_once only). InitTransactions fences every older
  // producer with the same transactional.id and, on a real broker, completes
  // or aborts the transaction such a producer left open.
  virtual KafkaOutcome InitTransactions() = 0;
  virtual KafkaOutcome BeginTransaction() = 0;
  virtual KafkaOutcome CommitTransaction() = 0;
  virtual KafkaOutcome AbortTransaction() = 0;

  // Enqueues one record; delivery is reported by Flush.
  virtual KafkaOutcome Produce(const OutgoingRecord& record) = 0;
  // Waits until every enqueued record is delivered or has failed. Fails with
  // the first failed delivery (naming its topic and partition) or with the
  // producer's fatal error.
  virtual KafkaOutcome Flush() = 0;

  // Makes sure `topic` exists (created if needed).
  virtual KafkaOutcome EnsureTopic(const std::string& topic) = 0;
  // Every record of every partition of `topic` that a consumer with
  // isolation.level=read_committed sees, from the beginning up to the end the
  // topic had when the call started.
  virtual KafkaOutcome ReadCommitted(const std::string& topic, std::vector<ConsumedRecord>& out) = 0;
};

}  // namespace sluice::kafka_sink
