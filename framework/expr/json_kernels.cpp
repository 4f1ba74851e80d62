// from_json() and get_json_object() over STRING columns, parsed with simdjson.
// Each Evaluate call owns its parser, so kernels stay stateless and
// thread-safe; the parser's buffers are reused across the rows of a batch.
#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <limits>

#include "expr/kernels.h"
#include "sluice/value_format.h"

namespace sluice::expr {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// Appends `value` converted to `type` as Spark's PERMISSIVE JSON reader would:
// a value of the wrong JSON type becomes NULL.
void AppendJsonValue(ColumnBuilder& out, DataType type, const element& value) {
  const element_type kind = value.type();
  if (kind == element_type::NULL_VALUE) {
    out.AppendNull();
    return;
  }
  switch (type) {
    case DataType::kBool:
      if (kind == element_type::BOOL) out.AppendBool(value.get_bool().value_unsafe());
      else out.AppendNull();
      return;
    case DataType::kInt64:
      if (kind == element_type::INT64) out.AppendInt64(value.get_int64().value_unsafe());
      else out.AppendNull();  // fractions and out-of-range integers do not fit BIGINT
      return;
    case DataType::kFloat64:
      if (kind == element_type::INT64 || kind == element_type::UINT64 || kind == element_type::DOUBLE) {
        out.AppendFloat64(value.get_double().value_unsafe());
      } else if (kind == element_type::STRING) {
        // Spark reads the quoted special values "NaN", "Infinity", "-Infinity".
        std::string_view s = value.get_string().value_unsafe();
        if (s == "NaN") out.AppendFloat64(std::numeric_limits<double>::quiet_NaN());
        else if (s == "Infinity" || s == "+Infinity") out.AppendFloat64(std::numeric_limits<double>::infinity());
        else if (s == "-Infinity") out.AppendFloat64(-std::numeric_limits<double>::infinity());
        else out.AppendNull();
      } else {
        out.AppendNull();
      }
      return;
    case DataType::kTimestamp:
      if (kind == element_type::STRING) {
        auto ts = ParseTimestamp(value.get_string().value_unsafe());
        if (ts) out.AppendTimestamp(*ts);
        else out.AppendNull();
      } else if (kind == element_type::INT64) {
        out.AppendTimestamp(value.get_int64().value_unsafe() * 1000000);  // seconds since the epoch
      } else {
        out.AppendNull();
      }
      return;
    case DataType::kString:
    case DataType::kBinary:
      if (kind == element_type::STRING) out.AppendString(value.get_string().value_unsafe());
      else out.AppendString(simdjson::minify(value));  // Spark keeps the JSON text of non-strings
      return;
  }
}

class FromJsonKernel final : public Kernel {
 public:
  FromJsonKernel(KernelPtr json, Schema schema)
      : Kernel(ExprType::Struct(std::make_shared<const Schema>(std::move(schema))), {std::move(json)}) {}

