// Real pipelines through the real `sluice` binary: the bundled pipelines, each
// trigger, bad-record policies, progress events and stopping on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <simdjson.h>

#include "support/test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::ReadLines;
using testing::RunSluice;
using testing::TempDir;
using testing::WriteFile;

// Progress events of a run, parsed.
struct Progress {
  int64_t batch_id;
  int64_t num_input_rows;
  int64_t sink_rows;
  std::string start_offset, end_offset;
  int64_t bad, dropped, dead_lettered;
  std::optional<int64_t> wal_commit_ms, commit_offsets_ms;  // durationMs, checkpointed queries only
};

std::vector<Progress> ReadProgress(const std::string& path) {
  std::vector<Progress> out;
  simdjson::dom::parser parser;
  for (const auto& line : ReadLines(path)) {
    simdjson::dom::element doc = parser.parse(line);
    Progress p;
    p.batch_id = doc["batchId"].get_int64();
    p.num_input_rows = doc["numInputRows"].get_int64();
    p.sink_rows = doc["sink"]["numOutputRows"].get_int64();
    auto src = doc["sources"].at(0);
    p.start_offset = simdjson::minify(src["startOffset"]);
    p.end_offset = simdjson::minify(src["endOffset"]);
    p.bad = src["numBadRecords"].get_int64();
    p.dropped = src["numDroppedRecords"].get_int64();
    p.dead_lettered = src["numDeadLetterRecords"].get_int64();
    for (const char* key : {"id", "runId", "name", "timestamp"}) EXPECT_TRUE(doc[key].is_string()) << key;
    for (const char* key : {"latestOffset", "addBatch", "triggerExecution"})
      EXPECT_TRUE(doc["durationMs"][key].is_int64()) << key;
    // Each part is a separate stretch of the trigger, each rounded down.
    auto durations = doc["durationMs"];
    int64_t parts = durations["latestOffset"].get_int64().value() + durations["addBatch"].get_int64().value();
    for (const char* key : {"walCommit", "commitOffsets"}) {
      int64_t ms = 0;
      if (durations[key].get(ms) != simdjson::SUCCESS) continue;
      parts += ms;
      (std::string(key) == "walCommit" ? p.wal_commit_ms : p.commit_offsets_ms) = ms;
    }
    EXPECT_LE(parts, durations["triggerExecution"].get_int64().value()) << line;
    EXPECT_TRUE(doc["inputRowsPerSecond"].is_number());
    EXPECT_TRUE(doc["processedRowsPerSecond"].is_number());
    EXPECT_TRUE(src["description"].is_string());
    out.push_back(p);
  }
  return out;
}

class PipelineRunTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& rel) { return dir_ / rel; }
  TempDir dir_;
};

TEST_F(PipelineRunTest, WordcountPrintsPerBatchCounts) {
  testing::CopyTree(std::string(SLUICE_TEST_SOURCE_DIR) + "/pipelines", Path("pipelines"));
  auto r = RunSluice({"run", Path("pipelines/wordcount.toml"), "--progress-file", Path("progress.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "-------------------------------------------\n"
            "Batch: 0\n"
            "-------------------------------------------\n"
            "+------+-----+\n"
            "|  word|count|\n"
            "+------+-----+\n"
            "|   the|    6|\n"
            "| river|    2|\n"
            "|  runs|    2|\n"
            "|    to|    2|\n"
            "|   sea|    2|\n"
            "|   and|    1|\n"
            "|   sky|    1|\n"
            "|     a|    1|\n"
            "|sluice|    1|\n"
            "|  gate|    2|\n"
            "| holds|    1|\n"
            "|  back|    1|\n"
            "| until|    1|\n"
            "|    is|    1|\n"
            "|opened|    1|\n"
            "+------+-----+\n"
            "\n"
            "-------------------------------------------\n"
            "Batch: 1\n"
            "-------------------------------------------\n"
            "+------+-----+\n"
            "|  word|count|\n"
            "+------+-----+\n"
            "|   the|    5|\n"
            "|  mill|    2|\n"
            "| turns|    2|\n"
            "|  when|    2|\n"
            "| water|    2|\n"
            "|  runs|    2|\n"
            "|  gate|    1|\n"
            "|    is|    1|\n"
            "|opened|    1|\n"
            "|   and|    1|\n"
            "+------+-----+\n"
            "\n");
  auto progress = ReadProgress(Path("progress.jsonl"));
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0].batch_id, 0);
  EXPECT_EQ(progress[0].num_input_rows, 2);  // two lines in the first file
  EXPECT_EQ(progress[0].start_offset, "null");
  EXPECT_EQ(progress[0].end_offset, "{\"files\":1}");
  EXPECT_EQ(progress[0].sink_rows, 15);
  EXPECT_EQ(progress[1].start_offset, "{\"files\":1}");
  EXPECT_EQ(progress[1].end_offset, "{\"files\":2}");
  EXPECT_EQ(progress[1].sink_rows, 10);
}

