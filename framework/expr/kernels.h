// Factories for every operator and function kernel.
//
// The binder checks names, argument counts and types, inserts the implicit
// casts Spark would, and then calls these with operands already of the types
// each kernel expects (noted per factory). Factories that take a bind-time
// constant (a regex, a JSON path, a datetime pattern) validate it and report a
// problem as an error message.
#pragma once

#include <string>
#include <vector>

#include "expr/kernel.h"

namespace sluice::expr {

// --- Casts (cast_kernel.cpp) ------------------------------------------------
bool CanCast(DataType from, DataType to);
// Spark's non-ANSI CAST: unparsable strings become NULL.
KernelPtr MakeCast(KernelPtr child, DataType to);

// Text -> value, as CAST reads strings (surrounding white space ignored).
bool ParseInt64Text(std::string_view text, int64_t* out);
bool ParseDoubleText(std::string_view text, double* out);
bool ParseBoolText(std::string_view text, bool* out);
// Writes the text of a timestamp as FormatTimestamp() does; returns its length (<= 40).
size_t FormatTimestampInto(char* out, int64_t micros);

// --- Arithmetic (arithmetic_kernels.cpp) ------------------------------------
enum class ArithmeticOp { kAdd, kSubtract, kMultiply, kDivide, kModulo };
// Operands both BIGINT or both DOUBLE (kDivide: both DOUBLE). Integer overflow
// wraps as in Spark's non-ANSI mode; x / 0 and x % 0 are NULL.
KernelPtr MakeArithmetic(ArithmeticOp op, KernelPtr lhs, KernelPtr rhs);
KernelPtr MakeNegate(KernelPtr operand);  // BIGINT or DOUBLE
KernelPtr MakeAbs(KernelPtr operand);     // BIGINT or DOUBLE
// round(x, digits) with HALF_UP like Spark; BIGINT or DOUBLE operand.
KernelPtr MakeRound(KernelPtr operand, int64_t digits);

// --- Comparisons (comparison_kernels.cpp) -----------------------------------
enum class CompareOp { kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual, kNullSafeEqual };
// Both operands of one scalar type. Doubles compare as Spark does: NaN equals
// NaN and is larger than any other value.
KernelPtr MakeCompare(CompareOp op, KernelPtr lhs, KernelPtr rhs);
// value IN (constants...), all of value's type; SQL's NULL rules.
KernelPtr MakeInList(KernelPtr value, std::vector<Scalar> list);

// --- Logic and conditionals (logical_kernels.cpp) ---------------------------
KernelPtr MakeAnd(KernelPtr lhs, KernelPtr rhs);  // Kleene three-valued logic
KernelPtr MakeOr(KernelPtr lhs, KernelPtr rhs);
KernelPtr MakeNot(KernelPtr operand);
KernelPtr MakeIsNull(KernelPtr operand, bool negated);
// CASE WHEN conditions[i] THEN values[i] ... ELSE otherwise END; every value
// (and `otherwise`, which may be null for "no ELSE") of type `type`.
KernelPtr MakeCase(std::vector<KernelPtr> conditions, std::vector<KernelPtr> values, KernelPtr otherwise, DataType type);
// The first non-null value per row.
KernelPtr MakeCoalesce(std::vector<KernelPtr> values, DataType type);

// --- Strings (string_kernels.cpp); STRING operands unless noted -------------
KernelPtr MakeCaseMap(KernelPtr operand, bool to_upper);
KernelPtr MakeLength(KernelPtr operand);  // characters for STRING, bytes for BINARY
// substring(s, pos[, len]) with BIGINT pos/len; `length` may be null.
KernelPtr MakeSubstring(KernelPtr text, KernelPtr position, KernelPtr length);
KernelPtr MakeConcat(std::vector<KernelPtr> parts);
enum class TrimSide { kBoth, kLeft, kRight };
KernelPtr MakeTrim(KernelPtr operand, TrimSide side);

// --- Regular expressions (regex_kernels.cpp) --------------------------------
// Each returns null and sets *error when the pattern does not compile.
KernelPtr MakeSplit(KernelPtr text, const std::string& pattern, int64_t limit, std::string* error);
KernelPtr MakeRegexpExtract(KernelPtr text, const std::string& pattern, int64_t group, std::string* error);
KernelPtr MakeLike(KernelPtr text, const std::string& pattern, std::string* error);
KernelPtr MakeRLike(KernelPtr text, const std::string& pattern, std::string* error);

// --- Arrays and structs (nested_kernels.cpp) --------------------------------
KernelPtr MakeSize(KernelPtr array);                        // BIGINT; -1 for a null array
KernelPtr MakeArrayElement(KernelPtr array, KernelPtr index);  // 0-based, BIGINT index
KernelPtr MakeStructField(KernelPtr record, int field);

// --- JSON (json_kernels.cpp) ------------------------------------------------
KernelPtr MakeFromJson(KernelPtr json, Schema schema);
// Returns null and sets *error when the path is not of the form $.a.b[0]['c'].
KernelPtr MakeGetJsonObject(KernelPtr json, const std::string& path, std::string* error);

// --- Time (time_kernels.cpp) ------------------------------------------------
// to_timestamp(s, pattern); returns null and sets *error for an unsupported pattern.
KernelPtr MakeToTimestampWithPattern(KernelPtr text, const std::string& pattern, std::string* error);

}  // namespace sluice::expr
