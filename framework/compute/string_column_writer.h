// Fills a STRING or BINARY column value by value into one growing data buffer.
//
// String kernels know their row count and usually a good estimate of the bytes
// they will write (lower() writes exactly its input size), so they reserve once
// and then append without allocating per row. Values can be appended whole or
// written in place: Extend(max) hands out room for up to `max` bytes and
// Commit(n) closes the value after `n` of them.
#pragma once

#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

#include "compute/bitmap.h"
#include "sluice/record_batch.h"

namespace sluice::compute {

class StringColumnWriter {
 public:
  StringColumnWriter(DataType type, int64_t expected_rows, size_t expected_bytes)
      : column_(std::make_shared<Column>(type, 0)) {
    offsets_.reserve(static_cast<size_t>(expected_rows) + 1);
    offsets_.push_back(0);
    column_->mutable_data().reserve(expected_bytes);
  }

  int64_t length() const { return static_cast<int64_t>(offsets_.size()) - 1; }

  void Append(std::string_view value) {
    auto& data = column_->mutable_data();
    data.insert(data.end(), value.begin(), value.end());
    Close();
  }
  // Appends pieces of one value, then Close() ends it.
  void AppendPiece(std::string_view piece) {
    auto& data = column_->mutable_data();
    data.insert(data.end(), piece.begin(), piece.end());
  }
  void AppendPiece(char c) { column_->mutable_data().push_back(c); }
  void Close() {
    offsets_.push_back(static_cast<int32_t>(column_->mutable_data().size()));
    if (!validity_.empty()) MarkValid(length() - 1);
  }

  // Room for up to `max_bytes` of the next value; Commit() says how many were used.
  char* Extend(size_t max_bytes) {
    auto& data = column_->mutable_data();
    pending_start_ = data.size();
    data.resize(pending_start_ + max_bytes);
    return data.data() + pending_start_;
  }
  void Commit(size_t used_bytes) {
    column_->mutable_data().resize(pending_start_ + used_bytes);
    Close();
  }

  void AppendNull() {
    int64_t row = length();
    if (validity_.empty()) validity_ = AllValidBitmap(row);
    offsets_.push_back(offsets_.back());
    if (validity_.size() < BitmapBytes(row + 1)) validity_.resize(BitmapBytes(row + 1) + validity_.size() / 2, 0);
    ClearBit(validity_.data(), row);
  }

  std::shared_ptr<Column> Finish() {
    int64_t rows = length();
    auto& values = column_->mutable_values();
    values.resize(offsets_.size() * sizeof(int32_t));
    std::memcpy(values.data(), offsets_.data(), values.size());
    column_->set_length(rows);
    if (!validity_.empty()) validity_.resize(BitmapBytes(rows));
    SetValidity(*column_, std::move(validity_));
    return std::move(column_);
  }

 private:
  void MarkValid(int64_t row) {
    if (validity_.size() < BitmapBytes(row + 1)) validity_.resize(BitmapBytes(row + 1) + validity_.size() / 2, 0);
    SetBit(validity_.data(), row);
  }

  std::shared_ptr<Column> column_;
  std::vector<int32_t> offsets_;
  std::vector<uint8_t> validity_;  // empty until the first null
  size_t pending_start_ = 0;
};

}  // namespace sluice::compute
