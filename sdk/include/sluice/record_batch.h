// Columnar record batches: the unit of data that flows between sources,
// operators and sinks.
//
// The memory layout is Arrow's, so a batch can be exported through the Arrow C
// Data Interface without copying values:
//  - validity: a bitmap, bit i (LSB first) set when row i is not null; an empty
//    bitmap means "no nulls";
//  - fixed-width values: one contiguous buffer (bool as one byte per value);
//  - string and binary: int32 offsets (length + 1 of them) into one data buffer.
// Columns are immutable once built and shared between batches by shared_ptr, so
// projecting or renaming a batch copies no values.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/schema.h"

namespace sluice {

// Sources should keep batches at or under this many rows: large enough to
// amortise per-batch work, small enough to stay in cache.
inline constexpr int64_t kPreferredBatchRows = 32 * 1024;

class Column {
 public:
  Column() = default;
  Column(DataType type, int64_t length) : type_(type), length_(length) {}

  DataType type() const { return type_; }
  int64_t length() const { return length_; }
  int64_t null_count() const { return null_count_; }

  bool is_valid(int64_t i) const {
    return validity_.empty() || ((validity_[static_cast<size_t>(i >> 3)] >> (i & 7)) & 1);
  }
  bool is_null(int64_t i) const { return !is_valid(i); }
  // nullptr when the column has no nulls.
  const uint8_t* validity_bitmap() const { return validity_.empty() ? nullptr : validity_.data(); }

  // Fixed-width values: T is uint8_t for Bool, int64_t for Int64 and Timestamp,
  // double for Float64. The value under a null slot is unspecified (zero when
  // built by ColumnBuilder).
  template <typename T>
  const T* values() const { return reinterpret_cast<const T*>(values_.data()); }
  const int64_t* int64_values() const { return values<int64_t>(); }
  const double* float64_values() const { return values<double>(); }
  const uint8_t* bool_values() const { return values<uint8_t>(); }

  int64_t int64_at(int64_t i) const { return int64_values()[i]; }
  double float64_at(int64_t i) const { return float64_values()[i]; }
  bool bool_at(int64_t i) const { return bool_values()[i] != 0; }

  // String and binary columns.
  const int32_t* offsets() const { return reinterpret_cast<const int32_t*>(values_.data()); }
  const char* string_data() const { return data_.data(); }
  std::string_view string_at(int64_t i) const {
    const int32_t* o = offsets();
    return {data_.data() + o[i], static_cast<size_t>(o[i + 1] - o[i])};
  }

  // Raw buffers, for builders and kernels that fill a column in place before it
  // is shared. Call RecountNulls() after writing the validity bitmap directly.
  std::vector<uint8_t>& mutable_validity() { return validity_; }
  std::vector<uint8_t>& mutable_values() { return values_; }
  std::vector<char>& mutable_data() { return data_; }
  const std::vector<uint8_t>& validity_buffer() const { return validity_; }
  const std::vector<uint8_t>& values_buffer() const { return values_; }
  const std::vector<char>& data_buffer() const { return data_; }
  void set_length(int64_t n) { length_ = n; }
  void set_null_count(int64_t n) { null_count_ = n; }
  void RecountNulls() {
    if (validity_.empty()) { null_count_ = 0; return; }
    int64_t valid = 0;
    for (int64_t i = 0; i < length_; ++i) valid += is_valid(i);
    null_count_ = length_ - valid;
    if (null_count_ == 0) validity_.clear();
  }

  // A column of `length` fixed-width values, zero-filled, all valid.
  static std::shared_ptr<Column> AllocateFixed(DataType type, int64_t length) {
    auto c = std::make_shared<Column>(type, length);
    c->values_.assign(static_cast<size_t>(length) * static_cast<size_t>(FixedWidth(type)), 0);
    return c;
  }

