// Turning text and JSON values into typed rows of a RecordBatch. The file
// source's csv and jsonl parsers and the memory source's `rows` option share
// these rules, so one value spelled the same way means the same thing
// everywhere: a row is first converted cell by cell into a PendingRow and only
// appended to the column builders once every cell converted, so a malformed
// record never leaves half a row behind. Conversions allocate nothing per row
// except on the error path, where they write a message for BadRecord.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "sluice/record_batch.h"
#include "sluice/source.h"
#include "sluice/value_format.h"

namespace sluice::typed_rows {

// One converted cell. Text lives either in a buffer that outlives the row
// (`text`) or in the row's scratch (decoded base64), addressed by offset
// because the scratch may grow while later cells convert.
struct PendingCell {
  bool is_null = true;
  bool text_in_scratch = false;
  int64_t int_value = 0;  // BIGINT, TIMESTAMP (micros), BOOLEAN (0 or 1)
  double double_value = 0;
  std::string_view text;
  size_t scratch_offset = 0;
  size_t scratch_length = 0;
};

class PendingRow {
 public:
  explicit PendingRow(const Schema& schema) : cells_(static_cast<size_t>(schema.num_fields())) {}

  void Reset() {
    for (auto& c : cells_) c = PendingCell{};
    scratch_.clear();
  }
  PendingCell& cell(int i) { return cells_[static_cast<size_t>(i)]; }
  const PendingCell& cell(int i) const { return cells_[static_cast<size_t>(i)]; }
  std::string& scratch() { return scratch_; }

  std::string_view TextOf(const PendingCell& c) const {
    if (c.text_in_scratch) return std::string_view(scratch_).substr(c.scratch_offset, c.scratch_length);
    return c.text;
  }

  void AppendTo(RecordBatchBuilder& builder) const {
    for (size_t i = 0; i < cells_.size(); ++i) {
      const PendingCell& c = cells_[i];
      ColumnBuilder& col = builder.column(static_cast<int>(i));
      if (c.is_null) {
        col.AppendNull();
        continue;
      }
      switch (col.type()) {
        case DataType::kBool: col.AppendBool(c.int_value != 0); break;
        case DataType::kInt64: col.AppendInt64(c.int_value); break;
        case DataType::kTimestamp: col.AppendTimestamp(c.int_value); break;
        case DataType::kFloat64: col.AppendFloat64(c.double_value); break;
        case DataType::kString:
        case DataType::kBinary: col.AppendString(TextOf(c)); break;
      }
    }
  }

