// Tests of the file sink through its real shared library: exact part file
// names and contents for jsonl and csv, overwrite on replay, no temporary
// files left behind, and errors that name the path.

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

using testing::MakeBatch;
using testing::MakeSink;
using testing::ReadFile;
using testing::TempDir;

BatchData MakeBatchData(int64_t batch_id, std::vector<RecordBatchPtr> batches) {
  BatchData data;
  data.batch_id = batch_id;
  data.schema = batches.empty() ? nullptr : batches.front()->schema();
  data.batches = std::move(batches);
  return data;
}

// Every entry of `dir`, hidden ones included, sorted.
std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::shared_ptr<Sink> NewSink(const std::string& dir, const std::string& ddl,
                              std::map<std::string, OptionValue> options = {}) {
  options["path"] = dir;
  auto sink = MakeSink("file", options, ParseSchemaDdl(ddl).value());
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  return sink.ok() ? *sink : nullptr;
}

const char* kAllTypes = "s STRING, n BIGINT, d DOUBLE, b BOOLEAN, t TIMESTAMP, bin BINARY";

std::vector<std::vector<std::string>> AllTypesRows() {
  return {
      {"plain", "1", "0.1", "true", "2024-05-01T12:00:00Z", "hi!"},
      {"a,b", "-7", "1e10", "false", "2024-05-01T12:00:00.5Z", "hi"},
      {"say \"hi\"", "null", "null", "null", "null", "null"},
      {"two\nlines", "0", "2.5", "true", "1969-12-31T23:59:59Z", ""},
      {"cr\rhere", "3", "-0.25", "false", "2024-02-29T00:00:00.000123Z", "h"},
      {"", "4", "100", "true", "2024-05-01", "null"},
      {"null", "5", "1", "false", "2024-05-01", "null"},
  };
}

TEST(FileSinkTest, WritesJsonLinesPartFile) {
  TempDir dir;
  auto sink = NewSink(dir.path(), kAllTypes);
  ASSERT_TRUE(sink);
  auto batch = MakeBatch(kAllTypes, AllTypesRows());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {batch})).ok());
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"part-00000.jsonl"}));
  EXPECT_EQ(ReadFile(dir / "part-00000.jsonl"),
            R"({"s":"plain","n":1,"d":0.1,"b":true,"t":"2024-05-01T12:00:00Z","bin":"aGkh"})"
            "\n"
            R"({"s":"a,b","n":-7,"d":10000000000.0,"b":false,"t":"2024-05-01T12:00:00.5Z","bin":"aGk="})"
            "\n"
            R"({"s":"say \"hi\"","n":null,"d":null,"b":null,"t":null,"bin":null})"
            "\n"
            R"({"s":"two\nlines","n":0,"d":2.5,"b":true,"t":"1969-12-31T23:59:59Z","bin":""})"
            "\n"
            R"({"s":"cr\rhere","n":3,"d":-0.25,"b":false,"t":"2024-02-29T00:00:00.000123Z","bin":"aA=="})"
            "\n"
            R"({"s":"","n":4,"d":100.0,"b":true,"t":"2024-05-01T00:00:00Z","bin":null})"
            "\n"
            R"({"s":null,"n":5,"d":1.0,"b":false,"t":"2024-05-01T00:00:00Z","bin":null})"
            "\n");
  // Byte for byte what AppendRowJson gives.
  std::string expected;
  for (const auto& line : testing::ToJsonLines({batch})) expected += line + "\n";
  EXPECT_EQ(ReadFile(dir / "part-00000.jsonl"), expected);
  EXPECT_EQ(sink->guarantee(), DeliveryGuarantee::kAtLeastOnce);
  EXPECT_EQ(sink->Description(), "FileSink[" + dir.path() + "]");
}

TEST(FileSinkTest, JsonlSpellsNonFiniteDoublesAsStrings) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "`odd \"key\"` DOUBLE");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch("`odd \"key\"` DOUBLE", {{"nan"}, {"inf"}, {"-inf"}})})).ok());
  EXPECT_EQ(ReadFile(dir / "part-00001.jsonl"),
            "{\"odd \\\"key\\\"\":\"NaN\"}\n{\"odd \\\"key\\\"\":\"Infinity\"}\n{\"odd \\\"key\\\"\":\"-Infinity\"}\n");
}

