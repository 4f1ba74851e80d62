// The "rate" source: generates rows at a fixed rate, like Spark's rate
// source, for demos and load tests. Rows are a pure function of the offset,
// so any (start, end) reads the same rows after a restart: the offset records
// the start time (chosen at the first LatestOffset) and the whole seconds
// elapsed since, {"start_ms":S,"seconds":N}. Second s holds the values
// [s*rps, (s+1)*rps); the i-th of them is stamped S + s seconds + i*1000/rps
// milliseconds. A batch's value range is split into num_partitions
// contiguous pieces.
#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <simdjson.h>

#include "sluice/plugin.h"

namespace sluice::rate_source {
namespace {

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct RateOffset {
  int64_t start_ms = 0;
  int64_t seconds = 0;
};

std::string FormatOffset(const RateOffset& offset) {
  return "{\"start_ms\":" + std::to_string(offset.start_ms) + ",\"seconds\":" + std::to_string(offset.seconds) + "}";
}

Result<RateOffset> ParseOffset(const Offset& text) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element doc;
  RateOffset offset;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS ||
      doc["start_ms"].get_int64().get(offset.start_ms) != simdjson::SUCCESS ||
      doc["seconds"].get_int64().get(offset.seconds) != simdjson::SUCCESS || offset.seconds < 0)
    return Status::Corruption("'" + text + "' is not a rate source offset; expected {\"start_ms\":S,\"seconds\":N}");
  return offset;
}

// A piece of a batch: the values [from, to) of a stream started at start_ms.
struct ValueRange {
  int64_t start_ms = 0;
  int64_t from = 0;
  int64_t to = 0;
};

std::string FormatPartition(const ValueRange& range) {
  return "{\"start_ms\":" + std::to_string(range.start_ms) + ",\"from\":" + std::to_string(range.from) +
         ",\"to\":" + std::to_string(range.to) + "}";
}

Result<ValueRange> ParsePartition(const std::string& text) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element doc;
  ValueRange range;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS ||
      doc["start_ms"].get_int64().get(range.start_ms) != simdjson::SUCCESS ||
      doc["from"].get_int64().get(range.from) != simdjson::SUCCESS ||
      doc["to"].get_int64().get(range.to) != simdjson::SUCCESS || range.from > range.to)
    return Status::InvalidArgument("'" + text + "' is not a rate source partition");
  return range;
}

class RateSource final : public Source {
 public:
  static Status Validate(const Options& options) {
    if (options.GetInt("rows_per_second", 1) <= 0)
      return Status::InvalidArgument("rows_per_second: must be at least 1, got " +
                                     std::to_string(options.GetInt("rows_per_second", 1)));
    if (options.GetInt("num_partitions", 1) <= 0)
      return Status::InvalidArgument("num_partitions: must be at least 1, got " +
                                     std::to_string(options.GetInt("num_partitions", 1)));
    return Status::OK();
  }

  explicit RateSource(const SourceContext& ctx)
      : rows_per_second_(ctx.options.GetInt("rows_per_second", 1)),
        num_partitions_(ctx.options.GetInt("num_partitions", 1)) {
    Status valid = Validate(ctx.options);
    if (!valid.ok()) throw std::invalid_argument(valid.message());
    schema_ = std::make_shared<const Schema>(
        std::vector<Field>{{"timestamp", DataType::kTimestamp, true}, {"value", DataType::kInt64, true}});
  }

  Schema schema() const override { return *schema_; }

  std::string Description() const override {
    return "RateStream[rows_per_second=" + std::to_string(rows_per_second_) +
           ", num_partitions=" + std::to_string(num_partitions_) + "]";
  }

