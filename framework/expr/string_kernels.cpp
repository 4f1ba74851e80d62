// String functions: lower/upper, length, substring, concat, trim. Positions
// and lengths count characters (UTF-8 code points) as Spark does; pure ASCII
// values, the common case, take byte-indexed fast paths.
#include <algorithm>
#include <climits>
#include <cstring>

#include "expr/kernels.h"

namespace sluice::expr {
namespace {

bool IsContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

int64_t CountChars(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += !IsContinuationByte(c);
  return n;
}

bool IsAscii(std::string_view s) {
  unsigned char any = 0;
  for (char c : s) any |= static_cast<unsigned char>(c);
  return any < 0x80;
}

// Byte offset of character `chars` in `s` (s.size() when past the end).
size_t ByteOffsetOfChar(std::string_view s, int64_t chars) {
  size_t i = 0;
  for (; i < s.size(); ++i) {
    if (!IsContinuationByte(s[i])) {
      if (chars == 0) return i;
      --chars;
    }
  }
  return s.size();
}

// Case mapping that keeps every character's byte length, so a whole column maps
// in place of a copy of its data buffer: ASCII, Latin-1, Greek and Cyrillic.
uint32_t MapCodePoint(uint32_t cp, bool to_upper) {
  if (to_upper) {
    if (cp >= 'a' && cp <= 'z') return cp - 32;
    if ((cp >= 0xE0 && cp <= 0xFE && cp != 0xF7) || (cp >= 0x3B1 && cp <= 0x3C9 && cp != 0x3C2) ||
        (cp >= 0x430 && cp <= 0x44F))
      return cp - 32;
    if (cp >= 0x450 && cp <= 0x45F) return cp - 80;
  } else {
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) ||
        (cp >= 0x410 && cp <= 0x42F))
      return cp + 32;
    if (cp >= 0x400 && cp <= 0x40F) return cp + 80;
  }
  return cp;
}

// Flips the case of ASCII letters in eight bytes at once; `word` must be ASCII.
uint64_t MapAsciiWord(uint64_t word, bool to_upper) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  const uint64_t first = to_upper ? 'a' : 'A', last = to_upper ? 'z' : 'Z';
  // High bit of each byte: set when the byte is >= first, and when it is > last.
  uint64_t at_least_first = word + (0x80 - first) * kOnes;
  uint64_t above_last = word + (0x80 - last - 1) * kOnes;
  uint64_t in_range = at_least_first & ~above_last & (0x80 * kOnes);
  return word ^ (in_range >> 2);  // 0x80 >> 2 == 0x20, the case bit
}

void MapCaseInPlace(char* data, size_t size, bool to_upper) {
  size_t i = 0;
  while (i < size) {
    // Runs of ASCII, the common case, go a word at a time.
    for (; i + 8 <= size; i += 8) {
      uint64_t word;
      std::memcpy(&word, data + i, 8);
      if (word & 0x8080808080808080ULL) break;
      word = MapAsciiWord(word, to_upper);
      std::memcpy(data + i, &word, 8);
    }
    if (i >= size) break;
    size_t stop = std::min(size, i + 8);
    for (; i < stop; ++i) {
      unsigned char c = static_cast<unsigned char>(data[i]);
      if (c < 0x80) {
        if (to_upper ? (c >= 'a' && c <= 'z') : (c >= 'A' && c <= 'Z')) data[i] = static_cast<char>(c ^ 0x20);
      } else if ((c & 0xE0) == 0xC0 && i + 1 < size && IsContinuationByte(data[i + 1])) {
        uint32_t cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(data[i + 1]) & 0x3Fu);
        uint32_t mapped = MapCodePoint(cp, to_upper);
        data[i] = static_cast<char>(0xC0 | (mapped >> 6));
        data[i + 1] = static_cast<char>(0x80 | (mapped & 0x3F));
        ++i;
      }
    }
  }
}

class CaseMapKernel final : public Kernel {
 public:
  CaseMapKernel(KernelPtr operand, bool to_upper) : Kernel(ExprType::Scalar(DataType::kString), {std::move(operand)}), to_upper_(to_upper) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    auto out = std::make_shared<Column>(DataType::kString, in->length());
    out->mutable_values() = in->values_buffer();
    out->mutable_validity() = in->validity_buffer();
    out->set_null_count(in->null_count());
    out->mutable_data() = in->data_buffer();
    MapCaseInPlace(out->mutable_data().data(), out->mutable_data().size(), to_upper_);
    return ColumnPtr(out);
  }

 private:
  bool to_upper_;
};

class LengthKernel final : public Kernel {
 public:
  explicit LengthKernel(KernelPtr operand) : Kernel(ExprType::Scalar(DataType::kInt64), {std::move(operand)}) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    if (in->type() == DataType::kBinary)
      return MapToFixed<std::string_view, int64_t>(*in, DataType::kInt64, [](std::string_view s) { return int64_t(s.size()); });
    return MapToFixed<std::string_view, int64_t>(*in, DataType::kInt64, CountChars);
  }
};

