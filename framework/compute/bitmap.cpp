#include "compute/bitmap.h"

#include <bit>

namespace sluice::compute {

int64_t CountSetBits(const uint8_t* bits, int64_t rows) {
  int64_t count = 0;
  int64_t full_bytes = rows / 8;
  int64_t i = 0;
  for (; i + 8 <= full_bytes; i += 8) {
    uint64_t word;
    std::memcpy(&word, bits + i, 8);
    count += std::popcount(word);
  }
  for (; i < full_bytes; ++i) count += std::popcount(static_cast<unsigned>(bits[i]));
  int tail = static_cast<int>(rows & 7);
  if (tail) count += std::popcount(static_cast<unsigned>(bits[full_bytes] & ((1u << tail) - 1)));
  return count;
}

std::vector<uint8_t> AllValidBitmap(int64_t rows) {
  std::vector<uint8_t> bits(BitmapBytes(rows), 0xFF);
  if (rows & 7) bits.back() = static_cast<uint8_t>((1u << (rows & 7)) - 1);
  return bits;
}

void AndBitmaps(const uint8_t* a, const uint8_t* b, int64_t rows, std::vector<uint8_t>* out) {
  out->clear();
  if (!a && !b) return;
  size_t bytes = BitmapBytes(rows);
  if (!a || !b) {
    const uint8_t* only = a ? a : b;
    out->assign(only, only + bytes);
    return;
  }
  out->resize(bytes);
  for (size_t i = 0; i < bytes; ++i) (*out)[i] = a[i] & b[i];
}

void SetValidity(Column& column, std::vector<uint8_t> bitmap) {
  if (bitmap.empty()) {
    column.mutable_validity().clear();
    column.set_null_count(0);
    return;
  }
  int64_t nulls = column.length() - CountSetBits(bitmap.data(), column.length());
  if (nulls == 0) bitmap.clear();
  column.mutable_validity() = std::move(bitmap);
  column.set_null_count(nulls);
}

std::shared_ptr<Column> MakeAllNullColumn(DataType type, int64_t rows) {
  std::shared_ptr<Column> column;
  if (IsVariableWidth(type)) {
    column = std::make_shared<Column>(type, rows);
    column->mutable_values().assign(static_cast<size_t>(rows + 1) * sizeof(int32_t), 0);
  } else {
    column = Column::AllocateFixed(type, rows);
  }
  if (rows > 0) {
    column->mutable_validity().assign(BitmapBytes(rows), 0);
    column->set_null_count(rows);
  }
  return column;
}

}  // namespace sluice::compute
