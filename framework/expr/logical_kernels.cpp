// AND / OR / NOT with SQL's three-valued logic, IS [NOT] NULL, and the
// conditionals CASE, if() and coalesce(), which all pick one of several
// operands per row.
#include "expr/kernels.h"

namespace sluice::expr {
namespace {

// Whether row i of an operand is valid, branch-free for the common shapes.
struct ValidityReader {
  const uint8_t* bits;   // null: every row has `constant` validity
  bool constant;
  explicit ValidityReader(const Operand& op) : bits(op.validity()), constant(op.column ? true : op.constant.valid) {}
  bool operator[](int64_t i) const { return bits ? compute::GetBit(bits, i) : constant; }
};

class KleeneKernel final : public Kernel {
 public:
  KleeneKernel(bool is_and, KernelPtr lhs, KernelPtr rhs)
      : Kernel(ExprType::Scalar(DataType::kBool), {std::move(lhs), std::move(rhs)}), is_and_(is_and) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(Operand a, EvaluateOperand(*children()[0], batch, ctx));
    SLUICE_ASSIGN_OR_RETURN(Operand b, EvaluateOperand(*children()[1], batch, ctx));
    const int64_t n = batch.num_rows();
    ValidityReader valid_a(a), valid_b(b);
    // Fast path: no nulls on either side is a plain byte-wise AND / OR.
    const bool no_nulls = (a.column ? !a.validity() : a.constant.valid) && (b.column ? !b.validity() : b.constant.valid);
    std::vector<uint8_t> validity;
    if (!no_nulls) validity = compute::AllValidBitmap(n);
    return VisitOperand<uint8_t>(a, [&](auto ra) {
      return VisitOperand<uint8_t>(b, [&](auto rb) {
        uint8_t* bits = validity.data();
        return MakeFixedColumn<uint8_t>(DataType::kBool, n, std::move(validity), [&](uint8_t* out) {
          if (no_nulls) {
            if (is_and_) for (int64_t i = 0; i < n; ++i) out[i] = ra[i] & rb[i];
            else for (int64_t i = 0; i < n; ++i) out[i] = ra[i] | rb[i];
            return;
          }
          for (int64_t i = 0; i < n; ++i) {
            bool va = valid_a[i], vb = valid_b[i];
            bool xa = ra[i] != 0, xb = rb[i] != 0;
            // AND: a known FALSE decides; OR: a known TRUE decides. Otherwise a NULL makes the result NULL.
            bool decisive = is_and_ ? ((va && !xa) || (vb && !xb)) : ((va && xa) || (vb && xb));
            if (decisive) {
              out[i] = is_and_ ? 0 : 1;
            } else if (va && vb) {
              out[i] = is_and_ ? 1 : 0;
            } else {
              out[i] = 0;
              compute::ClearBit(bits, i);
            }
          }
        });
      });
    });
  }

 private:
  bool is_and_;
};

class NotKernel final : public Kernel {
 public:
  explicit NotKernel(KernelPtr operand) : Kernel(ExprType::Scalar(DataType::kBool), {std::move(operand)}) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    return MapToFixed<uint8_t, uint8_t>(*in, DataType::kBool, [](uint8_t v) -> uint8_t { return !v; });
  }
};

class IsNullKernel final : public Kernel {
 public:
  IsNullKernel(KernelPtr operand, bool negated)
      : Kernel(ExprType::Scalar(DataType::kBool), {std::move(operand)}), negated_(negated) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(Operand in, EvaluateOperand(*children()[0], batch, ctx));
    const int64_t n = batch.num_rows();
    ValidityReader valid(in);
    return MakeFixedColumn<uint8_t>(DataType::kBool, n, {}, [&](uint8_t* out) {
      for (int64_t i = 0; i < n; ++i) out[i] = valid[i] == negated_;
    });
  }

 private:
  bool negated_;
};

constexpr int32_t kNoChoice = -1;

// Row i takes operand choice[i]'s value (NULL where choice[i] is kNoChoice).
ColumnPtr GatherChosen(DataType type, const std::vector<Operand>& operands, const std::vector<int32_t>& choice, int64_t n) {
  std::vector<uint8_t> validity = compute::AllValidBitmap(n);
  auto mark = [&](int64_t i) {
    int32_t k = choice[static_cast<size_t>(i)];
    if (k == kNoChoice || !operands[static_cast<size_t>(k)].is_valid(i)) {
      compute::ClearBit(validity.data(), i);
      return false;
    }
    return true;
  };
  if (IsVariableWidth(type)) {
    size_t bytes = 0;
    for (const auto& op : operands) bytes = std::max(bytes, op.column ? op.column->data_buffer().size() : op.constant.bytes.size() * static_cast<size_t>(n));
    compute::StringColumnWriter writer(type, n, bytes);
    for (int64_t i = 0; i < n; ++i) {
      if (!mark(i)) {
        writer.AppendNull();
        continue;
      }
      const Operand& op = operands[static_cast<size_t>(choice[static_cast<size_t>(i)])];
      writer.Append(op.column ? op.column->string_at(i) : std::string_view(op.constant.bytes));
    }
    return writer.Finish();
  }
  return VisitDataType(type, [&](auto tag) -> ColumnPtr {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, std::string_view>) {
      return nullptr;
    } else {
      auto column = Column::AllocateFixed(type, n);
      T* out = reinterpret_cast<T*>(column->mutable_values().data());
      for (size_t k = 0; k < operands.size(); ++k) {
        VisitOperand<T>(operands[k], [&](auto read) {
          for (int64_t i = 0; i < n; ++i)
            if (choice[static_cast<size_t>(i)] == static_cast<int32_t>(k)) out[i] = read[i];
          return 0;
        });
      }
      for (int64_t i = 0; i < n; ++i) mark(i);
      compute::SetValidity(*column, std::move(validity));
      return column;
    }
  });
}

