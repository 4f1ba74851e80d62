// Parsing of aggregate calls and the hash aggregation itself: per-batch
// consumption (one loop per aggregate), merges that respect arrival order,
// the byte encoding of one group's accumulators for state stores, and the
// final output batches.
#include "exec/batch_aggregate.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <limits>

namespace sluice {

namespace {

using aggregate_detail::Accumulator;

// SQL treats -0.0 and 0.0 as one value, and every NaN as one value, in
// grouping and in DISTINCT alike.
double NormalizedDouble(double v) {
  if (v == 0) return 0;
  if (v != v) return std::numeric_limits<double>::quiet_NaN();
  return v;
}

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
      double v = NormalizedDouble(c.float64_at(row));
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

bool IsCountLike(AggregateFunction fn) {
  return fn == AggregateFunction::kCountStar || fn == AggregateFunction::kCount ||
         fn == AggregateFunction::kCountDistinct || fn == AggregateFunction::kApproxCountDistinct;
}

bool HasBytesArgument(const AggregateSpec& spec) { return spec.argument && IsVariableWidth(spec.argument->type()); }

// Calls visit(row, bits) for every non-null row of a fixed-width column,
// dispatching on the type once per batch rather than once per row.
template <typename Visit>
void ForEachNonNullBits(const Column& c, int64_t n, Visit&& visit) {
  switch (c.type()) {
    case DataType::kBool: {
      const uint8_t* v = c.bool_values();
      for (int64_t r = 0; r < n; ++r)
        if (c.is_valid(r)) visit(r, uint64_t{v[r] != 0});
      break;
    }
    case DataType::kFloat64: {
      const double* v = c.float64_values();
      for (int64_t r = 0; r < n; ++r) {
        if (!c.is_valid(r)) continue;
        double d = NormalizedDouble(v[r]);
        uint64_t bits;
        std::memcpy(&bits, &d, sizeof bits);
        visit(r, bits);
      }
      break;
    }
    default: {
      const int64_t* v = c.int64_values();
      for (int64_t r = 0; r < n; ++r)
        if (c.is_valid(r)) visit(r, static_cast<uint64_t>(v[r]));
      break;
    }
  }
}

template <typename Visit>
void ForEachNonNullBytes(const Column& c, int64_t n, Visit&& visit) {
  for (int64_t r = 0; r < n; ++r)
    if (c.is_valid(r)) visit(r, c.string_at(r));
}

template <typename T>
void GrowTo(std::vector<T>& v, size_t n, const T& fill = T()) {
  if (v.size() < n) v.resize(n, fill);
}

// Gives every group a slot in the vectors that this aggregate uses beyond
// count/i64/f64 (GroupFor only grows those three).
void PrepareSlots(Accumulator& acc, const AggregateSpec& spec, size_t groups) {
  const bool bytes = HasBytesArgument(spec);
  switch (spec.fn) {
    case AggregateFunction::kMin:
    case AggregateFunction::kMax:
      if (bytes) GrowTo(acc.str, groups);
      break;
    case AggregateFunction::kFirst:
    case AggregateFunction::kLast:
      if (bytes) GrowTo(acc.str, groups);
      GrowTo(acc.value_is_null, groups);
      break;
    case AggregateFunction::kCountDistinct:
      if (bytes) GrowTo(acc.distinct_bytes, groups);
      else GrowTo(acc.distinct_bits, groups);
      break;
    case AggregateFunction::kApproxCountDistinct: GrowTo(acc.sketches, groups, HyperLogLog(spec.hll_precision)); break;
    default: break;
  }
}

// first()/last(): keeps row r of c (possibly null) as group g's value.
void KeepValue(Accumulator& acc, size_t g, const Column& c, int64_t r) {
  acc.value_is_null[g] = c.is_null(r);
  if (acc.value_is_null[g]) return;
  switch (c.type()) {
    case DataType::kBool: acc.i64[g] = c.bool_at(r); break;
    case DataType::kFloat64: acc.f64[g] = c.float64_at(r); break;
    case DataType::kString:
    case DataType::kBinary: acc.str[g].assign(c.string_at(r)); break;
    default: acc.i64[g] = c.int64_at(r); break;
  }
}

void CopyKeptValue(Accumulator& dst, size_t g, const Accumulator& src, size_t sg, bool bytes) {
  dst.value_is_null[g] = src.value_is_null[sg];
  dst.i64[g] = src.i64[sg];
  dst.f64[g] = src.f64[sg];
  if (bytes) dst.str[g] = src.str[sg];
}

void ConsumeFirst(Accumulator& acc, const Column& c, const std::vector<uint32_t>& gid, bool ignore_nulls) {
  const int64_t n = static_cast<int64_t>(gid.size());
  for (int64_t r = 0; r < n; ++r) {
    if (ignore_nulls && c.is_null(r)) continue;
    const uint32_t g = gid[static_cast<size_t>(r)];
    if (acc.count[g]++ == 0) KeepValue(acc, g, c, r);
  }
}

void ConsumeLast(Accumulator& acc, const Column& c, const std::vector<uint32_t>& gid, bool ignore_nulls) {
  // Backwards, so each group copies only its last value of the batch.
  std::vector<uint8_t> kept(acc.count.size(), 0);
  for (int64_t r = static_cast<int64_t>(gid.size()) - 1; r >= 0; --r) {
    if (ignore_nulls && c.is_null(r)) continue;
    const uint32_t g = gid[static_cast<size_t>(r)];
    ++acc.count[g];
    if (!kept[g]) {
      kept[g] = 1;
      KeepValue(acc, g, c, r);
    }
  }
}

void ConsumeCountDistinct(Accumulator& acc, const Column& c, const std::vector<uint32_t>& gid) {
  const int64_t n = static_cast<int64_t>(gid.size());
  if (IsVariableWidth(c.type())) {
    ForEachNonNullBytes(c, n, [&](int64_t r, std::string_view v) {
      const uint32_t g = gid[static_cast<size_t>(r)];
      ++acc.count[g];
      auto& seen = acc.distinct_bytes[g];
      if (seen.find(v) == seen.end()) seen.emplace(v);  // allocates only for a new value
    });
  } else {
    ForEachNonNullBits(c, n, [&](int64_t r, uint64_t bits) {
      const uint32_t g = gid[static_cast<size_t>(r)];
      ++acc.count[g];
      acc.distinct_bits[g].insert(bits);
    });
  }
}

void ConsumeApproxCountDistinct(Accumulator& acc, const Column& c, const std::vector<uint32_t>& gid) {
  const int64_t n = static_cast<int64_t>(gid.size());
  auto add = [&](int64_t r, uint64_t hash) {
    const uint32_t g = gid[static_cast<size_t>(r)];
    ++acc.count[g];
    acc.sketches[g].AddHash(hash);
  };
  if (IsVariableWidth(c.type()))
    ForEachNonNullBytes(c, n, [&](int64_t r, std::string_view v) { add(r, HyperLogLog::HashBytes(v)); });
  else
    ForEachNonNullBits(c, n, [&](int64_t r, uint64_t bits) { add(r, HyperLogLog::HashBits(bits)); });
}

// --- Accumulator encoding -------------------------------------------------
// Fixed-width fields are written as in memory (little-endian hosts).

template <typename T>
void Put(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}
void PutBytes(std::string* out, std::string_view v) {
  Put(out, static_cast<uint32_t>(v.size()));
  out->append(v);
}
template <typename T>
bool Take(std::string_view* in, T* v) {
  if (in->size() < sizeof *v) return false;
  std::memcpy(v, in->data(), sizeof *v);
  in->remove_prefix(sizeof *v);
  return true;
}
bool TakeBytes(std::string_view* in, std::string_view* v) {
  uint32_t n;
  if (!Take(in, &n) || in->size() < n) return false;
  *v = in->substr(0, n);
  in->remove_prefix(n);
  return true;
}

// Distinct values sorted, so equal sets always encode to equal bytes.
void PutDistinct(std::string* out, const aggregate_detail::DistinctBits& values) {
  std::vector<uint64_t> sorted;
  sorted.reserve(values.size());
  values.ForEach([&](uint64_t v) { sorted.push_back(v); });
  std::sort(sorted.begin(), sorted.end());
  Put(out, static_cast<uint32_t>(sorted.size()));
  for (uint64_t v : sorted) Put(out, v);
}
void PutDistinct(std::string* out, const aggregate_detail::DistinctBytes& values) {
  std::vector<std::string_view> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  Put(out, static_cast<uint32_t>(sorted.size()));
  for (std::string_view v : sorted) PutBytes(out, v);
}

// --- Parsing --------------------------------------------------------------

bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string Lowercase(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

// One argument of an aggregate call, trimmed, with its offset in the text.
struct ArgumentText {
  std::string_view text;
  size_t offset = 0;
};

ArgumentText Trimmed(std::string_view text, size_t offset) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
    ++offset;
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return {text, offset};
}

// Splits the text between the call's parentheses at top-level commas (not
// inside nested parentheses or quotes). No arguments gives an empty list.
std::vector<ArgumentText> SplitArguments(std::string_view inside, size_t offset) {
  std::vector<ArgumentText> args;
  if (Trimmed(inside, offset).text.empty()) return args;
  int depth = 0;
  char quote = 0;
  size_t start = 0;
  for (size_t i = 0; i < inside.size(); ++i) {
    char c = inside[i];
    if (quote) { if (c == quote) quote = 0; continue; }
    if (c == '\'' || c == '"' || c == '`') quote = c;
    else if (c == '(') ++depth;
    else if (c == ')') --depth;
    else if (c == ',' && depth == 0) {
      args.push_back(Trimmed(inside.substr(start, i - start), offset + start));
      start = i + 1;
    }
  }
  args.push_back(Trimmed(inside.substr(start), offset + start));
  return args;
}

// Removes a leading DISTINCT keyword; true when there was one.
bool StripDistinct(ArgumentText* arg) {
  constexpr std::string_view kWord = "distinct";
  if (arg->text.size() <= kWord.size() || Lowercase(arg->text.substr(0, kWord.size())) != kWord) return false;
  // Not a column such as distinct_users.
  if (!std::isspace(static_cast<unsigned char>(arg->text[kWord.size()]))) return false;
  *arg = Trimmed(arg->text.substr(kWord.size()), arg->offset + kWord.size());
  return true;
}

}  // namespace

bool ParseAggregate(std::string_view text, const Schema& input, AggregateSpec* out, expr::ExprError* error) {
  size_t i = 0;
  auto skip_ws = [&] { while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i; };
  skip_ws();
  size_t fn_start = i;
  while (i < text.size() && IsIdentChar(text[i])) ++i;
  std::string fn = Lowercase(text.substr(fn_start, i - fn_start));
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
  std::vector<ArgumentText> args = SplitArguments(text.substr(open + 1, close - open - 1), open + 1);
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
  if (fn == "count" && args.size() == 1 && args[0].text == "*") {
    spec.fn = AggregateFunction::kCountStar;
    spec.output_type = DataType::kInt64;
    spec.name = alias.empty() ? "count(1)" : alias;  // Spark's name for count(*)
    *out = std::move(spec);
    return true;
  }
  const size_t distinct_offset = args.empty() ? 0 : args[0].offset;
  const bool distinct = !args.empty() && StripDistinct(&args[0]);
  // The second argument each function accepts, if any, for error messages.
  std::string optional_second;
  if (fn == "count") spec.fn = distinct ? AggregateFunction::kCountDistinct : AggregateFunction::kCount;
  else if (fn == "count_distinct") spec.fn = AggregateFunction::kCountDistinct;
  else if (fn == "sum") spec.fn = AggregateFunction::kSum;
  else if (fn == "min") spec.fn = AggregateFunction::kMin;
  else if (fn == "max") spec.fn = AggregateFunction::kMax;
  else if (fn == "avg" || fn == "mean") spec.fn = AggregateFunction::kAvg;
  else if (fn == "approx_count_distinct") {
    spec.fn = AggregateFunction::kApproxCountDistinct;
    optional_second = "a relative standard deviation";
  } else if (fn == "first" || fn == "last") {
    spec.fn = fn == "first" ? AggregateFunction::kFirst : AggregateFunction::kLast;
    optional_second = "an ignoreNulls flag";
  } else {
    *error = {fn_start, "unknown aggregate '" + fn + "'; expected count, count_distinct, " +
                            "approx_count_distinct, sum, min, max, avg, first or last"};
    return false;
  }
  if (distinct && fn != "count") {
    *error = {distinct_offset, "DISTINCT is supported only as count(DISTINCT x)"};
    return false;
  }
  if (args.empty() || args[0].text.empty()) {
    *error = {args.empty() ? open : args[0].offset, fn + "() needs one argument"};
    return false;
  }
  const size_t max_args = optional_second.empty() ? 1 : 2;
  if (args.size() > max_args) {
    *error = {args[max_args].offset, optional_second.empty()
                                         ? fn + "() takes one argument"
                                         : fn + "() takes a column and optionally " + optional_second};
    return false;
  }
  const ArgumentText arg = args[0];
  expr::ExprError arg_error;
  spec.argument = expr::CompileExpression(arg.text, input, &arg_error);
  if (!spec.argument) {
    *error = {arg.offset + arg_error.offset, arg_error.message};
    return false;
  }
  if (args.size() == 2) {
    const ArgumentText second = args[1];
    if (spec.fn == AggregateFunction::kApproxCountDistinct) {
      double rsd = 0;
      auto [end, ec] = std::from_chars(second.text.data(), second.text.data() + second.text.size(), rsd);
      if (ec != std::errc() || end != second.text.data() + second.text.size()) {
        *error = {second.offset,
                  "approx_count_distinct() needs the relative standard deviation as a number such as 0.05"};
        return false;
      }
      // The precision Spark derives from rsd must address 2^4 to 2^18 registers.
      int precision = rsd > 0 ? HyperLogLog::PrecisionForRelativeSd(rsd) : HyperLogLog::kMaxPrecision + 1;
      if (precision < HyperLogLog::kMinPrecision || precision > HyperLogLog::kMaxPrecision) {
        *error = {second.offset,
                  "approx_count_distinct() relative standard deviation must be between 0.00216 and 0.39"};
        return false;
      }
      spec.hll_precision = precision;
    } else {
      std::string flag = Lowercase(second.text);
      if (flag != "true" && flag != "false") {
        *error = {second.offset, fn + "() takes ignoreNulls as true or false"};
        return false;
      }
      spec.ignore_nulls = flag == "true";
    }
  }
  DataType t = spec.argument->type();
  const std::string arg_name = spec.argument->name();
  std::string default_name = fn + "(" + arg_name + ")";
  switch (spec.fn) {
    case AggregateFunction::kCount: spec.output_type = DataType::kInt64; break;
    case AggregateFunction::kCountDistinct:
      spec.output_type = DataType::kInt64;
      default_name = "count(DISTINCT " + arg_name + ")";  // Spark's name for both spellings
      break;
    case AggregateFunction::kApproxCountDistinct: spec.output_type = DataType::kInt64; break;
    case AggregateFunction::kFirst:
    case AggregateFunction::kLast:
      spec.output_type = t;
      if (spec.ignore_nulls) default_name += " ignore nulls";  // keeps first(x) and first(x, true) apart
      break;
    case AggregateFunction::kSum:
      if (!IsNumeric(t)) { *error = {arg.offset, "sum() needs a number, but '" + std::string(arg.text) + "' is " + DataTypeName(t)}; return false; }
      spec.output_type = t;
      break;
    case AggregateFunction::kAvg:
      if (!IsNumeric(t)) { *error = {arg.offset, "avg() needs a number, but '" + std::string(arg.text) + "' is " + DataTypeName(t)}; return false; }
      spec.output_type = DataType::kFloat64;
      break;
    case AggregateFunction::kMin:
    case AggregateFunction::kMax:
      if (t == DataType::kBinary) { *error = {arg.offset, fn + "() cannot order BINARY values"}; return false; }
      spec.output_type = t;
      break;
    default: break;
  }
  spec.name = alias.empty() ? default_name : alias;
  *out = std::move(spec);
  return true;
}

BatchAggregate::BatchAggregate(std::vector<std::shared_ptr<expr::CompiledExpr>> keys,
                               std::vector<AggregateSpec> aggregates)
    : keys_(std::move(keys)), aggregates_(std::move(aggregates)) {
  std::vector<Field> fields;
  for (const auto& k : keys_) fields.push_back({k->name(), k->type(), true});
  for (const auto& a : aggregates_) fields.push_back({a.name, a.output_type, !IsCountLike(a.fn)});
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
    Accumulator& acc = state.accs[a];
    const AggregateSpec& spec = aggregates_[a];
    PrepareSlots(acc, spec, state.keys.size());
    if (spec.fn == AggregateFunction::kCountStar) {
      for (int64_t r = 0; r < n; ++r) ++acc.count[gid[static_cast<size_t>(r)]];
      continue;
    }
    const Column& c = *arg_cols[a];
    switch (spec.fn) {
      case AggregateFunction::kFirst: ConsumeFirst(acc, c, gid, spec.ignore_nulls); continue;
      case AggregateFunction::kLast: ConsumeLast(acc, c, gid, spec.ignore_nulls); continue;
      case AggregateFunction::kCountDistinct: ConsumeCountDistinct(acc, c, gid); continue;
      case AggregateFunction::kApproxCountDistinct: ConsumeApproxCountDistinct(acc, c, gid); continue;
      default: break;
    }
    const bool is_double = c.type() == DataType::kFloat64;
    const bool is_string = IsVariableWidth(c.type());
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
    MergeGroup(into, into.GroupFor(from.keys[fg], aggregates_.size()), from, fg, ArrivalOrder::kFromIsLater);
}

void BatchAggregate::MergeGroup(AggregateState& into, uint32_t g, const AggregateState& from, size_t fg,
                                ArrivalOrder order) const {
  for (size_t a = 0; a < aggregates_.size(); ++a) {
    const Accumulator& src = from.accs[a];
    Accumulator& dst = into.accs[a];
    const AggregateSpec& spec = aggregates_[a];
    PrepareSlots(dst, spec, dst.count.size());
    if (src.count[fg] == 0) continue;
    const bool into_was_empty = dst.count[g] == 0;
    dst.count[g] += src.count[fg];
    const bool is_string = HasBytesArgument(spec);
    const bool is_double = spec.argument && spec.argument->type() == DataType::kFloat64;
    switch (spec.fn) {
      case AggregateFunction::kSum:
      case AggregateFunction::kAvg:
        dst.f64[g] += src.f64[fg];
        dst.i64[g] += src.i64[fg];
        break;
      case AggregateFunction::kMin:
      case AggregateFunction::kMax: {
        bool want_less = spec.fn == AggregateFunction::kMin;
        bool first = into_was_empty;
        if (is_string) {
          if (first || (want_less ? src.str[fg] < dst.str[g] : src.str[fg] > dst.str[g])) dst.str[g] = src.str[fg];
        } else if (is_double) {
          if (first || (want_less ? src.f64[fg] < dst.f64[g] : src.f64[fg] > dst.f64[g])) dst.f64[g] = src.f64[fg];
        } else if (first || (want_less ? src.i64[fg] < dst.i64[g] : src.i64[fg] > dst.i64[g])) {
          dst.i64[g] = src.i64[fg];
        }
        break;
      }
      case AggregateFunction::kFirst:
        if (into_was_empty || order == ArrivalOrder::kFromIsEarlier) CopyKeptValue(dst, g, src, fg, is_string);
        break;
      case AggregateFunction::kLast:
        if (into_was_empty || order == ArrivalOrder::kFromIsLater) CopyKeptValue(dst, g, src, fg, is_string);
        break;
      case AggregateFunction::kCountDistinct:
        if (is_string) {
          auto& seen = dst.distinct_bytes[g];
          for (const std::string& v : src.distinct_bytes[fg]) seen.insert(v);
        } else {
          auto& seen = dst.distinct_bits[g];
          src.distinct_bits[fg].ForEach([&](uint64_t v) { seen.insert(v); });
        }
        break;
      case AggregateFunction::kApproxCountDistinct: dst.sketches[g].Merge(src.sketches[fg]); break;
      default: break;
    }
  }
}

// A version byte, then per aggregate: count, i64 and f64 (8 bytes each), then
// what the function needs beyond them: the string value (4-byte length and
// bytes) of min/max/first/last over strings, a null flag byte before it for
// first/last, the sorted distinct values (4-byte count, then 8 bytes or
// length-prefixed bytes each) for count_distinct, the sketch for
// approx_count_distinct.
void BatchAggregate::EncodeAccumulators(const AggregateState& state, uint32_t g, std::string* out) const {
  out->clear();
  out->push_back(static_cast<char>(kAccumulatorEncodingVersion));
  for (size_t a = 0; a < aggregates_.size(); ++a) {
    const Accumulator& acc = state.accs[a];
    const AggregateSpec& spec = aggregates_[a];
    Put(out, acc.count[g]);
    Put(out, acc.i64[g]);
    Put(out, acc.f64[g]);
    const bool bytes = HasBytesArgument(spec);
    // Slots beyond count/i64/f64 may be missing for a group that never saw a
    // value of this aggregate: encode them as empty.
    switch (spec.fn) {
      case AggregateFunction::kMin:
      case AggregateFunction::kMax:
        if (bytes) PutBytes(out, g < acc.str.size() ? std::string_view(acc.str[g]) : std::string_view());
        break;
      case AggregateFunction::kFirst:
      case AggregateFunction::kLast:
        out->push_back(g < acc.value_is_null.size() && acc.value_is_null[g] ? '\1' : '\0');
        if (bytes) PutBytes(out, g < acc.str.size() ? std::string_view(acc.str[g]) : std::string_view());
        break;
      case AggregateFunction::kCountDistinct:
        if (bytes)
          PutDistinct(out, g < acc.distinct_bytes.size() ? acc.distinct_bytes[g] : aggregate_detail::DistinctBytes());
        else
          PutDistinct(out, g < acc.distinct_bits.size() ? acc.distinct_bits[g] : aggregate_detail::DistinctBits());
        break;
      case AggregateFunction::kApproxCountDistinct:
        if (g < acc.sketches.size()) acc.sketches[g].Encode(out);
        else HyperLogLog(spec.hll_precision).Encode(out);
        break;
      default: break;
    }
  }
}

Status BatchAggregate::MergeEncoded(AggregateState& into, std::string_view key, std::string_view encoded) const {
  if (encoded.empty() || static_cast<uint8_t>(encoded.front()) != kAccumulatorEncodingVersion) {
    const std::string found = encoded.empty() ? "(none)" : std::to_string(static_cast<uint8_t>(encoded.front()));
    return Status::Corruption("aggregate state value has encoding version " + found + "; this build reads version " +
                              std::to_string(kAccumulatorEncodingVersion));
  }
  std::string_view in = encoded.substr(1);
  // Decoded into a per-thread scratch state: this runs once per stored key
  // in every batch, and a fresh state would allocate its vectors each time.
  thread_local AggregateState earlier;
  earlier.Clear();
  const uint32_t e = earlier.GroupFor(key, aggregates_.size());
  const auto truncated = [] { return Status::Corruption("aggregate state value is shorter than its aggregates need"); };
  for (size_t a = 0; a < aggregates_.size(); ++a) {
    Accumulator& acc = earlier.accs[a];
    const AggregateSpec& spec = aggregates_[a];
    PrepareSlots(acc, spec, 1);
    if (!Take(&in, &acc.count[e]) || !Take(&in, &acc.i64[e]) || !Take(&in, &acc.f64[e])) return truncated();
    const bool bytes = HasBytesArgument(spec);
    std::string_view value;
    switch (spec.fn) {
      case AggregateFunction::kMin:
      case AggregateFunction::kMax:
        if (bytes) {
          if (!TakeBytes(&in, &value)) return truncated();
          acc.str[e].assign(value);
        }
        break;
      case AggregateFunction::kFirst:
      case AggregateFunction::kLast:
        if (!Take(&in, &acc.value_is_null[e])) return truncated();
        if (bytes) {
          if (!TakeBytes(&in, &value)) return truncated();
          acc.str[e].assign(value);
        }
        break;
      case AggregateFunction::kCountDistinct: {
        uint32_t n;
        if (!Take(&in, &n)) return truncated();
        for (uint32_t k = 0; k < n; ++k) {
          if (bytes) {
            if (!TakeBytes(&in, &value)) return truncated();
            acc.distinct_bytes[e].emplace(value);
          } else {
            uint64_t bits;
            if (!Take(&in, &bits)) return truncated();
            acc.distinct_bits[e].insert(bits);
          }
        }
        break;
      }
      case AggregateFunction::kApproxCountDistinct:
        if (!acc.sketches[e].Decode(&in)) return Status::Corruption("aggregate state sketch is truncated or invalid");
        break;
      default: break;
    }
  }
  if (!in.empty()) return Status::Corruption("aggregate state value has trailing bytes");
  if (into.accs.size() != aggregates_.size()) into.accs.resize(aggregates_.size());
  MergeGroup(into, into.GroupFor(key, aggregates_.size()), earlier, e, ArrivalOrder::kFromIsEarlier);
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
        if (IsCountLike(aggregates_[a].fn)) b.column(static_cast<int>(a)).AppendInt64(0);
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
        const Accumulator& acc = state.accs[a];
        const AggregateSpec& spec = aggregates_[a];
        size_t gi = static_cast<size_t>(g);
        switch (spec.fn) {
          case AggregateFunction::kCountStar:
          case AggregateFunction::kCount: col.AppendInt64(acc.count[gi]); break;
          case AggregateFunction::kCountDistinct:
            if (acc.count[gi] == 0) col.AppendInt64(0);
            else if (HasBytesArgument(spec)) col.AppendInt64(static_cast<int64_t>(acc.distinct_bytes[gi].size()));
            else col.AppendInt64(static_cast<int64_t>(acc.distinct_bits[gi].size()));
            break;
          case AggregateFunction::kApproxCountDistinct:
            col.AppendInt64(acc.count[gi] == 0 ? 0 : acc.sketches[gi].Estimate());
            break;
          case AggregateFunction::kAvg:
            if (acc.count[gi] == 0) col.AppendNull();
            else col.AppendFloat64(acc.f64[gi] / static_cast<double>(acc.count[gi]));
            break;
          case AggregateFunction::kSum:
          case AggregateFunction::kMin:
          case AggregateFunction::kMax:
          case AggregateFunction::kFirst:
          case AggregateFunction::kLast:
            if (acc.count[gi] == 0 || (gi < acc.value_is_null.size() && acc.value_is_null[gi])) {
              col.AppendNull();
              break;
            }
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
