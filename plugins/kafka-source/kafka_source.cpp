// The "kafka" source: Spark's Kafka source for sluice. An offset is the
// per-partition NEXT offset to read ({"t":{"0":123,"1":45}}, Spark's format),
// so a batch [start, end) is an exact set of records on any replay: every read
// piece assigns its partition and seeks to its start, never relying on
// consumer-group state. Partitions are discovered each trigger (new partitions
// and new topics matching subscribePattern start at offset 0, as in Spark).
// Records deleted by retention before they were read fail the query, or with
// failOnDataLoss=false are skipped, logged and counted. After each committed
// batch the end offsets are committed to consumer group `kafka.group.id`
// (default "sluice-<query id>") so lag tools see the pipeline's lag; recovery
// never reads them back.
#include <re2/re2.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "kafka_client.h"
#include "kafka_offsets.h"
#include "sluice/durable_file.h"
#include "sluice/plugin.h"
#include "sluice/value_format.h"

namespace sluice::kafka_source {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kInitialOffsetsFile = "initial-offsets.json";

// ---- options ------------------------------------------------------------------

struct Settings {
  enum class Subscription { kTopics, kPattern, kAssign };
  Subscription subscription = Subscription::kTopics;
  std::vector<std::string> topics;           // subscribe
  std::shared_ptr<const RE2> topic_pattern;  // subscribePattern
  std::vector<TopicPartition> assignment;    // assign
  std::string subscription_text;             // as given, for Description()
  OffsetSpec starting_offsets;
  OffsetSpec ending_offsets;
  int64_t max_offsets_per_trigger = 0;  // 0: no limit
  int64_t min_partitions = 0;           // 0: one piece per partition
  bool fail_on_data_loss = true;
  bool include_headers = false;
  milliseconds request_timeout{120000};
  std::string group_id;  // lag monitoring only
};

std::vector<std::string> SplitTopics(const std::string& list) {
  std::vector<std::string> topics;
  std::stringstream in(list);
  for (std::string topic; std::getline(in, topic, ',');) {
    while (!topic.empty() && topic.front() == ' ') topic.erase(topic.begin());
    while (!topic.empty() && topic.back() == ' ') topic.pop_back();
    if (!topic.empty()) topics.push_back(topic);
  }
  return topics;
}

Result<Settings> ResolveSettings(const Options& options, const std::string& query_id) {
  Settings s;
  const int given = options.Has("subscribe") + options.Has("subscribePattern") + options.Has("assign");
  if (given != 1)
    return Status::InvalidArgument("give exactly one of 'subscribe' (comma-separated topics), 'subscribePattern' "
                                   "(a regular expression) or 'assign' (JSON such as {\"t\":[0,1]})" +
                                   std::string(given == 0 ? "" : "; more than one is set"));
  if (options.Has("subscribe")) {
    s.subscription = Settings::Subscription::kTopics;
    s.subscription_text = options.GetString("subscribe");
    s.topics = SplitTopics(s.subscription_text);
    if (s.topics.empty()) return Status::InvalidArgument("subscribe: names no topic");
  } else if (options.Has("subscribePattern")) {
    s.subscription = Settings::Subscription::kPattern;
    s.subscription_text = options.GetString("subscribePattern");
    auto pattern = std::make_shared<const RE2>(s.subscription_text, RE2::Quiet);
    if (!pattern->ok())
      return Status::InvalidArgument("subscribePattern: '" + s.subscription_text +
                                     "' is not a valid regular expression: " + pattern->error());
    s.topic_pattern = std::move(pattern);
  } else {
    s.subscription = Settings::Subscription::kAssign;
    s.subscription_text = options.GetString("assign");
    auto assignment = ParseAssignment(s.subscription_text);
    if (!assignment.ok()) return assignment.status();
    s.assignment = std::move(assignment).value();
  }

  auto starting = ParseOffsetSpec("startingOffsets", options.GetString("startingOffsets", "latest"));
  if (!starting.ok()) return starting.status();
  s.starting_offsets = std::move(starting).value();
  auto ending = ParseOffsetSpec("endingOffsets", options.GetString("endingOffsets", "latest"));
  if (!ending.ok()) return ending.status();
  s.ending_offsets = std::move(ending).value();
  if (s.ending_offsets.kind == OffsetSpec::Kind::kEarliest)
    return Status::InvalidArgument("endingOffsets: \"earliest\" would read nothing; give \"latest\" or JSON offsets");
  for (const auto& [tp, offset] : s.ending_offsets.explicit_offsets)
    if (offset == kEarliestMarker)
      return Status::InvalidArgument("endingOffsets: -2 (earliest) is not allowed, for topic '" + tp.topic +
                                     "' partition " + std::to_string(tp.partition));

  if (options.Has("maxOffsetsPerTrigger")) {
    s.max_offsets_per_trigger = options.GetInt("maxOffsetsPerTrigger");
    if (s.max_offsets_per_trigger <= 0)
      return Status::InvalidArgument("maxOffsetsPerTrigger: must be a positive number of records");
  }
  if (options.Has("minPartitions")) {
    s.min_partitions = options.GetInt("minPartitions");
    if (s.min_partitions <= 0) return Status::InvalidArgument("minPartitions: must be positive");
  }
  s.fail_on_data_loss = options.GetBool("failOnDataLoss", true);
  s.include_headers = options.GetBool("includeHeaders", false);
  int64_t timeout_ms = options.GetInt("kafkaConsumer.pollTimeoutMs", 120000);
  if (timeout_ms <= 0) return Status::InvalidArgument("kafkaConsumer.pollTimeoutMs: must be positive");
  s.request_timeout = milliseconds(timeout_ms);
  s.group_id = options.GetString("kafka.group.id", "sluice-" + query_id);
  return s;
}

// ---- rows ---------------------------------------------------------------------

Schema KafkaSchema(bool include_headers) {
  std::vector<Field> fields = {
      {"key", DataType::kBinary, true},          {"value", DataType::kBinary, true},
      {"topic", DataType::kString, false},       {"partition", DataType::kInt64, false},
      {"offset", DataType::kInt64, false},       {"timestamp", DataType::kTimestamp, true},
      {"timestampType", DataType::kInt64, false},
  };
  if (include_headers) fields.push_back({"headers", DataType::kString, true});
  return Schema(std::move(fields));
}

// Column builders for one read piece; emits a batch every kPreferredBatchRows.
class RowBatcher {
 public:
  RowBatcher(SchemaPtr schema, bool include_headers)
      : schema_(std::move(schema)),
        include_headers_(include_headers),
        key_(DataType::kBinary, kPreferredBatchRows),
        value_(DataType::kBinary, kPreferredBatchRows),
        topic_(DataType::kString, kPreferredBatchRows),
        partition_(DataType::kInt64, kPreferredBatchRows),
        offset_(DataType::kInt64, kPreferredBatchRows),
        timestamp_(DataType::kTimestamp, kPreferredBatchRows),
        timestamp_type_(DataType::kInt64, kPreferredBatchRows),
        headers_(DataType::kString, include_headers ? kPreferredBatchRows : 0) {}

