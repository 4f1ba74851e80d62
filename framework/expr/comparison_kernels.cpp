// = <> < <= > >= <=> and IN over two operands of one scalar type.
#include <cmath>

#include "expr/kernels.h"

namespace sluice::expr {
namespace {

// Spark orders doubles with NaN equal to itself and above every other value
// (and -0.0 equal to 0.0), so that comparisons and sorting agree.
template <typename T>
bool ValueEqual(T a, T b) {
  if constexpr (std::is_same_v<T, double>) return a == b || (std::isnan(a) && std::isnan(b));
  else return a == b;
}
template <typename T>
bool ValueLess(T a, T b) {
  if constexpr (std::is_same_v<T, double>) return a < b || (std::isnan(b) && !std::isnan(a));
  else return a < b;
}

class CompareKernel final : public Kernel {
 public:
  CompareKernel(CompareOp op, KernelPtr lhs, KernelPtr rhs)
      : Kernel(ExprType::Scalar(DataType::kBool), {std::move(lhs), std::move(rhs)}), op_(op) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(Operand a, EvaluateOperand(*children()[0], batch, ctx));
    SLUICE_ASSIGN_OR_RETURN(Operand b, EvaluateOperand(*children()[1], batch, ctx));
    const int64_t n = batch.num_rows();
    if (op_ == CompareOp::kNullSafeEqual) return NullSafeEqual(a, b, n);
    if (a.is_null_constant() || b.is_null_constant()) return ColumnPtr(compute::MakeAllNullColumn(DataType::kBool, n));
    return VisitDataType(children()[0]->type().scalar, [&](auto tag) -> ColumnPtr {
      using T = decltype(tag);
      auto run = [&](auto fn) { return MapBinaryToFixed<T, uint8_t>(DataType::kBool, a, b, n, fn); };
      switch (op_) {
        case CompareOp::kEqual: return run([](T x, T y) -> uint8_t { return ValueEqual(x, y); });
        case CompareOp::kNotEqual: return run([](T x, T y) -> uint8_t { return !ValueEqual(x, y); });
        case CompareOp::kLess: return run([](T x, T y) -> uint8_t { return ValueLess(x, y); });
        case CompareOp::kLessEqual: return run([](T x, T y) -> uint8_t { return !ValueLess(y, x); });
        case CompareOp::kGreater: return run([](T x, T y) -> uint8_t { return ValueLess(y, x); });
        case CompareOp::kGreaterEqual: return run([](T x, T y) -> uint8_t { return !ValueLess(x, y); });
        case CompareOp::kNullSafeEqual: break;
      }
      return nullptr;
    });
  }

 private:
  // a <=> b: never NULL; two NULLs are equal.
  ColumnPtr NullSafeEqual(const Operand& a, const Operand& b, int64_t n) const {
    return VisitDataType(children()[0]->type().scalar, [&](auto tag) -> ColumnPtr {
      using T = decltype(tag);
      auto compare = [&](auto ra, auto rb) {
        return MakeFixedColumn<uint8_t>(DataType::kBool, n, {}, [&](uint8_t* out) {
          for (int64_t i = 0; i < n; ++i) {
            bool va = a.is_valid(i), vb = b.is_valid(i);
            out[i] = (va && vb) ? ValueEqual<T>(ra[i], rb[i]) : (va == vb);
          }
        });
      };
      return VisitOperand<T>(a, [&](auto ra) { return VisitOperand<T>(b, [&](auto rb) { return compare(ra, rb); }); });
    });
  }

  CompareOp op_;
};

class InListKernel final : public Kernel {
 public:
  InListKernel(KernelPtr value, std::vector<Scalar> list)
      : Kernel(ExprType::Scalar(DataType::kBool), {std::move(value)}) {
    for (auto& s : list) {
      if (s.valid) values_.push_back(std::move(s));
      else list_has_null_ = true;
    }
  }

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    return VisitDataType(in->type(), [&](auto tag) -> ColumnPtr {
      using T = decltype(tag);
      std::vector<T> candidates;
      for (const auto& s : values_) candidates.push_back(s.As<T>());
      // x IN (...) is TRUE on a match, else NULL if the list holds a NULL, else FALSE.
      return MapToFixedOrNull<T, uint8_t>(*in, DataType::kBool, [&](T v, uint8_t* out) {
        for (const T& c : candidates)
          if (ValueEqual(v, c)) return *out = 1, true;
        *out = 0;
        return !list_has_null_;
      });
    });
  }

 private:
  std::vector<Scalar> values_;
  bool list_has_null_ = false;
};

}  // namespace

KernelPtr MakeCompare(CompareOp op, KernelPtr lhs, KernelPtr rhs) {
  return std::make_shared<CompareKernel>(op, std::move(lhs), std::move(rhs));
}

KernelPtr MakeInList(KernelPtr value, std::vector<Scalar> list) {
  return std::make_shared<InListKernel>(std::move(value), std::move(list));
}

}  // namespace sluice::expr
