#include "expr/binder.h"

#include <algorithm>
#include <functional>
#include <optional>

#include "expr/kernels.h"
#include "sluice/value_format.h"

namespace sluice::expr {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Ordinal(size_t arg) { return "argument " + std::to_string(arg + 1); }

// The type both sides of a comparison are cast to, as Spark's non-ANSI coercion.
std::optional<DataType> ComparisonType(const ExprType& a, const ExprType& b) {
  if (a.is_null_literal) return b.is_null_literal ? DataType::kString : b.scalar;
  if (b.is_null_literal) return a.scalar;
  DataType x = a.scalar, y = b.scalar;
  if (x == y) return x;
  auto either = [&](DataType p, DataType q) { return (x == p && y == q) || (x == q && y == p); };
  if (IsNumeric(x) && IsNumeric(y)) return DataType::kFloat64;
  if (either(DataType::kTimestamp, DataType::kString)) return DataType::kTimestamp;
  if (either(DataType::kString, DataType::kInt64) || either(DataType::kString, DataType::kFloat64)) return DataType::kFloat64;
  if (either(DataType::kString, DataType::kBool)) return DataType::kBool;
  if (either(DataType::kString, DataType::kBinary)) return DataType::kBinary;
  return std::nullopt;
}

using BindFn = std::function<KernelPtr(Binder&, const Ast& call, std::vector<KernelPtr>& args)>;

struct FunctionSpec {
  std::string_view name;
  int min_args;
  int max_args;  // -1: any number
  BindFn bind;
};

KernelPtr BindToTimestamp(Binder& b, const Ast& call, std::vector<KernelPtr>& args) {
  if (args.size() == 2) {
    KernelPtr text = b.ExpectString(call, 0, args[0]);
    std::string pattern = b.StringConstant(call, 1, args[1], "the datetime pattern");
    std::string error;
    KernelPtr k = MakeToTimestampWithPattern(text, pattern, &error);
    if (!k) Binder::Fail(call.args[1]->offset, error);
    return k;
  }
  const ExprType& t = args[0]->type();
  if (!t.is_scalar() || t.is(DataType::kBool) || t.is(DataType::kBinary))
    Binder::Fail(call.args[0]->offset, "to_timestamp() " + Ordinal(0) + " must be STRING, BIGINT, DOUBLE or TIMESTAMP, got " + t.ToString());
  // A string parses as a timestamp; a number counts seconds since the epoch.
  return Binder::CastTo(args[0], DataType::kTimestamp);
}

const std::vector<FunctionSpec>& FunctionTable() {
  static const std::vector<FunctionSpec> table = [] {
    std::vector<FunctionSpec> t;
    auto add = [&](std::string_view name, int min, int max, BindFn fn) { t.push_back({name, min, max, std::move(fn)}); };
    auto case_map = [](bool upper) {
      return [upper](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
        return MakeCaseMap(b.ExpectString(call, 0, a[0]), upper);
      };
    };
    add("lower", 1, 1, case_map(false));
    add("lcase", 1, 1, case_map(false));
    add("upper", 1, 1, case_map(true));
    add("ucase", 1, 1, case_map(true));
    auto length = [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      if (a[0]->type().is(DataType::kBinary)) return MakeLength(a[0]);
      return MakeLength(b.ExpectString(call, 0, a[0]));
    };
    add("length", 1, 1, length);
    add("char_length", 1, 1, length);
    add("character_length", 1, 1, length);
    auto substring = [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      return MakeSubstring(b.ExpectString(call, 0, a[0]), b.ExpectInteger(call, 1, a[1]),
                           a.size() > 2 ? b.ExpectInteger(call, 2, a[2]) : nullptr);
    };
    add("substr", 2, 3, substring);
    add("substring", 2, 3, substring);
    add("concat", 0, -1, [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      if (a.empty()) return MakeLiteral(Scalar::String(""));
      std::vector<KernelPtr> parts;
      for (size_t i = 0; i < a.size(); ++i) parts.push_back(b.ExpectString(call, i, a[i]));
      return MakeConcat(std::move(parts));
    });
    auto trim = [](TrimSide side) {
      return [side](Binder& b, const Ast& call, std::vector<KernelPtr>& a) { return MakeTrim(b.ExpectString(call, 0, a[0]), side); };
    };
    add("trim", 1, 1, trim(TrimSide::kBoth));
    add("ltrim", 1, 1, trim(TrimSide::kLeft));
    add("rtrim", 1, 1, trim(TrimSide::kRight));
    add("split", 2, 3, [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      KernelPtr text = b.ExpectString(call, 0, a[0]);
      std::string pattern = b.StringConstant(call, 1, a[1], "the pattern");
      int64_t limit = a.size() > 2 ? b.IntegerConstant(call, 2, a[2], "the limit") : -1;
      std::string error;
      KernelPtr k = MakeSplit(text, pattern, limit, &error);
      if (!k) Binder::Fail(call.args[1]->offset, error);
      return k;
    });
    auto size = [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) { return MakeSize(b.ExpectArray(call, 0, a[0])); };
    add("size", 1, 1, size);
    add("cardinality", 1, 1, size);
    add("regexp_extract", 2, 3, [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      KernelPtr text = b.ExpectString(call, 0, a[0]);
      std::string pattern = b.StringConstant(call, 1, a[1], "the pattern");
      int64_t group = a.size() > 2 ? b.IntegerConstant(call, 2, a[2], "the group index") : 1;
      std::string error;
      KernelPtr k = MakeRegexpExtract(text, pattern, group, &error);
      if (!k) Binder::Fail(call.args[a.size() > 2 && error.find("group index") != std::string::npos ? 2 : 1]->offset, error);
      return k;
    });
    auto rlike = [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      KernelPtr text = b.ExpectString(call, 0, a[0]);
      std::string pattern = b.StringConstant(call, 1, a[1], "the pattern");
      std::string error;
      KernelPtr k = MakeRLike(text, pattern, &error);
      if (!k) Binder::Fail(call.args[1]->offset, error);
      return k;
    };
    add("rlike", 2, 2, rlike);
    add("regexp_like", 2, 2, rlike);
    add("from_json", 2, 2, [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      KernelPtr json = b.ExpectString(call, 0, a[0]);
      std::string ddl = b.StringConstant(call, 1, a[1], "the schema");
      auto schema = ParseSchemaDdl(ddl);
      if (!schema.ok()) Binder::Fail(call.args[1]->offset, "from_json(): " + schema.status().message());
      return MakeFromJson(json, std::move(schema).value());
    });
    add("get_json_object", 2, 2, [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      KernelPtr json = b.ExpectString(call, 0, a[0]);
      std::string path = b.StringConstant(call, 1, a[1], "the JSON path");
      std::string error;
      KernelPtr k = MakeGetJsonObject(json, path, &error);
      if (!k) Binder::Fail(call.args[1]->offset, error);
      return k;
    });
    add("to_timestamp", 1, 2, BindToTimestamp);
    auto now = [](Binder&, const Ast&, std::vector<KernelPtr>&) { return MakeCurrentTimestamp(); };
    add("current_timestamp", 0, 0, now);
    add("now", 0, 0, now);
    auto coalesce = [](Binder&, const Ast& call, std::vector<KernelPtr>& a) {
      std::vector<const Ast*> asts;
      for (const auto& arg : call.args) asts.push_back(arg.get());
      DataType type = Binder::CommonType(a, asts);
      std::vector<KernelPtr> values;
      for (auto& k : a) values.push_back(Binder::CastTo(k, type));
      return MakeCoalesce(std::move(values), type);
    };
    add("coalesce", 1, -1, coalesce);
    add("nvl", 2, 2, coalesce);
    add("ifnull", 2, 2, coalesce);
    add("if", 3, 3, [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      const ExprType& ct = a[0]->type();
      if (!ct.is_null_literal && !ct.is(DataType::kBool))
        Binder::Fail(call.args[0]->offset, "if() condition must be BOOLEAN, got " + ct.ToString());
      std::vector<KernelPtr> values{a[1], a[2]};
      DataType type = Binder::CommonType(values, {call.args[1].get(), call.args[2].get()});
      return MakeCase({Binder::CastTo(a[0], DataType::kBool)}, {Binder::CastTo(a[1], type)}, Binder::CastTo(a[2], type), type);
    });
    add("nullif", 2, 2, [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      KernelPtr equal = b.Compare(CompareOp::kEqual, a[0], a[1], call.offset, "nullif()");
      DataType type = a[0]->type().is_null_literal ? DataType::kString : a[0]->type().scalar;
      return MakeCase({equal}, {MakeLiteral(Scalar::Null(type))}, Binder::CastTo(a[0], type), type);
    });
    auto is_null = [](bool negated) {
      return [negated](Binder&, const Ast& call, std::vector<KernelPtr>& a) {
        if (!a[0]->type().is_scalar()) Binder::Fail(call.args[0]->offset, "IS NULL needs a scalar value, got " + a[0]->type().ToString());
        return MakeIsNull(a[0], negated);
      };
    };
    add("isnull", 1, 1, is_null(false));
    add("isnotnull", 1, 1, is_null(true));
    add("abs", 1, 1, [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) { return MakeAbs(b.ExpectNumeric(call, 0, a[0])); });
    add("round", 1, 2, [](Binder& b, const Ast& call, std::vector<KernelPtr>& a) {
      int64_t digits = a.size() > 1 ? b.IntegerConstant(call, 1, a[1], "the number of digits") : 0;
      return MakeRound(b.ExpectNumeric(call, 0, a[0]), digits);
    });
    add("explode", 1, 1, nullptr);  // a generator: unwrapped by the select list, an error elsewhere
    std::sort(t.begin(), t.end(), [](const FunctionSpec& x, const FunctionSpec& y) { return x.name < y.name; });
    return t;
  }();
  return table;
}

const FunctionSpec* FindFunction(std::string_view name) {
  std::string lower = Lower(name);
  for (const auto& f : FunctionTable())
    if (f.name == lower) return &f;
  return nullptr;
}

std::string ArgumentCountText(const FunctionSpec& f) {
  auto plural = [](int n) { return std::to_string(n) + (n == 1 ? " argument" : " arguments"); };
  if (f.max_args < 0) return "at least " + plural(f.min_args);
  if (f.min_args == f.max_args) return plural(f.min_args);
  return std::to_string(f.min_args) + (f.max_args == f.min_args + 1 ? " or " : " to ") + plural(f.max_args);
}

const RecordBatch& OneRowBatch() {
  static const RecordBatch batch(std::make_shared<const Schema>(), {}, 1);
  return batch;
}

}  // namespace

