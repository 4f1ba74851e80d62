// `sluice validate` and `sluice run` on broken pipelines: every error named
// with file:line:column and what was expected, exit code 2, and nothing runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "support/test_support.h"

namespace sluice {
namespace {

using testing::RunSluice;
using testing::TempDir;
using testing::WriteFile;

class ValidateTest : public ::testing::Test {
 protected:
  // Writes `toml` as <tmp>/p.toml and validates it.
  testing::CommandResult Validate(const std::string& toml) {
    WriteFile(dir_ / "p.toml", toml);
    return RunSluice({"validate", dir_ / "p.toml"});
  }
  std::string File() { return dir_ / "p.toml"; }
  TempDir dir_;
};

TEST_F(ValidateTest, AGoodPipelineIsOk) {
  auto r = Validate(R"toml([sources.in]
type = "memory"
schema = "a BIGINT"

[[steps]]
name = "double"
input = "in"
select = ["a * 2 AS b"]

[sinks.out]
type = "memory"
input = "double"
)toml");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, File() + ": ok (1 source, 1 step, 1 sink)\n");
}

TEST_F(ValidateTest, TomlSyntaxErrorNamesLineAndColumn) {
  auto r = Validate("[sources.in]\ntype = \"memory\nschema = \"a BIGINT\"\n");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind(File() + ":2:", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("error: invalid TOML: "), std::string::npos) << r.err;
}

TEST_F(ValidateTest, ReportsEveryErrorWithItsPosition) {
  auto r = Validate(R"toml([pipeline]
trigger = "sometimes"

[sources.in]
type = "memory"
schema = "a BIGINT, s STRING"

[sources.extra]
type = "memory"
schema = "x BIGINT"
colour = "blue"

[sources.other]
type = "kafkaa"

[[steps]]
name = "typed"
input = "in"
where = "a + 1"

[[steps]]
name = "cols"
input = "in"
select = ["a", "nope"]

[[steps]]
name = "orphan"
input = "missing"
where = "true"

[sinks.out]
type = "file"
input = "cols"
)toml");
  EXPECT_EQ(r.exit_code, 2);
  std::vector<std::string> lines;
  std::stringstream ss(r.err);
  for (std::string l; std::getline(ss, l);) lines.push_back(l);
  auto has = [&](const std::string& prefix, const std::string& text) {
    for (const auto& l : lines)
      if (l.rfind(File() + prefix, 0) == 0 && l.find(text) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has(":2:11: error: ", "trigger is 'sometimes'; trigger must be \"default\", \"once\", \"available_now\" or { processing_time = \"<duration>\" }")) << r.err;
  EXPECT_TRUE(has(":11:1: error: ", "unknown option 'colour' for source 'memory'; expected one of: schema, stream, rows")) << r.err;
  EXPECT_TRUE(has(":14:8: error: ", "unknown source plugin 'kafkaa'; installed source plugins: file, kafka, memory, rate, socket")) << r.err;
  EXPECT_TRUE(has(":19:10: error: ", "step 'typed': ")) << r.err;
  EXPECT_TRUE(has(":24:17: error: ", "step 'cols': unknown column 'nope'")) << r.err;
  EXPECT_TRUE(has(":28:9: error: ", "step 'orphan' reads from 'missing', which is not a source or step; known: cols, extra, in, other, typed")) << r.err;
  EXPECT_TRUE(has(":31:8: error: ", "missing required option 'path' for sink 'file'")) << r.err;
  EXPECT_EQ(lines.back(), "7 errors") << r.err;
}

TEST_F(ValidateTest, StructuralMistakesAreExplained) {
  auto r = Validate(R"toml([sources.in]
schema = "a BIGINT"

[[steps]]
name = "both"
input = "in"
select = ["a"]
where = "a > 1"

[sinks.out]
type = "memory"
)toml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(File() + ":1:10: error: source 'in' has no 'type' (the source plugin to use, e.g. type = \"file\")"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find(File() + ":4:1: error: step 'both' has more than one of select, where, with_column, group_by, with_watermark, drop_duplicates; split it into several steps"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find(File() + ":10:8: error: sink 'out' has no 'input' (the source or step it writes)"), std::string::npos) << r.err;
}

TEST_F(ValidateTest, CompleteModeWithoutStreamingAggregationIsRefusedWithAReason) {
  auto r = Validate(R"toml([pipeline]
output_mode = "complete"

[sources.in]
type = "memory"
schema = "a BIGINT"

[sinks.out]
type = "memory"
input = "in"
)toml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(File() + ":2:15: error: output_mode = \"complete\" needs a streaming aggregation"), std::string::npos)
      << r.err;
}

TEST_F(ValidateTest, StatefulRulesAreSparksAndSayWhatToChange) {
  auto r = Validate(R"toml([sources.in]
type = "memory"
schema = "ts TIMESTAMP, n BIGINT, word STRING"
with_watermark = { column = "when", delay = "1 minute" }

[[steps]]
name = "counts"
input = "in"
group_by = ["word"]
aggregate = ["count(*) AS c"]

[[steps]]
name = "windows"
input = "in"
group_by = ["window(n, '10 minutes')", "window(ts, '5 minutes', '10 minutes')"]
aggregate = ["count(*)"]

[sinks.out]
type = "memory"
input = "counts"
)toml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(File() + ":4:18: error: source 'in': with_watermark names column 'when', which does not exist; "
                                "available: ts, n, word"),
            std::string::npos)
      << r.err;

  r = Validate(R"toml([pipeline]
output_mode = "complete"
[sources.in]
type = "memory"
schema = "ts TIMESTAMP, n BIGINT"
[[steps]]
name = "windows"
input = "in"
group_by = ["window(n, '10 minutes')"]
aggregate = ["count(*)"]
[sinks.out]
type = "memory"
input = "windows"
)toml");
  EXPECT_NE(r.err.find(File() + ":9:21: error: step 'windows': group_by: window() needs a TIMESTAMP, but 'n' is BIGINT; "
                                "convert it with to_timestamp()"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("complete"), std::string::npos) << "no follow-on error about the mode: " << r.err;

  r = Validate(R"toml([sources.in]
type = "memory"
schema = "ts TIMESTAMP, word STRING"

[[steps]]
name = "counts"
input = "in"
group_by = ["word"]
aggregate = ["count(*) AS c"]

[sinks.out]
type = "memory"
input = "counts"
)toml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(File() + ":1:1: error: output_mode = \"append\" with the aggregation in step 'counts' needs a "
                                "watermark: append emits a group once, when the watermark passes it"),
            std::string::npos)
      << r.err;

  r = Validate(R"toml([pipeline]
output_mode = "update"

[state]
provider = "cassandra"

[sources.in]
type = "memory"
schema = "ts TIMESTAMP, word STRING"

[[steps]]
name = "unique"
input = "in"
drop_duplicates = ["word"]

[[steps]]
name = "counts"
input = "unique"
group_by = ["window(ts, '10 minutes', '20 minutes')", "word"]
aggregate = ["count(*) AS c"]

[[steps]]
name = "counts2"
input = "unique"
group_by = ["word"]
aggregate = ["count(*) AS c"]

[sinks.out]
type = "memory"
input = "counts2"
)toml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(File() + ":19:38: error: step 'counts': group_by: the slide duration must not be greater than "
                                "the window duration"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(File() + ":22:1: error: step 'counts2' is a second stateful step (after 'unique')"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(File() + ":5:12: error: unknown state store provider 'cassandra'; installed: "), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("installed: lmdb, memory, rocksdb (see `sluice plugins`)"), std::string::npos) << r.err;
}

TEST_F(ValidateTest, AsyncProgressTrackingHasSparksRestrictions) {
  auto r = Validate(R"toml([pipeline]
output_mode = "update"
[sources.in]
type = "memory"
schema = "word STRING"
[[steps]]
name = "counts"
input = "in"
group_by = ["word"]
aggregate = ["count(*) AS n"]
[sinks.out]
type = "file"
input = "counts"
path = "out"
asyncProgressTrackingEnabled = true
)toml");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(File() + ":15:1: error: sink 'out': asyncProgressTrackingEnabled works only with the kafka sink "
                                "(as in Spark)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(File() + ":15:1: error: sink 'out': asyncProgressTrackingEnabled cannot be used with the stateful "
                                "step 'counts' (as in Spark)"),
            std::string::npos)
      << r.err;
}

TEST_F(ValidateTest, RunRefusesTheSameErrorsBeforeAnyDataMoves) {
  WriteFile(dir_ / "in/a.txt", "hello\n");
  WriteFile(dir_ / "p.toml", R"toml([pipeline]
checkpoint = "ckpt"

[sources.in]
type = "file"
path = "in"

[[steps]]
name = "bad"
input = "in"
select = ["upper(valu)"]

[sinks.out]
type = "file"
input = "bad"
path = "out"
)toml");
  auto r = RunSluice({"run", dir_ / "p.toml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(File() + ":11:18: error: step 'bad': unknown column"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "out"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "ckpt"));
}

TEST_F(ValidateTest, MissingFileIsAClearError) {
  auto r = RunSluice({"validate", dir_ / "nope.toml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, dir_ / "nope.toml" + ": error: cannot read the pipeline file: No such file or directory\n1 error\n");
}

}  // namespace
}  // namespace sluice
