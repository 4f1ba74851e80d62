// Unit tests of hash aggregation's distinct and positional aggregates:
// count_distinct / count(DISTINCT x), approx_count_distinct, first and last.
// Batches are consumed into per-partition states and merged in arrival order,
// as the micro-batch executor does; the accumulator encoding is checked the
// way the stateful aggregation uses it, earlier batches stored and merged
// under later ones.
#include "exec/batch_aggregate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <set>
#include <sstream>

namespace sluice {
namespace {

using Cell = std::optional<std::string>;  // nullopt is SQL NULL
using Rows = std::vector<std::vector<Cell>>;

SchemaPtr SchemaOf(const std::string& ddl) { return std::make_shared<const Schema>(ParseSchemaDdl(ddl).value()); }

// A batch from text cells, parsed by each field's type.
RecordBatchPtr BatchOf(const SchemaPtr& schema, const Rows& rows) {
  RecordBatchBuilder b(schema, static_cast<int64_t>(rows.size()));
  for (const auto& row : rows) {
    for (int c = 0; c < schema->num_fields(); ++c) {
      const Cell& cell = row[static_cast<size_t>(c)];
      ColumnBuilder& col = b.column(c);
      if (!cell) col.AppendNull();
      else if (schema->field(c).type == DataType::kInt64) col.AppendInt64(std::stoll(*cell));
      else if (schema->field(c).type == DataType::kFloat64) col.AppendFloat64(std::stod(*cell));
      else if (schema->field(c).type == DataType::kBool) col.AppendBool(*cell == "true");
      else col.AppendString(*cell);
    }
  }
  return b.Finish();
}

std::string CellText(const Column& c, int64_t r) {
  if (c.is_null(r)) return "null";
  switch (c.type()) {
    case DataType::kBool: return c.bool_at(r) ? "true" : "false";
    case DataType::kFloat64: {
      std::ostringstream s;
      s << c.float64_at(r);
      return s.str();
    }
    case DataType::kString:
    case DataType::kBinary: return std::string(c.string_at(r));
    default: return std::to_string(c.int64_at(r));
  }
}

// Output rows as "v1|v2|...", groups in order of first appearance.
std::vector<std::string> RowsOf(const std::vector<RecordBatchPtr>& batches) {
  std::vector<std::string> out;
  for (const auto& b : batches) {
    for (int64_t r = 0; r < b->num_rows(); ++r) {
      std::string line;
      for (int c = 0; c < b->num_columns(); ++c) {
        if (c > 0) line += '|';
        line += CellText(b->column(c), r);
      }
      out.push_back(line);
    }
  }
  return out;
}

std::shared_ptr<BatchAggregate> MakeAggregate(const Schema& input, const std::vector<std::string>& group_by,
                                              const std::vector<std::string>& aggregates) {
  std::vector<std::shared_ptr<expr::CompiledExpr>> keys;
  expr::ExprError error;
  for (const auto& k : group_by) {
    keys.push_back(expr::CompileExpression(k, input, &error));
    EXPECT_NE(keys.back(), nullptr) << k << ": " << error.message;
  }
  std::vector<AggregateSpec> specs;
  for (const auto& text : aggregates) {
    AggregateSpec spec;
    EXPECT_TRUE(ParseAggregate(text, input, &spec, &error)) << text << ": " << error.message << " at " << error.offset;
    specs.push_back(std::move(spec));
  }
  return std::make_shared<BatchAggregate>(std::move(keys), std::move(specs));
}

std::unique_ptr<AggregateState> ConsumeAll(const BatchAggregate& agg, const std::vector<RecordBatchPtr>& batches) {
  auto state = agg.NewState();
  for (const auto& b : batches) EXPECT_TRUE(agg.Consume(*state, *b, {}).ok());
  return state;
}

// Each partition consumed into its own state, merged in partition order.
std::vector<std::string> Aggregate(const BatchAggregate& agg,
                                   const std::vector<std::vector<RecordBatchPtr>>& partitions) {
  auto merged = agg.NewState();
  for (const auto& p : partitions) agg.Merge(*merged, *ConsumeAll(agg, p));
  return RowsOf(agg.Finish(*merged));
}

class DistinctAndPositionalAggregates : public ::testing::Test {
 protected:
  SchemaPtr schema_ = SchemaOf("k STRING, x BIGINT, d DOUBLE, s STRING, b BOOLEAN");
  // Arrival order: partition 0 (batches 0 and 1), then partition 1 (batch 2).
  RecordBatchPtr batch0_ = BatchOf(schema_, {
      {"a", std::nullopt, "1.5", std::nullopt, "true"},
      {"b", "7", "0.0", "x", std::nullopt},
      {"a", "3", "-0.0", "p", "false"},
  });
  RecordBatchPtr batch1_ = BatchOf(schema_, {
      {"a", "3", "nan", "q", "true"},
      {"b", std::nullopt, "-nan", std::nullopt, std::nullopt},
  });
  RecordBatchPtr batch2_ = BatchOf(schema_, {
      {"a", "4", "0.0", "p", std::nullopt},
      {"b", "7", std::nullopt, "y", "false"},
      {"c", std::nullopt, std::nullopt, std::nullopt, std::nullopt},
      {"a", std::nullopt, "1.5", std::nullopt, std::nullopt},
  });
  std::vector<std::vector<RecordBatchPtr>> partitions_ = {{batch0_, batch1_}, {batch2_}};
};

TEST_F(DistinctAndPositionalAggregates, CountDistinctIgnoresNullsInBothSpellings) {
  auto agg = MakeAggregate(*schema_, {"k"},
                           {"count(DISTINCT x)", "count_distinct(x) AS dx", "count(distinct d)", "count_distinct(s)",
                            "count_distinct(b)"});
  EXPECT_EQ(agg->output_schema()->field(1).name, "count(DISTINCT x)");
  EXPECT_EQ(agg->output_schema()->field(2).name, "dx");
  EXPECT_EQ(agg->output_schema()->field(1).type, DataType::kInt64);
  EXPECT_FALSE(agg->output_schema()->field(1).nullable);
  // a: x {3, 4}; d {1.5, 0 (both zeros), NaN}; s {p, q}; b {true, false}.
  EXPECT_EQ(Aggregate(*agg, partitions_),
            (std::vector<std::string>{"a|2|2|3|2|2", "b|1|1|2|2|1", "c|0|0|0|0|0"}));
}

TEST_F(DistinctAndPositionalAggregates, FirstAndLastKeepNullsByDefault) {
  auto agg = MakeAggregate(*schema_, {"k"}, {"first(x)", "last(x)", "first(s)", "last(s)", "first(d)", "last(b)"});
  EXPECT_EQ(agg->output_schema()->field(1).name, "first(x)");
  EXPECT_EQ(agg->output_schema()->field(1).type, DataType::kInt64);
  EXPECT_EQ(agg->output_schema()->field(3).type, DataType::kString);
  EXPECT_TRUE(agg->output_schema()->field(1).nullable);
  EXPECT_EQ(Aggregate(*agg, partitions_), (std::vector<std::string>{
                                              "a|null|null|null|null|1.5|null",
                                              "b|7|7|x|y|0|false",
                                              "c|null|null|null|null|null|null",
                                          }));
}

TEST_F(DistinctAndPositionalAggregates, FirstAndLastWithIgnoreNulls) {
  auto agg = MakeAggregate(*schema_, {"k"},
                           {"first(x, true)", "last(x, TRUE)", "first(s, true)", "last(s, true)", "last(b, true)",
                            "first(x, false)"});
  EXPECT_EQ(agg->output_schema()->field(1).name, "first(x) ignore nulls");
  EXPECT_EQ(agg->output_schema()->field(6).name, "first(x)");
  EXPECT_EQ(Aggregate(*agg, partitions_), (std::vector<std::string>{
                                              "a|3|4|p|p|true|null",
                                              "b|7|7|x|y|false|7",
                                              "c|null|null|null|null|null|null",
                                          }));
}

TEST_F(DistinctAndPositionalAggregates, GlobalAggregateOverNoRows) {
  auto agg = MakeAggregate(*schema_, {},
                           {"count_distinct(x)", "approx_count_distinct(s)", "first(x)", "last(s, true)"});
  EXPECT_EQ(Aggregate(*agg, {}), (std::vector<std::string>{"0|0|null|null"}));
}

TEST_F(DistinctAndPositionalAggregates, MergeIsAssociativeAndKeepsArrivalOrder) {
  auto agg = MakeAggregate(*schema_, {"k"},
                           {"count_distinct(s)", "approx_count_distinct(x)", "first(x)", "last(x)",
                            "first(s, true)", "last(s, true)", "sum(x)"});
  auto left_first = agg->NewState();
  agg->Merge(*left_first, *ConsumeAll(*agg, {batch0_}));
  agg->Merge(*left_first, *ConsumeAll(*agg, {batch1_}));
  agg->Merge(*left_first, *ConsumeAll(*agg, {batch2_}));
  auto right_first = ConsumeAll(*agg, {batch1_});
  agg->Merge(*right_first, *ConsumeAll(*agg, {batch2_}));
  auto outer = ConsumeAll(*agg, {batch0_});
  agg->Merge(*outer, *right_first);
  // Grouped differently, the merges must agree value for value.
  auto sorted = [](std::vector<std::string> rows) {
    std::sort(rows.begin(), rows.end());
    return rows;
  };
  EXPECT_EQ(sorted(RowsOf(agg->Finish(*left_first))), sorted(RowsOf(agg->Finish(*outer))));
  EXPECT_EQ(RowsOf(agg->Finish(*left_first)), Aggregate(*agg, partitions_));
}

// Stores each group's encoding after `earlier`, then merges it under `later`
// as the stateful aggregation does.
std::vector<std::string> ThroughState(const BatchAggregate& agg, const AggregateState& earlier,
                                      const AggregateState& later) {
  auto updated = agg.NewState();
  for (size_t g = 0; g < later.keys.size(); ++g) agg.MergeGroupFrom(*updated, later, g);
  std::string encoded;
  for (size_t g = 0; g < earlier.keys.size(); ++g) {
    agg.EncodeAccumulators(earlier, static_cast<uint32_t>(g), &encoded);
    EXPECT_EQ(static_cast<uint8_t>(encoded.front()), BatchAggregate::kAccumulatorEncodingVersion);
    Status st = agg.MergeEncoded(*updated, earlier.keys[g], encoded);
    EXPECT_TRUE(st.ok()) << st.message();
  }
  return RowsOf(agg.Finish(*updated));
}

TEST_F(DistinctAndPositionalAggregates, EncodingRoundTripsEveryAggregate) {
  const std::vector<std::string> all = {
      "count(*)",        "count(x)",          "sum(x)",           "avg(d)",           "min(s)",
      "max(x)",          "count_distinct(x)", "count_distinct(s)", "count_distinct(d)", "approx_count_distinct(s)",
      "first(x)",        "last(x)",           "first(s)",         "last(s, true)",    "first(d, true)",
      "last(b)"};
  auto agg = MakeAggregate(*schema_, {"k"}, all);
  auto once = ConsumeAll(*agg, {batch0_, batch1_, batch2_});
  // Alone: each group decoded into an empty state gives the same values.
  EXPECT_EQ(ThroughState(*agg, *once, *agg->NewState()), RowsOf(agg->Finish(*once)));
  // Earlier batches in the store, the latest batch on top: as if consumed in one go.
  auto stored = ConsumeAll(*agg, {batch0_, batch1_});
  auto latest = ConsumeAll(*agg, {batch2_});
  std::vector<std::string> expected = RowsOf(agg->Finish(*once));
  std::vector<std::string> got = ThroughState(*agg, *stored, *latest);
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, expected);
}

TEST_F(DistinctAndPositionalAggregates, EncodingIsDeterministicAndVersioned) {
  auto agg = MakeAggregate(*schema_, {}, {"count_distinct(s)", "count_distinct(x)", "approx_count_distinct(x)"});
  auto forward = ConsumeAll(*agg, {batch0_, batch1_, batch2_});
  auto backward = ConsumeAll(*agg, {batch2_, batch1_, batch0_});
  std::string a, b;
  agg->EncodeAccumulators(*forward, 0, &a);
  agg->EncodeAccumulators(*backward, 0, &b);
  EXPECT_EQ(a, b);

  auto fresh = agg->NewState();
  std::string other_version = a;
  other_version[0] = static_cast<char>(BatchAggregate::kAccumulatorEncodingVersion + 1);
  Status st = agg->MergeEncoded(*fresh, forward->keys[0], other_version);
  EXPECT_EQ(st.code(), StatusCode::kCorruption);
  EXPECT_NE(st.message().find("version 2"), std::string::npos) << st.message();
  EXPECT_EQ(agg->MergeEncoded(*fresh, forward->keys[0], a.substr(0, a.size() - 1)).code(), StatusCode::kCorruption);
  EXPECT_EQ(agg->MergeEncoded(*fresh, forward->keys[0], a + "x").code(), StatusCode::kCorruption);
  EXPECT_EQ(agg->MergeEncoded(*fresh, forward->keys[0], "").code(), StatusCode::kCorruption);
}

TEST_F(DistinctAndPositionalAggregates, FirstAndLastAcrossStoredBatches) {
  // Three micro-batches of a stateful aggregation: the store holds batches
  // 1..n-1 and batch n is merged on top.
  auto agg = MakeAggregate(*schema_, {"k"}, {"first(x)", "last(x)", "first(s, true)", "last(s, true)"});
  auto store = agg->NewState();
  for (const auto& batch : {batch0_, batch1_, batch2_}) {
    auto partial = ConsumeAll(*agg, {batch});
    auto updated = agg->NewState();
    std::string value;
    for (size_t g = 0; g < partial->keys.size(); ++g) {
      agg->MergeGroupFrom(*updated, *partial, g);
      if (auto stored = store->Find(partial->keys[g])) {
        agg->EncodeAccumulators(*store, *stored, &value);
        ASSERT_TRUE(agg->MergeEncoded(*updated, partial->keys[g], value).ok());
      }
    }
    // The store keeps the newest value per key.
    auto next = agg->NewState();
    for (size_t g = 0; g < store->keys.size(); ++g)
      if (!updated->Find(store->keys[g])) agg->MergeGroupFrom(*next, *store, g);
    for (size_t g = 0; g < updated->keys.size(); ++g) agg->MergeGroupFrom(*next, *updated, g);
    store = std::move(next);
  }
  std::vector<std::string> rows = RowsOf(agg->Finish(*store));
  std::sort(rows.begin(), rows.end());
  EXPECT_EQ(rows, (std::vector<std::string>{"a|null|null|p|p", "b|7|7|x|y", "c|null|null|null|null"}));
}

TEST(ApproxCountDistinct, ExactForSmallCounts) {
  auto schema = SchemaOf("g BIGINT, x BIGINT, s STRING");
  auto agg = MakeAggregate(*schema, {"g"}, {"approx_count_distinct(x)", "approx_count_distinct(s, 0.3)"});
  // Group g has g distinct values, each seen three times, over two partitions.
  Rows first_half, second_half;
  for (int g = 1; g < 100; ++g)
    for (int repeat = 0; repeat < 3; ++repeat)
      for (int v = 0; v < g; ++v) {
        Rows& rows = (v + repeat) % 2 ? first_half : second_half;
        rows.push_back({std::to_string(g), std::to_string(v * 7919), "value " + std::to_string(v)});
      }
  auto rows = Aggregate(*agg, {{BatchOf(schema, first_half)}, {BatchOf(schema, second_half)}});
  ASSERT_EQ(rows.size(), 99u);
  for (const std::string& row : rows) {
    std::string g = row.substr(0, row.find('|'));
    EXPECT_EQ(row, g + "|" + g + "|" + g);
  }
}

// Aggregates `distinct` values (each twice, shuffled) spread over four
// partitions, and returns the estimate.
int64_t EstimateOf(const std::string& aggregate, int64_t distinct, bool as_strings) {
  auto schema = SchemaOf(as_strings ? "x STRING" : "x BIGINT");
  auto agg = MakeAggregate(*schema, {}, {aggregate});
  std::vector<int64_t> values;
  for (int64_t v = 0; v < distinct; ++v) {
    values.push_back(v * 1000003);
    values.push_back(v * 1000003);
  }
  std::mt19937_64 rng(7);
  std::shuffle(values.begin(), values.end(), rng);
  std::vector<std::vector<RecordBatchPtr>> partitions(4);
  const size_t per_batch = 20000;
  for (size_t begin = 0; begin < values.size(); begin += per_batch) {
    ColumnBuilder col(schema->field(0).type);
    for (size_t i = begin; i < std::min(values.size(), begin + per_batch); ++i) {
      if (as_strings) col.AppendString("user-" + std::to_string(values[i]));
      else col.AppendInt64(values[i]);
    }
    auto column = col.Finish();
    const int64_t n = column->length();
    auto batch = std::make_shared<const RecordBatch>(schema, std::vector<ColumnPtr>{column}, n);
    partitions[(begin / per_batch) % 4].push_back(std::move(batch));
  }
  auto rows = Aggregate(*agg, partitions);
  return std::stoll(rows.at(0));
}

TEST(ApproxCountDistinct, WithinThreeRelativeStandardDeviations) {
  struct Case {
    std::string aggregate;
    double rsd;
    int64_t distinct;
    bool as_strings;
  };
  const std::vector<Case> cases = {
      {"approx_count_distinct(x)", 0.05, 100000, false},
      {"approx_count_distinct(x)", 0.05, 100000, true},
      {"approx_count_distinct(x, 0.01)", 0.01, 100000, false},
      {"approx_count_distinct(x, 0.1)", 0.1, 100000, true},
      // Mid-range, where plain HyperLogLog needs bias correction.
      {"approx_count_distinct(x)", 0.05, 300, false},
      {"approx_count_distinct(x)", 0.05, 2000, true},
  };
  for (const Case& c : cases) {
    const int64_t estimate = EstimateOf(c.aggregate, c.distinct, c.as_strings);
    const double error = std::abs(static_cast<double>(estimate - c.distinct)) / static_cast<double>(c.distinct);
    EXPECT_LE(error, 3 * c.rsd) << c.aggregate << " over " << c.distinct << " values estimated " << estimate;
  }
}

TEST(ApproxCountDistinct, DenseSketchSurvivesEncoding) {
  auto schema = SchemaOf("x BIGINT");
  auto agg = MakeAggregate(*schema, {}, {"approx_count_distinct(x)"});
  ColumnBuilder col(DataType::kInt64);
  for (int64_t v = 0; v < 5000; ++v) col.AppendInt64(v);
  auto column = col.Finish();
  auto batch = std::make_shared<const RecordBatch>(schema, std::vector<ColumnPtr>{column}, column->length());
  auto state = ConsumeAll(*agg, {batch});
  EXPECT_EQ(ThroughState(*agg, *state, *agg->NewState()), RowsOf(agg->Finish(*state)));
  // Merging the same values again changes nothing.
  EXPECT_EQ(ThroughState(*agg, *state, *state), RowsOf(agg->Finish(*state)));
}

TEST(DistinctBitsSet, KeepsEveryPatternOnce) {
  aggregate_detail::DistinctBits set;
  std::set<uint64_t> expected;
  std::mt19937_64 rng(11);
  // Includes zero, all ones, and whatever pattern the table uses for free slots.
  std::vector<uint64_t> values = {0, ~uint64_t{0}, 0x7FF5A5A5A5A5A5A5ULL, 0x7FF8000000000000ULL};
  for (int i = 0; i < 5000; ++i) values.push_back(rng() % 3000);
  for (int repeat = 0; repeat < 2; ++repeat)
    for (uint64_t v : values) {
      set.insert(v);
      expected.insert(v);
    }
  EXPECT_EQ(set.size(), expected.size());
  std::set<uint64_t> visited;
  set.ForEach([&](uint64_t v) { EXPECT_TRUE(visited.insert(v).second) << v; });
  EXPECT_EQ(visited, expected);
}

TEST(HyperLogLogSketch, PrecisionFollowsSpark) {
  EXPECT_EQ(HyperLogLog::PrecisionForRelativeSd(0.05), 9);
  EXPECT_EQ(HyperLogLog::PrecisionForRelativeSd(0.01), 14);
  EXPECT_EQ(HyperLogLog::PrecisionForRelativeSd(0.39), 4);
}

TEST(HyperLogLogSketch, XxHash64MatchesReferenceValues) {
  auto hash = [](std::string_view s) { return XxHash64(s.data(), s.size(), 0); };
  EXPECT_EQ(hash(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(hash("abc"), 0x44BC2CF5AD770999ULL);
  EXPECT_EQ(hash("abcdefgh"), 0x3AD351775B4634B7ULL);
  EXPECT_EQ(hash("abcdefghijkl"), 0x4B09B7D3A233D4B3ULL);
  EXPECT_EQ(hash("The quick brown fox jumps over the lazy dog, twice over."), 0xFB9F56CED8AD4FC4ULL);
}

struct ParseFailure {
  std::string text;
  size_t offset;
  std::string message_part;
};

TEST(ParseAggregateErrors, PointAtTheOffendingText) {
  auto schema = SchemaOf("x BIGINT, s STRING");
  const std::vector<ParseFailure> cases = {
      {"median(x)", 0, "unknown aggregate 'median'"},
      {"  countdistinct(x)", 2, "unknown aggregate"},
      {"count_distinct(nope)", 15, "nope"},
      {"count(DISTINCT nope)", 15, "nope"},
      {"sum(DISTINCT x)", 4, "DISTINCT is supported only as count(DISTINCT x)"},
      {"count_distinct(x, s)", 18, "takes one argument"},
      {"count_distinct()", 14, "needs one argument"},
      {"first(x, maybe)", 9, "true or false"},
      {"last(x, true, s)", 14, "optionally an ignoreNulls flag"},
      {"approx_count_distinct(x, 0.5)", 25, "between 0.00216 and 0.39"},
      {"approx_count_distinct(x, 0.0001)", 25, "between"},
      {"approx_count_distinct(x, 0)", 25, "between"},
      {"approx_count_distinct(x, abc)", 25, "a number such as 0.05"},
      {"approx_count_distinct(x, 0.05, 1)", 31, "optionally a relative standard deviation"},
      {"sum(s)", 4, "needs a number"},
  };
  for (const ParseFailure& c : cases) {
    AggregateSpec spec;
    expr::ExprError error;
    EXPECT_FALSE(ParseAggregate(c.text, *schema, &spec, &error)) << c.text;
    EXPECT_EQ(error.offset, c.offset) << c.text << ": " << error.message;
    EXPECT_NE(error.message.find(c.message_part), std::string::npos) << c.text << ": " << error.message;
  }
}

TEST(ParseAggregateErrors, AcceptsSparkSpellings) {
  auto schema = SchemaOf("x BIGINT, distinct_users BIGINT");
  AggregateSpec spec;
  expr::ExprError error;
  ASSERT_TRUE(ParseAggregate("COUNT( DISTINCT x ) AS n", *schema, &spec, &error)) << error.message;
  EXPECT_EQ(spec.fn, AggregateFunction::kCountDistinct);
  EXPECT_EQ(spec.name, "n");
  ASSERT_TRUE(ParseAggregate("count(distinct_users)", *schema, &spec, &error)) << error.message;
  EXPECT_EQ(spec.fn, AggregateFunction::kCount);
  ASSERT_TRUE(ParseAggregate("approx_count_distinct(x, 1e-2)", *schema, &spec, &error)) << error.message;
  EXPECT_EQ(spec.hll_precision, 14);
  EXPECT_EQ(spec.name, "approx_count_distinct(x)");
  ASSERT_TRUE(ParseAggregate("last(coalesce(x, 0), false)", *schema, &spec, &error)) << error.message;
  EXPECT_EQ(spec.fn, AggregateFunction::kLast);
  EXPECT_FALSE(spec.ignore_nulls);
}

}  // namespace
}  // namespace sluice
