// SQL expressions over record batches: parse once, evaluate column-at-a-time.
//
// An expression string ("lower(value)", "CASE WHEN x > 0 THEN 'pos' END",
// "explode(split(line, ' ')) AS word") is parsed into a tree, bound against an
// input schema (columns resolved, types checked, functions looked up), and
// compiled into kernels that each process a whole column per call: one
// virtual call per operator per batch, tight typed loops inside, no allocation
// per row. Errors carry the 0-based character offset in the text so the
// pipeline loader can report file:line:column.
//
// Nested values exist only inside expressions: split() yields an array of
// strings (consumed by explode(), size() or [i]); from_json() yields a struct
// (consumed by `.field`, or expanded into one column per field when it is a
// whole select item). Sinks see only the SDK's scalar types.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/record_batch.h"
#include "sluice/status.h"

namespace sluice::expr {

// Values that are constant for a whole micro-batch.
struct EvalContext {
  int64_t batch_timestamp_micros = 0;  // current_timestamp() returns this, as in Spark
};

// Where an expression error is. `offset` is 0-based within the expression text.
struct ExprError {
  size_t offset = 0;
  std::string message;  // "unknown column 'x'; available: a, b" / "expected ')'"
};

// A scalar expression bound to an input schema.
class CompiledExpr {
 public:
  virtual ~CompiledExpr() = default;
  virtual DataType type() const = 0;
  // The column name Spark would give it: the alias, the column name for a bare
  // reference, otherwise the expression text as written.
  virtual const std::string& name() const = 0;
  // Evaluates over every row of `batch`. Thread-safe: one compiled expression
  // is evaluated concurrently by several workers.
  virtual Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const = 0;
};

// Compiles one scalar expression (no generator, no alias). On failure sets *error.
std::shared_ptr<CompiledExpr> CompileExpression(std::string_view text, const Schema& input, ExprError* error);

// A `select` list: items such as "*", "a", "lower(b) AS b2",
// "explode(split(value, ' ')) AS word", "from_json(value, 'a INT, b STRING')".
// At most one item may be a generator (explode); its rows are multiplied out.
class Projection {
 public:
  virtual ~Projection() = default;
  virtual const SchemaPtr& output_schema() const = 0;
  virtual Result<RecordBatchPtr> Apply(const RecordBatch& batch, const EvalContext& ctx) const = 0;

  // On failure returns null and sets *error and *item_index (which item failed).
  static std::shared_ptr<Projection> Make(const std::vector<std::string>& items, const Schema& input,
                                          ExprError* error, size_t* item_index);
  // `with_column`: every input column, with `name` replaced in place if it
  // exists (case-insensitive) or appended otherwise.
  static std::shared_ptr<Projection> MakeWithColumn(const std::string& name, std::string_view expr_text,
                                                    const Schema& input, ExprError* error);
};

// A `where` predicate: keeps rows where it is TRUE (NULL and FALSE drop the row).
class Predicate {
 public:
  virtual ~Predicate() = default;
  virtual Result<RecordBatchPtr> Filter(const RecordBatchPtr& batch, const EvalContext& ctx) const = 0;
  // The predicate must be BOOLEAN; otherwise an error naming the type.
  static std::shared_ptr<Predicate> Make(std::string_view text, const Schema& input, ExprError* error);
};

}  // namespace sluice::expr
