// A small JSON reader for nnc's own files (checkpoint metadata): the full
// grammar (RFC 8259), values as a tree. Numbers keep their text so integers
// beyond 2^53 are not rounded by the reader.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"

namespace nnc {

struct Json {
  enum class Kind { Null, Bool, Number, String, Array, Object } kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string text;  // a string's value, or a number's spelling
  std::vector<Json> items;
  std::map<std::string, Json> fields;

  const Json* find(const std::string& key) const {
    auto it = fields.find(key);
    return kind == Kind::Object && it != fields.end() ? &it->second : nullptr;
  }
};

// Errors say where (line:column) and what was expected; `what` names the source.
Expected<Json> parseJson(std::string_view text, const std::string& what);
// A JSON string literal with the escapes JSON needs.
std::string jsonQuote(std::string_view s);
// cp (a Unicode code point, at most 0x10FFFF) as UTF-8, appended to out.
void appendUtf8(std::string& out, uint32_t cp);

}  // namespace nnc
