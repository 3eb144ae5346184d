#include "dsl/lexer.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "dsl/parser.h"

namespace nnc {
namespace {

constexpr std::pair<std::string_view, TokKind> kKeywords[] = {
    {"def", TokKind::KwDef},       {"model", TokKind::KwModel},   {"train", TokKind::KwTrain},
    {"input", TokKind::KwInput},   {"label", TokKind::KwLabel},   {"param", TokKind::KwParam},
    {"buffer", TokKind::KwBuffer},
    {"output", TokKind::KwOutput}, {"for", TokKind::KwFor},       {"in", TokKind::KwIn},
    {"return", TokKind::KwReturn}, {"f32", TokKind::KwF32},       {"i32", TokKind::KwI32},
};

}  // namespace

bool isKeywordText(std::string_view text) {
  for (const auto& [spelling, _] : kKeywords)
    if (spelling == text) return true;
  return false;
}

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isIdentChar(char c) { return isIdentStart(c) || isDigit(c); }

// Length (1-4) of the well-formed UTF-8 sequence at s[i], or 0. Overlong
// forms, surrogates and code points past U+10FFFF are rejected.
size_t decodeUtf8(std::string_view s, size_t i, char32_t* cp) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n;
  char32_t v, min;
  if (c < 0x80) n = 1, v = c, min = 0;
  else if (c >= 0xC2 && c <= 0xDF) n = 2, v = c & 0x1F, min = 0x80;
  else if ((c & 0xF0) == 0xE0) n = 3, v = c & 0x0F, min = 0x800;
  else if (c >= 0xF0 && c <= 0xF4) n = 4, v = c & 0x07, min = 0x10000;
  else return 0;
  if (s.size() - i < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b & 0x3F);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return n;
}

// Decimal order of magnitude of a float literal. from_chars reports overflow
// and underflow alike as out of range; only overflow (to inf) is an error.
int64_t magnitude(std::string_view s) {
  size_t e = s.find_first_of("eE");
  std::string_view mant = s.substr(0, e);
  int64_t exp = 0;
  if (e != std::string_view::npos) {
    std::string_view es = s.substr(e + 1);
    bool neg = es[0] == '-';
    if (es[0] == '+' || es[0] == '-') es.remove_prefix(1);
    if (std::from_chars(es.data(), es.data() + es.size(), exp).ec != std::errc()) exp = int64_t{1} << 40;
    if (neg) exp = -exp;
  }
  size_t dot = std::min(mant.find('.'), mant.size());
  size_t first = mant.find_first_not_of("0.");
  if (first == std::string_view::npos) return 0;
  int64_t m = first < dot ? int64_t(dot - first) - 1 : -int64_t(first - dot);
  return m + exp;
}

}  // namespace

std::string clipped(std::string_view s) {
  constexpr size_t kMax = 40;
  if (s.size() <= kMax) return std::string(s);
  size_t n = kMax;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // keep UTF-8 whole
  return std::string(s.substr(0, n)) + "...";
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case TokKind::Eof: return "end of file";
    case TokKind::Error: return "an invalid token";
    case TokKind::Ident: return fmt::format("identifier '{}'", clipped(t.text));
    case TokKind::Int:
    case TokKind::Float: return fmt::format("number {}", clipped(t.text));
    case TokKind::String: {
      std::string shown;
      for (char c : clipped(t.text)) {
        if (c == '\n') shown += "\\n";
        else if (c == '\t') shown += "\\t";
        else if (c == '"' || c == '\\') shown += {'\\', c};
        else shown += c;
      }
      return fmt::format("string \"{}\"", shown);
    }
    default: break;
  }
  if (isKeyword(t.kind)) return fmt::format("keyword '{}'", t.text);
  return fmt::format("'{}'", t.text);
}

// A UTF-8 byte-order mark (base/diagnostics.cpp's lineText leaves it out too).
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

Lexer::Lexer(const SourceManager& sm, uint32_t file) : src_(sm.text(file)), file_(file) {
  if (src_.size() > kMaxSourceBytes)
    fail(nnc::error(locAt(0), "source is too large ({} bytes; the limit is {} bytes)", src_.size(),
                    kMaxSourceBytes));
  // A UTF-8 byte-order mark, as editors on Windows write, opens the file but
  // is not part of its first line (nor a column of it); anywhere else it is
  // refused as any other non-ASCII character is.
  if (src_.starts_with(kUtf8Bom)) pos_ = lineStart_ = kUtf8Bom.size();
}

