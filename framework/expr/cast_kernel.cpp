// CAST between scalar types with Spark's non-ANSI rules: strings that do not
// parse become NULL, doubles convert to integers by truncation (saturating,
// NaN -> 0), and timestamps convert to and from numbers as seconds.
#include <charconv>
#include <cmath>
#include <limits>

#include "expr/kernels.h"
#include "sluice/value_format.h"

namespace sluice::expr {
namespace {

constexpr int64_t kMicrosPerSecond = 1000000;

std::string_view TrimControl(std::string_view s) {
  // Spark trims white space and control characters around numbers and booleans.
  while (!s.empty() && static_cast<unsigned char>(s.front()) <= ' ') s.remove_prefix(1);
  while (!s.empty() && static_cast<unsigned char>(s.back()) <= ' ') s.remove_suffix(1);
  return s;
}

// Java's (long) d: truncates, saturates at the limits, NaN -> 0.
int64_t DoubleToInt64(double d) {
  if (std::isnan(d)) return 0;
  if (d >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  if (d <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(d);
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

class CastKernel final : public Kernel {
 public:
  CastKernel(KernelPtr child, DataType to) : Kernel(ExprType::Scalar(to), {std::move(child)}) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    return Convert(*in, type().scalar);
  }

  static ColumnPtr Convert(const Column& in, DataType to) {
    const DataType from = in.type();
    switch (to) {
      case DataType::kString: return ToString(in);
      case DataType::kBinary: return Retype(in, DataType::kBinary);
      case DataType::kInt64:
        switch (from) {
          case DataType::kBool: return MapToFixed<uint8_t, int64_t>(in, to, [](uint8_t v) { return int64_t{v != 0}; });
          case DataType::kFloat64: return MapToFixed<double, int64_t>(in, to, DoubleToInt64);
          case DataType::kTimestamp:
            return MapToFixed<int64_t, int64_t>(in, to, [](int64_t v) { return FloorDiv(v, kMicrosPerSecond); });
          default:
            return MapToFixedOrNull<std::string_view, int64_t>(in, to, [](std::string_view s, int64_t* out) {
              return ParseInt64Text(s, out);
            });
        }
      case DataType::kFloat64:
        switch (from) {
          case DataType::kBool: return MapToFixed<uint8_t, double>(in, to, [](uint8_t v) { return v ? 1.0 : 0.0; });
          case DataType::kInt64: return MapToFixed<int64_t, double>(in, to, [](int64_t v) { return static_cast<double>(v); });
          case DataType::kTimestamp:
            return MapToFixed<int64_t, double>(in, to, [](int64_t v) { return static_cast<double>(v) / kMicrosPerSecond; });
          default:
            return MapToFixedOrNull<std::string_view, double>(in, to, [](std::string_view s, double* out) {
              return ParseDoubleText(s, out);
            });
        }
      case DataType::kBool:
        switch (from) {
          case DataType::kFloat64: return MapToFixed<double, uint8_t>(in, to, [](double v) { return uint8_t{v != 0}; });
          case DataType::kInt64:
          case DataType::kTimestamp: return MapToFixed<int64_t, uint8_t>(in, to, [](int64_t v) { return uint8_t{v != 0}; });
          default:
            return MapToFixedOrNull<std::string_view, uint8_t>(in, to, [](std::string_view s, uint8_t* out) {
              bool b;
              if (!ParseBoolText(s, &b)) return false;
              *out = b;
              return true;
            });
        }
      case DataType::kTimestamp:
        switch (from) {
          case DataType::kInt64:
            return MapToFixed<int64_t, int64_t>(in, to, [](int64_t v) {
              return static_cast<int64_t>(static_cast<uint64_t>(v) * kMicrosPerSecond);
            });
          case DataType::kFloat64:
            return MapToFixedOrNull<double, int64_t>(in, to, [](double v, int64_t* out) {
              if (!std::isfinite(v)) return false;
              *out = DoubleToInt64(v * kMicrosPerSecond);
              return true;
            });
          default:
            return MapToFixedOrNull<std::string_view, int64_t>(in, to, [](std::string_view s, int64_t* out) {
              auto ts = ParseTimestamp(s);
              if (!ts) return false;
              *out = *ts;
              return true;
            });
        }
    }
    return nullptr;
  }

  // The same bytes under another type (STRING <-> BINARY).
  static ColumnPtr Retype(const Column& in, DataType to) {
    auto out = std::make_shared<Column>(to, in.length());
    out->mutable_values() = in.values_buffer();
    out->mutable_data() = in.data_buffer();
    out->mutable_validity() = in.validity_buffer();
    out->set_null_count(in.null_count());
    return out;
  }

  static ColumnPtr ToString(const Column& in) {
    const int64_t n = in.length();
    switch (in.type()) {
      case DataType::kBinary:
        // Spark reads the bytes as UTF-8 text (AppendCellText would show base64).
        return Retype(in, DataType::kString);
      case DataType::kBool:
        return MapToString<uint8_t>(in, DataType::kString, static_cast<size_t>(n) * 5,
                                    [](uint8_t v, compute::StringColumnWriter& w) { w.Append(v ? "true" : "false"); });
      case DataType::kInt64:
        return MapToString<int64_t>(in, DataType::kString, static_cast<size_t>(n) * 8,
                                    [](int64_t v, compute::StringColumnWriter& w) {
                                      char* at = w.Extend(24);
                                      w.Commit(static_cast<size_t>(std::to_chars(at, at + 24, v).ptr - at));
                                    });
      case DataType::kFloat64:
        return MapToString<double>(in, DataType::kString, static_cast<size_t>(n) * 8,
                                   [](double v, compute::StringColumnWriter& w) { w.Append(FormatDouble(v)); });
      case DataType::kTimestamp:
        return MapToString<int64_t>(in, DataType::kString, static_cast<size_t>(n) * 19,
                                    [](int64_t v, compute::StringColumnWriter& w) {
                                      char* at = w.Extend(40);
                                      w.Commit(FormatTimestampInto(at, v));
                                    });
      case DataType::kString: break;
    }
    return Retype(in, DataType::kString);
  }
};

}  // namespace

bool ParseInt64Text(std::string_view text, int64_t* out) {
  std::string_view s = TrimControl(text);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  size_t digits_end = s.find('.');
  std::string_view integral = s.substr(0, digits_end);
  if (digits_end != std::string_view::npos) {
    // "12.7" casts to 12 as in Spark: the fraction must be digits and is dropped.
    for (char c : s.substr(digits_end + 1))
      if (c < '0' || c > '9') return false;
    if (integral.empty() || integral == "-") return false;
  }
  if (integral.empty()) return false;
  auto r = std::from_chars(integral.data(), integral.data() + integral.size(), *out);
  return r.ec == std::errc() && r.ptr == integral.data() + integral.size();
}

bool ParseDoubleText(std::string_view text, double* out) {
  std::string_view s = TrimControl(text);
  bool negative = false;
  std::string_view body = s;
  if (!body.empty() && (body.front() == '+' || body.front() == '-')) {
    negative = body.front() == '-';
    body.remove_prefix(1);
  }
  if (Schema::EqualsIgnoreCase(body, "nan")) {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (Schema::EqualsIgnoreCase(body, "infinity") || Schema::EqualsIgnoreCase(body, "inf")) {
    *out = negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    return true;
  }
  if (body.empty() || body.front() == '+' || body.front() == '-') return false;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool ParseBoolText(std::string_view text, bool* out) {
  std::string_view s = TrimControl(text);
  for (std::string_view t : {"t", "true", "y", "yes", "1"})
    if (Schema::EqualsIgnoreCase(s, t)) return *out = true, true;
  for (std::string_view f : {"f", "false", "n", "no", "0"})
    if (Schema::EqualsIgnoreCase(s, f)) return *out = false, true;
  return false;
}

size_t FormatTimestampInto(char* out, int64_t micros) {
  int64_t secs = FloorDiv(micros, kMicrosPerSecond);
  int64_t frac = micros - secs * kMicrosPerSecond;
  int64_t days = FloorDiv(secs, 86400);
  int64_t second_of_day = secs - days * 86400;
  int64_t y;
  unsigned m, d;
  detail::CivilFromDays(days, &y, &m, &d);
  int n = std::snprintf(out, 40, "%04lld-%02u-%02u %02lld:%02lld:%02lld", static_cast<long long>(y), m, d,
                        static_cast<long long>(second_of_day / 3600), static_cast<long long>(second_of_day / 60 % 60),
                        static_cast<long long>(second_of_day % 60));
  if (frac) {
    // ".5", ".000123": the fraction without trailing zeros, as FormatTimestamp.
    char digits[7];
    for (int k = 5; k >= 0; --k, frac /= 10) digits[k] = static_cast<char>('0' + frac % 10);
    int len = 6;
    while (digits[len - 1] == '0') --len;
    out[n++] = '.';
    for (int k = 0; k < len; ++k) out[n++] = digits[k];
  }
  return static_cast<size_t>(n);
}

bool CanCast(DataType from, DataType to) {
  if (from == to || to == DataType::kString) return true;
  if (to == DataType::kBinary) return from == DataType::kString;
  if (from == DataType::kBinary) return false;
  if (to == DataType::kTimestamp) return from != DataType::kBool;
  return true;
}

KernelPtr MakeCast(KernelPtr child, DataType to) {
  if (child->type().is(to)) return child;
  return std::make_shared<CastKernel>(std::move(child), to);
}

}  // namespace sluice::expr
