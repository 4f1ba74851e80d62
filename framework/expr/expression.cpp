// The public entry points: CompileExpression, Projection and Predicate. Parse
// and bind errors travel as ExprFailure inside the engine and leave here as
// ExprError; nothing throws past this file.
#include "expr/expression.h"

#include "compute/selection.h"
#include "expr/binder.h"
#include "expr/parser.h"

namespace sluice::expr {
namespace {

class CompiledKernel final : public CompiledExpr {
 public:
  CompiledKernel(KernelPtr kernel, std::string name) : kernel_(std::move(kernel)), name_(std::move(name)) {}
  DataType type() const override { return kernel_->type().scalar; }
  const std::string& name() const override { return name_; }
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    return kernel_->Evaluate(batch, ctx);
  }

 private:
  KernelPtr kernel_;
  std::string name_;
};

// A value that can become a column: scalar types only (a bare NULL becomes a
// STRING column of nulls).
KernelPtr RequireScalar(KernelPtr k, const Ast& ast) {
  const ExprType& t = k->type();
  if (t.is_null_literal) return Binder::CastTo(k, DataType::kString);
  if (t.kind == ExprType::Kind::kArray)
    Binder::Fail(ast.begin, "the expression is " + t.ToString() + ", which cannot be a column; use explode(), size() or [i]");
  if (t.kind == ExprType::Kind::kStruct)
    Binder::Fail(ast.begin, "the expression is " + t.ToString() +
                                ", which cannot be a column here; read a field with .name, or make it a whole select item");
  return k;
}

std::string NameOf(const Ast& ast, const Schema& input, std::string_view text) {
  if (ast.kind == Ast::Kind::kColumn) {
    int index = input.IndexOf(ast.name);
    if (index >= 0) return input.field(index).name;
  }
  return std::string(text.substr(ast.begin, ast.end - ast.begin));
}

ExprError ToError(const ExprFailure& f) { return ExprError{f.offset, f.message}; }

[[noreturn]] void FailGeneratorNotAllowed(const Ast& ast) {
  Binder::Fail(ast.offset, "explode() is only allowed as a whole select item, as in \"explode(split(line, ' ')) AS word\"");
}

// A whole expression that must produce a scalar column; throws ExprFailure.
KernelPtr BindScalarExpression(std::string_view text, const Schema& input, std::string* name) {
  AstPtr ast = ParseExpression(text);
  if (Binder::IsGenerator(*ast)) FailGeneratorNotAllowed(*ast);
  KernelPtr kernel = RequireScalar(Binder(input).Bind(*ast), *ast);
  *name = NameOf(*ast, input, text);
  return kernel;
}

// One select item after binding.
struct BoundItem {
  enum class Kind { kColumn, kExpandStruct, kGenerator };
  Kind kind = Kind::kColumn;
  KernelPtr kernel;
  size_t first_output = 0;  // index of its first output column
};

class ProjectionImpl final : public Projection {
 public:
  ProjectionImpl(SchemaPtr schema, std::vector<BoundItem> items) : schema_(std::move(schema)), items_(std::move(items)) {
    for (size_t i = 0; i < items_.size(); ++i)
      if (items_[i].kind == BoundItem::Kind::kGenerator) generator_ = static_cast<int>(i);
  }

  const SchemaPtr& output_schema() const override { return schema_; }

  Result<RecordBatchPtr> Apply(const RecordBatch& batch, const EvalContext& ctx) const override {
    std::vector<ColumnPtr> columns(static_cast<size_t>(schema_->num_fields()));
    ArrayColumnPtr generated;
    for (const auto& item : items_) {
      switch (item.kind) {
        case BoundItem::Kind::kColumn: {
          SLUICE_ASSIGN_OR_RETURN(columns[item.first_output], item.kernel->Evaluate(batch, ctx));
          break;
        }
        case BoundItem::Kind::kExpandStruct: {
          SLUICE_ASSIGN_OR_RETURN(StructColumnPtr record, item.kernel->EvaluateStruct(batch, ctx));
          for (size_t f = 0; f < record->fields.size(); ++f) columns[item.first_output + f] = record->fields[f];
          break;
        }
        case BoundItem::Kind::kGenerator: {
          SLUICE_ASSIGN_OR_RETURN(generated, item.kernel->EvaluateArray(batch, ctx));
          break;
        }
      }
    }
    if (!generated) return std::make_shared<const RecordBatch>(schema_, std::move(columns), batch.num_rows());
    return Explode(std::move(columns), *generated);
  }