bool Binder::IsGenerator(const Ast& ast) {
  return ast.kind == Ast::Kind::kFunction && Lower(ast.name) == "explode";
}

std::string Binder::FunctionNames() {
  std::string names;
  for (const auto& f : FunctionTable()) {
    if (!names.empty()) names += ", ";
    names += f.name;
  }
  return names;
}

KernelPtr Binder::CastTo(KernelPtr k, DataType type) {
  if (k->type().is_null_literal) return MakeLiteral(Scalar::Null(type));
  if (k->type().is(type)) return k;
  return Fold(MakeCast(std::move(k), type));
}

KernelPtr Binder::Fold(KernelPtr k) {
  if (k->literal() || !k->type().is_scalar() || k->type().is_null_literal || k->children().empty()) return k;
  for (const auto& child : k->children())
    if (!child->literal()) return k;
  // Every input is a literal: evaluate once now instead of once per batch.
  auto result = k->Evaluate(OneRowBatch(), EvalContext{});
  if (!result.ok() || result.value()->length() != 1) return k;
  return MakeLiteral(Scalar::FromColumn(*result.value(), 0));
}

KernelPtr Binder::ExpectString(const Ast& call, size_t arg, KernelPtr k) const {
  if (!k->type().is_scalar())
    Fail(call.args[arg]->offset, Lower(call.name) + "() " + Ordinal(arg) + " must be STRING, got " + k->type().ToString());
  return CastTo(std::move(k), DataType::kString);  // numbers, booleans and timestamps convert as Spark does
}

