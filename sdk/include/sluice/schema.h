// Data types, fields and schemas of record batches.
//
// The type set is deliberately small and maps one-to-one onto Arrow types, so a
// batch can be exported through the Arrow C Data Interface without copying:
//   Bool -> boolean (stored one byte per value here, packed to bits on export)
//   Int64 -> int64, Float64 -> float64, String -> utf8, Binary -> binary,
//   Timestamp -> timestamp[us, UTC] (microseconds since the Unix epoch).
#pragma once

#include <cctype>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

namespace sluice {

enum class DataType : uint8_t { kBool, kInt64, kFloat64, kString, kBinary, kTimestamp };

inline const char* DataTypeName(DataType t) {
  switch (t) {
    case DataType::kBool: return "BOOLEAN";
    case DataType::kInt64: return "BIGINT";
    case DataType::kFloat64: return "DOUBLE";
    case DataType::kString: return "STRING";
    case DataType::kBinary: return "BINARY";
    case DataType::kTimestamp: return "TIMESTAMP";
  }
  return "?";
}

// Bytes per value in the values buffer, or 0 for variable-width types.
inline int FixedWidth(DataType t) {
  switch (t) {
    case DataType::kBool: return 1;
    case DataType::kInt64:
    case DataType::kFloat64:
    case DataType::kTimestamp: return 8;
    default: return 0;
  }
}

inline bool IsVariableWidth(DataType t) { return t == DataType::kString || t == DataType::kBinary; }
inline bool IsNumeric(DataType t) { return t == DataType::kInt64 || t == DataType::kFloat64; }

// Parses a SQL type name as Spark spells them, case-insensitive:
// BOOLEAN|BOOL, TINYINT|SMALLINT|INT|INTEGER|BIGINT|LONG -> Int64,
// FLOAT|DOUBLE|REAL -> Float64, STRING|VARCHAR|TEXT -> String, BINARY|BYTES,
// TIMESTAMP. Returns false if the name is not a type.
inline bool ParseDataType(std::string_view name, DataType* out) {
  std::string n;
  for (char c : name) n.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (n == "BOOLEAN" || n == "BOOL") *out = DataType::kBool;
  else if (n == "TINYINT" || n == "SMALLINT" || n == "INT" || n == "INTEGER" || n == "BIGINT" || n == "LONG")
    *out = DataType::kInt64;
  else if (n == "FLOAT" || n == "DOUBLE" || n == "REAL") *out = DataType::kFloat64;
  else if (n == "STRING" || n == "VARCHAR" || n == "TEXT") *out = DataType::kString;
  else if (n == "BINARY" || n == "BYTES") *out = DataType::kBinary;
  else if (n == "TIMESTAMP") *out = DataType::kTimestamp;
  else return false;
  return true;
}

struct Field {
  std::string name;
  DataType type = DataType::kString;
  bool nullable = true;

  bool operator==(const Field& o) const { return name == o.name && type == o.type && nullable == o.nullable; }
};

class Schema {
 public:
  Schema() = default;
  explicit Schema(std::vector<Field> fields) : fields_(std::move(fields)) {}

  int num_fields() const { return static_cast<int>(fields_.size()); }
  const Field& field(int i) const { return fields_[static_cast<size_t>(i)]; }
  const std::vector<Field>& fields() const { return fields_; }

  // Index of the field named `name` (exact match first, then case-insensitive,
  // as Spark resolves columns), or -1.
  int IndexOf(std::string_view name) const {
    for (size_t i = 0; i < fields_.size(); ++i)
      if (fields_[i].name == name) return static_cast<int>(i);
    for (size_t i = 0; i < fields_.size(); ++i)
      if (EqualsIgnoreCase(fields_[i].name, name)) return static_cast<int>(i);
    return -1;
  }

  // "a BIGINT, b STRING": the same DDL that ParseSchemaDdl reads.
  std::string ToString() const {
    std::string s;
    for (size_t i = 0; i < fields_.size(); ++i) {
      if (i) s += ", ";
      s += fields_[i].name + " " + DataTypeName(fields_[i].type);
    }
    return s;
  }

  bool operator==(const Schema& o) const { return fields_ == o.fields_; }

  static bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
        return false;
    return true;
  }

 private:
  std::vector<Field> fields_;
};

using SchemaPtr = std::shared_ptr<const Schema>;

// Parses a Spark DDL schema string: "a INT, b STRING, `odd name` DOUBLE".
// Field names may be back-quoted; an optional "NOT NULL" marks a field not nullable.
inline Result<Schema> ParseSchemaDdl(std::string_view ddl) {
  std::vector<Field> fields;
  size_t i = 0;
  auto skip_ws = [&] { while (i < ddl.size() && std::isspace(static_cast<unsigned char>(ddl[i]))) ++i; };
  auto word = [&]() -> std::string {
    skip_ws();
    std::string w;
    if (i < ddl.size() && ddl[i] == '`') {
      ++i;
      while (i < ddl.size() && ddl[i] != '`') w.push_back(ddl[i++]);
      if (i < ddl.size()) ++i;
      return w;
    }
    while (i < ddl.size() && (std::isalnum(static_cast<unsigned char>(ddl[i])) || ddl[i] == '_')) w.push_back(ddl[i++]);
    return w;
  };
  skip_ws();
  if (i == ddl.size()) return Status::InvalidArgument("empty schema: expected 'name TYPE, ...'");
  while (true) {
    size_t at = i;
    std::string name = word();
    if (name.empty())
      return Status::InvalidArgument("schema '" + std::string(ddl) + "': expected a field name at character " +
                                     std::to_string(at + 1));
    skip_ws();
    if (i < ddl.size() && ddl[i] == ':') ++i;  // "a: INT" is accepted too
    size_t type_at = i;
    std::string type_name = word();
    Field f{name, DataType::kString, true};
    if (!ParseDataType(type_name, &f.type))
      return Status::InvalidArgument("schema '" + std::string(ddl) + "': unknown type '" + type_name +
                                     "' for field '" + name + "' at character " + std::to_string(type_at + 1) +
                                     "; expected BOOLEAN, BIGINT, INT, DOUBLE, STRING, BINARY or TIMESTAMP");
    size_t save = i;
    std::string maybe_not = word();
    if (Schema::EqualsIgnoreCase(maybe_not, "NOT")) {
      std::string null_word = word();
      if (!Schema::EqualsIgnoreCase(null_word, "NULL"))
        return Status::InvalidArgument("schema '" + std::string(ddl) + "': expected NULL after NOT");
      f.nullable = false;
    } else {
      i = save;
    }
    for (const auto& existing : fields)
      if (existing.name == f.name)
        return Status::InvalidArgument("schema '" + std::string(ddl) + "': field '" + f.name + "' appears twice");
    fields.push_back(std::move(f));
    skip_ws();
    if (i == ddl.size()) break;
    if (ddl[i] != ',')
      return Status::InvalidArgument("schema '" + std::string(ddl) + "': expected ',' at character " +
                                     std::to_string(i + 1));
    ++i;
  }
  return Schema(std::move(fields));
}

}  // namespace sluice
