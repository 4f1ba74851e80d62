// Spark SQL expression syntax -> Ast.
//
// Covers what `select`, `where` and `with_column` steps need: literals, column
// references (plain or `back-quoted`), arithmetic, comparisons, three-valued
// AND/OR/NOT, IS [NOT] NULL, [NOT] IN, [NOT] BETWEEN, [NOT] LIKE/RLIKE, CASE,
// CAST, function calls, arr[i], struct.field, and for select items `AS alias`
// (or a bare alias) and `*`. Errors are thrown as ExprFailure with the offset
// of the token that did not fit and what was expected there.
#pragma once

#include <string>
#include <string_view>

#include "expr/ast.h"

namespace sluice::expr {

// A whole expression; anything left after it is an error.
AstPtr ParseExpression(std::string_view text);

struct SelectItem {
  bool is_star = false;
  AstPtr expr;
  std::string alias;         // empty when none
  size_t alias_offset = 0;
  std::string expr_text;     // the expression as written, without the alias
};

// One item of a select list: "*", "expr", "expr AS alias" or "expr alias".
SelectItem ParseSelectItem(std::string_view text);

}  // namespace sluice::expr