KernelPtr Binder::ExpectInteger(const Ast& call, size_t arg, KernelPtr k) const {
  if (!k->type().is_null_literal && !k->type().is(DataType::kInt64))
    Fail(call.args[arg]->offset, Lower(call.name) + "() " + Ordinal(arg) + " must be BIGINT, got " + k->type().ToString());
  return CastTo(std::move(k), DataType::kInt64);
}

KernelPtr Binder::ExpectNumeric(const Ast& call, size_t arg, KernelPtr k) const {
  const ExprType& t = k->type();
  if (t.is_null_literal || t.is(DataType::kString)) return CastTo(std::move(k), DataType::kFloat64);
  if (!t.is(DataType::kInt64) && !t.is(DataType::kFloat64))
    Fail(call.args[arg]->offset, Lower(call.name) + "() " + Ordinal(arg) + " must be numeric, got " + t.ToString());
  return k;
}

KernelPtr Binder::ExpectArray(const Ast& call, size_t arg, KernelPtr k) const {
  if (k->type().kind != ExprType::Kind::kArray)
    Fail(call.args[arg]->offset, Lower(call.name) + "() " + Ordinal(arg) + " must be an array, got " + k->type().ToString());
  return k;
}

std::string Binder::StringConstant(const Ast& call, size_t arg, const KernelPtr& k, const char* what) const {
  const Scalar* value = k->literal();
  if (!value || !value->valid || value->type != DataType::kString)
    Fail(call.args[arg]->offset, std::string(what) + " of " + Lower(call.name) + "() must be a constant string");
  return value->bytes;
}

