// librdkafka behind KafkaProducerClient. Errors are classified the way
// librdkafka's transactional API documents them (fatal, requires abort,
// retriable), fencing being the fatal error a newer producer causes.

#include "rdkafka_producer_client.h"

#include <chrono>
#include <thread>
#include <vector>

namespace sluice::kafka_sink {
namespace {

using Clock = std::chrono::steady_clock;

// How long the marker topic may take to appear, and to be read to its end (a
// read_committed read waits for other producers' open transactions, which
// end within their transaction.timeout.ms, 60 s by default).
constexpr auto kTopicCreationTimeout = std::chrono::seconds(30);
constexpr auto kReadCommittedTimeout = std::chrono::seconds(120);

bool IsFencedCode(rd_kafka_resp_err_t code) {
  return code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
         code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

// Takes ownership of `error`.
KafkaOutcome FromError(rd_kafka_error_t* error) {
  if (!error) return KafkaOutcome::Ok();
  KafkaErrorKind kind = KafkaErrorKind::kFailed;
  if (rd_kafka_error_is_fatal(error)) kind = IsFencedCode(rd_kafka_error_code(error)) ? KafkaErrorKind::kFenced
                                                                                       : KafkaErrorKind::kFatal;
  else if (rd_kafka_error_txn_requires_abort(error)) kind = KafkaErrorKind::kAbortable;
  else if (rd_kafka_error_is_retriable(error)) kind = KafkaErrorKind::kRetriable;
  std::string message = std::string(rd_kafka_error_name(error)) + ": " + rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  return KafkaOutcome::Error(kind, std::move(message));
}

// A configuration with every property set, or librdkafka's complaint.
Result<rd_kafka_conf_t*> BuildConf(const KafkaProperties& properties) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (const auto& [name, value] : properties) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument("option 'kafka." + name + "': " + error);
    }
  }
  return conf;
}

struct ConsumerCloser {
  void operator()(rd_kafka_t* consumer) const {
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
  }
};

}  // namespace

Status CheckKafkaProperties(const KafkaProperties& properties) {
  SLUICE_ASSIGN_OR_RETURN(rd_kafka_conf_t * conf, BuildConf(properties));
  rd_kafka_conf_destroy(conf);
  return Status::OK();
}

RdKafkaProducerClient::RdKafkaProducerClient(KafkaProperties properties, bool transactional)
    : properties_(std::move(properties)), transactional_(transactional) {}

Result<std::unique_ptr<RdKafkaProducerClient>> RdKafkaProducerClient::Create(
    const KafkaProperties& properties, const std::optional<std::string>& transactional_id) {
  std::unique_ptr<RdKafkaProducerClient> client(new RdKafkaProducerClient(properties, transactional_id.has_value()));
  KafkaProperties producer_properties = properties;
  producer_properties["enable.idempotence"] = "true";
  if (transactional_id) producer_properties["transactional.id"] = *transactional_id;
  SLUICE_ASSIGN_OR_RETURN(rd_kafka_conf_t * conf, BuildConf(producer_properties));
  rd_kafka_conf_set_opaque(conf, client.get());
  rd_kafka_conf_set_dr_msg_cb(conf, &RdKafkaProducerClient::OnDelivery);
  char error[512];
  client->producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (!client->producer_) {
    rd_kafka_conf_destroy(conf);
    return Status::InvalidArgument(std::string("kafka sink: cannot create the producer: ") + error);
  }
  return client;
}

RdKafkaProducerClient::~RdKafkaProducerClient() {
  for (auto& [name, topic] : topics_) rd_kafka_topic_destroy(topic);
  if (producer_) {
    // Records of an open transaction are discarded; at-least-once records
    // were flushed by the batch that produced them.
    rd_kafka_flush(producer_, 5000);
    rd_kafka_destroy(producer_);
  }
}

void RdKafkaProducerClient::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
  if (!message->err) return;
  auto* self = static_cast<RdKafkaProducerClient*>(opaque);
  if (self->failed_deliveries_++ == 0)
    self->first_failed_delivery_ = "delivery to topic '" + std::string(rd_kafka_topic_name(message->rkt)) +
                                   "' partition " + std::to_string(message->partition) +
                                   " failed: " + rd_kafka_err2str(message->err);
}

