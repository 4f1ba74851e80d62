#include "expr/expr_type.h"

#include "compute/bitmap.h"

namespace sluice::expr {

std::string ExprType::ToString() const {
  if (is_null_literal) return "NULL";
  switch (kind) {
    case Kind::kScalar: return DataTypeName(scalar);
    case Kind::kArray: return std::string("ARRAY<") + DataTypeName(scalar) + ">";
    case Kind::kStruct: {
      std::string s = "STRUCT<";
      for (int i = 0; i < fields->num_fields(); ++i) {
        if (i) s += ", ";
        s += fields->field(i).name + ": " + DataTypeName(fields->field(i).type);
      }
      return s + ">";
    }
  }
  return "?";
}

Scalar Scalar::FromColumn(const Column& column, int64_t i) {
  Scalar s = Null(column.type());
  if (column.is_null(i)) return s;
  s.valid = true;
  switch (column.type()) {
    case DataType::kBool: s.int_value = column.bool_at(i) ? 1 : 0; break;
    case DataType::kInt64:
    case DataType::kTimestamp: s.int_value = column.int64_at(i); break;
    case DataType::kFloat64: s.double_value = column.float64_at(i); break;
    case DataType::kString:
    case DataType::kBinary: s.bytes = std::string(column.string_at(i)); break;
  }
  return s;
}

std::shared_ptr<Column> Scalar::Materialize(int64_t rows) const {
  if (!valid) return compute::MakeAllNullColumn(type, rows);
  if (IsVariableWidth(type)) {
    auto column = std::make_shared<Column>(type, rows);
    column->mutable_values().assign(static_cast<size_t>(rows + 1) * sizeof(int32_t), 0);
    if (bytes.empty()) return column;  // every offset is 0
    column->mutable_data().resize(bytes.size() * static_cast<size_t>(rows));
    column->mutable_values().resize(static_cast<size_t>(rows + 1) * sizeof(int32_t));
    int32_t* offsets = reinterpret_cast<int32_t*>(column->mutable_values().data());
    char* data = column->mutable_data().data();
    offsets[0] = 0;
    for (int64_t i = 0; i < rows; ++i) {
      std::memcpy(data + bytes.size() * static_cast<size_t>(i), bytes.data(), bytes.size());
      offsets[i + 1] = static_cast<int32_t>(bytes.size() * static_cast<size_t>(i + 1));
    }
    return column;
  }
  auto column = Column::AllocateFixed(type, rows);
  switch (type) {
    case DataType::kBool: std::memset(column->mutable_values().data(), int_value ? 1 : 0, static_cast<size_t>(rows)); break;
    case DataType::kFloat64: {
      double* v = reinterpret_cast<double*>(column->mutable_values().data());
      for (int64_t i = 0; i < rows; ++i) v[i] = double_value;
      break;
    }
    default: {
      int64_t* v = reinterpret_cast<int64_t*>(column->mutable_values().data());
      for (int64_t i = 0; i < rows; ++i) v[i] = int_value;
    }
  }
  return column;
}

}  // namespace sluice::expr
