// Session windows in a stateful group_by, against Spark's rules
// (../shared/reference/spark-stateful-semantics.md §4, §6, §7.1): sessions
// that grow, touch and merge (also when one row bridges two of them), the
// append and complete outputs batch by batch (update is refused, as in Spark) under a 10-minute
// watermark, late rows dropped and counted by (user, event time), and the
// errors of a bad session_window key. Each batch is one `trigger = "once"`
// run of a new executor over the same checkpoint, so every batch after the
// first starts from restored state and a restored watermark.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <sstream>

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

constexpr const char* kSchema = "ts TIMESTAMP, user STRING, clicks BIGINT";

Lines Sorted(Lines v) {
  std::sort(v.begin(), v.end());
  return v;
}

struct SessionQueryOptions {
  std::string mode = "append";
  std::string watermark_column = "ts";  // "" for none
  std::string session_key = "session_window(ts, '5 minutes')";
};

std::string SessionPipeline(const std::string& checkpoint, const std::string& stream, const std::string& table,
                            const SessionQueryOptions& o) {
  std::string toml = "[pipeline]\ntrigger = \"once\"\ncheckpoint = \"" + checkpoint + "\"\noutput_mode = \"" + o.mode +
                     "\"\nshuffle_partitions = 3\n\n[sources.clicks]\ntype = \"memory\"\nschema = \"" + kSchema +
                     "\"\nstream = \"" + stream + "\"\n";
  if (!o.watermark_column.empty())
    toml += "with_watermark = { column = \"" + o.watermark_column + "\", delay = \"10 minutes\" }\n";
  toml += "\n[[steps]]\nname = \"sessions\"\ninput = \"clicks\"\ngroup_by = [\"" + o.session_key +
          "\", \"user\"]\naggregate = [\"count(*) AS events\", \"sum(clicks) AS clicks\"]\n\n"
          "[sinks.out]\ntype = \"memory\"\ninput = \"sessions\"\nquery_name = \"" + table + "\"\n";
  return toml;
}

class SessionQuery {
 public:
  SessionQuery(const std::string& name, SessionQueryOptions options)
      : stream_(name + "-in"), table_(name + "-out"), complete_(options.mode == "complete") {
    toml_ = SessionPipeline(checkpoint_.path(), stream_, table_, options);
  }

  // Pushes events ("12:07 alice 3": time, user, clicks) and runs one batch
  // with a new executor; returns the rows the sink received in it, sorted
  // (in complete mode the sink's whole table), and keeps its progress.
  Lines Batch(const std::vector<std::string>& events) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& e : events) {
      std::istringstream in(e);
      std::string hhmm, user, clicks;
      in >> hhmm >> user >> clicks;
      rows.push_back({"2024-05-01 " + hhmm + ":00", user, clicks.empty() ? "1" : clicks});
    }
    auto* push = BuildPlugins().FindAlias<PushFn>(PluginKind::kSource, "memory", "sluice_memory_source_push");
    push(stream_, MakeBatch(kSchema, rows));
    std::vector<Diagnostic> diags;
    auto q = BuildQuery(LoadPipelineString(toml_, "/virtual/sessions.toml", &diags), BuildPlugins(), {}, &diags);
    for (const auto& d : diags) ADD_FAILURE() << d.ToString();
    if (!q) return {};
    auto* rows_of = BuildPlugins().FindAlias<RowsFn>(PluginKind::kSink, "memory", "sluice_memory_sink_rows");
    const size_t before = ToJsonLines(rows_of(table_)).size();
    ExecutorOptions opts;
    opts.on_progress = [&](const ProgressEvent& e) { last_ = e; };
    MicroBatchExecutor exec(*q, opts);
    Status st = exec.Run();
    EXPECT_TRUE(st.ok()) << st.ToString();
    Lines all = ToJsonLines(rows_of(table_));
    if (complete_) return Sorted(all);
    return Sorted(Lines(all.begin() + static_cast<long>(before), all.end()));
  }

  const StateOperatorProgress& op() const {
    static const StateOperatorProgress none;
    return last_.state_operators.empty() ? none : last_.state_operators[0];
  }
  const ProgressEvent& last() const { return last_; }

 private:
  TempDir checkpoint_;
  std::string stream_, table_, toml_;
  bool complete_;
  ProgressEvent last_;
};