  void Append(const rd_kafka_message_t& message, std::string_view topic) {
    if (message.key != nullptr) key_.AppendString({static_cast<const char*>(message.key), message.key_len});
    else key_.AppendNull();
    if (message.payload != nullptr) value_.AppendString({static_cast<const char*>(message.payload), message.len});
    else value_.AppendNull();
    topic_.AppendString(topic);
    partition_.AppendInt64(message.partition);
    offset_.AppendInt64(message.offset);
    rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    int64_t millis = rd_kafka_message_timestamp(&message, &type);
    // Kafka's TimestampType ids, as Spark shows them: -1 none, 0 CreateTime, 1 LogAppendTime.
    if (type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) {
      timestamp_.AppendNull();
      timestamp_type_.AppendInt64(-1);
    } else {
      timestamp_.AppendTimestamp(millis * 1000);
      timestamp_type_.AppendInt64(type == RD_KAFKA_TIMESTAMP_CREATE_TIME ? 0 : 1);
    }
    if (include_headers_) AppendHeaders(message);
    ++rows_;
  }

  int64_t rows() const { return rows_; }

  Status Flush(ReadContext& ctx) {
    if (rows_ == 0) return Status::OK();
    std::vector<ColumnPtr> columns = {key_.Finish(),    value_.Finish(),     topic_.Finish(),
                                      partition_.Finish(), offset_.Finish(), timestamp_.Finish(),
                                      timestamp_type_.Finish()};
    if (include_headers_) columns.push_back(headers_.Finish());
    auto batch = std::make_shared<const RecordBatch>(schema_, std::move(columns), rows_);
    rows_ = 0;
    return ctx.Emit(std::move(batch));
  }

