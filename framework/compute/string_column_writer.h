// Fills a STRING or BINARY column value by value into one growing data buffer.
//
// String kernels know their row count and usually a good estimate of the bytes
// they will write (lower() writes exactly its input size), so they reserve once
// and then append without allocating per row. Values can be appended whole or
// written in place: Extend(max) hands out room for up to `max` bytes and
// Commit(n) closes the value after `n` of them.
#pragma once

#include <algorithm>
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
    column_->mutable_data().resize(expected_bytes);
  }

  int64_t length() const { return static_cast<int64_t>(offsets_.size()) - 1; }

  void Append(std::string_view value) {
    AppendPiece(value);
    Close();
  }
  // Appends pieces of one value, then Close() ends it.
  void AppendPiece(std::string_view piece) {
    if (piece.empty()) return;
    std::memcpy(Reserve(piece.size()), piece.data(), piece.size());
    size_ += piece.size();
  }
  void AppendPiece(char c) {
    *Reserve(1) = c;
    ++size_;
  }
  void Close() {
    offsets_.push_back(static_cast<int32_t>(size_));
    if (!validity_.empty()) MarkValid(length() - 1);
  }

  // Room for up to `max_bytes` of the next value; Commit() says how many were used.
  char* Extend(size_t max_bytes) { return Reserve(max_bytes); }
  void Commit(size_t used_bytes) {
    size_ += used_bytes;
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
    column_->mutable_data().resize(size_);
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
  // Room for `bytes` more at the end of the data; the buffer's size runs ahead
  // of size_ so appends are a memcpy, not a vector insert.
  char* Reserve(size_t bytes) {
    auto& data = column_->mutable_data();
    if (size_ + bytes > data.size()) data.resize(std::max(size_ + bytes, data.size() * 2));
    return data.data() + size_;
  }

  void MarkValid(int64_t row) {
    if (validity_.size() < BitmapBytes(row + 1)) validity_.resize(BitmapBytes(row + 1) + validity_.size() / 2, 0);
    SetBit(validity_.data(), row);
  }

  std::shared_ptr<Column> column_;
  std::vector<int32_t> offsets_;
  std::vector<uint8_t> validity_;  // empty until the first null
  size_t size_ = 0;  // bytes written to the data buffer
};

}  // namespace sluice::compute
