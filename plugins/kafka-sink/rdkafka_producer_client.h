// KafkaProducerClient on librdkafka: an idempotent or transactional producer,
// an admin request to create the marker topic, and a read_committed consumer
// that reads a topic up to its current end.
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "kafka_producer_client.h"
#include "sluice/status.h"

namespace sluice::kafka_sink {

// librdkafka property name -> value ("bootstrap.servers", not "kafka.bootstrap.servers").
using KafkaProperties = std::map<std::string, std::string>;

// Sets every property on a scratch configuration; the first one librdkafka
// rejects is reported as "option 'kafka.<name>': <librdkafka's message>".
Status CheckKafkaProperties(const KafkaProperties& properties);

class RdKafkaProducerClient final : public KafkaProducerClient {
 public:
  // An idempotent producer, transactional when `transactional_id` is given.
  static Result<std::unique_ptr<RdKafkaProducerClient>> Create(const KafkaProperties& properties,
                                                               const std::optional<std::string>& transactional_id);
  ~RdKafkaProducerClient() override;

  KafkaOutcome InitTransactions() override;
  KafkaOutcome BeginTransaction() override;
  KafkaOutcome CommitTransaction() override;
  KafkaOutcome AbortTransaction() override;
  KafkaOutcome Produce(const OutgoingRecord& record) override;
  KafkaOutcome Flush() override;
  KafkaOutcome EnsureTopic(const std::string& topic) override;
  KafkaOutcome ReadCommitted(const std::string& topic, std::vector<ConsumedRecord>& out) override;

 private:
  RdKafkaProducerClient(KafkaProperties properties, bool transactional);
  static void OnDelivery(rd_kafka_t* producer, const rd_kafka_message_t* message, void* opaque);
  // The producer's fatal error, if it has one.
  std::optional<KafkaOutcome> FatalError() const;

  KafkaProperties properties_;
  bool transactional_;
  rd_kafka_t* producer_ = nullptr;
  std::map<std::string, rd_kafka_topic_t*, std::less<>> topics_;
  // Delivery reports since the last Flush (served on the calling thread).
  int64_t failed_deliveries_ = 0;
  std::string first_failed_delivery_;
};

}  // namespace sluice::kafka_sink