  Result<StructColumnPtr> EvaluateStruct(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    const Schema& schema = *type().fields;
    const int64_t n = in->length();
    const size_t field_count = static_cast<size_t>(schema.num_fields());
    std::vector<ColumnBuilder> builders;
    for (const auto& f : schema.fields()) builders.emplace_back(f.type, n);
    std::vector<element> found(field_count);
    std::vector<bool> present(field_count);
    simdjson::dom::parser parser;
    for (int64_t i = 0; i < n; ++i) {
      std::fill(present.begin(), present.end(), false);
      if (in->is_valid(i)) {
        std::string_view text = in->string_at(i);
        simdjson::dom::object object;
        // Malformed JSON, or JSON that is not an object, gives a row of NULLs (PERMISSIVE).
        if (!parser.parse(text.data(), text.size()).get_object().get(object)) {
          for (auto [key, value] : object) {
            for (size_t f = 0; f < field_count; ++f) {
              if (schema.field(static_cast<int>(f)).name == key) {
                found[f] = value;
                present[f] = true;
                break;
              }
            }
          }
        }
      }
      for (size_t f = 0; f < field_count; ++f) {
        if (present[f]) AppendJsonValue(builders[f], schema.field(static_cast<int>(f)).type, found[f]);
        else builders[f].AppendNull();
      }
    }
    auto out = std::make_shared<StructColumn>();
    out->length = n;
    out->validity = in->validity_buffer();
    for (auto& b : builders) out->fields.push_back(b.Finish());
    return StructColumnPtr(out);
  }
};

struct JsonPathStep {
  bool is_index = false;
  std::string key;
  size_t index = 0;
};

// Parses "$.a.b[0]['c d']"; returns false for anything else.
bool ParseJsonPath(std::string_view path, std::vector<JsonPathStep>* steps) {
  if (path.empty() || path[0] != '$') return false;
  size_t i = 1;
  while (i < path.size()) {
    JsonPathStep step;
    if (path[i] == '.') {
      size_t start = ++i;
      while (i < path.size() && path[i] != '.' && path[i] != '[') ++i;
      if (i == start) return false;
      step.key = std::string(path.substr(start, i - start));
    } else if (path[i] == '[') {
      ++i;
      if (i < path.size() && path[i] == '\'') {
        size_t close = path.find('\'', i + 1);
        if (close == std::string_view::npos || close + 1 >= path.size() || path[close + 1] != ']') return false;
        step.key = std::string(path.substr(i + 1, close - i - 1));
        i = close + 2;
      } else {
        size_t close = path.find(']', i);
        if (close == std::string_view::npos || close == i) return false;
        auto r = std::from_chars(path.data() + i, path.data() + close, step.index);
        if (r.ptr != path.data() + close) return false;
        step.is_index = true;
        i = close + 1;
      }
    } else {
      return false;
    }
    steps->push_back(std::move(step));
  }
  return true;
}

class GetJsonObjectKernel final : public Kernel {
 public:
  GetJsonObjectKernel(KernelPtr json, std::vector<JsonPathStep> steps)
      : Kernel(ExprType::Scalar(DataType::kString), {std::move(json)}), steps_(std::move(steps)) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    simdjson::dom::parser parser;
    compute::StringColumnWriter out(DataType::kString, in->length(), in->data_buffer().size() / 4);
    for (int64_t i = 0; i < in->length(); ++i) {
      element value;
      if (!in->is_valid(i) || !Find(parser, in->string_at(i), &value) || value.type() == element_type::NULL_VALUE) {
        out.AppendNull();
        continue;
      }
      switch (value.type()) {
        case element_type::STRING: out.Append(value.get_string().value_unsafe()); break;
        case element_type::INT64: {
          char* at = out.Extend(24);
          out.Commit(static_cast<size_t>(std::to_chars(at, at + 24, value.get_int64().value_unsafe()).ptr - at));
          break;
        }
        case element_type::BOOL: out.Append(value.get_bool().value_unsafe() ? "true" : "false"); break;
        default: out.Append(simdjson::minify(value));  // objects, arrays and other numbers as compact JSON
      }
    }
    return ColumnPtr(out.Finish());
  }

 private:
  bool Find(simdjson::dom::parser& parser, std::string_view text, element* out) const {
    element current;
    if (parser.parse(text.data(), text.size()).get(current)) return false;
    for (const auto& step : steps_) {
      simdjson::error_code error =
          step.is_index ? current.at(step.index).get(current) : current.at_key(step.key).get(current);
      if (error) return false;
    }
    *out = current;
    return true;
  }

  std::vector<JsonPathStep> steps_;
};

}  // namespace

KernelPtr MakeFromJson(KernelPtr json, Schema schema) { return std::make_shared<FromJsonKernel>(std::move(json), std::move(schema)); }

KernelPtr MakeGetJsonObject(KernelPtr json, const std::string& path, std::string* error) {
  std::vector<JsonPathStep> steps;
  if (!ParseJsonPath(path, &steps)) {
    *error = "unsupported JSON path '" + path + "': expected '$' followed by .name, ['name'] or [index] steps";
    return nullptr;
  }
  return std::make_shared<GetJsonObjectKernel>(std::move(json), std::move(steps));
}

}  // namespace sluice::expr