 private:
  // [{"key":"k","value":"<base64>"}], value null for a header without one.
  void AppendHeaders(const rd_kafka_message_t& message) {
    scratch_.assign("[");
    rd_kafka_headers_t* headers = nullptr;
    if (rd_kafka_message_headers(&message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      const char* name = nullptr;
      const void* value = nullptr;
      size_t size = 0;
      for (size_t i = 0; rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        if (i > 0) scratch_ += ',';
        scratch_ += "{\"key\":";
        AppendJsonString(scratch_, name);
        scratch_ += ",\"value\":";
        if (value == nullptr) {
          scratch_ += "null";
        } else {
          scratch_ += '"';
          AppendBase64(scratch_, {static_cast<const char*>(value), size});
          scratch_ += '"';
        }
        scratch_ += '}';
      }
    }
    scratch_ += ']';
    headers_.AppendString(scratch_);
  }

  SchemaPtr schema_;
  bool include_headers_;
  ColumnBuilder key_, value_, topic_, partition_, offset_, timestamp_, timestamp_type_, headers_;
  std::string scratch_;
  int64_t rows_ = 0;
};

void LogWarning(const std::string& message) {
  std::fprintf(stderr, "warning: kafka source: %s\n", message.c_str());
}

// ---- the source ------------------------------------------------------------------

class KafkaSource : public Source {
 public:
  explicit KafkaSource(const SourceContext& ctx)
      : options_(ctx.options), checkpoint_dir_(ctx.checkpoint_dir) {
    auto settings = ResolveSettings(ctx.options, ctx.query_id);
    if (!settings.ok()) throw std::invalid_argument(settings.status().message());
    settings_ = std::move(settings).value();
    schema_ = std::make_shared<const Schema>(KafkaSchema(settings_.include_headers));
  }

  static Status Validate(const Options& options) {
    auto settings = ResolveSettings(options, "validate");
    if (!settings.ok()) return settings.status();
    return BuildConf(options, {}).status();
  }

  ~KafkaSource() override { Stop(); }

  Schema schema() const override { return *schema_; }
  std::string Description() const override { return "KafkaSource[" + settings_.subscription_text + "]"; }

  Result<std::optional<Offset>> LatestOffset(const std::optional<Offset>& start, ReadLimit limit) override {
    SLUICE_RETURN_IF_ERROR(Connect());
    SLUICE_ASSIGN_OR_RETURN(auto partitions, CurrentPartitions());
    PartitionOffsets from;
    if (start) {
      SLUICE_ASSIGN_OR_RETURN(from, ParseOffsets(*start));
    } else {
      SLUICE_ASSIGN_OR_RETURN(from, InitialOffsets(&partitions));
    }
    PartitionOffsets end = from;
    for (const TopicPartition& tp : partitions) {
      std::optional<int64_t> cap;
      if (available_now_end_) {
        auto it = available_now_end_->find(tp);
        if (it == available_now_end_->end()) continue;  // appeared after the snapshot
        cap = it->second;
      }
      if (auto it = settings_.ending_offsets.explicit_offsets.find(tp);
          it != settings_.ending_offsets.explicit_offsets.end() && it->second >= 0)
        cap = cap ? std::min(*cap, it->second) : it->second;
      SLUICE_ASSIGN_OR_RETURN(Watermarks marks, QueryWatermarks(metadata_client_.get(), tp, settings_.request_timeout));
      int64_t until = cap ? std::min(*cap, marks.high) : marks.high;
      auto known = from.find(tp);
      if (known != from.end() && until < known->second) {
        // The partition holds fewer records than were already read: it was
        // deleted and recreated, or truncated.
        std::string problem = "topic '" + tp.topic + "' partition " + std::to_string(tp.partition) +
                              " ends at offset " + std::to_string(until) + ", before offset " +
                              std::to_string(known->second) + " already read (was the topic recreated?)";
        if (settings_.fail_on_data_loss)
          return Status::IOError("kafka source: " + problem + "; set failOnDataLoss=false to continue from there");
        LogWarning(problem + "; continuing from offset " + std::to_string(until));
      }
      end[tp] = until;
    }
    if (limit == ReadLimit::kDefault && settings_.max_offsets_per_trigger > 0)
      end = ApplyRecordLimit(from, end, settings_.max_offsets_per_trigger);

    bool anything_new = false;
    for (const auto& [tp, until] : end) {
      auto it = from.find(tp);
      if (until != (it == from.end() ? 0 : it->second)) anything_new = true;
    }
    if (!anything_new) return start;
    return std::optional<Offset>(FormatOffsets(end));
  }

