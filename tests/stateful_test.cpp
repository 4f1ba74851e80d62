// Stateful streaming against Spark's rules: the programming guide's scenario
// of 10-minute windows sliding every 5 minutes with a 10-minute watermark,
// checked batch by batch in every output mode, plus deduplication, a seeded
// randomized comparison with a plain batch computation, and validation.
// Each batch is one `trigger = "once"` run over a checkpoint, so batches
// happen exactly when the test says (no no-data batches in between).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>

#include "exec/micro_batch_executor.h"
#include "support/test_support.h"

namespace sluice {
namespace {

using testing::BuildPlugins;
using testing::MakeBatch;
using testing::TempDir;
using testing::ToJsonLines;
using Lines = std::vector<std::string>;

using PushFn = void(const std::string&, RecordBatchPtr);
using RowsFn = std::vector<RecordBatchPtr>(const std::string&);

Lines Sorted(Lines v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The state store configurations every stateful test runs with: each
// provider, and RocksDB with asynchronous checkpointing.
const std::vector<std::string> kStateProviders = {"memory", "rocksdb", "rocksdb_async", "lmdb"};

std::string StateTable(const std::string& provider) {
  if (provider == "rocksdb_async") return "[state]\nprovider = \"rocksdb\"\nasync_checkpoint = true\n\n";
  return "[state]\nprovider = \"" + provider + "\"\n\n";
}

class StatefulTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string Name(const std::string& base) const { return base + "-" + GetParam(); }
};

class WindowedCounts {
 public:
  WindowedCounts(const std::string& name, const std::string& mode, const std::string& provider = "memory")
      : stream_(name + "-in"), table_(name + "-out") {
    toml_ = StateTable(provider) + "[pipeline]\ntrigger = \"once\"\ncheckpoint = \"" + checkpoint_.path() +
            "\"\noutput_mode = \"" + mode + "\"\nshuffle_partitions = 3\n\n[sources.words]\ntype = \"memory\"\nschema = \"ts TIMESTAMP, word STRING\"\n"
            "stream = \"" + stream_ + "\"\nwith_watermark = { column = \"ts\", delay = \"10 minutes\" }\n\n" +
            "[[steps]]\nname = \"counts\"\ninput = \"words\"\n"
            "group_by = [\"window(ts, '10 minutes', '5 minutes')\", \"word\"]\naggregate = [\"count(*) AS count\"]\n\n"
            "[sinks.out]\ntype = \"memory\"\ninput = \"counts\"\nquery_name = \"" + table_ + "\"\n";
  }

  // Pushes rows ("12:07 dog") and runs one batch; returns the rows the sink
  // received in it, sorted, and keeps the batch's progress event.
  Lines Batch(const std::vector<std::string>& events) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : events) rows.push_back({"2024-05-01 " + e.substr(0, 5) + ":00", e.substr(6)});
    auto* push = BuildPlugins().FindAlias<PushFn>(PluginKind::kSource, "memory", "sluice_memory_source_push");
    push(stream_, MakeBatch("ts TIMESTAMP, word STRING", rows));
    std::vector<Diagnostic> diags;
    auto q = BuildQuery(LoadPipelineString(toml_, "/virtual/windowed.toml", &diags), BuildPlugins(), {}, &diags);
    for (const auto& d : diags) ADD_FAILURE() << d.ToString();
    if (!q) return {};
    auto* rows_of = BuildPlugins().FindAlias<RowsFn>(PluginKind::kSink, "memory", "sluice_memory_sink_rows");
    size_t before = ToJsonLines(rows_of(table_)).size();
    ExecutorOptions opts;
    opts.on_progress = [&](const ProgressEvent& e) { last_ = e; };
    MicroBatchExecutor exec(*q, opts);
    Status st = exec.Run();
    EXPECT_TRUE(st.ok()) << st.ToString();
    Lines all = ToJsonLines(rows_of(table_));
    if (mode_is_complete()) return Sorted(all);
    return Sorted(Lines(all.begin() + static_cast<long>(before), all.end()));
  }

  const ProgressEvent& last() const { return last_; }