  Result<std::optional<Offset>> LatestOffset(const std::optional<Offset>& start, ReadLimit limit) override {
    RateOffset from;
    if (start) {
      SLUICE_ASSIGN_OR_RETURN(from, ParseOffset(*start));
      start_ms_ = from.start_ms;  // a restarted stream keeps its original clock
    } else if (!start_ms_) {
      start_ms_ = NowMillis();
    }
    from.start_ms = *start_ms_;
    int64_t now_ms = NowMillis();
    if (available_now_until_ms_) now_ms = std::min(now_ms, *available_now_until_ms_);
    RateOffset latest{*start_ms_, std::max<int64_t>(0, (now_ms - *start_ms_) / 1000)};
    if (latest.seconds <= from.seconds) return start;
    return std::optional<Offset>(FormatOffset(latest));
  }

  // Under available-now, rows up to the current second are what "exists now".
  Status PrepareForAvailableNow() override {
    available_now_until_ms_ = NowMillis();
    return Status::OK();
  }

  Result<std::vector<std::string>> PlanPartitions(const std::optional<Offset>& start, const Offset& end) override {
    SLUICE_ASSIGN_OR_RETURN(RateOffset to, ParseOffset(end));
    RateOffset from{to.start_ms, 0};
    if (start) {
      SLUICE_ASSIGN_OR_RETURN(from, ParseOffset(*start));
    }
    if (from.start_ms != to.start_ms)
      return Status::InvalidArgument("batch from " + *start + " to " + end +
                                     " mixes two start times; offsets of one stream share start_ms");
    if (from.seconds > to.seconds) return Status::InvalidArgument("batch starts at " + *start + " after its end " + end);
    const int64_t first = from.seconds * rows_per_second_;
    const int64_t count = (to.seconds - from.seconds) * rows_per_second_;
    std::vector<std::string> partitions;
    for (int64_t p = 0; p < num_partitions_; ++p) {
      ValueRange piece{to.start_ms, first + count * p / num_partitions_, first + count * (p + 1) / num_partitions_};
      if (piece.from < piece.to) partitions.push_back(FormatPartition(piece));
    }
    return partitions;
  }

  Status ReadPartition(const std::string& partition, ReadContext& ctx) override {
    SLUICE_ASSIGN_OR_RETURN(ValueRange range, ParsePartition(partition));
    for (int64_t batch_from = range.from; batch_from < range.to; batch_from += kPreferredBatchRows) {
      if (ctx.StopRequested()) return Status::Aborted("read stopped on request");
      const int64_t rows = std::min<int64_t>(kPreferredBatchRows, range.to - batch_from);
      auto timestamps = Column::AllocateFixed(DataType::kTimestamp, rows);
      auto values = Column::AllocateFixed(DataType::kInt64, rows);
      int64_t* ts = reinterpret_cast<int64_t*>(timestamps->mutable_values().data());
      int64_t* vs = reinterpret_cast<int64_t*>(values->mutable_values().data());
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t value = batch_from + r;
        const int64_t second = value / rows_per_second_;
        const int64_t index_in_second = value % rows_per_second_;
        vs[r] = value;
        ts[r] = (range.start_ms + second * 1000 + index_in_second * 1000 / rows_per_second_) * 1000;
      }
      SLUICE_RETURN_IF_ERROR(
          ctx.Emit(std::make_shared<const RecordBatch>(schema_, std::vector<ColumnPtr>{timestamps, values}, rows)));
    }
    return Status::OK();
  }

 private:
  const int64_t rows_per_second_;
  const int64_t num_partitions_;
  SchemaPtr schema_;
  std::optional<int64_t> start_ms_;
  std::optional<int64_t> available_now_until_ms_;
};

const OptionSpec kOptions[] = {
    {"rows_per_second", OptionType::kInt, "1", false, "rows generated for each second of wall-clock time"},
    {"num_partitions", OptionType::kInt, "1", false, "pieces each batch's value range is split into, read in parallel"},
};

}  // namespace
}  // namespace sluice::rate_source

SLUICE_REGISTER_SOURCE("rate", SLUICE_VERSION_STRING, "Generates (timestamp, value) rows at a fixed rate per second",
                       sluice::rate_source::kOptions, sluice::rate_source::RateSource)