  Status PrepareForAvailableNow() override {
    SLUICE_RETURN_IF_ERROR(Connect());
    SLUICE_ASSIGN_OR_RETURN(auto partitions, CurrentPartitions());
    // The first trigger follows at once and may use this discovery: another
    // metadata request right after one often waits ~40 ms in librdkafka.
    discovered_for_first_trigger_ = partitions;
    PartitionOffsets snapshot;
    for (const TopicPartition& tp : partitions) {
      SLUICE_ASSIGN_OR_RETURN(Watermarks marks, QueryWatermarks(metadata_client_.get(), tp, settings_.request_timeout));
      snapshot[tp] = marks.high;
    }
    available_now_end_ = std::move(snapshot);
    return Status::OK();
  }

  Result<std::vector<std::string>> PlanPartitions(const std::optional<Offset>& start, const Offset& end) override {
    PartitionOffsets from;
    if (start) {
      SLUICE_ASSIGN_OR_RETURN(from, ParseOffsets(*start));
    } else {
      SLUICE_RETURN_IF_ERROR(Connect());
      SLUICE_ASSIGN_OR_RETURN(from, InitialOffsets());
    }
    SLUICE_ASSIGN_OR_RETURN(PartitionOffsets until, ParseOffsets(end));
    std::vector<std::string> pieces;
    std::vector<OffsetRange> ranges = PlanRanges(from, until, settings_.min_partitions);
    for (const OffsetRange& range : ranges) pieces.push_back(FormatRange(range));
    SLUICE_RETURN_IF_ERROR(StartFetching(ranges, pieces));
    return pieces;
  }

  Status ReadPartition(const std::string& piece, ReadContext& ctx) override {
    SLUICE_ASSIGN_OR_RETURN(OffsetRange range, ParseRange(piece));
    ConsumerPtr reader = TakeFetchingReader(piece);
    const bool assigned = reader != nullptr;
    if (!assigned) {
      SLUICE_ASSIGN_OR_RETURN(reader, AcquireReader());
    }
    Status status = ReadRange(reader.get(), range, assigned, ctx);
    // A reader that failed may hold a broken assignment: let it go.
    if (status.ok()) ReleaseReader(std::move(reader));
    return status;
  }

  Status Commit(const Offset& end) override {
    // Lag monitoring only: a failure here never fails the query.
    auto offsets = ParseOffsets(end);
    if (!offsets.ok() || offsets->empty()) return Status::OK();
    if (!commit_client_) commit_client_ = NewCommitClient();
    if (!commit_client_) return Status::OK();
    PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets->size())));
    for (const auto& [tp, offset] : *offsets)
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_commit(commit_client_.get(), list.get(), /*async=*/0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      LogWarning("committing offsets to consumer group '" + settings_.group_id +
                 "' (for lag monitoring) failed: " + rd_kafka_err2str(err));
    return Status::OK();
  }

  void Stop() override {
    std::lock_guard lock(readers_mu_);
    fetching_.clear();
    idle_readers_.clear();
    commit_client_.reset();
    known_topics_.clear();  // before their client
    metadata_client_.reset();
  }

  // Records skipped because retention deleted them before they were read
  // (failOnDataLoss=false), since this source was created.
  int64_t records_lost() const { return records_lost_.load(); }
  // Records deleted before they were read and skipped (failOnDataLoss = false).
  std::map<std::string, int64_t> Metrics() const override { return {{"recordsLost", records_lost_.load()}}; }

 private:
  Result<ConsumerPtr> NewReader() const {
    // group.id only because librdkafka's assign() wants one: readers never
    // join the group and never commit.
    std::vector<std::pair<std::string, std::string>> settings = {{"group.id", settings_.group_id},
                                                                 {"enable.auto.commit", "false"},
                                                                 {"enable.auto.offset.store", "false"},
                                                                 {"enable.partition.eof", "true"}};
    // A reader fetches a known range and stops at its end, so librdkafka's
    // defaults for a long-lived consumer (pause 500 ms once 100 000 records
    // are queued, wait up to 500 ms per fetch) only add idle time. The user's
    // kafka.* values still win.
    for (const auto& [property, value] : {std::pair<std::string, std::string>{"fetch.error.backoff.ms", "10"},
                                          {"fetch.wait.max.ms", "10"},
                                          {"queued.min.messages", "1000000"}})
      if (!options_.Has("kafka." + property)) settings.emplace_back(property, value);
    SLUICE_ASSIGN_OR_RETURN(ConfPtr conf, BuildConf(options_, settings));
    return NewConsumer(std::move(conf));
  }