SourceLoc Lexer::locAt(size_t pos) const {
  return SourceLoc{file_, line_, static_cast<uint32_t>(pos - lineStart_ + 1)};
}

Token Lexer::fail(Diagnostic d) {
  failed_ = true;
  error_ = std::move(d);
  return Token{TokKind::Error, {}, error_.loc};
}

bool Lexer::checkUtf8(size_t pos, size_t* len) {
  char32_t cp;
  *len = decodeUtf8(src_, pos, &cp);
  if (*len == 0) fail(nnc::error(locAt(pos), "invalid UTF-8"));
  return *len != 0;
}

bool Lexer::skipTrivia() {
  while (pos_ < src_.size()) {
    char c = src_[pos_];
    if (c == '\n') {
      lineStart_ = ++pos_;
      ++line_;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      ++pos_;
    } else if (c == '#') {
      while (pos_ < src_.size() && src_[pos_] != '\n') {
        size_t len = 1;
        if (src_[pos_] == '\0') {
          fail(nnc::error(locAt(pos_), "NUL byte in source"));
          return false;
        }
        if (static_cast<unsigned char>(src_[pos_]) >= 0x80 && !checkUtf8(pos_, &len)) return false;
        pos_ += len;
      }
    } else {
      break;
    }
  }
  return true;
}

Token Lexer::next() {
  if (failed_ || !skipTrivia()) return Token{TokKind::Error, {}, error_.loc};
  if (pos_ >= src_.size()) return Token{TokKind::Eof, {}, locAt(pos_)};
  char c = src_[pos_];
  if (isDigit(c)) return number();
  if (c == '"') return string();
  size_t start = pos_;
  Token t;
  t.loc = locAt(start);
  if (isIdentStart(c)) {
    while (pos_ < src_.size() && isIdentChar(src_[pos_])) ++pos_;
    t.kind = TokKind::Ident;
    for (auto [word, kind] : kKeywords)
      if (src_.substr(start, pos_ - start) == word) t.kind = kind;
  } else {
    char d = pos_ + 1 < src_.size() ? src_[pos_ + 1] : '\0';
    ++pos_;
    switch (c) {
      case '(': t.kind = TokKind::LParen; break;
      case ')': t.kind = TokKind::RParen; break;
      case '[': t.kind = TokKind::LBracket; break;
      case ']': t.kind = TokKind::RBracket; break;
      case '{': t.kind = TokKind::LBrace; break;
      case '}': t.kind = TokKind::RBrace; break;
      case ',': t.kind = TokKind::Comma; break;
      case ':': t.kind = TokKind::Colon; break;
      case ';': t.kind = TokKind::Semicolon; break;
      case '=': t.kind = TokKind::Assign; break;
      case '+': t.kind = TokKind::Plus; break;
      case '-': t.kind = TokKind::Minus; break;
      case '*':
        t.kind = d == '*' ? TokKind::StarStar : TokKind::Star;
        pos_ += d == '*';
        break;
      case '%': t.kind = TokKind::Percent; break;
      case '@': t.kind = TokKind::At; break;
      case '/':
        t.kind = d == '/' ? TokKind::SlashSlash : TokKind::Slash;
        pos_ += d == '/';
        break;
      case '.':
        if (d != '.') return --pos_, badChar();
        t.kind = TokKind::DotDot;
        ++pos_;
        break;
      default: return --pos_, badChar();
    }
  }
  t.text = std::string(src_.substr(start, pos_ - start));
  t.length = static_cast<uint32_t>(pos_ - start);
  return t;
}

