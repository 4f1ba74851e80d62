// The "memory" source: batches pushed in-process into a named stream, like
// Spark's MemoryStream, for tests and embedding. Streams live in one
// process-wide registry guarded by a mutex; tests push through the exported
// function `sluice_memory_source_push`, found with PluginRegistry::FindAlias.
// An offset counts batches ({"batches":N}); the `rows` option, if given, is
// the source's own first batch, so a source re-created on the same stream
// maps every offset to the same rows. A stream is never trimmed: it lives as
// long as the process, and several sources may read it.
#include <boost/dll/alias.hpp>

#include <charconv>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <simdjson.h>

#include "count_offset.h"
#include "sluice/plugin.h"
#include "typed_rows.h"

namespace sluice::memory_source {

// Named streams of batches, shared by every memory source in the process.
class StreamRegistry {
 public:
  static StreamRegistry& Instance() {
    static StreamRegistry registry;
    return registry;
  }

  void Push(const std::string& stream, RecordBatchPtr batch) {
    std::lock_guard<std::mutex> lock(mu_);
    streams_[stream].push_back(std::move(batch));
  }

  int64_t BatchCount(const std::string& stream) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(stream);
    return it == streams_.end() ? 0 : static_cast<int64_t>(it->second.size());
  }

  // Null when the stream has no batch `index`.
  RecordBatchPtr Batch(const std::string& stream, int64_t index) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = streams_.find(stream);
    if (it == streams_.end() || index < 0 || index >= static_cast<int64_t>(it->second.size())) return nullptr;
    return it->second[static_cast<size_t>(index)];
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<RecordBatchPtr>> streams_;
};

// Appends `batch` to `stream`; later LatestOffset calls of sources reading
// that stream see it. A null batch is ignored.
void PushRows(const std::string& stream, RecordBatchPtr batch) {
  if (!batch) return;
  StreamRegistry::Instance().Push(stream, std::move(batch));
}

namespace {

std::string BatchesOffset(int64_t batches) { return count_offset::Format("batches", batches); }

Result<int64_t> ParseBatchesOffset(const std::optional<Offset>& offset) {
  return count_offset::Parse(offset, "batches", "memory source");
}

Result<SchemaPtr> SchemaOption(const Options& options) {
  auto parsed = ParseSchemaDdl(options.GetString("schema"));
  if (!parsed.ok()) return Status::InvalidArgument("schema: " + parsed.status().message());
  return std::make_shared<const Schema>(std::move(parsed).value());
}

// The `rows` option as one batch (null when there are none). Each row is a
// JSON object read with the jsonl rules of the file source.
Result<RecordBatchPtr> InitialRows(const Options& options, const SchemaPtr& schema) {
  std::vector<std::string> rows = options.GetStringList("rows");
  if (rows.empty()) return RecordBatchPtr();
  RecordBatchBuilder builder(schema, static_cast<int64_t>(rows.size()));
  typed_rows::PendingRow row(*schema);
  simdjson::dom::parser parser;
  std::string error;
  for (size_t i = 0; i < rows.size(); ++i) {
    simdjson::dom::element document;
    auto parse_error = parser.parse(rows[i]).get(document);
    if (parse_error != simdjson::SUCCESS)
      return Status::InvalidArgument("rows[" + std::to_string(i) + "]: malformed JSON: " +
                                     simdjson::error_message(parse_error));
    if (!typed_rows::ConvertJsonObject(document, *schema, row, &error))
      return Status::InvalidArgument("rows[" + std::to_string(i) + "]: " + error);
    row.AppendTo(builder);
  }
  return builder.Finish();
}

template <typename T>
T ValueOrThrow(Result<T> result) {
  if (!result.ok()) throw std::invalid_argument(result.status().message());
  return std::move(result).value();
}

class MemorySource final : public Source {
 public:
  static Status Validate(const Options& options) {
    auto schema = SchemaOption(options);
    if (!schema.ok()) return schema.status();
    return InitialRows(options, *schema).status();
  }

  explicit MemorySource(const SourceContext& ctx)
      : schema_(ValueOrThrow(SchemaOption(ctx.options))),
        stream_(ctx.options.GetString("stream", ctx.name)),
        initial_rows_(ValueOrThrow(InitialRows(ctx.options, schema_))) {
    if (stream_.empty()) throw std::invalid_argument("stream: must not be empty");
  }

  Schema schema() const override { return *schema_; }

  std::string Description() const override { return "MemoryStream[" + stream_ + "]"; }

  Result<std::optional<Offset>> LatestOffset(const std::optional<Offset>& start, ReadLimit limit) override {
    SLUICE_ASSIGN_OR_RETURN(int64_t start_batches, ParseBatchesOffset(start));
    const int64_t available = BatchCount();
    SLUICE_RETURN_IF_ERROR(CheckAvailable(start_batches, available));
    if (available == start_batches) return start;
    return std::optional<Offset>(BatchesOffset(available));
  }

