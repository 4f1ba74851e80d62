#include "expr/parser.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

namespace sluice::expr {
namespace {

struct Token {
  enum class Kind { kEnd, kIdentifier, kQuotedIdentifier, kInteger, kDecimal, kString, kSymbol };
  Kind kind = Kind::kEnd;
  size_t offset = 0;
  size_t end = 0;
  std::string text;   // as written (symbols, identifiers, numbers)
  std::string value;  // decoded: string literal contents, back-quoted name
};

// Words that end an expression or have grammar meaning; they are never read as
// a column name or a bare alias (back-quote them to use them as names).
bool IsReservedWord(std::string_view word) {
  static constexpr std::array<std::string_view, 28> kReserved = {
      "AND", "OR",  "NOT",  "IS",   "NULL",  "TRUE",  "FALSE", "CASE",   "WHEN",  "THEN",
      "ELSE", "END", "IN",  "BETWEEN", "LIKE", "RLIKE", "AS", "CAST", "FROM", "WHERE",
      "SELECT", "GROUP", "ORDER", "BY", "HAVING", "LIMIT", "JOIN", "DISTINCT"};
  for (auto r : kReserved)
    if (Schema::EqualsIgnoreCase(r, word)) return true;
  return false;
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : text_(text) {}

  std::vector<Token> Tokenize() {
    std::vector<Token> tokens;
    while (true) {
      SkipSpace();
      Token t;
      t.offset = pos_;
      if (pos_ >= text_.size()) {
        t.kind = Token::Kind::kEnd;
        t.end = pos_;
        tokens.push_back(std::move(t));
        return tokens;
      }
      char c = text_[pos_];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) ++pos_;
        t.kind = Token::Kind::kIdentifier;
      } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                 (c == '.' && pos_ + 1 < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_ + 1])))) {
        LexNumber(&t);
      } else if (c == '\'' || c == '"') {
        LexString(&t);
      } else if (c == '`') {
        LexQuotedIdentifier(&t);
      } else {
        LexSymbol(&t);
      }
      t.end = pos_;
      if (t.text.empty()) t.text = std::string(text_.substr(t.offset, pos_ - t.offset));
      tokens.push_back(std::move(t));
    }
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size()) {
      if (std::isspace(static_cast<unsigned char>(text_[pos_]))) {
        ++pos_;
      } else if (text_.substr(pos_, 2) == "--") {  // SQL line comment
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  void LexNumber(Token* t) {
    bool is_decimal = false;
    auto digits = [&] { while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_; };
    digits();
    if (pos_ < text_.size() && text_[pos_] == '.') {
      is_decimal = true;
      ++pos_;
      digits();
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      size_t save = pos_++;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
        digits();
        is_decimal = true;
      } else {
        pos_ = save;
      }
    }
    t->text = std::string(text_.substr(t->offset, pos_ - t->offset));
    // Spark's type suffixes: 10L is a BIGINT, 1.5D / 2D a DOUBLE.
    if (pos_ < text_.size() && (text_[pos_] == 'L' || text_[pos_] == 'l') && !is_decimal) {
      ++pos_;
    } else if (pos_ < text_.size() && (text_[pos_] == 'D' || text_[pos_] == 'd')) {
      is_decimal = true;
      ++pos_;
    }
    if (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
      size_t end = pos_;
      while (end < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[end])) || text_[end] == '_')) ++end;
      throw ExprFailure{t->offset, "malformed number '" + std::string(text_.substr(t->offset, end - t->offset)) + "'"};
    }
    t->kind = is_decimal ? Token::Kind::kDecimal : Token::Kind::kInteger;
  }

  // '...' or "..." with backslash escapes as Spark reads them, plus '' for a quote.
  void LexString(Token* t) {
    char quote = text_[pos_++];
    std::string value;
    while (true) {
      if (pos_ >= text_.size()) throw ExprFailure{t->offset, "unterminated string literal"};
      char c = text_[pos_++];
      if (c == quote) {
        if (pos_ < text_.size() && text_[pos_] == quote) {
          value.push_back(quote);
          ++pos_;
          continue;
        }
        break;
      }
      if (c != '\\') {
        value.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) throw ExprFailure{t->offset, "unterminated string literal"};
      char e = text_[pos_++];
      switch (e) {
        case 'n': value.push_back('\n'); break;
        case 't': value.push_back('\t'); break;
        case 'r': value.push_back('\r'); break;
        case 'b': value.push_back('\b'); break;
        case '0': value.push_back('\0'); break;
        case 'Z': value.push_back('\x1A'); break;
        // Kept escaped so LIKE still sees a literal % or _.
        case '%': value += "\\%"; break;
        case '_': value += "\\_"; break;
        case 'u': {
          unsigned code = 0;
          if (pos_ + 4 > text_.size() ||
              std::from_chars(text_.data() + pos_, text_.data() + pos_ + 4, code, 16).ptr != text_.data() + pos_ + 4)
            throw ExprFailure{pos_ - 2, "expected four hex digits after \\u"};
          pos_ += 4;
          AppendUtf8(value, code);
          break;
        }
        default: value.push_back(e);  // \\ \' \" and any other escaped character stand for themselves
      }
    }
    t->kind = Token::Kind::kString;
    t->value = std::move(value);
  }

  static void AppendUtf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xE0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  void LexQuotedIdentifier(Token* t) {
    ++pos_;
    std::string value;
    while (true) {
      if (pos_ >= text_.size()) throw ExprFailure{t->offset, "unterminated back-quoted name"};
      char c = text_[pos_++];
      if (c == '`') {
        if (pos_ < text_.size() && text_[pos_] == '`') {  // `` is a literal back quote
          value.push_back('`');
          ++pos_;
          continue;
        }
        break;
      }
      value.push_back(c);
    }
    t->kind = Token::Kind::kQuotedIdentifier;
    t->value = std::move(value);
  }

  void LexSymbol(Token* t) {
    static constexpr std::array<std::string_view, 8> kTwoChar = {"<=", ">=", "<>", "!=", "==", "||", "<=>", "&&"};
    if (text_.substr(pos_, 3) == "<=>") {
      pos_ += 3;
    } else {
      bool matched = false;
      for (auto op : kTwoChar) {
        if (op.size() == 2 && text_.substr(pos_, 2) == op) {
          pos_ += 2;
          matched = true;
          break;
        }
      }
      if (!matched) {
        char c = text_[pos_];
        static constexpr std::string_view kSingle = "+-*/%=<>(),.[]!";
        if (kSingle.find(c) == std::string_view::npos)
          throw ExprFailure{pos_, std::string("unexpected character '") + c + "'"};
        ++pos_;
      }
    }
    t->kind = Token::Kind::kSymbol;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text), tokens_(Lexer(text).Tokenize()) {}

  AstPtr ParseWhole() {
    AstPtr e = ParseExpr();
    ExpectEnd();
    return e;
  }

  SelectItem ParseItem() {
    SelectItem item;
    if (Peek().kind == Token::Kind::kSymbol && Peek().text == "*" && tokens_[pos_ + 1].kind == Token::Kind::kEnd) {
      item.is_star = true;
      return item;
    }
    item.expr = ParseExpr();
    item.expr_text = std::string(text_.substr(item.expr->begin, item.expr->end - item.expr->begin));
    if (IsKeyword(Peek(), "AS")) {
      Next();
      const Token& alias = Peek();
      if (alias.kind == Token::Kind::kQuotedIdentifier) {
        item.alias = alias.value;
      } else if (alias.kind == Token::Kind::kIdentifier) {
        item.alias = alias.text;
      } else {
        Fail("an alias name");
      }
      item.alias_offset = alias.offset;
      Next();
    } else if (Peek().kind == Token::Kind::kQuotedIdentifier ||
               (Peek().kind == Token::Kind::kIdentifier && !IsReservedWord(Peek().text))) {
      item.alias = Peek().kind == Token::Kind::kQuotedIdentifier ? Peek().value : Peek().text;
      item.alias_offset = Peek().offset;
      Next();
    }
    ExpectEnd();
    return item;
  }

 private:
  const Token& Peek(size_t ahead = 0) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  const Token& Next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  size_t PreviousEnd() const { return pos_ == 0 ? 0 : tokens_[pos_ - 1].end; }

  static bool IsKeyword(const Token& t, std::string_view word) {
    return t.kind == Token::Kind::kIdentifier && Schema::EqualsIgnoreCase(t.text, word);
  }
  static bool IsSymbol(const Token& t, std::string_view s) { return t.kind == Token::Kind::kSymbol && t.text == s; }

  static std::string Describe(const Token& t) {
    if (t.kind == Token::Kind::kEnd) return "end of input";
    return "'" + t.text + "'";
  }
  [[noreturn]] void Fail(const std::string& expected) const {
    throw ExprFailure{Peek().offset, "expected " + expected + " but found " + Describe(Peek())};
  }
  void ExpectSymbol(std::string_view s) {
    if (!IsSymbol(Peek(), s)) {
      std::string quoted(1, '\'');
      quoted.append(s).push_back('\'');
      Fail(quoted);
    }
    Next();
  }
  void ExpectKeyword(std::string_view word) {
    if (!IsKeyword(Peek(), word)) Fail(std::string(word));
    Next();
  }
  void ExpectEnd() {
    if (Peek().kind != Token::Kind::kEnd) Fail("end of expression");
  }

  AstPtr Make(Ast::Kind kind, size_t offset, size_t begin) {
    auto a = std::make_unique<Ast>();
    a->kind = kind;
    a->offset = offset;
    a->begin = begin;
    return a;
  }
  AstPtr Finish(AstPtr a) {
    a->end = PreviousEnd();
    return a;
  }
  AstPtr MakeBinary(Ast::Kind kind, std::string op, size_t offset, AstPtr lhs, AstPtr rhs) {
    auto a = Make(kind, offset, lhs->begin);
    a->name = std::move(op);
    a->args.push_back(std::move(lhs));
    a->args.push_back(std::move(rhs));
    return Finish(std::move(a));
  }

  AstPtr ParseExpr() { return ParseOr(); }

  AstPtr ParseOr() {
    AstPtr lhs = ParseAnd();
    while (IsKeyword(Peek(), "OR")) {
      size_t at = Next().offset;
      lhs = MakeBinary(Ast::Kind::kOr, "OR", at, std::move(lhs), ParseAnd());
    }
    return lhs;
  }

  AstPtr ParseAnd() {
    AstPtr lhs = ParseNot();
    while (IsKeyword(Peek(), "AND") || IsSymbol(Peek(), "&&")) {
      size_t at = Next().offset;
      lhs = MakeBinary(Ast::Kind::kAnd, "AND", at, std::move(lhs), ParseNot());
    }
    return lhs;
  }

  AstPtr ParseNot() {
    if (IsKeyword(Peek(), "NOT") || IsSymbol(Peek(), "!")) {
      size_t at = Next().offset;
      auto a = Make(Ast::Kind::kNot, at, at);
      a->args.push_back(ParseNot());
      return Finish(std::move(a));
    }
    return ParsePredicate();
  }

  static bool IsComparison(const Token& t) {
    if (t.kind != Token::Kind::kSymbol) return false;
    for (std::string_view op : {"=", "==", "!=", "<>", "<", "<=", ">", ">=", "<=>"})
      if (t.text == op) return true;
    return false;
  }

  AstPtr ParsePredicate() {
    AstPtr lhs = ParseAdditive();
    while (true) {
      const Token& t = Peek();
      if (IsComparison(t)) {
        std::string op = t.text;
        size_t at = Next().offset;
        lhs = MakeBinary(Ast::Kind::kBinary, op, at, std::move(lhs), ParseAdditive());
        continue;
      }
      if (IsKeyword(t, "IS")) {
        size_t at = Next().offset;
        bool negated = false;
        if (IsKeyword(Peek(), "NOT")) {
          Next();
          negated = true;
        }
        ExpectKeyword("NULL");
        auto a = Make(Ast::Kind::kIsNull, at, lhs->begin);
        a->negated = negated;
        a->args.push_back(std::move(lhs));
        lhs = Finish(std::move(a));
        continue;
      }
      bool negated = false;
      size_t at = t.offset;
      if (IsKeyword(t, "NOT") &&
          (IsKeyword(Peek(1), "IN") || IsKeyword(Peek(1), "BETWEEN") || IsKeyword(Peek(1), "LIKE") ||
           IsKeyword(Peek(1), "RLIKE"))) {
        Next();
        negated = true;
      }
      const Token& op = Peek();
      if (IsKeyword(op, "IN")) {
        Next();
        auto a = Make(Ast::Kind::kIn, at, lhs->begin);
        a->negated = negated;
        a->args.push_back(std::move(lhs));
        ExpectSymbol("(");
        do {
          a->args.push_back(ParseExpr());
        } while (IsSymbol(Peek(), ",") && (Next(), true));
        ExpectSymbol(")");
        lhs = Finish(std::move(a));
      } else if (IsKeyword(op, "BETWEEN")) {
        Next();
        auto a = Make(Ast::Kind::kBetween, at, lhs->begin);
        a->negated = negated;
        a->args.push_back(std::move(lhs));
        a->args.push_back(ParseAdditive());
        ExpectKeyword("AND");
        a->args.push_back(ParseAdditive());
        lhs = Finish(std::move(a));
      } else if (IsKeyword(op, "LIKE") || IsKeyword(op, "RLIKE")) {
        std::string name = IsKeyword(op, "LIKE") ? "LIKE" : "RLIKE";
        Next();
        auto a = Make(Ast::Kind::kLike, at, lhs->begin);
        a->name = name;
        a->negated = negated;
        a->args.push_back(std::move(lhs));
        a->args.push_back(ParseAdditive());
        lhs = Finish(std::move(a));
      } else {
        return lhs;
      }
    }
  }

  AstPtr ParseAdditive() {
    AstPtr lhs = ParseMultiplicative();
    while (IsSymbol(Peek(), "+") || IsSymbol(Peek(), "-") || IsSymbol(Peek(), "||")) {
      std::string op = Peek().text;
      size_t at = Next().offset;
      lhs = MakeBinary(Ast::Kind::kBinary, op, at, std::move(lhs), ParseMultiplicative());
    }
    return lhs;
  }

  AstPtr ParseMultiplicative() {
    AstPtr lhs = ParseUnary();
    while (IsSymbol(Peek(), "*") || IsSymbol(Peek(), "/") || IsSymbol(Peek(), "%")) {
      std::string op = Peek().text;
      size_t at = Next().offset;
      lhs = MakeBinary(Ast::Kind::kBinary, op, at, std::move(lhs), ParseUnary());
    }
    return lhs;
  }

  AstPtr ParseUnary() {
    if (IsSymbol(Peek(), "-")) {
      size_t at = Next().offset;
      // A negative number literal, so -9223372036854775808 stays a BIGINT.
      if (Peek().kind == Token::Kind::kInteger || Peek().kind == Token::Kind::kDecimal) {
        AstPtr lit = ParseNumber(/*negative=*/true, at);
        return ParsePostfix(std::move(lit));
      }
      auto a = Make(Ast::Kind::kNegate, at, at);
      a->args.push_back(ParseUnary());
      return Finish(std::move(a));
    }
    if (IsSymbol(Peek(), "+")) {
      Next();
      return ParseUnary();
    }
    return ParsePostfix(ParsePrimary());
  }

  AstPtr ParsePostfix(AstPtr base) {
    while (true) {
      if (IsSymbol(Peek(), "[")) {
        size_t at = Next().offset;
        auto a = Make(Ast::Kind::kIndex, at, base->begin);
        a->args.push_back(std::move(base));
        a->args.push_back(ParseExpr());
        ExpectSymbol("]");
        base = Finish(std::move(a));
      } else if (IsSymbol(Peek(), ".")) {
        Next();
        const Token& field = Peek();
        if (field.kind != Token::Kind::kIdentifier && field.kind != Token::Kind::kQuotedIdentifier)
          Fail("a field name after '.'");
        auto a = Make(Ast::Kind::kField, field.offset, base->begin);
        a->name = field.kind == Token::Kind::kQuotedIdentifier ? field.value : field.text;
        Next();
        a->args.push_back(std::move(base));
        base = Finish(std::move(a));
      } else {
        return base;
      }
    }
  }

  AstPtr ParseNumber(bool negative, size_t begin) {
    const Token& t = Next();
    auto a = Make(Ast::Kind::kLiteral, begin, begin);
    std::string digits = (negative ? "-" : "") + t.text;
    if (t.kind == Token::Kind::kInteger) {
      int64_t v = 0;
      auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (r.ec == std::errc() && r.ptr == digits.data() + digits.size()) {
        a->literal = Scalar::Int64(v);
        return Finish(std::move(a));
      }
      // Too large for BIGINT: Spark makes it a DECIMAL; the nearest type here is DOUBLE.
    }
    double d = 0;
    std::from_chars(digits.data(), digits.data() + digits.size(), d);
    a->literal = Scalar::Float64(d);
    return Finish(std::move(a));
  }

  AstPtr ParsePrimary() {
    const Token& t = Peek();
    switch (t.kind) {
      case Token::Kind::kInteger:
      case Token::Kind::kDecimal: return ParseNumber(false, t.offset);
      case Token::Kind::kString: {
        auto a = Make(Ast::Kind::kLiteral, t.offset, t.offset);
        a->literal = Scalar::String(t.value);
        Next();
        return Finish(std::move(a));
      }
      case Token::Kind::kQuotedIdentifier: {
        auto a = Make(Ast::Kind::kColumn, t.offset, t.offset);
        a->name = t.value;
        Next();
        return Finish(std::move(a));
      }
      case Token::Kind::kSymbol:
        if (t.text == "(") {
          size_t begin = Next().offset;
          AstPtr inner = ParseExpr();
          ExpectSymbol(")");
          inner->begin = begin;  // the name of "(a + b)" keeps its parentheses
          inner->end = PreviousEnd();
          return inner;
        }
        Fail("an expression");
      case Token::Kind::kEnd: Fail("an expression");
      case Token::Kind::kIdentifier: break;
    }
    if (IsKeyword(t, "NULL") || IsKeyword(t, "TRUE") || IsKeyword(t, "FALSE")) {
      auto a = Make(Ast::Kind::kLiteral, t.offset, t.offset);
      if (IsKeyword(t, "NULL")) {
        a->is_null_literal = true;
        a->literal = Scalar::Null(DataType::kString);
      } else {
        a->literal = Scalar::Bool(IsKeyword(t, "TRUE"));
      }
      Next();
      return Finish(std::move(a));
    }
    if (IsKeyword(t, "CASE")) return ParseCase();
    if (IsKeyword(t, "CAST") && IsSymbol(Peek(1), "(")) return ParseCast();
    if (IsKeyword(t, "TIMESTAMP") && Peek(1).kind == Token::Kind::kString) {
      size_t at = Next().offset;
      const Token& s = Next();
      auto a = Make(Ast::Kind::kCast, at, at);
      a->name = "TIMESTAMP";
      auto lit = Make(Ast::Kind::kLiteral, s.offset, s.offset);
      lit->literal = Scalar::String(s.value);
      lit->end = s.end;
      a->args.push_back(std::move(lit));
      a->typed_literal = true;
      return Finish(std::move(a));
    }
    if (IsSymbol(Peek(1), "(")) return ParseCall();
    if (IsReservedWord(t.text)) Fail("an expression");
    auto a = Make(Ast::Kind::kColumn, t.offset, t.offset);
    a->name = t.text;
    Next();
    return Finish(std::move(a));
  }

  AstPtr ParseCall() {
    const Token& name = Next();
    auto a = Make(Ast::Kind::kFunction, name.offset, name.offset);
    a->name = name.text;
    Next();  // (
    if (IsSymbol(Peek(), "*") && IsSymbol(Peek(1), ")")) {
      Next();
      a->star_argument = true;
    } else if (!IsSymbol(Peek(), ")")) {
      do {
        a->args.push_back(ParseExpr());
      } while (IsSymbol(Peek(), ",") && (Next(), true));
    }
    ExpectSymbol(")");
    return Finish(std::move(a));
  }

  AstPtr ParseCast() {
    size_t at = Next().offset;
    Next();  // (
    auto a = Make(Ast::Kind::kCast, at, at);
    a->args.push_back(ParseExpr());
    ExpectKeyword("AS");
    const Token& type = Peek();
    if (type.kind != Token::Kind::kIdentifier) Fail("a type name");
    a->name = type.text;
    a->offset = type.offset;  // type errors point at the type name
    Next();
    ExpectSymbol(")");
    return Finish(std::move(a));
  }

  AstPtr ParseCase() {
    size_t at = Next().offset;
    auto a = Make(Ast::Kind::kCase, at, at);
    if (!IsKeyword(Peek(), "WHEN")) {
      a->case_has_operand = true;
      a->args.push_back(ParseExpr());
    }
    if (!IsKeyword(Peek(), "WHEN")) Fail("WHEN");
    while (IsKeyword(Peek(), "WHEN")) {
      Next();
      a->args.push_back(ParseExpr());
      ExpectKeyword("THEN");
      a->args.push_back(ParseExpr());
    }
    if (IsKeyword(Peek(), "ELSE")) {
      Next();
      a->case_has_else = true;
      a->args.push_back(ParseExpr());
    }
    ExpectKeyword("END");
    return Finish(std::move(a));
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
};

}  // namespace

AstPtr ParseExpression(std::string_view text) { return Parser(text).ParseWhole(); }

SelectItem ParseSelectItem(std::string_view text) { return Parser(text).ParseItem(); }

}  // namespace sluice::expr