std::optional<KafkaOutcome> RdKafkaProducerClient::FatalError() const {
  char error[512];
  rd_kafka_resp_err_t code = rd_kafka_fatal_error(producer_, error, sizeof error);
  if (!code) return std::nullopt;
  return KafkaOutcome::Error(IsFencedCode(code) ? KafkaErrorKind::kFenced : KafkaErrorKind::kFatal,
                             std::string(rd_kafka_err2name(code)) + ": " + error);
}

KafkaOutcome RdKafkaProducerClient::InitTransactions() { return FromError(rd_kafka_init_transactions(producer_, -1)); }
KafkaOutcome RdKafkaProducerClient::BeginTransaction() { return FromError(rd_kafka_begin_transaction(producer_)); }
KafkaOutcome RdKafkaProducerClient::CommitTransaction() {
  return FromError(rd_kafka_commit_transaction(producer_, -1));
}
KafkaOutcome RdKafkaProducerClient::AbortTransaction() {
  failed_deliveries_ = 0;  // an abort fails the queued records; nothing to report
  KafkaOutcome outcome = FromError(rd_kafka_abort_transaction(producer_, -1));
  failed_deliveries_ = 0;
  first_failed_delivery_.clear();
  return outcome;
}

KafkaOutcome RdKafkaProducerClient::Produce(const OutgoingRecord& record) {
  auto found = topics_.find(record.topic);
  if (found == topics_.end()) {
    rd_kafka_topic_t* topic = rd_kafka_topic_new(producer_, std::string(record.topic).c_str(), nullptr);
    if (!topic)
      return KafkaOutcome::Error(KafkaErrorKind::kAbortable, "cannot use topic '" + std::string(record.topic) +
                                                                 "': " + rd_kafka_err2str(rd_kafka_last_error()));
    found = topics_.emplace(std::string(record.topic), topic).first;
  }
  rd_kafka_vu_t fields[6];
  size_t count = 0;
  fields[count].vtype = RD_KAFKA_VTYPE_RKT;
  fields[count++].u.rkt = found->second;
  fields[count].vtype = RD_KAFKA_VTYPE_PARTITION;
  fields[count++].u.i32 = record.partition;
  fields[count].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  fields[count++].u.i = RD_KAFKA_MSG_F_COPY;
  if (record.key) {
    fields[count].vtype = RD_KAFKA_VTYPE_KEY;
    fields[count].u.mem.ptr = const_cast<char*>(record.key->data());
    fields[count++].u.mem.size = record.key->size();
  }
  if (record.value) {
    fields[count].vtype = RD_KAFKA_VTYPE_VALUE;
    fields[count].u.mem.ptr = const_cast<char*>(record.value->data());
    fields[count++].u.mem.size = record.value->size();
  }
  for (;;) {
    rd_kafka_headers_t* headers = nullptr;
    size_t field_count = count;
    if (record.headers && !record.headers->empty()) {
      headers = rd_kafka_headers_new(record.headers->size());
      for (const RecordHeader& header : *record.headers)
        rd_kafka_header_add(headers, header.key.data(), static_cast<ssize_t>(header.key.size()),
                            header.value ? header.value->data() : nullptr,
                            header.value ? static_cast<ssize_t>(header.value->size()) : 0);
      fields[field_count].vtype = RD_KAFKA_VTYPE_HEADERS;
      fields[field_count++].u.headers = headers;
    }
    rd_kafka_error_t* error = rd_kafka_produceva(producer_, fields, field_count);
    if (!error) break;
    if (headers) rd_kafka_headers_destroy(headers);  // owned by librdkafka only on success
    if (rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_error_destroy(error);
      rd_kafka_poll(producer_, 100);  // serve delivery reports until there is room
      continue;
    }
    if (auto fatal = FatalError()) {
      rd_kafka_error_destroy(error);
      return *fatal;
    }
    const std::string message = "cannot produce to topic '" + std::string(record.topic) + "' partition " +
                                std::to_string(record.partition) + ": " + rd_kafka_error_string(error);
    rd_kafka_error_destroy(error);
    return KafkaOutcome::Error(transactional_ ? KafkaErrorKind::kAbortable : KafkaErrorKind::kFailed, message);
  }
  rd_kafka_poll(producer_, 0);
  return KafkaOutcome::Ok();
}

