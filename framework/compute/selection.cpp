#include "compute/selection.h"

#include <cstring>

#include "compute/bitmap.h"

namespace sluice::compute {
namespace {

template <typename T>
void GatherFixed(const Column& column, const RowIndex* indices, int64_t count, Column* out) {
  const T* in = column.values<T>();
  T* dst = reinterpret_cast<T*>(out->mutable_values().data());
  for (int64_t i = 0; i < count; ++i) dst[i] = in[indices[i]];
}

// Validity of the gathered rows; empty when the source has no nulls.
std::vector<uint8_t> GatherValidity(const Column& column, const RowIndex* indices, int64_t count) {
  const uint8_t* in = column.validity_bitmap();
  if (!in) return {};
  std::vector<uint8_t> out(BitmapBytes(count), 0);
  for (int64_t i = 0; i < count; ++i)
    if (GetBit(in, indices[i])) SetBit(out.data(), i);
  return out;
}

}  // namespace

std::vector<RowIndex> SelectedRows(const Column& mask) {
  std::vector<RowIndex> rows;
  const int64_t n = mask.length();
  const uint8_t* values = mask.bool_values();
  const uint8_t* valid = mask.validity_bitmap();
  rows.reserve(static_cast<size_t>(n));
  if (valid) {
    for (int64_t i = 0; i < n; ++i)
      if (values[i] && GetBit(valid, i)) rows.push_back(static_cast<RowIndex>(i));
  } else {
    for (int64_t i = 0; i < n; ++i)
      if (values[i]) rows.push_back(static_cast<RowIndex>(i));
  }
  return rows;
}

ColumnPtr TakeColumn(const Column& column, const RowIndex* indices, int64_t count) {
  auto out = std::make_shared<Column>(column.type(), count);
  switch (column.type()) {
    case DataType::kBool:
      out->mutable_values().resize(static_cast<size_t>(count));
      GatherFixed<uint8_t>(column, indices, count, out.get());
      break;
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kFloat64:
      // Eight-byte values move as int64 whatever they mean.
      out->mutable_values().resize(static_cast<size_t>(count) * 8);
      GatherFixed<int64_t>(column, indices, count, out.get());
      break;
    case DataType::kString:
    case DataType::kBinary: {
      const int32_t* in_offsets = column.offsets();
      const char* in_data = column.string_data();
      size_t bytes = 0;
      for (int64_t i = 0; i < count; ++i) bytes += static_cast<size_t>(in_offsets[indices[i] + 1] - in_offsets[indices[i]]);
      out->mutable_values().resize(static_cast<size_t>(count + 1) * sizeof(int32_t));
      out->mutable_data().resize(bytes);
      int32_t* offsets = reinterpret_cast<int32_t*>(out->mutable_values().data());
      char* data = out->mutable_data().data();
      int32_t at = 0;
      offsets[0] = 0;
      for (int64_t i = 0; i < count; ++i) {
        int32_t begin = in_offsets[indices[i]];
        int32_t len = in_offsets[indices[i] + 1] - begin;
        if (len) std::memcpy(data + at, in_data + begin, static_cast<size_t>(len));
        at += len;
        offsets[i + 1] = at;
      }
      break;
    }
  }
  SetValidity(*out, GatherValidity(column, indices, count));
  return out;
}

RecordBatchPtr Take(const RecordBatch& batch, const std::vector<RowIndex>& indices) {
  std::vector<ColumnPtr> columns;
  columns.reserve(static_cast<size_t>(batch.num_columns()));
  for (const auto& column : batch.columns())
    columns.push_back(TakeColumn(*column, indices.data(), static_cast<int64_t>(indices.size())));
  return std::make_shared<const RecordBatch>(batch.schema(), std::move(columns), static_cast<int64_t>(indices.size()));
}

Result<RecordBatchPtr> Filter(const RecordBatchPtr& batch, const Column& mask) {
  if (mask.type() != DataType::kBool)
    return Status::InvalidArgument(std::string("filter mask must be BOOLEAN, got ") + DataTypeName(mask.type()));
  if (mask.length() != batch->num_rows())
    return Status::InvalidArgument("filter mask has " + std::to_string(mask.length()) + " rows, the batch " +
                                   std::to_string(batch->num_rows()));
  std::vector<RowIndex> rows = SelectedRows(mask);
  if (static_cast<int64_t>(rows.size()) == batch->num_rows()) return batch;
  return Take(*batch, rows);
}

ColumnPtr SliceColumn(const Column& column, int64_t offset, int64_t length) {
  auto out = std::make_shared<Column>(column.type(), length);
  if (IsVariableWidth(column.type())) {
    const int32_t* in = column.offsets() + offset;
    out->mutable_values().resize(static_cast<size_t>(length + 1) * sizeof(int32_t));
    int32_t* offsets = reinterpret_cast<int32_t*>(out->mutable_values().data());
    for (int64_t i = 0; i <= length; ++i) offsets[i] = in[i] - in[0];
    out->mutable_data().assign(column.string_data() + in[0], column.string_data() + in[length]);
  } else {
    const size_t width = static_cast<size_t>(FixedWidth(column.type()));
    const uint8_t* begin = column.values_buffer().data() + static_cast<size_t>(offset) * width;
    out->mutable_values().assign(begin, begin + static_cast<size_t>(length) * width);
  }
  std::vector<uint8_t> validity;
  if (const uint8_t* in = column.validity_bitmap()) {
    validity.assign(BitmapBytes(length), 0);
    for (int64_t i = 0; i < length; ++i)
      if (GetBit(in, offset + i)) SetBit(validity.data(), i);
  }
  SetValidity(*out, std::move(validity));
  return out;
}

RecordBatchPtr Slice(const RecordBatch& batch, int64_t offset, int64_t length) {
  std::vector<ColumnPtr> columns;
  columns.reserve(static_cast<size_t>(batch.num_columns()));
  for (const auto& column : batch.columns()) columns.push_back(SliceColumn(*column, offset, length));
  return std::make_shared<const RecordBatch>(batch.schema(), std::move(columns), length);
}

Result<ColumnPtr> ConcatenateColumns(const std::vector<ColumnPtr>& columns) {
  if (columns.empty()) return Status::InvalidArgument("cannot concatenate zero columns");
  if (columns.size() == 1) return columns[0];
  const DataType type = columns[0]->type();
  int64_t rows = 0;
  size_t bytes = 0;
  bool any_nulls = false;
  for (const auto& c : columns) {
    if (c->type() != type)
      return Status::InvalidArgument(std::string("cannot concatenate ") + DataTypeName(type) + " with " +
                                     DataTypeName(c->type()));
    rows += c->length();
    if (IsVariableWidth(type)) bytes += c->data_buffer().size();
    any_nulls |= c->null_count() > 0;
  }
  auto out = std::make_shared<Column>(type, rows);
  std::vector<uint8_t> validity;
  if (any_nulls) validity.assign(BitmapBytes(rows), 0);
  int64_t row = 0;
  if (IsVariableWidth(type)) {
    out->mutable_values().resize(static_cast<size_t>(rows + 1) * sizeof(int32_t));
    out->mutable_data().reserve(bytes);
    int32_t* offsets = reinterpret_cast<int32_t*>(out->mutable_values().data());
    offsets[0] = 0;
    for (const auto& c : columns) {
      const int32_t* in = c->offsets();
      int32_t base = static_cast<int32_t>(out->mutable_data().size()) - in[0];
      auto& data = out->mutable_data();
      data.insert(data.end(), c->string_data() + in[0], c->string_data() + in[c->length()]);
      for (int64_t i = 0; i < c->length(); ++i) offsets[row + i + 1] = in[i + 1] + base;
      row += c->length();
    }
  } else {
    const size_t width = static_cast<size_t>(FixedWidth(type));
    out->mutable_values().resize(static_cast<size_t>(rows) * width);
    size_t at = 0;
    for (const auto& c : columns) {
      size_t n = static_cast<size_t>(c->length()) * width;
      if (n) std::memcpy(out->mutable_values().data() + at, c->values_buffer().data(), n);
      at += n;
    }
  }
  if (any_nulls) {
    row = 0;
    for (const auto& c : columns) {
      for (int64_t i = 0; i < c->length(); ++i)
        if (c->is_valid(i)) SetBit(validity.data(), row + i);
      row += c->length();
    }
  }
  SetValidity(*out, std::move(validity));
  return ColumnPtr(out);
}

Result<RecordBatchPtr> Concatenate(const std::vector<RecordBatchPtr>& batches) {
  if (batches.empty()) return Status::InvalidArgument("cannot concatenate zero batches");
  if (batches.size() == 1) return batches[0];
  const SchemaPtr& schema = batches[0]->schema();
  int64_t rows = 0;
  for (const auto& b : batches) {
    if (!(*b->schema() == *schema))
      return Status::InvalidArgument("cannot concatenate batches with schemas (" + schema->ToString() + ") and (" +
                                     b->schema()->ToString() + ")");
    rows += b->num_rows();
  }
  std::vector<ColumnPtr> columns;
  for (int c = 0; c < schema->num_fields(); ++c) {
    std::vector<ColumnPtr> parts;
    parts.reserve(batches.size());
    for (const auto& b : batches) parts.push_back(b->column_ptr(c));
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr column, ConcatenateColumns(parts));
    columns.push_back(std::move(column));
  }
  return std::make_shared<const RecordBatch>(schema, std::move(columns), rows);
}

}  // namespace sluice::compute
