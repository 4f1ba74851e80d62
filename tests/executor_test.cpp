// The micro-batch executor in-process, with the memory source and sink
// plugins loaded from their shared libraries: incremental batches, a DAG with
// two sinks, per-batch aggregation over parallel partitions, progress events.
#include <gtest/gtest.h>

#include <thread>

#include "exec/micro_batch_executor.h"
#include "support/test_support.h"

namespace sluice {
namespace {

using testing::BuildPlugins;
using testing::MakeBatch;
using testing::ToJsonLines;

using PushFn = void(const std::string&, RecordBatchPtr);
using RowsFn = std::vector<RecordBatchPtr>(const std::string&);
using IdsFn = std::vector<int64_t>(const std::string&);

void Push(const std::string& stream, RecordBatchPtr b) {
  auto* push = BuildPlugins().FindAlias<PushFn>(PluginKind::kSource, "memory", "sluice_memory_source_push");
  ASSERT_NE(push, nullptr);
  push(stream, std::move(b));
}

std::vector<std::string> SinkRows(const std::string& name) {
  auto* rows = BuildPlugins().FindAlias<RowsFn>(PluginKind::kSink, "memory", "sluice_memory_sink_rows");
  return ToJsonLines(rows(name));
}

std::vector<int64_t> SinkBatchIds(const std::string& name) {
  auto* ids = BuildPlugins().FindAlias<IdsFn>(PluginKind::kSink, "memory", "sluice_memory_sink_batch_ids");
  return ids(name);
}

std::unique_ptr<Query> Build(const std::string& toml) {
  std::vector<Diagnostic> diags;
  PipelineSpec spec = LoadPipelineString(toml, "/virtual/test.toml", &diags);
  auto q = BuildQuery(spec, BuildPlugins(), {}, &diags);
  for (const auto& d : diags) ADD_FAILURE() << d.ToString();
  return q;
}

TEST(MicroBatchExecutor, DagFeedsTwoSinksFromOneSourceInEveryBatch) {
  Push("dag-in", MakeBatch("user STRING, amount BIGINT", {{"ada", "5"}, {"lin", "-2"}, {"ada", "7"}}));
  Push("dag-in", MakeBatch("user STRING, amount BIGINT", {{"sam", "1"}, {"null", "3"}}));
  auto q = Build(R"toml(
[pipeline]
trigger = "available_now"
threads = 2
[sources.in]
type = "memory"
schema = "user STRING, amount BIGINT"
stream = "dag-in"
[[steps]]
name = "positive"
input = "in"
where = "amount > 0"
[[steps]]
name = "labelled"
input = "positive"
select = ["coalesce(user, 'anonymous') AS who", "amount * 10 AS points"]
[[steps]]
name = "totals"
input = "positive"
group_by = ["user"]
aggregate = ["count(*) AS n", "sum(amount) AS total", "max(amount)", "avg(amount) AS mean"]
scope = "batch"
[sinks.rows]
type = "memory"
input = "labelled"
query_name = "dag-rows"
[sinks.totals]
type = "memory"
input = "totals"
query_name = "dag-totals"
)toml");
  ASSERT_NE(q, nullptr);
  std::vector<ProgressEvent> events;
  ExecutorOptions opts;
  opts.on_progress = [&](const ProgressEvent& e) { events.push_back(e); };
  MicroBatchExecutor exec(*q, opts);
  ASSERT_TRUE(exec.Run().ok());
  // The memory source offers both pushed batches at once: one micro-batch.
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].num_input_rows, 5);
  EXPECT_EQ(events[0].sources[0].end_offset, "{\"batches\":2}");
  ASSERT_EQ(events[0].sinks.size(), 2u);
  EXPECT_EQ(events[0].sinks[0].num_output_rows, 4);
  EXPECT_EQ(events[0].sinks[1].num_output_rows, 3);
  EXPECT_EQ(SinkRows("dag-rows"),
            (std::vector<std::string>{R"j({"who":"ada","points":50})j", R"j({"who":"ada","points":70})j",
                                      R"j({"who":"sam","points":10})j", R"({"who":"anonymous","points":30})"}));
  EXPECT_EQ(SinkRows("dag-totals"),
            (std::vector<std::string>{R"j({"user":"ada","n":2,"total":12,"max(amount)":7,"mean":6.0})j",
                                      R"j({"user":"sam","n":1,"total":1,"max(amount)":1,"mean":1.0})j",
                                      R"j({"user":null,"n":1,"total":3,"max(amount)":3,"mean":3.0})j"}));
}