TEST(FileSinkTest, WritesCsvFollowingRfc4180) {
  TempDir dir;
  auto sink = NewSink(dir.path(), kAllTypes, {{"format", std::string("csv")}});
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(2, {MakeBatch(kAllTypes, AllTypesRows())})).ok());
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"part-00002.csv"}));
  EXPECT_EQ(ReadFile(dir / "part-00002.csv"),
            "plain,1,0.1,true,2024-05-01 12:00:00,aGkh\n"
            "\"a,b\",-7,10000000000.0,false,2024-05-01 12:00:00.5,aGk=\n"
            "\"say \"\"hi\"\"\",,,,,\n"
            "\"two\nlines\",0,2.5,true,1969-12-31 23:59:59,\"\"\n"
            "\"cr\rhere\",3,-0.25,false,2024-02-29 00:00:00.000123,aA==\n"
            "\"\",4,100.0,true,2024-05-01 00:00:00,\n"
            ",5,1.0,false,2024-05-01 00:00:00,\n");
}

TEST(FileSinkTest, CsvHeaderAndDelimiter) {
  TempDir dir;
  const char* ddl = "`a;b` STRING, n BIGINT, `q\"` STRING";
  auto sink = NewSink(dir.path(), ddl,
                      {{"format", std::string("csv")}, {"header", true}, {"delimiter", std::string(";")}});
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {MakeBatch(ddl, {{"x;y", "1", "a,b"}, {"z", "null", "null"}})})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch(ddl, {{"w", "2", "c"}})})).ok());
  EXPECT_EQ(ReadFile(dir / "part-00000.csv"),
            "\"a;b\";n;\"q\"\"\"\n"
            "\"x;y\";1;a,b\n"
            "z;;\n");
  // Every file starts with the header, so each reads alone.
  EXPECT_EQ(ReadFile(dir / "part-00001.csv"),
            "\"a;b\";n;\"q\"\"\"\n"
            "w;2;c\n");
}

TEST(FileSinkTest, CsvWithTabDelimiter) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "a STRING, b STRING", {{"format", std::string("csv")}, {"delimiter", std::string("\t")}});
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {MakeBatch("a STRING, b STRING", {{"x\ty", "a,b"}})})).ok());
  EXPECT_EQ(ReadFile(dir / "part-00000.csv"), "\"x\ty\"\ta,b\n");
}

TEST(FileSinkTest, AllRecordBatchesOfABatchGoToOneFile) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(4, {MakeBatch("n BIGINT", {{"1"}, {"2"}}), MakeBatch("n BIGINT", {}),
                                               MakeBatch("n BIGINT", {{"3"}})}))
                  .ok());
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"part-00004.jsonl"}));
  EXPECT_EQ(ReadFile(dir / "part-00004.jsonl"), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
}

TEST(FileSinkTest, FileNamesArePaddedToFiveDigitsAndGrowBeyond) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "n BIGINT", {{"format", std::string("csv")}});
  ASSERT_TRUE(sink);
  for (int64_t id : {int64_t{7}, int64_t{99999}, int64_t{123456}})
    ASSERT_TRUE(sink->AddBatch(MakeBatchData(id, {MakeBatch("n BIGINT", {{std::to_string(id)}})})).ok());
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"part-00007.csv", "part-123456.csv", "part-99999.csv"}));
  EXPECT_EQ(ReadFile(dir / "part-123456.csv"), "123456\n");
}

TEST(FileSinkTest, ReplayedBatchOverwritesItsOwnFile) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {MakeBatch("n BIGINT", {{"1"}})})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch("n BIGINT", {{"2"}, {"3"}})})).ok());
  // A restart replays batch 1: the same name is written again, never a second file.
  ASSERT_TRUE(sink->Stop().ok());
  auto restarted = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(restarted);
  ASSERT_TRUE(restarted->AddBatch(MakeBatchData(1, {MakeBatch("n BIGINT", {{"2"}})})).ok());
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"part-00000.jsonl", "part-00001.jsonl"}));
  EXPECT_EQ(ReadFile(dir / "part-00000.jsonl"), "{\"n\":1}\n");
  EXPECT_EQ(ReadFile(dir / "part-00001.jsonl"), "{\"n\":2}\n");
}