  Status Connect() {
    if (metadata_client_) return Status::OK();
    SLUICE_ASSIGN_OR_RETURN(metadata_client_, NewReader());
    // Created now so that it connects while the first batch runs, not after it.
    commit_client_ = NewCommitClient();
    return Status::OK();
  }

  // The client that commits end offsets for lag monitoring, or null (with a
  // warning) when it cannot be made: that never fails the query.
  ConsumerPtr NewCommitClient() const {
    auto conf = BuildConf(options_, {{"group.id", settings_.group_id}, {"enable.auto.commit", "false"}});
    if (!conf.ok()) return nullptr;
    auto client = NewConsumer(std::move(conf).value());
    if (!client.ok()) {
      LogWarning("cannot create the client that commits lag offsets: " + client.status().message());
      return nullptr;
    }
    return std::move(client).value();
  }

  // Assigns a reader to each of the batch's first pieces at its start offset
  // as soon as the batch is planned, so librdkafka fetches and decompresses
  // every piece at once while the workers are still busy with earlier ones
  // (a topic with more partitions than workers would otherwise leave the
  // broker connections idle for the later pieces). Pieces beyond the cap are
  // assigned when a worker reaches them.
  Status StartFetching(const std::vector<OffsetRange>& ranges, const std::vector<std::string>& pieces) {
    const size_t cap = std::max<size_t>(4, 2 * std::thread::hardware_concurrency());
    std::map<std::string, ConsumerPtr> fetching;
    for (size_t i = 0; i < ranges.size() && i < cap; ++i) {
      if (ranges[i].from >= ranges[i].until) continue;
      SLUICE_ASSIGN_OR_RETURN(ConsumerPtr reader, AcquireReader());
      SLUICE_RETURN_IF_ERROR(Seek(reader.get(), ranges[i], ranges[i].from));
      fetching.emplace(pieces[i], std::move(reader));
    }
    std::lock_guard lock(readers_mu_);
    // Readers of an earlier plan that were never read (a failed batch) are
    // still assigned: drop them rather than reuse a stale assignment.
    fetching_ = std::move(fetching);
    return Status::OK();
  }

  ConsumerPtr TakeFetchingReader(const std::string& piece) {
    std::lock_guard lock(readers_mu_);
    auto it = fetching_.find(piece);
    if (it == fetching_.end()) return nullptr;
    ConsumerPtr reader = std::move(it->second);
    fetching_.erase(it);
    return reader;
  }

  Result<std::vector<TopicPartition>> CurrentPartitions() {
    if (discovered_for_first_trigger_) {
      std::vector<TopicPartition> partitions = std::move(*discovered_for_first_trigger_);
      discovered_for_first_trigger_.reset();
      return partitions;
    }
    SLUICE_ASSIGN_OR_RETURN(std::vector<TopicPartition> partitions, DiscoverCurrentPartitions());
    SLUICE_RETURN_IF_ERROR(KnowTopics(partitions));
    return partitions;
  }

  // Makes the metadata client hold a handle of every topic it will query, and
  // loads their leaders once. Without it the first watermark query of a
  // topic finds no leader in librdkafka's cache, asks for one, and waits out
  // librdkafka's pause between metadata requests (about 40 ms) first.
  Status KnowTopics(const std::vector<TopicPartition>& partitions) {
    bool added = false;
    for (const TopicPartition& tp : partitions) {
      if (known_topics_.count(tp.topic)) continue;
      rd_kafka_topic_t* topic = rd_kafka_topic_new(metadata_client_.get(), tp.topic.c_str(), nullptr);
      if (topic == nullptr) return KafkaError(tp, "cannot create a topic handle", rd_kafka_last_error());
      known_topics_.emplace(tp.topic, TopicPtr(topic));
      added = true;
    }
    if (!added) return Status::OK();
    const rd_kafka_metadata_t* metadata = nullptr;
    // all_topics = 0: the topics this client holds handles of, and no others.
    rd_kafka_resp_err_t err = rd_kafka_metadata(metadata_client_.get(), 0, nullptr, &metadata,
                                                static_cast<int>(settings_.request_timeout.count()));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      return Status::IOError(std::string("kafka source: cannot read topic metadata: ") + rd_kafka_err2str(err));
    rd_kafka_metadata_destroy(metadata);
    return Status::OK();
  }

