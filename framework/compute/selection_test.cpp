// Filter, Take, Slice and Concatenate over every column type, with nulls.
#include "compute/selection.h"

#include <gtest/gtest.h>

#include "compute/bitmap.h"
#include "compute/string_column_writer.h"
#include "expr/expr_test_util.h"

namespace sluice::compute {
namespace {

using expr::testing::BoolColumn;
using expr::testing::Cells;
using expr::testing::CellTexts;
using expr::testing::Float64Column;
using expr::testing::Int64Column;
using expr::testing::MakeBatch;
using expr::testing::StringColumn;
using expr::testing::TimestampColumn;

RecordBatchPtr SampleBatch() {
  return MakeBatch({Int64Column("i", {1, std::nullopt, 3, 4}), StringColumn("s", {"a", "bb", std::nullopt, ""}),
                    Float64Column("d", {0.5, 1.5, 2.5, std::nullopt}), BoolColumn("b", {true, false, std::nullopt, true}),
                    TimestampColumn("t", {"2024-01-01 00:00:00", std::nullopt, "2024-01-03 00:00:00", "2024-01-04 00:00:00"})});
}

TEST(Selection, FilterKeepsTrueRowsOnly) {
  auto batch = SampleBatch();
  auto mask = BoolColumn("m", {true, std::nullopt, false, true}).column;
  auto out = Filter(batch, *mask);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out.value()->num_rows(), 2);
  EXPECT_EQ(Cells(out.value()->column(0)), (CellTexts{"1", "4"}));
  EXPECT_EQ(Cells(out.value()->column(1)), (CellTexts{"a", ""}));
  EXPECT_EQ(Cells(out.value()->column(2)), (CellTexts{"0.5", "NULL"}));
  EXPECT_EQ(Cells(out.value()->column(3)), (CellTexts{"true", "true"}));
  EXPECT_EQ(Cells(out.value()->column(4)), (CellTexts{"2024-01-01 00:00:00", "2024-01-04 00:00:00"}));
  EXPECT_EQ(out.value()->column(0).null_count(), 0);
}

TEST(Selection, FilterAllTrueReturnsTheSameBatch) {
  auto batch = SampleBatch();
  auto mask = BoolColumn("m", {true, true, true, true}).column;
  EXPECT_EQ(Filter(batch, *mask).value(), batch);
}

TEST(Selection, FilterRejectsWrongMask) {
  auto batch = SampleBatch();
  auto short_mask = BoolColumn("m", {true}).column;
  EXPECT_EQ(Filter(batch, *short_mask).status().message(), "filter mask has 1 rows, the batch 4");
  auto not_bool = Int64Column("m", {1, 1, 1, 1}).column;
  EXPECT_EQ(Filter(batch, *not_bool).status().message(), "filter mask must be BOOLEAN, got BIGINT");
}

TEST(Selection, TakeRepeatsAndReorders) {
  auto batch = SampleBatch();
  auto out = Take(*batch, {3, 0, 0, 2});
  EXPECT_EQ(Cells(out->column(0)), (CellTexts{"4", "1", "1", "3"}));
  EXPECT_EQ(Cells(out->column(1)), (CellTexts{"", "a", "a", "NULL"}));
  EXPECT_EQ(Cells(out->column(3)), (CellTexts{"true", "true", "true", "NULL"}));
  EXPECT_EQ(out->column(1).null_count(), 1);
  EXPECT_EQ(Take(*batch, {})->num_rows(), 0);
}

TEST(Selection, SliceAndConcatenate) {
  auto batch = SampleBatch();
  auto first = Slice(*batch, 0, 2);
  auto rest = Slice(*batch, 2, 2);
  EXPECT_EQ(Cells(rest->column(1)), (CellTexts{"NULL", ""}));
  auto joined = Concatenate({first, rest});
  ASSERT_TRUE(joined.ok());
  for (int c = 0; c < batch->num_columns(); ++c)
    EXPECT_EQ(Cells(joined.value()->column(c)), Cells(batch->column(c))) << "column " << c;
  auto no_nulls = Concatenate({Slice(*batch, 0, 1), Slice(*batch, 3, 1)});
  EXPECT_EQ(Cells(no_nulls.value()->column(1)), (CellTexts{"a", ""}));
  EXPECT_EQ(no_nulls.value()->column(1).null_count(), 0);
  auto other = MakeBatch({Int64Column("i", {1})});
  EXPECT_FALSE(Concatenate({batch, other}).ok());
  EXPECT_FALSE(Concatenate({}).ok());
}

TEST(Bitmap, CountAndAnd) {
  std::vector<uint8_t> bits = AllValidBitmap(11);
  EXPECT_EQ(bits.size(), 2u);
  EXPECT_EQ(CountSetBits(bits.data(), 11), 11);
  ClearBit(bits.data(), 3);
  ClearBit(bits.data(), 10);
  EXPECT_EQ(CountSetBits(bits.data(), 11), 9);
  EXPECT_EQ(CountSetBits(bits.data(), 10), 9);
  std::vector<uint8_t> other = AllValidBitmap(11);
  ClearBit(other.data(), 0);
  std::vector<uint8_t> out;
  AndBitmaps(bits.data(), other.data(), 11, &out);
  EXPECT_EQ(CountSetBits(out.data(), 11), 8);
  AndBitmaps(nullptr, nullptr, 11, &out);
  EXPECT_TRUE(out.empty());
  std::vector<uint8_t> many(100, 0xFF);
  EXPECT_EQ(CountSetBits(many.data(), 777), 777);
}

TEST(StringColumnWriter, AppendsNullsAndInPlaceValues) {
  StringColumnWriter w(DataType::kString, 2, 4);
  w.Append("ab");
  w.AppendNull();
  char* at = w.Extend(10);
  at[0] = 'x';
  w.Commit(1);
  w.AppendPiece("p");
  w.AppendPiece('q');
  w.Close();
  for (int i = 0; i < 20; ++i) w.Append("z");
  auto column = w.Finish();
  EXPECT_EQ(column->length(), 24);
  EXPECT_EQ(column->null_count(), 1);
  auto cells = Cells(*column);
  EXPECT_EQ((std::vector<std::string>(cells.begin(), cells.begin() + 5)), (CellTexts{"ab", "NULL", "x", "pq", "z"}));
  EXPECT_EQ(cells.back(), "z");
}

}  // namespace
}  // namespace sluice::compute

namespace sluice::compute {
namespace {

TEST(Selection, SliceMatchesTakeOfTheSameRows) {
  auto batch = SampleBatch();
  for (int64_t offset = 0; offset <= 4; ++offset) {
    for (int64_t length = 0; offset + length <= 4; ++length) {
      std::vector<RowIndex> rows;
      for (int64_t i = 0; i < length; ++i) rows.push_back(static_cast<RowIndex>(offset + i));
      auto sliced = Slice(*batch, offset, length);
      auto taken = Take(*batch, rows);
      ASSERT_EQ(sliced->num_rows(), length);
      for (int c = 0; c < batch->num_columns(); ++c) {
        EXPECT_EQ(Cells(sliced->column(c)), Cells(taken->column(c))) << offset << "+" << length << " column " << c;
        EXPECT_EQ(sliced->column(c).null_count(), taken->column(c).null_count());
      }
    }
  }
}

}  // namespace
}  // namespace sluice::compute
