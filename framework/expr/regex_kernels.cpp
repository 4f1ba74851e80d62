// Kernels built on RE2: split(), regexp_extract(), LIKE and RLIKE. Patterns
// are bind-time constants compiled once; RE2 matching is thread-safe, so one
// compiled pattern serves every worker.
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>

#include "expr/kernels.h"

namespace sluice::expr {
namespace {

std::unique_ptr<RE2> Compile(const std::string& pattern, bool dot_matches_newline, std::string* error) {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_dot_nl(dot_matches_newline);
  auto re = std::make_unique<RE2>(pattern, options);
  if (!re->ok()) {
    *error = "invalid regular expression '" + pattern + "': " + re->error();
    return nullptr;
  }
  return re;
}

// A pattern that matches one byte of a set, or with a trailing '+' a run of
// them: ",", "\\|", " +", "\\s+", "[,;]", "[0-9]+". split() scans for these
// byte by byte, as Java's String.split does for one literal character, instead
// of running the regex engine once per match.
struct ByteSet {
  std::array<bool, 256> members{};
  bool repeated = false;
};

bool AddEscapedClass(char letter, ByteSet* set) {
  auto add_range = [&](char lo, char hi) {
    for (int c = lo; c <= hi; ++c) set->members[static_cast<unsigned char>(c)] = true;
  };
  switch (letter) {
    case 's':  // Java's \s: space, \t, \n, \x0B, \f, \r
      for (char c : std::string_view(" \t\n\x0B\f\r", 6)) set->members[static_cast<unsigned char>(c)] = true;
      return true;
    case 'd': add_range('0', '9'); return true;
    case 'w':
      add_range('a', 'z');
      add_range('A', 'Z');
      add_range('0', '9');
      set->members['_'] = true;
      return true;
    default: return false;
  }
}

// Adds the escape at p[i] ('\\' then one character); false if it is not a plain one.
bool AddEscape(const std::string& p, size_t i, ByteSet* set) {
  if (i + 1 >= p.size()) return false;
  unsigned char e = static_cast<unsigned char>(p[i + 1]);
  if (std::isalnum(e)) return AddEscapedClass(static_cast<char>(e), set);
  if (e >= 0x80) return false;
  set->members[e] = true;
  return true;
}

bool ParseByteSet(const std::string& p, ByteSet* set) {
  static constexpr std::string_view kMeta = ".$|()[{^?*+\\";
  size_t i = 0;
  if (p.empty()) return false;
  if (p[0] == '\\') {
    if (!AddEscape(p, 0, set)) return false;
    i = 2;
  } else if (p[0] == '[') {
    i = 1;
    if (i < p.size() && p[i] == '^') return false;  // negated classes go to the regex engine
    bool any = false;
    while (i < p.size() && p[i] != ']') {
      unsigned char c = static_cast<unsigned char>(p[i]);
      if (c == '\\') {
        if (!AddEscape(p, i, set)) return false;
        i += 2;
      } else if (c == '[' || c >= 0x80) {
        return false;
      } else if (i + 2 < p.size() && p[i + 1] == '-' && p[i + 2] != ']') {
        unsigned char hi = static_cast<unsigned char>(p[i + 2]);
        if (hi >= 0x80 || hi < c) return false;
        for (unsigned v = c; v <= hi; ++v) set->members[v] = true;
        i += 3;
      } else {
        set->members[c] = true;
        ++i;
      }
      any = true;
    }
    if (i >= p.size() || !any) return false;
    ++i;
  } else {
    unsigned char c = static_cast<unsigned char>(p[0]);
    if (kMeta.find(static_cast<char>(c)) != std::string_view::npos || c >= 0x80) return false;
    set->members[c] = true;
    i = 1;
  }
  if (i < p.size() && p[i] == '+') {
    set->repeated = true;
    ++i;
  }
  return i == p.size();
}

size_t NextCharStart(std::string_view s, size_t i) {
  ++i;
  while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  return i;
}

class SplitKernel final : public Kernel {
 public:
  // No regex and no byte set: split into characters (the empty pattern).
  SplitKernel(KernelPtr text, std::unique_ptr<RE2> regex, std::optional<ByteSet> bytes, int64_t limit)
      : Kernel(ExprType::Array(DataType::kString), {std::move(text)}),
        regex_(std::move(regex)),
        bytes_(bytes),
        limit_(limit > 0 ? limit : -1) {
    if (bytes_ && !bytes_->repeated && std::count(bytes_->members.begin(), bytes_->members.end(), true) == 1)
      single_byte_ = static_cast<char>(std::find(bytes_->members.begin(), bytes_->members.end(), true) - bytes_->members.begin());
  }