std::string Row(const std::string& start, const std::string& end, const std::string& user, int events, int clicks) {
  return "{\"session_window_start\":\"2024-05-01T" + start + ":00Z\",\"session_window_end\":\"2024-05-01T" + end +
         ":00Z\",\"user\":\"" + user + "\",\"events\":" + std::to_string(events) +
         ",\"clicks\":" + std::to_string(clicks) + "}";
}

TEST(SessionWindow, RowsExtendSessionsAndABridgingRowMergesTwo) {
  SessionQuery q("session-merge", {.mode = "complete", .watermark_column = ""});
  EXPECT_EQ(q.Batch({"12:00 alice 1", "12:10 alice 2", "12:01 bob 5"}),
            Sorted({Row("12:00", "12:05", "alice", 1, 1), Row("12:10", "12:15", "alice", 1, 2),
                    Row("12:01", "12:06", "bob", 1, 5)}));
  EXPECT_EQ(q.op().operator_name, "sessionWindowStateStoreSaveExec");
  EXPECT_EQ(q.op().num_rows_total, 3);
  // 12:04 falls in [12:00, 12:05): the session now ends at 12:09.
  EXPECT_EQ(q.Batch({"12:04 alice 10"}),
            Sorted({Row("12:00", "12:09", "alice", 2, 11), Row("12:10", "12:15", "alice", 1, 2),
                    Row("12:01", "12:06", "bob", 1, 5)}));
  EXPECT_EQ(q.op().num_rows_updated, 1);
  // [12:06, 12:11) overlaps [12:00, 12:09) and [12:10, 12:15): all three are
  // one session. Bob's [12:06, 12:11) only touches [12:01, 12:06): merged too.
  EXPECT_EQ(q.Batch({"12:06 alice 100", "12:06 bob 7"}),
            Sorted({Row("12:00", "12:15", "alice", 4, 113), Row("12:01", "12:11", "bob", 2, 12)}));
  EXPECT_EQ(q.op().num_rows_total, 2);
  EXPECT_EQ(q.op().num_rows_updated, 2);
  EXPECT_EQ(q.op().num_rows_removed, 1);  // alice's [12:10, 12:15) was absorbed
  // A row before a session that reaches it moves the session's start.
  EXPECT_EQ(q.Batch({"11:56 bob 1", "12:20 carol 1"}),
            Sorted({Row("12:00", "12:15", "alice", 4, 113), Row("11:56", "12:11", "bob", 3, 13),
                    Row("12:20", "12:25", "carol", 1, 1)}));
  EXPECT_EQ(q.op().num_rows_total, 3);
}

TEST(SessionWindow, OneBatchMergesItsOwnRowsInAnyOrder) {
  SessionQuery q("session-one-batch", {.mode = "complete", .watermark_column = ""});
  EXPECT_EQ(q.Batch({"12:10 alice", "12:00 alice", "12:06 alice", "12:04 alice", "12:30 alice", "12:30 alice"}),
            Sorted({Row("12:00", "12:15", "alice", 4, 4), Row("12:30", "12:35", "alice", 2, 2)}));
}

// 5-minute gap, 10-minute watermark delay. The watermark after each batch
// (max event time - 10 min) is E of the next batch, and L of the one after.
const std::vector<std::vector<std::string>> kBatches = {
    // 0: L = E = 0. Watermark after: 12:03 - 10 = 11:53.
    {"12:00 alice 1", "12:03 alice 2", "12:02 bob 4"},
    // 1: L = 0, E = 11:53; bob's 12:09 does not reach [12:02, 12:07). After: 12:10.
    {"12:20 alice 8", "12:09 bob 16"},
    // 2: L = 11:53, E = 12:10; 12:06 is behind the clock but its session ends
    // at 12:11 > L: it extends [12:00, 12:08) to 12:11. After: 12:20.
    {"12:30 carol 32", "12:06 alice 64"},
    // 3: L = 12:10, E = 12:20. Dave's session would end at 12:09 and alice's
    // 12:05 one at 12:10, both <= L: late (two (user, time) pairs, §6).
    // 12:07 ends at 12:12 > L: it extends alice's first session to 12:12.
    {"12:04 dave 1", "12:04 dave 1", "12:05 alice 1", "12:07 alice 128"},
    // 4: L = E = 12:20. Extends [12:20, 12:25) to 12:29. After: still 12:20.
    {"12:24 alice 256"},
    // 5: L = E = 12:20. After: 12:50 - 10 = 12:40.
    {"12:50 eve 512"},
    // 6: L = 12:20, E = 12:40.
    {"12:45 frank 1024"},
};

