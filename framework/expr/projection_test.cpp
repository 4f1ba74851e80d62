// select lists (aliases, *, explode, from_json expansion), with_column and where.
#include <gtest/gtest.h>

#include <thread>

#include "expr/expr_test_util.h"

namespace sluice::expr {
namespace {

using testing::Cells;
using testing::CellTexts;
using testing::Int64Column;
using testing::MakeBatch;
using testing::StringColumn;

std::shared_ptr<Projection> MakeProjection(const std::vector<std::string>& items, const Schema& schema) {
  ExprError error;
  size_t item = 99;
  auto p = Projection::Make(items, schema, &error, &item);
  EXPECT_NE(p, nullptr) << "item " << item << " at " << error.offset << ": " << error.message;
  return p;
}

RecordBatchPtr Apply(const Projection& p, const RecordBatch& batch) {
  auto out = p.Apply(batch, EvalContext{});
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.value();
}

TEST(Projection, NamesTypesAndAliases) {
  auto batch = MakeBatch({Int64Column("id", {1, 2}), StringColumn("Name", {"Ann", std::nullopt})});
  auto p = MakeProjection({"id", "upper(name) AS shout", "id * 10 tens", "NAME", "length(Name)", "`id` AS `the id`"},
                          *batch->schema());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->output_schema()->ToString(), "id BIGINT, shout STRING, tens BIGINT, Name STRING, length(Name) BIGINT, the id BIGINT");
  auto out = Apply(*p, *batch);
  EXPECT_EQ(out->num_rows(), 2);
  EXPECT_EQ(Cells(out->column(1)), (CellTexts{"ANN", "NULL"}));
  EXPECT_EQ(Cells(out->column(2)), (CellTexts{"10", "20"}));
  EXPECT_EQ(Cells(out->column(4)), (CellTexts{"3", "NULL"}));
  // A bare column is shared, not copied.
  EXPECT_EQ(out->column_ptr(0), batch->column_ptr(0));
}

TEST(Projection, StarExpandsEveryColumn) {
  auto batch = MakeBatch({Int64Column("a", {1}), StringColumn("b", {"x"})});
  auto p = MakeProjection({"*", "a + 1 AS c"}, *batch->schema());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->output_schema()->ToString(), "a BIGINT, b STRING, c BIGINT");
  auto out = Apply(*p, *batch);
  EXPECT_EQ(Cells(out->column(2)), (CellTexts{"2"}));
}

TEST(Projection, ExplodeMultipliesRows) {
  auto batch = MakeBatch({Int64Column("id", {1, 2, 3, 4, 5}),
                          StringColumn("line", {"a b", std::nullopt, "c", "", "d e f"})});
  auto p = MakeProjection({"id", "explode(split(line, ' ')) AS word", "upper(line) AS up"}, *batch->schema());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->output_schema()->ToString(), "id BIGINT, word STRING, up STRING");
  auto out = Apply(*p, *batch);
  // A NULL array yields no rows; "" splits into [""], one row.
  EXPECT_EQ(out->num_rows(), 7);
  EXPECT_EQ(Cells(out->column(0)), (CellTexts{"1", "1", "3", "4", "5", "5", "5"}));
  EXPECT_EQ(Cells(out->column(1)), (CellTexts{"a", "b", "c", "", "d", "e", "f"}));
  EXPECT_EQ(Cells(out->column(2)), (CellTexts{"A B", "A B", "C", "", "D E F", "D E F", "D E F"}));
}

TEST(Projection, ExplodeWithoutAliasIsNamedCol) {
  auto batch = MakeBatch({StringColumn("s", {"x,y", "z"})});
  auto p = MakeProjection({"explode(split(s, ','))"}, *batch->schema());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->output_schema()->ToString(), "col STRING");
  auto out = Apply(*p, *batch);
  EXPECT_EQ(Cells(out->column(0)), (CellTexts{"x", "y", "z"}));
}

TEST(Projection, ExplodeOfOnlyEmptyInputGivesNoRows) {
  auto batch = MakeBatch({StringColumn("s", {std::nullopt, std::nullopt})});
  auto p = MakeProjection({"s", "explode(split(s, ','))"}, *batch->schema());
  ASSERT_NE(p, nullptr);
  auto out = Apply(*p, *batch);
  EXPECT_EQ(out->num_rows(), 0);
  EXPECT_EQ(out->column(0).length(), 0);
}

TEST(Projection, FromJsonExpandsIntoOneColumnPerField) {
  auto batch = MakeBatch({Int64Column("id", {1, 2, 3}),
                          StringColumn("value", {"{\"a\": 5, \"b\": \"x\"}", "oops", std::nullopt})});
  auto p = MakeProjection({"id", "from_json(value, 'a INT, b STRING')"}, *batch->schema());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->output_schema()->ToString(), "id BIGINT, a BIGINT, b STRING");
  auto out = Apply(*p, *batch);
  EXPECT_EQ(Cells(out->column(1)), (CellTexts{"5", "NULL", "NULL"}));
  EXPECT_EQ(Cells(out->column(2)), (CellTexts{"x", "NULL", "NULL"}));
  auto aliased = MakeProjection({"from_json(value, 'a INT, b STRING') AS j", "id"}, *batch->schema());
  ASSERT_NE(aliased, nullptr);
  EXPECT_EQ(aliased->output_schema()->ToString(), "a BIGINT, b STRING, id BIGINT");
  auto field = MakeProjection({"from_json(value, 'a INT, b STRING').b AS b_only"}, *batch->schema());
  ASSERT_NE(field, nullptr);
  EXPECT_EQ(Cells(Apply(*field, *batch)->column(0)), (CellTexts{"x", "NULL", "NULL"}));
}