  Result<ArrayColumnPtr> EvaluateArray(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    const int64_t n = in->length();
    auto out = std::make_shared<ArrayColumn>();
    out->length = n;
    out->offsets.reserve(static_cast<size_t>(n) + 1);
    out->offsets.push_back(0);
    out->validity = in->validity_buffer();
    compute::StringColumnWriter elements(DataType::kString, n * 4, in->data_buffer().size());
    for (int64_t i = 0; i < n; ++i) {
      if (in->is_valid(i)) {
        if (regex_) SplitRegex(in->string_at(i), elements);
        else if (bytes_) SplitBytes(in->string_at(i), elements);
        else SplitCharacters(in->string_at(i), elements);
      }
      out->offsets.push_back(static_cast<int32_t>(elements.length()));
    }
    out->elements = elements.Finish();
    return ArrayColumnPtr(out);
  }

 private:
  // Java's String.split(regex, limit) with Spark's limit <= 0 meaning "no limit,
  // keep trailing empty strings".
  void SplitBytes(std::string_view s, compute::StringColumnWriter& out) const {
    const std::array<bool, 256>& member = bytes_->members;
    const size_t n = s.size();
    size_t index = 0;  // start of the current piece
    size_t i = 0;
    for (int64_t pieces = 0; limit_ < 0 || pieces < limit_ - 1; ++pieces) {
      if (single_byte_) {
        const void* hit = i < n ? std::memchr(s.data() + i, *single_byte_, n - i) : nullptr;
        i = hit ? static_cast<size_t>(static_cast<const char*>(hit) - s.data()) : n;
      } else {
        while (i < n && !member[static_cast<unsigned char>(s[i])]) ++i;
      }
      if (i >= n) break;
      size_t end = i + 1;
      if (bytes_->repeated)
        while (end < n && member[static_cast<unsigned char>(s[end])]) ++end;
      out.Append(s.substr(index, i - index));
      index = i = end;
    }
    out.Append(s.substr(index));  // without a match: the whole string, as Java
  }

  // Spark's empty-pattern split: one element per character, no trailing "".
  void SplitCharacters(std::string_view s, compute::StringColumnWriter& out) const {
    size_t index = 0;
    int64_t pieces = 0;
    while (index < s.size()) {
      size_t next = NextCharStart(s, index);
      if ((limit_ > 0 && pieces == limit_ - 1) || next == s.size()) break;
      out.Append(s.substr(index, next - index));
      ++pieces;
      index = next;
    }
    out.Append(s.substr(index));
  }

  void SplitRegex(std::string_view s, compute::StringColumnWriter& out) const {
    size_t index = 0;
    int64_t pieces = 0;
    size_t search_from = 0;
    bool found_any = false;
    re2::StringPiece input(s.data(), s.size());
    re2::StringPiece match;
    while (search_from <= s.size() && (limit_ < 0 || pieces < limit_ - 1)) {
      if (!regex_->Match(input, search_from, s.size(), RE2::UNANCHORED, &match, 1)) break;
      size_t start = static_cast<size_t>(match.data() - s.data());
      size_t end = start + match.size();
      // An empty match at the very start yields no leading empty string (Java 8+).
      if (!(end == 0 && start == 0)) {
        out.Append(s.substr(index, start - index));
        ++pieces;
        index = end;
        found_any = true;
      }
      search_from = end == start ? NextCharStart(s, end) : end;
    }
    if (!found_any) {
      out.Append(s);
      return;
    }
    out.Append(s.substr(index));
  }

  std::unique_ptr<RE2> regex_;    // null when splitting on bytes_ or into characters
  std::optional<ByteSet> bytes_;
  std::optional<char> single_byte_;  // the one member of a non-repeated set: found with memchr
  int64_t limit_;
};

class RegexpExtractKernel final : public Kernel {
 public:
  RegexpExtractKernel(KernelPtr text, std::unique_ptr<RE2> regex, int group)
      : Kernel(ExprType::Scalar(DataType::kString), {std::move(text)}), regex_(std::move(regex)), group_(group) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    const int groups = group_ + 1;
    return MapToString<std::string_view>(*in, DataType::kString, in->data_buffer().size() / 2,
                                         [&](std::string_view s, compute::StringColumnWriter& w) {
                                           re2::StringPiece found[kMaxGroups];
                                           // No match, or a group that took no part in it, gives '' as in Spark.
                                           if (regex_->Match(re2::StringPiece(s.data(), s.size()), 0, s.size(),
                                                             RE2::UNANCHORED, found, groups) &&
                                               found[group_].data() != nullptr)
                                             w.Append(std::string_view(found[group_].data(), found[group_].size()));
                                           else
                                             w.Append({});
                                         });
  }

  static constexpr int kMaxGroups = 64;

