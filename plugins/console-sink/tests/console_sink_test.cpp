// Tests of the console sink through its real shared library: each test prints
// batches to a file (the `path` option) or captures stdout/stderr, and compares
// the whole text with what Spark's console sink prints.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/test_support.h"

namespace sluice {
namespace {

using testing::MakeBatch;
using testing::MakeSink;
using testing::ReadFile;
using testing::TempDir;

BatchData MakeBatchData(int64_t batch_id, std::vector<RecordBatchPtr> batches) {
  BatchData data;
  data.batch_id = batch_id;
  data.schema = batches.front()->schema();
  data.batches = std::move(batches);
  return data;
}

// Prints each batch through a console sink writing to a file and returns the file.
std::string Print(const std::vector<BatchData>& batches, std::map<std::string, OptionValue> options = {}) {
  TempDir dir;
  const std::string path = dir / "console.txt";
  options["path"] = path;
  auto sink = MakeSink("console", options, *batches.front().schema);
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  if (!sink.ok()) return "";
  for (const auto& b : batches) EXPECT_TRUE((*sink)->AddBatch(b).ok());
  EXPECT_TRUE((*sink)->Stop().ok());
  return ReadFile(path);
}

const char* kBanner0 =
    "-------------------------------------------\n"
    "Batch: 0\n"
    "-------------------------------------------\n";

TEST(ConsoleSinkTest, PrintsBannerAndTableLikeSpark) {
  auto batch = MakeBatch("word STRING, count BIGINT", {{"a", "2"}, {"spark", "10"}});
  EXPECT_EQ(Print({MakeBatchData(0, {batch})}), std::string(kBanner0) +
                                                    "+-----+-----+\n"
                                                    "| word|count|\n"
                                                    "+-----+-----+\n"
                                                    "|    a|    2|\n"
                                                    "|spark|   10|\n"
                                                    "+-----+-----+\n"
                                                    "\n");
}

TEST(ConsoleSinkTest, ColumnsAreAtLeastThreeWideAndShowNull) {
  auto batch = MakeBatch("a BIGINT, b STRING", {{"1", "null"}, {"null", "x"}});
  EXPECT_EQ(Print({MakeBatchData(0, {batch})}), std::string(kBanner0) +
                                                    "+----+----+\n"
                                                    "|   a|   b|\n"
                                                    "+----+----+\n"
                                                    "|   1|null|\n"
                                                    "|null|   x|\n"
                                                    "+----+----+\n"
                                                    "\n");
  auto narrow = MakeBatch("a BIGINT", {{"7"}});
  EXPECT_EQ(Print({MakeBatchData(0, {narrow})}), std::string(kBanner0) +
                                                     "+---+\n"
                                                     "|  a|\n"
                                                     "+---+\n"
                                                     "|  7|\n"
                                                     "+---+\n"
                                                     "\n");
}

TEST(ConsoleSinkTest, TruncatesCellsLongerThanTwentyCharacters) {
  auto batch = MakeBatch("s STRING", {{"12345678901234567890"}, {"123456789012345678901"}});
  EXPECT_EQ(Print({MakeBatchData(0, {batch})}), std::string(kBanner0) +
                                                    "+--------------------+\n"
                                                    "|                   s|\n"
                                                    "+--------------------+\n"
                                                    "|12345678901234567890|\n"
                                                    "|12345678901234567...|\n"
                                                    "+--------------------+\n"
                                                    "\n");
}

TEST(ConsoleSinkTest, CountsUtf8AsCharacters) {
  // 21 two-byte characters are cut to 17 of them; widths count characters.
  std::string long_text;
  for (int i = 0; i < 21; ++i) long_text += "é";
  std::string cut;
  for (int i = 0; i < 17; ++i) cut += "é";
  auto batch = MakeBatch("`naïve` STRING", {{"日本"}, {long_text}});
  EXPECT_EQ(Print({MakeBatchData(0, {batch})}), std::string(kBanner0) +
                                                    "+--------------------+\n"
                                                    "|               naïve|\n"
                                                    "+--------------------+\n"
                                                    "|                  日本|\n"
                                                    "|" + cut + "...|\n"
                                                    "+--------------------+\n"
                                                    "\n");
}

TEST(ConsoleSinkTest, WithoutTruncationCellsAreWholeAndLeftAligned) {
  auto batch = MakeBatch("id BIGINT, s STRING", {{"1", "123456789012345678901"}, {"22", "x"}});
  EXPECT_EQ(Print({MakeBatchData(0, {batch})}, {{"truncate", false}}), std::string(kBanner0) +
                                                                            "+---+---------------------+\n"
                                                                            "|id |s                    |\n"
                                                                            "+---+---------------------+\n"
                                                                            "|1  |123456789012345678901|\n"
                                                                            "|22 |x                    |\n"
                                                                            "+---+---------------------+\n"
                                                                            "\n");
}

TEST(ConsoleSinkTest, ShowsTopNumRowsAcrossRecordBatches) {
  auto first = MakeBatch("n BIGINT", {{"1"}, {"2"}});
  auto second = MakeBatch("n BIGINT", {{"3"}, {"4"}});
  EXPECT_EQ(Print({MakeBatchData(0, {first, second})}, {{"num_rows", int64_t{3}}}), std::string(kBanner0) +
                                                                                        "+---+\n"
                                                                                        "|  n|\n"
                                                                                        "+---+\n"
                                                                                        "|  1|\n"
                                                                                        "|  2|\n"
                                                                                        "|  3|\n"
                                                                                        "+---+\n"
                                                                                        "only showing top 3 rows\n"
                                                                                        "\n");
  EXPECT_EQ(Print({MakeBatchData(0, {first})}, {{"num_rows", int64_t{1}}}), std::string(kBanner0) +
                                                                               "+---+\n"
                                                                               "|  n|\n"
                                                                               "+---+\n"
                                                                               "|  1|\n"
                                                                               "+---+\n"
                                                                               "only showing top 1 row\n"
                                                                               "\n");
  // Exactly num_rows rows: nothing was left out.
  EXPECT_EQ(Print({MakeBatchData(0, {first})}, {{"num_rows", int64_t{2}}}), std::string(kBanner0) +
                                                                               "+---+\n"
                                                                               "|  n|\n"
                                                                               "+---+\n"
                                                                               "|  1|\n"
                                                                               "|  2|\n"
                                                                               "+---+\n"
                                                                               "\n");
}

TEST(ConsoleSinkTest, DefaultShowsTwentyRows) {
  std::vector<std::vector<std::string>> rows;
  for (int i = 1; i <= 21; ++i) rows.push_back({std::to_string(i)});
  std::string expected = std::string(kBanner0) + "+---+\n|  n|\n+---+\n";
  for (int i = 1; i <= 20; ++i) {
    std::string cell = std::to_string(i);
    expected += "|" + std::string(3 - cell.size(), ' ') + cell + "|\n";
  }
  expected += "+---+\nonly showing top 20 rows\n\n";
  EXPECT_EQ(Print({MakeBatchData(0, {MakeBatch("n BIGINT", rows)})}), expected);
}

TEST(ConsoleSinkTest, EmptyBatchPrintsHeaderBox) {
  auto empty = MakeBatch("word STRING, count BIGINT", {});
  BatchData no_record_batches;
  no_record_batches.batch_id = 1;
  no_record_batches.schema = empty->schema();
  EXPECT_EQ(Print({MakeBatchData(0, {empty}), no_record_batches}),
            std::string(kBanner0) +
                "+----+-----+\n"
                "|word|count|\n"
                "+----+-----+\n"
                "+----+-----+\n"
                "\n"
                "-------------------------------------------\n"
                "Batch: 1\n"
                "-------------------------------------------\n"
                "+----+-----+\n"
                "|word|count|\n"
                "+----+-----+\n"
                "+----+-----+\n"
                "\n");
}

TEST(ConsoleSinkTest, SpellsEveryTypeAsTheCellTextDoes) {
  // The 21-character timestamp is cut like any other long cell; binary is base64.
  auto batch = MakeBatch("b BOOLEAN, d DOUBLE, t TIMESTAMP, bin BINARY",
                         {{"true", "0.1", "2024-05-01T12:00:00.5Z", "hi!"}, {"false", "1e10", "2024-05-01", "null"}});
  EXPECT_EQ(Print({MakeBatchData(0, {batch})}), std::string(kBanner0) +
                                                    "+-----+-------------+--------------------+----+\n"
                                                    "|    b|            d|                   t| bin|\n"
                                                    "+-----+-------------+--------------------+----+\n"
                                                    "| true|          0.1|2024-05-01 12:00:...|aGkh|\n"
                                                    "|false|10000000000.0| 2024-05-01 00:00:00|null|\n"
                                                    "+-----+-------------+--------------------+----+\n"
                                                    "\n");
}

TEST(ConsoleSinkTest, EscapesControlCharactersInCellsAndHeaders) {
  auto batch = MakeBatch("`a\tb` STRING", {{"line1\nline2"}});
  EXPECT_EQ(Print({MakeBatchData(0, {batch})}), std::string(kBanner0) +
                                                    "+------------+\n"
                                                    "|        a\\tb|\n"
                                                    "+------------+\n"
                                                    "|line1\\nline2|\n"
                                                    "+------------+\n"
                                                    "\n");
}

TEST(ConsoleSinkTest, AppendsEachBatchToTheFile) {
  TempDir dir;
  const std::string path = dir / "console.txt";
  testing::WriteFile(path, "earlier\n");
  auto batch = MakeBatch("n BIGINT", {{"5"}});
  auto sink = MakeSink("console", {{"path", path}}, *batch->schema());
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  ASSERT_TRUE((*sink)->AddBatch(MakeBatchData(7, {batch})).ok());
  // A replayed batch is printed again: the sink is at-least-once.
  ASSERT_TRUE((*sink)->AddBatch(MakeBatchData(7, {batch})).ok());
  const std::string table =
      "-------------------------------------------\n"
      "Batch: 7\n"
      "-------------------------------------------\n"
      "+---+\n"
      "|  n|\n"
      "+---+\n"
      "|  5|\n"
      "+---+\n"
      "\n";
  EXPECT_EQ(ReadFile(path), "earlier\n" + table + table);
  EXPECT_EQ((*sink)->guarantee(), DeliveryGuarantee::kAtLeastOnce);
  EXPECT_EQ((*sink)->Description(), "ConsoleSink[" + path + "]");
  EXPECT_TRUE((*sink)->Stop().ok());
  EXPECT_TRUE((*sink)->Stop().ok());
}

TEST(ConsoleSinkTest, PrintsToStdoutByDefault) {
  auto batch = MakeBatch("n BIGINT", {{"5"}});
  auto sink = MakeSink("console", {}, *batch->schema());
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  EXPECT_EQ((*sink)->Description(), "ConsoleSink[stdout]");
  ::testing::internal::CaptureStdout();
  Status st = (*sink)->AddBatch(MakeBatchData(0, {batch}));
  std::string out = ::testing::internal::GetCapturedStdout();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(out, std::string(kBanner0) + "+---+\n|  n|\n+---+\n|  5|\n+---+\n\n");
}

TEST(ConsoleSinkTest, PrintsToStderrWhenAsked) {
  auto batch = MakeBatch("n BIGINT", {{"5"}});
  auto sink = MakeSink("console", {{"output", std::string("stderr")}}, *batch->schema());
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  EXPECT_EQ((*sink)->Description(), "ConsoleSink[stderr]");
  ::testing::internal::CaptureStderr();
  Status st = (*sink)->AddBatch(MakeBatchData(0, {batch}));
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(err, std::string(kBanner0) + "+---+\n|  n|\n+---+\n|  5|\n+---+\n\n");
}

TEST(ConsoleSinkTest, RejectsBadOptions) {
  Schema schema = ParseSchemaDdl("n BIGINT").value();
  auto negative = MakeSink("console", {{"num_rows", int64_t{-1}}}, schema);
  ASSERT_FALSE(negative.ok());
  EXPECT_NE(negative.status().message().find("num_rows must be 0 or more, got -1"), std::string::npos)
      << negative.status().ToString();

  auto other_stream = MakeSink("console", {{"output", std::string("printer")}}, schema);
  EXPECT_FALSE(other_stream.ok());

  TempDir dir;
  const std::string unopenable = dir / "missing/console.txt";
  auto sink = MakeSink("console", {{"path", unopenable}}, schema);
  ASSERT_FALSE(sink.ok());
  EXPECT_NE(sink.status().message().find("cannot open '" + unopenable + "' for appending: No such file or directory"),
            std::string::npos)
      << sink.status().ToString();
}

}  // namespace
}  // namespace sluice
