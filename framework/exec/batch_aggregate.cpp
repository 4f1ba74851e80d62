#include "exec/batch_aggregate.h"

#include <cctype>
#include <cstring>
#include <limits>

namespace sluice {

namespace {

void AppendKeyBytes(std::string& key, const Column& c, int64_t row) {
  if (c.is_null(row)) { key.push_back('\0'); return; }
  key.push_back('\1');
  switch (c.type()) {
    case DataType::kBool: key.push_back(c.bool_at(row) ? '\1' : '\0'); break;
    case DataType::kInt64:
    case DataType::kTimestamp: {
      int64_t v = c.int64_at(row);
      key.append(reinterpret_cast<const char*>(&v), sizeof v);
      break;
    }
    case DataType::kFloat64: {
      double v = c.float64_at(row);
      if (v == 0) v = 0;  // -0.0 and 0.0 are one group, as in Spark
      if (v != v) v = std::numeric_limits<double>::quiet_NaN();  // every NaN is one group
      key.append(reinterpret_cast<const char*>(&v), sizeof v);
      break;
    }
    case DataType::kString:
    case DataType::kBinary: {
      std::string_view s = c.string_at(row);
      uint32_t n = static_cast<uint32_t>(s.size());
      key.append(reinterpret_cast<const char*>(&n), sizeof n);
      key.append(s);
      break;
    }
  }
}

}  // namespace

static bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool ParseAggregate(std::string_view text, const Schema& input, AggregateSpec* out, expr::ExprError* error) {
  size_t i = 0;
  auto skip_ws = [&] { while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i; };
  skip_ws();
  size_t fn_start = i;
  while (i < text.size() && IsIdentChar(text[i])) ++i;
  std::string fn;
  for (size_t k = fn_start; k < i; ++k) fn.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(text[k]))));
  skip_ws();
  if (fn.empty() || i >= text.size() || text[i] != '(') {
    *error = {fn_start, "expected an aggregate call such as count(*), sum(x), min(x), max(x) or avg(x)"};
    return false;
  }
  size_t open = i++;
  int depth = 1;
  char quote = 0;
  for (; i < text.size() && depth > 0; ++i) {
    char c = text[i];
    if (quote) { if (c == quote) quote = 0; continue; }
    if (c == '\'' || c == '"' || c == '`') quote = c;
    else if (c == '(') ++depth;
    else if (c == ')') --depth;
  }
  if (depth != 0) { *error = {open, "unclosed '(' in aggregate"}; return false; }
  size_t close = i - 1;
  std::string_view arg = text.substr(open + 1, close - open - 1);
  size_t arg_offset = open + 1;
  while (!arg.empty() && std::isspace(static_cast<unsigned char>(arg.front()))) { arg.remove_prefix(1); ++arg_offset; }
  while (!arg.empty() && std::isspace(static_cast<unsigned char>(arg.back()))) arg.remove_suffix(1);
  skip_ws();
  std::string alias;
  if (i < text.size()) {
    size_t as_start = i;
    std::string as_word;
    while (i < text.size() && IsIdentChar(text[i])) as_word.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(text[i++]))));
    skip_ws();
    if (as_word != "AS") { *error = {as_start, "expected AS <name> after the aggregate"}; return false; }
    if (i < text.size() && text[i] == '`') {
      size_t end = text.find('`', i + 1);
      if (end == std::string_view::npos) { *error = {i, "unclosed '`'"}; return false; }
      alias = std::string(text.substr(i + 1, end - i - 1));
      i = end + 1;
    } else {
      while (i < text.size() && IsIdentChar(text[i])) alias.push_back(text[i++]);
    }
    skip_ws();
    if (alias.empty() || i != text.size()) { *error = {i, "expected a single name after AS"}; return false; }
  }
  AggregateSpec spec;
  if (fn == "count" && arg == "*") {
    spec.fn = AggregateFunction::kCountStar;
    spec.output_type = DataType::kInt64;
    spec.name = alias.empty() ? "count(1)" : alias;  // Spark's name for count(*)
    *out = std::move(spec);
    return true;
  }
  if (fn == "count") spec.fn = AggregateFunction::kCount;
  else if (fn == "sum") spec.fn = AggregateFunction::kSum;
  else if (fn == "min") spec.fn = AggregateFunction::kMin;
  else if (fn == "max") spec.fn = AggregateFunction::kMax;
  else if (fn == "avg" || fn == "mean") spec.fn = AggregateFunction::kAvg;
  else {
    *error = {fn_start, "unknown aggregate '" + fn + "'; expected count, sum, min, max or avg"};
    return false;
  }
  if (arg.empty()) { *error = {open, fn + "() needs one argument"}; return false; }
  expr::ExprError arg_error;
  spec.argument = expr::CompileExpression(arg, input, &arg_error);
  if (!spec.argument) {
    *error = {arg_offset + arg_error.offset, arg_error.message};
    return false;
  }
  DataType t = spec.argument->type();
  switch (spec.fn) {
    case AggregateFunction::kCount: spec.output_type = DataType::kInt64; break;
    case AggregateFunction::kSum:
      if (!IsNumeric(t)) { *error = {arg_offset, "sum() needs a number, but '" + std::string(arg) + "' is " + DataTypeName(t)}; return false; }
      spec.output_type = t;
      break;
    case AggregateFunction::kAvg:
      if (!IsNumeric(t)) { *error = {arg_offset, "avg() needs a number, but '" + std::string(arg) + "' is " + DataTypeName(t)}; return false; }
      spec.output_type = DataType::kFloat64;
      break;
    case AggregateFunction::kMin:
    case AggregateFunction::kMax:
      if (t == DataType::kBinary) { *error = {arg_offset, fn + "() cannot order BINARY values"}; return false; }
      spec.output_type = t;
      break;
    default: break;
  }
  spec.name = alias.empty() ? fn + "(" + spec.argument->name() + ")" : alias;
  *out = std::move(spec);
  return true;
}