 private:
  DataType type_ = DataType::kString;
  int64_t length_ = 0;
  int64_t null_count_ = 0;
  std::vector<uint8_t> validity_;
  std::vector<uint8_t> values_;  // fixed-width values, or int32 offsets
  std::vector<char> data_;       // string/binary bytes
};

using ColumnPtr = std::shared_ptr<const Column>;

// Appends values one at a time. Amortised O(1) per value, no allocation per
// value beyond buffer growth; Reserve() up front when the row count is known.
class ColumnBuilder {
 public:
  explicit ColumnBuilder(DataType type, int64_t expected_rows = 0) : col_(std::make_shared<Column>(type, 0)) {
    if (IsVariableWidth(type)) offsets_.push_back(0);
    Reserve(expected_rows);
  }

  DataType type() const { return col_->type(); }
  int64_t length() const { return length_; }

  void Reserve(int64_t rows) {
    if (rows <= 0) return;
    if (IsVariableWidth(type())) offsets_.reserve(static_cast<size_t>(rows) + 1);
    else col_->mutable_values().reserve(static_cast<size_t>(rows) * static_cast<size_t>(FixedWidth(type())));
  }

  void AppendNull() {
    MarkNull();
    if (IsVariableWidth(type())) offsets_.push_back(offsets_.back());
    else col_->mutable_values().resize(col_->mutable_values().size() + static_cast<size_t>(FixedWidth(type())), 0);
    ++length_;
  }
  void AppendBool(bool v) { AppendFixed<uint8_t>(v ? 1 : 0); }
  void AppendInt64(int64_t v) { AppendFixed<int64_t>(v); }
  void AppendTimestamp(int64_t micros) { AppendFixed<int64_t>(micros); }
  void AppendFloat64(double v) { AppendFixed<double>(v); }
  // For String and Binary columns.
  void AppendString(std::string_view v) {
    auto& d = col_->mutable_data();
    d.insert(d.end(), v.begin(), v.end());
    offsets_.push_back(static_cast<int32_t>(d.size()));
    MarkValid();
    ++length_;
  }
  // Copies row `i` of `src`, which must have this builder's type.
  void AppendFrom(const Column& src, int64_t i) {
    if (src.is_null(i)) { AppendNull(); return; }
    switch (type()) {
      case DataType::kBool: AppendBool(src.bool_at(i)); break;
      case DataType::kInt64:
      case DataType::kTimestamp: AppendInt64(src.int64_at(i)); break;
      case DataType::kFloat64: AppendFloat64(src.float64_at(i)); break;
      case DataType::kString:
      case DataType::kBinary: AppendString(src.string_at(i)); break;
    }
  }

  std::shared_ptr<Column> Finish() {
    if (IsVariableWidth(type())) {
      auto& v = col_->mutable_values();
      v.resize(offsets_.size() * sizeof(int32_t));
      std::memcpy(v.data(), offsets_.data(), v.size());
    }
    col_->set_length(length_);
    if (null_count_ == 0) col_->mutable_validity().clear();
    else col_->mutable_validity().resize(static_cast<size_t>((length_ + 7) / 8), 0);
    col_->set_null_count(null_count_);
    auto out = std::move(col_);
    DataType t = out->type();
    col_ = std::make_shared<Column>(t, 0);
    offsets_.clear();
    if (IsVariableWidth(t)) offsets_.push_back(0);
    length_ = 0;
    null_count_ = 0;
    return out;
  }

 private:
  template <typename T>
  void AppendFixed(T v) {
    auto& vals = col_->mutable_values();
    size_t at = vals.size();
    vals.resize(at + sizeof(T));
    std::memcpy(vals.data() + at, &v, sizeof(T));
    MarkValid();
    ++length_;
  }
  void MarkValid() {
    if (null_count_ == 0) return;  // bitmap materialises at the first null
    SetBit(length_, true);
  }
  void MarkNull() {
    if (null_count_ == 0) {
      // First null: every earlier row was valid.
      auto& bm = col_->mutable_validity();
      bm.assign(static_cast<size_t>((length_ + 8) / 8), 0);
      for (int64_t j = 0; j < length_; ++j) bm[static_cast<size_t>(j >> 3)] |= static_cast<uint8_t>(1u << (j & 7));
    }
    ++null_count_;
    SetBit(length_, false);
  }
  void SetBit(int64_t i, bool v) {
    auto& bm = col_->mutable_validity();
    size_t byte = static_cast<size_t>(i >> 3);
    if (bm.size() <= byte) bm.resize(byte + 1 + bm.size() / 2, 0);
    if (v) bm[byte] |= static_cast<uint8_t>(1u << (i & 7));
    else bm[byte] &= static_cast<uint8_t>(~(1u << (i & 7)));
  }

