// + - * / %, unary minus, abs() and round() over BIGINT and DOUBLE columns.
#include <charconv>
#include <cmath>
#include <limits>

#include "expr/kernels.h"

namespace sluice::expr {
namespace {

// Two's-complement wrap-around, as Spark's non-ANSI integer arithmetic (and
// without the undefined behaviour of signed overflow in C++).
int64_t WrapAdd(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b)); }
int64_t WrapSub(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b)); }
int64_t WrapMul(int64_t a, int64_t b) { return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b)); }

class ArithmeticKernel final : public Kernel {
 public:
  ArithmeticKernel(ArithmeticOp op, DataType type, KernelPtr lhs, KernelPtr rhs)
      : Kernel(ExprType::Scalar(type), {std::move(lhs), std::move(rhs)}),
        op_(op) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(Operand a, EvaluateOperand(*children()[0], batch, ctx));
    SLUICE_ASSIGN_OR_RETURN(Operand b, EvaluateOperand(*children()[1], batch, ctx));
    const int64_t n = batch.num_rows();
    const DataType out = type().scalar;
    if (a.is_null_constant() || b.is_null_constant()) return ColumnPtr(compute::MakeAllNullColumn(out, n));
    if (children()[0]->type().scalar == DataType::kInt64) {
      switch (op_) {
        case ArithmeticOp::kAdd: return MapBinaryToFixed<int64_t, int64_t>(out, a, b, n, WrapAdd);
        case ArithmeticOp::kSubtract: return MapBinaryToFixed<int64_t, int64_t>(out, a, b, n, WrapSub);
        case ArithmeticOp::kMultiply: return MapBinaryToFixed<int64_t, int64_t>(out, a, b, n, WrapMul);
        case ArithmeticOp::kModulo:
          return MapBinaryToFixedOrNull<int64_t, int64_t>(out, a, b, n, [](int64_t x, int64_t y, int64_t* r) {
            if (y == 0) return false;
            *r = y == -1 ? 0 : x % y;  // INT64_MIN % -1 traps in C++; the answer is 0
            return true;
          });
        case ArithmeticOp::kDivide: break;
      }
      return Status::Internal("integer division reached the integer kernel");
    }
    switch (op_) {
      case ArithmeticOp::kAdd: return MapBinaryToFixed<double, double>(out, a, b, n, [](double x, double y) { return x + y; });
      case ArithmeticOp::kSubtract: return MapBinaryToFixed<double, double>(out, a, b, n, [](double x, double y) { return x - y; });
      case ArithmeticOp::kMultiply: return MapBinaryToFixed<double, double>(out, a, b, n, [](double x, double y) { return x * y; });
      case ArithmeticOp::kDivide:
        return MapBinaryToFixedOrNull<double, double>(out, a, b, n, [](double x, double y, double* r) {
          if (y == 0) return false;  // Spark: division by zero is NULL, not infinity
          *r = x / y;
          return true;
        });
      case ArithmeticOp::kModulo:
        return MapBinaryToFixedOrNull<double, double>(out, a, b, n, [](double x, double y, double* r) {
          if (y == 0) return false;
          *r = std::fmod(x, y);
          return true;
        });
    }
    return Status::Internal("unknown arithmetic operator");
  }

 private:
  ArithmeticOp op_;
};

// A unary numeric function: IntFn over BIGINT, DoubleFn over DOUBLE.
template <typename IntFn, typename DoubleFn>
class NumericMapKernel final : public Kernel {
 public:
  NumericMapKernel(KernelPtr operand, IntFn int_fn, DoubleFn double_fn)
      : Kernel(operand->type(), {operand}), int_fn_(int_fn), double_fn_(double_fn) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    if (in->type() == DataType::kInt64) return MapToFixed<int64_t, int64_t>(*in, DataType::kInt64, int_fn_);
    return MapToFixed<double, double>(*in, DataType::kFloat64, double_fn_);
  }

 private:
  IntFn int_fn_;
  DoubleFn double_fn_;
};