Token Lexer::number() {
  size_t start = pos_;
  auto digitAt = [&](size_t i) { return i < src_.size() && isDigit(src_[i]); };
  while (digitAt(pos_)) ++pos_;
  bool isFloat = false;
  // A '.' needs a digit after it, so that 0..6 is a range and not "0." "..".
  if (pos_ < src_.size() && src_[pos_] == '.') {
    if (!digitAt(pos_ + 1) && (pos_ + 1 >= src_.size() || src_[pos_ + 1] != '.'))
      return fail(nnc::error(locAt(pos_), "expected a digit after '.' in a number (write {}.0)",
                             clipped(src_.substr(start, pos_ - start))));
    if (digitAt(pos_ + 1)) {
      isFloat = true;
      for (++pos_; digitAt(pos_);) ++pos_;
    }
  }
  if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
    size_t j = pos_ + 1;
    if (j < src_.size() && (src_[j] == '+' || src_[j] == '-')) ++j;
    if (digitAt(j)) {
      isFloat = true;
      for (pos_ = j; digitAt(pos_);) ++pos_;
    }
  }
  Token t;
  t.loc = locAt(start);
  if (pos_ < src_.size() && isIdentChar(src_[pos_])) {
    while (pos_ < src_.size() && isIdentChar(src_[pos_])) ++pos_;
    return fail(nnc::error(t.loc, "invalid number '{}'", clipped(src_.substr(start, pos_ - start))));
  }
  std::string_view s = src_.substr(start, pos_ - start);
  t.text = std::string(s);
  t.length = static_cast<uint32_t>(s.size());
  const char* end = s.data() + s.size();
  if (!isFloat) {
    t.kind = TokKind::Int;
    if (std::from_chars(s.data(), end, t.intValue).ec != std::errc())
      return fail(nnc::error(t.loc, "integer literal too large"));
    return t;
  }
  t.kind = TokKind::Float;
  if (std::from_chars(s.data(), end, t.floatValue).ec != std::errc()) {
    if (magnitude(s) > 0) return fail(nnc::error(t.loc, "floating-point literal too large"));
    t.floatValue = 0;
  }
  return t;
}

Token Lexer::string() {
  size_t start = pos_++;
  Token t;
  t.kind = TokKind::String;
  t.loc = locAt(start);
  for (;;) {
    char c = pos_ < src_.size() ? src_[pos_] : '\n';
    if (c == '"') break;
    if (c == '\n' || c == '\r') return fail(nnc::error(t.loc, "unterminated string"));
    if (c == '\0') return fail(nnc::error(locAt(pos_), "NUL byte in source"));
    if (c == '\\') {
      char d = pos_ + 1 < src_.size() ? src_[pos_ + 1] : '\n';
      switch (d) {
        case '"':
        case '\\': t.text += d; break;
        case 'n': t.text += '\n'; break;
        case 't': t.text += '\t'; break;
        case '\n':
        case '\r': return fail(nnc::error(t.loc, "unterminated string"));
        default:
          return fail(nnc::error(locAt(pos_), R"(unknown escape sequence{} in string (use \" \\ \n or \t))",
                                 d > ' ' && d < 0x7f ? fmt::format(" '\\{}'", d) : ""));
      }
      pos_ += 2;
      continue;
    }
    size_t len = 1;
    if (static_cast<unsigned char>(c) >= 0x80 && !checkUtf8(pos_, &len))
      return Token{TokKind::Error, {}, error_.loc};
    t.text += src_.substr(pos_, len);
    pos_ += len;
  }
  ++pos_;
  t.length = static_cast<uint32_t>(pos_ - start);
  return t;
}

Token Lexer::badChar() {
  SourceLoc loc = locAt(pos_);
  auto c = static_cast<unsigned char>(src_[pos_]);
  if (c == 0) return fail(nnc::error(loc, "NUL byte in source"));
  if (c >= 0x80) {
    char32_t cp;
    if (decodeUtf8(src_, pos_, &cp) == 0) return fail(nnc::error(loc, "invalid UTF-8"));
    return fail(nnc::error(loc, "unexpected character U+{:04X} (only ASCII is allowed outside strings and comments)",
                           static_cast<uint32_t>(cp)));
  }
  if (c < 0x20 || c == 0x7f) return fail(nnc::error(loc, "unexpected character U+{:04X}", c));
  return fail(nnc::error(loc, "unexpected character '{}'", static_cast<char>(c)));
}

Expected<std::vector<Token>> lex(const SourceManager& sm, uint32_t file) {
  Lexer lexer(sm, file);
  std::vector<Token> out;
  for (;;) {
    Token t = lexer.next();
    if (t.kind == TokKind::Error) return lexer.error();
    bool end = t.kind == TokKind::Eof;
    out.push_back(std::move(t));
    if (end) return out;
  }
}

}  // namespace nnc