TEST(SessionWindow, AppendEmitsASessionOnceWhenTheWatermarkPassesItsEnd) {
  SessionQuery q("session-append", {.mode = "append"});
  EXPECT_EQ(q.Batch(kBatches[0]), Lines{});
  EXPECT_EQ(q.op().num_rows_total, 2);
  EXPECT_EQ(q.Batch(kBatches[1]), Lines{});
  EXPECT_EQ(q.last().watermark, "2024-05-01T11:53:00.000Z");
  // E = 12:10 closes bob's [12:02, 12:07); alice's first session now ends at
  // 12:11 and stays open.
  EXPECT_EQ(q.Batch(kBatches[2]), Lines{Row("12:02", "12:07", "bob", 1, 4)});
  EXPECT_EQ(q.op().num_rows_removed, 1);
  EXPECT_EQ(q.op().num_rows_total, 4);
  EXPECT_EQ(q.Batch(kBatches[3]),
            Sorted({Row("12:00", "12:12", "alice", 4, 195), Row("12:09", "12:14", "bob", 1, 16)}));
  EXPECT_EQ(q.op().num_rows_dropped_by_watermark, 2);
  EXPECT_EQ(q.op().num_rows_total, 2);  // alice [12:20, 12:25) and carol
  EXPECT_EQ(q.last().watermark, "2024-05-01T12:20:00.000Z");
  EXPECT_EQ(q.Batch(kBatches[4]), Lines{});
  EXPECT_EQ(q.op().num_rows_dropped_by_watermark, 0);
  EXPECT_EQ(q.Batch(kBatches[5]), Lines{});
  EXPECT_EQ(q.Batch(kBatches[6]),
            Sorted({Row("12:20", "12:29", "alice", 2, 264), Row("12:30", "12:35", "carol", 1, 32)}));
  EXPECT_EQ(q.op().num_rows_total, 2);  // eve and frank
}

TEST(SessionWindow, CompleteEmitsEverySessionNeverEvictsButDropsLateRows) {
  SessionQuery q("session-complete", {.mode = "complete"});
  for (size_t b = 0; b < 3; ++b) q.Batch(kBatches[b]);
  // The late filter applies in complete mode too (§7.1: follow the code).
  EXPECT_EQ(q.Batch(kBatches[3]),
            Sorted({Row("12:00", "12:12", "alice", 4, 195), Row("12:20", "12:25", "alice", 1, 8),
                    Row("12:02", "12:07", "bob", 1, 4), Row("12:09", "12:14", "bob", 1, 16),
                    Row("12:30", "12:35", "carol", 1, 32)}));
  EXPECT_EQ(q.op().num_rows_dropped_by_watermark, 2);
  EXPECT_EQ(q.op().num_rows_removed, 0);
  for (size_t b = 4; b < kBatches.size(); ++b) q.Batch(kBatches[b]);
  EXPECT_EQ(q.op().num_rows_total, 7);
  EXPECT_EQ(q.op().num_rows_removed, 0);
}

TEST(SessionWindow, WithoutAWatermarkOnTheSessionTimeNothingIsLateOrEvicted) {
  SessionQuery q("session-no-watermark", {.mode = "complete", .watermark_column = ""});
  q.Batch({"12:00 alice", "13:00 bob"});
  EXPECT_EQ(q.Batch({"12:01 alice"}), Sorted({Row("12:00", "12:06", "alice", 2, 2), Row("13:00", "13:05", "bob", 1, 1)}));
  EXPECT_EQ(q.op().num_rows_dropped_by_watermark, 0);
  EXPECT_EQ(q.op().num_rows_total, 2);
}

