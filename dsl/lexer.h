// Tokens of .nn source. The lexer is pull-based so that the parser reports
// whichever error comes first in the file, lexical or syntactic.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"

namespace nnc {

enum class TokKind : uint8_t {
  Eof, Error, Ident, Int, Float, String,
  // Keywords (reserved: never identifiers).
  KwDef, KwModel, KwTrain, KwInput, KwLabel, KwParam, KwBuffer, KwOutput, KwFor, KwIn, KwReturn,
  KwF32, KwI32,
  // Punctuation.
  LParen, RParen, LBracket, RBracket, LBrace, RBrace, Comma, Colon, Semicolon, Assign,
  Plus, Minus, Star, StarStar, Slash, SlashSlash, Percent, At, DotDot,
};

inline bool isKeyword(TokKind k) { return k >= TokKind::KwDef && k <= TokKind::KwI32; }
// Whether `text` is a keyword's spelling (for tools that write .nn source).
bool isKeywordText(std::string_view text);

struct Token {
  TokKind kind = TokKind::Eof;
  // Identifier name, String contents (escapes decoded), or the source spelling.
  std::string text;
  SourceLoc loc;
  int64_t intValue = 0;
  double floatValue = 0;
  uint32_t length = 0;  // source bytes; tokens never span lines
};

// For messages: "end of file", "'{'", "identifier 'foo'", "number 3", ...
std::string describe(const Token& t);
// Caps text quoted in a message, so a megabyte-long name cannot flood it.
std::string clipped(std::string_view s);

class Lexer {
 public:
  Lexer(const SourceManager& sm, uint32_t file);
  // The next token; after the end, Eof again; after an error, Error again,
  // with the diagnostic in error().
  Token next();
  const Diagnostic& error() const { return error_; }

 private:
  Token fail(Diagnostic d);
  SourceLoc locAt(size_t pos) const;
  bool skipTrivia();  // false on a bad byte in a comment
  bool checkUtf8(size_t pos, size_t* len);
  Token number();
  Token string();
  Token badChar();

  std::string_view src_;
  uint32_t file_;
  size_t pos_ = 0, lineStart_ = 0;
  uint32_t line_ = 1;
  bool failed_ = false;
  Diagnostic error_;
};

// Lexes a whole file, ending with an Eof token. For tests and tools; the
// parser pulls tokens one at a time instead.
Expected<std::vector<Token>> lex(const SourceManager& sm, uint32_t file);

}  // namespace nnc
