#include "expr/kernel.h"

namespace sluice::expr {

Result<ColumnPtr> Kernel::Evaluate(const RecordBatch&, const EvalContext&) const {
  return Status::Internal("expression of type " + type_.ToString() + " evaluated as a scalar column");
}
Result<ArrayColumnPtr> Kernel::EvaluateArray(const RecordBatch&, const EvalContext&) const {
  return Status::Internal("expression of type " + type_.ToString() + " evaluated as an array");
}
Result<StructColumnPtr> Kernel::EvaluateStruct(const RecordBatch&, const EvalContext&) const {
  return Status::Internal("expression of type " + type_.ToString() + " evaluated as a struct");
}

Result<Operand> EvaluateOperand(const Kernel& kernel, const RecordBatch& batch, const EvalContext& ctx) {
  Operand op;
  if (kernel.ConstantFor(ctx, &op.constant)) return op;
  SLUICE_ASSIGN_OR_RETURN(op.column, kernel.Evaluate(batch, ctx));
  return op;
}

std::vector<uint8_t> CombinedValidity(const std::vector<const Operand*>& operands, int64_t rows) {
  std::vector<uint8_t> out;
  for (const Operand* op : operands) {
    const uint8_t* bits = op->validity();
    if (!bits) continue;
    if (out.empty()) {
      out.assign(bits, bits + compute::BitmapBytes(rows));
    } else {
      for (size_t i = 0; i < out.size(); ++i) out[i] &= bits[i];
    }
  }
  return out;
}

namespace {

class ColumnRefKernel final : public Kernel {
 public:
  ColumnRefKernel(int index, DataType type) : Kernel(ExprType::Scalar(type), {}), index_(index) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext&) const override {
    if (index_ >= batch.num_columns() || batch.column(index_).type() != type().scalar)
      return Status::InvalidArgument("batch does not match the schema the expression was compiled for: column " +
                                     std::to_string(index_) + " should be " + DataTypeName(type().scalar));
    return batch.column_ptr(index_);
  }

 private:
  int index_;
};

class LiteralKernel final : public Kernel {
 public:
  LiteralKernel(Scalar value, ExprType type) : Kernel(std::move(type), {}), value_(std::move(value)) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext&) const override {
    return ColumnPtr(value_.Materialize(batch.num_rows()));
  }
  const Scalar* literal() const override { return &value_; }
  bool ConstantFor(const EvalContext&, Scalar* out) const override {
    *out = value_;
    return true;
  }

 private:
  Scalar value_;
};

class CurrentTimestampKernel final : public Kernel {
 public:
  CurrentTimestampKernel() : Kernel(ExprType::Scalar(DataType::kTimestamp), {}) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    return ColumnPtr(Scalar::Timestamp(ctx.batch_timestamp_micros).Materialize(batch.num_rows()));
  }
  bool ConstantFor(const EvalContext& ctx, Scalar* out) const override {
    *out = Scalar::Timestamp(ctx.batch_timestamp_micros);
    return true;
  }
};

}  // namespace

KernelPtr MakeColumnRef(int index, DataType type) { return std::make_shared<ColumnRefKernel>(index, type); }
KernelPtr MakeLiteral(Scalar value) {
  ExprType type = ExprType::Scalar(value.type);
  return std::make_shared<LiteralKernel>(std::move(value), type);
}
KernelPtr MakeNullLiteral() { return std::make_shared<LiteralKernel>(Scalar::Null(DataType::kString), ExprType::NullLiteral()); }
KernelPtr MakeCurrentTimestamp() { return std::make_shared<CurrentTimestampKernel>(); }

}  // namespace sluice::expr
