#include "io/json.h"

#include <cstdlib>

namespace nnc {

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

class Reader {
 public:
  Reader(std::string_view s, const std::string& what) : s_(s), what_(what) {}

  Expected<Json> document() {
    NNC_TRY(Json v, value(0));
    skipSpace();
    if (i_ != s_.size()) return fail("the end of the document");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  Diagnostic fail(std::string_view expected) {
    int line = 1, col = 1;
    for (size_t k = 0; k < i_ && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return error("{}:{}:{}: invalid JSON: expected {}", what_, line, col, expected);
  }

  void skipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  bool eat(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  Expected<Json> value(int depth) {
    if (depth > kMaxDepth) return fail("less nesting");
    skipSpace();
    Json v;
    if (i_ >= s_.size()) return fail("a value");
    const char c = s_[i_];
    if (c == '{') {
      v.kind = Json::Kind::Object;
      ++i_;
      skipSpace();
      if (eat("}")) return v;
      for (;;) {
        skipSpace();
        if (i_ >= s_.size() || s_[i_] != '"') return fail("a string key");
        NNC_TRY(std::string key, string());
        skipSpace();
        if (!eat(":")) return fail("':'");
        NNC_TRY(Json item, value(depth + 1));
        v.fields[key] = std::move(item);
        skipSpace();
        if (eat("}")) return v;
        if (!eat(",")) return fail("',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = Json::Kind::Array;
      ++i_;
      skipSpace();
      if (eat("]")) return v;
      for (;;) {
        NNC_TRY(Json item, value(depth + 1));
        v.items.push_back(std::move(item));
        skipSpace();
        if (eat("]")) return v;
        if (!eat(",")) return fail("',' or ']'");
      }
    }
    if (c == '"') {
      v.kind = Json::Kind::String;
      NNC_TRY(v.text, string());
      return v;
    }
    if (eat("true") || eat("false")) {
      v.kind = Json::Kind::Bool;
      v.boolean = s_[i_ - 2] == 'u';  // the 'u' of "true"; "false" ends in "se"
      return v;
    }
    if (eat("null")) return v;
    return number();
  }

  Expected<Json> number() {
    const size_t start = i_;
    auto digits = [&] {
      const size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ > from;
    };
    eat("-");
    if (eat("0")) {
    } else if (!digits()) {
      return fail("a value");
    }
    if (eat(".") && !digits()) return fail("digits after '.'");
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (!eat("+")) eat("-");
      if (!digits()) return fail("exponent digits");
    }
    Json v;
    v.kind = Json::Kind::Number;
    v.text = std::string(s_.substr(start, i_ - start));
    v.number = std::strtod(v.text.c_str(), nullptr);
    return v;
  }

  Expected<std::string> string() {
    ++i_;  // the opening quote
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      const unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c < 0x20) return fail("no control characters in a string");
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (i_ >= s_.size()) break;
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          NNC_TRY(uint32_t cp, hex4());
          if (cp >= 0xD800 && cp < 0xDC00) {
            if (!eat("\\u")) return fail("a low surrogate");
            NNC_TRY(uint32_t lo, hex4());
            if (lo < 0xDC00 || lo >= 0xE000) return fail("a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          appendUtf8(out, cp);
          break;
        }
        default: --i_; return fail("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
      }
    }
    if (!eat("\"")) return fail("'\"' closing the string");
    return out;
  }

  Expected<uint32_t> hex4() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k, ++i_) {
      if (i_ >= s_.size()) return fail("four hex digits");
      const char h = s_[i_];
      const int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (d < 0) return fail("four hex digits");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    return v;
  }

  std::string_view s_;
  const std::string& what_;
  size_t i_ = 0;
};

}  // namespace

Expected<Json> parseJson(std::string_view text, const std::string& what) { return Reader(text, what).document(); }

std::string jsonQuote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

}  // namespace nnc
