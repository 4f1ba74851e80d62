// Literals, column references, operators and type coercion.
#include "expr/expression.h"

#include <gtest/gtest.h>

#include <cmath>

#include "expr/expr_test_util.h"

namespace sluice::expr {
namespace {

using testing::BoolColumn;
using testing::CellTexts;
using testing::Evaluate;
using testing::EvaluateConstant;
using testing::Float64Column;
using testing::Int64Column;
using testing::MakeBatch;
using testing::StringColumn;
using testing::TimestampColumn;

TEST(Literals, NumbersHaveSparkTypes) {
  auto batch = testing::RowsOnly(1);
  EXPECT_EQ(Evaluate("42", *batch).type, DataType::kInt64);
  EXPECT_EQ(Evaluate("4.5", *batch).type, DataType::kFloat64);
  EXPECT_EQ(Evaluate("1e3", *batch).type, DataType::kFloat64);
  EXPECT_EQ(EvaluateConstant("42"), "42");
  EXPECT_EQ(EvaluateConstant("4.5"), "4.5");
  EXPECT_EQ(EvaluateConstant("1e3"), "1000.0");
  EXPECT_EQ(EvaluateConstant(".5"), "0.5");
  EXPECT_EQ(EvaluateConstant("2.5E-1"), "0.25");
  EXPECT_EQ(EvaluateConstant("10L"), "10");
  EXPECT_EQ(EvaluateConstant("-9223372036854775808"), "-9223372036854775808");
  // Too large for BIGINT: DOUBLE (Spark would use DECIMAL).
  EXPECT_EQ(EvaluateConstant("9223372036854775808"), "9.223372036854776e+18");
}

TEST(Literals, StringsBooleansNullTimestamp) {
  EXPECT_EQ(EvaluateConstant("'it''s'"), "it's");
  EXPECT_EQ(EvaluateConstant("'a\\'b'"), "a'b");
  EXPECT_EQ(EvaluateConstant("'tab\\there'"), "tab\there");
  EXPECT_EQ(EvaluateConstant("'line\\nbreak'"), "line\nbreak");
  EXPECT_EQ(EvaluateConstant("'back\\\\slash'"), "back\\slash");
  EXPECT_EQ(EvaluateConstant("'\\u00e9'"), "\xC3\xA9");
  EXPECT_EQ(EvaluateConstant("\"double quoted\""), "double quoted");
  EXPECT_EQ(EvaluateConstant("TRUE"), "true");
  EXPECT_EQ(EvaluateConstant("false"), "false");
  EXPECT_EQ(EvaluateConstant("NULL"), "NULL");
  EXPECT_EQ(Evaluate("NULL", *testing::RowsOnly(1)).type, DataType::kString);
  EXPECT_EQ(EvaluateConstant("TIMESTAMP '2024-01-01 00:00:00'"), "2024-01-01 00:00:00");
  EXPECT_EQ(Evaluate("timestamp '2024-01-01 10:30:00.25'", *testing::RowsOnly(1)).type, DataType::kTimestamp);
  EXPECT_EQ(EvaluateConstant("timestamp '2024-01-01 10:30:00.25'"), "2024-01-01 10:30:00.25");
}

TEST(Literals, MaterialiseOnePerRow) {
  auto e = Evaluate("'x'", *testing::RowsOnly(3));
  EXPECT_EQ(e.cells, (CellTexts{"x", "x", "x"}));
}

TEST(Columns, PlainBackQuotedAndCaseInsensitive) {
  auto batch = MakeBatch({Int64Column("Id", {1, 2}), StringColumn("odd name", {"a", "b"})});
  EXPECT_EQ(Evaluate("Id", *batch).cells, (CellTexts{"1", "2"}));
  EXPECT_EQ(Evaluate("id", *batch).cells, (CellTexts{"1", "2"}));
  EXPECT_EQ(Evaluate("ID", *batch).cells, (CellTexts{"1", "2"}));
  EXPECT_EQ(Evaluate("`odd name`", *batch).cells, (CellTexts{"a", "b"}));
  ExprError error;
  auto compiled = CompileExpression("iD", *batch->schema(), &error);
  ASSERT_NE(compiled, nullptr);
  EXPECT_EQ(compiled->name(), "Id");  // a bare reference takes the schema's spelling
  auto expr = CompileExpression("Id + 1", *batch->schema(), &error);
  ASSERT_NE(expr, nullptr);
  EXPECT_EQ(expr->name(), "Id + 1");
}

TEST(Arithmetic, IntegersWithNulls) {
  auto batch = MakeBatch({Int64Column("a", {7, -7, std::nullopt, 9}), Int64Column("b", {2, 2, 3, std::nullopt})});
  EXPECT_EQ(Evaluate("a + b", *batch).cells, (CellTexts{"9", "-5", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("a - b", *batch).cells, (CellTexts{"5", "-9", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("a * b", *batch).cells, (CellTexts{"14", "-14", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("a % b", *batch).cells, (CellTexts{"1", "-1", "NULL", "NULL"}));  // sign of the dividend
  EXPECT_EQ(Evaluate("a / b", *batch).cells, (CellTexts{"3.5", "-3.5", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("a / b", *batch).type, DataType::kFloat64);
  EXPECT_EQ(Evaluate("a + b", *batch).type, DataType::kInt64);
  EXPECT_EQ(Evaluate("-a", *batch).cells, (CellTexts{"-7", "7", "NULL", "-9"}));
  EXPECT_EQ(Evaluate("a + 1", *batch).cells, (CellTexts{"8", "-6", "NULL", "10"}));
  EXPECT_EQ(Evaluate("10 - a", *batch).cells, (CellTexts{"3", "17", "NULL", "1"}));
}

TEST(Arithmetic, DivisionAndModuloByZeroAreNull) {
  auto batch = MakeBatch({Int64Column("a", {5, 0}), Float64Column("d", {1.5, -2.0})});
  EXPECT_EQ(Evaluate("a / 0", *batch).cells, (CellTexts{"NULL", "NULL"}));
  EXPECT_EQ(Evaluate("a % 0", *batch).cells, (CellTexts{"NULL", "NULL"}));
  EXPECT_EQ(Evaluate("d / 0.0", *batch).cells, (CellTexts{"NULL", "NULL"}));
  EXPECT_EQ(Evaluate("d % 0", *batch).cells, (CellTexts{"NULL", "NULL"}));
  EXPECT_EQ(Evaluate("d / a", *batch).cells, (CellTexts{"0.3", "NULL"}));
  EXPECT_EQ(Evaluate("a % 2", *batch).cells, (CellTexts{"1", "0"}));
}

TEST(Arithmetic, MixedTypesPromoteToDouble) {
  auto batch = MakeBatch({Int64Column("a", {3}), Float64Column("d", {0.5}), StringColumn("s", {"2.5"})});
  EXPECT_EQ(Evaluate("a + d", *batch).type, DataType::kFloat64);
  EXPECT_EQ(Evaluate("a + d", *batch).cells, (CellTexts{"3.5"}));
  EXPECT_EQ(Evaluate("a * 1.5", *batch).cells, (CellTexts{"4.5"}));
  EXPECT_EQ(Evaluate("d % 0.3", *batch).cells, (CellTexts{"0.2"}));
  // Strings in arithmetic are read as DOUBLE.
  EXPECT_EQ(Evaluate("s + a", *batch).cells, (CellTexts{"5.5"}));
  EXPECT_EQ(Evaluate("-s", *batch).cells, (CellTexts{"-2.5"}));
  EXPECT_EQ(EvaluateConstant("'x' + 1"), "NULL");
  EXPECT_EQ(EvaluateConstant("NULL + 1"), "NULL");
}

TEST(Arithmetic, OverflowWrapsAndPrecedence) {
  EXPECT_EQ(EvaluateConstant("9223372036854775807 + 1"), "-9223372036854775808");
  EXPECT_EQ(EvaluateConstant("-9223372036854775808 % -1"), "0");
  EXPECT_EQ(EvaluateConstant("2 + 3 * 4"), "14");
  EXPECT_EQ(EvaluateConstant("(2 + 3) * 4"), "20");
  EXPECT_EQ(EvaluateConstant("10 - 2 - 3"), "5");
  EXPECT_EQ(EvaluateConstant("- (2 + 3)"), "-5");
  EXPECT_EQ(EvaluateConstant("2 * -3"), "-6");
  EXPECT_EQ(EvaluateConstant("7 % 3 * 2"), "2");
}

TEST(Comparison, AllOperatorsOnIntegers) {
  auto batch = MakeBatch({Int64Column("a", {1, 2, 3, std::nullopt}), Int64Column("b", {2, 2, 2, 2})});
  EXPECT_EQ(Evaluate("a = b", *batch).cells, (CellTexts{"false", "true", "false", "NULL"}));
  EXPECT_EQ(Evaluate("a == b", *batch).cells, (CellTexts{"false", "true", "false", "NULL"}));
  EXPECT_EQ(Evaluate("a != b", *batch).cells, (CellTexts{"true", "false", "true", "NULL"}));
  EXPECT_EQ(Evaluate("a <> b", *batch).cells, (CellTexts{"true", "false", "true", "NULL"}));
  EXPECT_EQ(Evaluate("a < b", *batch).cells, (CellTexts{"true", "false", "false", "NULL"}));
  EXPECT_EQ(Evaluate("a <= b", *batch).cells, (CellTexts{"true", "true", "false", "NULL"}));
  EXPECT_EQ(Evaluate("a > b", *batch).cells, (CellTexts{"false", "false", "true", "NULL"}));
  EXPECT_EQ(Evaluate("a >= b", *batch).cells, (CellTexts{"false", "true", "true", "NULL"}));
  EXPECT_EQ(Evaluate("a <=> 2", *batch).cells, (CellTexts{"false", "true", "false", "false"}));
  EXPECT_EQ(Evaluate("a <=> NULL", *batch).cells, (CellTexts{"false", "false", "false", "true"}));
  EXPECT_EQ(Evaluate("2 < a", *batch).cells, (CellTexts{"false", "false", "true", "NULL"}));
  EXPECT_EQ(Evaluate("a = NULL", *batch).cells, (CellTexts{"NULL", "NULL", "NULL", "NULL"}));
}

TEST(Comparison, StringsDoublesBooleans) {
  auto batch = MakeBatch({StringColumn("s", {"apple", "banana", "", std::nullopt}),
                          Float64Column("d", {1.5, std::nan(""), -0.0, 2.0}), BoolColumn("f", {true, false, true, false})});
  EXPECT_EQ(Evaluate("s < 'b'", *batch).cells, (CellTexts{"true", "false", "true", "NULL"}));
  EXPECT_EQ(Evaluate("s = 'banana'", *batch).cells, (CellTexts{"false", "true", "false", "NULL"}));
  EXPECT_EQ(Evaluate("s >= ''", *batch).cells, (CellTexts{"true", "true", "true", "NULL"}));
  // NaN equals NaN and sorts above everything; -0.0 equals 0.0, as in Spark.
  EXPECT_EQ(Evaluate("d = d", *batch).cells, (CellTexts{"true", "true", "true", "true"}));
  EXPECT_EQ(Evaluate("d > 1000000", *batch).cells, (CellTexts{"false", "true", "false", "false"}));
  EXPECT_EQ(Evaluate("d = 0", *batch).cells, (CellTexts{"false", "false", "true", "false"}));
  EXPECT_EQ(Evaluate("f = true", *batch).cells, (CellTexts{"true", "false", "true", "false"}));
  EXPECT_EQ(Evaluate("f > false", *batch).cells, (CellTexts{"true", "false", "true", "false"}));
}

TEST(Comparison, StringAgainstNumberCastsTheStringToDouble) {
  auto batch = MakeBatch({StringColumn("s", {"10", "9.5", "abc", " 7 "}), Int64Column("n", {10, 10, 10, 7})});
  EXPECT_EQ(Evaluate("s = n", *batch).cells, (CellTexts{"true", "false", "NULL", "true"}));
  EXPECT_EQ(Evaluate("s < 10", *batch).cells, (CellTexts{"false", "true", "NULL", "true"}));
  EXPECT_EQ(Evaluate("'1e1' = 10", *batch).cells, (CellTexts{"true", "true", "true", "true"}));
}

TEST(Comparison, TimestampAgainstStringCastsTheString) {
  auto batch = MakeBatch({TimestampColumn("ts", {"2024-01-01 00:00:00", "2024-06-01 12:00:00", std::nullopt})});
  EXPECT_EQ(Evaluate("ts > '2024-03-01'", *batch).cells, (CellTexts{"false", "true", "NULL"}));
  EXPECT_EQ(Evaluate("ts = '2024-01-01 00:00:00'", *batch).cells, (CellTexts{"true", "false", "NULL"}));
  EXPECT_EQ(Evaluate("ts < TIMESTAMP '2024-06-01 12:00:01'", *batch).cells, (CellTexts{"true", "true", "NULL"}));
  EXPECT_EQ(Evaluate("ts = 'not a time'", *batch).cells, (CellTexts{"NULL", "NULL", "NULL"}));
}

TEST(Logic, KleeneTruthTables) {
  // Every pair of (TRUE, FALSE, NULL).
  auto batch = MakeBatch({BoolColumn("a", {true, true, true, false, false, false, std::nullopt, std::nullopt, std::nullopt}),
                          BoolColumn("b", {true, false, std::nullopt, true, false, std::nullopt, true, false, std::nullopt})});
  EXPECT_EQ(Evaluate("a AND b", *batch).cells,
            (CellTexts{"true", "false", "NULL", "false", "false", "false", "NULL", "false", "NULL"}));
  EXPECT_EQ(Evaluate("a OR b", *batch).cells,
            (CellTexts{"true", "true", "true", "true", "false", "NULL", "true", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("NOT a", *batch).cells,
            (CellTexts{"false", "false", "false", "true", "true", "true", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("a AND NULL", *batch).cells,
            (CellTexts{"NULL", "NULL", "NULL", "false", "false", "false", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("a OR TRUE", *batch).cells,
            (CellTexts{"true", "true", "true", "true", "true", "true", "true", "true", "true"}));
  EXPECT_EQ(Evaluate("!a", *batch).cells,
            (CellTexts{"false", "false", "false", "true", "true", "true", "NULL", "NULL", "NULL"}));
}

TEST(Logic, PrecedenceNotAndOr) {
  EXPECT_EQ(EvaluateConstant("TRUE OR FALSE AND FALSE"), "true");
  EXPECT_EQ(EvaluateConstant("NOT FALSE AND FALSE"), "false");
  EXPECT_EQ(EvaluateConstant("NOT 1 = 2"), "true");
  EXPECT_EQ(EvaluateConstant("1 < 2 AND 2 < 3"), "true");
}

TEST(Logic, IsNullAndIsNotNull) {
  auto batch = MakeBatch({StringColumn("s", {"a", std::nullopt, ""})});
  EXPECT_EQ(Evaluate("s IS NULL", *batch).cells, (CellTexts{"false", "true", "false"}));
  EXPECT_EQ(Evaluate("s IS NOT NULL", *batch).cells, (CellTexts{"true", "false", "true"}));
  EXPECT_EQ(Evaluate("isnull(s)", *batch).cells, (CellTexts{"false", "true", "false"}));
  EXPECT_EQ(Evaluate("NULL IS NULL", *batch).cells, (CellTexts{"true", "true", "true"}));
}

TEST(Conditionals, SearchedAndSimpleCase) {
  auto batch = MakeBatch({Int64Column("x", {-5, 0, 7, std::nullopt})});
  EXPECT_EQ(Evaluate("CASE WHEN x > 0 THEN 'pos' WHEN x < 0 THEN 'neg' ELSE 'zero' END", *batch).cells,
            (CellTexts{"neg", "zero", "pos", "zero"}));
  EXPECT_EQ(Evaluate("CASE WHEN x > 0 THEN 'pos' END", *batch).cells, (CellTexts{"NULL", "NULL", "pos", "NULL"}));
  EXPECT_EQ(Evaluate("CASE x WHEN 0 THEN 'zero' WHEN 7 THEN 'seven' ELSE 'other' END", *batch).cells,
            (CellTexts{"other", "zero", "seven", "other"}));
  // Branch types widen: BIGINT and DOUBLE give DOUBLE.
  auto widened = Evaluate("CASE WHEN x > 0 THEN x ELSE 0.5 END", *batch);
  EXPECT_EQ(widened.type, DataType::kFloat64);
  EXPECT_EQ(widened.cells, (CellTexts{"0.5", "0.5", "7.0", "0.5"}));
  EXPECT_EQ(Evaluate("case when x is null then -1 else x end", *batch).cells, (CellTexts{"-5", "0", "7", "-1"}));
  EXPECT_EQ(Evaluate("CASE WHEN x > 0 THEN NULL ELSE x END", *batch).cells, (CellTexts{"-5", "0", "NULL", "NULL"}));
}

TEST(Conditionals, CoalesceIfNullif) {
  auto batch = MakeBatch({StringColumn("a", {"x", std::nullopt, std::nullopt}), StringColumn("b", {"y", "z", std::nullopt})});
  EXPECT_EQ(Evaluate("coalesce(a, b)", *batch).cells, (CellTexts{"x", "z", "NULL"}));
  EXPECT_EQ(Evaluate("coalesce(a, b, 'none')", *batch).cells, (CellTexts{"x", "z", "none"}));
  EXPECT_EQ(Evaluate("nvl(a, 'd')", *batch).cells, (CellTexts{"x", "d", "d"}));
  EXPECT_EQ(Evaluate("if(a IS NULL, 'missing', a)", *batch).cells, (CellTexts{"x", "missing", "missing"}));
  EXPECT_EQ(Evaluate("IF(b = 'z', 1, 2)", *batch).cells, (CellTexts{"2", "1", "2"}));
  EXPECT_EQ(Evaluate("nullif(b, 'z')", *batch).cells, (CellTexts{"y", "NULL", "NULL"}));
  auto ints = MakeBatch({Int64Column("n", {std::nullopt, 4})});
  EXPECT_EQ(Evaluate("coalesce(n, 1.5)", *ints).cells, (CellTexts{"1.5", "4.0"}));
}

TEST(Predicates, InBetweenLike) {
  auto batch = MakeBatch({Int64Column("n", {1, 5, 10, std::nullopt}), StringColumn("s", {"apple", "banana", "a_b", std::nullopt})});
  EXPECT_EQ(Evaluate("n IN (1, 10)", *batch).cells, (CellTexts{"true", "false", "true", "NULL"}));
  EXPECT_EQ(Evaluate("n NOT IN (1, 10)", *batch).cells, (CellTexts{"false", "true", "false", "NULL"}));
  // A NULL in the list makes a non-match unknown.
  EXPECT_EQ(Evaluate("n IN (1, NULL)", *batch).cells, (CellTexts{"true", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("n NOT IN (1, NULL)", *batch).cells, (CellTexts{"false", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("n IN (n + 0, 3)", *batch).cells, (CellTexts{"true", "true", "true", "NULL"}));
  EXPECT_EQ(Evaluate("s IN ('apple', 'kiwi')", *batch).cells, (CellTexts{"true", "false", "false", "NULL"}));
  EXPECT_EQ(Evaluate("n BETWEEN 2 AND 10", *batch).cells, (CellTexts{"false", "true", "true", "NULL"}));
  EXPECT_EQ(Evaluate("n NOT BETWEEN 2 AND 10", *batch).cells, (CellTexts{"true", "false", "false", "NULL"}));
  EXPECT_EQ(Evaluate("s LIKE 'a%'", *batch).cells, (CellTexts{"true", "false", "true", "NULL"}));
  EXPECT_EQ(Evaluate("s LIKE '%na'", *batch).cells, (CellTexts{"false", "true", "false", "NULL"}));
  EXPECT_EQ(Evaluate("s LIKE '%pl%'", *batch).cells, (CellTexts{"true", "false", "false", "NULL"}));
  EXPECT_EQ(Evaluate("s LIKE 'b_n%a'", *batch).cells, (CellTexts{"false", "true", "false", "NULL"}));
  EXPECT_EQ(Evaluate("s LIKE 'apple'", *batch).cells, (CellTexts{"true", "false", "false", "NULL"}));
  EXPECT_EQ(Evaluate("s LIKE 'a\\_b'", *batch).cells, (CellTexts{"false", "false", "true", "NULL"}));
  EXPECT_EQ(Evaluate("s LIKE '%'", *batch).cells, (CellTexts{"true", "true", "true", "NULL"}));
  EXPECT_EQ(Evaluate("s NOT LIKE 'a%'", *batch).cells, (CellTexts{"false", "true", "false", "NULL"}));
  EXPECT_EQ(Evaluate("s LIKE 'A%'", *batch).cells, (CellTexts{"false", "false", "false", "NULL"}));
  EXPECT_EQ(Evaluate("s RLIKE '^b.n'", *batch).cells, (CellTexts{"false", "true", "false", "NULL"}));
  EXPECT_EQ(Evaluate("rlike(s, 'p{2}')", *batch).cells, (CellTexts{"true", "false", "false", "NULL"}));
}

TEST(Cast, NumbersBooleansStrings) {
  EXPECT_EQ(EvaluateConstant("CAST('12' AS INT)"), "12");
  EXPECT_EQ(EvaluateConstant("CAST(' 12 ' AS BIGINT)"), "12");
  EXPECT_EQ(EvaluateConstant("CAST('12.9' AS BIGINT)"), "12");
  EXPECT_EQ(EvaluateConstant("CAST('-12.9' AS BIGINT)"), "-12");
  EXPECT_EQ(EvaluateConstant("CAST('abc' AS INT)"), "NULL");
  EXPECT_EQ(EvaluateConstant("CAST('99999999999999999999' AS BIGINT)"), "NULL");
  EXPECT_EQ(EvaluateConstant("CAST('1.5e2' AS DOUBLE)"), "150.0");
  EXPECT_EQ(EvaluateConstant("CAST('NaN' AS DOUBLE)"), "NaN");
  EXPECT_EQ(EvaluateConstant("CAST('-Infinity' AS DOUBLE)"), "-Infinity");
  EXPECT_EQ(EvaluateConstant("CAST('x1' AS DOUBLE)"), "NULL");
  EXPECT_EQ(EvaluateConstant("CAST(3.99 AS BIGINT)"), "3");
  EXPECT_EQ(EvaluateConstant("CAST(-3.99 AS BIGINT)"), "-3");
  EXPECT_EQ(EvaluateConstant("CAST(1e30 AS BIGINT)"), "9223372036854775807");
  EXPECT_EQ(EvaluateConstant("CAST(7 AS DOUBLE)"), "7.0");
  EXPECT_EQ(EvaluateConstant("CAST(7 AS STRING)"), "7");
  EXPECT_EQ(EvaluateConstant("CAST(0.1 AS STRING)"), "0.1");
  EXPECT_EQ(EvaluateConstant("CAST(TRUE AS STRING)"), "true");
  EXPECT_EQ(EvaluateConstant("CAST(TRUE AS BIGINT)"), "1");
  EXPECT_EQ(EvaluateConstant("CAST(0 AS BOOLEAN)"), "false");
  EXPECT_EQ(EvaluateConstant("CAST(2.5 AS BOOLEAN)"), "true");
  EXPECT_EQ(EvaluateConstant("CAST('yes' AS BOOLEAN)"), "true");
  EXPECT_EQ(EvaluateConstant("CAST('F' AS BOOLEAN)"), "false");
  EXPECT_EQ(EvaluateConstant("CAST('maybe' AS BOOLEAN)"), "NULL");
  EXPECT_EQ(EvaluateConstant("CAST(NULL AS BIGINT)"), "NULL");
  EXPECT_EQ(EvaluateConstant("CAST('abc' AS BINARY)"), "YWJj");
  EXPECT_EQ(EvaluateConstant("CAST(CAST('abc' AS BINARY) AS STRING)"), "abc");
}

TEST(Cast, Timestamps) {
  EXPECT_EQ(EvaluateConstant("CAST(TIMESTAMP '1970-01-01 00:01:40' AS BIGINT)"), "100");
  EXPECT_EQ(EvaluateConstant("CAST(TIMESTAMP '1969-12-31 23:59:59.5' AS BIGINT)"), "-1");  // floor
  EXPECT_EQ(EvaluateConstant("CAST(TIMESTAMP '1970-01-01 00:00:01.5' AS DOUBLE)"), "1.5");
  EXPECT_EQ(EvaluateConstant("CAST(100 AS TIMESTAMP)"), "1970-01-01 00:01:40");
  EXPECT_EQ(EvaluateConstant("CAST(1.5 AS TIMESTAMP)"), "1970-01-01 00:00:01.5");
  EXPECT_EQ(EvaluateConstant("CAST('2024-02-29T10:00:00Z' AS TIMESTAMP)"), "2024-02-29 10:00:00");
  EXPECT_EQ(EvaluateConstant("CAST('2024-13-01' AS TIMESTAMP)"), "NULL");
  EXPECT_EQ(EvaluateConstant("CAST(TIMESTAMP '2024-05-01 12:00:00.000123' AS STRING)"), "2024-05-01 12:00:00.000123");
  EXPECT_EQ(EvaluateConstant("CAST(TIMESTAMP '1960-05-01 12:00:00.5' AS STRING)"), "1960-05-01 12:00:00.5");
}

TEST(Cast, ColumnsKeepNulls) {
  auto batch = MakeBatch({StringColumn("s", {"1", std::nullopt, "x", "-4"}), Float64Column("d", {1.25, std::nullopt, 1e20, -0.5})});
  EXPECT_EQ(Evaluate("CAST(s AS BIGINT)", *batch).cells, (CellTexts{"1", "NULL", "NULL", "-4"}));
  EXPECT_EQ(Evaluate("cast(d as string)", *batch).cells, (CellTexts{"1.25", "NULL", "1e+20", "-0.5"}));
  EXPECT_EQ(Evaluate("cast(d as int)", *batch).cells, (CellTexts{"1", "NULL", "9223372036854775807", "0"}));
}

}  // namespace
}  // namespace sluice::expr