  Result<std::vector<TopicPartition>> DiscoverCurrentPartitions() {
    switch (settings_.subscription) {
      case Settings::Subscription::kAssign:
        return settings_.assignment;
      case Settings::Subscription::kTopics:
        return DiscoverPartitions(
            metadata_client_.get(),
            [&](const std::string& topic) {
              return std::find(settings_.topics.begin(), settings_.topics.end(), topic) != settings_.topics.end();
            },
            settings_.request_timeout);
      case Settings::Subscription::kPattern:
        return DiscoverPartitions(
            metadata_client_.get(), [&](const std::string& topic) { return RE2::FullMatch(topic, *settings_.topic_pattern); },
            settings_.request_timeout);
    }
    return Status::Internal("kafka source: unknown subscription");
  }

  // Where the first batch starts. Resolved once (startingOffsets against the
  // partitions that exist then) and kept in the checkpoint, so that a restart
  // before the first commit replays the same range even with "latest".
  // `current`: the partitions the caller just discovered, if it did.
  Result<PartitionOffsets> InitialOffsets(const std::vector<TopicPartition>* current = nullptr) {
    if (initial_offsets_) return *initial_offsets_;
    const std::string path = checkpoint_dir_.empty() ? "" : checkpoint_dir_ + "/" + kInitialOffsetsFile;
    if (!path.empty() && std::filesystem::exists(path)) {
      std::ifstream in(path);
      std::stringstream content;
      content << in.rdbuf();
      auto stored = ParseOffsets(content.str());
      if (!stored.ok()) return Status::Corruption(path + ": " + stored.status().message());
      initial_offsets_ = std::move(stored).value();
      return *initial_offsets_;
    }
    std::vector<TopicPartition> partitions;
    if (current) {
      partitions = *current;
    } else {
      SLUICE_ASSIGN_OR_RETURN(partitions, CurrentPartitions());
    }
    PartitionOffsets offsets;
    const OffsetSpec& spec = settings_.starting_offsets;
    if (spec.kind == OffsetSpec::Kind::kExplicit) {
      for (const TopicPartition& tp : partitions)
        if (!spec.explicit_offsets.count(tp))
          return Status::InvalidArgument("startingOffsets: gives no offset for topic '" + tp.topic + "' partition " +
                                         std::to_string(tp.partition) +
                                         "; list every partition (-2 earliest, -1 latest)");
      for (const auto& [tp, offset] : spec.explicit_offsets) {
        if (offset >= 0) {
          offsets[tp] = offset;
          continue;
        }
        SLUICE_ASSIGN_OR_RETURN(Watermarks marks, QueryWatermarks(metadata_client_.get(), tp, settings_.request_timeout));
        offsets[tp] = offset == kEarliestMarker ? marks.low : marks.high;
      }
    } else {
      for (const TopicPartition& tp : partitions) {
        SLUICE_ASSIGN_OR_RETURN(Watermarks marks, QueryWatermarks(metadata_client_.get(), tp, settings_.request_timeout));
        offsets[tp] = spec.kind == OffsetSpec::Kind::kEarliest ? marks.low : marks.high;
      }
    }
    if (!path.empty()) {
      SLUICE_RETURN_IF_ERROR(CreateDirectoriesDurably(checkpoint_dir_));
      SLUICE_RETURN_IF_ERROR(WriteFileAtomically(path, FormatOffsets(offsets)));
    }
    initial_offsets_ = offsets;
    return offsets;
  }

  Result<ConsumerPtr> AcquireReader() {
    {
      std::lock_guard lock(readers_mu_);
      if (!idle_readers_.empty()) {
        ConsumerPtr reader = std::move(idle_readers_.back());
        idle_readers_.pop_back();
        return reader;
      }
    }
    return NewReader();
  }

  void ReleaseReader(ConsumerPtr reader) {
    std::lock_guard lock(readers_mu_);
    idle_readers_.push_back(std::move(reader));
  }

  // Handles records [lost_from, lost_until) that retention deleted: an error,
  // or with failOnDataLoss=false a warning and a count.
  Status ReportDataLoss(const OffsetRange& range, int64_t lost_from, int64_t lost_until, int64_t low_watermark) {
    std::string what = DescribeDataLoss(range, lost_from, lost_until, low_watermark);
    if (settings_.fail_on_data_loss)
      return Status::IOError("kafka source: " + what +
                             ". Set failOnDataLoss=false to skip lost records with a warning instead");
    int64_t total = records_lost_ += lost_until - lost_from;
    LogWarning(what + "; skipped (failOnDataLoss=false), " + std::to_string(total) + " records lost so far");
    return Status::OK();
  }