int64_t Binder::IntegerConstant(const Ast& call, size_t arg, const KernelPtr& k, const char* what) const {
  const Scalar* value = k->literal();
  if (!value || !value->valid || value->type != DataType::kInt64)
    Fail(call.args[arg]->offset, std::string(what) + " of " + Lower(call.name) + "() must be a constant integer");
  return value->int_value;
}

DataType Binder::CommonType(const std::vector<KernelPtr>& values, const std::vector<const Ast*>& asts) {
  std::optional<DataType> common;
  for (size_t i = 0; i < values.size(); ++i) {
    const ExprType& t = values[i]->type();
    if (!t.is_scalar()) Fail(asts[i]->offset, "expected a scalar value, got " + t.ToString());
    if (t.is_null_literal) continue;
    if (!common || *common == t.scalar) {
      common = t.scalar;
    } else if (IsNumeric(*common) && IsNumeric(t.scalar)) {
      common = DataType::kFloat64;
    } else if (*common == DataType::kString || t.scalar == DataType::kString) {
      common = DataType::kString;  // Spark widens mixed scalars to STRING
    } else {
      Fail(asts[i]->offset, std::string("incompatible types ") + DataTypeName(*common) + " and " + DataTypeName(t.scalar));
    }
  }
  return common.value_or(DataType::kString);
}

KernelPtr Binder::Compare(CompareOp op, KernelPtr lhs, KernelPtr rhs, size_t offset, const std::string& op_text) const {
  if (!lhs->type().is_scalar() || !rhs->type().is_scalar())
    Fail(offset, "cannot compare " + lhs->type().ToString() + " with " + rhs->type().ToString());
  auto type = ComparisonType(lhs->type(), rhs->type());
  if (!type) Fail(offset, "cannot compare " + lhs->type().ToString() + " with " + rhs->type().ToString() + " using " + op_text);
  return Fold(MakeCompare(op, CastTo(std::move(lhs), *type), CastTo(std::move(rhs), *type)));
}

KernelPtr Binder::ExpectBoolean(const Ast& at, KernelPtr k, const std::string& what) const {
  if (!k->type().is_null_literal && !k->type().is(DataType::kBool))
    Fail(at.offset, what + " must be BOOLEAN, got " + k->type().ToString());
  return CastTo(std::move(k), DataType::kBool);
}

KernelPtr Binder::Bind(const Ast& ast) {
  switch (ast.kind) {
    case Ast::Kind::kColumn: return BindColumn(ast);
    case Ast::Kind::kLiteral: return ast.is_null_literal ? MakeNullLiteral() : MakeLiteral(ast.literal);
    case Ast::Kind::kNegate: {
      KernelPtr operand = Bind(*ast.args[0]);
      const ExprType& t = operand->type();
      if (t.is_null_literal || t.is(DataType::kString)) operand = CastTo(operand, DataType::kFloat64);
      else if (!t.is(DataType::kInt64) && !t.is(DataType::kFloat64))
        Fail(ast.offset, "unary minus needs a number, got " + t.ToString());
      return Fold(MakeNegate(operand));
    }
    case Ast::Kind::kNot:
      return Fold(MakeNot(ExpectBoolean(*ast.args[0], Bind(*ast.args[0]), "the operand of NOT")));
    case Ast::Kind::kBinary: return BindBinary(ast);
    case Ast::Kind::kAnd:
    case Ast::Kind::kOr: return BindLogic(ast);
    case Ast::Kind::kIsNull: {
      KernelPtr operand = Bind(*ast.args[0]);
      if (!operand->type().is_scalar()) Fail(ast.offset, "IS NULL needs a scalar value, got " + operand->type().ToString());
      return Fold(MakeIsNull(operand, ast.negated));
    }
    case Ast::Kind::kFunction: return BindFunction(ast);
    case Ast::Kind::kCase: return BindCase(ast);
    case Ast::Kind::kCast: return BindCast(ast);
    case Ast::Kind::kIn: return BindIn(ast);
    case Ast::Kind::kBetween: return BindBetween(ast);
    case Ast::Kind::kLike: return BindLike(ast);
    case Ast::Kind::kIndex: return BindIndex(ast);
    case Ast::Kind::kField: return BindField(ast);
  }
  Fail(ast.offset, "unsupported expression");
}