 private:
  bool mode_is_complete() const { return toml_.find("output_mode = \"complete\"") != std::string::npos; }
  TempDir checkpoint_;
  std::string stream_, table_, toml_;
  ProgressEvent last_;
};

std::string Row(const std::string& start, const std::string& end, const std::string& word, int count) {
  return "{\"window_start\":\"2024-05-01T" + start + ":00Z\",\"window_end\":\"2024-05-01T" + end + ":00Z\",\"word\":\"" +
         word + "\",\"count\":" + std::to_string(count) + "}";
}

const std::vector<std::vector<std::string>> kGuideBatches = {
    {"12:07 dog", "12:08 owl"},
    {"12:14 dog", "12:09 cat"},
    {"12:15 cat", "12:08 dog", "12:13 owl", "12:21 owl"},
    {"12:04 donkey", "12:17 owl"},
    {"12:00 dog"},  // too late: both its windows end at or before the watermark 12:11
};

TEST_P(StatefulTest, UpdateModeEmitsChangedWindowsAndEvictsWithTheWatermark) {
  WindowedCounts q(Name("guide-update"), "update", GetParam());
  EXPECT_EQ(q.Batch(kGuideBatches[0]), Sorted({Row("12:00", "12:10", "dog", 1), Row("12:05", "12:15", "dog", 1),
                                               Row("12:00", "12:10", "owl", 1), Row("12:05", "12:15", "owl", 1)}));
  EXPECT_EQ(q.last().watermark, "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(q.Batch(kGuideBatches[1]), Sorted({Row("12:10", "12:20", "dog", 1), Row("12:05", "12:15", "dog", 2),
                                               Row("12:05", "12:15", "cat", 1), Row("12:00", "12:10", "cat", 1)}));
  EXPECT_EQ(q.last().watermark, "2024-05-01T11:58:00.000Z");
  // 12:08 dog is late for the clock but not for the watermark: accepted.
  EXPECT_EQ(q.Batch(kGuideBatches[2]),
            Sorted({Row("12:15", "12:25", "cat", 1), Row("12:10", "12:20", "cat", 1), Row("12:05", "12:15", "dog", 3),
                    Row("12:00", "12:10", "dog", 2), Row("12:10", "12:20", "owl", 1), Row("12:05", "12:15", "owl", 2),
                    Row("12:20", "12:30", "owl", 1), Row("12:15", "12:25", "owl", 1)}));
  ASSERT_EQ(q.last().state_operators.size(), 1u);
  EXPECT_EQ(q.last().state_operators[0].num_rows_total, 12);
  EXPECT_EQ(q.last().watermark, "2024-05-01T12:04:00.000Z");
  // Rows older than L = 12:04 would be dropped; 12:04 donkey's windows end later.
  // Then E = 12:11 evicts every window ending at or before it.
  EXPECT_EQ(q.Batch(kGuideBatches[3]), Sorted({Row("12:00", "12:10", "donkey", 1), Row("11:55", "12:05", "donkey", 1),
                                               Row("12:15", "12:25", "owl", 2), Row("12:10", "12:20", "owl", 2)}));
  const auto& op = q.last().state_operators[0];
  EXPECT_EQ(op.operator_name, "stateStoreSave");
  EXPECT_EQ(op.num_rows_updated, 4);
  EXPECT_EQ(op.num_rows_removed, 5);
  EXPECT_EQ(op.num_rows_total, 9);
  EXPECT_EQ(op.num_shuffle_partitions, 3);
  EXPECT_EQ(q.last().watermark, "2024-05-01T12:11:00.000Z");
  EXPECT_EQ(q.last().event_time_max, "2024-05-01T12:17:00.000Z");
  EXPECT_EQ(q.last().event_time_min, "2024-05-01T12:04:00.000Z");
  // Too late: both windows of 12:00 end at or before L = 12:11.
  EXPECT_EQ(q.Batch(kGuideBatches[4]), Lines{});
  EXPECT_EQ(q.last().state_operators[0].num_rows_dropped_by_watermark, 2);
  EXPECT_EQ(q.last().state_operators[0].num_rows_total, 9);
}