  Status Seek(rd_kafka_t* reader, const OffsetRange& range, int64_t offset) {
    PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), range.partition.topic.c_str(), range.partition.partition)->offset =
        offset;
    rd_kafka_resp_err_t err = rd_kafka_assign(reader, list.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return KafkaError(range.partition, "cannot assign it", err);
    return Status::OK();
  }

  // Reads records [range.from, range.until) of one partition, in order.
  // `assigned`: the reader already fetches from range.from (StartFetching).
  Status ReadRange(rd_kafka_t* reader, OffsetRange range, bool assigned, ReadContext& ctx) {
    const int64_t planned_from = range.from;
    SLUICE_ASSIGN_OR_RETURN(Watermarks marks, QueryWatermarks(reader, range.partition, settings_.request_timeout));
    if (auto lost = LostRecords(range, marks.low)) {
      SLUICE_RETURN_IF_ERROR(ReportDataLoss(range, lost->first, lost->second, marks.low));
      range.from = lost->second;
    }
    if (marks.high < range.until) {
      std::string what = "records [" + std::to_string(std::max(marks.high, range.from)) + ", " +
                         std::to_string(range.until) + ") of topic '" + range.partition.topic + "' partition " +
                         std::to_string(range.partition.partition) +
                         " no longer exist: the partition ends at offset " + std::to_string(marks.high) +
                         " (was the topic deleted and recreated?)";
      if (settings_.fail_on_data_loss) return Status::IOError("kafka source: " + what);
      records_lost_ += range.until - std::max(marks.high, range.from);
      LogWarning(what + "; skipped (failOnDataLoss=false)");
      range.until = marks.high;
    }
    if (range.from >= range.until) {
      if (assigned) rd_kafka_assign(reader, nullptr);
      return Status::OK();
    }

    if (!assigned || range.from != planned_from) SLUICE_RETURN_IF_ERROR(Seek(reader, range, range.from));
    rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(reader);
    Status status = ConsumeAssigned(reader, queue, range, ctx);
    rd_kafka_queue_destroy(queue);
    rd_kafka_assign(reader, nullptr);
    return status;
  }

  Status ConsumeAssigned(rd_kafka_t* reader, rd_kafka_queue_t* queue, OffsetRange range, ReadContext& ctx) {
    RowBatcher batcher(schema_, settings_.include_headers);
    constexpr size_t kMessagesPerCall = 1024;
    rd_kafka_message_t* messages[kMessagesPerCall];
    int64_t next_offset = range.from;
    auto last_progress = Clock::now();
    std::string last_error;
    bool done = false;
    while (!done) {
      if (ctx.StopRequested()) return Status::Aborted("kafka source: stopped while reading");
      // Ask for no more than the range still holds (plus its end-of-partition
      // event), so the last call returns at once instead of waiting out the
      // timeout for messages that will never come.
      const size_t wanted = static_cast<size_t>(
          std::clamp<int64_t>(range.until - next_offset + 1, 1, static_cast<int64_t>(kMessagesPerCall)));
      ssize_t count = rd_kafka_consume_batch_queue(queue, 100, messages, wanted);
      if (count < 0) return KafkaError(range.partition, "cannot consume", rd_kafka_last_error());
      const int64_t offset_before = next_offset;
      std::optional<int64_t> reseek_at;
      Status failure;
      for (ssize_t i = 0; i < count; ++i) {
        rd_kafka_message_t* message = messages[i];
        if (done || !failure.ok() || reseek_at) {
          rd_kafka_message_destroy(message);
          continue;
        }
        if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          // The end of what the partition holds now: with compaction or
          // transaction markers the last offsets of a range carry no record.
          if (message->offset >= range.until) done = true;
        } else if (message->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
          // Retention deleted records while this piece was being read.
          auto marks = QueryWatermarks(reader, range.partition, settings_.request_timeout);
          if (!marks.ok()) failure = marks.status();
          else if (marks->low <= next_offset)
            failure = KafkaError(range.partition, "offset " + std::to_string(next_offset) + " is out of range",
                                 message->err);
          else if (Status loss = ReportDataLoss(range, next_offset, std::min(marks->low, range.until), marks->low);
                   !loss.ok())
            failure = loss;
          else if (marks->low >= range.until) done = true;
          else reseek_at = marks->low;
        } else if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          if (rd_kafka_fatal_error(reader, nullptr, 0) != RD_KAFKA_RESP_ERR_NO_ERROR)
            failure = KafkaError(range.partition, "fatal consumer error", message->err);
          last_error = rd_kafka_message_errstr(message);  // transient: librdkafka retries
        } else if (message->partition == range.partition.partition && message->offset >= next_offset) {
          if (message->offset >= range.until) {
            done = true;
          } else {
            batcher.Append(*message, range.partition.topic);
            next_offset = message->offset + 1;
            if (next_offset >= range.until) done = true;
            if (batcher.rows() >= kPreferredBatchRows) {
              if (Status emitted = batcher.Flush(ctx); !emitted.ok()) failure = emitted;
            }
          }
        }
        rd_kafka_message_destroy(message);
      }
      SLUICE_RETURN_IF_ERROR(failure);
      if (next_offset != offset_before) last_progress = Clock::now();
      if (reseek_at) {
        next_offset = *reseek_at;
        SLUICE_RETURN_IF_ERROR(Seek(reader, range, next_offset));
        last_progress = Clock::now();
      }
      if (!done && Clock::now() - last_progress > settings_.request_timeout)
        return Status::IOError("kafka source: topic '" + range.partition.topic + "' partition " +
                               std::to_string(range.partition.partition) + ": no record arrived for " +
                               std::to_string(settings_.request_timeout.count()) + " ms while reading [" +
                               std::to_string(next_offset) + ", " + std::to_string(range.until) + ")" +
                               (last_error.empty() ? "" : "; last error: " + last_error) +
                               " (kafkaConsumer.pollTimeoutMs)");
    }
    return batcher.Flush(ctx);
  }

  Options options_;
  std::string checkpoint_dir_;
  Settings settings_;
  SchemaPtr schema_;
  ConsumerPtr metadata_client_;  // discovery and watermarks, executor thread only
  std::map<std::string, TopicPtr> known_topics_;  // handles held by metadata_client_ (KnowTopics)
  ConsumerPtr commit_client_;    // lag-monitoring commits, executor thread only
  std::optional<PartitionOffsets> initial_offsets_;
  std::optional<PartitionOffsets> available_now_end_;
  std::optional<std::vector<TopicPartition>> discovered_for_first_trigger_;  // PrepareForAvailableNow's
  std::mutex readers_mu_;
  std::vector<ConsumerPtr> idle_readers_;  // reused across pieces and batches
  std::map<std::string, ConsumerPtr> fetching_;  // piece -> reader assigned by StartFetching
  std::atomic<int64_t> records_lost_{0};
};