BatchAggregate::BatchAggregate(std::vector<std::shared_ptr<expr::CompiledExpr>> keys,
                               std::vector<AggregateSpec> aggregates)
    : keys_(std::move(keys)), aggregates_(std::move(aggregates)) {
  std::vector<Field> fields;
  for (const auto& k : keys_) fields.push_back({k->name(), k->type(), true});
  for (const auto& a : aggregates_)
    fields.push_back({a.name, a.output_type, a.fn != AggregateFunction::kCountStar && a.fn != AggregateFunction::kCount});
  output_schema_ = std::make_shared<const Schema>(std::move(fields));
}

BatchAggregate::~BatchAggregate() = default;

std::unique_ptr<AggregateState> BatchAggregate::NewState() const { return std::make_unique<AggregateState>(); }

Status BatchAggregate::Consume(AggregateState& state, const RecordBatch& batch, const expr::EvalContext& ctx) const {
  const int64_t n = batch.num_rows();
  if (n == 0) return Status::OK();
  std::vector<ColumnPtr> key_cols, arg_cols;
  for (const auto& k : keys_) {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr c, k->Evaluate(batch, ctx));
    key_cols.push_back(std::move(c));
  }
  for (const auto& a : aggregates_) {
    if (!a.argument) { arg_cols.push_back(nullptr); continue; }
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr c, a.argument->Evaluate(batch, ctx));
    arg_cols.push_back(std::move(c));
  }
  // Phase 1: a group id per row.
  std::vector<uint32_t> gid(static_cast<size_t>(n));
  std::string key;
  for (int64_t r = 0; r < n; ++r) {
    key.clear();
    for (const auto& c : key_cols) AppendKeyBytes(key, *c, r);
    gid[static_cast<size_t>(r)] = state.GroupFor(key, aggregates_.size());
  }
  if (state.accs.size() != aggregates_.size()) state.accs.resize(aggregates_.size());
  // Phase 2: one tight loop per aggregate.
  for (size_t a = 0; a < aggregates_.size(); ++a) {
    aggregate_detail::Accumulator& acc = state.accs[a];
    const AggregateSpec& spec = aggregates_[a];
    if (spec.fn == AggregateFunction::kCountStar) {
      for (int64_t r = 0; r < n; ++r) ++acc.count[gid[static_cast<size_t>(r)]];
      continue;
    }
    const Column& c = *arg_cols[a];
    const bool is_double = c.type() == DataType::kFloat64;
    const bool is_string = IsVariableWidth(c.type());
    if (is_string && acc.str.size() < acc.count.size()) acc.str.resize(acc.count.size());
    for (int64_t r = 0; r < n; ++r) {
      if (c.is_null(r)) continue;
      uint32_t g = gid[static_cast<size_t>(r)];
      bool first = acc.count[g] == 0;
      ++acc.count[g];
      switch (spec.fn) {
        case AggregateFunction::kCount: break;
        case AggregateFunction::kSum:
        case AggregateFunction::kAvg:
          if (is_double) acc.f64[g] += c.float64_at(r);
          else if (spec.fn == AggregateFunction::kAvg) acc.f64[g] += static_cast<double>(c.int64_at(r));
          else acc.i64[g] += c.int64_at(r);
          break;
        case AggregateFunction::kMin:
        case AggregateFunction::kMax: {
          bool want_less = spec.fn == AggregateFunction::kMin;
          if (is_string) {
            std::string_view v = c.string_at(r);
            if (first || (want_less ? v < acc.str[g] : v > acc.str[g])) acc.str[g].assign(v);
          } else if (is_double) {
            double v = c.float64_at(r);
            if (first || (want_less ? v < acc.f64[g] : v > acc.f64[g])) acc.f64[g] = v;
          } else {
            int64_t v = c.type() == DataType::kBool ? c.bool_at(r) : c.int64_at(r);
            if (first || (want_less ? v < acc.i64[g] : v > acc.i64[g])) acc.i64[g] = v;
          }
          break;
        }
        default: break;
      }
    }
  }
  return Status::OK();
}

