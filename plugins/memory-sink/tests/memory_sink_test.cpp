// Tests of the memory sink through its real shared library: batches go in
// through AddBatch and are read back through the functions the library exports
// by alias, found with PluginRegistry::FindAlias as any embedder would.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "memory_sink.h"
#include "support/test_support.h"

namespace sluice {
namespace {

using testing::MakeBatch;
using testing::MakeSink;
using testing::ToJsonLines;

memory_sink::RowsFn* Rows() {
  return testing::BuildPlugins().FindAlias<memory_sink::RowsFn>(PluginKind::kSink, "memory", memory_sink::kRowsAlias);
}
memory_sink::BatchIdsFn* BatchIds() {
  return testing::BuildPlugins().FindAlias<memory_sink::BatchIdsFn>(PluginKind::kSink, "memory",
                                                                    memory_sink::kBatchIdsAlias);
}
memory_sink::ClearFn* Clear() {
  return testing::BuildPlugins().FindAlias<memory_sink::ClearFn>(PluginKind::kSink, "memory",
                                                                 memory_sink::kClearAlias);
}

BatchData MakeBatchData(int64_t batch_id, std::vector<RecordBatchPtr> batches) {
  BatchData data;
  data.batch_id = batch_id;
  data.schema = batches.empty() ? nullptr : batches.front()->schema();
  data.batches = std::move(batches);
  return data;
}

const Schema& WordCountSchema() {
  static const Schema schema = ParseSchemaDdl("word STRING, count BIGINT").value();
  return schema;
}

class MemorySinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(Rows(), nullptr);
    ASSERT_NE(BatchIds(), nullptr);
    ASSERT_NE(Clear(), nullptr);
    for (const char* name : {"memory", "words", "totals", "other"}) Clear()(name);
  }

  std::shared_ptr<Sink> NewSink(const std::map<std::string, OptionValue>& options = {},
                                OutputMode mode = OutputMode::kAppend) {
    auto sink = MakeSink("memory", options, WordCountSchema(), "", mode);
    EXPECT_TRUE(sink.ok()) << sink.status().ToString();
    return sink.ok() ? *sink : nullptr;
  }
};

TEST_F(MemorySinkTest, AppendModeAccumulatesBatchesInOrder) {
  auto sink = NewSink({{"query_name", std::string("words")}});
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {MakeBatch("word STRING, count BIGINT", {{"a", "1"}})})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch("word STRING, count BIGINT", {{"b", "2"}, {"c", "null"}}),
                                               MakeBatch("word STRING, count BIGINT", {{"d", "4"}})}))
                  .ok());
  EXPECT_EQ(ToJsonLines(Rows()("words")),
            (std::vector<std::string>{R"({"word":"a","count":1})", R"({"word":"b","count":2})",
                                      R"({"word":"c","count":null})", R"({"word":"d","count":4})"}));
  EXPECT_EQ(BatchIds()("words"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(sink->guarantee(), DeliveryGuarantee::kAtLeastOnce);
  EXPECT_EQ(sink->Description(), "MemorySink[words]");
}

TEST_F(MemorySinkTest, QueryNameDefaultsToTheSinkName) {
  auto sink = NewSink();
  ASSERT_TRUE(sink);
  EXPECT_EQ(sink->Description(), "MemorySink[memory]");
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {MakeBatch("word STRING, count BIGINT", {{"a", "1"}})})).ok());
  EXPECT_EQ(ToJsonLines(Rows()("memory")), (std::vector<std::string>{R"({"word":"a","count":1})"}));
  EXPECT_TRUE(Rows()("other").empty());
  EXPECT_TRUE(BatchIds()("other").empty());
}

TEST_F(MemorySinkTest, ReplayedBatchIdIsSkipped) {
  auto sink = NewSink({{"query_name", std::string("words")}});
  ASSERT_TRUE(sink);
  auto a = MakeBatch("word STRING, count BIGINT", {{"a", "1"}});
  auto b = MakeBatch("word STRING, count BIGINT", {{"b", "2"}});
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(3, {a})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(3, {b})).ok());  // the same id again
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(2, {b})).ok());  // an older id
  EXPECT_EQ(ToJsonLines(Rows()("words")), (std::vector<std::string>{R"({"word":"a","count":1})"}));
  EXPECT_EQ(BatchIds()("words"), (std::vector<int64_t>{3}));

  // A sink restarted in the same process shares the table, so a replay after
  // the restart is skipped too.
  ASSERT_TRUE(sink->Stop().ok());
  auto restarted = NewSink({{"query_name", std::string("words")}});
  ASSERT_TRUE(restarted);
  ASSERT_TRUE(restarted->AddBatch(MakeBatchData(3, {b})).ok());
  ASSERT_TRUE(restarted->AddBatch(MakeBatchData(4, {b})).ok());
  EXPECT_EQ(ToJsonLines(Rows()("words")),
            (std::vector<std::string>{R"({"word":"a","count":1})", R"({"word":"b","count":2})"}));
  EXPECT_EQ(BatchIds()("words"), (std::vector<int64_t>{3, 4}));
}