 private:
  // One output row per array element; the other columns repeat their row's
  // values. Null and empty arrays produce no rows, as Spark's explode().
  Result<RecordBatchPtr> Explode(std::vector<ColumnPtr> columns, const ArrayColumn& array) const {
    const int64_t begin = array.offsets.front(), end = array.offsets.back();
    std::vector<compute::RowIndex> parents;
    parents.reserve(static_cast<size_t>(end - begin));
    for (int64_t row = 0; row < array.length; ++row)
      for (int32_t k = array.offsets[static_cast<size_t>(row)]; k < array.offsets[static_cast<size_t>(row + 1)]; ++k)
        parents.push_back(static_cast<compute::RowIndex>(row));
    const size_t generator_column = items_[static_cast<size_t>(generator_)].first_output;
    for (size_t c = 0; c < columns.size(); ++c) {
      if (c == generator_column) continue;
      columns[c] = compute::TakeColumn(*columns[c], parents.data(), static_cast<int64_t>(parents.size()));
    }
    columns[generator_column] = (begin == 0 && end == array.elements->length())
                                    ? array.elements
                                    : compute::SliceColumn(*array.elements, begin, end - begin);
    return std::make_shared<const RecordBatch>(schema_, std::move(columns), static_cast<int64_t>(parents.size()));
  }

  SchemaPtr schema_;
  std::vector<BoundItem> items_;
  int generator_ = -1;
};

class PredicateImpl final : public Predicate {
 public:
  explicit PredicateImpl(KernelPtr kernel) : kernel_(std::move(kernel)) {}
  Result<RecordBatchPtr> Filter(const RecordBatchPtr& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(Operand mask, EvaluateOperand(*kernel_, *batch, ctx));
    if (mask.is_constant()) {
      if (mask.constant.valid && mask.constant.int_value) return batch;
      return compute::Take(*batch, {});
    }
    return compute::Filter(batch, *mask.column);
  }

 private:
  KernelPtr kernel_;
};

}  // namespace

std::shared_ptr<CompiledExpr> CompileExpression(std::string_view text, const Schema& input, ExprError* error) {
  try {
    std::string name;
    KernelPtr kernel = BindScalarExpression(text, input, &name);
    return std::make_shared<CompiledKernel>(std::move(kernel), std::move(name));
  } catch (const ExprFailure& f) {
    if (error) *error = ToError(f);
    return nullptr;
  }
}

