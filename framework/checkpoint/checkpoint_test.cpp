#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/checkpoint.h"
#include "checkpoint/checkpoint_inspector.h"
#include "checkpoint/durable_file.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-ckpt-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Overwrite(const std::string& rel, const std::string& content) {
    std::ofstream(dir_ + "/" + rel, std::ios::binary | std::ios::trunc) << content;
  }
  static QueryShape Shape(std::vector<QueryShape::Named> sources) {
    QueryShape s;
    s.pipeline_name = "p";
    s.sources = std::move(sources);
    return s;
  }
  std::string dir_;
};

TEST_F(CheckpointTest, OffsetLogRoundTripsInSparksFormat) {
  OffsetLog log(dir_);
  ASSERT_TRUE(CreateDirectoriesDurably(dir_ + "/offsets").ok());
  OffsetSeq seq;
  seq.metadata.batch_watermark_ms = 5000;
  seq.metadata.batch_timestamp_ms = 1714564800000;
  seq.metadata.conf["sluice.x"] = "y";
  seq.offsets = {std::string("{\"files\":3}"), std::nullopt};
  ASSERT_TRUE(log.Add(7, seq).ok());
  auto content = ReadWholeFile(dir_ + "/offsets/7");
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(*content,
            "v1\n{\"batchWatermarkMs\":5000,\"batchTimestampMs\":1714564800000,\"conf\":{\"sluice.x\":\"y\"}}\n"
            "{\"files\":3}\n-\n");
  auto back = log.Get(7, 2);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->metadata.batch_watermark_ms, 5000);
  EXPECT_EQ(back->metadata.batch_timestamp_ms, 1714564800000);
  EXPECT_EQ(back->metadata.conf.at("sluice.x"), "y");
  EXPECT_EQ(back->offsets[0], "{\"files\":3}");
  EXPECT_FALSE(back->offsets[1].has_value());
  EXPECT_FALSE(fs::exists(dir_ + "/offsets/.7.tmp"));  // the temp name was renamed away
}

TEST_F(CheckpointTest, CorruptionNamesTheFileAndBatch) {
  ASSERT_TRUE(CreateDirectoriesDurably(dir_ + "/offsets").ok());
  OffsetLog log(dir_);
  const std::string tail = "; the checkpoint is corrupt: restore it from a backup or start a new checkpoint";
  Overwrite("offsets/3", "v1\n{\"batchWatermarkMs\":0,\"batchTimestampMs\":1,\"conf\":{}}\n{\"files\":");
  EXPECT_EQ(log.Get(3, 1).status().message(),
            "checkpoint file " + dir_ + "/offsets/3 (offsets/3, batch 3) is truncated at byte 66 (its last line has no end)" + tail);
  Overwrite("offsets/4", "v1\n{\"batchWatermarkMs\":0,\"batchTimestampMs\":1,\"conf\":{}}\n{\"fi#les\n");
  EXPECT_EQ(log.Get(4, 1).status().message(),
            "checkpoint file " + dir_ + "/offsets/4 (offsets/4, batch 4) has a garbled offset for source 0: '{\"fi#les'" + tail);
  Overwrite("offsets/5", "v1\n{\"batchWatermarkMs\":0,\"batchTimestampMs\":1,\"conf\":{}}\n");
  EXPECT_EQ(log.Get(5, 1).status().message(),
            "checkpoint file " + dir_ + "/offsets/5 (offsets/5, batch 5) holds 0 source offsets but the pipeline has 1 sources" + tail);
  Overwrite("offsets/6", "\x01\x02garbage\n");
  EXPECT_TRUE(log.Get(6, 1).status().IsCorruption());
  Overwrite("offsets/8", "v9\n{}\n");
  EXPECT_EQ(log.Get(8, 1).status().message(),
            "was written by a newer sluice (format v9); upgrade sluice to read this checkpoint");
  ASSERT_TRUE(CreateDirectoriesDurably(dir_ + "/commits").ok());
  CommitLog commits(dir_);
  Overwrite("commits/2", "v1\n{\"nextBatch");
  EXPECT_TRUE(commits.Get(2).status().IsCorruption());
  EXPECT_NE(commits.Get(2).status().message().find("commits/2, batch 2"), std::string::npos);
}

TEST_F(CheckpointTest, PurgeKeepsTheNewestEntries) {
  ASSERT_TRUE(CreateDirectoriesDurably(dir_ + "/commits").ok());
  CommitLog log(dir_);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(log.Add(i, {}).ok());
  Overwrite("commits/.5.tmp", "leftover");
  ASSERT_TRUE(log.PurgeBefore(3).ok());
  auto ids = log.List();
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(**log.Latest(), 5);
}

TEST_F(CheckpointTest, MetadataKeepsTheQueryIdAcrossRestarts) {
  auto shape = Shape({{"in", "file", ""}});
  auto first = Checkpoint::Open(dir_, shape);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::string id = (*first)->query_id();
  EXPECT_EQ(id.size(), 36u);
  for (const char* sub : {"offsets", "commits", "sources", "sinks", "state"}) EXPECT_TRUE(fs::is_directory(dir_ + "/" + sub));
  auto second = Checkpoint::Open(dir_, shape);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->query_id(), id);
}