TEST(Projection, WithColumnReplacesInPlaceOrAppends) {
  auto batch = MakeBatch({Int64Column("a", {1, 2}), StringColumn("b", {"x", "y"})});
  ExprError error;
  auto replace = Projection::MakeWithColumn("A", "a * 100", *batch->schema(), &error);
  ASSERT_NE(replace, nullptr) << error.message;
  EXPECT_EQ(replace->output_schema()->ToString(), "A BIGINT, b STRING");
  EXPECT_EQ(Cells(Apply(*replace, *batch)->column(0)), (CellTexts{"100", "200"}));
  auto append = Projection::MakeWithColumn("c", "concat(b, a)", *batch->schema(), &error);
  ASSERT_NE(append, nullptr) << error.message;
  EXPECT_EQ(append->output_schema()->ToString(), "a BIGINT, b STRING, c STRING");
  EXPECT_EQ(Cells(Apply(*append, *batch)->column(2)), (CellTexts{"x1", "y2"}));
  EXPECT_EQ(Projection::MakeWithColumn("c", "nope + 1", *batch->schema(), &error), nullptr);
  EXPECT_EQ(error.offset, 0u);
  EXPECT_EQ(error.message, "unknown column 'nope'; available: a, b");
}

TEST(Predicate, KeepsOnlyTrueRows) {
  auto batch = MakeBatch({Int64Column("n", {1, 2, 3, std::nullopt, 5}), StringColumn("s", {"a", "b", "c", "d", std::nullopt})});
  ExprError error;
  auto where = Predicate::Make("n > 1 AND s <> 'c'", *batch->schema(), &error);
  ASSERT_NE(where, nullptr) << error.message;
  auto out = where->Filter(batch, EvalContext{});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(Cells(out.value()->column(0)), (CellTexts{"2"}));
  EXPECT_EQ(Cells(out.value()->column(1)), (CellTexts{"b"}));
  // Every row kept: the same batch comes back.
  auto all = Predicate::Make("TRUE", *batch->schema(), &error);
  EXPECT_EQ(all->Filter(batch, EvalContext{}).value(), batch);
  auto none = Predicate::Make("NULL", *batch->schema(), &error);
  ASSERT_NE(none, nullptr);
  EXPECT_EQ(none->Filter(batch, EvalContext{}).value()->num_rows(), 0);
  auto is_null = Predicate::Make("s IS NULL OR n IS NULL", *batch->schema(), &error);
  EXPECT_EQ(Cells(is_null->Filter(batch, EvalContext{}).value()->column(0)), (CellTexts{"NULL", "5"}));
}

TEST(ThreadSafety, OneCompiledExpressionFromTwoThreads) {
  const int64_t rows = 20000;
  std::vector<std::optional<std::string>> lines;
  std::vector<std::optional<int64_t>> numbers;
  for (int64_t i = 0; i < rows; ++i) {
    lines.push_back(i % 7 == 0 ? std::nullopt : std::optional<std::string>("Row " + std::to_string(i) + ",x,{\"k\":" + std::to_string(i) + "}"));
    numbers.push_back(i % 5 == 0 ? std::nullopt : std::optional<int64_t>(i));
  }
  auto batch = MakeBatch({StringColumn("line", lines), Int64Column("n", numbers)});
  const std::string text =
      "CASE WHEN n % 3 = 0 THEN upper(split(line, ',')[0]) WHEN line RLIKE '[0-9]5' THEN regexp_extract(line, '([0-9]+)', 1) "
      "ELSE concat(substr(line, 2, 3), '/', n / 4, '/', get_json_object(split(line, ',', 3)[2], '$.k')) END";
  ExprError error;
  auto compiled = CompileExpression(text, *batch->schema(), &error);
  ASSERT_NE(compiled, nullptr) << error.offset << ": " << error.message;
  auto reference = compiled->Evaluate(*batch, EvalContext{});
  ASSERT_TRUE(reference.ok());
  const auto expected = Cells(*reference.value());
  EXPECT_EQ(expected[1], "ow /0.25/1");
  EXPECT_EQ(expected[3], "ROW 3");
  EXPECT_EQ(expected[15], "15");
  EXPECT_EQ(expected[10], "NULL");  // n is NULL, line is not
  std::vector<std::vector<std::string>> results(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        auto column = compiled->Evaluate(*batch, EvalContext{});
        if (!column.ok()) return;
        results[static_cast<size_t>(t)] = Cells(*column.value());
        if (results[static_cast<size_t>(t)] != expected) return;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(results[0], expected);
  EXPECT_EQ(results[1], expected);
}

}  // namespace
}  // namespace sluice::expr