const OptionSpec kOptions[] = {
    {"kafka.bootstrap.servers", OptionType::kString, nullptr, true, "Kafka brokers, host:port,host:port"},
    {"subscribe", OptionType::kString, nullptr, false, "comma-separated topics (one of subscribe, subscribePattern, assign)"},
    {"subscribePattern", OptionType::kString, nullptr, false, "topics matching this regular expression, checked every trigger"},
    {"assign", OptionType::kString, nullptr, false, "exact partitions as JSON, {\"t\":[0,1]}"},
    {"startingOffsets", OptionType::kString, "latest", false,
     "where a new query starts: earliest, latest or JSON {\"t\":{\"0\":23,\"1\":-2}} (-2 earliest, -1 latest)"},
    {"endingOffsets", OptionType::kString, "latest", false,
     "where reading stops: latest, or JSON {\"t\":{\"0\":50,\"1\":-1}} (-1 latest)"},
    {"maxOffsetsPerTrigger", OptionType::kInt, nullptr, false,
     "at most this many records per batch, split across partitions in proportion to their lag"},
    {"minPartitions", OptionType::kInt, nullptr, false, "split ranges so a batch has at least this many read tasks"},
    {"failOnDataLoss", OptionType::kBool, "true", false,
     "fail when records were deleted before they were read; false skips them with a warning"},
    {"includeHeaders", OptionType::kBool, "false", false,
     "add a headers column: JSON [{\"key\":\"k\",\"value\":\"<base64>\"}]"},
    {"kafkaConsumer.pollTimeoutMs", OptionType::kInt, "120000", false,
     "fail a read (or a metadata request) when the broker gives nothing for this long"},
    {"kafka.*", OptionType::kString, nullptr, false,
     "any librdkafka property, prefixed with kafka. (kafka.group.id names the lag-monitoring group)"},
};

}  // namespace
}  // namespace sluice::kafka_source

SLUICE_REGISTER_SOURCE("kafka", "1.0.0", "Reads Kafka topics (Spark's Kafka source options)",
                       sluice::kafka_source::kOptions, sluice::kafka_source::KafkaSource)