// Spark's UTF8String.substringSQL(pos, len).
std::string_view SubstringSql(std::string_view s, int64_t pos, int64_t len) {
  // Spark's positions and lengths are 32-bit; clamping keeps the arithmetic exact.
  pos = std::clamp<int64_t>(pos, INT32_MIN, INT32_MAX);
  len = std::clamp<int64_t>(len, INT32_MIN, INT32_MAX);
  const bool ascii = IsAscii(s);
  const int64_t chars = ascii ? static_cast<int64_t>(s.size()) : CountChars(s);
  int64_t start = pos > 0 ? pos - 1 : (pos < 0 ? chars + pos : 0);
  int64_t end = start + len;
  start = std::max<int64_t>(start, 0);
  end = std::min(end, chars);
  if (start >= end) return {};
  if (ascii) return s.substr(static_cast<size_t>(start), static_cast<size_t>(end - start));
  size_t begin_byte = ByteOffsetOfChar(s, start);
  size_t end_byte = begin_byte + ByteOffsetOfChar(s.substr(begin_byte), end - start);
  return s.substr(begin_byte, end_byte - begin_byte);
}

class SubstringKernel final : public Kernel {
 public:
  SubstringKernel(std::vector<KernelPtr> args) : Kernel(ExprType::Scalar(DataType::kString), std::move(args)) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    const int64_t n = batch.num_rows();
    SLUICE_ASSIGN_OR_RETURN(Operand text, EvaluateOperand(*children()[0], batch, ctx));
    SLUICE_ASSIGN_OR_RETURN(Operand pos, EvaluateOperand(*children()[1], batch, ctx));
    Operand len{nullptr, Scalar::Int64(INT64_MAX)};
    if (children().size() > 2) {
      SLUICE_ASSIGN_OR_RETURN(len, EvaluateOperand(*children()[2], batch, ctx));
    }
    if (text.is_null_constant() || pos.is_null_constant() || len.is_null_constant())
      return ColumnPtr(compute::MakeAllNullColumn(DataType::kString, n));
    std::vector<uint8_t> validity = CombinedValidity({&text, &pos, &len}, n);
    size_t bytes = text.column ? text.column->data_buffer().size() : text.constant.bytes.size() * static_cast<size_t>(n);
    compute::StringColumnWriter writer(DataType::kString, n, bytes);
    VisitOperand<std::string_view>(text, [&](auto rs) {
      return VisitOperand<int64_t>(pos, [&](auto rp) {
        return VisitOperand<int64_t>(len, [&](auto rl) {
          for (int64_t i = 0; i < n; ++i) {
            if (!validity.empty() && !compute::GetBit(validity.data(), i)) writer.AppendNull();
            else writer.Append(SubstringSql(rs[i], rp[i], rl[i]));
          }
          return 0;
        });
      });
    });
    return ColumnPtr(writer.Finish());
  }
};

class ConcatKernel final : public Kernel {
 public:
  explicit ConcatKernel(std::vector<KernelPtr> parts) : Kernel(ExprType::Scalar(DataType::kString), std::move(parts)) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    const int64_t n = batch.num_rows();
    std::vector<Operand> parts;
    std::vector<const Operand*> part_ptrs;
    size_t bytes = 0;
    for (const auto& child : children()) {
      SLUICE_ASSIGN_OR_RETURN(Operand op, EvaluateOperand(*child, batch, ctx));
      if (op.is_null_constant()) return ColumnPtr(compute::MakeAllNullColumn(DataType::kString, n));
      bytes += op.column ? op.column->data_buffer().size() : op.constant.bytes.size() * static_cast<size_t>(n);
      parts.push_back(std::move(op));
    }
    for (const auto& p : parts) part_ptrs.push_back(&p);
    std::vector<uint8_t> validity = CombinedValidity(part_ptrs, n);
    compute::StringColumnWriter writer(DataType::kString, n, bytes);
    for (int64_t i = 0; i < n; ++i) {
      if (!validity.empty() && !compute::GetBit(validity.data(), i)) {
        writer.AppendNull();
        continue;
      }
      for (const auto& p : parts) writer.AppendPiece(p.column ? p.column->string_at(i) : std::string_view(p.constant.bytes));
      writer.Close();
    }
    return ColumnPtr(writer.Finish());
  }
};

class TrimKernel final : public Kernel {
 public:
  TrimKernel(KernelPtr operand, TrimSide side) : Kernel(ExprType::Scalar(DataType::kString), {std::move(operand)}), side_(side) {}
  Result<ColumnPtr> Evaluate(const RecordBatch& batch, const EvalContext& ctx) const override {
    SLUICE_ASSIGN_OR_RETURN(ColumnPtr in, children()[0]->Evaluate(batch, ctx));
    const bool left = side_ != TrimSide::kRight, right = side_ != TrimSide::kLeft;
    // Spark's trim removes the space character only, not tabs or newlines.
    return MapToString<std::string_view>(*in, DataType::kString, in->data_buffer().size(),
                                         [&](std::string_view s, compute::StringColumnWriter& w) {
                                           if (left) while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
                                           if (right) while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
                                           w.Append(s);
                                         });
  }

 private:
  TrimSide side_;
};

}  // namespace

KernelPtr MakeCaseMap(KernelPtr operand, bool to_upper) { return std::make_shared<CaseMapKernel>(std::move(operand), to_upper); }
KernelPtr MakeLength(KernelPtr operand) { return std::make_shared<LengthKernel>(std::move(operand)); }
KernelPtr MakeSubstring(KernelPtr text, KernelPtr position, KernelPtr length) {
  std::vector<KernelPtr> args{std::move(text), std::move(position)};
  if (length) args.push_back(std::move(length));
  return std::make_shared<SubstringKernel>(std::move(args));
}
KernelPtr MakeConcat(std::vector<KernelPtr> parts) { return std::make_shared<ConcatKernel>(std::move(parts)); }
KernelPtr MakeTrim(KernelPtr operand, TrimSide side) { return std::make_shared<TrimKernel>(std::move(operand), side); }

}  // namespace sluice::expr
