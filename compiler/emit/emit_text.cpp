// emit-cpp's text helpers: identifiers, float literals and arrays (declared
// in emit_model.h).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <set>

#include <fmt/format.h>

#include "compiler/emit/emit_model.h"

namespace nnc::emit {

namespace {

bool keyword(const std::string& s) {
  static const std::set<std::string> kWords = {
      "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch",
      "char", "char16_t", "char32_t", "char8_t", "class", "compl", "concept", "const", "const_cast", "consteval",
      "constexpr", "constinit", "continue", "co_await", "co_return", "co_yield", "decltype", "default", "delete",
      "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for",
      "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq",
      "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
      "requires", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct",
      "switch", "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union",
      "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq", "std", "main"};
  return kWords.count(s) != 0;
}

}  // namespace

// A C++ identifier for a graph name ("fc1.W" -> fc1_W).
std::string ident(const std::string& name) {
  std::string s;
  for (char c : name) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '_') s = "v" + s;
  if (keyword(s)) s += "_";
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// A float literal that reads back as the same float.
std::string floatLiteral(float v) {
  if (std::isnan(v)) return "NAN";
  if (std::isinf(v)) return v > 0 ? "INFINITY" : "-INFINITY";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s + "f";
}

std::string floatArray(const std::vector<float>& v) {
  std::string out, line = "   ";
  for (float x : v) {
    const std::string item = floatLiteral(x);
    if (line.size() + item.size() + 2 > 110) {
      out += line;
      out += '\n';
      line = "   ";
    }
    line += ' ';
    line += item;
    line += ',';
  }
  out += line;
  out += '\n';
  return out;
}

std::vector<float> toFloats(const std::vector<double>& d) {
  std::vector<float> f(d.size());
  for (size_t i = 0; i < d.size(); ++i) f[i] = static_cast<float>(d[i]);
  return f;
}

bool uniform(const std::vector<float>& v) {
  for (float x : v)
    if (std::memcmp(&x, v.data(), sizeof x) != 0) return false;
  return true;
}


bool callsRuntime(const Program& p, const std::string& callee) {
  auto calls = [&](auto&& self, const std::vector<loop::Stmt>& body) -> bool {
    for (const loop::Stmt& s : body)
      if ((s.kind == loop::Stmt::Kind::Call && s.callee == callee) || self(self, s.body)) return true;
    return false;
  };
  for (const loop::Kernel& k : p.kernels)
    if (calls(calls, k.body)) return true;
  return false;
}

std::string plural(int64_t n, const char* what) { return fmt::format("{} {}{}", n, what, n == 1 ? "" : "s"); }

}  // namespace nnc::emit
