// Consumers of nested values: size(array), array[i] and struct.field.
#include "expr/kernels.h"

namespace sluice::expr {
namespace {

class SizeKernel final : public Kernel {
 public:
  explicit SizeKernel(KernelPtr array) : Kernel(ExprType::Scalar(DataType::kInt64), {std::move(array)}) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ArrayColumnPtr in, children()[0]->EvaluateArray(batch, ctx));
    return MakeFixedColumn<int64_t>(DataType::kInt64, in->length, {}, [&](int64_t* out) {
      // Spark (spark.sql.legacy.sizeOfNull, on unless ANSI mode) gives -1 for a NULL array.
      for (int64_t i = 0; i < in->length; ++i)
        out[i] = in->is_valid(i) ? in->offsets[static_cast<size_t>(i + 1)] - in->offsets[static_cast<size_t>(i)] : -1;
    });
  }
};

class ArrayElementKernel final : public Kernel {
 public:
  ArrayElementKernel(KernelPtr array, KernelPtr index)
      : Kernel(ExprType::Scalar(array->type().scalar), {array, std::move(index)}) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ArrayColumnPtr array, children()[0]->EvaluateArray(batch, ctx));
    SLUICE_ASSIGN_OR_RETURN(Operand index, EvaluateOperand(*children()[1], batch, ctx));
    const int64_t n = array->length;
    const Column& elements = *array->elements;
    // Row i's element position in `elements`, or -1 for NULL (null array or
    // index, or an index outside the array, as Spark without ANSI mode).
    auto position = [&](auto read_index, int64_t i) -> int64_t {
      if (!array->is_valid(i) || !index.is_valid(i)) return -1;
      int64_t k = read_index[i];
      int64_t begin = array->offsets[static_cast<size_t>(i)], end = array->offsets[static_cast<size_t>(i + 1)];
      if (k < 0 || k >= end - begin) return -1;
      return elements.is_valid(begin + k) ? begin + k : -1;
    };
    return VisitOperand<int64_t>(index, [&](auto read_index) -> ColumnPtr {
      if (IsVariableWidth(elements.type())) {
        compute::StringColumnWriter out(elements.type(), n, elements.data_buffer().size() / 2);
        for (int64_t i = 0; i < n; ++i) {
          int64_t at = position(read_index, i);
          if (at < 0) out.AppendNull();
          else out.Append(elements.string_at(at));
        }
        return out.Finish();
      }
      ColumnBuilder out(elements.type(), n);
      for (int64_t i = 0; i < n; ++i) {
        int64_t at = position(read_index, i);
        if (at < 0) out.AppendNull();
        else out.AppendFrom(elements, at);
      }
      return out.Finish();
    });
  }
};

class StructFieldKernel final : public Kernel {
 public:
  StructFieldKernel(KernelPtr record, int field)
      : Kernel(ExprType::Scalar(record->type().fields->field(field).type), {record}), field_(field) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(StructColumnPtr record, children()[0]->EvaluateStruct(batch, ctx));
    // Struct producers make every field NULL where the struct is NULL, so the
    // field column is shared as is.
    return record->fields[static_cast<size_t>(field_)];
  }

 private:
  int field_;
};

}  // namespace

KernelPtr MakeSize(KernelPtr array) { return std::make_shared<SizeKernel>(std::move(array)); }
KernelPtr MakeArrayElement(KernelPtr array, KernelPtr index) {
  return std::make_shared<ArrayElementKernel>(std::move(array), std::move(index));
}
KernelPtr MakeStructField(KernelPtr record, int field) { return std::make_shared<StructFieldKernel>(std::move(record), field); }

}  // namespace sluice::expr