KafkaOutcome RdKafkaProducerClient::Flush() {
  // Bounded by message.timeout.ms: every record is delivered or failed by then.
  while (rd_kafka_flush(producer_, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    if (auto fatal = FatalError()) return *fatal;
  }
  if (auto fatal = FatalError()) return *fatal;
  if (failed_deliveries_ == 0) return KafkaOutcome::Ok();
  std::string message = first_failed_delivery_;
  if (failed_deliveries_ > 1) message += " (and " + std::to_string(failed_deliveries_ - 1) + " more failed records)";
  failed_deliveries_ = 0;
  first_failed_delivery_.clear();
  return KafkaOutcome::Error(transactional_ ? KafkaErrorKind::kAbortable : KafkaErrorKind::kFailed, message);
}

// Whether `topic` exists with partitions; `problem` says why not.
static bool TopicExists(rd_kafka_t* client, rd_kafka_topic_t* handle, std::string& problem) {
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t code = rd_kafka_metadata(client, 0, handle, &metadata, 5000);
  if (code) {
    problem = rd_kafka_err2str(code);
    return false;
  }
  const bool exists = metadata->topic_cnt == 1 && !metadata->topics[0].err && metadata->topics[0].partition_cnt > 0;
  if (metadata->topic_cnt == 1 && metadata->topics[0].err) problem = rd_kafka_err2str(metadata->topics[0].err);
  rd_kafka_metadata_destroy(metadata);
  return exists;
}

KafkaOutcome RdKafkaProducerClient::EnsureTopic(const std::string& topic) {
  std::unique_ptr<rd_kafka_topic_t, decltype(&rd_kafka_topic_destroy)> handle(
      rd_kafka_topic_new(producer_, topic.c_str(), nullptr), &rd_kafka_topic_destroy);
  std::string problem;
  if (TopicExists(producer_, handle.get(), problem)) return KafkaOutcome::Ok();

  // CreateTopics, compacted: the latest marker per query and sink is all
  // recovery needs. A broker that refuses the request (the librdkafka mock
  // does not implement it) may still auto-create the topic, which the
  // metadata requests below ask for.
  char error[512];
  if (rd_kafka_NewTopic_t* new_topic = rd_kafka_NewTopic_new(topic.c_str(), 1, -1, error, sizeof error)) {
    rd_kafka_NewTopic_set_config(new_topic, "cleanup.policy", "compact");
    rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(producer_, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(options, 10000, error, sizeof error);
    rd_kafka_queue_t* queue = rd_kafka_queue_new(producer_);
    rd_kafka_CreateTopics(producer_, &new_topic, 1, options, queue);
    if (rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 15000)) {
      if (rd_kafka_event_error(event)) {
        problem = rd_kafka_event_error_string(event);
      } else if (const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event)) {
        size_t count = 0;
        const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
        if (count == 1 && rd_kafka_topic_result_error(results[0]) &&
            rd_kafka_topic_result_error(results[0]) != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
          problem = rd_kafka_err2str(rd_kafka_topic_result_error(results[0]));
      }
      rd_kafka_event_destroy(event);
    }
    rd_kafka_queue_destroy(queue);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_NewTopic_destroy(new_topic);
  } else {
    problem = error;
  }

  const auto deadline = Clock::now() + kTopicCreationTimeout;
  while (Clock::now() < deadline) {
    if (TopicExists(producer_, handle.get(), problem)) return KafkaOutcome::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return KafkaOutcome::Error(KafkaErrorKind::kFailed, "cannot create topic '" + topic + "' (" + problem +
                                                          "); create it, or let the broker auto-create topics");
}

KafkaOutcome RdKafkaProducerClient::ReadCommitted(const std::string& topic, std::vector<ConsumedRecord>& out) {
  KafkaProperties consumer_properties = properties_;
  // Producer-only settings would only draw warnings from a consumer.
  for (const char* producer_only : {"acks", "linger.ms", "batch.size", "compression.type", "compression.codec",
                                    "message.timeout.ms", "delivery.timeout.ms", "queue.buffering.max.ms",
                                    "queue.buffering.max.messages", "queue.buffering.max.kbytes", "enable.idempotence",
                                    "transaction.timeout.ms", "retries", "message.send.max.retries",
                                    "partitioner", "request.required.acks", "batch.num.messages"})
    consumer_properties.erase(producer_only);
  consumer_properties["isolation.level"] = "read_committed";
  consumer_properties["enable.partition.eof"] = "true";
  consumer_properties["enable.auto.commit"] = "false";
  consumer_properties["auto.offset.reset"] = "earliest";
  // Partitions are assigned, never subscribed: the group only satisfies the
  // consumer API and commits nothing.
  consumer_properties["group.id"] = "sluice-marker-reader";
  auto conf = BuildConf(consumer_properties);
  if (!conf.ok()) return KafkaOutcome::Error(KafkaErrorKind::kFailed, conf.status().message());
  char error[512];
  std::unique_ptr<rd_kafka_t, ConsumerCloser> consumer(rd_kafka_new(RD_KAFKA_CONSUMER, *conf, error, sizeof error));
  if (!consumer) {
    rd_kafka_conf_destroy(*conf);
    return KafkaOutcome::Error(KafkaErrorKind::kFailed, std::string("cannot create a consumer: ") + error);
  }
  rd_kafka_poll_set_consumer(consumer.get());

  // The partitions and the end each had when we started.
  rd_kafka_topic_t* handle = rd_kafka_topic_new(consumer.get(), topic.c_str(), nullptr);
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t code = rd_kafka_metadata(consumer.get(), 0, handle, &metadata, 30000);
  rd_kafka_topic_destroy(handle);
  if (code) return KafkaOutcome::Error(KafkaErrorKind::kFailed, std::string("metadata: ") + rd_kafka_err2str(code));
  std::vector<int32_t> partitions;
  if (metadata->topic_cnt == 1 && !metadata->topics[0].err)
    for (int i = 0; i < metadata->topics[0].partition_cnt; ++i) partitions.push_back(metadata->topics[0].partitions[i].id);
  rd_kafka_metadata_destroy(metadata);
  std::map<int32_t, int64_t> end_of;  // partitions still to read -> their end offset
  for (int32_t partition : partitions) {
    int64_t low = 0, high = 0;
    code = rd_kafka_query_watermark_offsets(consumer.get(), topic.c_str(), partition, &low, &high, 30000);
    if (code)
      return KafkaOutcome::Error(KafkaErrorKind::kFailed, "end offset of partition " + std::to_string(partition) +
                                                              ": " + rd_kafka_err2str(code));
    if (high > low) end_of[partition] = high;
  }
  if (end_of.empty()) return KafkaOutcome::Ok();
  rd_kafka_topic_partition_list_t* assignment = rd_kafka_topic_partition_list_new(static_cast<int>(end_of.size()));
  for (const auto& [partition, end] : end_of)
    rd_kafka_topic_partition_list_add(assignment, topic.c_str(), partition)->offset = RD_KAFKA_OFFSET_BEGINNING;
  code = rd_kafka_assign(consumer.get(), assignment);
  rd_kafka_topic_partition_list_destroy(assignment);
  if (code) return KafkaOutcome::Error(KafkaErrorKind::kFailed, std::string("assign: ") + rd_kafka_err2str(code));

  std::map<int32_t, int64_t> position;
  std::string last_error;
  const auto deadline = Clock::now() + kReadCommittedTimeout;
  while (!end_of.empty()) {
    if (Clock::now() > deadline) {
      std::string where;
      for (const auto& [partition, end] : end_of)
        where += " partition " + std::to_string(partition) + " at " + std::to_string(position[partition]) +
                 " of " + std::to_string(end) + ";";
      return KafkaOutcome::Error(KafkaErrorKind::kFailed,
                                 "did not reach the end within " + std::to_string(kReadCommittedTimeout.count()) +
                                     " s (is a transaction of another producer still open?):" + where + " " + last_error);
    }
    rd_kafka_message_t* message = rd_kafka_consumer_poll(consumer.get(), 200);
    if (!message) continue;
    const int32_t partition = message->partition;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // With read_committed the end is the last stable offset: past every
      // committed or aborted record, short of open transactions.
      position[partition] = message->offset;
      if (end_of.count(partition) && message->offset >= end_of[partition]) end_of.erase(partition);
    } else if (message->err) {
      last_error = rd_kafka_message_errstr(message);
    } else {
      out.push_back(ConsumedRecord{
          .key = message->key ? std::string(static_cast<const char*>(message->key), message->key_len) : std::string(),
          .value = message->payload ? std::string(static_cast<const char*>(message->payload), message->len)
                                    : std::string(),
          .partition = partition,
          .offset = message->offset});
      position[partition] = message->offset + 1;
      if (end_of.count(partition) && message->offset + 1 >= end_of[partition]) end_of.erase(partition);
    }
    rd_kafka_message_destroy(message);
  }
  return KafkaOutcome::Ok();
}

}  // namespace sluice::kafka_sink
