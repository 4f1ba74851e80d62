// The "kafka" sink: writes each row as one Kafka record, like Spark's Kafka
// sink. Columns: `value` (STRING or BINARY, required), and optionally `key`
// (STRING or BINARY), `topic` (STRING, overrides the `topic` option per row),
// `partition` (BIGINT) and `headers` (STRING holding a JSON array
// [{"key":"k","value":"<base64>"}], a null value allowed). Other columns are
// not written.
//
// guarantee = "at_least_once" (default): an idempotent producer; every row is
// produced, the producer flushed, and any failed delivery or fatal producer
// error fails the batch naming the record's topic and partition. A replayed
// batch is written again.
//
// guarantee = "exactly_once": one Kafka transaction per batch with
// transactional.id "sluice-<query id>-<sink name>", and a marker record of the
// batch in the same transaction; exactly_once_writer.cpp explains recovery and
// what holds on which broker. Readers must consume with
// isolation.level=read_committed.
//
// Every other `kafka.*` option is passed to librdkafka without the prefix.

#include <simdjson.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "exactly_once_writer.h"
#include "rdkafka_producer_client.h"
#include "sluice/sluice.h"

namespace sluice::kafka_sink {
namespace {

constexpr const char* kAtLeastOnce = "at_least_once";
constexpr const char* kExactlyOnce = "exactly_once";

// Parses the headers column's JSON into `out`; returns why it is not valid.
std::optional<std::string> ParseHeaders(std::string_view json, simdjson::ondemand::parser& parser,
                                        std::vector<RecordHeader>& out) {
  out.clear();
  try {
    simdjson::padded_string padded(json);
    simdjson::ondemand::document document = parser.iterate(padded);
    for (auto element : document.get_array()) {
      RecordHeader header;
      bool has_key = false, has_value = false;
      for (auto field : element.get_object()) {
        const std::string_view name = field.unescaped_key();
        auto value = field.value();
        if (name == "key") {
          header.key = std::string(std::string_view(value.get_string()));
          has_key = true;
        } else if (name == "value") {
          has_value = true;
          if (value.type() == simdjson::ondemand::json_type::null) continue;
          const std::string_view encoded = value.get_string();
          header.value.emplace();
          if (!AppendBase64Decoded(encoded, *header.value)) return "header \"" + header.key + "\" has a value that is not base64: \"" +
                                    std::string(encoded) + "\"";
        }
      }
      if (!has_key || !has_value) return "every header needs \"key\" (a string) and \"value\" (base64 or null)";
      out.push_back(std::move(header));
    }
  } catch (const simdjson::simdjson_error& e) {
    return std::string("not a JSON array of {\"key\":...,\"value\":...}: ") + e.what();
  }
  return std::nullopt;
}

// Where the sink's columns are in the input schema; -1 when absent.
struct ColumnLayout {
  int value = -1, key = -1, topic = -1, partition = -1, headers = -1;
};

// Reads the rows of one batch as Kafka records, in order.
class RowRecords final : public BatchRecords {
 public:
  RowRecords(const BatchData& data, const ColumnLayout& layout, const std::string& default_topic)
      : data_(data), layout_(layout), default_topic_(default_topic), total_(data.num_rows()) {}

  int64_t size() const override { return total_; }