KernelPtr Binder::BindColumn(const Ast& ast) {
  int index = input_.IndexOf(ast.name);
  if (index >= 0) return MakeColumnRef(index, input_.field(index).type);
  // Spark accepts these without parentheses.
  if (Schema::EqualsIgnoreCase(ast.name, "current_timestamp")) return MakeCurrentTimestamp();
  std::string available;
  for (const auto& f : input_.fields()) available += (available.empty() ? "" : ", ") + f.name;
  Fail(ast.offset, "unknown column '" + ast.name + "'; available: " + (available.empty() ? "(none)" : available));
}

KernelPtr Binder::BindBinary(const Ast& ast) {
  const std::string& op = ast.name;
  KernelPtr lhs = Bind(*ast.args[0]);
  KernelPtr rhs = Bind(*ast.args[1]);
  if (op == "+" || op == "-" || op == "*" || op == "/" || op == "%") return BindArithmetic(ast, lhs, rhs);
  if (op == "||") {
    if (!lhs->type().is_scalar() || !rhs->type().is_scalar())
      Fail(ast.offset, "|| needs scalar values, got " + lhs->type().ToString() + " and " + rhs->type().ToString());
    return Fold(MakeConcat({CastTo(lhs, DataType::kString), CastTo(rhs, DataType::kString)}));
  }
  CompareOp cmp = CompareOp::kEqual;
  if (op == "=" || op == "==") cmp = CompareOp::kEqual;
  else if (op == "!=" || op == "<>") cmp = CompareOp::kNotEqual;
  else if (op == "<") cmp = CompareOp::kLess;
  else if (op == "<=") cmp = CompareOp::kLessEqual;
  else if (op == ">") cmp = CompareOp::kGreater;
  else if (op == ">=") cmp = CompareOp::kGreaterEqual;
  else if (op == "<=>") cmp = CompareOp::kNullSafeEqual;
  else Fail(ast.offset, "unknown operator '" + op + "'");
  return Compare(cmp, lhs, rhs, ast.offset, "'" + op + "'");
}

KernelPtr Binder::BindArithmetic(const Ast& ast, KernelPtr lhs, KernelPtr rhs) {
  const std::string& op = ast.name;
  auto numeric_or_null = [&](const KernelPtr& k) {
    const ExprType& t = k->type();
    return t.is_null_literal || t.is(DataType::kInt64) || t.is(DataType::kFloat64) || t.is(DataType::kString);
  };
  if (!numeric_or_null(lhs) || !numeric_or_null(rhs))
    Fail(ast.offset, "cannot apply '" + op + "' to " + lhs->type().ToString() + " and " + rhs->type().ToString());
  // Strings in arithmetic are read as DOUBLE, as Spark does.
  auto is_int = [](const KernelPtr& k) { return k->type().is(DataType::kInt64) || k->type().is_null_literal; };
  DataType type = (op != "/" && is_int(lhs) && is_int(rhs)) ? DataType::kInt64 : DataType::kFloat64;
  ArithmeticOp aop = op == "+" ? ArithmeticOp::kAdd
                   : op == "-" ? ArithmeticOp::kSubtract
                   : op == "*" ? ArithmeticOp::kMultiply
                   : op == "/" ? ArithmeticOp::kDivide
                               : ArithmeticOp::kModulo;
  return Fold(MakeArithmetic(aop, CastTo(lhs, type), CastTo(rhs, type)));
}

KernelPtr Binder::BindLogic(const Ast& ast) {
  const bool is_and = ast.kind == Ast::Kind::kAnd;
  const std::string word = is_and ? "AND" : "OR";
  KernelPtr lhs = ExpectBoolean(*ast.args[0], Bind(*ast.args[0]), "the left side of " + word);
  KernelPtr rhs = ExpectBoolean(*ast.args[1], Bind(*ast.args[1]), "the right side of " + word);
  return Fold(is_and ? MakeAnd(lhs, rhs) : MakeOr(lhs, rhs));
}