TEST_F(MemorySinkTest, EmptyBatchIsRecordedWithoutRows) {
  auto sink = NewSink({{"query_name", std::string("words")}});
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch("word STRING, count BIGINT", {})})).ok());
  EXPECT_TRUE(Rows()("words").empty());
  EXPECT_EQ(BatchIds()("words"), (std::vector<int64_t>{0, 1}));
  // Its id still counts for replay detection.
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch("word STRING, count BIGINT", {{"a", "1"}})})).ok());
  EXPECT_TRUE(Rows()("words").empty());
}

TEST_F(MemorySinkTest, UpdateModeAccumulates) {
  auto sink = NewSink({{"query_name", std::string("totals")}}, OutputMode::kUpdate);
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {MakeBatch("word STRING, count BIGINT", {{"a", "1"}})})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch("word STRING, count BIGINT", {{"a", "2"}})})).ok());
  EXPECT_EQ(ToJsonLines(Rows()("totals")),
            (std::vector<std::string>{R"({"word":"a","count":1})", R"({"word":"a","count":2})"}));
}

TEST_F(MemorySinkTest, CompleteModeReplacesTheTable) {
  auto sink = NewSink({{"query_name", std::string("totals")}}, OutputMode::kComplete);
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {MakeBatch("word STRING, count BIGINT", {{"a", "1"}})})).ok());
  ASSERT_TRUE(
      sink->AddBatch(MakeBatchData(1, {MakeBatch("word STRING, count BIGINT", {{"a", "2"}, {"b", "1"}})})).ok());
  EXPECT_EQ(ToJsonLines(Rows()("totals")),
            (std::vector<std::string>{R"({"word":"a","count":2})", R"({"word":"b","count":1})"}));
  EXPECT_EQ(BatchIds()("totals"), (std::vector<int64_t>{1}));
  // A replay of the batch the table holds changes nothing.
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch("word STRING, count BIGINT", {{"z", "9"}})})).ok());
  EXPECT_EQ(ToJsonLines(Rows()("totals")),
            (std::vector<std::string>{R"({"word":"a","count":2})", R"({"word":"b","count":1})"}));
}

TEST_F(MemorySinkTest, TablesAreSeparateAndClearForgetsBatchIds) {
  auto words = NewSink({{"query_name", std::string("words")}});
  auto other = NewSink({{"query_name", std::string("other")}});
  ASSERT_TRUE(words && other);
  ASSERT_TRUE(words->AddBatch(MakeBatchData(5, {MakeBatch("word STRING, count BIGINT", {{"a", "1"}})})).ok());
  ASSERT_TRUE(other->AddBatch(MakeBatchData(0, {MakeBatch("word STRING, count BIGINT", {{"x", "7"}})})).ok());
  EXPECT_EQ(ToJsonLines(Rows()("other")), (std::vector<std::string>{R"({"word":"x","count":7})"}));

  Clear()("words");
  EXPECT_TRUE(Rows()("words").empty());
  EXPECT_TRUE(BatchIds()("words").empty());
  EXPECT_EQ(BatchIds()("other"), (std::vector<int64_t>{0}));
  // After a clear, any batch id is new again.
  ASSERT_TRUE(words->AddBatch(MakeBatchData(0, {MakeBatch("word STRING, count BIGINT", {{"b", "2"}})})).ok());
  EXPECT_EQ(ToJsonLines(Rows()("words")), (std::vector<std::string>{R"({"word":"b","count":2})"}));
}

TEST_F(MemorySinkTest, ReturnsTheSameRecordBatchesWithoutCopying) {
  auto sink = NewSink({{"query_name", std::string("words")}});
  ASSERT_TRUE(sink);
  auto batch = MakeBatch("word STRING, count BIGINT", {{"a", "1"}});
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {batch})).ok());
  auto rows = Rows()("words");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].get(), batch.get());
}

}  // namespace
}  // namespace sluice