void BatchAggregate::Merge(AggregateState& into, const AggregateState& from) const {
  if (into.accs.size() != aggregates_.size()) into.accs.resize(aggregates_.size());
  for (size_t fg = 0; fg < from.keys.size(); ++fg)
    MergeGroup(into, into.GroupFor(from.keys[fg], aggregates_.size()), from, fg);
}

void BatchAggregate::MergeGroup(AggregateState& into, uint32_t g, const AggregateState& from, size_t fg) const {
  for (size_t a = 0; a < aggregates_.size(); ++a) {
    const aggregate_detail::Accumulator& src = from.accs[a];
    aggregate_detail::Accumulator& dst = into.accs[a];
    const AggregateSpec& spec = aggregates_[a];
    if (src.count[fg] == 0) continue;
    bool first = dst.count[g] == 0;
    dst.count[g] += src.count[fg];
    bool is_string = spec.argument && IsVariableWidth(spec.argument->type());
    bool is_double = spec.argument && spec.argument->type() == DataType::kFloat64;
    if (is_string && dst.str.size() < dst.count.size()) dst.str.resize(dst.count.size());
    switch (spec.fn) {
      case AggregateFunction::kSum:
      case AggregateFunction::kAvg:
        dst.f64[g] += src.f64[fg];
        dst.i64[g] += src.i64[fg];
        break;
      case AggregateFunction::kMin:
      case AggregateFunction::kMax: {
        bool want_less = spec.fn == AggregateFunction::kMin;
        if (is_string) {
          if (first || (want_less ? src.str[fg] < dst.str[g] : src.str[fg] > dst.str[g])) dst.str[g] = src.str[fg];
        } else if (is_double) {
          if (first || (want_less ? src.f64[fg] < dst.f64[g] : src.f64[fg] > dst.f64[g])) dst.f64[g] = src.f64[fg];
        } else if (first || (want_less ? src.i64[fg] < dst.i64[g] : src.i64[fg] > dst.i64[g])) {
          dst.i64[g] = src.i64[fg];
        }
        break;
      }
      default: break;
    }
  }
}

// Per aggregate: count, i64 and f64 (8 bytes each, little-endian as in
// memory), then for string min/max a 4-byte length and the bytes.
void BatchAggregate::EncodeAccumulators(const AggregateState& state, uint32_t g, std::string* out) const {
  out->clear();
  for (size_t a = 0; a < aggregates_.size(); ++a) {
    const aggregate_detail::Accumulator& acc = state.accs[a];
    out->append(reinterpret_cast<const char*>(&acc.count[g]), 8);
    out->append(reinterpret_cast<const char*>(&acc.i64[g]), 8);
    out->append(reinterpret_cast<const char*>(&acc.f64[g]), 8);
    const AggregateSpec& spec = aggregates_[a];
    if (spec.argument && IsVariableWidth(spec.argument->type())) {
      const std::string empty;
      const std::string& v = g < acc.str.size() ? acc.str[g] : empty;
      uint32_t n = static_cast<uint32_t>(v.size());
      out->append(reinterpret_cast<const char*>(&n), 4);
      out->append(v);
    }
  }
}