template <typename IntFn, typename DoubleFn>
KernelPtr MakeNumericMap(KernelPtr operand, IntFn int_fn, DoubleFn double_fn) {
  return std::make_shared<NumericMapKernel<IntFn, DoubleFn>>(std::move(operand), int_fn, double_fn);
}

// HALF_UP rounding of the shortest decimal text of `x`, as Spark rounds a
// double through BigDecimal: round(1.005, 2) is 1.01 although the binary
// value is slightly below 1.005.
double RoundHalfUp(double x, int64_t digits) {
  if (!std::isfinite(x) || x == 0) return x;
  char text[64];
  auto r = std::to_chars(text, text + sizeof text, std::fabs(x), std::chars_format::scientific);
  std::string_view s(text, static_cast<size_t>(r.ptr - text));
  size_t e_at = s.find('e');
  int exponent = 0;
  std::from_chars(s.data() + e_at + 1 + (s[e_at + 1] == '+'), s.data() + s.size(), exponent);
  char mantissa[32];
  int length = 0;
  for (char c : s.substr(0, e_at))
    if (c != '.') mantissa[length++] = c;
  // |x| = 0.mantissa * 10^(exponent + 1); keep this many mantissa digits:
  int64_t keep = exponent + 1 + digits;
  if (keep >= length) return x;
  if (keep < 0) return 0.0;
  bool round_up = mantissa[keep] >= '5';
  int scale = exponent + 1;
  char digits_text[40];
  int kept = static_cast<int>(keep);
  std::memcpy(digits_text, mantissa, static_cast<size_t>(kept));
  if (round_up) {
    int i = kept - 1;
    while (i >= 0 && digits_text[i] == '9') digits_text[i--] = '0';
    if (i >= 0) {
      ++digits_text[i];
    } else {  // 999 -> 1000: one more digit in front
      std::memmove(digits_text + 1, digits_text, static_cast<size_t>(kept));
      digits_text[0] = '1';
      ++kept;
      ++scale;
    }
  }
  if (kept == 0) return 0.0;
  char number[80];
  int len = std::snprintf(number, sizeof number, "0.%.*se%d", kept, digits_text, scale);
  double result = 0;
  std::from_chars(number, number + len, result);
  return x < 0 ? -result : result;
}

int64_t RoundIntegerHalfUp(int64_t x, int64_t digits) {
  if (digits >= 0) return x;
  if (digits <= -19) return 0;
  int64_t unit = 1;
  for (int64_t i = 0; i < -digits; ++i) unit *= 10;
  int64_t remainder = x % unit;
  int64_t base = x - remainder;
  if (remainder >= 0 ? remainder * 2 >= unit : -remainder * 2 >= unit)
    return remainder >= 0 ? WrapAdd(base, unit) : WrapSub(base, unit);
  return base;
}

}  // namespace

KernelPtr MakeArithmetic(ArithmeticOp op, KernelPtr lhs, KernelPtr rhs) {
  DataType type = op == ArithmeticOp::kDivide ? DataType::kFloat64 : lhs->type().scalar;
  return std::make_shared<ArithmeticKernel>(op, type, std::move(lhs), std::move(rhs));
}

KernelPtr MakeNegate(KernelPtr operand) {
  return MakeNumericMap(std::move(operand), [](int64_t v) { return WrapSub(0, v); }, [](double v) { return -v; });
}

KernelPtr MakeAbs(KernelPtr operand) {
  return MakeNumericMap(std::move(operand), [](int64_t v) { return v < 0 ? WrapSub(0, v) : v; },
                        [](double v) { return std::fabs(v); });
}

KernelPtr MakeRound(KernelPtr operand, int64_t digits) {
  return MakeNumericMap(std::move(operand), [digits](int64_t v) { return RoundIntegerHalfUp(v, digits); },
                        [digits](double v) { return RoundHalfUp(v, digits); });
}

}  // namespace sluice::expr