TEST_P(StatefulTest, AppendModeEmitsAWindowOnceWhenTheWatermarkPassesIt) {
  WindowedCounts q(Name("guide-append"), "append", GetParam());
  EXPECT_EQ(q.Batch(kGuideBatches[0]), Lines{});
  EXPECT_EQ(q.Batch(kGuideBatches[1]), Lines{});
  EXPECT_EQ(q.Batch(kGuideBatches[2]), Lines{});
  EXPECT_EQ(q.Batch(kGuideBatches[3]), Sorted({Row("12:00", "12:10", "dog", 2), Row("12:00", "12:10", "owl", 1),
                                               Row("12:00", "12:10", "cat", 1), Row("12:00", "12:10", "donkey", 1),
                                               Row("11:55", "12:05", "donkey", 1)}));
  EXPECT_EQ(q.Batch(kGuideBatches[4]), Lines{});
  EXPECT_EQ(q.last().state_operators[0].num_rows_dropped_by_watermark, 2);
}

TEST_P(StatefulTest, CompleteModeEmitsTheWholeTableAndNeverDrops) {
  WindowedCounts q(Name("guide-complete"), "complete", GetParam());
  EXPECT_EQ(q.Batch(kGuideBatches[0]), Sorted({Row("12:00", "12:10", "dog", 1), Row("12:05", "12:15", "dog", 1),
                                               Row("12:00", "12:10", "owl", 1), Row("12:05", "12:15", "owl", 1)}));
  for (size_t b = 1; b < 4; ++b) q.Batch(kGuideBatches[b]);
  EXPECT_EQ(q.Batch(kGuideBatches[4]),
            Sorted({Row("12:00", "12:10", "dog", 3), Row("12:05", "12:15", "dog", 3), Row("12:10", "12:20", "dog", 1),
                    Row("11:55", "12:05", "dog", 1), Row("12:00", "12:10", "owl", 1), Row("12:05", "12:15", "owl", 2),
                    Row("12:10", "12:20", "owl", 2), Row("12:15", "12:25", "owl", 2), Row("12:20", "12:30", "owl", 1),
                    Row("12:00", "12:10", "cat", 1), Row("12:05", "12:15", "cat", 1), Row("12:10", "12:20", "cat", 1),
                    Row("12:15", "12:25", "cat", 1), Row("12:00", "12:10", "donkey", 1),
                    Row("11:55", "12:05", "donkey", 1)}));
  EXPECT_EQ(q.last().state_operators[0].num_rows_dropped_by_watermark, 0);
  EXPECT_EQ(q.last().state_operators[0].num_rows_removed, 0);
}

// Shuffled, late and duplicated events over many batches: the final complete
// result equals a plain computation over all of them.
TEST_P(StatefulTest, RandomizedStreamMatchesABatchComputation) {
  const unsigned seed = 4711;
  std::mt19937 rng(seed);
  WindowedCounts q(Name("random-complete"), "complete", GetParam());
  std::vector<std::pair<int, std::string>> events;  // minute offset, word
  const std::vector<std::string> words = {"ant", "bee", "cat", "dog", "eel"};
  for (int i = 0; i < 400; ++i) {
    int minute = static_cast<int>(rng() % 180);
    std::string w = words[rng() % words.size()];
    events.push_back({minute, w});
    if (rng() % 5 == 0) events.push_back({minute, w});  // a duplicate delivery
  }
  std::shuffle(events.begin(), events.end(), rng);
  std::map<std::tuple<int, int, std::string>, int> expected;  // window start minute, end, word
  for (const auto& [m, w] : events) {
    int last_start = m - m % 5;
    for (int s : {last_start, last_start - 5}) ++expected[{s, s + 10, w}];
  }
  auto hhmm = [](int minute) {
    int total = 12 * 60 + minute;
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02d:%02d", (total / 60) % 24, total % 60);
    return std::string(buf);
  };
  Lines last;
  for (size_t i = 0; i < events.size();) {
    size_t n = 1 + rng() % 40;
    std::vector<std::string> chunk;
    for (; n > 0 && i < events.size(); --n, ++i) chunk.push_back(hhmm(events[i].first) + " " + events[i].second);
    last = q.Batch(chunk);
  }
  Lines want;
  for (const auto& [k, c] : expected) want.push_back(Row(hhmm(std::get<0>(k)), hhmm(std::get<1>(k)), std::get<2>(k), c));
  EXPECT_EQ(last, Sorted(want)) << "seed " << seed;
}