TEST_F(PipelineRunTest, JsonEtlFiltersProjectsAndDeadLettersTheMalformedLine) {
  testing::CopyTree(std::string(SLUICE_TEST_SOURCE_DIR) + "/pipelines", Path("pipelines"));
  auto r = RunSluice({"run", Path("pipelines/json-etl.toml"), "--progress-file", Path("progress.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string out = Path("pipelines/out/json-etl/data");
  EXPECT_EQ(ReadFile(out + "/part-00000.jsonl"),
            "{\"id\":2,\"customer\":\"ADA\",\"amount_cents\":1999,\"ts\":\"2024-05-01T12:01:30Z\"}\n"
            "{\"id\":3,\"customer\":\"LIN\",\"amount_cents\":550,\"ts\":\"2024-05-01T12:02:00Z\"}\n");
  EXPECT_EQ(ReadFile(out + "/part-00001.jsonl"),
            "{\"id\":5,\"customer\":\"SAM\",\"amount_cents\":12000,\"ts\":\"2024-05-01T12:05:00Z\"}\n"
            "{\"id\":7,\"customer\":\"KIM\",\"amount_cents\":25,\"ts\":\"2024-05-01T12:06:10Z\"}\n");
  auto dead = ReadLines(Path("pipelines/out/json-etl/dead-letter.jsonl"));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].rfind("{\"source\":\"events\",\"batchId\":1,\"position\":\"0002.jsonl:2\",\"error\":\"", 0), 0u)
      << dead[0];
  EXPECT_NE(dead[0].find("\"raw\":\"{\\\"id\\\": 6, \\\"user\\\": \\\"sam\\\", \\\"action\\\": \\\"purchase\\\", "
                         "\\\"amount\\\": \"}"),
            std::string::npos)
      << dead[0];
  auto progress = ReadProgress(Path("progress.jsonl"));
  ASSERT_EQ(progress.size(), 2u);
  EXPECT_EQ(progress[0].bad, 0);
  EXPECT_EQ(progress[1].num_input_rows, 2);
  EXPECT_EQ(progress[1].bad, 1);
  EXPECT_EQ(progress[1].dead_lettered, 1);
  EXPECT_EQ(progress[1].dropped, 0);
}

// A csv pipeline over three files, one of them with a malformed line.
class TriggerTest : public PipelineRunTest {
 protected:
  void SetUp() override {
    WriteFile(Path("in/1.csv"), "1,a\n2,b\n");
    WriteFile(Path("in/2.csv"), "3,c\nnot-a-number,d\n4,e\n");
    WriteFile(Path("in/3.csv"), "5,f\n");
    // Distinct modification times fix the order files are taken in.
    auto t = fs::last_write_time(Path("in/1.csv"));
    fs::last_write_time(Path("in/2.csv"), t + std::chrono::seconds(1));
    fs::last_write_time(Path("in/3.csv"), t + std::chrono::seconds(2));
  }
  std::string Pipeline(const std::string& trigger, const std::string& on_error) {
    std::string toml = "[pipeline]\ntrigger = " + trigger + "\nthreads = 2\n\n[sources.rows]\ntype = \"file\"\n"
                       "path = \"in\"\nformat = \"csv\"\nschema = \"id BIGINT, name STRING\"\n"
                       "max_files_per_trigger = 1\non_error = \"" + on_error + "\"\n"
                       "dead_letter_path = \"dead.jsonl\"\n\n"
                       "[[steps]]\nname = \"shaped\"\ninput = \"rows\"\n"
                       "with_column = { name = \"tag\", expr = \"concat(upper(name), '-', CAST(id * 10 AS STRING))\" }\n\n"
                       "[sinks.out]\ntype = \"file\"\ninput = \"shaped\"\npath = \"out\"\nformat = \"csv\"\n";
    WriteFile(Path("p.toml"), toml);
    return Path("p.toml");
  }
  std::vector<std::string> OutputFiles() {
    std::vector<std::string> names;
    if (!fs::exists(Path("out"))) return names;
    for (const auto& e : fs::directory_iterator(Path("out")))
      if (e.path().filename().string()[0] != '_') names.push_back(e.path().filename().string());  // not the manifest
    std::sort(names.begin(), names.end());
    return names;
  }
};

TEST_F(TriggerTest, AvailableNowTakesOneFilePerBatchThenStops) {
  auto r = RunSluice({"run", Pipeline("\"available_now\"", "drop"), "--progress-file", Path("progress.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(OutputFiles(), (std::vector<std::string>{"part-00000.csv", "part-00001.csv", "part-00002.csv"}));
  EXPECT_EQ(ReadFile(Path("out/part-00000.csv")), "1,a,A-10\n2,b,B-20\n");
  EXPECT_EQ(ReadFile(Path("out/part-00001.csv")), "3,c,C-30\n4,e,E-40\n");
  EXPECT_EQ(ReadFile(Path("out/part-00002.csv")), "5,f,F-50\n");
  auto progress = ReadProgress(Path("progress.jsonl"));
  ASSERT_EQ(progress.size(), 3u);
  EXPECT_EQ(progress[1].bad, 1);
  EXPECT_EQ(progress[1].dropped, 1);
  EXPECT_EQ(progress[1].num_input_rows, 2);
  EXPECT_FALSE(fs::exists(Path("dead.jsonl")));
}

// Spark's durationMs parts: walCommit (the offset log) and commitOffsets (the
// commit log) only when there is a checkpoint to write them to.
TEST_F(TriggerTest, CheckpointedBatchesReportWalCommitAndCommitOffsets) {
  const std::string pipeline = Pipeline("\"available_now\"", "drop");
  std::string toml = ReadFile(pipeline);
  toml.replace(toml.find("[pipeline]\n"), 11, "[pipeline]\ncheckpoint = \"" + Path("checkpoint") + "\"\n");
  WriteFile(pipeline, toml);
  auto r = RunSluice({"run", pipeline, "--progress-file", Path("progress.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto progress = ReadProgress(Path("progress.jsonl"));
  ASSERT_EQ(progress.size(), 3u);
  for (const auto& p : progress) {
    EXPECT_TRUE(p.wal_commit_ms.has_value()) << p.batch_id;
    EXPECT_TRUE(p.commit_offsets_ms.has_value()) << p.batch_id;
  }

  fs::remove(Path("progress.jsonl"));
  fs::remove_all(Path("out"));
  r = RunSluice({"run", Pipeline("\"available_now\"", "drop"), "--progress-file", Path("progress.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  progress = ReadProgress(Path("progress.jsonl"));
  ASSERT_EQ(progress.size(), 3u);
  for (const auto& p : progress) {
    EXPECT_FALSE(p.wal_commit_ms.has_value()) << p.batch_id;
    EXPECT_FALSE(p.commit_offsets_ms.has_value()) << p.batch_id;
  }
}

TEST_F(TriggerTest, OnceTakesEverythingInOneBatchIgnoringLimits) {
  auto r = RunSluice({"run", Pipeline("\"once\"", "drop"), "--progress-file", Path("progress.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(OutputFiles(), (std::vector<std::string>{"part-00000.csv"}));
  // Files are partitions read in parallel; output keeps their order.
  EXPECT_EQ(ReadFile(Path("out/part-00000.csv")), "1,a,A-10\n2,b,B-20\n3,c,C-30\n4,e,E-40\n5,f,F-50\n");
  EXPECT_EQ(ReadProgress(Path("progress.jsonl")).size(), 1u);
}

TEST_F(TriggerTest, OnErrorFailStopsTheQueryNamingTheRecord) {
  auto r = RunSluice({"run", Pipeline("\"available_now\"", "fail")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("batch 1: source 'rows': source 'rows': malformed record at 2.csv:2: "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("(on_error = \"fail\"; set on_error = \"drop\" or \"dead_letter\" to keep going)"),
            std::string::npos) << r.err;
  // The failed batch wrote nothing.
  EXPECT_EQ(OutputFiles(), (std::vector<std::string>{"part-00000.csv"}));
}

TEST_F(TriggerTest, OnErrorDeadLetterKeepsTheRawRecord) {
  auto r = RunSluice({"run", Pipeline("\"available_now\"", "dead_letter"), "--progress-file", Path("progress.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto dead = ReadLines(Path("dead.jsonl"));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].rfind("{\"source\":\"rows\",\"batchId\":1,\"position\":\"2.csv:2\",\"error\":\"", 0), 0u) << dead[0];
  EXPECT_NE(dead[0].find("\"raw\":\"not-a-number,d\"}"), std::string::npos) << dead[0];
  auto progress = ReadProgress(Path("progress.jsonl"));
  EXPECT_EQ(progress[1].dead_lettered, 1);
}

TEST_F(TriggerTest, DefaultTriggerPicksUpNewFilesUntilSigterm) {
  std::string pipeline = Pipeline("\"default\"", "drop");
  std::string progress = Path("progress.jsonl");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    freopen(Path("stderr.log").c_str(), "w", stderr);
    execl(SLUICE_TEST_SLUICE_BIN, "sluice", "--plugin-dir", SLUICE_TEST_PLUGIN_DIR, "run", pipeline.c_str(),
          "--progress-file", progress.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(testing::WaitUntil([&] { return ReadLines(progress).size() == 3; }));
  WriteFile(Path("in/.4.csv.tmp"), "6,g\n");  // hidden while being written...
  fs::rename(Path("in/.4.csv.tmp"), Path("in/4.csv"));  // ...then moved in whole
  ASSERT_TRUE(testing::WaitUntil([&] { return ReadLines(progress).size() == 4; }));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 143) << ReadFile(Path("stderr.log"));
  EXPECT_EQ(ReadFile(Path("out/part-00003.csv")), "6,g,G-60\n");
  EXPECT_NE(ReadFile(Path("stderr.log")).find("received SIGTERM: stopping after the current batch"), std::string::npos);
}

TEST_F(PipelineRunTest, UnknownColumnAtRuntimeIsImpossibleBecauseSchemasAreChecked) {
  WriteFile(Path("p.toml"), "[sources.in]\ntype = \"rate\"\n[[steps]]\nname = \"s\"\ninput = \"in\"\n"
                            "select = [\"value\", \"timestamp\", \"vaule\"]\n[sinks.o]\ntype = \"console\"\ninput = \"s\"\n");
  auto r = RunSluice({"validate", Path("p.toml")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(Path("p.toml") + ":6:34: error: step 's': unknown column 'vaule'"), std::string::npos) << r.err;
}


TEST_F(PipelineRunTest, WindowedCountsUpdatesWindowsAndDropsTheLateReading) {
  testing::CopyTree(std::string(SLUICE_TEST_SOURCE_DIR) + "/pipelines", Path("pipelines"));
  auto r = RunSluice({"run", Path("pipelines/windowed-counts.toml"), "--progress-file", Path("progress.jsonl")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "-------------------------------------------\n"
            "Batch: 0\n"
            "-------------------------------------------\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "|       window_start|         window_end|device|readings|avg_temp|max_temp|\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "|2024-05-01 12:00:00|2024-05-01 12:10:00|pump-1|       2|   62.25|    63.0|\n"
            "|2024-05-01 11:55:00|2024-05-01 12:05:00|pump-1|       1|    61.5|    61.5|\n"
            "|2024-05-01 12:00:00|2024-05-01 12:10:00|pump-2|       1|    58.0|    58.0|\n"
            "|2024-05-01 12:05:00|2024-05-01 12:15:00|pump-1|       1|    63.0|    63.0|\n"
            "|2024-05-01 11:55:00|2024-05-01 12:05:00|pump-2|       1|    58.0|    58.0|\n"
            "|2024-05-01 12:05:00|2024-05-01 12:15:00| fan-7|       1|   40.25|   40.25|\n"
            "|2024-05-01 12:00:00|2024-05-01 12:10:00| fan-7|       1|   40.25|   40.25|\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "\n"
            "-------------------------------------------\n"
            "Batch: 1\n"
            "-------------------------------------------\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "|       window_start|         window_end|device|readings|avg_temp|max_temp|\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "|2024-05-01 12:10:00|2024-05-01 12:20:00|pump-1|       1|    64.5|    64.5|\n"
            "|2024-05-01 12:05:00|2024-05-01 12:15:00|pump-1|       2|   63.75|    64.5|\n"
            "|2024-05-01 12:00:00|2024-05-01 12:10:00|pump-2|       2|    58.5|    59.0|\n"
            "|2024-05-01 11:55:00|2024-05-01 12:05:00|pump-2|       2|    58.5|    59.0|\n"
            "|2024-05-01 12:15:00|2024-05-01 12:25:00| fan-7|       1|    41.0|    41.0|\n"
            "|2024-05-01 12:10:00|2024-05-01 12:20:00| fan-7|       1|    41.0|    41.0|\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "\n"
            "-------------------------------------------\n"
            "Batch: 2\n"
            "-------------------------------------------\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "|       window_start|         window_end|device|readings|avg_temp|max_temp|\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "|2024-05-01 12:25:00|2024-05-01 12:35:00|pump-1|       1|    65.0|    65.0|\n"
            "|2024-05-01 12:20:00|2024-05-01 12:30:00|pump-1|       1|    65.0|    65.0|\n"
            "|2024-05-01 12:20:00|2024-05-01 12:30:00|pump-2|       1|    60.5|    60.5|\n"
            "|2024-05-01 12:15:00|2024-05-01 12:25:00|pump-2|       1|    60.5|    60.5|\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "\n"
            "-------------------------------------------\n"
            "Batch: 3\n"
            "-------------------------------------------\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "|       window_start|         window_end|device|readings|avg_temp|max_temp|\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "|2024-05-01 12:30:00|2024-05-01 12:40:00|pump-2|       1|    61.0|    61.0|\n"
            "|2024-05-01 12:25:00|2024-05-01 12:35:00|pump-2|       1|    61.0|    61.0|\n"
            "+-------------------+-------------------+------+--------+--------+--------+\n"
            "\n"
            "-------------------------------------------\n"
            "Batch: 4\n"
            "-------------------------------------------\n"
            "+------------+----------+------+--------+--------+--------+\n"
            "|window_start|window_end|device|readings|avg_temp|max_temp|\n"
            "+------------+----------+------+--------+--------+--------+\n"
            "+------------+----------+------+--------+--------+--------+\n"
            "\n");
  simdjson::dom::parser parser;
  auto lines = ReadLines(Path("progress.jsonl"));
  ASSERT_EQ(lines.size(), 5u);
  simdjson::dom::element last = parser.parse(lines[4]);
  EXPECT_EQ(int64_t(last["stateOperators"].at(0)["numRowsDroppedByWatermark"]), 2);
  EXPECT_EQ(std::string_view(last["eventTime"]["watermark"]), "2024-05-01T12:21:00.000Z");
}

}  // namespace
}  // namespace sluice
