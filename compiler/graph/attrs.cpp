#include "compiler/graph/attrs.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace nnc {

namespace {
std::string num(double v) { return fmt::format("{:.9g}", v); }
}  // namespace

std::string attrString(const Attr& a) {
  struct V {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      std::string s = num(v);
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
      return s;
    }
    std::string operator()(const std::vector<int64_t>& v) const { return fmt::format("[{}]", fmt::join(v, ", ")); }
    std::string operator()(const std::vector<double>& v) const {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) s += ", ";
        if (i == 8 && v.size() > 10) {
          s += fmt::format("... {} more", v.size() - 8);
          break;
        }
        s += num(v[i]);
      }
      return s + "]";
    }
    std::string operator()(const std::string& v) const { return "\"" + v + "\""; }
  };
  return std::visit(V{}, a);
}

const Attr* Attrs::find(std::string_view name) const {
  for (const auto& [k, v] : items_)
    if (k == name) return &v;
  return nullptr;
}

void Attrs::set(std::string name, Attr value) {
  for (auto& [k, v] : items_)
    if (k == name) {
      v = std::move(value);
      return;
    }
  items_.emplace_back(std::move(name), std::move(value));
}

double Attrs::f(std::string_view name) const {
  const Attr* a = find(name);
  if (const auto* iv = std::get_if<int64_t>(a)) return static_cast<double>(*iv);
  return std::get<double>(*a);
}

}  // namespace nnc
