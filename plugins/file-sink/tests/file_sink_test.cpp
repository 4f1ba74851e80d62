// Tests of the file sink through its real shared library: exact part file
// names and contents for jsonl and csv, the manifest in _sluice_metadata
// (entries, skipped replays, uncommitted attempts overwritten, corruption
// errors, the committed-files reader), crash points exercised in a child
// process killed by SIGKILL, no temporary files left behind, and errors that
// name the path.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

using testing::BuildPlugins;
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

// The committed files as the plugin's exported reader sees them.
using CommittedFilesFn = std::vector<std::string>(const std::string& dir);
std::vector<std::string> CommittedFiles(const std::string& dir) {
  auto* committed_files =
      BuildPlugins().FindAlias<CommittedFilesFn>(PluginKind::kSink, "file", "sluice_file_sink_committed_files");
  EXPECT_NE(committed_files, nullptr);
  return committed_files ? committed_files(dir) : std::vector<std::string>{};
}

// One manifest file line, spelled out as the format documents it.
std::string ManifestLine(const std::string& path, size_t size, int64_t batch_id) {
  return "{\"path\":\"" + path + "\",\"size\":" + std::to_string(size) + ",\"batchId\":" + std::to_string(batch_id) +
         ",\"action\":\"add\"}\n";
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
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"_sluice_metadata", "part-00000.jsonl"}));
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
  EXPECT_EQ(sink->guarantee(), DeliveryGuarantee::kExactlyOnce);
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
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"_sluice_metadata", "part-00002.csv"}));
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
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"_sluice_metadata", "part-00004.jsonl"}));
  EXPECT_EQ(ReadFile(dir / "part-00004.jsonl"), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
}

// Record batches are rendered in contiguous runs on several threads (one per
// core): the file keeps their order, with one header.
TEST(FileSinkTest, ManyRecordBatchesKeepTheirOrderInTheFile) {
  for (const char* format : {"csv", "jsonl"}) {
    SCOPED_TRACE(format);
    TempDir dir;
    auto sink = NewSink(dir.path(), "n BIGINT", {{"format", std::string(format)}, {"header", true}});
    ASSERT_TRUE(sink);
    std::vector<RecordBatchPtr> batches;
    std::string expected = std::string(format) == "csv" ? "n\n" : "";
    int n = 0;
    for (int b = 0; b < 13; ++b) {
      std::vector<std::vector<std::string>> rows;
      for (int r = 0; r < b % 4; ++r, ++n) {  // 0 to 3 rows, some batches empty
        rows.push_back({std::to_string(n)});
        expected += std::string(format) == "csv" ? std::to_string(n) + "\n" : "{\"n\":" + std::to_string(n) + "}\n";
      }
      batches.push_back(MakeBatch("n BIGINT", rows));
    }
    ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, batches)).ok());
    EXPECT_EQ(ReadFile(dir / (std::string("part-00000.") + format)), expected);
  }
}

TEST(FileSinkTest, FileNamesArePaddedToFiveDigitsAndGrowBeyond) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "n BIGINT", {{"format", std::string("csv")}});
  ASSERT_TRUE(sink);
  for (int64_t id : {int64_t{7}, int64_t{99999}, int64_t{123456}})
    ASSERT_TRUE(sink->AddBatch(MakeBatchData(id, {MakeBatch("n BIGINT", {{std::to_string(id)}})})).ok());
  EXPECT_EQ(ListDir(dir.path()),
            (std::vector<std::string>{"_sluice_metadata", "part-00007.csv", "part-123456.csv", "part-99999.csv"}));
  EXPECT_EQ(ListDir(dir / "_sluice_metadata"), (std::vector<std::string>{"123456", "7", "99999"}));
  EXPECT_EQ(ReadFile(dir / "part-123456.csv"), "123456\n");
}