std::shared_ptr<Projection> Projection::Make(const std::vector<std::string>& items, const Schema& input,
                                             ExprError* error, size_t* item_index) {
  std::vector<Field> fields;
  std::vector<BoundItem> bound;
  int generator_item = -1;
  Binder binder(input);
  for (size_t i = 0; i < items.size(); ++i) {
    try {
      SelectItem item = ParseSelectItem(items[i]);
      if (item.is_star) {
        for (int c = 0; c < input.num_fields(); ++c) {
          bound.push_back({BoundItem::Kind::kColumn, MakeColumnRef(c, input.field(c).type), fields.size()});
          fields.push_back(input.field(c));
        }
        continue;
      }
      const Ast& ast = *item.expr;
      BoundItem b;
      b.first_output = fields.size();
      if (Binder::IsGenerator(ast)) {
        if (generator_item >= 0)
          Binder::Fail(ast.offset, "only one generator (explode) is allowed per select; item " +
                                       std::to_string(generator_item + 1) + " already has one");
        if (ast.args.size() != 1)
          Binder::Fail(ast.offset, "explode() takes 1 argument, got " + std::to_string(ast.args.size()));
        KernelPtr array = binder.Bind(*ast.args[0]);
        if (array->type().kind != ExprType::Kind::kArray)
          Binder::Fail(ast.args[0]->offset, "explode() argument 1 must be an array, got " + array->type().ToString());
        generator_item = static_cast<int>(i);
        b.kind = BoundItem::Kind::kGenerator;
        b.kernel = array;
        // Spark names the exploded column "col" unless aliased.
        fields.push_back(Field{item.alias.empty() ? "col" : item.alias, array->type().scalar, true});
      } else {
        KernelPtr kernel = binder.Bind(ast);
        if (kernel->type().kind == ExprType::Kind::kStruct) {
          // Spark would produce one struct column; sinks here take scalar
          // columns only, so a whole-item struct becomes one column per field
          // (as Spark's `select from_json(...).*`). An alias names the struct
          // and does not rename the fields.
          b.kind = BoundItem::Kind::kExpandStruct;
          b.kernel = kernel;
          for (const auto& f : kernel->type().fields->fields()) fields.push_back(Field{f.name, f.type, true});
        } else {
          b.kernel = RequireScalar(kernel, ast);
          std::string name = item.alias.empty() ? NameOf(ast, input, items[i]) : item.alias;
          int source = ast.kind == Ast::Kind::kColumn ? input.IndexOf(ast.name) : -1;
          bool nullable = source >= 0 ? input.field(source).nullable : true;
          fields.push_back(Field{std::move(name), b.kernel->type().scalar, nullable});
        }
      }
      bound.push_back(std::move(b));
    } catch (const ExprFailure& f) {
      if (error) *error = ToError(f);
      if (item_index) *item_index = i;
      return nullptr;
    }
  }
  return std::make_shared<ProjectionImpl>(std::make_shared<const Schema>(std::move(fields)), std::move(bound));
}

std::shared_ptr<Projection> Projection::MakeWithColumn(const std::string& name, std::string_view expr_text,
                                                       const Schema& input, ExprError* error) {
  KernelPtr kernel;
  try {
    std::string ignored_name;
    kernel = BindScalarExpression(expr_text, input, &ignored_name);
  } catch (const ExprFailure& f) {
    if (error) *error = ToError(f);
    return nullptr;
  }
  std::vector<Field> fields = input.fields();
  std::vector<BoundItem> bound;
  for (int c = 0; c < input.num_fields(); ++c)
    bound.push_back({BoundItem::Kind::kColumn, MakeColumnRef(c, input.field(c).type), static_cast<size_t>(c)});
  int existing = input.IndexOf(name);
  Field field{name, kernel->type().scalar, true};
  if (existing >= 0) {
    fields[static_cast<size_t>(existing)] = field;
    bound[static_cast<size_t>(existing)].kernel = kernel;
  } else {
    bound.push_back({BoundItem::Kind::kColumn, kernel, fields.size()});
    fields.push_back(field);
  }
  return std::make_shared<ProjectionImpl>(std::make_shared<const Schema>(std::move(fields)), std::move(bound));
}

std::shared_ptr<Predicate> Predicate::Make(std::string_view text, const Schema& input, ExprError* error) {
  try {
    AstPtr ast = ParseExpression(text);
    if (Binder::IsGenerator(*ast)) FailGeneratorNotAllowed(*ast);
    KernelPtr kernel = Binder(input).Bind(*ast);
    if (kernel->type().is_null_literal) kernel = Binder::CastTo(kernel, DataType::kBool);
    if (!kernel->type().is(DataType::kBool))
      Binder::Fail(ast->begin, "a where condition must be BOOLEAN, got " + kernel->type().ToString());
    return std::make_shared<PredicateImpl>(std::move(kernel));
  } catch (const ExprFailure& f) {
    if (error) *error = ToError(f);
    return nullptr;
  }
}

}  // namespace sluice::expr
