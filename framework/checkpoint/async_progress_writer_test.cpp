#include "checkpoint/async_progress_writer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace sluice {
namespace {

class AsyncProgressWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-async-XXXXXX";
    dir_ = mkdtemp(tmpl);
    QueryShape shape;
    shape.sources = {{"in", "kafka", ""}};
    checkpoint_ = std::move(Checkpoint::Open(dir_, shape)).value();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static OffsetSeq Seq(int n) {
    OffsetSeq s;
    s.offsets = {"{\"t\":{\"0\":" + std::to_string(n) + "}}"};
    return s;
  }
  std::string dir_;
  std::unique_ptr<Checkpoint> checkpoint_;
};

TEST_F(AsyncProgressWriterTest, WritesAtMostOncePerIntervalKeepingTheNewest) {
  AsyncProgressWriter writer(*checkpoint_, /*interval_ms=*/600000, /*min_batches_to_retain=*/100);
  // The first entry is written at once (no write yet in this interval)...
  ASSERT_TRUE(writer.Submit(0, Seq(10), {}).ok());
  ASSERT_TRUE(writer.Flush().ok());
  // ...later ones wait for the interval: only the newest survives to the flush.
  ASSERT_TRUE(writer.Submit(1, Seq(20), {}).ok());
  ASSERT_TRUE(writer.Submit(2, Seq(30), {5000}).ok());
  ASSERT_TRUE(writer.Flush().ok());
  EXPECT_EQ(writer.entries_written(), 2);
  EXPECT_EQ(*checkpoint_->offsets().List(), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(*checkpoint_->commits().List(), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(checkpoint_->offsets().Get(2, 1)->offsets[0], "{\"t\":{\"0\":30}}");
  EXPECT_EQ(checkpoint_->commits().Get(2)->next_batch_watermark_ms, 5000);
}

TEST_F(AsyncProgressWriterTest, ZeroIntervalWritesEveryBatchAndPurgesOldOnes) {
  AsyncProgressWriter writer(*checkpoint_, /*interval_ms=*/0, /*min_batches_to_retain=*/2);
  for (int b = 0; b < 5; ++b) {
    ASSERT_TRUE(writer.Submit(b, Seq(b), {}).ok());
    ASSERT_TRUE(writer.Flush().ok());
  }
  EXPECT_EQ(*checkpoint_->offsets().List(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(*checkpoint_->commits().List(), (std::vector<int64_t>{3, 4}));
}

TEST_F(AsyncProgressWriterTest, AFailedWriteIsReportedByTheNextCall) {
  AsyncProgressWriter writer(*checkpoint_, 0, 100);
  std::filesystem::remove_all(dir_ + "/offsets");
  std::ofstream(dir_ + "/offsets") << "not a directory";
  ASSERT_TRUE(writer.Submit(0, Seq(1), {}).ok());
  Status st = writer.Flush();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("asynchronous progress tracking, batch 0: cannot create ", 0), 0u) << st.message();
  EXPECT_FALSE(writer.Submit(1, Seq(2), {}).ok());
}

}  // namespace
}  // namespace sluice