TEST_P(StatefulTest, DeduplicationDropsRepeatsAndEvictsOldKeysWithTheWatermark) {
  TempDir checkpoint;
  const std::string in = Name("dedup-in"), out = Name("dedup-out");
  const std::string toml = StateTable(GetParam()) + "[pipeline]\ntrigger = \"once\"\ncheckpoint = \"" + checkpoint.path() +
                           "\"\n[sources.events]\ntype = \"memory\"\nschema = \"id BIGINT, ts TIMESTAMP\"\n"
                           "stream = \"" + in + "\"\nwith_watermark = { column = \"ts\", delay = \"5 minutes\" }\n"
                           "[[steps]]\nname = \"unique\"\ninput = \"events\"\ndrop_duplicates = [\"id\", \"ts\"]\n"
                           "[sinks.out]\ntype = \"memory\"\ninput = \"unique\"\nquery_name = \"" + out + "\"\n";
  auto* push = BuildPlugins().FindAlias<PushFn>(PluginKind::kSource, "memory", "sluice_memory_source_push");
  auto* rows_of = BuildPlugins().FindAlias<RowsFn>(PluginKind::kSink, "memory", "sluice_memory_sink_rows");
  std::vector<ProgressEvent> events;
  auto run = [&](std::vector<std::vector<std::string>> rows) {
    push(in, MakeBatch("id BIGINT, ts TIMESTAMP", rows));
    std::vector<Diagnostic> diags;
    auto q = BuildQuery(LoadPipelineString(toml, "/virtual/dedup.toml", &diags), BuildPlugins(), {}, &diags);
    ASSERT_NE(q, nullptr) << (diags.empty() ? "" : diags[0].ToString());
    ExecutorOptions opts;
    opts.on_progress = [&](const ProgressEvent& e) { events.push_back(e); };
    MicroBatchExecutor exec(*q, opts);
    ASSERT_TRUE(exec.Run().ok());
  };
  run({{"1", "2024-05-01 12:00:00"}, {"1", "2024-05-01 12:00:00"}, {"2", "2024-05-01 12:10:00"}});
  run({{"1", "2024-05-01 12:00:00"}, {"3", "2024-05-01 12:20:00"}, {"2", "2024-05-01 12:10:00"}});
  // Watermark now 12:15 (from 12:20 - 5 min): 12:00 is too late.
  run({{"1", "2024-05-01 12:00:00"}, {"4", "2024-05-01 12:30:00"}});
  EXPECT_EQ(ToJsonLines(rows_of(out)),
            (Lines{R"({"id":1,"ts":"2024-05-01T12:00:00Z"})", R"({"id":2,"ts":"2024-05-01T12:10:00Z"})",
                   R"({"id":3,"ts":"2024-05-01T12:20:00Z"})", R"({"id":4,"ts":"2024-05-01T12:30:00Z"})"}));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].state_operators[0].operator_name, "dedupe");
  // Batch 1 evicts (1, 12:00) with E = 12:05; batch 2 drops 12:00 as late
  // (L = 12:05) and evicts (2, 12:10) with E = 12:15.
  EXPECT_EQ(events[1].state_operators[0].num_rows_removed, 1);
  EXPECT_EQ(events[1].state_operators[0].num_rows_total, 2);
  EXPECT_EQ(events[2].state_operators[0].num_rows_dropped_by_watermark, 1);
  EXPECT_EQ(events[2].state_operators[0].num_rows_removed, 1);
  EXPECT_EQ(events[2].state_operators[0].num_rows_total, 2);
}

INSTANTIATE_TEST_SUITE_P(Providers, StatefulTest, ::testing::ValuesIn(kStateProviders),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace sluice
