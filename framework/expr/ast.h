// The parsed form of an expression, before names and types are resolved.
//
// The parser builds this tree from the text; the binder walks it once to
// resolve columns and functions, check types and build kernels. Every node
// remembers where it came from in the text so errors can point at it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "expr/expr_type.h"

namespace sluice::expr {

// An error inside the expression engine: thrown by the parser and binder,
// caught at the public API and turned into an ExprError.
struct ExprFailure {
  size_t offset = 0;
  std::string message;
};

struct Ast {
  enum class Kind {
    kColumn,      // name
    kLiteral,     // literal (is_null_literal for the bare NULL)
    kNegate,      // -args[0]
    kNot,         // NOT args[0]
    kBinary,      // args[0] <name> args[1]: + - * / % || = == != <> < <= > >= <=>
    kAnd,
    kOr,
    kIsNull,      // args[0] IS [NOT] NULL
    kFunction,    // name(args...)
    kCase,        // [operand] (when, then)* [else]
    kCast,        // CAST(args[0] AS name)
    kIn,          // args[0] [NOT] IN (args[1..])
    kBetween,     // args[0] [NOT] BETWEEN args[1] AND args[2]
    kLike,        // args[0] [NOT] LIKE|RLIKE args[1]; name is "LIKE" or "RLIKE"
    kIndex,       // args[0][args[1]]
    kField,       // args[0].name
  };

  Kind kind = Kind::kLiteral;
  size_t offset = 0;  // the token the node is about: a name, an operator, a keyword
  size_t begin = 0;   // [begin, end): the node's whole text
  size_t end = 0;
  std::string name;
  Scalar literal;
  bool is_null_literal = false;
  bool negated = false;           // IS NOT NULL, NOT IN, NOT LIKE, NOT BETWEEN
  bool case_has_operand = false;  // CASE x WHEN ...
  bool case_has_else = false;
  bool star_argument = false;     // count(*)-style f(*)
  bool typed_literal = false;     // TIMESTAMP '...': an unparsable value is an error, not NULL
  std::vector<std::unique_ptr<Ast>> args;
};

using AstPtr = std::unique_ptr<Ast>;

}  // namespace sluice::expr