// where/select steps straight after a source run on the reading threads when
// there are at least as many read tasks as workers, and after the read
// otherwise; both must give the same rows, in the same order, and count every
// source row even though the fused path drops the source's batches early.
TEST(MicroBatchExecutor, StepsFusedIntoTheReadGiveTheSameRowsAsStepsAfterIt) {
  for (int threads : {2, 8}) {  // four pushed batches: four read tasks
    SCOPED_TRACE("threads = " + std::to_string(threads));
    const std::string stream = "fusion-in-" + std::to_string(threads);
    Push(stream, MakeBatch("id BIGINT, user STRING", {{"1", "ada"}, {"2", "lin"}, {"3", "null"}}));
    Push(stream, MakeBatch("id BIGINT, user STRING", {{"4", "sam"}}));
    Push(stream, MakeBatch("id BIGINT, user STRING", {{"5", "ada"}, {"6", "kim"}}));
    Push(stream, MakeBatch("id BIGINT, user STRING", {{"7", "lin"}, {"8", "ada"}, {"9", "ada"}}));
    const std::string suffix = "-" + std::to_string(threads);
    auto q = Build(R"toml(
[pipeline]
trigger = "available_now"
threads = )toml" + std::to_string(threads) + R"toml(
[sources.in]
type = "memory"
schema = "id BIGINT, user STRING"
stream = ")toml" + stream + R"toml("
[[steps]]
name = "odd"
input = "in"
where = "id % 2 = 1"
[[steps]]
name = "named"
input = "odd"
select = ["id", "coalesce(upper(user), '?') AS who"]
[[steps]]
name = "adas"
input = "named"
where = "who = 'ADA'"
[[steps]]
name = "per_user"
input = "odd"
group_by = ["user"]
aggregate = ["count(*) AS n"]
scope = "batch"
[sinks.named]
type = "memory"
input = "named"
query_name = "fusion-named)toml" + suffix + R"toml("
[sinks.adas]
type = "memory"
input = "adas"
query_name = "fusion-adas)toml" + suffix + R"toml("
[sinks.per_user]
type = "memory"
input = "per_user"
query_name = "fusion-per-user)toml" + suffix + R"toml("
)toml");
    ASSERT_NE(q, nullptr);
    std::vector<ProgressEvent> events;
    ExecutorOptions opts;
    opts.on_progress = [&](const ProgressEvent& e) { events.push_back(e); };
    MicroBatchExecutor exec(*q, opts);
    ASSERT_TRUE(exec.Run().ok());
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].num_input_rows, 9);
    EXPECT_EQ(SinkRows("fusion-named" + suffix),
              (std::vector<std::string>{R"({"id":1,"who":"ADA"})", R"({"id":3,"who":"?"})", R"({"id":5,"who":"ADA"})",
                                        R"({"id":7,"who":"LIN"})", R"({"id":9,"who":"ADA"})"}));
    EXPECT_EQ(SinkRows("fusion-adas" + suffix),
              (std::vector<std::string>{R"({"id":1,"who":"ADA"})", R"({"id":5,"who":"ADA"})",
                                        R"({"id":9,"who":"ADA"})"}));
    EXPECT_EQ(SinkRows("fusion-per-user" + suffix),
              (std::vector<std::string>{R"({"user":"ada","n":3})", R"({"user":null,"n":1})",
                                        R"({"user":"lin","n":1})"}));
  }
}

TEST(MicroBatchExecutor, EachTriggerProcessesOnlyTheNewRange) {
  auto q = Build(R"toml(
[pipeline]
trigger = "default"
idle_poll_interval = "5 ms"
[sources.in]
type = "memory"
schema = "x BIGINT"
stream = "incremental-in"
[[steps]]
name = "sq"
input = "in"
select = ["x", "x * x AS sq"]
[sinks.out]
type = "memory"
input = "sq"
query_name = "incremental-out"
)toml");
  ASSERT_NE(q, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<ProgressEvent> events;
  ExecutorOptions opts;
  opts.on_progress = [&](const ProgressEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    cv.notify_all();
  };
  MicroBatchExecutor exec(*q, opts);
  Status result;
  std::thread runner([&] { result = exec.Run(); });
  auto wait_for_batches = [&](size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(30), [&] { return events.size() >= n; });
  };
  Push("incremental-in", MakeBatch("x BIGINT", {{"1"}, {"2"}}));
  ASSERT_TRUE(wait_for_batches(1));
  Push("incremental-in", MakeBatch("x BIGINT", {{"3"}}));
  ASSERT_TRUE(wait_for_batches(2));
  exec.RequestStop();
  runner.join();
  ASSERT_TRUE(result.ok()) << result.ToString();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].batch_id, 0);
  EXPECT_EQ(events[0].num_input_rows, 2);
  EXPECT_FALSE(events[0].sources[0].start_offset.has_value());
  EXPECT_EQ(events[1].batch_id, 1);
  EXPECT_EQ(events[1].num_input_rows, 1);
  EXPECT_EQ(events[1].sources[0].start_offset, "{\"batches\":1}");
  EXPECT_EQ(events[1].sources[0].end_offset, "{\"batches\":2}");
  EXPECT_EQ(SinkBatchIds("incremental-out"), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(SinkRows("incremental-out"),
            (std::vector<std::string>{R"j({"x":1,"sq":1})j", R"j({"x":2,"sq":4})j", R"({"x":3,"sq":9})"}));
}