  Result<std::vector<std::string>> PlanPartitions(const std::optional<Offset>& start, const Offset& end) override {
    SLUICE_ASSIGN_OR_RETURN(int64_t start_batches, ParseBatchesOffset(start));
    SLUICE_ASSIGN_OR_RETURN(int64_t end_batches, ParseBatchesOffset(end));
    SLUICE_RETURN_IF_ERROR(CheckAvailable(end_batches, BatchCount()));
    if (start_batches > end_batches)
      return Status::InvalidArgument("batch starts at " + *start + " after its end " + end);
    std::vector<std::string> partitions;
    for (int64_t i = start_batches; i < end_batches; ++i) partitions.push_back(std::to_string(i));
    return partitions;
  }

  Status ReadPartition(const std::string& partition, ReadContext& ctx) override {
    int64_t index = -1;
    auto parsed = std::from_chars(partition.data(), partition.data() + partition.size(), index);
    if (parsed.ec != std::errc() || parsed.ptr != partition.data() + partition.size())
      return Status::InvalidArgument("'" + partition + "' is not a memory source partition");
    RecordBatchPtr batch = BatchAt(index);
    if (!batch) return Status::NotFound("memory stream '" + stream_ + "' has no batch " + partition);
    SLUICE_RETURN_IF_ERROR(CheckSchema(*batch, index));
    // Re-labelled with the source's schema: the columns are shared, not copied.
    auto relabelled = std::make_shared<const RecordBatch>(schema_, batch->columns(), batch->num_rows());
    if (relabelled->num_rows() == 0) return Status::OK();
    if (relabelled->num_rows() <= kPreferredBatchRows) return ctx.Emit(std::move(relabelled));
    return EmitInSlices(*relabelled, ctx);
  }

 private:
  int64_t InitialBatchCount() const { return initial_rows_ ? 1 : 0; }
  int64_t BatchCount() const { return InitialBatchCount() + StreamRegistry::Instance().BatchCount(stream_); }

  RecordBatchPtr BatchAt(int64_t index) const {
    if (index < InitialBatchCount()) return initial_rows_;
    return StreamRegistry::Instance().Batch(stream_, index - InitialBatchCount());
  }

  Status CheckAvailable(int64_t batches, int64_t available) const {
    if (batches <= available) return Status::OK();
    return Status::Corruption(BatchesOffset(batches) + " is beyond the " + std::to_string(available) +
                              " batches of memory stream '" + stream_ +
                              "'; memory streams last only as long as the process that fills them");
  }

  Status CheckSchema(const RecordBatch& batch, int64_t index) const {
    bool same = batch.num_columns() == schema_->num_fields();
    for (int i = 0; same && i < batch.num_columns(); ++i) same = batch.column(i).type() == schema_->field(i).type;
    if (same) return Status::OK();
    return Status::InvalidArgument("batch " + std::to_string(index) + " of memory stream '" + stream_ +
                                   "' has columns " + batch.schema()->ToString() + " but the source's schema is " +
                                   schema_->ToString());
  }

  // A pushed batch larger than kPreferredBatchRows is copied out in slices.
  Status EmitInSlices(const RecordBatch& batch, ReadContext& ctx) const {
    RecordBatchBuilder builder(schema_, kPreferredBatchRows);
    for (int64_t row = 0; row < batch.num_rows(); ++row) {
      for (int c = 0; c < batch.num_columns(); ++c) builder.column(c).AppendFrom(batch.column(c), row);
      if (builder.num_rows() == kPreferredBatchRows) SLUICE_RETURN_IF_ERROR(ctx.Emit(builder.Finish()));
    }
    if (builder.num_rows() > 0) return ctx.Emit(builder.Finish());
    return Status::OK();
  }

  SchemaPtr schema_;
  std::string stream_;
  RecordBatchPtr initial_rows_;
};

const OptionSpec kOptions[] = {
    {"schema", OptionType::kString, nullptr, true, "columns as DDL, e.g. \"id BIGINT, name STRING\""},
    {"stream", OptionType::kString, nullptr, false,
     "name of the in-process stream to read; defaults to the source's name"},
    {"rows", OptionType::kStringList, nullptr, false,
     "initial rows, each a JSON object such as '{\"id\":1,\"name\":\"a\"}'; they form the first batch"},
};

}  // namespace
}  // namespace sluice::memory_source

SLUICE_REGISTER_SOURCE("memory", SLUICE_VERSION_STRING, "Rows pushed in-process into a named stream, for tests and embedding",
                       sluice::memory_source::kOptions, sluice::memory_source::MemorySource)

BOOST_DLL_ALIAS(sluice::memory_source::PushRows, sluice_memory_source_push)