TEST(FileSinkTest, CreatesMissingDirectoriesAndLeavesNoTempFiles) {
  TempDir dir;
  const std::string out = dir / "a/b/out";
  auto sink = NewSink(out + "/", "n BIGINT");
  ASSERT_TRUE(sink);
  EXPECT_FALSE(fs::exists(dir / "a"));  // creating a sink (as `sluice validate` does) touches nothing
  EXPECT_EQ(sink->Description(), "FileSink[" + out + "]");
  for (int64_t id = 0; id < 3; ++id)
    ASSERT_TRUE(sink->AddBatch(MakeBatchData(id, {MakeBatch("n BIGINT", {{std::to_string(id)}})})).ok());
  EXPECT_EQ(ListDir(out), (std::vector<std::string>{"_sluice_metadata", "part-00000.jsonl", "part-00001.jsonl",
                                                     "part-00002.jsonl"}));
  EXPECT_EQ(ListDir(out + "/_sluice_metadata"), (std::vector<std::string>{"0", "1", "2"}));
}

TEST(FileSinkTest, RemovesTempFilesACrashLeftBehind) {
  TempDir dir;
  testing::WriteFile(dir / ".part-00003.jsonl.tmp", "{\"n\":");
  testing::WriteFile(dir / "part-00002.jsonl", "{\"n\":2}\n");
  testing::WriteFile(dir / "notes.txt", "kept");
  // A crash while the entry of batch 2 was being written: never renamed, so
  // batch 2 is not committed.
  testing::WriteFile(dir / "_sluice_metadata/.2.tmp", "v1\n{\"path\":");
  auto sink = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(sink);
  EXPECT_TRUE(CommittedFiles(dir.path()).empty());
  // The first batch cleans up, and the replay of batch 2 commits it.
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(2, {MakeBatch("n BIGINT", {{"2"}})})).ok());
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"_sluice_metadata", "notes.txt", "part-00002.jsonl"}));
  EXPECT_EQ(ListDir(dir / "_sluice_metadata"), (std::vector<std::string>{"2"}));
  EXPECT_EQ(ReadFile(dir / "_sluice_metadata/2"), "v1\n" + ManifestLine("part-00002.jsonl", 8, 2));
  EXPECT_EQ(CommittedFiles(dir.path()), (std::vector<std::string>{"part-00002.jsonl"}));
}

TEST(FileSinkTest, ErrorsNameThePathAndTheReason) {
  TempDir dir;
  testing::WriteFile(dir / "plain-file", "x");
  auto under_file = NewSink(dir / "plain-file/out", "n BIGINT");
  ASSERT_TRUE(under_file);
  Status st = under_file->AddBatch(MakeBatchData(0, {MakeBatch("n BIGINT", {{"1"}})}));
  EXPECT_NE(st.message().find("cannot create directory '" + dir / "plain-file/out" + "': Not a directory"),
            std::string::npos)
      << st.ToString();

  auto is_file = NewSink(dir / "plain-file", "n BIGINT");
  ASSERT_TRUE(is_file);
  st = is_file->AddBatch(MakeBatchData(0, {MakeBatch("n BIGINT", {{"1"}})}));
  EXPECT_NE(st.message().find("'" + dir / "plain-file" + "' is not a directory"), std::string::npos) << st.ToString();

  // The directory vanishes after the sink started.
  const std::string out = dir / "out";
  auto sink = NewSink(out, "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {MakeBatch("n BIGINT", {{"1"}})})).ok());
  fs::remove_all(out);
  st = sink->AddBatch(MakeBatchData(1, {MakeBatch("n BIGINT", {{"1"}})}));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kIOError);
  EXPECT_NE(st.message().find("file sink: cannot create '" + out + "/.part-00001.jsonl.tmp': No such file or directory"),
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

// ---------------------------------------------------------------------------
// The manifest

// Two rows per batch, derived from the id, so a replay carries the same rows.
RecordBatchPtr RowsOfBatch(int64_t batch_id) {
  return MakeBatch("n BIGINT", {{std::to_string(batch_id * 10)}, {std::to_string(batch_id * 10 + 1)}});
}

std::string JsonlOfBatch(int64_t batch_id) {
  return "{\"n\":" + std::to_string(batch_id * 10) + "}\n{\"n\":" + std::to_string(batch_id * 10 + 1) + "}\n";
}

std::string ManifestOfBatch(int64_t batch_id) {
  char name[32];
  std::snprintf(name, sizeof name, "part-%05lld.jsonl", static_cast<long long>(batch_id));
  return "v1\n" + ManifestLine(name, JsonlOfBatch(batch_id).size(), batch_id);
}

TEST(FileSinkManifestTest, EntryNamesTheBatchFileWithItsSize) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(3, {MakeBatch("n BIGINT", {{"7"}, {"-12"}})})).ok());
  EXPECT_EQ(ReadFile(dir / "part-00003.jsonl"), "{\"n\":7}\n{\"n\":-12}\n");
  EXPECT_EQ(ListDir(dir / "_sluice_metadata"), (std::vector<std::string>{"3"}));
  EXPECT_EQ(ReadFile(dir / "_sluice_metadata/3"),
            "v1\n{\"path\":\"part-00003.jsonl\",\"size\":18,\"batchId\":3,\"action\":\"add\"}\n");
}