 private:
  std::vector<PendingCell> cells_;
  std::string scratch_;
};

// ---- scalar text forms ----------------------------------------------------

inline std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// int64_t or double; surrounding blanks and a leading '+' are accepted.
template <typename Number>
bool ParseNumberText(std::string_view s, Number* out) {
  s = TrimBlanks(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

inline bool ParseBoolText(std::string_view s, bool* out) {
  s = TrimBlanks(s);
  if (Schema::EqualsIgnoreCase(s, "true")) *out = true;
  else if (Schema::EqualsIgnoreCase(s, "false")) *out = false;
  else return false;
  return true;
}

// ---- error messages (error path only) -------------------------------------

inline std::string NotATypeError(const Field& field, std::string_view shown_value) {
  return "field '" + field.name + "': " + std::string(shown_value) + " is not a " + DataTypeName(field.type);
}

inline std::string QuotedForMessage(std::string_view text) {
  constexpr size_t kMaxShown = 64;  // a huge bad value must not flood the log
  std::string out(1, '\'');
  out.append(text.substr(0, kMaxShown));
  if (text.size() > kMaxShown) out.append("...");
  out.push_back('\'');
  return out;
}

// Fails with a message when a NOT NULL field of the row is null.
inline bool CheckNotNullFields(const Schema& schema, const PendingRow& row, std::string* error) {
  for (int i = 0; i < schema.num_fields(); ++i)
    if (!schema.field(i).nullable && row.cell(i).is_null) {
      *error = "field '" + schema.field(i).name + "' is null but the schema declares it NOT NULL";
      return false;
    }
  return true;
}

// ---- text cells (csv) ------------------------------------------------------

// Converts one csv field. `text` must stay valid until the row is appended.
// An empty field is null, except that a quoted empty field ("") is the empty
// string for STRING columns, as Spark reads it.
inline bool ConvertTextCell(std::string_view text, bool quoted, const Field& field, int index, PendingRow& row,
                            std::string* error) {
  PendingCell& cell = row.cell(index);
  cell = PendingCell{};
  if (text.empty() && !(quoted && field.type == DataType::kString)) return true;
  cell.is_null = false;
  switch (field.type) {
    case DataType::kString: cell.text = text; return true;
    case DataType::kBinary: {
      std::string& scratch = row.scratch();
      cell.text_in_scratch = true;
      cell.scratch_offset = scratch.size();
      if (!AppendBase64Decoded(TrimBlanks(text), scratch)) break;
      cell.scratch_length = scratch.size() - cell.scratch_offset;
      return true;
    }
    case DataType::kBool: {
      bool b;
      if (!ParseBoolText(text, &b)) break;
      cell.int_value = b;
      return true;
    }
    case DataType::kInt64:
      if (!ParseNumberText(text, &cell.int_value)) break;
      return true;
    case DataType::kFloat64:
      if (!ParseNumberText(text, &cell.double_value)) break;
      return true;
    case DataType::kTimestamp: {
      auto micros = ParseTimestamp(TrimBlanks(text));
      if (!micros) break;
      cell.int_value = *micros;
      return true;
    }
  }
  *error = NotATypeError(field, QuotedForMessage(text));
  return false;
}

// ---- JSON cells (jsonl, memory rows) ---------------------------------------

inline const char* JsonTypeName(simdjson::dom::element_type t) {
  using T = simdjson::dom::element_type;
  switch (t) {
    case T::ARRAY: return "an array";
    case T::OBJECT: return "an object";
    case T::INT64:
    case T::UINT64: return "an integer";
    case T::DOUBLE: return "a number";
    case T::STRING: return "a string";
    case T::BOOL: return "a boolean";
    case T::NULL_VALUE: return "null";
  }
  return "a value";
}

inline std::string JsonMismatchError(const Field& field, simdjson::dom::element value) {
  std::string shown = simdjson::minify(value);
  constexpr size_t kMaxShown = 64;
  if (shown.size() > kMaxShown) shown = shown.substr(0, kMaxShown) + "...";
  return NotATypeError(field, shown);
}

// Converts one JSON value. Numbers for TIMESTAMP are seconds since the epoch
// (fractions allowed); strings are parsed with ParseTimestamp. A STRING field
// given a non-string value keeps that value's JSON text, as Spark does.
inline bool ConvertJsonCell(simdjson::dom::element value, const Field& field, int index, PendingRow& row,
                            std::string* error) {
  using T = simdjson::dom::element_type;
  PendingCell& cell = row.cell(index);
  cell = PendingCell{};
  T type = value.type();
  if (type == T::NULL_VALUE) return true;
  cell.is_null = false;
  switch (field.type) {
    case DataType::kString:
      if (type == T::STRING) {
        cell.text = value.get_string().value_unsafe();
      } else {
        std::string& scratch = row.scratch();
        cell.text_in_scratch = true;
        cell.scratch_offset = scratch.size();
        scratch += simdjson::minify(value);
        cell.scratch_length = scratch.size() - cell.scratch_offset;
      }
      return true;
    case DataType::kBinary: {
      if (type != T::STRING) break;
      std::string& scratch = row.scratch();
      cell.text_in_scratch = true;
      cell.scratch_offset = scratch.size();
      if (!AppendBase64Decoded(value.get_string().value_unsafe(), scratch)) break;
      cell.scratch_length = scratch.size() - cell.scratch_offset;
      return true;
    }
    case DataType::kBool:
      if (type != T::BOOL) break;
      cell.int_value = value.get_bool().value_unsafe();
      return true;
    case DataType::kInt64:
      if (type != T::INT64) break;
      cell.int_value = value.get_int64().value_unsafe();
      return true;
    case DataType::kFloat64:
      if (type != T::INT64 && type != T::UINT64 && type != T::DOUBLE) break;
      cell.double_value = value.get_double().value_unsafe();
      return true;
    case DataType::kTimestamp:
      if (type == T::STRING) {
        auto micros = ParseTimestamp(value.get_string().value_unsafe());
        if (!micros) break;
        cell.int_value = *micros;
        return true;
      }
      if (type == T::INT64) {
        int64_t seconds = value.get_int64().value_unsafe();
        if (__builtin_mul_overflow(seconds, int64_t{1000000}, &cell.int_value)) break;
        return true;
      }
      if (type == T::DOUBLE || type == T::UINT64) {
        double micros = value.get_double().value_unsafe() * 1e6;
        if (!(std::fabs(micros) < 9.2e18)) break;
        cell.int_value = std::llround(micros);
        return true;
      }
      break;
  }
  *error = JsonMismatchError(field, value);
  return false;
}

// Fills `row` from a JSON object: fields by name (exact, then
// case-insensitive), missing ones null, extra ones ignored, a repeated key's
// last value wins.
inline bool ConvertJsonObject(simdjson::dom::element document, const Schema& schema, PendingRow& row,
                              std::string* error) {
  row.Reset();
  simdjson::dom::object object;
  if (document.get_object().get(object) != simdjson::SUCCESS) {
    *error = std::string("expected a JSON object, found ") + JsonTypeName(document.type());
    return false;
  }
  for (auto [key, value] : object) {
    int index = schema.IndexOf(key);
    if (index < 0) continue;
    if (!ConvertJsonCell(value, schema.field(index), index, row, error)) return false;
  }
  return CheckNotNullFields(schema, row, error);
}

// ---- batching ---------------------------------------------------------------

// Collects rows into batches of at most kPreferredBatchRows and hands each
// full batch to the ReadContext.
class BatchEmitter {
 public:
  BatchEmitter(SchemaPtr schema, ReadContext& ctx, int64_t expected_rows)
      : builder_(schema, std::min<int64_t>(expected_rows, kPreferredBatchRows)), ctx_(ctx) {}

  RecordBatchBuilder& builder() { return builder_; }

  Status Append(const PendingRow& row) {
    row.AppendTo(builder_);
    return RowAppended();
  }

  // For callers that append to builder() directly.
  Status RowAppended() {
    if (builder_.num_rows() >= kPreferredBatchRows) return Flush();
    return Status::OK();
  }

  // Emits what has been collected, if anything. Also where a long read notices
  // a stop request.
  Status Flush() {
    if (ctx_.StopRequested()) return Status::Aborted("read stopped on request");
    if (builder_.num_rows() == 0) return Status::OK();
    return ctx_.Emit(builder_.Finish());
  }

 private:
  RecordBatchBuilder builder_;
  ReadContext& ctx_;
};

}  // namespace sluice::typed_rows
