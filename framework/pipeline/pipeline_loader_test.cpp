#include <gtest/gtest.h>

#include <algorithm>

#include "pipeline/pipeline_spec.h"

namespace sluice {
namespace {

PipelineSpec Load(const std::string& toml, std::vector<Diagnostic>* d) {
  return LoadPipelineString(toml, "/pipes/p.toml", d);
}

TEST(PipelineLoader, ReadsSettingsSourcesStepsAndSinks) {
  std::vector<Diagnostic> d;
  auto spec = Load(R"toml([pipeline]
name = "demo"
trigger = { processing_time = "2 seconds" }
checkpoint = "state/demo"
output_mode = "update"
threads = 3

[sources.in]
type = "file"
path = "data"
max_files_per_trigger = 2
on_error = "dead_letter"
dead_letter_path = "/var/dl.jsonl"

[[steps]]
name = "w"
input = "in"
with_column = { name = "n", expr = "length(value)" }

[[steps]]
name = "agg"
input = "w"
group_by = ["n"]
aggregate = ["count(*) AS c"]

[sinks.out]
type = "console"
input = "agg"
num_rows = 5
)toml", &d);
  ASSERT_TRUE(d.empty()) << d[0].ToString();
  EXPECT_EQ(spec.name, "demo");
  EXPECT_EQ(spec.trigger.kind, TriggerKind::kProcessingTime);
  EXPECT_EQ(spec.trigger.interval_micros, 2000000);
  EXPECT_EQ(spec.checkpoint, "/pipes/state/demo");
  EXPECT_EQ(spec.output_mode, OutputMode::kUpdate);
  EXPECT_EQ(spec.threads, 3);
  ASSERT_EQ(spec.sources.size(), 1u);
  EXPECT_EQ(spec.sources[0].type, "file");
  EXPECT_EQ(spec.sources[0].on_error, OnError::kDeadLetter);
  EXPECT_EQ(spec.sources[0].dead_letter_path, "/var/dl.jsonl");
  EXPECT_EQ(std::get<std::string>(spec.sources[0].options.at("path").value), "data");
  EXPECT_EQ(std::get<int64_t>(spec.sources[0].options.at("max_files_per_trigger").value), 2);
  EXPECT_EQ(spec.sources[0].options.count("on_error"), 0u);  // engine options are not plugin options
  ASSERT_EQ(spec.steps.size(), 2u);
  EXPECT_EQ(spec.steps[0].kind, StepKind::kWithColumn);
  EXPECT_EQ(spec.steps[0].column_name, "n");
  EXPECT_EQ(spec.steps[0].items[0].text, "length(value)");
  EXPECT_EQ(spec.steps[1].kind, StepKind::kAggregate);
  EXPECT_EQ(spec.steps[1].aggregates[0].text, "count(*) AS c");
  ASSERT_EQ(spec.sinks.size(), 1u);
  EXPECT_EQ(spec.sinks[0].input, "agg");
  EXPECT_EQ(std::get<int64_t>(spec.sinks[0].options.at("num_rows").value), 5);
}

TEST(PipelineLoader, ExpressionPositionsPointInsideTheString) {
  std::vector<Diagnostic> d;
  auto spec = Load("[sources.in]\ntype = \"memory\"\n[[steps]]\nname = \"s\"\ninput = \"in\"\nselect = [\"a\", '''b + c''']\n"
                   "[sinks.o]\ntype = \"memory\"\ninput = \"s\"\n",
                   &d);
  ASSERT_TRUE(d.empty());
  const auto& items = spec.steps[0].items;
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].At(0).line, 6);
  EXPECT_EQ(items[0].At(0).column, 12);
  EXPECT_EQ(items[1].quote_length, 3);
  EXPECT_EQ(items[1].At(4).column, 23);  // the 'c'
}

TEST(PipelineLoader, EscapedStringsAreNotLocatedInside) {
  std::vector<Diagnostic> d;
  auto spec = Load("[sources.in]\ntype = \"memory\"\n[[steps]]\nname = \"s\"\ninput = \"in\"\nwhere = \"a = \\\"x\\\"\"\n"
                   "[sinks.o]\ntype = \"memory\"\ninput = \"s\"\n",
                   &d);
  ASSERT_TRUE(d.empty());
  EXPECT_FALSE(spec.steps[0].items[0].locatable);
  EXPECT_EQ(spec.steps[0].items[0].At(3).column, 9);  // the string's start
}

TEST(PipelineLoader, UnknownKeysAndDuplicateNamesAreReported) {
  std::vector<Diagnostic> d;
  Load(R"toml([pipeline]
trigerr = "once"
[sources.in]
type = "memory"
[[steps]]
name = "in"
input = "in"
where = "true"
[[steps]]
name = "x"
input = "in"
select = ["a"]
colour = "red"
[sinks.o]
type = "memory"
input = "x"
[extra]
)toml", &d);
  std::vector<std::string> got;
  for (const auto& x : d) got.push_back(x.ToString());
  ASSERT_EQ(got.size(), 4u) << ::testing::PrintToString(got);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got[0], "/pipes/p.toml:13:1: error: unknown key 'colour' in [[steps]]; expected name, input and one of "
                    "select, where, with_column, group_by (with aggregate), with_watermark, drop_duplicates");
  EXPECT_EQ(got[1], "/pipes/p.toml:17:2: error: unknown top-level key 'extra'; expected [pipeline], [sources.<name>], "
                    "[[steps]], [sinks.<name>] or [state]");
  EXPECT_EQ(got[2], "/pipes/p.toml:2:1: error: unknown key 'trigerr' in [pipeline]; expected name, trigger, checkpoint, "
                    "output_mode, threads, progress_file, idle_poll_interval, min_batches_to_retain, shuffle_partitions or "
                    "watermark_policy");
  EXPECT_EQ(got[3], "/pipes/p.toml:5:1: error: step name 'in' is already used at line 3");
}

TEST(PipelineLoader, MissingSourcesAndSinksAreReported) {
  std::vector<Diagnostic> d;
  Load("[pipeline]\nname = \"empty\"\n", &d);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].message, "the pipeline has no source; add a [sources.<name>] table with a 'type'");
  EXPECT_EQ(d[1].message, "the pipeline has no sink; add a [sinks.<name>] table with a 'type' and an 'input'");
}

}  // namespace
}  // namespace sluice
