// Unit tests of the "kafka" source's offset logic, without a broker: offset
// JSON, option values, Spark's maxOffsetsPerTrigger split, range planning and
// the data-loss range check.
#include <gtest/gtest.h>

#include "kafka_offsets.h"

namespace sluice::kafka_source {
namespace {

TEST(KafkaOffsets, FormatIsSparksJsonAndParsesBack) {
  PartitionOffsets offsets = {{{"b", 1}, 45}, {{"a", 0}, 123}, {{"b", 0}, 7}};
  const std::string json = FormatOffsets(offsets);
  EXPECT_EQ(json, R"({"a":{"0":123},"b":{"0":7,"1":45}})");
  auto parsed = ParseOffsets(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, offsets);
  EXPECT_EQ(FormatOffsets({}), "{}");
  EXPECT_EQ(FormatOffsets({{{"quo\"te", 0}, 1}}), R"({"quo\"te":{"0":1}})");
}

TEST(KafkaOffsets, MalformedOffsetsAreRejectedWithTheReason) {
  EXPECT_NE(ParseOffsets("[1]").status().message().find("expected a JSON object"), std::string::npos);
  EXPECT_NE(ParseOffsets(R"({"t":5})").status().message().find("must map partition numbers"), std::string::npos);
  EXPECT_NE(ParseOffsets(R"({"t":{"x":5}})").status().message().find("'x' is not a partition number"),
            std::string::npos);
  EXPECT_NE(ParseOffsets(R"({"t":{"0":"5"}})").status().message().find("is not an integer"), std::string::npos);
}

TEST(KafkaOffsets, AssignmentListsPartitionsSorted) {
  auto assignment = ParseAssignment(R"({"u":[2],"t":[1,0,1]})");
  ASSERT_TRUE(assignment.ok());
  EXPECT_EQ(*assignment, (std::vector<TopicPartition>{{"t", 0}, {"t", 1}, {"u", 2}}));
  EXPECT_FALSE(ParseAssignment(R"({"t":[-1]})").ok());
  EXPECT_FALSE(ParseAssignment(R"({"t":0})").ok());
  EXPECT_FALSE(ParseAssignment(R"({})").ok());
}

TEST(KafkaOffsets, OffsetSpecs) {
  EXPECT_EQ(ParseOffsetSpec("startingOffsets", "earliest")->kind, OffsetSpec::Kind::kEarliest);
  EXPECT_EQ(ParseOffsetSpec("startingOffsets", "latest")->kind, OffsetSpec::Kind::kLatest);
  auto spec = ParseOffsetSpec("startingOffsets", R"({"t":{"0":23,"1":-2,"2":-1}})");
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, OffsetSpec::Kind::kExplicit);
  EXPECT_EQ(spec->explicit_offsets, (PartitionOffsets{{{"t", 0}, 23}, {{"t", 1}, -2}, {{"t", 2}, -1}}));
  auto bad = ParseOffsetSpec("startingOffsets", "newest");
  EXPECT_NE(bad.status().message().find("startingOffsets: expected \"earliest\", \"latest\" or JSON"),
            std::string::npos);
  EXPECT_NE(ParseOffsetSpec("endingOffsets", R"({"t":{"0":-3}})").status().message().find("is negative"),
            std::string::npos);
}

TEST(KafkaOffsets, RecordLimitIsSplitInProportionToLag) {
  // Lags 10, 20, 70 and a limit of 10: shares 1, 2, 7.
  PartitionOffsets start = {{{"t", 0}, 100}, {{"t", 1}, 0}, {{"t", 2}, 30}};
  PartitionOffsets end = {{{"t", 0}, 110}, {{"t", 1}, 20}, {{"t", 2}, 100}};
  EXPECT_EQ(ApplyRecordLimit(start, end, 10),
            (PartitionOffsets{{{"t", 0}, 101}, {{"t", 1}, 2}, {{"t", 2}, 37}}));
  // A limit above the total lag changes nothing.
  EXPECT_EQ(ApplyRecordLimit(start, end, 1000), end);
}

TEST(KafkaOffsets, RecordLimitNeverStarvesASmallPartition) {
  // A share below one record rounds up, as Spark does.
  PartitionOffsets start = {{{"t", 0}, 0}, {{"t", 1}, 0}};
  PartitionOffsets end = {{{"t", 0}, 1}, {{"t", 1}, 1000}};
  EXPECT_EQ(ApplyRecordLimit(start, end, 10), (PartitionOffsets{{{"t", 0}, 1}, {{"t", 1}, 9}}));
}

TEST(KafkaOffsets, RecordLimitCountsNewPartitionsFromZero) {
  PartitionOffsets start = {{{"t", 0}, 50}};
  PartitionOffsets end = {{{"t", 0}, 100}, {{"t", 1}, 50}};  // t-1 is new
  EXPECT_EQ(ApplyRecordLimit(start, end, 10), (PartitionOffsets{{{"t", 0}, 55}, {{"t", 1}, 5}}));
}

TEST(KafkaOffsets, PlanHasOnePiecePerNonEmptyRangeAndStartsNewPartitionsAtZero) {
  PartitionOffsets start = {{{"t", 0}, 5}, {{"t", 1}, 8}};
  PartitionOffsets end = {{{"t", 0}, 9}, {{"t", 1}, 8}, {{"u", 0}, 3}};
  EXPECT_EQ(PlanRanges(start, end, 0), (std::vector<OffsetRange>{{{"t", 0}, 5, 9}, {{"u", 0}, 0, 3}}));
}

TEST(KafkaOffsets, MinPartitionsSplitsRangesInProportionToTheirSize) {
  PartitionOffsets start = {{{"t", 0}, 0}, {{"t", 1}, 0}};
  PartitionOffsets end = {{{"t", 0}, 30}, {{"t", 1}, 10}};
  auto pieces = PlanRanges(start, end, 4);
  EXPECT_EQ(pieces, (std::vector<OffsetRange>{
                        {{"t", 0}, 0, 10}, {{"t", 0}, 10, 20}, {{"t", 0}, 20, 30}, {{"t", 1}, 0, 10}}));
  // Never more pieces than records.
  EXPECT_EQ(PlanRanges({}, {{{"t", 0}, 2}}, 8).size(), 2u);
}

TEST(KafkaOffsets, RangesTravelAsJson) {
  OffsetRange range{{"t\"x", 3}, 10, 20};
  EXPECT_EQ(FormatRange(range), R"({"topic":"t\"x","partition":3,"from":10,"until":20})");
  auto parsed = ParseRange(FormatRange(range));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, range);
}

TEST(KafkaOffsets, LostRecordsAreThoseBelowTheLowWatermark) {
  OffsetRange range{{"t", 0}, 10, 50};
  EXPECT_EQ(LostRecords(range, 0), std::nullopt);
  EXPECT_EQ(LostRecords(range, 10), std::nullopt);
  EXPECT_EQ(LostRecords(range, 25), std::make_pair(int64_t{10}, int64_t{25}));
  EXPECT_EQ(LostRecords(range, 80), std::make_pair(int64_t{10}, int64_t{50})) << "the whole range is gone";
  EXPECT_EQ(DescribeDataLoss(range, 10, 25, 25),
            "records [10, 25) of topic 't' partition 0 were deleted (retention or a deleted topic) before they were "
            "read: the earliest available offset is 25");
}

}  // namespace
}  // namespace sluice::kafka_source
