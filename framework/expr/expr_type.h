// Types and values that exist only inside expressions.
//
// Sinks see the SDK's scalar types, but an expression can also produce an
// array (split() -> ARRAY<STRING>) or a struct (from_json() -> STRUCT<...>) that
// a parent consumes: explode(), size(), [i], `.field`. ExprType names any of
// these; Scalar is one constant value (literals, folded constant subtrees, the
// batch timestamp), so kernels can treat a constant operand without
// materialising it per row. ArrayColumn and StructColumn are the columnar
// forms of nested values, laid out as Arrow lists and structs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/record_batch.h"

namespace sluice::expr {

struct ExprType {
  enum class Kind : uint8_t { kScalar, kArray, kStruct };
  Kind kind = Kind::kScalar;
  // The scalar type, or the element type of an array.
  DataType scalar = DataType::kString;
  // Fields of a struct.
  std::shared_ptr<const Schema> fields;
  // The untyped NULL literal: it takes whatever type its context asks for.
  bool is_null_literal = false;

  static ExprType Scalar(DataType t) { return ExprType{Kind::kScalar, t, nullptr, false}; }
  static ExprType Array(DataType element) { return ExprType{Kind::kArray, element, nullptr, false}; }
  static ExprType Struct(std::shared_ptr<const Schema> f) { return ExprType{Kind::kStruct, DataType::kString, std::move(f), false}; }
  static ExprType NullLiteral() { return ExprType{Kind::kScalar, DataType::kString, nullptr, true}; }

  bool is_scalar() const { return kind == Kind::kScalar; }
  bool is(DataType t) const { return kind == Kind::kScalar && !is_null_literal && scalar == t; }
  // "BIGINT", "ARRAY<STRING>", "STRUCT<a: BIGINT, b: STRING>", "NULL".
  std::string ToString() const;
};

// One constant value of a scalar type.
struct Scalar {
  DataType type = DataType::kString;
  bool valid = false;
  int64_t int_value = 0;     // BIGINT, TIMESTAMP, and BOOLEAN as 0/1
  double double_value = 0;   // DOUBLE
  std::string bytes;         // STRING, BINARY

  static Scalar Null(DataType t) { return Scalar{t, false, 0, 0, {}}; }
  static Scalar Bool(bool v) { return Scalar{DataType::kBool, true, v ? 1 : 0, 0, {}}; }
  static Scalar Int64(int64_t v) { return Scalar{DataType::kInt64, true, v, 0, {}}; }
  static Scalar Float64(double v) { return Scalar{DataType::kFloat64, true, 0, v, {}}; }
  static Scalar Timestamp(int64_t micros) { return Scalar{DataType::kTimestamp, true, micros, 0, {}}; }
  static Scalar String(std::string v) { return Scalar{DataType::kString, true, 0, 0, std::move(v)}; }

  // Typed access matching Column::values<T>() (uint8_t for BOOLEAN).
  template <typename T>
  T As() const {
    if constexpr (std::is_same_v<T, double>) return double_value;
    else if constexpr (std::is_same_v<T, std::string_view>) return std::string_view(bytes);
    else return static_cast<T>(int_value);
  }

  // Row `i` of `column` as a scalar.
  static Scalar FromColumn(const Column& column, int64_t i);
  // A column repeating this value `rows` times.
  std::shared_ptr<Column> Materialize(int64_t rows) const;
};

// ARRAY<element>: row i holds elements [offsets[i], offsets[i+1]) of
// `elements`. A null row has no elements (offsets[i] == offsets[i+1]).
struct ArrayColumn {
  int64_t length = 0;
  std::vector<int32_t> offsets;    // length + 1
  std::vector<uint8_t> validity;   // empty = no null arrays
  ColumnPtr elements;

  bool is_valid(int64_t i) const { return validity.empty() || ((validity[static_cast<size_t>(i >> 3)] >> (i & 7)) & 1); }
};

// STRUCT<fields>: one child column per field; a null row is null in every child.
struct StructColumn {
  int64_t length = 0;
  std::vector<uint8_t> validity;  // empty = no null structs
  std::vector<ColumnPtr> fields;
};

using ArrayColumnPtr = std::shared_ptr<const ArrayColumn>;
using StructColumnPtr = std::shared_ptr<const StructColumn>;

}  // namespace sluice::expr