  Status Get(int64_t index, OutgoingRecord& out) override {
    // Rows are read in order: advance through the batches.
    while (index >= batch_start_ + CurrentRows()) {
      batch_start_ += CurrentRows();
      ++batch_;
    }
    const RecordBatch& batch = *data_.batches[batch_];
    const int64_t row = index - batch_start_;
    auto text = [&](int column) -> std::optional<std::string_view> {
      if (column < 0 || batch.column(column).is_null(row)) return std::nullopt;
      return batch.column(column).string_at(row);
    };
    out = OutgoingRecord{};
    out.value = text(layout_.value);
    out.key = text(layout_.key);
    if (auto topic = text(layout_.topic)) out.topic = *topic;
    else out.topic = default_topic_;
    if (out.topic.empty())
      return Status::InvalidArgument("kafka sink: row " + std::to_string(index) + " of batch " +
                                     std::to_string(data_.batch_id) +
                                     " has a null or empty topic and the sink has no `topic` option");
    if (layout_.partition >= 0 && batch.column(layout_.partition).is_valid(row)) {
      const int64_t partition = batch.column(layout_.partition).int64_at(row);
      if (partition < 0 || partition > INT32_MAX)
        return Status::InvalidArgument("kafka sink: row " + std::to_string(index) + " of batch " +
                                       std::to_string(data_.batch_id) + " has partition " +
                                       std::to_string(partition) + ", not a partition number");
      out.partition = static_cast<int32_t>(partition);
    }
    if (auto headers = text(layout_.headers)) {
      if (auto problem = ParseHeaders(*headers, parser_, headers_))
        return Status::InvalidArgument("kafka sink: row " + std::to_string(index) + " of batch " +
                                       std::to_string(data_.batch_id) + ": headers: " + *problem);
      out.headers = &headers_;
    }
    return Status::OK();
  }

 private:
  int64_t CurrentRows() const {
    return batch_ < data_.batches.size() ? data_.batches[batch_]->num_rows() : INT64_MAX;
  }

  const BatchData& data_;
  const ColumnLayout& layout_;
  const std::string& default_topic_;
  const int64_t total_;
  size_t batch_ = 0;
  int64_t batch_start_ = 0;
  std::vector<RecordHeader> headers_;
  simdjson::ondemand::parser parser_;
};

KafkaProperties PassThroughProperties(const Options& options) {
  KafkaProperties properties;
  for (const auto& [key, value] : options.WithPrefix("kafka.")) properties[key.substr(6)] = value;
  return properties;
}

class KafkaSink final : public Sink {
 public:
  explicit KafkaSink(const SinkContext& ctx)
      : sink_name_(ctx.name),
        query_id_(ctx.query_id),
        checkpoint_dir_(ctx.checkpoint_dir),
        topic_(ctx.options.GetString("topic")),
        exactly_once_(ctx.options.GetString("guarantee", kAtLeastOnce) == kExactlyOnce),
        marker_topic_(ctx.options.GetString("exactly_once_marker_topic", "_sluice_commits")),
        transactional_id_("sluice-" + ctx.query_id + "-" + ctx.name),
        properties_(PassThroughProperties(ctx.options)) {
    // Validate cannot see the schema; the columns are checked here.
    const Schema& schema = ctx.input_schema;
    auto find = [&](const char* name, std::initializer_list<DataType> types) {
      const int index = schema.IndexOf(name);
      if (index < 0) return -1;
      const DataType type = schema.field(index).type;
      bool accepted = false;
      std::string names;
      for (DataType t : types) {
        accepted |= t == type;
        names += std::string(names.empty() ? "" : " or ") + DataTypeName(t);
      }
      if (!accepted)
        throw std::invalid_argument(std::string("column '") + name + "' must be " + names + ", not " +
                                    DataTypeName(type));
      return index;
    };
    layout_.value = find("value", {DataType::kString, DataType::kBinary});
    if (layout_.value < 0)
      throw std::invalid_argument("the input has no 'value' column (STRING or BINARY); the kafka sink writes it as "
                                  "each record's value (columns: " + schema.ToString() + ")");
    layout_.key = find("key", {DataType::kString, DataType::kBinary});
    layout_.topic = find("topic", {DataType::kString});
    layout_.partition = find("partition", {DataType::kInt64});
    layout_.headers = find("headers", {DataType::kString});
    if (topic_.empty() && layout_.topic < 0)
      throw std::invalid_argument("no topic to write to: set the `topic` option or give the input a 'topic' column");
  }

  static Status Validate(const Options& options) {
    const KafkaProperties properties = PassThroughProperties(options);
    if (properties.count("transactional.id"))
      return Status::InvalidArgument("option 'kafka.transactional.id' is chosen by the sink (\"sluice-<query id>-"
                                     "<sink name>\" with guarantee = \"exactly_once\"); remove it");
    if (auto it = properties.find("enable.idempotence"); it != properties.end() && it->second != "true")
      return Status::InvalidArgument("option 'kafka.enable.idempotence' must stay true: both guarantees rely on "
                                     "the idempotent producer");
    if (options.Has("topic") && options.GetString("topic").empty())
      return Status::InvalidArgument("option 'topic' must not be empty");
    if (options.GetString("exactly_once_marker_topic", "_sluice_commits").empty())
      return Status::InvalidArgument("option 'exactly_once_marker_topic' must not be empty");
    return CheckKafkaProperties(properties);
  }