TEST(FileSinkManifestTest, ReplayOfACommittedBatchIsSkipped) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {RowsOfBatch(0)})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {RowsOfBatch(1)})).ok());
  ASSERT_TRUE(sink->Stop().ok());
  const auto files_before = ListDir(dir.path());
  const std::string part_before = ReadFile(dir / "part-00001.jsonl");
  const std::string entry_before = ReadFile(dir / "_sluice_metadata/1");

  // A restart replays batch 1. Different rows prove the sink did not write at
  // all (the engine always passes the same rows).
  auto restarted = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(restarted);
  ::testing::internal::CaptureStdout();
  Status replayed = restarted->AddBatch(MakeBatchData(1, {MakeBatch("n BIGINT", {{"999"}})}));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(), "");
  ASSERT_TRUE(replayed.ok()) << replayed.ToString();
  EXPECT_EQ(ListDir(dir.path()), files_before);
  EXPECT_EQ(part_before, JsonlOfBatch(1));
  EXPECT_EQ(ReadFile(dir / "part-00001.jsonl"), part_before);
  EXPECT_EQ(ReadFile(dir / "_sluice_metadata/1"), entry_before);
  EXPECT_EQ(ReadFile(dir / "part-00000.jsonl"), JsonlOfBatch(0));
  EXPECT_EQ(CommittedFiles(dir.path()), (std::vector<std::string>{"part-00000.jsonl", "part-00001.jsonl"}));
}

TEST(FileSinkManifestTest, PartFileWithoutEntryIsOverwrittenAndCommitted) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {RowsOfBatch(0)})).ok());
  // What a crash after the part file's rename leaves: a file of batch 1 that
  // no entry names, here with other content to see it replaced.
  testing::WriteFile(dir / "part-00001.jsonl", "{\"n\":-1}\n{\"n\":-2}\n{\"n\":-3}\n");
  EXPECT_EQ(CommittedFiles(dir.path()), (std::vector<std::string>{"part-00000.jsonl"}));

  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {RowsOfBatch(1)})).ok());
  EXPECT_EQ(ReadFile(dir / "part-00001.jsonl"), JsonlOfBatch(1));
  EXPECT_EQ(ReadFile(dir / "_sluice_metadata/1"), ManifestOfBatch(1));
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"_sluice_metadata", "part-00000.jsonl", "part-00001.jsonl"}));
  EXPECT_EQ(CommittedFiles(dir.path()), (std::vector<std::string>{"part-00000.jsonl", "part-00001.jsonl"}));
}

TEST(FileSinkManifestTest, EmptyBatchWritesAnEntryWithNoFiles) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "n BIGINT", {{"format", std::string("csv")}, {"header", true}});
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch("n BIGINT", {})})).ok());
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"_sluice_metadata"}));
  EXPECT_EQ(ListDir(dir / "_sluice_metadata"), (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(ReadFile(dir / "_sluice_metadata/0"), "v1\n");
  EXPECT_EQ(ReadFile(dir / "_sluice_metadata/1"), "v1\n");
  EXPECT_TRUE(CommittedFiles(dir.path()).empty());

  // Its replay is skipped too, whatever rows it is given.
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {MakeBatch("n BIGINT", {{"5"}})})).ok());
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"_sluice_metadata"}));
  EXPECT_EQ(ReadFile(dir / "_sluice_metadata/1"), "v1\n");
}