TEST(MicroBatchExecutor, PerBatchAggregationMergesPartitionsInOrder) {
  // Many pushed batches become many partitions, aggregated on several threads.
  for (int b = 0; b < 40; ++b) {
    std::vector<std::vector<std::string>> rows;
    for (int r = 0; r < 50; ++r) rows.push_back({"k" + std::to_string((b * 50 + r) % 7), std::to_string(r)});
    Push("agg-in", MakeBatch("k STRING, v BIGINT", rows));
  }
  auto q = Build(R"toml(
[pipeline]
trigger = "once"
threads = 4
[sources.in]
type = "memory"
schema = "k STRING, v BIGINT"
stream = "agg-in"
[[steps]]
name = "agg"
input = "in"
group_by = ["k"]
aggregate = ["count(*) AS n", "sum(v) AS total", "min(v) AS lo", "max(v) AS hi"]
scope = "batch"
[sinks.out]
type = "memory"
input = "agg"
query_name = "agg-out"
)toml");
  ASSERT_NE(q, nullptr);
  MicroBatchExecutor exec(*q);
  ASSERT_TRUE(exec.Run().ok());
  // Expected values computed directly from the same data.
  std::vector<std::string> expected;
  for (int k = 0; k < 7; ++k) {
    int64_t n = 0, total = 0, lo = 1 << 30, hi = -1;
    for (int i = 0; i < 2000; ++i)
      if (i % 7 == k) {
        int64_t v = i % 50;
        ++n;
        total += v;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    expected.push_back("{\"k\":\"k" + std::to_string(k) + "\",\"n\":" + std::to_string(n) + ",\"total\":" +
                       std::to_string(total) + ",\"lo\":" + std::to_string(lo) + ",\"hi\":" + std::to_string(hi) + "}");
  }
  EXPECT_EQ(SinkRows("agg-out"), expected);
}

TEST(MicroBatchExecutor, GlobalAggregateOverAnEmptyFilterStillHasOneRow) {
  Push("global-in", MakeBatch("v BIGINT", {{"1"}, {"2"}}));
  auto q = Build(R"toml(
[pipeline]
trigger = "once"
[sources.in]
type = "memory"
schema = "v BIGINT"
stream = "global-in"
[[steps]]
name = "none"
input = "in"
where = "v > 100"
[[steps]]
name = "agg"
input = "none"
group_by = []
aggregate = ["count(*) AS n", "sum(v) AS total"]
scope = "batch"
[sinks.out]
type = "memory"
input = "agg"
query_name = "global-out"
)toml");
  ASSERT_NE(q, nullptr);
  MicroBatchExecutor exec(*q);
  ASSERT_TRUE(exec.Run().ok());
  EXPECT_EQ(SinkRows("global-out"), (std::vector<std::string>{R"({"n":0,"total":null})"}));
}

TEST(MicroBatchExecutor, CurrentTimestampIsConstantWithinABatch) {
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < 1000; ++i) rows.push_back({std::to_string(i)});
  Push("ts-in", MakeBatch("v BIGINT", rows));
  auto q = Build(R"toml(
[pipeline]
trigger = "once"
[sources.in]
type = "memory"
schema = "v BIGINT"
stream = "ts-in"
[[steps]]
name = "stamped"
input = "in"
select = ["current_timestamp() AS at"]
[[steps]]
name = "distinct_times"
input = "stamped"
group_by = ["at"]
aggregate = ["count(*) AS n"]
scope = "batch"
[sinks.out]
type = "memory"
input = "distinct_times"
query_name = "ts-out"
)toml");
  ASSERT_NE(q, nullptr);
  MicroBatchExecutor exec(*q);
  ASSERT_TRUE(exec.Run().ok());
  auto out = SinkRows("ts-out");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].find("\"n\":1000}"), std::string::npos) << out[0];
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST(MicroBatchExecutor, ProcessingTimeTriggerStartsBatchesAtTheInterval) {
  auto q = Build(R"toml(
[pipeline]
trigger = { processing_time = "300 ms" }
[sources.in]
type = "memory"
schema = "x BIGINT"
stream = "interval-in"
[sinks.out]
type = "memory"
input = "in"
query_name = "interval-out"
)toml");
  ASSERT_NE(q, nullptr);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::chrono::steady_clock::time_point> starts;
  ExecutorOptions opts;
  opts.on_progress = [&](const ProgressEvent&) {
    std::lock_guard<std::mutex> lock(mu);
    starts.push_back(std::chrono::steady_clock::now());
    cv.notify_all();
  };
  MicroBatchExecutor exec(*q, opts);
  Status result;
  std::thread runner([&] { result = exec.Run(); });
  for (size_t n = 1; n <= 3; ++n) {
    Push("interval-in", MakeBatch("x BIGINT", {{std::to_string(n)}}));
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return starts.size() >= n; }));
  }
  exec.RequestStop();
  runner.join();
  ASSERT_TRUE(result.ok()) << result.ToString();
  // Each batch waits for the next tick: never less than the interval apart.
  for (size_t i = 1; i < starts.size(); ++i)
    EXPECT_GE(std::chrono::duration_cast<std::chrono::milliseconds>(starts[i] - starts[i - 1]).count(), 290);
  EXPECT_EQ(SinkRows("interval-out"), (std::vector<std::string>{R"({"x":1})", R"({"x":2})", R"({"x":3})"}));
}

}  // namespace
}  // namespace sluice