TEST(FileSinkTest, EmptyBatchWritesNoFile) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "n BIGINT", {{"format", std::string("csv")}, {"header", true}});
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch("n BIGINT", {})})).ok());
  EXPECT_TRUE(ListDir(dir.path()).empty());
}

TEST(FileSinkTest, CreatesMissingDirectoriesAndLeavesNoTempFiles) {
  TempDir dir;
  const std::string out = dir / "a/b/out";
  auto sink = NewSink(out + "/", "n BIGINT");
  ASSERT_TRUE(sink);
  EXPECT_TRUE(fs::is_directory(out));
  EXPECT_EQ(sink->Description(), "FileSink[" + out + "]");
  for (int64_t id = 0; id < 3; ++id)
    ASSERT_TRUE(sink->AddBatch(MakeBatchData(id, {MakeBatch("n BIGINT", {{std::to_string(id)}})})).ok());
  EXPECT_EQ(ListDir(out), (std::vector<std::string>{"part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"}));
}

TEST(FileSinkTest, RemovesTempFilesACrashLeftBehind) {
  TempDir dir;
  testing::WriteFile(dir / ".part-00003.jsonl.tmp", "{\"n\":");
  testing::WriteFile(dir / "part-00002.jsonl", "{\"n\":2}\n");
  testing::WriteFile(dir / "notes.txt", "kept");
  auto sink = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(sink);
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"notes.txt", "part-00002.jsonl"}));
}

TEST(FileSinkTest, ErrorsNameThePathAndTheReason) {
  TempDir dir;
  testing::WriteFile(dir / "plain-file", "x");
  auto under_file = MakeSink("file", {{"path", dir / "plain-file/out"}}, ParseSchemaDdl("n BIGINT").value());
  ASSERT_FALSE(under_file.ok());
  EXPECT_NE(under_file.status().message().find("cannot create directory '" + dir / "plain-file/out" +
                                               "': Not a directory"),
            std::string::npos)
      << under_file.status().ToString();

  auto is_file = MakeSink("file", {{"path", dir / "plain-file"}}, ParseSchemaDdl("n BIGINT").value());
  ASSERT_FALSE(is_file.ok());
  EXPECT_NE(is_file.status().message().find("'" + dir / "plain-file" + "' is not a directory"), std::string::npos)
      << is_file.status().ToString();

  // The directory vanishes after the sink started.
  const std::string out = dir / "out";
  auto sink = NewSink(out, "n BIGINT");
  ASSERT_TRUE(sink);
  fs::remove_all(out);
  Status st = sink->AddBatch(MakeBatchData(0, {MakeBatch("n BIGINT", {{"1"}})}));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("file sink: cannot create '" + out + "/.part-00000.jsonl.tmp': No such file or directory"),
            std::string::npos)
      << st.ToString();
}

TEST(FileSinkTest, RejectsBadOptions) {
  TempDir dir;
  Schema schema = ParseSchemaDdl("n BIGINT").value();
  EXPECT_FALSE(MakeSink("file", {}, schema).ok());  // path is required
  EXPECT_FALSE(MakeSink("file", {{"path", dir.path()}, {"format", std::string("parquet")}}, schema).ok());
  auto empty_delimiter = MakeSink("file", {{"path", dir.path()}, {"delimiter", std::string("")}}, schema);
  ASSERT_FALSE(empty_delimiter.ok());
  EXPECT_NE(empty_delimiter.status().message().find("delimiter must not be empty"), std::string::npos);
  auto quote_delimiter = MakeSink("file", {{"path", dir.path()}, {"delimiter", std::string("\"")}}, schema);
  ASSERT_FALSE(quote_delimiter.ok());
  EXPECT_NE(quote_delimiter.status().message().find("delimiter must not contain a quote, CR or LF"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice
