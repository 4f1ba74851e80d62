// Kernels: the compiled, executable form of a bound expression.
//
// Each node of a bound expression is one Kernel that turns a whole batch into
// a whole column per call, so the cost of dispatch is one virtual call per
// node per batch and the work happens in typed loops inside. Kernels hold no
// mutable state: one tree is evaluated by several threads at once.
//
// Constant operands (literals, folded constant subtrees, current_timestamp())
// reach their parents as a Scalar through EvaluateOperand(), and the readers
// below let one templated loop serve both "column op column" and
// "column op constant" without materialising the constant.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "compute/bitmap.h"
#include "compute/string_column_writer.h"
#include "expr/expr_type.h"
#include "expr/expression.h"

namespace sluice::expr {

class Kernel;
using KernelPtr = std::shared_ptr<const Kernel>;

class Kernel {
 public:
  Kernel(ExprType type, std::vector<KernelPtr> children) : type_(std::move(type)), children_(std::move(children)) {}
  virtual ~Kernel() = default;

  const ExprType& type() const { return type_; }
  const std::vector<KernelPtr>& children() const { return children_; }

  // Kernels of scalar type produce a column of batch.num_rows() values.
  virtual Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const;
  // Kernels of ARRAY type.
  virtual Result<ArrayColumnPtr> EvaluateArray(const RecordBatch& batch, const EvalContext& ctx) const;
  // Kernels of STRUCT type.
  virtual Result<StructColumnPtr> EvaluateStruct(const RecordBatch& batch, const EvalContext& ctx) const;

  // The literal value, for literal kernels only (used for folding and by
  // kernels that need a bind-time constant such as a regex pattern).
  virtual const Scalar* literal() const { return nullptr; }
  // True when the value is the same for every row of the batch (literals,
  // current_timestamp()); stores it in *out.
  virtual bool ConstantFor(const EvalContext& ctx, Scalar* out) const { return false; }

 private:
  ExprType type_;
  std::vector<KernelPtr> children_;
};

// A kernel's output for one batch, seen by its parent: a column, or one
// constant value standing for every row.
struct Operand {
  ColumnPtr column;  // null when constant
  Scalar constant;

  bool is_constant() const { return column == nullptr; }
  bool is_null_constant() const { return column == nullptr && !constant.valid; }
  const uint8_t* validity() const { return column ? column->validity_bitmap() : nullptr; }
  bool is_valid(int64_t i) const { return column ? column->is_valid(i) : constant.valid; }
};

Result<Operand> EvaluateOperand(const Kernel& kernel, const RecordBatch& batch, const EvalContext& ctx);

// Row access that is the same code for a column and for a constant.
template <typename T>
struct ValuesReader {
  const T* values;
  T operator[](int64_t i) const { return values[i]; }
};
template <typename T>
struct ConstantReader {
  T value;
  T operator[](int64_t) const { return value; }
};
struct StringsReader {
  const int32_t* offsets;
  const char* data;
  std::string_view operator[](int64_t i) const {
    return {data + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i])};
  }
};

// Calls fn(reader) with the reader that fits `op`; T is the value type
// (uint8_t for BOOLEAN, int64_t, double, std::string_view).
template <typename T, typename Fn>
decltype(auto) VisitOperand(const Operand& op, Fn&& fn) {
  if (op.is_constant()) return fn(ConstantReader<T>{op.constant.As<T>()});
  if constexpr (std::is_same_v<T, std::string_view>) return fn(StringsReader{op.column->offsets(), op.column->string_data()});
  else return fn(ValuesReader<T>{op.column->values<T>()});
}

// Calls fn with the C++ value type of a scalar DataType as a tag
// (uint8_t, int64_t, double or std::string_view).
template <typename Fn>
decltype(auto) VisitDataType(DataType type, Fn&& fn) {
  switch (type) {
    case DataType::kBool: return fn(uint8_t{});
    case DataType::kInt64:
    case DataType::kTimestamp: return fn(int64_t{});
    case DataType::kFloat64: return fn(double{});
    case DataType::kString:
    case DataType::kBinary: break;
  }
  return fn(std::string_view{});
}

// Validity of a result that is null wherever any operand is null; empty when
// no operand has nulls. Null constants must be handled by the caller.
std::vector<uint8_t> CombinedValidity(const std::vector<const Operand*>& operands, int64_t rows);

// A column of the value type T (int64_t, double, uint8_t) filled by `fill(out)`,
// with the given validity.
template <typename T, typename Fill>
ColumnPtr MakeFixedColumn(DataType type, int64_t rows, std::vector<uint8_t> validity, Fill&& fill) {
  auto column = std::make_shared<Column>(type, rows);
  column->mutable_values().resize(static_cast<size_t>(rows) * sizeof(T));
  fill(reinterpret_cast<T*>(column->mutable_values().data()));
  compute::SetValidity(*column, std::move(validity));
  return column;
}