  std::shared_ptr<Column> col_;
  std::vector<int32_t> offsets_;
  int64_t length_ = 0;
  int64_t null_count_ = 0;
};

class RecordBatch {
 public:
  RecordBatch(SchemaPtr schema, std::vector<ColumnPtr> columns, int64_t num_rows)
      : schema_(std::move(schema)), columns_(std::move(columns)), num_rows_(num_rows) {}

  // Checks that the columns match the schema in count, type and length.
  static Result<std::shared_ptr<const RecordBatch>> Make(SchemaPtr schema, std::vector<ColumnPtr> columns) {
    if (static_cast<int>(columns.size()) != schema->num_fields())
      return Status::InvalidArgument("record batch has " + std::to_string(columns.size()) +
                                     " columns but its schema has " + std::to_string(schema->num_fields()));
    int64_t rows = columns.empty() ? 0 : columns[0]->length();
    for (size_t i = 0; i < columns.size(); ++i) {
      if (columns[i]->type() != schema->field(static_cast<int>(i)).type)
        return Status::InvalidArgument("column '" + schema->field(static_cast<int>(i)).name + "' is " +
                                       DataTypeName(columns[i]->type()) + " but the schema says " +
                                       DataTypeName(schema->field(static_cast<int>(i)).type));
      if (columns[i]->length() != rows)
        return Status::InvalidArgument("column '" + schema->field(static_cast<int>(i)).name + "' has " +
                                       std::to_string(columns[i]->length()) + " rows, expected " +
                                       std::to_string(rows));
    }
    return std::make_shared<const RecordBatch>(std::move(schema), std::move(columns), rows);
  }

  const SchemaPtr& schema() const { return schema_; }
  int64_t num_rows() const { return num_rows_; }
  int num_columns() const { return static_cast<int>(columns_.size()); }
  const Column& column(int i) const { return *columns_[static_cast<size_t>(i)]; }
  const ColumnPtr& column_ptr(int i) const { return columns_[static_cast<size_t>(i)]; }
  const std::vector<ColumnPtr>& columns() const { return columns_; }

 private:
  SchemaPtr schema_;
  std::vector<ColumnPtr> columns_;
  int64_t num_rows_;
};

using RecordBatchPtr = std::shared_ptr<const RecordBatch>;

// Builds a batch row by row, one ColumnBuilder per field. Handy for sources that
// parse text; kernels that can fill whole columns should do so directly.
class RecordBatchBuilder {
 public:
  explicit RecordBatchBuilder(SchemaPtr schema, int64_t expected_rows = 0) : schema_(std::move(schema)) {
    for (const auto& f : schema_->fields()) builders_.emplace_back(f.type, expected_rows);
  }
  ColumnBuilder& column(int i) { return builders_[static_cast<size_t>(i)]; }
  int64_t num_rows() const { return builders_.empty() ? rows_without_columns_ : builders_[0].length(); }
  // For schemas with no columns, counts rows explicitly.
  void AddRowWithoutColumns() { ++rows_without_columns_; }
  const SchemaPtr& schema() const { return schema_; }

  RecordBatchPtr Finish() {
    std::vector<ColumnPtr> cols;
    int64_t rows = num_rows();
    for (auto& b : builders_) cols.push_back(b.Finish());
    rows_without_columns_ = 0;
    return std::make_shared<const RecordBatch>(schema_, std::move(cols), rows);
  }

 private:
  SchemaPtr schema_;
  std::vector<ColumnBuilder> builders_;
  int64_t rows_without_columns_ = 0;
};

}  // namespace sluice