Status BatchAggregate::MergeEncoded(AggregateState& into, std::string_view key, std::string_view encoded) const {
  AggregateState one;
  uint32_t g1 = one.GroupFor(key, aggregates_.size());
  size_t p = 0;
  auto take = [&](void* dst, size_t n) {
    if (p + n > encoded.size()) return false;
    std::memcpy(dst, encoded.data() + p, n);
    p += n;
    return true;
  };
  for (size_t a = 0; a < aggregates_.size(); ++a) {
    aggregate_detail::Accumulator& acc = one.accs[a];
    if (!take(&acc.count[g1], 8) || !take(&acc.i64[g1], 8) || !take(&acc.f64[g1], 8))
      return Status::Corruption("aggregate state value is shorter than its aggregates need");
    const AggregateSpec& spec = aggregates_[a];
    if (spec.argument && IsVariableWidth(spec.argument->type())) {
      uint32_t n;
      if (!take(&n, 4) || p + n > encoded.size()) return Status::Corruption("aggregate state string is truncated");
      acc.str.assign(1, std::string(encoded.substr(p, n)));
      p += n;
    }
  }
  if (p != encoded.size()) return Status::Corruption("aggregate state value has trailing bytes");
  if (into.accs.size() != aggregates_.size()) into.accs.resize(aggregates_.size());
  uint32_t g = into.GroupFor(key, aggregates_.size());
  // The stored value is the earlier one: merge the batch's partial into it.
  AggregateState merged;
  uint32_t mg = merged.GroupFor(key, aggregates_.size());
  MergeGroup(merged, mg, one, 0);
  MergeGroup(merged, mg, into, g);
  for (size_t a = 0; a < aggregates_.size(); ++a) {
    aggregate_detail::Accumulator& dst = into.accs[a];
    const aggregate_detail::Accumulator& src = merged.accs[a];
    dst.count[g] = src.count[mg];
    dst.i64[g] = src.i64[mg];
    dst.f64[g] = src.f64[mg];
    if (!src.str.empty()) {
      if (dst.str.size() < dst.count.size()) dst.str.resize(dst.count.size());
      dst.str[g] = src.str[mg];
    }
  }
  return Status::OK();
}

std::vector<RecordBatchPtr> BatchAggregate::Finish(const AggregateState& state) const {
  std::vector<RecordBatchPtr> out;
  const int64_t groups = static_cast<int64_t>(state.keys.size());
  for (int64_t begin = 0; begin < groups || (begin == 0 && keys_.empty()); begin += kPreferredBatchRows) {
    int64_t end = std::min(groups, begin + kPreferredBatchRows);
    RecordBatchBuilder b(output_schema_, end - begin);
    if (keys_.empty() && groups == 0) {
      // A global aggregate over no rows still has one row, as in SQL.
      for (size_t a = 0; a < aggregates_.size(); ++a) {
        auto fn = aggregates_[a].fn;
        if (fn == AggregateFunction::kCount || fn == AggregateFunction::kCountStar) b.column(static_cast<int>(a)).AppendInt64(0);
        else b.column(static_cast<int>(a)).AppendNull();
      }
      out.push_back(b.Finish());
      break;
    }
    for (int64_t g = begin; g < end; ++g) {
      // Decode the key bytes back into values.
      const std::string& key = state.keys[static_cast<size_t>(g)];
      size_t p = 0;
      for (size_t k = 0; k < keys_.size(); ++k) {
        ColumnBuilder& col = b.column(static_cast<int>(k));
        if (key[p++] == '\0') { col.AppendNull(); continue; }
        switch (keys_[k]->type()) {
          case DataType::kBool: col.AppendBool(key[p++] != '\0'); break;
          case DataType::kInt64:
          case DataType::kTimestamp: {
            int64_t v;
            std::memcpy(&v, key.data() + p, sizeof v);
            p += sizeof v;
            col.AppendInt64(v);
            break;
          }
          case DataType::kFloat64: {
            double v;
            std::memcpy(&v, key.data() + p, sizeof v);
            p += sizeof v;
            col.AppendFloat64(v);
            break;
          }
          case DataType::kString:
          case DataType::kBinary: {
            uint32_t len;
            std::memcpy(&len, key.data() + p, sizeof len);
            p += sizeof len;
            col.AppendString(std::string_view(key.data() + p, len));
            p += len;
            break;
          }
        }
      }
      for (size_t a = 0; a < aggregates_.size(); ++a) {
        ColumnBuilder& col = b.column(static_cast<int>(keys_.size() + a));
        const aggregate_detail::Accumulator& acc = state.accs[a];
        const AggregateSpec& spec = aggregates_[a];
        size_t gi = static_cast<size_t>(g);
        switch (spec.fn) {
          case AggregateFunction::kCountStar:
          case AggregateFunction::kCount: col.AppendInt64(acc.count[gi]); break;
          case AggregateFunction::kAvg:
            if (acc.count[gi] == 0) col.AppendNull();
            else col.AppendFloat64(acc.f64[gi] / static_cast<double>(acc.count[gi]));
            break;
          case AggregateFunction::kSum:
          case AggregateFunction::kMin:
          case AggregateFunction::kMax:
            if (acc.count[gi] == 0) { col.AppendNull(); break; }
            switch (spec.output_type) {
              case DataType::kFloat64: col.AppendFloat64(acc.f64[gi]); break;
              case DataType::kString:
              case DataType::kBinary: col.AppendString(acc.str[gi]); break;
              case DataType::kBool: col.AppendBool(acc.i64[gi] != 0); break;
              default: col.AppendInt64(acc.i64[gi]); break;
            }
            break;
        }
      }
    }
    out.push_back(b.Finish());
  }
  return out;
}

}  // namespace sluice
