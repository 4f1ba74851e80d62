// Every parse and bind error: its message and the 0-based offset it points at.
#include <gtest/gtest.h>

#include "expr/expr_test_util.h"

namespace sluice::expr {
namespace {

const Schema& TestSchema() {
  static const Schema schema({Field{"a", DataType::kInt64, true}, Field{"s", DataType::kString, true},
                              Field{"f", DataType::kBool, true}});
  return schema;
}

struct ErrorCase {
  const char* text;
  size_t offset;
  const char* message;
};

class CompileErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(CompileErrors, MessageAndOffset) {
  const ErrorCase& c = GetParam();
  ExprError error = testing::CompileError(c.text, TestSchema());
  EXPECT_EQ(error.message, c.message) << c.text;
  EXPECT_EQ(error.offset, c.offset) << c.text;
}

INSTANTIATE_TEST_SUITE_P(
    Parse, CompileErrors,
    ::testing::Values(
        ErrorCase{"lower(a FROM s", 8, "expected ')' but found 'FROM'"},
        ErrorCase{"a +", 3, "expected an expression but found end of input"},
        ErrorCase{"(a + 1", 6, "expected ')' but found end of input"},
        ErrorCase{"", 0, "expected an expression but found end of input"},
        ErrorCase{"1 2", 2, "expected end of expression but found '2'"},
        ErrorCase{"a = 1 FROM t", 6, "expected end of expression but found 'FROM'"},
        ErrorCase{"CASE a END", 7, "expected WHEN but found 'END'"},
        ErrorCase{"CASE WHEN f THEN 1", 18, "expected END but found end of input"},
        ErrorCase{"CAST(a BIGINT)", 7, "expected AS but found 'BIGINT'"},
        ErrorCase{"s IS NOT 5", 9, "expected NULL but found '5'"},
        ErrorCase{"a BETWEEN 1 OR 2", 12, "expected AND but found 'OR'"},
        ErrorCase{"from_json(s, 'a INT').", 22, "expected a field name after '.' but found end of input"},
        ErrorCase{"'abc", 0, "unterminated string literal"},
        ErrorCase{"`abc", 0, "unterminated back-quoted name"},
        ErrorCase{"a $ 1", 2, "unexpected character '$'"},
        ErrorCase{"12abc", 0, "malformed number '12abc'"},
        ErrorCase{"'\\u12'", 1, "expected four hex digits after \\u"}));

INSTANTIATE_TEST_SUITE_P(
    Bind, CompileErrors,
    ::testing::Values(
        ErrorCase{"nope + 1", 0, "unknown column 'nope'; available: a, s, f"},
        ErrorCase{"a + nope", 4, "unknown column 'nope'; available: a, s, f"},
        ErrorCase{"lower(a, s)", 0, "lower() takes 1 argument, got 2"},
        ErrorCase{"LOWER()", 0, "lower() takes 1 argument, got 0"},
        ErrorCase{"substr(s)", 0, "substr() takes 2 or 3 arguments, got 1"},
        ErrorCase{"coalesce()", 0, "coalesce() takes at least 1 argument, got 0"},
        ErrorCase{"a + f", 2, "cannot apply '+' to BIGINT and BOOLEAN"},
        ErrorCase{"-f", 0, "unary minus needs a number, got BOOLEAN"},
        ErrorCase{"NOT a", 4, "the operand of NOT must be BOOLEAN, got BIGINT"},
        ErrorCase{"a AND f", 0, "the left side of AND must be BOOLEAN, got BIGINT"},
        ErrorCase{"f OR s", 5, "the right side of OR must be BOOLEAN, got STRING"},
        ErrorCase{"CASE WHEN a THEN 1 END", 10, "a CASE WHEN condition must be BOOLEAN, got BIGINT"},
        ErrorCase{"CASE WHEN f THEN 1 ELSE f END", 24, "incompatible types BIGINT and BOOLEAN"},
        ErrorCase{"CAST(a AS FOO)", 10,
                  "unknown type 'FOO'; expected BOOLEAN, BIGINT, INT, DOUBLE, STRING, BINARY or TIMESTAMP"},
        ErrorCase{"CAST(f AS TIMESTAMP)", 10, "cannot cast BOOLEAN to TIMESTAMP"},
        ErrorCase{"TIMESTAMP '2024-13-45'", 10, "invalid TIMESTAMP literal '2024-13-45'; expected 'yyyy-MM-dd HH:mm:ss'"},
        ErrorCase{"a = f", 2, "cannot compare BIGINT with BOOLEAN using '='"},
        ErrorCase{"a IN (1, f)", 9, "cannot compare BIGINT with BOOLEAN in IN"},
        ErrorCase{"s LIKE s", 7, "the pattern of LIKE must be a constant string"},
        ErrorCase{"size(s)", 5, "size() argument 1 must be an array, got STRING"},
        ErrorCase{"a[0]", 1, "[ ] needs an array, got BIGINT"},
        ErrorCase{"split(s, ',')[s]", 14, "an array index must be BIGINT, got STRING"},
        ErrorCase{"a.b", 2, "cannot read field 'b' of BIGINT; only structs have fields"},
        ErrorCase{"substr(s, 'x')", 10, "substr() argument 2 must be BIGINT, got STRING"},
        ErrorCase{"lower(split(s, ','))", 6, "lower() argument 1 must be STRING, got ARRAY<STRING>"},
        ErrorCase{"abs(f)", 4, "abs() argument 1 must be numeric, got BOOLEAN"},
        ErrorCase{"if(a, 1, 2)", 3, "if() condition must be BOOLEAN, got BIGINT"},
        ErrorCase{"round(a, s)", 9, "the number of digits of round() must be a constant integer"},
        ErrorCase{"split(s, s)", 9, "the pattern of split() must be a constant string"},
        ErrorCase{"split(s, '(')", 9, "invalid regular expression '(': missing ): ("},
        ErrorCase{"regexp_extract(s, '(a)', 2)", 25, "regexp_extract group index 2 is out of range: the pattern has 1 group(s)"},
        ErrorCase{"get_json_object(s, 'a.b')", 19,
                  "unsupported JSON path 'a.b': expected '$' followed by .name, ['name'] or [index] steps"},
        ErrorCase{"to_timestamp(s, 'yyyy-QQ')", 16,
                  "unsupported datetime pattern letter 'Q' in 'yyyy-QQ'; supported: yyyy yy MM M dd d HH H mm m ss s SSS"},
        ErrorCase{"from_json(s, 'x INT').y", 22, "no field 'y' in STRUCT<x: BIGINT>; fields: x"},
        ErrorCase{"from_json(s, 'x FOO')", 13,
                  "from_json(): schema 'x FOO': unknown type 'FOO' for field 'x' at character 3; expected BOOLEAN, "
                  "BIGINT, INT, DOUBLE, STRING, BINARY or TIMESTAMP"},
        ErrorCase{"from_json(s, 'x INT')", 0,
                  "the expression is STRUCT<x: BIGINT>, which cannot be a column here; read a field with .name, or make "
                  "it a whole select item"},
        ErrorCase{"split(s, ',')", 0, "the expression is ARRAY<STRING>, which cannot be a column; use explode(), size() or [i]"},
        ErrorCase{"explode(split(s, ','))", 0,
                  "explode() is only allowed as a whole select item, as in \"explode(split(line, ' ')) AS word\""},
        ErrorCase{"lower(explode(split(s, ',')))", 6,
                  "explode() must be a whole select item, as in \"explode(split(line, ' ')) AS word\""}));

TEST(UnknownFunction, ListsTheFunctionsThatExist) {
  ExprError error = testing::CompileError("a + frobnicate(s)", TestSchema());
  EXPECT_EQ(error.offset, 4u);
  EXPECT_EQ(error.message,
            "unknown function 'frobnicate'; available: abs, cardinality, char_length, character_length, coalesce, "
            "concat, current_timestamp, explode, from_json, get_json_object, if, ifnull, isnotnull, isnull, lcase, "
            "length, lower, ltrim, now, nullif, nvl, regexp_extract, regexp_like, rlike, round, rtrim, size, split, "
            "substr, substring, to_timestamp, trim, ucase, upper");
}

TEST(ProjectionErrors, SecondGeneratorNamesItsItem) {
  ExprError error;
  size_t item = 0;
  auto p = Projection::Make({"a", "explode(split(s, ','))", "  explode(split(s, ';')) AS x"}, TestSchema(), &error, &item);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(item, 2u);
  EXPECT_EQ(error.offset, 2u);
  EXPECT_EQ(error.message, "only one generator (explode) is allowed per select; item 2 already has one");
}

TEST(ProjectionErrors, BadItemIsReportedWithItsIndex) {
  ExprError error;
  size_t item = 0;
  EXPECT_EQ(Projection::Make({"a", "s", "lower(q) AS x"}, TestSchema(), &error, &item), nullptr);
  EXPECT_EQ(item, 2u);
  EXPECT_EQ(error.offset, 6u);
  EXPECT_EQ(error.message, "unknown column 'q'; available: a, s, f");
  EXPECT_EQ(Projection::Make({"explode(s)"}, TestSchema(), &error, &item), nullptr);
  EXPECT_EQ(item, 0u);
  EXPECT_EQ(error.offset, 8u);
  EXPECT_EQ(error.message, "explode() argument 1 must be an array, got STRING");
  EXPECT_EQ(Projection::Make({"split(s, ',') AS parts"}, TestSchema(), &error, &item), nullptr);
  EXPECT_EQ(error.message, "the expression is ARRAY<STRING>, which cannot be a column; use explode(), size() or [i]");
  EXPECT_EQ(Projection::Make({"a AS"}, TestSchema(), &error, &item), nullptr);
  EXPECT_EQ(error.offset, 4u);
  EXPECT_EQ(error.message, "expected an alias name but found end of input");
}

TEST(PredicateErrors, WhereMustBeBoolean) {
  ExprError error;
  EXPECT_EQ(Predicate::Make("a + 1", TestSchema(), &error), nullptr);
  EXPECT_EQ(error.offset, 0u);
  EXPECT_EQ(error.message, "a where condition must be BOOLEAN, got BIGINT");
  EXPECT_EQ(Predicate::Make("  lower(s)", TestSchema(), &error), nullptr);
  EXPECT_EQ(error.offset, 2u);
  EXPECT_EQ(error.message, "a where condition must be BOOLEAN, got STRING");
  EXPECT_EQ(Predicate::Make("f AND", TestSchema(), &error), nullptr);
  EXPECT_EQ(error.offset, 5u);
  EXPECT_EQ(error.message, "expected an expression but found end of input");
}

}  // namespace
}  // namespace sluice::expr