KernelPtr Binder::BindCase(const Ast& ast) {
  size_t i = 0;
  KernelPtr operand;
  if (ast.case_has_operand) operand = Bind(*ast.args[i++]);
  const size_t end = ast.args.size() - (ast.case_has_else ? 1 : 0);
  std::vector<KernelPtr> conditions, values;
  std::vector<const Ast*> value_asts;
  for (; i < end; i += 2) {
    const Ast& when = *ast.args[i];
    KernelPtr cond = Bind(when);
    if (operand) cond = Compare(CompareOp::kEqual, operand, cond, when.offset, "CASE ... WHEN");
    conditions.push_back(ExpectBoolean(when, cond, "a CASE WHEN condition"));
    values.push_back(Bind(*ast.args[i + 1]));
    value_asts.push_back(ast.args[i + 1].get());
  }
  KernelPtr otherwise;
  if (ast.case_has_else) {
    values.push_back(Bind(*ast.args.back()));
    value_asts.push_back(ast.args.back().get());
  }
  DataType type = CommonType(values, value_asts);
  for (auto& v : values) v = CastTo(v, type);
  if (ast.case_has_else) {
    otherwise = values.back();
    values.pop_back();
  }
  return Fold(MakeCase(std::move(conditions), std::move(values), std::move(otherwise), type));
}

KernelPtr Binder::BindCast(const Ast& ast) {
  DataType to;
  if (!ParseDataType(ast.name, &to))
    Fail(ast.offset, "unknown type '" + ast.name + "'; expected BOOLEAN, BIGINT, INT, DOUBLE, STRING, BINARY or TIMESTAMP");
  KernelPtr operand = Bind(*ast.args[0]);
  if (ast.typed_literal) {
    // TIMESTAMP '...': a malformed literal is a mistake in the text, not a NULL.
    if (!ParseTimestamp(ast.args[0]->literal.bytes))
      Fail(ast.args[0]->offset, "invalid TIMESTAMP literal '" + ast.args[0]->literal.bytes + "'; expected 'yyyy-MM-dd HH:mm:ss'");
    return CastTo(operand, to);
  }
  const ExprType& from = operand->type();
  if (!from.is_scalar()) Fail(ast.args[0]->offset, "cannot cast " + from.ToString() + " to " + DataTypeName(to));
  if (!from.is_null_literal && !CanCast(from.scalar, to))
    Fail(ast.offset, "cannot cast " + from.ToString() + " to " + DataTypeName(to));
  return CastTo(operand, to);
}

KernelPtr Binder::BindIn(const Ast& ast) {
  KernelPtr value = Bind(*ast.args[0]);
  std::vector<KernelPtr> items;
  ExprType common = value->type();
  if (!common.is_scalar()) Fail(ast.args[0]->offset, "IN needs a scalar value, got " + common.ToString());
  for (size_t i = 1; i < ast.args.size(); ++i) {
    KernelPtr item = Bind(*ast.args[i]);
    if (!item->type().is_scalar()) Fail(ast.args[i]->offset, "IN list items must be scalar, got " + item->type().ToString());
    auto type = ComparisonType(common, item->type());
    if (!type) Fail(ast.args[i]->offset, "cannot compare " + common.ToString() + " with " + item->type().ToString() + " in IN");
    if (!(common.is_null_literal && item->type().is_null_literal)) common = ExprType::Scalar(*type);
    items.push_back(std::move(item));
  }
  const DataType type = common.is_null_literal ? DataType::kString : common.scalar;
  value = CastTo(value, type);
  bool all_constant = true;
  for (auto& item : items) {
    item = CastTo(item, type);
    all_constant &= item->literal() != nullptr;
  }
  KernelPtr result;
  if (all_constant) {
    std::vector<Scalar> list;
    for (const auto& item : items) list.push_back(*item->literal());
    result = Fold(MakeInList(value, std::move(list)));
  } else {
    // x IN (a, b) is x = a OR x = b, which has exactly SQL's NULL semantics.
    for (auto& item : items) {
      KernelPtr eq = MakeCompare(CompareOp::kEqual, value, item);
      result = result ? MakeOr(result, eq) : eq;
    }
  }
  return ast.negated ? Fold(MakeNot(result)) : result;
}

