#include "base/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace nnc {

const char* dtypeName(DType t) { return t == DType::F32 ? "f32" : "i32"; }

int64_t numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shapeString(const Shape& s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

std::string typeString(const TensorType& t) {
  return fmt::format("{}{}", dtypeName(t.dtype), shapeString(t.shape));
}

std::vector<int64_t> stridesOf(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int i = static_cast<int>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

}  // namespace nnc
