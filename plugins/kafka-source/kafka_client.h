// The small part of librdkafka the "kafka" source uses, behind RAII handles:
// client configuration from `kafka.*` options (librdkafka's own errors kept
// verbatim), topic discovery through metadata, and watermark queries.
#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kafka_offsets.h"
#include "sluice/options.h"
#include "sluice/status.h"

namespace sluice::kafka_source {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

// Closes a consumer (leaving no group state behind) before destroying it.
struct ConsumerDeleter {
  void operator()(rd_kafka_t* consumer) const;
};
using ConsumerPtr = std::unique_ptr<rd_kafka_t, ConsumerDeleter>;

struct TopicDeleter {
  void operator()(rd_kafka_topic_t* topic) const { rd_kafka_topic_destroy(topic); }
};
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const { rd_kafka_topic_partition_list_destroy(list); }
};
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

// Every `kafka.<name>` option becomes librdkafka property `<name>`. A property
// librdkafka rejects is reported as "kafka.<name>: <librdkafka's message>".
// Properties the source must own (offset reset, auto commit) are refused with
// the source option to use instead. `overrides` are set last.
Result<ConfPtr> BuildConf(const Options& options, const std::vector<std::pair<std::string, std::string>>& overrides);

// A consumer client built from `conf` (which it takes over).
Result<ConsumerPtr> NewConsumer(ConfPtr conf);

// Every partition of every topic `wanted` accepts, from cluster metadata.
// Internal topics (names starting with "__") are never offered.
Result<std::vector<TopicPartition>> DiscoverPartitions(rd_kafka_t* client,
                                                       const std::function<bool(const std::string&)>& wanted,
                                                       std::chrono::milliseconds timeout);

struct Watermarks {
  int64_t low = 0;   // earliest offset still stored
  int64_t high = 0;  // the offset the next record will get
};
Result<Watermarks> QueryWatermarks(rd_kafka_t* client, const TopicPartition& tp, std::chrono::milliseconds timeout);

// "topic 't' partition 0: <what>: <librdkafka's error>".
Status KafkaError(const TopicPartition& tp, const std::string& what, rd_kafka_resp_err_t err);

}  // namespace sluice::kafka_source