KernelPtr Binder::BindBetween(const Ast& ast) {
  KernelPtr value = Bind(*ast.args[0]);
  KernelPtr low = Compare(CompareOp::kGreaterEqual, value, Bind(*ast.args[1]), ast.offset, "BETWEEN");
  KernelPtr high = Compare(CompareOp::kLessEqual, value, Bind(*ast.args[2]), ast.offset, "BETWEEN");
  KernelPtr result = Fold(MakeAnd(low, high));
  return ast.negated ? Fold(MakeNot(result)) : result;
}

KernelPtr Binder::BindLike(const Ast& ast) {
  KernelPtr text = Bind(*ast.args[0]);
  KernelPtr pattern = Bind(*ast.args[1]);
  if (!text->type().is_scalar()) Fail(ast.args[0]->offset, ast.name + " needs a STRING, got " + text->type().ToString());
  text = CastTo(text, DataType::kString);
  if (pattern->type().is_null_literal) return MakeLiteral(Scalar::Null(DataType::kBool));
  const Scalar* value = pattern->literal();
  if (!value || value->type != DataType::kString)
    Fail(ast.args[1]->offset, "the pattern of " + ast.name + " must be a constant string");
  if (!value->valid) return MakeLiteral(Scalar::Null(DataType::kBool));
  std::string error;
  KernelPtr k = ast.name == "LIKE" ? MakeLike(text, value->bytes, &error) : MakeRLike(text, value->bytes, &error);
  if (!k) Fail(ast.args[1]->offset, error);
  k = Fold(k);
  return ast.negated ? Fold(MakeNot(k)) : k;
}

KernelPtr Binder::BindIndex(const Ast& ast) {
  KernelPtr base = Bind(*ast.args[0]);
  if (base->type().kind != ExprType::Kind::kArray)
    Fail(ast.offset, "[ ] needs an array, got " + base->type().ToString());
  KernelPtr index = Bind(*ast.args[1]);
  if (!index->type().is_null_literal && !index->type().is(DataType::kInt64))
    Fail(ast.args[1]->offset, "an array index must be BIGINT, got " + index->type().ToString());
  return MakeArrayElement(base, CastTo(index, DataType::kInt64));
}

KernelPtr Binder::BindField(const Ast& ast) {
  const Ast& base_ast = *ast.args[0];
  // "a.b" may be one column whose name contains a dot.
  if (base_ast.kind == Ast::Kind::kColumn && input_.IndexOf(base_ast.name) < 0) {
    int dotted = input_.IndexOf(base_ast.name + "." + ast.name);
    if (dotted >= 0) return MakeColumnRef(dotted, input_.field(dotted).type);
  }
  KernelPtr base = Bind(base_ast);
  if (base->type().kind != ExprType::Kind::kStruct)
    Fail(ast.offset, "cannot read field '" + ast.name + "' of " + base->type().ToString() + "; only structs have fields");
  const Schema& fields = *base->type().fields;
  int index = fields.IndexOf(ast.name);
  if (index < 0) {
    std::string names;
    for (const auto& f : fields.fields()) names += (names.empty() ? "" : ", ") + f.name;
    Fail(ast.offset, "no field '" + ast.name + "' in " + base->type().ToString() + "; fields: " + names);
  }
  return MakeStructField(base, index);
}

KernelPtr Binder::BindFunction(const Ast& ast) {
  const FunctionSpec* spec = FindFunction(ast.name);
  if (!spec) Fail(ast.offset, "unknown function '" + ast.name + "'; available: " + FunctionNames());
  if (!spec->bind)
    Fail(ast.offset, Lower(ast.name) + "() must be a whole select item, as in \"explode(split(line, ' ')) AS word\"");
  if (ast.star_argument) Fail(ast.offset, Lower(ast.name) + "(*) is not supported");
  const int count = static_cast<int>(ast.args.size());
  if (count < spec->min_args || (spec->max_args >= 0 && count > spec->max_args))
    Fail(ast.offset, Lower(ast.name) + "() takes " + ArgumentCountText(*spec) + ", got " + std::to_string(count));
  std::vector<KernelPtr> args;
  for (const auto& a : ast.args) args.push_back(Bind(*a));
  return Fold(spec->bind(*this, ast, args));
}

}  // namespace sluice::expr