  DeliveryGuarantee guarantee() const override {
    return exactly_once_ ? DeliveryGuarantee::kExactlyOnce : DeliveryGuarantee::kAtLeastOnce;
  }

  std::string Description() const override {
    std::string where = topic_.empty() ? "topic column" : "topic=" + topic_;
    if (exactly_once_)
      return "KafkaSink[" + where + ", exactly-once for read_committed consumers, transactional.id=" +
             transactional_id_ + "]";
    return "KafkaSink[" + where + ", at-least-once]";
  }

  Status AddBatch(const BatchData& data) override {
    if (!client_) {
      // Here rather than in the constructor: `sluice validate` creates sinks
      // and must not connect.
      auto client = RdKafkaProducerClient::Create(
          properties_, exactly_once_ ? std::optional<std::string>(transactional_id_) : std::nullopt);
      if (!client.ok()) return client.status();
      client_ = std::move(*client);
      if (exactly_once_)
        writer_ = std::make_unique<ExactlyOnceWriter>(
            *client_, ExactlyOnceIdentity{query_id_, sink_name_, transactional_id_, marker_topic_},
            CommitCache(checkpoint_dir_, transactional_id_));
    }
    RowRecords records(data, layout_, topic_);
    if (writer_) return writer_->WriteBatch(data.batch_id, records);
    return WriteAtLeastOnce(data.batch_id, records);
  }

  Status Stop() override {
    writer_.reset();
    client_.reset();
    return Status::OK();
  }

 private:
  Status WriteAtLeastOnce(int64_t batch_id, RowRecords& records) {
    const std::string where = "kafka sink: batch " + std::to_string(batch_id) + ": ";
    OutgoingRecord record;
    for (int64_t index = 0; index < records.size(); ++index) {
      SLUICE_RETURN_IF_ERROR(records.Get(index, record));
      KafkaOutcome outcome = client_->Produce(record);
      if (!outcome.ok()) {
        client_->Flush();  // what was enqueued is delivered; at-least-once allows it
        return Status::IOError(where + outcome.message);
      }
    }
    KafkaOutcome outcome = client_->Flush();
    if (!outcome.ok()) return Status::IOError(where + outcome.message);
    return Status::OK();
  }

  std::string sink_name_, query_id_, checkpoint_dir_, topic_;
  bool exactly_once_;
  std::string marker_topic_, transactional_id_;
  KafkaProperties properties_;
  ColumnLayout layout_;
  std::unique_ptr<RdKafkaProducerClient> client_;
  std::unique_ptr<ExactlyOnceWriter> writer_;
};

const OptionSpec kOptions[] = {
    {"kafka.bootstrap.servers", OptionType::kString, nullptr, true, "Kafka brokers, host:port[,host:port...]"},
    {"topic", OptionType::kString, nullptr, false,
     "topic of every record; required unless the input has a 'topic' column, which overrides it per row"},
    {"guarantee", OptionType::kString, kAtLeastOnce, false,
     "at_least_once: idempotent producer, a replayed batch is written again; exactly_once: one transaction per "
     "batch, each batch visible once to read_committed consumers",
     "at_least_once|exactly_once"},
    {"exactly_once_marker_topic", OptionType::kString, "_sluice_commits", false,
     "exactly_once: topic holding one marker per committed batch, written in the batch's transaction and read on "
     "restart; created (compacted) if missing"},
    {"kafka.*", OptionType::kString, nullptr, false,
     "any librdkafka producer property, e.g. kafka.compression.type; checked by validate"},
};

}  // namespace
}  // namespace sluice::kafka_sink

SLUICE_REGISTER_SINK("kafka", "0.1.0", "Writes rows to Kafka topics, at-least-once or exactly-once (transactions)",
                     sluice::kafka_sink::kOptions, sluice::kafka_sink::KafkaSink)
