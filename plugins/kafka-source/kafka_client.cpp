// librdkafka helpers of the "kafka" source (see kafka_client.h).
#include "kafka_client.h"

#include <algorithm>

namespace sluice::kafka_source {

void ConsumerDeleter::operator()(rd_kafka_t* consumer) const {
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
}

Result<ConfPtr> BuildConf(const Options& options, const std::vector<std::pair<std::string, std::string>>& overrides) {
  ConfPtr conf(rd_kafka_conf_new());
  char error[512];
  for (const auto& [key, value] : options.WithPrefix("kafka.")) {
    const std::string property = key.substr(6);
    if (property == "auto.offset.reset")
      return Status::InvalidArgument(key + ": not supported; the source chooses where to start with the "
                                           "'startingOffsets' option and never relies on an offset reset");
    if (property == "enable.auto.commit" || property == "enable.auto.offset.store")
      return Status::InvalidArgument(key + ": not supported; the source reads exact offset ranges and commits "
                                           "the offsets of committed batches itself (to kafka.group.id)");
    if (rd_kafka_conf_set(conf.get(), property.c_str(), value.c_str(), error, sizeof(error)) != RD_KAFKA_CONF_OK)
      return Status::InvalidArgument(key + ": librdkafka rejects '" + value + "': " + error);
  }
  for (const auto& [property, value] : overrides)
    if (rd_kafka_conf_set(conf.get(), property.c_str(), value.c_str(), error, sizeof(error)) != RD_KAFKA_CONF_OK)
      return Status::Internal("kafka source: librdkafka rejects " + property + "=" + value + ": " + error);
  return conf;
}

Result<ConsumerPtr> NewConsumer(ConfPtr conf) {
  char error[512];
  rd_kafka_t* client = rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), error, sizeof(error));
  if (client == nullptr) return Status::InvalidArgument(std::string("kafka source: cannot create a client: ") + error);
  conf.release();  // rd_kafka_new owns it now
  return ConsumerPtr(client);
}

Result<std::vector<TopicPartition>> DiscoverPartitions(rd_kafka_t* client,
                                                       const std::function<bool(const std::string&)>& wanted,
                                                       std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* metadata = nullptr;
  // All topics, rather than the wanted ones by name: asking for a topic by
  // name may create it on brokers with auto-creation on.
  rd_kafka_resp_err_t err = rd_kafka_metadata(client, 1, nullptr, &metadata, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::IOError(std::string("kafka source: cannot read cluster metadata (are kafka.bootstrap.servers "
                                       "reachable?): ") + rd_kafka_err2str(err));
  std::vector<TopicPartition> partitions;
  for (int t = 0; t < metadata->topic_cnt; ++t) {
    const rd_kafka_metadata_topic_t& topic = metadata->topics[t];
    std::string name = topic.topic;
    if (name.rfind("__", 0) == 0 || topic.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || !wanted(name)) continue;
    for (int p = 0; p < topic.partition_cnt; ++p) partitions.push_back({name, topic.partitions[p].id});
  }
  rd_kafka_metadata_destroy(metadata);
  std::sort(partitions.begin(), partitions.end());
  return partitions;
}

Result<Watermarks> QueryWatermarks(rd_kafka_t* client, const TopicPartition& tp, std::chrono::milliseconds timeout) {
  Watermarks marks;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(client, tp.topic.c_str(), tp.partition, &marks.low,
                                                             &marks.high, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(tp, "cannot query its offsets", err);
  return marks;
}

Status KafkaError(const TopicPartition& tp, const std::string& what, rd_kafka_resp_err_t err) {
  return Status::IOError("kafka source: topic '" + tp.topic + "' partition " + std::to_string(tp.partition) + ": " +
                         what + ": " + rd_kafka_err2str(err));
}

}  // namespace sluice::kafka_source