// Shuffled events over many batches, some for a null user: the final complete
// result equals sessions computed in one pass over all events sorted by time.
TEST(SessionWindow, RandomizedStreamMatchesOnePassSessionization) {
  const unsigned seed = 2024;
  std::mt19937 rng(seed);
  SessionQuery q("session-random", {.mode = "complete", .watermark_column = ""});
  const std::vector<std::string> users = {"ann", "ben", "cat", "null"};
  std::vector<std::pair<int, std::string>> events;  // minute offset from 12:00, user
  for (int i = 0; i < 300; ++i) events.push_back({static_cast<int>(rng() % 240), users[rng() % users.size()]});
  std::shuffle(events.begin(), events.end(), rng);
  auto hhmm = [](int minute) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02d:%02d", 12 + minute / 60, minute % 60);
    return std::string(buf);
  };
  std::map<std::string, std::vector<int>> minutes_of;
  for (const auto& [m, u] : events) minutes_of[u].push_back(m);
  Lines want;
  for (auto& [user, minutes] : minutes_of) {
    std::sort(minutes.begin(), minutes.end());
    for (size_t first = 0; first < minutes.size();) {
      size_t last = first + 1;
      int end = minutes[first] + 5;
      for (; last < minutes.size() && minutes[last] <= end; ++last) end = std::max(end, minutes[last] + 5);
      const int n = static_cast<int>(last - first);
      std::string row = Row(hhmm(minutes[first]), hhmm(end), user, n, n);
      if (user == "null") row.replace(row.find("\"null\""), 6, "null");
      want.push_back(row);
      first = last;
    }
  }
  Lines got;
  for (size_t i = 0; i < events.size();) {
    std::vector<std::string> chunk;
    for (size_t n = 1 + rng() % 30; n > 0 && i < events.size(); --n, ++i)
      chunk.push_back(hhmm(events[i].first) + " " + events[i].second);
    got = q.Batch(chunk);
  }
  EXPECT_EQ(got, Sorted(want)) << "seed " << seed;
}

// Builds the pipeline and returns its diagnostics, joined.
std::string BuildErrors(const SessionQueryOptions& options) {
  TempDir checkpoint;
  std::vector<Diagnostic> diags;
  auto q = BuildQuery(LoadPipelineString(SessionPipeline(checkpoint.path(), "session-bad-in", "session-bad-out", options),
                                         "/virtual/sessions.toml", &diags),
                      BuildPlugins(), {}, &diags);
  EXPECT_EQ(q, nullptr);
  std::string all;
  for (const auto& d : diags) all += d.ToString() + "\n";
  return all;
}

TEST(SessionWindow, BadSessionKeysAreErrors) {
  auto error_of = [](const std::string& key) { return BuildErrors({.mode = "complete", .session_key = key}); };
  EXPECT_NE(error_of("session_window(ts, '5 parsecs')").find("session_window() gap"), std::string::npos)
      << error_of("session_window(ts, '5 parsecs')");
  EXPECT_NE(error_of("session_window(ts, '0 seconds')").find("the session gap must be positive"), std::string::npos);
  EXPECT_NE(error_of("session_window(ts, '-5 minutes')").find("is not a duration"), std::string::npos);
  EXPECT_NE(error_of("session_window(ts, 5)").find("string literal such as '5 minutes'"), std::string::npos);
  EXPECT_NE(error_of("session_window(ts)").find("takes a time column and a gap"), std::string::npos);
  EXPECT_NE(error_of("session_window(user, '5 minutes')").find("needs a TIMESTAMP"), std::string::npos);
  EXPECT_NE(error_of("session_window(ts, '5 minutes') AS s").find("must be the whole group_by key"), std::string::npos);
  EXPECT_NE(error_of("session_window(ts, '5 minutes'").find("unclosed"), std::string::npos);
  EXPECT_NE(error_of("window(ts, '5 minutes')\", \"session_window(ts, '5 minutes')").find("cannot be combined"),
            std::string::npos);
  // Append needs the watermark on the session's own time column.
  EXPECT_NE(BuildErrors({.mode = "append", .watermark_column = ""}).find("needs a watermark"), std::string::npos);
  // As in Spark: a merge can move a session's start, and emitted rows cannot be withdrawn.
  EXPECT_NE(BuildErrors({.mode = "update"}).find("output_mode = \"update\" is not supported with session_window in step "
                                                 "'sessions' (as in Spark)"),
            std::string::npos)
      << BuildErrors({.mode = "update"});
}

TEST(SessionWindow, AGlobalSessionWindowIsAnError) {
  TempDir checkpoint;
  std::string toml = SessionPipeline(checkpoint.path(), "session-global-in", "session-global-out", {.mode = "complete"});
  const std::string keys = "group_by = [\"session_window(ts, '5 minutes')\", \"user\"]";
  toml.replace(toml.find(keys), keys.size(), "group_by = [\"session_window(ts, '5 minutes')\"]");
  std::vector<Diagnostic> diags;
  auto q = BuildQuery(LoadPipelineString(toml, "/virtual/sessions.toml", &diags), BuildPlugins(), {}, &diags);
  EXPECT_EQ(q, nullptr);
  ASSERT_FALSE(diags.empty());
  EXPECT_NE(diags[0].message.find("rejects a global session window"), std::string::npos) << diags[0].ToString();
}

}  // namespace
}  // namespace sluice
