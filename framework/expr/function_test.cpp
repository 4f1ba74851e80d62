// Built-in functions with Spark's semantics, including NULLs and edge cases.
#include <gtest/gtest.h>

#include "expr/expr_test_util.h"

namespace sluice::expr {
namespace {

using testing::CellTexts;
using testing::Evaluate;
using testing::EvaluateConstant;
using testing::Float64Column;
using testing::Int64Column;
using testing::MakeBatch;
using testing::StringColumn;

TEST(StringFunctions, LowerUpperAreUtf8Aware) {
  auto batch = MakeBatch({StringColumn("s", {"HeLLo", "\xC3\x89" "cole", "\xCE\x91\xCE\x92\xCE\x93", "\xD0\xBF\xD1\x80\xD0\xB8", std::nullopt, ""})});
  EXPECT_EQ(Evaluate("lower(s)", *batch).cells,
            (CellTexts{"hello", "\xC3\xA9" "cole", "\xCE\xB1\xCE\xB2\xCE\xB3", "\xD0\xBF\xD1\x80\xD0\xB8", "NULL", ""}));
  EXPECT_EQ(Evaluate("UPPER(s)", *batch).cells,
            (CellTexts{"HELLO", "\xC3\x89" "COLE", "\xCE\x91\xCE\x92\xCE\x93", "\xD0\x9F\xD0\xA0\xD0\x98", "NULL", ""}));
  EXPECT_EQ(Evaluate("lcase(s)", *batch).cells[0], "hello");
  EXPECT_EQ(EvaluateConstant("upper(12)"), "12");  // numbers are cast to STRING as in Spark
}

TEST(StringFunctions, LengthCountsCharacters) {
  auto batch = MakeBatch({StringColumn("s", {"h\xC3\xA9llo", "", "\xE6\x97\xA5\xE6\x9C\xAC", std::nullopt})});
  EXPECT_EQ(Evaluate("length(s)", *batch).cells, (CellTexts{"5", "0", "2", "NULL"}));
  EXPECT_EQ(Evaluate("char_length(s)", *batch).type, DataType::kInt64);
  EXPECT_EQ(EvaluateConstant("length(CAST('h\xC3\xA9' AS BINARY))"), "3");  // bytes for BINARY
}

TEST(StringFunctions, SubstringLikeSpark) {
  EXPECT_EQ(EvaluateConstant("substr('Spark SQL', 5)"), "k SQL");
  EXPECT_EQ(EvaluateConstant("substr('Spark SQL', -3)"), "SQL");
  EXPECT_EQ(EvaluateConstant("substring('Spark SQL', 5, 1)"), "k");
  EXPECT_EQ(EvaluateConstant("substr('Spark SQL', 0, 3)"), "Spa");
  EXPECT_EQ(EvaluateConstant("substr('Spark SQL', 1, 3)"), "Spa");
  EXPECT_EQ(EvaluateConstant("substr('Spark SQL', -3, 2)"), "SQ");
  EXPECT_EQ(EvaluateConstant("substr('Spark', 10)"), "");
  EXPECT_EQ(EvaluateConstant("substr('Spark', 2, -1)"), "");
  EXPECT_EQ(EvaluateConstant("substr('abc', -5, 3)"), "a");
  EXPECT_EQ(EvaluateConstant("substr('h\xC3\xA9llo', 2, 3)"), "\xC3\xA9ll");
  EXPECT_EQ(EvaluateConstant("substr('h\xC3\xA9llo', -2)"), "lo");
  EXPECT_EQ(EvaluateConstant("substr(NULL, 1)"), "NULL");
  EXPECT_EQ(EvaluateConstant("substr('abc', NULL)"), "NULL");
  auto batch = MakeBatch({StringColumn("s", {"abcdef", "xy", std::nullopt}), Int64Column("p", {2, -1, 1}), Int64Column("n", {3, std::nullopt, 1})});
  EXPECT_EQ(Evaluate("substr(s, p, n)", *batch).cells, (CellTexts{"bcd", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("substr(s, p)", *batch).cells, (CellTexts{"bcdef", "y", "NULL"}));
}

TEST(StringFunctions, ConcatIsNullIfAnyArgumentIsNull) {
  auto batch = MakeBatch({StringColumn("a", {"x", std::nullopt, "z"}), Int64Column("n", {1, 2, std::nullopt})});
  EXPECT_EQ(Evaluate("concat(a, '-', n)", *batch).cells, (CellTexts{"x-1", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("concat(a)", *batch).cells, (CellTexts{"x", "NULL", "z"}));
  EXPECT_EQ(Evaluate("a || '!'", *batch).cells, (CellTexts{"x!", "NULL", "z!"}));
  EXPECT_EQ(EvaluateConstant("concat()"), "");
  EXPECT_EQ(EvaluateConstant("concat('a', NULL)"), "NULL");
  EXPECT_EQ(EvaluateConstant("concat('a', 1.5, TRUE)"), "a1.5true");
}

TEST(StringFunctions, TrimRemovesSpacesOnly) {
  auto batch = MakeBatch({StringColumn("s", {"  a b  ", "\tx\t", "   ", std::nullopt})});
  EXPECT_EQ(Evaluate("trim(s)", *batch).cells, (CellTexts{"a b", "\tx\t", "", "NULL"}));
  EXPECT_EQ(Evaluate("ltrim(s)", *batch).cells, (CellTexts{"a b  ", "\tx\t", "", "NULL"}));
  EXPECT_EQ(Evaluate("rtrim(s)", *batch).cells, (CellTexts{"  a b", "\tx\t", "", "NULL"}));
}

TEST(Arrays, SplitSizeAndIndex) {
  auto batch = MakeBatch({StringColumn("s", {"a,b,,c,,", "", "solo", std::nullopt, ",lead"})});
  // Trailing empty strings are kept (Spark's limit -1), an empty string gives [""].
  EXPECT_EQ(Evaluate("size(split(s, ','))", *batch).cells, (CellTexts{"6", "1", "1", "-1", "2"}));
  EXPECT_EQ(Evaluate("split(s, ',')[0]", *batch).cells, (CellTexts{"a", "", "solo", "NULL", ""}));
  EXPECT_EQ(Evaluate("split(s, ',')[3]", *batch).cells, (CellTexts{"c", "NULL", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("split(s, ',')[-1]", *batch).cells, (CellTexts{"NULL", "NULL", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("split(s, ',')[NULL]", *batch).cells, (CellTexts{"NULL", "NULL", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("split(s, ',')[1]", *batch).cells, (CellTexts{"b", "NULL", "NULL", "NULL", "lead"}));
}

TEST(Arrays, SplitWithRegexLimitAndEscapes) {
  EXPECT_EQ(EvaluateConstant("size(split('a1b22c', '[0-9]+'))"), "3");
  EXPECT_EQ(EvaluateConstant("split('a1b22c', '[0-9]+')[2]"), "c");
  EXPECT_EQ(EvaluateConstant("split('a1b22c3', '[0-9]+')[3]"), "");
  EXPECT_EQ(EvaluateConstant("size(split('a,b,c', ',', 2))"), "2");
  EXPECT_EQ(EvaluateConstant("split('a,b,c', ',', 2)[1]"), "b,c");
  EXPECT_EQ(EvaluateConstant("split('a,b,c', ',', 1)[0]"), "a,b,c");
  EXPECT_EQ(EvaluateConstant("size(split('a,b,c', ',', 0))"), "3");
  EXPECT_EQ(EvaluateConstant("split('a|b', '\\\\|')[1]"), "b");  // the regex \| is a literal |
  EXPECT_EQ(EvaluateConstant("split('a.b', '[.]')[1]"), "b");
  EXPECT_EQ(EvaluateConstant("split('one  two', '\\\\s+')[1]"), "two");
  EXPECT_EQ(EvaluateConstant("size(split('x', 'y'))"), "1");
  // The empty pattern splits into characters, without a trailing "".
  EXPECT_EQ(EvaluateConstant("size(split('abc', ''))"), "3");
  EXPECT_EQ(EvaluateConstant("split('h\xC3\xA9!', '')[1]"), "\xC3\xA9");
  EXPECT_EQ(EvaluateConstant("split('abc', '', 2)[1]"), "bc");
}

TEST(Arrays, SplitByteSetPatternsMatchTheRegexEngine) {
  // Simple patterns take a byte-scanning path; wrapping them in a group forces
  // the regex engine. Both must agree element for element.
  auto batch = MakeBatch({StringColumn("s", {"a, b;;c", "  lead  and trail  ", "x1y22z333", "", "no-separators",
                                             "tab\tand\nnewline", "a-b-c", ",;,"})});
  ExprError error;
  for (std::string pattern : {",", "[,;]", "[,;]+", " +", "\\\\s+", "\\\\s", "\\\\d+", "[0-9]", "[a-c]+", "\\\\-", "-", "[-;]", "\\\\w+"}) {
    for (int limit : {-1, 2}) {
      auto fast = Projection::Make({"explode(split(s, '" + pattern + "', " + std::to_string(limit) + "))"}, *batch->schema(), &error, nullptr);
      auto slow = Projection::Make({"explode(split(s, '(?:" + pattern + ")', " + std::to_string(limit) + "))"}, *batch->schema(), &error, nullptr);
      ASSERT_NE(fast, nullptr) << pattern << ": " << error.message;
      ASSERT_NE(slow, nullptr) << pattern << ": " << error.message;
      auto fast_rows = testing::Cells(fast->Apply(*batch, EvalContext{}).value()->column(0));
      auto slow_rows = testing::Cells(slow->Apply(*batch, EvalContext{}).value()->column(0));
      EXPECT_EQ(fast_rows, slow_rows) << pattern << " limit " << limit;
    }
  }
  EXPECT_EQ(EvaluateConstant("size(split('  a  b ', ' +'))"), "4");  // "", "a", "b", ""
  EXPECT_EQ(EvaluateConstant("split('a;b,c', '[,;]')[2]"), "c");
  EXPECT_EQ(EvaluateConstant("split('a\\tb c', '\\\\s')[1]"), "b");
}

TEST(Regex, RegexpExtract) {
  auto batch = MakeBatch({StringColumn("s", {"100-200", "no digits", std::nullopt, "x7-8y"})});
  EXPECT_EQ(Evaluate("regexp_extract(s, '(\\\\d+)-(\\\\d+)', 1)", *batch).cells, (CellTexts{"100", "", "NULL", "7"}));
  EXPECT_EQ(Evaluate("regexp_extract(s, '(\\\\d+)-(\\\\d+)', 2)", *batch).cells, (CellTexts{"200", "", "NULL", "8"}));
  EXPECT_EQ(Evaluate("regexp_extract(s, '(\\\\d+)-(\\\\d+)', 0)", *batch).cells, (CellTexts{"100-200", "", "NULL", "7-8"}));
  EXPECT_EQ(Evaluate("regexp_extract(s, '([a-z]+)')", *batch).cells, (CellTexts{"", "no", "NULL", "x"}));
  // A group that takes no part in the match gives ''.
  EXPECT_EQ(EvaluateConstant("regexp_extract('ab', '(a)|(b)', 2)"), "");
}

TEST(Json, GetJsonObject) {
  auto batch = MakeBatch({StringColumn(
      "j", {"{\"a\":{\"b\":[10,{\"c\":\"x\"}]},\"s\":\"str\",\"n\":null,\"f\":1.5,\"t\":true}", "not json", std::nullopt})});
  EXPECT_EQ(Evaluate("get_json_object(j, '$.a.b[0]')", *batch).cells, (CellTexts{"10", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$.a.b[1]')", *batch).cells, (CellTexts{"{\"c\":\"x\"}", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$.a')", *batch).cells, (CellTexts{"{\"b\":[10,{\"c\":\"x\"}]}", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$.a.b[1].c')", *batch).cells, (CellTexts{"x", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$.s')", *batch).cells, (CellTexts{"str", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$[''s'']')", *batch).cells, (CellTexts{"str", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$.n')", *batch).cells, (CellTexts{"NULL", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$.missing')", *batch).cells, (CellTexts{"NULL", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$.a.b[5]')", *batch).cells, (CellTexts{"NULL", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$.f')", *batch).cells, (CellTexts{"1.5", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$.t')", *batch).cells, (CellTexts{"true", "NULL", "NULL"}));
  EXPECT_EQ(Evaluate("get_json_object(j, '$')", *batch).cells[1], "NULL");
}

TEST(Json, FromJsonFieldsArePermissive) {
  auto batch = MakeBatch({StringColumn("j", {"{\"a\": 1, \"b\": \"x\", \"c\": 2.5, \"t\": \"2024-01-01T00:00:00Z\", \"ok\": true}",
                                              "{\"a\": \"one\", \"b\": 7, \"c\": 3, \"t\": 86400, \"ok\": 1}",
                                              "{broken", std::nullopt, "[1, 2]", "{\"b\": {\"k\": [1, 2]}}"})});
  const char* schema = "'a INT, b STRING, c DOUBLE, t TIMESTAMP, ok BOOLEAN'";
  auto field = [&](const std::string& name) {
    return Evaluate("from_json(j, " + std::string(schema) + ")." + name, *batch).cells;
  };
  // Wrong JSON types give NULL; non-string values read into STRING keep their JSON text.
  EXPECT_EQ(field("a"), (CellTexts{"1", "NULL", "NULL", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(field("b"), (CellTexts{"x", "7", "NULL", "NULL", "NULL", "{\"k\":[1,2]}"}));
  EXPECT_EQ(field("c"), (CellTexts{"2.5", "3.0", "NULL", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(field("t"), (CellTexts{"2024-01-01 00:00:00", "1970-01-02 00:00:00", "NULL", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(field("ok"), (CellTexts{"true", "NULL", "NULL", "NULL", "NULL", "NULL"}));
  EXPECT_EQ(field("A"), field("a"));  // field names resolve case-insensitively
  EXPECT_EQ(Evaluate("from_json(j, 'a BIGINT').a + 1", *batch).cells, (CellTexts{"2", "NULL", "NULL", "NULL", "NULL", "NULL"}));
}

TEST(Time, ToTimestamp) {
  EXPECT_EQ(EvaluateConstant("to_timestamp('2024-01-02 03:04:05')"), "2024-01-02 03:04:05");
  EXPECT_EQ(EvaluateConstant("to_timestamp('2024-01-02')"), "2024-01-02 00:00:00");
  EXPECT_EQ(EvaluateConstant("to_timestamp('garbage')"), "NULL");
  EXPECT_EQ(EvaluateConstant("to_timestamp('02/01/2024 03:04', 'dd/MM/yyyy HH:mm')"), "2024-01-02 03:04:00");
  EXPECT_EQ(EvaluateConstant("to_timestamp('2024-01-02 03:04:05.123', 'yyyy-MM-dd HH:mm:ss.SSS')"), "2024-01-02 03:04:05.123");
  EXPECT_EQ(EvaluateConstant("to_timestamp('2024-01-02T03:04:05', 'yyyy-MM-dd''T''HH:mm:ss')"), "2024-01-02 03:04:05");
  EXPECT_EQ(EvaluateConstant("to_timestamp('2024-1-2', 'yyyy-M-d')"), "2024-01-02 00:00:00");
  EXPECT_EQ(EvaluateConstant("to_timestamp('24-01-02', 'yy-MM-dd')"), "2024-01-02 00:00:00");
  EXPECT_EQ(EvaluateConstant("to_timestamp('2024-02-30', 'yyyy-MM-dd')"), "NULL");
  EXPECT_EQ(EvaluateConstant("to_timestamp('2024-02-29', 'yyyy-MM-dd')"), "2024-02-29 00:00:00");
  EXPECT_EQ(EvaluateConstant("to_timestamp('2024-01-02 extra', 'yyyy-MM-dd')"), "NULL");
  EXPECT_EQ(EvaluateConstant("to_timestamp('2024/01/02', 'yyyy-MM-dd')"), "NULL");
  EXPECT_EQ(EvaluateConstant("to_timestamp(0)"), "1970-01-01 00:00:00");
  EXPECT_EQ(EvaluateConstant("to_timestamp(86400)"), "1970-01-02 00:00:00");
  EXPECT_EQ(EvaluateConstant("to_timestamp(1.5)"), "1970-01-01 00:00:01.5");
  EXPECT_EQ(EvaluateConstant("to_timestamp(NULL)"), "NULL");
  auto batch = MakeBatch({StringColumn("s", {"2024-03-04 05:06:07", std::nullopt, "x"})});
  EXPECT_EQ(Evaluate("to_timestamp(s, 'yyyy-MM-dd HH:mm:ss')", *batch).cells, (CellTexts{"2024-03-04 05:06:07", "NULL", "NULL"}));
}

TEST(Time, CurrentTimestampIsTheBatchTimestamp) {
  auto batch = testing::RowsOnly(2);
  const int64_t now = 1714564800000000;  // 2024-05-01 12:00:00
  EXPECT_EQ(Evaluate("current_timestamp()", *batch, now).cells, (CellTexts{"2024-05-01 12:00:00", "2024-05-01 12:00:00"}));
  EXPECT_EQ(Evaluate("current_timestamp", *batch, now).cells, (CellTexts{"2024-05-01 12:00:00", "2024-05-01 12:00:00"}));
  EXPECT_EQ(Evaluate("now() > TIMESTAMP '2024-05-01 11:59:59'", *batch, now).cells, (CellTexts{"true", "true"}));
  EXPECT_EQ(Evaluate("CAST(current_timestamp() AS BIGINT)", *batch, now + 1000000).cells, (CellTexts{"1714564801", "1714564801"}));
}

TEST(Math, AbsAndRound) {
  auto batch = MakeBatch({Int64Column("i", {-3, 4, std::nullopt}), Float64Column("d", {-2.5, 2.5, 1.005})});
  EXPECT_EQ(Evaluate("abs(i)", *batch).cells, (CellTexts{"3", "4", "NULL"}));
  EXPECT_EQ(Evaluate("abs(d)", *batch).cells, (CellTexts{"2.5", "2.5", "1.005"}));
  // HALF_UP on the decimal value, as Spark's round.
  EXPECT_EQ(Evaluate("round(d)", *batch).cells, (CellTexts{"-3.0", "3.0", "1.0"}));
  EXPECT_EQ(Evaluate("round(d, 2)", *batch).cells, (CellTexts{"-2.5", "2.5", "1.01"}));
  EXPECT_EQ(Evaluate("round(i)", *batch).cells, (CellTexts{"-3", "4", "NULL"}));
  EXPECT_EQ(EvaluateConstant("round(3.14159, 3)"), "3.142");
  EXPECT_EQ(EvaluateConstant("round(0.125, 2)"), "0.13");
  EXPECT_EQ(EvaluateConstant("round(9.995, 2)"), "10.0");
  EXPECT_EQ(EvaluateConstant("round(0.0004, 2)"), "0.0");
  EXPECT_EQ(EvaluateConstant("round(1234.5, -2)"), "1200.0");
  EXPECT_EQ(EvaluateConstant("round(1250, -2)"), "1300");
  EXPECT_EQ(EvaluateConstant("round(-1250, -2)"), "-1300");
  EXPECT_EQ(EvaluateConstant("round(1249, -2)"), "1200");
  EXPECT_EQ(EvaluateConstant("abs('-1.5')"), "1.5");
}

}  // namespace
}  // namespace sluice::expr

namespace sluice::expr {
namespace {

TEST(EdgeCases, EmptyBatchGivesEmptyColumns) {
  auto batch = testing::MakeBatch({testing::Int64Column("n", {}), testing::StringColumn("s", {})});
  for (const char* text : {"n + 1", "n / 2", "lower(s)", "concat(s, n)", "CASE WHEN n > 0 THEN s END", "coalesce(s, 'x')",
                           "size(split(s, ','))", "from_json(s, 'a INT').a", "s LIKE 'a%'", "n IN (1, 2)", "NOT (n = 1)",
                           "'lit'", "current_timestamp()", "substr(s, 1, 2)", "get_json_object(s, '$.a')"}) {
    auto e = testing::Evaluate(text, *batch);
    EXPECT_EQ(e.error, "") << text;
    EXPECT_TRUE(e.cells.empty()) << text;
  }
  ExprError error;
  size_t item;
  auto p = Projection::Make({"n", "explode(split(s, ' '))"}, *batch->schema(), &error, &item);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->Apply(*batch, EvalContext{}).value()->num_rows(), 0);
}

TEST(EdgeCases, FunctionAliasesAndNullArguments) {
  auto batch = testing::MakeBatch({testing::StringColumn("s", {"Ab", std::nullopt})});
  EXPECT_EQ(testing::Evaluate("ucase(s)", *batch).cells, (testing::CellTexts{"AB", "NULL"}));
  EXPECT_EQ(testing::Evaluate("character_length(s)", *batch).cells, (testing::CellTexts{"2", "NULL"}));
  EXPECT_EQ(testing::Evaluate("ifnull(s, '-')", *batch).cells, (testing::CellTexts{"Ab", "-"}));
  EXPECT_EQ(testing::Evaluate("isnotnull(s)", *batch).cells, (testing::CellTexts{"true", "false"}));
  EXPECT_EQ(testing::Evaluate("regexp_like(s, '^A')", *batch).cells, (testing::CellTexts{"true", "NULL"}));
  EXPECT_EQ(testing::Evaluate("cardinality(split(s, ''))", *batch).cells, (testing::CellTexts{"2", "-1"}));
  EXPECT_EQ(testing::Evaluate("s IN ('Ab', NULL)", *batch).cells, (testing::CellTexts{"true", "NULL"}));
  EXPECT_EQ(testing::Evaluate("s LIKE NULL", *batch).cells, (testing::CellTexts{"NULL", "NULL"}));
  EXPECT_EQ(testing::Evaluate("CASE WHEN s IS NULL THEN NULL END", *batch).cells, (testing::CellTexts{"NULL", "NULL"}));
  EXPECT_EQ(testing::Evaluate("lower(NULL)", *batch).cells, (testing::CellTexts{"NULL", "NULL"}));
  EXPECT_EQ(testing::Evaluate("split(NULL, ',')[0]", *batch).cells, (testing::CellTexts{"NULL", "NULL"}));
  EXPECT_EQ(testing::Evaluate("from_json(NULL, 'a INT').a", *batch).cells, (testing::CellTexts{"NULL", "NULL"}));
}

TEST(EdgeCases, DottedColumnNamesAndComments) {
  auto batch = testing::MakeBatch({testing::Int64Column("a.b", {1}), testing::Int64Column("current_timestamp", {5})});
  EXPECT_EQ(testing::Evaluate("a.b + 1", *batch).cells, (testing::CellTexts{"2"}));
  EXPECT_EQ(testing::Evaluate("`a.b`", *batch).cells, (testing::CellTexts{"1"}));
  // A column named like a function without parentheses wins, as in Spark.
  EXPECT_EQ(testing::Evaluate("current_timestamp", *batch).cells, (testing::CellTexts{"5"}));
  EXPECT_EQ(testing::Evaluate("a.b -- the count\n * 3", *batch).cells, (testing::CellTexts{"3"}));
}

}  // namespace
}  // namespace sluice::expr
