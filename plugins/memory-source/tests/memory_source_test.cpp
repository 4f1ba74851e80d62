// Tests of the "memory" source through its shared library: batches pushed with
// the exported push function, offsets, exact rows and the `rows` option.
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace sluice {
namespace {

using testing::BuildPlugins;
using testing::MakeBatch;
using testing::MakeSource;
using testing::ReadRange;
using testing::ToJsonLines;
using Lines = std::vector<std::string>;
using PushFn = void(const std::string&, RecordBatchPtr);

PushFn* Push() {
  PushFn* push = BuildPlugins().FindAlias<PushFn>(PluginKind::kSource, "memory", "sluice_memory_source_push");
  EXPECT_NE(push, nullptr) << "the memory source exports sluice_memory_source_push";
  return push;
}

std::shared_ptr<Source> NewSource(const std::map<std::string, OptionValue>& options) {
  auto source = MakeSource("memory", options);
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  return source.ok() ? *source : nullptr;
}

Offset Batches(int n) { return "{\"batches\":" + std::to_string(n) + "}"; }

std::optional<Offset> Latest(Source& source, const std::optional<Offset>& start) {
  auto latest = source.LatestOffset(start, ReadLimit::kDefault);
  EXPECT_TRUE(latest.ok()) << latest.status().ToString();
  return latest.ok() ? *latest : std::nullopt;
}

Lines ReadRows(Source& source, const std::optional<Offset>& start, const Offset& end) {
  auto batches = ReadRange(source, start, end);
  EXPECT_TRUE(batches.ok()) << batches.status().ToString();
  return batches.ok() ? ToJsonLines(*batches) : Lines{};
}

TEST(MemorySource, PushedBatchesAdvanceTheOffsetAndReadExactly) {
  PushFn* push = Push();
  ASSERT_NE(push, nullptr);
  auto source = NewSource({{"schema", std::string("id BIGINT, name STRING")}, {"stream", std::string("pushed")}});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->Description(), "MemoryStream[pushed]");
  EXPECT_EQ(source->schema().ToString(), "id BIGINT, name STRING");
  EXPECT_EQ(Latest(*source, std::nullopt), std::nullopt);

  push("pushed", MakeBatch("id BIGINT, name STRING", {{"1", "a"}, {"2", "null"}}));
  auto first = Latest(*source, std::nullopt);
  ASSERT_EQ(first, Batches(1));
  EXPECT_EQ(ReadRows(*source, std::nullopt, *first), (Lines{R"({"id":1,"name":"a"})", R"({"id":2,"name":null})"}));
  EXPECT_EQ(Latest(*source, first), first);

  push("pushed", MakeBatch("id BIGINT, name STRING", {{"3", "c"}}));
  push("pushed", MakeBatch("id BIGINT, name STRING", {{"4", "d"}, {"5", "e"}}));
  auto second = Latest(*source, first);
  ASSERT_EQ(second, Batches(3));
  auto parts = source->PlanPartitions(first, *second);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->size(), 2u) << "one partition per pushed batch";
  EXPECT_EQ(ReadRows(*source, first, *second),
            (Lines{R"({"id":3,"name":"c"})", R"({"id":4,"name":"d"})", R"({"id":5,"name":"e"})"}));
}

TEST(MemorySource, StreamDefaultsToTheSourceNameAndOutlivesTheSource) {
  PushFn* push = Push();
  ASSERT_NE(push, nullptr);
  // Rows pushed before any source exists wait in the stream.
  push("memory", MakeBatch("x BIGINT", {{"7"}}));
  auto source = NewSource({{"schema", std::string("value BIGINT")}});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->Description(), "MemoryStream[memory]");
  auto end = Latest(*source, std::nullopt);
  ASSERT_EQ(end, Batches(1));
  EXPECT_EQ(ReadRows(*source, std::nullopt, *end), (Lines{R"({"value":7})"})) << "named by the source's schema";

  source.reset();
  auto again = NewSource({{"schema", std::string("value BIGINT")}});
  ASSERT_TRUE(again);
  EXPECT_EQ(ReadRows(*again, std::nullopt, Batches(1)), (Lines{R"({"value":7})"}));
}