TEST(FileSinkManifestTest, EmptyBatchRemovesAnUncommittedPartFileOfItsId) {
  TempDir dir;
  testing::WriteFile(dir / "part-00004.jsonl", "{\"n\":1}\n");
  auto sink = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(4, {})).ok());
  EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"_sluice_metadata"}));
  EXPECT_EQ(ReadFile(dir / "_sluice_metadata/4"), "v1\n");
}

TEST(FileSinkManifestTest, CommittedFilesListsExactlyTheManifestFilesInBatchOrder) {
  TempDir dir;
  auto sink = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(sink);
  // Ids whose names sort differently as text ("10" < "2") and as numbers.
  for (int64_t id : {int64_t{2}, int64_t{9}, int64_t{10}})
    ASSERT_TRUE(sink->AddBatch(MakeBatchData(id, {RowsOfBatch(id)})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(11, {})).ok());
  // Nothing else in the directory counts: an uncommitted part file, a stray
  // file, a temporary entry, and names in _sluice_metadata that are not a
  // batch id in canonical form.
  testing::WriteFile(dir / "part-00012.jsonl", JsonlOfBatch(12));
  testing::WriteFile(dir / "notes.txt", "x");
  testing::WriteFile(dir / "_sluice_metadata/.12.tmp", ManifestOfBatch(12));
  testing::WriteFile(dir / "_sluice_metadata/012", ManifestOfBatch(12));
  testing::WriteFile(dir / "_sluice_metadata/README", "not an entry");

  const std::vector<std::string> expected{"part-00002.jsonl", "part-00009.jsonl", "part-00010.jsonl"};
  EXPECT_EQ(CommittedFiles(dir.path()), expected);
  EXPECT_EQ(CommittedFiles(dir.path() + "/"), expected);
  EXPECT_EQ(ReadFile(dir / "_sluice_metadata/10"), ManifestOfBatch(10));
  EXPECT_EQ(ReadFile(dir / "_sluice_metadata/11"), "v1\n");

  // No manifest: nothing committed, whether or not the directory exists.
  TempDir plain;
  testing::WriteFile(plain / "part-00000.jsonl", JsonlOfBatch(0));
  EXPECT_TRUE(CommittedFiles(plain.path()).empty());
  EXPECT_TRUE(CommittedFiles(plain / "missing").empty());
}

// The part of every corruption message after the entry's path.
std::string CorruptionTail(int64_t batch_id) {
  const std::string id = std::to_string(batch_id);
  return "; the output directory's manifest is corrupt (if batch " + id +
         " should be written again, delete that entry; its replay then rewrites the part file)";
}