// Reader over a column's values for the value type In (see VisitOperand).
template <typename In>
auto ColumnValues(const Column& column) {
  if constexpr (std::is_same_v<In, std::string_view>) return StringsReader{column.offsets(), column.string_data()};
  else return ValuesReader<In>{column.values<In>()};
}

// out[i] = fn(in[i]): a fixed-width result with the input's nulls. fn also runs
// on null slots (their value is ignored), which keeps the loop branch-free.
template <typename In, typename Out, typename Fn>
ColumnPtr MapToFixed(const Column& in, DataType out_type, Fn&& fn) {
  const int64_t n = in.length();
  auto read = ColumnValues<In>(in);
  std::vector<uint8_t> validity(in.validity_buffer());
  return MakeFixedColumn<Out>(out_type, n, std::move(validity), [&](Out* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = fn(read[i]);
  });
}

// Like MapToFixed, but fn(value, &result) returns false when the result is NULL.
template <typename In, typename Out, typename Fn>
ColumnPtr MapToFixedOrNull(const Column& in, DataType out_type, Fn&& fn) {
  const int64_t n = in.length();
  auto read = ColumnValues<In>(in);
  const uint8_t* in_valid = in.validity_bitmap();
  std::vector<uint8_t> validity = compute::AllValidBitmap(n);
  auto column = std::make_shared<Column>(out_type, n);
  column->mutable_values().resize(static_cast<size_t>(n) * sizeof(Out));
  Out* out = reinterpret_cast<Out*>(column->mutable_values().data());
  for (int64_t i = 0; i < n; ++i) {
    if ((in_valid && !compute::GetBit(in_valid, i)) || !fn(read[i], &out[i])) {
      out[i] = Out{};
      compute::ClearBit(validity.data(), i);
    }
  }
  compute::SetValidity(*column, std::move(validity));
  return column;
}

// A STRING/BINARY result: fn(value, writer) appends exactly one value (or a
// null) per valid input row; null inputs give null outputs.
template <typename In, typename Fn>
ColumnPtr MapToString(const Column& in, DataType out_type, size_t expected_bytes, Fn&& fn) {
  const int64_t n = in.length();
  auto read = ColumnValues<In>(in);
  compute::StringColumnWriter writer(out_type, n, expected_bytes);
  const uint8_t* in_valid = in.validity_bitmap();
  for (int64_t i = 0; i < n; ++i) {
    if (in_valid && !compute::GetBit(in_valid, i)) writer.AppendNull();
    else fn(read[i], writer);
  }
  return writer.Finish();
}

// out[i] = fn(a[i], b[i]) over two operands of value type T, null where
// either is null. The caller handles null constants.
template <typename T, typename Out, typename Fn>
ColumnPtr MapBinaryToFixed(DataType out_type, const Operand& a, const Operand& b, int64_t rows, Fn&& fn) {
  std::vector<uint8_t> validity = CombinedValidity({&a, &b}, rows);
  return VisitOperand<T>(a, [&](auto ra) {
    return VisitOperand<T>(b, [&](auto rb) {
      return MakeFixedColumn<Out>(out_type, rows, std::move(validity), [&](Out* out) {
        for (int64_t i = 0; i < rows; ++i) out[i] = fn(ra[i], rb[i]);
      });
    });
  });
}

// Like MapBinaryToFixed, but fn(x, y, &result) returns false for a NULL result.
template <typename T, typename Out, typename Fn>
ColumnPtr MapBinaryToFixedOrNull(DataType out_type, const Operand& a, const Operand& b, int64_t rows, Fn&& fn) {
  std::vector<uint8_t> validity = CombinedValidity({&a, &b}, rows);
  if (validity.empty()) validity = compute::AllValidBitmap(rows);
  return VisitOperand<T>(a, [&](auto ra) {
    return VisitOperand<T>(b, [&](auto rb) {
      uint8_t* bits = validity.data();
      return MakeFixedColumn<Out>(out_type, rows, std::move(validity), [&](Out* out) {
        for (int64_t i = 0; i < rows; ++i) {
          if (!fn(ra[i], rb[i], &out[i])) {
            out[i] = Out{};
            compute::ClearBit(bits, i);
          }
        }
      });
    });
  });
}

// --- Leaves ---------------------------------------------------------------

KernelPtr MakeColumnRef(int index, DataType type);
KernelPtr MakeLiteral(Scalar value);
// The bare NULL literal, typed by its context when bound.
KernelPtr MakeNullLiteral();
KernelPtr MakeCurrentTimestamp();

}  // namespace sluice::expr
