// Binder: Ast -> kernel tree, for one input schema.
//
// Resolves column names (exact, then case-insensitive, as Spark), looks up
// functions by case-insensitive name, checks argument counts and types,
// inserts Spark's implicit casts (int op double -> double, string compared
// with a number -> double, string compared with a timestamp -> timestamp...),
// and folds subtrees whose inputs are all literals into one literal. Errors
// are thrown as ExprFailure pointing at the offending token.
#pragma once

#include <string>

#include "expr/ast.h"
#include "expr/kernels.h"

namespace sluice::expr {

class Binder {
 public:
  explicit Binder(const Schema& input) : input_(input) {}

  // Any expression except a generator (explode is only valid as a whole
  // select item, which the caller unwraps before binding its argument).
  KernelPtr Bind(const Ast& ast);

  // True when `ast` is a call of explode().
  static bool IsGenerator(const Ast& ast);

  // The names of every function, sorted, for error messages and docs.
  static std::string FunctionNames();

  const Schema& input() const { return input_; }

  // --- Helpers the function table uses ---------------------------------
  [[noreturn]] static void Fail(size_t offset, std::string message) { throw ExprFailure{offset, std::move(message)}; }
  KernelPtr ExpectString(const Ast& call, size_t arg, KernelPtr k) const;
  KernelPtr ExpectInteger(const Ast& call, size_t arg, KernelPtr k) const;
  KernelPtr ExpectNumeric(const Ast& call, size_t arg, KernelPtr k) const;
  KernelPtr ExpectArray(const Ast& call, size_t arg, KernelPtr k) const;
  std::string StringConstant(const Ast& call, size_t arg, const KernelPtr& k, const char* what) const;
  int64_t IntegerConstant(const Ast& call, size_t arg, const KernelPtr& k, const char* what) const;
  // The common type of CASE/coalesce/if values; fails at `offset` when none.
  static DataType CommonType(const std::vector<KernelPtr>& values, const std::vector<const Ast*>& asts);
  static KernelPtr CastTo(KernelPtr k, DataType type);
  static KernelPtr Fold(KernelPtr k);
  KernelPtr Compare(CompareOp op, KernelPtr lhs, KernelPtr rhs, size_t offset, const std::string& op_text) const;

 private:
  KernelPtr BindColumn(const Ast& ast);
  KernelPtr BindBinary(const Ast& ast);
  KernelPtr BindArithmetic(const Ast& ast, KernelPtr lhs, KernelPtr rhs);
  KernelPtr BindLogic(const Ast& ast);
  KernelPtr BindCase(const Ast& ast);
  KernelPtr BindCast(const Ast& ast);
  KernelPtr BindIn(const Ast& ast);
  KernelPtr BindBetween(const Ast& ast);
  KernelPtr BindLike(const Ast& ast);
  KernelPtr BindIndex(const Ast& ast);
  KernelPtr BindField(const Ast& ast);
  KernelPtr BindFunction(const Ast& ast);
  KernelPtr ExpectBoolean(const Ast& at, KernelPtr k, const std::string& what) const;

  const Schema& input_;
};

}  // namespace sluice::expr
