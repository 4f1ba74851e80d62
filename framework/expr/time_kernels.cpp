// to_timestamp(s, pattern) with Spark's datetime pattern letters yyyy, yy, MM,
// M, dd, d, HH, H, mm, m, ss, s and S..S (fraction of a second), plus literal
// text ('quoted' or any non-letter). The pattern is compiled at bind time into
// a list of fields, and each row is matched against it without allocating.
#include "expr/kernels.h"
#include "sluice/value_format.h"

namespace sluice::expr {
namespace {

struct PatternField {
  enum class Kind { kLiteral, kYear, kMonth, kDay, kHour, kMinute, kSecond, kFraction };
  Kind kind = Kind::kLiteral;
  int min_digits = 0;
  int max_digits = 0;
  std::string literal;
};

bool CompilePattern(const std::string& pattern, std::vector<PatternField>* fields, std::string* error) {
  for (size_t i = 0; i < pattern.size();) {
    char c = pattern[i];
    if (c == '\'') {
      PatternField lit;
      size_t j = i + 1;
      for (; j < pattern.size(); ++j) {
        if (pattern[j] == '\'') {
          if (j + 1 < pattern.size() && pattern[j + 1] == '\'') {
            lit.literal.push_back('\'');
            ++j;
            continue;
          }
          break;
        }
        lit.literal.push_back(pattern[j]);
      }
      if (j >= pattern.size()) {
        *error = "datetime pattern '" + pattern + "' has an unterminated quote";
        return false;
      }
      if (i + 1 == j) lit.literal.assign(1, '\'');  // '' is a quote character
      fields->push_back(std::move(lit));
      i = j + 1;
      continue;
    }
    if (!std::isalpha(static_cast<unsigned char>(c))) {
      PatternField lit;
      lit.literal = std::string(1, c);
      fields->push_back(std::move(lit));
      ++i;
      continue;
    }
    size_t run = 1;
    while (i + run < pattern.size() && pattern[i + run] == c) ++run;
    PatternField f;
    int count = static_cast<int>(run);
    // A single letter reads one or two digits; a doubled letter exactly two.
    f.min_digits = count == 1 ? 1 : count;
    f.max_digits = count == 1 ? 2 : count;
    switch (c) {
      case 'y':
        f.kind = PatternField::Kind::kYear;
        if (count == 1) f.max_digits = 4;
        else if (count != 2 && count != 4) f.min_digits = f.max_digits = count;
        break;
      case 'M': f.kind = PatternField::Kind::kMonth; break;
      case 'd': f.kind = PatternField::Kind::kDay; break;
      case 'H': f.kind = PatternField::Kind::kHour; break;
      case 'm': f.kind = PatternField::Kind::kMinute; break;
      case 's': f.kind = PatternField::Kind::kSecond; break;
      case 'S':
        f.kind = PatternField::Kind::kFraction;
        f.min_digits = f.max_digits = count;
        break;
      default:
        *error = std::string("unsupported datetime pattern letter '") + c + "' in '" + pattern +
                 "'; supported: yyyy yy MM M dd d HH H mm m ss s SSS";
        return false;
    }
    if (count > (c == 'y' || c == 'S' ? 9 : 2)) {
      *error = "too many pattern letters '" + std::string(run, c) + "' in '" + pattern + "'";
      return false;
    }
    fields->push_back(std::move(f));
    i += run;
  }
  return true;
}

bool IsLeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int64_t m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeapYear(y) ? 29 : kDays[m - 1];
}

bool ParseWithPattern(const std::vector<PatternField>& fields, std::string_view s, int64_t* micros) {
  int64_t year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0, fraction = 0;
  size_t at = 0;
  for (const auto& f : fields) {
    if (f.kind == PatternField::Kind::kLiteral) {
      if (s.substr(at, f.literal.size()) != f.literal) return false;
      at += f.literal.size();
      continue;
    }
    int64_t value = 0;
    int digits = 0;
    while (digits < f.max_digits && at < s.size() && s[at] >= '0' && s[at] <= '9') {
      value = value * 10 + (s[at++] - '0');
      ++digits;
    }
    if (digits < f.min_digits) return false;
    switch (f.kind) {
      case PatternField::Kind::kYear: year = f.max_digits == 2 ? 2000 + value : value; break;
      case PatternField::Kind::kMonth: month = value; break;
      case PatternField::Kind::kDay: day = value; break;
      case PatternField::Kind::kHour: hour = value; break;
      case PatternField::Kind::kMinute: minute = value; break;
      case PatternField::Kind::kSecond: second = value; break;
      case PatternField::Kind::kFraction:
        // Keep microseconds: scale the digits read to six places.
        for (int k = digits; k < 6; ++k) value *= 10;
        for (int k = 6; k < digits; ++k) value /= 10;
        fraction = value;
        break;
      case PatternField::Kind::kLiteral: break;
    }
  }
  if (at != s.size()) return false;
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59)
    return false;
  int64_t days = detail::DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  *micros = ((days * 86400 + hour * 3600 + minute * 60 + second) * 1000000) + fraction;
  return true;
}

class ToTimestampKernel final : public Kernel {
 public:
  ToTimestampKernel(KernelPtr text, std::vector<PatternField> fields)
      : Kernel(ExprType::Scalar(DataType::kTimestamp), {std::move(text)}), fields_(std::move(fields)) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    return MapToFixedOrNull<std::string_view, int64_t>(*in, DataType::kTimestamp, [this](std::string_view s, int64_t* out) {
      return ParseWithPattern(fields_, s, out);
    });
  }

 private:
  std::vector<PatternField> fields_;
};

}  // namespace

KernelPtr MakeToTimestampWithPattern(KernelPtr text, const std::string& pattern, std::string* error) {
  std::vector<PatternField> fields;
  if (!CompilePattern(pattern, &fields, error)) return nullptr;
  return std::make_shared<ToTimestampKernel>(std::move(text), std::move(fields));
}

}  // namespace sluice::expr