class CaseKernel final : public Kernel {
 public:
  CaseKernel(std::vector<KernelPtr> conditions, std::vector<KernelPtr> values, KernelPtr otherwise, DataType type)
      : Kernel(ExprType::Scalar(type), Children(conditions, values, otherwise)),
        branches_(conditions.size()),
        has_else_(otherwise != nullptr) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    const int64_t n = batch.num_rows();
    std::vector<int32_t> choice(static_cast<size_t>(n), kNoChoice);
    int64_t undecided = n;
    std::vector<Operand> values;
    for (size_t k = 0; k < branches_; ++k) {
      if (undecided > 0) {
        SLUICE_ASSIGN_OR_RETURN(Operand cond, EvaluateOperand(*children()[k], batch, ctx));
        ValidityReader valid(cond);
        VisitOperand<uint8_t>(cond, [&](auto read) {
          for (int64_t i = 0; i < n; ++i) {
            if (choice[static_cast<size_t>(i)] == kNoChoice && valid[i] && read[i]) {
              choice[static_cast<size_t>(i)] = static_cast<int32_t>(k);
              --undecided;
            }
          }
          return 0;
        });
      }
    }
    if (has_else_ && undecided > 0)
      for (auto& c : choice)
        if (c == kNoChoice) c = static_cast<int32_t>(branches_);
    // Branches no row chose are not evaluated, like Spark's lazy CASE.
    std::vector<bool> used(branches_ + 1, false);
    for (int32_t c : choice)
      if (c != kNoChoice) used[static_cast<size_t>(c)] = true;
    const size_t value_count = branches_ + (has_else_ ? 1 : 0);
    for (size_t k = 0; k < value_count; ++k) {
      if (!used[k]) {
        values.push_back(Operand{nullptr, Scalar::Null(type().scalar)});
        continue;
      }
      SLUICE_ASSIGN_OR_RETURN(Operand v, EvaluateOperand(*children()[branches_ + k], batch, ctx));
      values.push_back(std::move(v));
    }
    return GatherChosen(type().scalar, values, choice, n);
  }

 private:
  static std::vector<KernelPtr> Children(const std::vector<KernelPtr>& conditions, const std::vector<KernelPtr>& values,
                                         const KernelPtr& otherwise) {
    std::vector<KernelPtr> all(conditions);
    all.insert(all.end(), values.begin(), values.end());
    if (otherwise) all.push_back(otherwise);
    return all;
  }

  size_t branches_;
  bool has_else_;
};

class CoalesceKernel final : public Kernel {
 public:
  CoalesceKernel(std::vector<KernelPtr> values, DataType type) : Kernel(ExprType::Scalar(type), std::move(values)) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    const int64_t n = batch.num_rows();
    std::vector<int32_t> choice(static_cast<size_t>(n), kNoChoice);
    std::vector<Operand> values;
    int64_t undecided = n;
    for (size_t k = 0; k < children().size(); ++k) {
      if (undecided == 0) break;  // later arguments cannot matter
      SLUICE_ASSIGN_OR_RETURN(Operand v, EvaluateOperand(*children()[k], batch, ctx));
      ValidityReader valid(v);
      for (int64_t i = 0; i < n; ++i) {
        if (choice[static_cast<size_t>(i)] == kNoChoice && valid[i]) {
          choice[static_cast<size_t>(i)] = static_cast<int32_t>(k);
          --undecided;
        }
      }
      values.push_back(std::move(v));
    }
    return GatherChosen(type().scalar, values, choice, n);
  }
};

}  // namespace

KernelPtr MakeAnd(KernelPtr lhs, KernelPtr rhs) { return std::make_shared<KleeneKernel>(true, std::move(lhs), std::move(rhs)); }
KernelPtr MakeOr(KernelPtr lhs, KernelPtr rhs) { return std::make_shared<KleeneKernel>(false, std::move(lhs), std::move(rhs)); }
KernelPtr MakeNot(KernelPtr operand) { return std::make_shared<NotKernel>(std::move(operand)); }
KernelPtr MakeIsNull(KernelPtr operand, bool negated) { return std::make_shared<IsNullKernel>(std::move(operand), negated); }

KernelPtr MakeCase(std::vector<KernelPtr> conditions, std::vector<KernelPtr> values, KernelPtr otherwise, DataType type) {
  return std::make_shared<CaseKernel>(std::move(conditions), std::move(values), std::move(otherwise), type);
}

KernelPtr MakeCoalesce(std::vector<KernelPtr> values, DataType type) {
  return std::make_shared<CoalesceKernel>(std::move(values), type);
}

}  // namespace sluice::expr