 private:
  std::unique_ptr<RE2> regex_;
  int group_;
};

// LIKE with a constant pattern. Patterns that are a literal with % only at the
// ends (the usual 'abc%', '%abc', '%abc%') avoid the regex engine.
class LikeKernel final : public Kernel {
 public:
  enum class Shape { kExact, kPrefix, kSuffix, kContains, kRegex };
  LikeKernel(KernelPtr text, Shape shape, std::string literal, std::unique_ptr<RE2> regex, bool partial)
      : Kernel(ExprType::Scalar(DataType::kBool), {std::move(text)}),
        shape_(shape),
        literal_(std::move(literal)),
        regex_(std::move(regex)),
        partial_(partial) {}

  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    const std::string_view lit = literal_;
    auto run = [&](auto fn) { return MapToFixed<std::string_view, uint8_t>(*in, DataType::kBool, fn); };
    switch (shape_) {
      case Shape::kExact: return run([lit](std::string_view s) -> uint8_t { return s == lit; });
      case Shape::kPrefix: return run([lit](std::string_view s) -> uint8_t { return s.starts_with(lit); });
      case Shape::kSuffix: return run([lit](std::string_view s) -> uint8_t { return s.ends_with(lit); });
      case Shape::kContains: return run([lit](std::string_view s) -> uint8_t { return s.find(lit) != std::string_view::npos; });
      case Shape::kRegex: break;
    }
    const RE2& re = *regex_;
    if (partial_)
      return run([&re](std::string_view s) -> uint8_t { return RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), re); });
    return run([&re](std::string_view s) -> uint8_t { return RE2::FullMatch(re2::StringPiece(s.data(), s.size()), re); });
  }

 private:
  Shape shape_;
  std::string literal_;
  std::unique_ptr<RE2> regex_;
  bool partial_;
};

}  // namespace

KernelPtr MakeSplit(KernelPtr text, const std::string& pattern, int64_t limit, std::string* error) {
  if (pattern.empty()) return std::make_shared<SplitKernel>(std::move(text), nullptr, std::nullopt, limit);
  ByteSet bytes;
  if (ParseByteSet(pattern, &bytes)) return std::make_shared<SplitKernel>(std::move(text), nullptr, bytes, limit);
  auto re = Compile(pattern, false, error);
  if (!re) return nullptr;
  return std::make_shared<SplitKernel>(std::move(text), std::move(re), std::nullopt, limit);
}

KernelPtr MakeRegexpExtract(KernelPtr text, const std::string& pattern, int64_t group, std::string* error) {
  auto re = Compile(pattern, false, error);
  if (!re) return nullptr;
  if (group < 0 || group > re->NumberOfCapturingGroups() || group >= RegexpExtractKernel::kMaxGroups) {
    *error = "regexp_extract group index " + std::to_string(group) + " is out of range: the pattern has " +
             std::to_string(re->NumberOfCapturingGroups()) + " group(s)";
    return nullptr;
  }
  return std::make_shared<RegexpExtractKernel>(std::move(text), std::move(re), static_cast<int>(group));
}

KernelPtr MakeLike(KernelPtr text, const std::string& pattern, std::string* error) {
  // Split the pattern into literal text and wildcards; '\' escapes the next character.
  std::string regex = "";
  std::string literal;
  bool leading_percent = false, trailing_percent = false, inner_wildcard = false;
  size_t literal_chars_seen = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\') {
      if (i + 1 == pattern.size()) {
        *error = "LIKE pattern '" + pattern + "' ends with the escape character '\\'";
        return nullptr;
      }
      char e = pattern[++i];
      literal.push_back(e);
      regex += RE2::QuoteMeta(std::string(1, e));
      ++literal_chars_seen;
      if (trailing_percent) inner_wildcard = true;
    } else if (c == '%') {
      regex += ".*";
      if (literal_chars_seen == 0) leading_percent = true;
      else trailing_percent = true;
    } else if (c == '_') {
      regex += ".";
      inner_wildcard = true;
    } else {
      literal.push_back(c);
      regex += RE2::QuoteMeta(std::string(1, c));
      ++literal_chars_seen;
      if (trailing_percent) inner_wildcard = true;
    }
  }
  using Shape = LikeKernel::Shape;
  if (!inner_wildcard) {
    Shape shape = leading_percent ? (trailing_percent ? Shape::kContains : Shape::kSuffix)
                                  : (trailing_percent ? Shape::kPrefix : Shape::kExact);
    if (literal.empty() && leading_percent) shape = Shape::kContains;  // '%' and '%%' match everything
    return std::make_shared<LikeKernel>(std::move(text), shape, std::move(literal), nullptr, false);
  }
  auto re = Compile(regex, true, error);
  if (!re) return nullptr;
  return std::make_shared<LikeKernel>(std::move(text), Shape::kRegex, "", std::move(re), false);
}

KernelPtr MakeRLike(KernelPtr text, const std::string& pattern, std::string* error) {
  auto re = Compile(pattern, false, error);
  if (!re) return nullptr;
  return std::make_shared<LikeKernel>(std::move(text), LikeKernel::Shape::kRegex, "", std::move(re), true);
}

}  // namespace sluice::expr