TEST(FileSinkManifestTest, CorruptEntryFailsTheBatchAndNamesIt) {
  struct Case {
    std::string entry;
    std::string problem;  // what the message says after "<path> (the manifest entry of batch 7) "
  };
  const std::string line7 = ManifestLine("part-00007.jsonl", 16, 7);
  const std::vector<Case> cases = {
      {"v1\n" + line7.substr(0, 30), "is truncated: its last line does not end in a newline"},
      {"v1", "is truncated: its last line does not end in a newline"},
      {"", "is empty"},
      {"v2\n" + line7, "has format version v2; this file sink reads only v1"},
      {line7, "does not start with the line v1, it starts with \"{\\\"path\\\":\\\"part-00007.jsonl\\\","
              "\\\"size\\\":16,\\\"batchId\\\":7,\\\"action\\\":\\\"add\\\"}\""},
      {"v1\n{\"path\":\"part-00007.jsonl\",\"size\":16,}\n",
       "line 2 is not a valid file line (expected a quoted member name at column 38): "
       "\"{\\\"path\\\":\\\"part-00007.jsonl\\\",\\\"size\\\":16,}\""},
      {"v1\n" + line7 + "\n", "line 3 is not a valid file line (expected '{'): \"\""},
      {"v1\n{\"path\":\"part-00007.jsonl\",\"size\":16,\"batchId\":7}\n",
       "line 2 lacks one of \"path\" (string), \"size\", \"batchId\" (integers) and \"action\" (string): "
       "\"{\\\"path\\\":\\\"part-00007.jsonl\\\",\\\"size\\\":16,\\\"batchId\\\":7}\""},
      {"v1\n" + ManifestLine("part-00007.jsonl", 16, 8), "line 2 names batch 8"},
      {"v1\n{\"path\":\"part-00007.jsonl\",\"size\":16,\"batchId\":7,\"action\":\"remove\"}\n",
       "line 2 has action \"remove\"; v1 knows only \"add\""},
      {"v1\n" + ManifestLine("../elsewhere/part-00007.jsonl", 16, 7),
       "line 2 has path \"../elsewhere/part-00007.jsonl\", not a path inside the output directory"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.entry);
    TempDir dir;
    auto sink = NewSink(dir.path(), "n BIGINT");
    ASSERT_TRUE(sink);
    testing::WriteFile(dir / "_sluice_metadata/7", c.entry);
    Status st = sink->AddBatch(MakeBatchData(7, {RowsOfBatch(7)}));
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), StatusCode::kCorruption);
    const std::string entry_path = dir / "_sluice_metadata/7";
    EXPECT_EQ(st.message(),
              "file sink: " + entry_path + " (the manifest entry of batch 7) " + c.problem + CorruptionTail(7));
    // Nothing was written for the batch.
    EXPECT_EQ(ListDir(dir.path()), (std::vector<std::string>{"_sluice_metadata"}));
    EXPECT_EQ(ReadFile(entry_path), c.entry);

    // The reader refuses the directory with the same explanation.
    try {
      CommittedFiles(dir.path());
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "file sink: " + entry_path + " (the manifest entry of batch 7) " + c.problem +
                                           "; the output directory's manifest is corrupt");
    }
  }
}

TEST(FileSinkManifestTest, ManifestPathThatIsAFileIsRefused) {
  TempDir dir;
  testing::WriteFile(dir / "_sluice_metadata", "x");
  auto sink = NewSink(dir.path(), "n BIGINT");
  ASSERT_TRUE(sink);
  Status st = sink->AddBatch(MakeBatchData(0, {MakeBatch("n BIGINT", {{"1"}})}));
  EXPECT_NE(st.message().find("'" + dir / "_sluice_metadata" +
                              "' is not a directory; the output directory's manifest is corrupt"),
            std::string::npos)
      << st.ToString();
}

// ---------------------------------------------------------------------------
// Crash points
//
// An armed crash point reads SLUICE_CRASH_AT once per process and keeps the
// answer, so a child that only forked would inherit this process's unarmed
// answer as soon as any earlier test wrote a batch. The child therefore
// re-executes this binary, running just FileSinkCrashChild, with the variable
// set before its first crash point; it creates the sink through MakeSink and
// writes batches until the armed point kills it.

constexpr const char* kChildDirVariable = "SLUICE_FILE_SINK_TEST_CHILD_DIR";
// Comma-separated batch ids to write in order; "empty:4" writes batch 4 with no rows.
constexpr const char* kChildBatchesVariable = "SLUICE_FILE_SINK_TEST_CHILD_BATCHES";

