// Tests of the "rate" source through its shared library: exact values and
// timestamps for given offsets, partition splits, and offsets that follow the
// wall clock (awaited with a deadline, never a fixed sleep).
#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "support/test_support.h"

namespace sluice {
namespace {

using testing::MakeSource;
using testing::ReadRange;
using testing::ToJsonLines;
using Lines = std::vector<std::string>;

std::shared_ptr<Source> NewSource(const std::map<std::string, OptionValue>& options) {
  auto source = MakeSource("rate", options);
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  return source.ok() ? *source : nullptr;
}

Offset RateOffset(int64_t start_ms, int64_t seconds) {
  return "{\"start_ms\":" + std::to_string(start_ms) + ",\"seconds\":" + std::to_string(seconds) + "}";
}

int64_t NowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct ParsedOffset {
  int64_t start_ms = -1;
  int64_t seconds = -1;
};

ParsedOffset Parse(const Offset& offset) {
  simdjson::dom::parser parser;
  simdjson::padded_string padded(offset);
  simdjson::dom::element doc = parser.parse(padded).value();
  return {doc["start_ms"].get_int64().value(), doc["seconds"].get_int64().value()};
}

// Polls until the source reports an offset past `start`, or the deadline.
std::optional<Offset> AwaitOffsetAfter(Source& source, const std::optional<Offset>& start,
                                       std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto latest = source.LatestOffset(start, ReadLimit::kDefault);
    EXPECT_TRUE(latest.ok()) << latest.status().ToString();
    if (!latest.ok()) return std::nullopt;
    if (*latest && *latest != start) return *latest;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

TEST(RateSource, ValuesAndTimestampsFollowTheOffset) {
  auto source = NewSource({{"rows_per_second", int64_t{3}}});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->schema().ToString(), "timestamp TIMESTAMP, value BIGINT");
  EXPECT_EQ(source->Description(), "RateStream[rows_per_second=3, num_partitions=1]");
  auto batches = ReadRange(*source, std::nullopt, RateOffset(1000, 2));
  ASSERT_TRUE(batches.ok()) << batches.status().ToString();
  EXPECT_EQ(ToJsonLines(*batches), (Lines{
                                       R"({"timestamp":"1970-01-01T00:00:01Z","value":0})",
                                       R"({"timestamp":"1970-01-01T00:00:01.333Z","value":1})",
                                       R"({"timestamp":"1970-01-01T00:00:01.666Z","value":2})",
                                       R"({"timestamp":"1970-01-01T00:00:02Z","value":3})",
                                       R"({"timestamp":"1970-01-01T00:00:02.333Z","value":4})",
                                       R"({"timestamp":"1970-01-01T00:00:02.666Z","value":5})",
                                   }));
  auto later = ReadRange(*source, RateOffset(1000, 2), RateOffset(1000, 3));
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(ToJsonLines(*later), (Lines{
                                     R"({"timestamp":"1970-01-01T00:00:03Z","value":6})",
                                     R"({"timestamp":"1970-01-01T00:00:03.333Z","value":7})",
                                     R"({"timestamp":"1970-01-01T00:00:03.666Z","value":8})",
                                 }));
}

TEST(RateSource, PartitionsSplitTheValueRange) {
  auto source = NewSource({{"rows_per_second", int64_t{5}}, {"num_partitions", int64_t{3}}});
  ASSERT_TRUE(source);
  auto parts = source->PlanPartitions(RateOffset(0, 1), RateOffset(0, 3));
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 3u);
  std::vector<Lines> values;
  for (const auto& part : *parts) {
    testing::CollectingReadContext ctx;
    ASSERT_TRUE(source->ReadPartition(part, ctx).ok());
    Lines piece;
    for (const auto& batch : ctx.batches)
      for (int64_t r = 0; r < batch->num_rows(); ++r) piece.push_back(std::to_string(batch->column(1).int64_at(r)));
    values.push_back(piece);
  }
  EXPECT_EQ(values, (std::vector<Lines>{{"5", "6", "7"}, {"8", "9", "10"}, {"11", "12", "13", "14"}}));
}

TEST(RateSource, LargeRangeIsEmittedInPreferredBatches) {
  const int64_t rate = kPreferredBatchRows + 10;
  auto source = NewSource({{"rows_per_second", rate}});
  ASSERT_TRUE(source);
  auto batches = ReadRange(*source, std::nullopt, RateOffset(0, 1));
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 2u);
  EXPECT_EQ((*batches)[0]->num_rows(), kPreferredBatchRows);
  EXPECT_EQ((*batches)[1]->num_rows(), 10);
  EXPECT_EQ((*batches)[1]->column(1).int64_at(9), rate - 1);
}

