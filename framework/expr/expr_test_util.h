// Helpers for the expression tests: build small batches column by column and
// read results back as text ("NULL" for a null cell) so expectations are exact
// and readable.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "expr/expression.h"
#include "sluice/value_format.h"

namespace sluice::expr::testing {

struct TestColumn {
  Field field;
  ColumnPtr column;
};

inline TestColumn Int64Column(std::string name, const std::vector<std::optional<int64_t>>& values) {
  ColumnBuilder b(DataType::kInt64);
  for (const auto& v : values) v ? b.AppendInt64(*v) : b.AppendNull();
  return {Field{std::move(name), DataType::kInt64, true}, b.Finish()};
}
inline TestColumn Float64Column(std::string name, const std::vector<std::optional<double>>& values) {
  ColumnBuilder b(DataType::kFloat64);
  for (const auto& v : values) v ? b.AppendFloat64(*v) : b.AppendNull();
  return {Field{std::move(name), DataType::kFloat64, true}, b.Finish()};
}
inline TestColumn BoolColumn(std::string name, const std::vector<std::optional<bool>>& values) {
  ColumnBuilder b(DataType::kBool);
  for (const auto& v : values) v ? b.AppendBool(*v) : b.AppendNull();
  return {Field{std::move(name), DataType::kBool, true}, b.Finish()};
}
inline TestColumn StringColumn(std::string name, const std::vector<std::optional<std::string>>& values,
                               DataType type = DataType::kString) {
  ColumnBuilder b(type);
  for (const auto& v : values) v ? b.AppendString(*v) : b.AppendNull();
  return {Field{std::move(name), type, true}, b.Finish()};
}
// Timestamps given as text ("2024-01-01 00:00:00") for readability.
inline TestColumn TimestampColumn(std::string name, const std::vector<std::optional<std::string>>& values) {
  ColumnBuilder b(DataType::kTimestamp);
  for (const auto& v : values) v ? b.AppendTimestamp(*ParseTimestamp(*v)) : b.AppendNull();
  return {Field{std::move(name), DataType::kTimestamp, true}, b.Finish()};
}

inline RecordBatchPtr MakeBatch(const std::vector<TestColumn>& columns) {
  std::vector<Field> fields;
  std::vector<ColumnPtr> cols;
  for (const auto& c : columns) {
    fields.push_back(c.field);
    cols.push_back(c.column);
  }
  auto batch = RecordBatch::Make(std::make_shared<const Schema>(std::move(fields)), std::move(cols));
  EXPECT_TRUE(batch.ok()) << batch.status().ToString();
  return batch.value();
}

// A batch of `rows` rows and no columns, for expressions over literals only.
inline RecordBatchPtr RowsOnly(int64_t rows) {
  return std::make_shared<const RecordBatch>(std::make_shared<const Schema>(), std::vector<ColumnPtr>{}, rows);
}

inline std::vector<std::string> Cells(const Column& column) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < column.length(); ++i) {
    if (column.is_null(i)) {
      out.push_back("NULL");
      continue;
    }
    std::string s;
    AppendCellText(s, column, i);
    out.push_back(s);
  }
  return out;
}

struct Evaluated {
  DataType type = DataType::kString;
  std::vector<std::string> cells;
  std::string error;  // compile error "offset: message", or evaluation error
};

inline Evaluated Evaluate(std::string_view text, const RecordBatch& batch, int64_t now_micros = 0) {
  Evaluated out;
  ExprError error;
  auto compiled = CompileExpression(text, *batch.schema(), &error);
  if (!compiled) {
    out.error = std::to_string(error.offset) + ": " + error.message;
    return out;
  }
  out.type = compiled->type();
  auto column = compiled->Evaluate(batch, EvalContext{now_micros});
  if (!column.ok()) {
    out.error = column.status().ToString();
    return out;
  }
  EXPECT_EQ(column.value()->length(), batch.num_rows()) << text;
  EXPECT_EQ(column.value()->type(), compiled->type()) << text;
  out.cells = Cells(*column.value());
  return out;
}

// The single value of an expression over literals.
inline std::string EvaluateConstant(std::string_view text) {
  Evaluated e = Evaluate(text, *RowsOnly(1));
  if (!e.error.empty()) return "error " + e.error;
  return e.cells.at(0);
}

inline ExprError CompileError(std::string_view text, const Schema& schema) {
  ExprError error;
  auto compiled = CompileExpression(text, schema, &error);
  EXPECT_EQ(compiled, nullptr) << text << " compiled but should not";
  return error;
}

using CellTexts = std::vector<std::string>;

}  // namespace sluice::expr::testing