TEST_F(CheckpointTest, IncompatibleRestartsAreRefusedNamingTheDifference) {
  ASSERT_TRUE(Checkpoint::Open(dir_, Shape({{"a", "file", ""}, {"b", "rate", ""}})).ok());
  const std::string tail = "; start a new checkpoint (a new `checkpoint` directory) to run this pipeline";
  auto removed = Checkpoint::Open(dir_, Shape({{"a", "file", ""}}));
  EXPECT_EQ(removed.status().message(),
            "cannot restart from checkpoint " + dir_ + ": source 'b' was removed or renamed: the checkpoint was written "
            "with sources [a (file), b (rate)] and the pipeline now has [a (file)]" + tail);
  auto added = Checkpoint::Open(dir_, Shape({{"a", "file", ""}, {"b", "rate", ""}, {"c", "socket", ""}}));
  EXPECT_EQ(added.status().message(),
            "cannot restart from checkpoint " + dir_ + ": source 'c' was added: the checkpoint was written with sources "
            "[a (file), b (rate)] and the pipeline now has [a (file), b (rate), c (socket)]" + tail);
  auto retyped = Checkpoint::Open(dir_, Shape({{"a", "memory", ""}, {"b", "rate", ""}}));
  EXPECT_EQ(retyped.status().message(), "cannot restart from checkpoint " + dir_ +
                                            ": source 'a' was of type 'file' when the checkpoint was written and is now 'memory'" + tail);
  auto stateful = Shape({{"a", "file", ""}, {"b", "rate", ""}});
  stateful.stateful_operators.push_back({"counts", "aggregate", ""});
  EXPECT_EQ(Checkpoint::Open(dir_, stateful).status().message(),
            "cannot restart from checkpoint " + dir_ + ": the stateful operators changed: the checkpoint holds state for "
            "[] and the pipeline now has [counts (aggregate)]" + tail);
  // Sinks and stateless steps may change, as in Spark.
  auto new_sink = Shape({{"a", "file", ""}, {"b", "rate", ""}});
  new_sink.sinks.push_back({"out", "console", ""});
  EXPECT_TRUE(Checkpoint::Open(dir_, new_sink).ok());
}

TEST_F(CheckpointTest, StateCannotMoveBetweenProvidersOrPartitionCounts) {
  auto shape = Shape({{"a", "file", ""}});
  shape.state_provider = "memory";
  shape.stateful_operators.push_back({"counts", "aggregate over 4 partitions", ""});
  ASSERT_TRUE(Checkpoint::Open(dir_, shape).ok());
  const std::string tail = "; start a new checkpoint (a new `checkpoint` directory) to run this pipeline";
  auto other = shape;
  other.state_provider = "rocksdb";
  EXPECT_EQ(Checkpoint::Open(dir_, other).status().message(),
            "cannot restart from checkpoint " + dir_ + ": the state was written by state store provider 'memory' and "
            "the pipeline now uses 'rocksdb' ([state] provider); state cannot move between providers" + tail);
  auto repartitioned = shape;
  repartitioned.stateful_operators[0].type = "aggregate over 8 partitions";
  EXPECT_EQ(Checkpoint::Open(dir_, repartitioned).status().message(),
            "cannot restart from checkpoint " + dir_ + ": the stateful operators changed: the checkpoint holds state for "
            "[counts (aggregate over 4 partitions)] and the pipeline now has [counts (aggregate over 8 partitions)]" + tail);
  EXPECT_TRUE(Checkpoint::Open(dir_, shape).ok());
}

TEST_F(CheckpointTest, GarbledMetadataIsCorruption) {
  ASSERT_TRUE(Checkpoint::Open(dir_, Shape({{"a", "file", ""}})).ok());
  Overwrite("metadata", "{\"id\":\"x\",");
  auto r = Checkpoint::Open(dir_, Shape({{"a", "file", ""}}));
  EXPECT_EQ(r.status().message(), "checkpoint file " + dir_ +
                                      "/metadata is truncated; the checkpoint is corrupt: restore it from a backup or "
                                      "start a new checkpoint");
}

TEST_F(CheckpointTest, InspectShowsBatchesAndWhetherTheyCommitted) {
  auto ck = Checkpoint::Open(dir_, Shape({{"in", "file", ""}}));
  ASSERT_TRUE(ck.ok());
  OffsetSeq seq;
  seq.offsets = {std::string("{\"files\":1}")};
  ASSERT_TRUE((*ck)->offsets().Add(0, seq).ok());
  ASSERT_TRUE((*ck)->commits().Add(0, {}).ok());
  seq.offsets = {std::string("{\"files\":2}")};
  ASSERT_TRUE((*ck)->offsets().Add(1, seq).ok());
  auto text = InspectCheckpoint(dir_);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "checkpoint: " + dir_ + "\nquery id: " + (*ck)->query_id() +
                       "\npipeline: p\nsources:\n  0: in (file)\nbatches (2 retained):\n"
                       "  batch 0: committed\n    in: {\"files\":1}\n"
                       "  batch 1: NOT committed (will be redone on restart)\n    in: {\"files\":2}\n");
}

}  // namespace
}  // namespace sluice