TEST(MemorySource, RowsOptionIsTheFirstBatch) {
  PushFn* push = Push();
  ASSERT_NE(push, nullptr);
  auto source = NewSource({{"schema", std::string("id BIGINT, ts TIMESTAMP, tag STRING")},
                           {"stream", std::string("with-rows")},
                           {"rows", std::vector<std::string>{R"({"id":1,"ts":"2024-05-01 12:00:00","tag":"a"})",
                                                             R"({"id":2,"ts":0})"}}});
  ASSERT_TRUE(source);
  auto first = Latest(*source, std::nullopt);
  ASSERT_EQ(first, Batches(1));
  EXPECT_EQ(ReadRows(*source, std::nullopt, *first),
            (Lines{R"({"id":1,"ts":"2024-05-01T12:00:00Z","tag":"a"})",
                   R"({"id":2,"ts":"1970-01-01T00:00:00Z","tag":null})"}));

  push("with-rows", MakeBatch("id BIGINT, ts TIMESTAMP, tag STRING", {{"3", "null", "c"}}));
  auto second = Latest(*source, first);
  ASSERT_EQ(second, Batches(2));
  EXPECT_EQ(ReadRows(*source, first, *second), (Lines{R"({"id":3,"ts":null,"tag":"c"})"}));
}

TEST(MemorySource, BadRowsOptionIsRejectedAtCreation) {
  auto malformed = MakeSource("memory", {{"schema", std::string("id BIGINT")},
                                         {"rows", std::vector<std::string>{R"({"id":1})", R"({"id":)"}}});
  ASSERT_FALSE(malformed.ok());
  EXPECT_NE(malformed.status().message().find("rows[1]: malformed JSON"), std::string::npos)
      << malformed.status().ToString();
  auto mistyped = MakeSource("memory", {{"schema", std::string("id BIGINT")},
                                        {"rows", std::vector<std::string>{R"({"id":"one"})"}}});
  ASSERT_FALSE(mistyped.ok());
  EXPECT_NE(mistyped.status().message().find("rows[0]: field 'id': \"one\" is not a BIGINT"), std::string::npos)
      << mistyped.status().ToString();
  auto no_schema = MakeSource("memory", {{"schema", std::string("id WHAT")}});
  ASSERT_FALSE(no_schema.ok());
  EXPECT_NE(no_schema.status().message().find("schema: "), std::string::npos) << no_schema.status().ToString();
}

TEST(MemorySource, BatchWithOtherColumnTypesFailsTheRead) {
  PushFn* push = Push();
  ASSERT_NE(push, nullptr);
  auto source = NewSource({{"schema", std::string("id BIGINT")}, {"stream", std::string("mismatch")}});
  ASSERT_TRUE(source);
  push("mismatch", MakeBatch("id STRING", {{"x"}}));
  auto end = Latest(*source, std::nullopt);
  ASSERT_EQ(end, Batches(1));
  auto batches = ReadRange(*source, std::nullopt, *end);
  ASSERT_FALSE(batches.ok());
  EXPECT_EQ(batches.status().message(),
            "batch 0 of memory stream 'mismatch' has columns id STRING but the source's schema is id BIGINT");
}

TEST(MemorySource, LargeBatchIsEmittedInPreferredSlices) {
  PushFn* push = Push();
  ASSERT_NE(push, nullptr);
  ColumnBuilder values(DataType::kInt64);
  for (int64_t i = 0; i < kPreferredBatchRows + 5; ++i) values.AppendInt64(i);
  auto schema = std::make_shared<const Schema>(ParseSchemaDdl("n BIGINT").value());
  push("large", RecordBatch::Make(schema, {values.Finish()}).value());
  auto source = NewSource({{"schema", std::string("n BIGINT")}, {"stream", std::string("large")}});
  ASSERT_TRUE(source);
  auto batches = ReadRange(*source, std::nullopt, *Latest(*source, std::nullopt));
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 2u);
  EXPECT_EQ((*batches)[0]->num_rows(), kPreferredBatchRows);
  EXPECT_EQ((*batches)[1]->num_rows(), 5);
  EXPECT_EQ((*batches)[1]->column(0).int64_at(4), kPreferredBatchRows + 4);
}

TEST(MemorySource, OffsetBeyondTheStreamIsAnError) {
  auto source = NewSource({{"schema", std::string("id BIGINT")}, {"stream", std::string("empty")}});
  ASSERT_TRUE(source);
  auto latest = source->LatestOffset(Batches(2), ReadLimit::kDefault);
  ASSERT_FALSE(latest.ok());
  EXPECT_EQ(latest.status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace sluice