TEST(RateSource, OffsetFollowsTheWallClockFromTheFirstCall) {
  auto source = NewSource({{"rows_per_second", int64_t{2}}});
  ASSERT_TRUE(source);
  const int64_t before = NowMillis();
  auto first = source->LatestOffset(std::nullopt, ReadLimit::kDefault);
  const int64_t after = NowMillis();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, std::nullopt) << "no whole second has passed yet";

  auto end = AwaitOffsetAfter(*source, std::nullopt, std::chrono::seconds(10));
  ASSERT_TRUE(end.has_value()) << "no offset within 10 seconds";
  ParsedOffset parsed = Parse(*end);
  EXPECT_GE(parsed.start_ms, before);
  EXPECT_LE(parsed.start_ms, after);
  ASSERT_GE(parsed.seconds, 1);
  auto batches = ReadRange(*source, std::nullopt, *end);
  ASSERT_TRUE(batches.ok());
  Lines rows = ToJsonLines(*batches);
  ASSERT_EQ(rows.size(), static_cast<size_t>(2 * parsed.seconds));
  std::string second_row;
  AppendRowJson(second_row, *(*batches)[0], 1);
  std::string expected_ts;
  AppendJsonString(expected_ts, FormatTimestamp((parsed.start_ms + 500) * 1000, true));
  EXPECT_EQ(second_row, "{\"timestamp\":" + expected_ts + ",\"value\":1}");
}

TEST(RateSource, RestartedSourceKeepsTheRecordedStartTime) {
  auto source = NewSource({});
  ASSERT_TRUE(source);
  const int64_t start_ms = NowMillis() - 5000;
  auto latest = source->LatestOffset(RateOffset(start_ms, 2), ReadLimit::kDefault);
  ASSERT_TRUE(latest.ok());
  ASSERT_TRUE(latest->has_value());
  ParsedOffset parsed = Parse(**latest);
  EXPECT_EQ(parsed.start_ms, start_ms);
  EXPECT_GE(parsed.seconds, 5);
}

TEST(RateSource, AvailableNowStopsAtThePreparedTime) {
  auto source = NewSource({});
  ASSERT_TRUE(source);
  const int64_t start_ms = NowMillis() - 3000;
  ASSERT_TRUE(source->PrepareForAvailableNow().ok());
  auto latest = source->LatestOffset(RateOffset(start_ms, 0), ReadLimit::kDefault);
  ASSERT_TRUE(latest.ok());
  ASSERT_TRUE(latest->has_value());
  ParsedOffset parsed = Parse(**latest);
  EXPECT_EQ(parsed.seconds, 3);
  auto again = source->LatestOffset(RateOffset(start_ms, 3), ReadLimit::kDefault);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, RateOffset(start_ms, 3)) << "nothing beyond the prepared time";
}

TEST(RateSource, BadOptionsAndOffsetsAreRejected) {
  auto zero_rate = MakeSource("rate", {{"rows_per_second", int64_t{0}}});
  ASSERT_FALSE(zero_rate.ok());
  EXPECT_NE(zero_rate.status().message().find("rows_per_second: must be at least 1, got 0"), std::string::npos);
  auto zero_parts = MakeSource("rate", {{"num_partitions", int64_t{-2}}});
  ASSERT_FALSE(zero_parts.ok());
  EXPECT_NE(zero_parts.status().message().find("num_partitions: must be at least 1, got -2"), std::string::npos);

  auto source = NewSource({});
  ASSERT_TRUE(source);
  auto mixed = source->PlanPartitions(RateOffset(0, 1), RateOffset(1, 2));
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("mixes two start times"), std::string::npos);
  auto garbage = source->LatestOffset(std::string("{\"files\":1}"), ReadLimit::kDefault);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace sluice
