// Tests of the "file" source, loaded from its shared library as production
// loads it: formats with exact rows, bad records and their positions, file
// admission order and limits, available-now, and the persisted file log.
#include <fcntl.h>
#include <sys/stat.h>

#include <filesystem>
#include <gtest/gtest.h>

#include "support/test_support.h"

namespace sluice {
namespace {

using testing::CollectingReadContext;
using testing::MakeSource;
using testing::ReadRange;
using testing::TempDir;
using testing::ToJsonLines;
using testing::WriteFile;
using Lines = std::vector<std::string>;

std::shared_ptr<Source> NewSource(const std::map<std::string, OptionValue>& options,
                                  const std::string& checkpoint_dir = "") {
  auto source = MakeSource("file", options, checkpoint_dir);
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  return source.ok() ? *source : nullptr;
}

// Writes a file with a fixed modification time, so admission order is known.
void WriteFileWithMtime(const std::string& path, const std::string& content, int64_t mtime_seconds) {
  WriteFile(path, content);
  struct timespec times[2] = {{mtime_seconds, 0}, {mtime_seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

Offset Files(int n) { return "{\"files\":" + std::to_string(n) + "}"; }

std::optional<Offset> Latest(Source& source, const std::optional<Offset>& start,
                             ReadLimit limit = ReadLimit::kDefault) {
  auto latest = source.LatestOffset(start, limit);
  EXPECT_TRUE(latest.ok()) << latest.status().ToString();
  return latest.ok() ? *latest : std::nullopt;
}

Lines ReadRows(Source& source, const std::optional<Offset>& start, const Offset& end,
               CollectingReadContext* ctx = nullptr) {
  auto batches = ReadRange(source, start, end, ctx);
  EXPECT_TRUE(batches.ok()) << batches.status().ToString();
  return batches.ok() ? ToJsonLines(*batches) : Lines{};
}

TEST(FileSourceText, OneRowPerLineWithCarriageReturnsStripped) {
  TempDir dir;
  WriteFile(dir / "a.txt", "hello\r\nworld\n\nlast");
  auto source = NewSource({{"path", dir.path()}});
  ASSERT_TRUE(source);
  EXPECT_EQ(source->schema().ToString(), "value STRING");
  EXPECT_EQ(source->Description(), "FileSource[" + dir.path() + "]");
  auto end = Latest(*source, std::nullopt);
  ASSERT_EQ(end, Files(1));
  EXPECT_EQ(ReadRows(*source, std::nullopt, *end),
            (Lines{R"({"value":"hello"})", R"({"value":"world"})", R"({"value":""})", R"({"value":"last"})"}));
  EXPECT_EQ(Latest(*source, end), end) << "nothing new: the start comes back";
}

TEST(FileSourceText, NothingInTheDirectoryMeansNoOffset) {
  TempDir dir;
  auto source = NewSource({{"path", dir.path()}});
  ASSERT_TRUE(source);
  EXPECT_EQ(Latest(*source, std::nullopt), std::nullopt);
}

TEST(FileSourceText, LargeFileIsSplitIntoPreferredBatches) {
  TempDir dir;
  std::string content;
  const int64_t rows = 2 * kPreferredBatchRows + 100;
  for (int64_t i = 0; i < rows; ++i) content += std::to_string(i) + "\n";
  WriteFile(dir / "big.txt", content);
  auto source = NewSource({{"path", dir.path()}});
  ASSERT_TRUE(source);
  auto batches = ReadRange(*source, std::nullopt, *Latest(*source, std::nullopt));
  ASSERT_TRUE(batches.ok());
  ASSERT_EQ(batches->size(), 3u);
  EXPECT_EQ((*batches)[0]->num_rows(), kPreferredBatchRows);
  EXPECT_EQ((*batches)[1]->num_rows(), kPreferredBatchRows);
  EXPECT_EQ((*batches)[2]->num_rows(), 100);
  EXPECT_EQ((*batches)[2]->column(0).string_at(99), std::to_string(rows - 1));
}

TEST(FileSourceCsv, TypedColumnsHeaderQuotingAndNulls) {
  TempDir dir;
  WriteFile(dir / "people.csv",
            "id,name,score,ok,ts\n"
            "1,\"Smith, Jane\",1.5,true,2024-05-01 12:00:00\n"
            "2,\"say \"\"hi\"\"\",,false,2024-05-01T12:00:00.5Z\n"
            "3,,-2,TRUE,\n"
            "4,\"\",0,false,\"2024-05-01\"\n"
            "\n"
            "5,\"two\n"
            "lines\",3e2,false,2024-05-01 12:00:00+02:00\n");
  auto source = NewSource({{"path", dir.path()},
                           {"format", std::string("csv")},
                           {"header", true},
                           {"schema", std::string("id BIGINT, name STRING, score DOUBLE, ok BOOLEAN, ts TIMESTAMP")}});
  ASSERT_TRUE(source);
  CollectingReadContext ctx;
  EXPECT_EQ(ReadRows(*source, std::nullopt, *Latest(*source, std::nullopt), &ctx),
            (Lines{
                R"({"id":1,"name":"Smith, Jane","score":1.5,"ok":true,"ts":"2024-05-01T12:00:00Z"})",
                R"({"id":2,"name":"say \"hi\"","score":null,"ok":false,"ts":"2024-05-01T12:00:00.5Z"})",
                R"({"id":3,"name":null,"score":-2.0,"ok":true,"ts":null})",
                R"({"id":4,"name":"","score":0.0,"ok":false,"ts":"2024-05-01T00:00:00Z"})",
                R"({"id":5,"name":"two\nlines","score":300.0,"ok":false,"ts":"2024-05-01T10:00:00Z"})",
            }));
  EXPECT_TRUE(ctx.bad_records.empty());
}

TEST(FileSourceCsv, CustomDelimiterAndCrlfLineEndings) {
  TempDir dir;
  WriteFile(dir / "a.csv", "1;x,y\r\n2;\"q;r\"\r\n3;last");
  auto source = NewSource({{"path", dir.path()},
                           {"format", std::string("csv")},
                           {"delimiter", std::string(";")},
                           {"schema", std::string("id INT, name STRING")}});
  ASSERT_TRUE(source);
  EXPECT_EQ(ReadRows(*source, std::nullopt, *Latest(*source, std::nullopt)),
            (Lines{R"({"id":1,"name":"x,y"})", R"({"id":2,"name":"q;r"})", R"({"id":3,"name":"last"})"}));
}

const char* kBadCsv =
    "1,a\n"
    "2\n"
    "x,b\n"
    "\"4\"z,c\n"
    "5,\"multi\n"
    "line\"\n"
    "6,\"unterminated\n"
    "7,never read";

TEST(FileSourceCsv, BadRecordsAreReportedWithPositionsAndDropped) {
  TempDir dir;
  WriteFile(dir / "bad.csv", kBadCsv);
  auto source = NewSource(
      {{"path", dir.path()}, {"format", std::string("csv")}, {"schema", std::string("id BIGINT, name STRING")}});
  ASSERT_TRUE(source);
  CollectingReadContext ctx(CollectingReadContext::OnError::kDrop);
  EXPECT_EQ(ReadRows(*source, std::nullopt, *Latest(*source, std::nullopt), &ctx),
            (Lines{R"({"id":1,"name":"a"})", R"({"id":5,"name":"multi\nline"})"}));
  ASSERT_EQ(ctx.bad_records.size(), 4u);
  EXPECT_EQ(ctx.bad_records[0].raw, "2");
  EXPECT_EQ(ctx.bad_records[0].position, "bad.csv:2");
  EXPECT_EQ(ctx.bad_records[0].error, "expected 2 fields, found 1");
  EXPECT_EQ(ctx.bad_records[1].raw, "x,b");
  EXPECT_EQ(ctx.bad_records[1].position, "bad.csv:3");
  EXPECT_EQ(ctx.bad_records[1].error, "field 'id': 'x' is not a BIGINT");
  EXPECT_EQ(ctx.bad_records[2].raw, "\"4\"z,c");
  EXPECT_EQ(ctx.bad_records[2].position, "bad.csv:4");
  EXPECT_EQ(ctx.bad_records[2].error, "unexpected character 'z' after the closing quote of field 1");
  EXPECT_EQ(ctx.bad_records[3].raw, "6,\"unterminated\n7,never read");
  EXPECT_EQ(ctx.bad_records[3].position, "bad.csv:7");
  EXPECT_EQ(ctx.bad_records[3].error, "unterminated quoted field 2");
}

TEST(FileSourceCsv, FailingContextStopsAtTheFirstBadRecord) {
  TempDir dir;
  WriteFile(dir / "bad.csv", kBadCsv);
  auto source = NewSource(
      {{"path", dir.path()}, {"format", std::string("csv")}, {"schema", std::string("id BIGINT, name STRING")}});
  ASSERT_TRUE(source);
  CollectingReadContext ctx(CollectingReadContext::OnError::kFail);
  auto batches = ReadRange(*source, std::nullopt, *Latest(*source, std::nullopt), &ctx);
  ASSERT_FALSE(batches.ok());
  EXPECT_EQ(batches.status().code(), StatusCode::kParseError);
  EXPECT_EQ(batches.status().message(), "malformed record at bad.csv:2: expected 2 fields, found 1");
  EXPECT_EQ(ctx.bad_records.size(), 1u);
}

TEST(FileSourceCsv, NotNullFieldAndBinaryBase64) {
  TempDir dir;
  WriteFile(dir / "a.csv", "1,aGk=\n,aGk=\n3,\n4,!!\n");
  auto source = NewSource({{"path", dir.path()},
                           {"format", std::string("csv")},
                           {"schema", std::string("id BIGINT NOT NULL, payload BINARY")}});
  ASSERT_TRUE(source);
  CollectingReadContext ctx;
  EXPECT_EQ(ReadRows(*source, std::nullopt, *Latest(*source, std::nullopt), &ctx),
            (Lines{R"({"id":1,"payload":"aGk="})", R"({"id":3,"payload":null})"}));
  ASSERT_EQ(ctx.bad_records.size(), 2u);
  EXPECT_EQ(ctx.bad_records[0].position, "a.csv:2");
  EXPECT_EQ(ctx.bad_records[0].error, "field 'id' is null but the schema declares it NOT NULL");
  EXPECT_EQ(ctx.bad_records[1].position, "a.csv:4");
  EXPECT_EQ(ctx.bad_records[1].error, "field 'payload': '!!' is not a BINARY");
}

TEST(FileSourceJsonl, FieldsByNameMissingNullExtraIgnored) {
  TempDir dir;
  WriteFile(dir / "e.jsonl",
            "{\"id\":1,\"name\":\"a\",\"score\":2,\"ok\":true,\"ts\":\"2024-05-01T00:00:00Z\",\"extra\":5}\n"
            "\n"
            "  \n"
            "{\"id\":2,\"ts\":1714521600.5,\"tags\":[\"x\",{\"k\":1}]}\r\n"
            "{\"ID\":3,\"Name\":\"case\",\"ts\":1714521600,\"tags\":\"t\",\"score\":null}\n");
  auto source = NewSource(
      {{"path", dir.path()},
       {"format", std::string("jsonl")},
       {"schema", std::string("id BIGINT, name STRING, score DOUBLE, ok BOOLEAN, ts TIMESTAMP, tags STRING")}});
  ASSERT_TRUE(source);
  CollectingReadContext ctx;
  EXPECT_EQ(
      ReadRows(*source, std::nullopt, *Latest(*source, std::nullopt), &ctx),
      (Lines{
          R"({"id":1,"name":"a","score":2.0,"ok":true,"ts":"2024-05-01T00:00:00Z","tags":null})",
          R"({"id":2,"name":null,"score":null,"ok":null,"ts":"2024-05-01T00:00:00.5Z","tags":"[\"x\",{\"k\":1}]"})",
          R"({"id":3,"name":"case","score":null,"ok":null,"ts":"2024-05-01T00:00:00Z","tags":"t"})",
      }));
  EXPECT_TRUE(ctx.bad_records.empty());
}

TEST(FileSourceJsonl, MalformedJsonAndTypeMismatchesAreBadRecords) {
  TempDir dir;
  WriteFile(dir / "e.jsonl",
            "{\"id\":\"abc\"}\n"
            "\n"
            "{\"id\":1\n"
            "[1,2]\n"
            "{\"id\":4,\"ok\":\"yes\"}\n"
            "{\"id\":5} trailing\n"
            "{\"id\":6,\"ts\":\"not a time\"}\n"
            "{\"id\":7,\"ok\":false}\n");
  auto source = NewSource({{"path", dir.path()},
                           {"format", std::string("jsonl")},
                           {"schema", std::string("id BIGINT, ok BOOLEAN, ts TIMESTAMP")}});
  ASSERT_TRUE(source);
  CollectingReadContext ctx;
  EXPECT_EQ(ReadRows(*source, std::nullopt, *Latest(*source, std::nullopt), &ctx), (Lines{R"({"id":7,"ok":false,"ts":null})"}));
  ASSERT_EQ(ctx.bad_records.size(), 6u);
  EXPECT_EQ(ctx.bad_records[0].raw, "{\"id\":\"abc\"}");
  EXPECT_EQ(ctx.bad_records[0].position, "e.jsonl:1");
  EXPECT_EQ(ctx.bad_records[0].error, "field 'id': \"abc\" is not a BIGINT");
  EXPECT_EQ(ctx.bad_records[1].position, "e.jsonl:3");
  EXPECT_EQ(ctx.bad_records[1].error.rfind("malformed JSON: ", 0), 0u) << ctx.bad_records[1].error;
  EXPECT_EQ(ctx.bad_records[2].position, "e.jsonl:4");
  EXPECT_EQ(ctx.bad_records[2].error, "expected a JSON object, found an array");
  EXPECT_EQ(ctx.bad_records[3].position, "e.jsonl:5");
  EXPECT_EQ(ctx.bad_records[3].error, "field 'ok': \"yes\" is not a BOOLEAN");
  EXPECT_EQ(ctx.bad_records[4].position, "e.jsonl:6");
  EXPECT_EQ(ctx.bad_records[4].error.rfind("malformed JSON: ", 0), 0u) << ctx.bad_records[4].error;
  EXPECT_EQ(ctx.bad_records[5].position, "e.jsonl:7");
  EXPECT_EQ(ctx.bad_records[5].error, "field 'ts': \"not a time\" is not a TIMESTAMP");
}

TEST(FileSourceAdmission, OrderedByModificationTimeThenNameWithMaxFilesPerTrigger) {
  TempDir dir;
  WriteFileWithMtime(dir / "c.txt", "c", 100);
  WriteFileWithMtime(dir / "b.txt", "b", 300);
  WriteFileWithMtime(dir / "a.txt", "a", 300);
  WriteFileWithMtime(dir / "d.txt", "d", 200);
  auto source = NewSource({{"path", dir.path()}, {"max_files_per_trigger", int64_t{2}}});
  ASSERT_TRUE(source);
  auto first = Latest(*source, std::nullopt);
  ASSERT_EQ(first, Files(2));
  auto parts = source->PlanPartitions(std::nullopt, *first);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(*parts, (Lines{dir / "c.txt", dir / "d.txt"})) << "one partition per file";
  EXPECT_EQ(ReadRows(*source, std::nullopt, *first), (Lines{R"({"value":"c"})", R"({"value":"d"})"}));
  auto second = Latest(*source, first);
  ASSERT_EQ(second, Files(4));
  EXPECT_EQ(ReadRows(*source, first, *second), (Lines{R"({"value":"a"})", R"({"value":"b"})"}));
  EXPECT_EQ(Latest(*source, second), second);

  WriteFileWithMtime(dir / "e.txt", "e", 50);  // old mtime, but new to the source: still read
  auto third = Latest(*source, second);
  ASSERT_EQ(third, Files(5));
  EXPECT_EQ(ReadRows(*source, second, *third), (Lines{R"({"value":"e"})"}));
}

TEST(FileSourceAdmission, ReadAllIgnoresTheFileLimit) {
  TempDir dir;
  WriteFileWithMtime(dir / "f0", "x", 100);
  WriteFileWithMtime(dir / "f1", "x", 101);
  WriteFileWithMtime(dir / "f2", "x", 102);
  auto source = NewSource({{"path", dir.path()}, {"max_files_per_trigger", int64_t{1}}});
  ASSERT_TRUE(source);
  EXPECT_EQ(Latest(*source, std::nullopt, ReadLimit::kAll), Files(3));
}

TEST(FileSourceAdmission, HiddenTemporaryAndUnmatchedFilesAreIgnored) {
  TempDir dir;
  WriteFile(dir / ".hidden.txt", "hidden");
  WriteFile(dir / "_SUCCESS.txt", "marker");
  WriteFile(dir / "part-0.txt.tmp", "being written");
  WriteFile(dir / "other.csv", "not matching");
  WriteFile(dir / "data.txt", "kept");
  std::filesystem::create_directory(dir / "subdir.txt");
  auto source = NewSource({{"path", dir.path()}, {"pattern", std::string("*.txt")}});
  ASSERT_TRUE(source);
  auto end = Latest(*source, std::nullopt);
  ASSERT_EQ(end, Files(1));
  EXPECT_EQ(ReadRows(*source, std::nullopt, *end), (Lines{R"({"value":"kept"})"}));

  // Renaming a finished file into place is how writers publish it.
  std::filesystem::rename(dir / "part-0.txt.tmp", dir / "part-0.txt");
  auto next = Latest(*source, end);
  ASSERT_EQ(next, Files(2));
  EXPECT_EQ(ReadRows(*source, end, *next), (Lines{R"({"value":"being written"})"}));
}

TEST(FileSourceAdmission, ADirectoryWithASinkManifestIsReadThroughIt) {
  // What sluice's file sink leaves after a crash between a part file and its
  // manifest entry: part-00001 exists but is not committed.
  TempDir dir;
  WriteFileWithMtime(dir / "part-00000.jsonl", "{\"v\":1}\n", 1000);
  WriteFileWithMtime(dir / "part-00001.jsonl", "{\"v\":2}\n", 1001);
  WriteFile(dir / "_sluice_metadata/0",
            "v1\n{\"path\":\"part-00000.jsonl\",\"size\":8,\"batchId\":0,\"action\":\"add\"}\n");
  auto source = NewSource({{"path", dir.path()}, {"format", std::string("jsonl")}, {"schema", std::string("v BIGINT")}});
  ASSERT_TRUE(source);
  auto end = Latest(*source, std::nullopt);
  ASSERT_EQ(end, Files(1));
  EXPECT_EQ(ReadRows(*source, std::nullopt, *end), (Lines{R"({"v":1})"}));
  // The replay commits it: now it is data.
  WriteFile(dir / "_sluice_metadata/1",
            "v1\n{\"path\":\"part-00001.jsonl\",\"size\":8,\"batchId\":1,\"action\":\"add\"}\n");
  auto next = Latest(*source, end);
  ASSERT_EQ(next, Files(2));
  EXPECT_EQ(ReadRows(*source, end, *next), (Lines{R"({"v":2})"}));
  // A garbled manifest is an error, not a silent skip.
  WriteFile(dir / "_sluice_metadata/2", "v1\n{\"pa");
  auto garbled = source->LatestOffset(next, ReadLimit::kDefault);
  ASSERT_FALSE(garbled.ok());
  EXPECT_EQ(garbled.status().message(), "manifest entry " + (dir / "_sluice_metadata/2") + " has a garbled line: {\"pa");
}

TEST(FileSourceAdmission, AvailableNowReadsOnlyFilesPresentWhenPrepared) {
  TempDir dir;
  WriteFileWithMtime(dir / "a.txt", "a", 100);
  WriteFileWithMtime(dir / "b.txt", "b", 200);
  auto source = NewSource({{"path", dir.path()}, {"max_files_per_trigger", int64_t{1}}});
  ASSERT_TRUE(source);
  ASSERT_TRUE(source->PrepareForAvailableNow().ok());
  WriteFileWithMtime(dir / "c.txt", "c", 50);
  auto first = Latest(*source, std::nullopt);
  ASSERT_EQ(first, Files(1));
  auto second = Latest(*source, first);
  ASSERT_EQ(second, Files(2));
  EXPECT_EQ(Latest(*source, second), second) << "c.txt arrived after the snapshot";
  EXPECT_EQ(ReadRows(*source, std::nullopt, *second), (Lines{R"({"value":"a"})", R"({"value":"b"})"}));
}

TEST(FileSourceCheckpoint, RestartedSourceMapsOldOffsetsToTheSameFilesAndNeverRereads) {
  TempDir dir, checkpoint;
  WriteFileWithMtime(dir / "a.txt", "a", 100);
  WriteFileWithMtime(dir / "b.txt", "b", 200);
  WriteFileWithMtime(dir / "c.txt", "c", 300);
  const std::map<std::string, OptionValue> options{{"path", dir.path()}, {"max_files_per_trigger", int64_t{1}}};
  {
    auto source = NewSource(options, checkpoint.path());
    ASSERT_TRUE(source);
    auto first = Latest(*source, std::nullopt);
    ASSERT_EQ(first, Files(1));
    ASSERT_EQ(Latest(*source, first), Files(2));
    source->Stop();
  }
  EXPECT_TRUE(std::filesystem::exists(checkpoint / "admitted-files.log"));
  EXPECT_FALSE(std::filesystem::exists(checkpoint / ".admitted-files.log.tmp"));

  // b.txt changes while the source is down: a restarted source never reads
  // a file twice, and an old offset still means the same files.
  WriteFileWithMtime(dir / "b.txt", "b changed", 50);
  WriteFileWithMtime(dir / "d.txt", "d", 400);
  auto restarted = NewSource(options, checkpoint.path());
  ASSERT_TRUE(restarted);
  EXPECT_EQ(ReadRows(*restarted, std::nullopt, Files(1)), (Lines{R"({"value":"a"})"}));
  auto parts = restarted->PlanPartitions(Files(1), Files(2));
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(*parts, (Lines{dir / "b.txt"}));
  auto third = Latest(*restarted, Files(2));
  ASSERT_EQ(third, Files(3));
  EXPECT_EQ(ReadRows(*restarted, Files(2), *third), (Lines{R"({"value":"c"})"}));
  auto fourth = Latest(*restarted, third);
  ASSERT_EQ(fourth, Files(4));
  EXPECT_EQ(ReadRows(*restarted, third, *fourth), (Lines{R"({"value":"d"})"}));
  EXPECT_EQ(Latest(*restarted, fourth), fourth);
}

TEST(FileSourceCheckpoint, OffsetBeyondTheLogIsAnError) {
  TempDir dir;
  auto source = NewSource({{"path", dir.path()}});
  ASSERT_TRUE(source);
  auto latest = source->LatestOffset(Files(3), ReadLimit::kDefault);
  ASSERT_FALSE(latest.ok());
  EXPECT_EQ(latest.status().code(), StatusCode::kCorruption);
  auto garbage = source->LatestOffset(std::string("{\"lines\":3}"), ReadLimit::kDefault);
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.status().message().find("expected {\"files\":N}"), std::string::npos);
}

TEST(FileSourceCheckpoint, CorruptLogIsRefusedAtCreation) {
  TempDir dir, checkpoint;
  WriteFile(checkpoint / "admitted-files.log", "v1\nnot json\n");
  auto source = MakeSource("file", {{"path", dir.path()}}, checkpoint.path());
  ASSERT_FALSE(source.ok());
  EXPECT_NE(source.status().message().find("is corrupt at line 2"), std::string::npos)
      << source.status().ToString();
}

TEST(FileSourceOptions, InconsistentOptionsAreRejected) {
  TempDir dir;
  auto expect_error = [&](std::map<std::string, OptionValue> options, const std::string& message) {
    options["path"] = dir.path();
    auto source = MakeSource("file", options);
    ASSERT_FALSE(source.ok());
    EXPECT_NE(source.status().message().find(message), std::string::npos) << source.status().ToString();
  };
  expect_error({{"format", std::string("csv")}}, "schema: required for format 'csv'");
  expect_error({{"format", std::string("jsonl")}, {"schema", std::string("id BIGNUM")}},
               "schema: schema 'id BIGNUM': unknown type 'BIGNUM'");
  expect_error({{"schema", std::string("id BIGINT")}}, "format 'text' always has the schema 'value STRING'");
  expect_error({{"header", true}}, "header: only applies to format 'csv'");
  expect_error({{"format", std::string("csv")}, {"schema", std::string("a INT")}, {"delimiter", std::string("||")}},
               "delimiter: must be one character");
  expect_error({{"max_files_per_trigger", int64_t{-1}}}, "max_files_per_trigger: must be 0");
  expect_error({{"format", std::string("parquet")}}, "expected one of: text,csv,jsonl");
}

TEST(FileSourceOptions, MissingDirectoryIsReportedWhenListing) {
  TempDir dir;
  auto source = NewSource({{"path", dir / "missing"}});
  ASSERT_TRUE(source);
  auto latest = source->LatestOffset(std::nullopt, ReadLimit::kDefault);
  ASSERT_FALSE(latest.ok());
  EXPECT_EQ(latest.status().code(), StatusCode::kNotFound);
  EXPECT_NE(latest.status().message().find(dir / "missing"), std::string::npos);
}

}  // namespace
}  // namespace sluice
