// Offsets and ranges of the "kafka" source, free of any Kafka client so they
// can be unit-tested alone: the offset JSON stored in the offset log (Spark's
// format, {"topic":{"0":123,"1":45}}: per partition the NEXT offset to read),
// the `assign`/`startingOffsets`/`endingOffsets` option values, the
// maxOffsetsPerTrigger split, the planning of read pieces and the check that
// finds records deleted by retention before they were read.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/status.h"

namespace sluice::kafka_source {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

// Per topic-partition offsets, ordered by topic then partition number.
using PartitionOffsets = std::map<TopicPartition, int64_t>;

// In startingOffsets/endingOffsets JSON, as in Spark: -2 means earliest, -1 latest.
inline constexpr int64_t kEarliestMarker = -2;
inline constexpr int64_t kLatestMarker = -1;

// {"t":{"0":123,"1":45}} <-> offsets. Parsing rejects anything else with a
// message naming what is wrong.
std::string FormatOffsets(const PartitionOffsets& offsets);
Result<PartitionOffsets> ParseOffsets(const std::string& json);

// `assign`: {"t":[0,1],"u":[2]}.
Result<std::vector<TopicPartition>> ParseAssignment(const std::string& json);

// startingOffsets / endingOffsets: "earliest", "latest" or offsets JSON (with
// the -2/-1 markers).
struct OffsetSpec {
  enum class Kind { kEarliest, kLatest, kExplicit } kind = Kind::kLatest;
  PartitionOffsets explicit_offsets;
};
Result<OffsetSpec> ParseOffsetSpec(const std::string& option_name, const std::string& value);

// Spark's maxOffsetsPerTrigger split: each partition with new records gets a
// share of `limit` proportional to its lag (at least one record, so a small
// partition is never starved). `start` lacks partitions that are new; they
// start at `new_partition_start`.
PartitionOffsets ApplyRecordLimit(const PartitionOffsets& start, const PartitionOffsets& end, int64_t limit,
                                  int64_t new_partition_start = 0);

// One independent piece of a batch: records [from, until) of one partition.
struct OffsetRange {
  TopicPartition partition;
  int64_t from = 0;
  int64_t until = 0;
  int64_t size() const { return until - from; }
  bool operator==(const OffsetRange&) const = default;
};

// The non-empty ranges from `start` to `end` (a partition missing from
// `start` is new and starts at 0), split further, as Spark's
// KafkaOffsetRangeCalculator does, when fewer than `min_pieces` ranges exist:
// each range gets pieces in proportion to its size.
std::vector<OffsetRange> PlanRanges(const PartitionOffsets& start, const PartitionOffsets& end, int64_t min_pieces);

// A piece travels to ReadPartition as a string: {"topic":"t","partition":0,"from":5,"until":9}.
std::string FormatRange(const OffsetRange& range);
Result<OffsetRange> ParseRange(const std::string& text);

// Records [from, until) were planned, but the partition's earliest available
// offset is `low_watermark` and its latest `high_watermark`. Returns the lost
// range (retention deleted what lies before the low watermark), if any.
std::optional<std::pair<int64_t, int64_t>> LostRecords(const OffsetRange& range, int64_t low_watermark);

// "records [10, 25) of topic 't' partition 0 were deleted ... earliest available offset is 25".
std::string DescribeDataLoss(const OffsetRange& range, int64_t lost_from, int64_t lost_until, int64_t low_watermark);

}  // namespace sluice::kafka_source