TEST(FileSinkCrashChild, WritesBatchesUntilTheArmedPointKillsIt) {
  const char* dir = std::getenv(kChildDirVariable);
  const char* batches = std::getenv(kChildBatchesVariable);
  if (!dir || !batches) GTEST_SKIP() << "runs only as the child process of FileSinkCrashTest";
  auto sink = NewSink(dir, "n BIGINT");
  ASSERT_TRUE(sink);
  std::stringstream ids(batches);
  for (std::string token; std::getline(ids, token, ',');) {
    const bool empty = token.starts_with("empty:");
    const int64_t id = std::stoll(empty ? token.substr(6) : token);
    Status st = sink->AddBatch(empty ? MakeBatchData(id, {}) : MakeBatchData(id, {RowsOfBatch(id)}));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  // Reaching the end means the armed point never fired; the parent says so.
}

struct ChildResult {
  bool killed_by_sigkill = false;
  std::string how_it_ended;
  std::string output;
};

// Runs the child with SLUICE_CRASH_AT=`crash_at`, writing `batches` to `dir`.
ChildResult RunCrashingChild(const std::string& crash_at, const std::string& dir, const std::string& batches,
                             const std::string& output_path) {
  ChildResult result;
  const pid_t pid = ::fork();
  if (pid < 0) {
    result.how_it_ended = "fork failed";
    return result;
  }
  if (pid == 0) {
    ::setenv("SLUICE_CRASH_AT", crash_at.c_str(), 1);
    ::setenv(kChildDirVariable, dir.c_str(), 1);
    ::setenv(kChildBatchesVariable, batches.c_str(), 1);
    ::unsetenv("GTEST_OUTPUT");  // the child must not overwrite the parent's report
    const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out >= 0) {
      ::dup2(out, STDOUT_FILENO);
      ::dup2(out, STDERR_FILENO);
    }
    ::execl("/proc/self/exe", "file_sink_test", "--gtest_filter=FileSinkCrashChild.*", "--gtest_color=no",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.killed_by_sigkill = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  result.how_it_ended = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                            : "exited with code " + std::to_string(WEXITSTATUS(status));
  result.output = ReadFile(output_path);
  return result;
}

#define ASSERT_KILLED_AT(crash_at, out_dir, batches, log_dir)                                         \
  do {                                                                                                \
    ChildResult child = RunCrashingChild(crash_at, out_dir, batches, (log_dir) + "/child.log");       \
    ASSERT_TRUE(child.killed_by_sigkill) << "child " << child.how_it_ended << "; its output:\n"       \
                                         << child.output;                                             \
  } while (0)

TEST(FileSinkCrashTest, BeforeWriteLeavesNothingOfTheBatch) {
  TempDir scratch;
  const std::string out = scratch / "out";
  ASSERT_KILLED_AT("file-sink:before-write", out, "0", scratch.path());
  EXPECT_EQ(ListDir(out), (std::vector<std::string>{"_sluice_metadata"}));
  EXPECT_TRUE(ListDir(out + "/_sluice_metadata").empty());
  EXPECT_TRUE(CommittedFiles(out).empty());

  auto sink = NewSink(out, "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {RowsOfBatch(0)})).ok());
  EXPECT_EQ(ReadFile(out + "/part-00000.jsonl"), JsonlOfBatch(0));
  EXPECT_EQ(ReadFile(out + "/_sluice_metadata/0"), ManifestOfBatch(0));
  EXPECT_EQ(CommittedFiles(out), (std::vector<std::string>{"part-00000.jsonl"}));
}

TEST(FileSinkCrashTest, AfterPartRenameLeavesAnUncommittedPartFileThatTheReplayCommits) {
  TempDir scratch;
  const std::string out = scratch / "out";
  ASSERT_KILLED_AT("file-sink:after-part-rename", out, "0", scratch.path());
  // The part file is whole and in place, but no entry names it.
  EXPECT_EQ(ListDir(out), (std::vector<std::string>{"_sluice_metadata", "part-00000.jsonl"}));
  EXPECT_EQ(ReadFile(out + "/part-00000.jsonl"), JsonlOfBatch(0));
  EXPECT_TRUE(ListDir(out + "/_sluice_metadata").empty());
  EXPECT_TRUE(CommittedFiles(out).empty());

  auto sink = NewSink(out, "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {RowsOfBatch(0)})).ok());
  EXPECT_EQ(ListDir(out), (std::vector<std::string>{"_sluice_metadata", "part-00000.jsonl"}));
  EXPECT_EQ(ReadFile(out + "/part-00000.jsonl"), JsonlOfBatch(0));
  EXPECT_EQ(ListDir(out + "/_sluice_metadata"), (std::vector<std::string>{"0"}));
  EXPECT_EQ(ReadFile(out + "/_sluice_metadata/0"), ManifestOfBatch(0));
  EXPECT_EQ(CommittedFiles(out), (std::vector<std::string>{"part-00000.jsonl"}));
}

TEST(FileSinkCrashTest, AfterManifestTheReplayIsSkipped) {
  TempDir scratch;
  const std::string out = scratch / "out";
  ASSERT_KILLED_AT("file-sink:after-manifest", out, "0", scratch.path());
  EXPECT_EQ(ListDir(out), (std::vector<std::string>{"_sluice_metadata", "part-00000.jsonl"}));
  EXPECT_EQ(ReadFile(out + "/part-00000.jsonl"), JsonlOfBatch(0));
  EXPECT_EQ(ListDir(out + "/_sluice_metadata"), (std::vector<std::string>{"0"}));
  EXPECT_EQ(ReadFile(out + "/_sluice_metadata/0"), ManifestOfBatch(0));
  EXPECT_EQ(CommittedFiles(out), (std::vector<std::string>{"part-00000.jsonl"}));

  // The executor had not written commits/0, so it replays batch 0.
  auto sink = NewSink(out, "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {MakeBatch("n BIGINT", {{"999"}})})).ok());
  EXPECT_EQ(ReadFile(out + "/part-00000.jsonl"), JsonlOfBatch(0));
  EXPECT_EQ(ReadFile(out + "/_sluice_metadata/0"), ManifestOfBatch(0));
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(1, {RowsOfBatch(1)})).ok());
  EXPECT_EQ(CommittedFiles(out), (std::vector<std::string>{"part-00000.jsonl", "part-00001.jsonl"}));
}

TEST(FileSinkCrashTest, AfterManifestOfAnEmptyBatch) {
  TempDir scratch;
  const std::string out = scratch / "out";
  ASSERT_KILLED_AT("file-sink:after-manifest", out, "empty:0", scratch.path());
  EXPECT_EQ(ListDir(out), (std::vector<std::string>{"_sluice_metadata"}));
  EXPECT_EQ(ReadFile(out + "/_sluice_metadata/0"), "v1\n");
  EXPECT_TRUE(CommittedFiles(out).empty());

  auto sink = NewSink(out, "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(0, {})).ok());
  EXPECT_EQ(ListDir(out), (std::vector<std::string>{"_sluice_metadata"}));
  EXPECT_EQ(ReadFile(out + "/_sluice_metadata/0"), "v1\n");
}

TEST(FileSinkCrashTest, SecondPartRenameCrashKeepsTheFirstBatchCommitted) {
  TempDir scratch;
  const std::string out = scratch / "out";
  // An empty batch does not reach after-part-rename, so @2 is batch 2's rename.
  ASSERT_KILLED_AT("file-sink:after-part-rename@2", out, "0,empty:1,2,3", scratch.path());
  EXPECT_EQ(ListDir(out), (std::vector<std::string>{"_sluice_metadata", "part-00000.jsonl", "part-00002.jsonl"}));
  EXPECT_EQ(ListDir(out + "/_sluice_metadata"), (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(ReadFile(out + "/part-00002.jsonl"), JsonlOfBatch(2));
  EXPECT_EQ(CommittedFiles(out), (std::vector<std::string>{"part-00000.jsonl"}));

  // Recovery replays the uncommitted batch 2, then the run goes on.
  auto sink = NewSink(out, "n BIGINT");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(2, {RowsOfBatch(2)})).ok());
  ASSERT_TRUE(sink->AddBatch(MakeBatchData(3, {RowsOfBatch(3)})).ok());
  EXPECT_EQ(ListDir(out), (std::vector<std::string>{"_sluice_metadata", "part-00000.jsonl", "part-00002.jsonl",
                                                    "part-00003.jsonl"}));
  EXPECT_EQ(ListDir(out + "/_sluice_metadata"), (std::vector<std::string>{"0", "1", "2", "3"}));
  for (int64_t id : {int64_t{0}, int64_t{2}, int64_t{3}}) {
    EXPECT_EQ(ReadFile(out + "/_sluice_metadata/" + std::to_string(id)), ManifestOfBatch(id));
    EXPECT_EQ(ReadFile(out + "/" + "part-0000" + std::to_string(id) + ".jsonl"), JsonlOfBatch(id));
  }
  EXPECT_EQ(CommittedFiles(out), (std::vector<std::string>{"part-00000.jsonl", "part-00002.jsonl", "part-00003.jsonl"}));
}


}  // namespace
}  // namespace sluice
