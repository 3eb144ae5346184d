// Op attributes: small named compile-time values (stride, axis, init, ...).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace nnc {

enum class AttrKind { Int, Float, Ints, Floats, String };
using Attr = std::variant<int64_t, double, std::vector<int64_t>, std::vector<double>, std::string>;

std::string attrString(const Attr& a);  // as printed in graph dumps: 2, 0.5, [1, 2], "he"

class Attrs {
 public:
  Attrs() = default;
  Attrs(std::initializer_list<std::pair<std::string, Attr>> items) : items_(items) {}

  bool has(std::string_view name) const { return find(name) != nullptr; }
  const Attr* find(std::string_view name) const;
  void set(std::string name, Attr value);

  // Typed getters; the op registry guarantees presence and kind after checking.
  int64_t i(std::string_view name) const { return std::get<int64_t>(*find(name)); }
  double f(std::string_view name) const;  // accepts an Int too
  const std::vector<int64_t>& ints(std::string_view name) const {
    return std::get<std::vector<int64_t>>(*find(name));
  }
  const std::vector<double>& floats(std::string_view name) const {
    return std::get<std::vector<double>>(*find(name));
  }
  const std::string& s(std::string_view name) const { return std::get<std::string>(*find(name)); }

  const std::vector<std::pair<std::string, Attr>>& items() const { return items_; }
  bool operator==(const Attrs&) const = default;

 private:
  std::vector<std::pair<std::string, Attr>> items_;
};

}  // namespace nnc
