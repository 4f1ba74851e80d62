#include <gtest/gtest.h>

#include "sluice/record_batch.h"

namespace sluice {
namespace {

TEST(ColumnBuilder, Int64WithNullsBuildsArrowValidityBitmap) {
  ColumnBuilder b(DataType::kInt64);
  b.AppendInt64(7);
  b.AppendNull();
  b.AppendInt64(-3);
  for (int i = 0; i < 8; ++i) b.AppendInt64(i);
  auto c = b.Finish();
  ASSERT_EQ(c->length(), 11);
  EXPECT_EQ(c->null_count(), 1);
  EXPECT_TRUE(c->is_valid(0));
  EXPECT_TRUE(c->is_null(1));
  EXPECT_TRUE(c->is_valid(2));
  EXPECT_TRUE(c->is_valid(10));
  EXPECT_EQ(c->int64_at(0), 7);
  EXPECT_EQ(c->int64_at(1), 0);  // builders zero the slot under a null
  EXPECT_EQ(c->int64_at(2), -3);
  EXPECT_EQ(c->int64_at(10), 7);
  ASSERT_NE(c->validity_bitmap(), nullptr);
  EXPECT_EQ(c->validity_bitmap()[0], 0xFD);  // bits LSB first: row 1 cleared
  EXPECT_EQ(c->validity_bitmap()[1] & 0x07, 0x07);
}

TEST(ColumnBuilder, NoNullsMeansNoBitmap) {
  ColumnBuilder b(DataType::kFloat64);
  b.AppendFloat64(1.5);
  b.AppendFloat64(-0.25);
  auto c = b.Finish();
  EXPECT_EQ(c->validity_bitmap(), nullptr);
  EXPECT_EQ(c->null_count(), 0);
  EXPECT_EQ(c->float64_at(1), -0.25);
}

TEST(ColumnBuilder, StringsUseOffsetsIntoOneBuffer) {
  ColumnBuilder b(DataType::kString);
  b.AppendString("ab");
  b.AppendNull();
  b.AppendString("");
  b.AppendString("xyz");
  auto c = b.Finish();
  ASSERT_EQ(c->length(), 4);
  const int32_t* o = c->offsets();
  EXPECT_EQ(std::vector<int32_t>(o, o + 5), (std::vector<int32_t>{0, 2, 2, 2, 5}));
  EXPECT_EQ(std::string(c->string_data(), 5), "abxyz");
  EXPECT_EQ(c->string_at(0), "ab");
  EXPECT_TRUE(c->is_null(1));
  EXPECT_EQ(c->string_at(2), "");
  EXPECT_EQ(c->string_at(3), "xyz");
}

TEST(ColumnBuilder, BuilderIsReusableAfterFinish) {
  ColumnBuilder b(DataType::kString);
  b.AppendString("first");
  auto a = b.Finish();
  b.AppendString("second");
  auto c = b.Finish();
  EXPECT_EQ(a->string_at(0), "first");
  EXPECT_EQ(c->length(), 1);
  EXPECT_EQ(c->string_at(0), "second");
}

TEST(RecordBatch, MakeRejectsMismatchedColumns) {
  auto schema = std::make_shared<const Schema>(std::vector<Field>{{"a", DataType::kInt64}, {"b", DataType::kString}});
  ColumnBuilder ints(DataType::kInt64);
  ints.AppendInt64(1);
  ColumnBuilder strs(DataType::kString);
  auto wrong_rows = RecordBatch::Make(schema, {ints.Finish(), strs.Finish()});
  ASSERT_FALSE(wrong_rows.ok());
  EXPECT_EQ(wrong_rows.status().message(), "column 'b' has 0 rows, expected 1");
  ColumnBuilder ints2(DataType::kInt64);
  ints2.AppendInt64(1);
  auto wrong_type = RecordBatch::Make(schema, {ints2.Finish(), ints2.Finish()});
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.status().message(), "column 'b' is BIGINT but the schema says STRING");
}

TEST(Schema, ParsesSparkDdl) {
  auto s = ParseSchemaDdl("id BIGINT, `odd name` string NOT NULL, ts timestamp, ok BOOLEAN, x double");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->ToString(), "id BIGINT, odd name STRING, ts TIMESTAMP, ok BOOLEAN, x DOUBLE");
  EXPECT_FALSE(s->field(1).nullable);
  EXPECT_EQ(s->IndexOf("ID"), 0);
  EXPECT_EQ(s->IndexOf("missing"), -1);
}

TEST(Schema, DdlErrorsSayWhereAndWhat) {
  auto bad_type = ParseSchemaDdl("a INT, b STRNG");
  ASSERT_FALSE(bad_type.ok());
  EXPECT_EQ(bad_type.status().message(),
            "schema 'a INT, b STRNG': unknown type 'STRNG' for field 'b' at character 10; expected BOOLEAN, BIGINT, "
            "INT, DOUBLE, STRING, BINARY or TIMESTAMP");
  auto dup = ParseSchemaDdl("a INT, a STRING");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), "schema 'a INT, a STRING': field 'a' appears twice");
}

}  // namespace
}  // namespace sluice
