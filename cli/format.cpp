// How commands print numbers and tensors.
#include <fmt/format.h>

#include "cli/commands.h"

namespace nnc::cli {

std::string groupThousands(int64_t n) {
  std::string d = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return n < 0 ? "-" + out : out;
}

namespace {

// Integers as integers; f32 values in the shortest form that reads back as the
// same float (as NumPy prints float32), f64 values likewise as doubles.
std::string formatNumber(double v, DType dt, bool f64) {
  if (dt == DType::I32) return fmt::format("{}", static_cast<int64_t>(v));
  return f64 ? fmt::format("{}", v) : fmt::format("{}", static_cast<float>(v));
}

void formatAxis(const Tensor& t, size_t axis, int64_t offset, const std::vector<int64_t>& strides, bool f64,
                std::string& out) {
  if (axis == t.shape().size()) {
    out += formatNumber(t.data[static_cast<size_t>(offset)], t.type.dtype, f64);
    return;
  }
  const int64_t n = t.shape()[axis];
  out += '[';
  for (int64_t i = 0; i < n; ++i) {
    if (n > 8 && i == 3) {  // long axes show their ends, as NumPy does
      out += "..., ";
      i = n - 3;
    }
    if (i && out.back() != ' ') out += axis + 1 == t.shape().size() ? ", " : ",\n" + std::string(axis + 1, ' ');
    formatAxis(t, axis + 1, offset + i * strides[axis], strides, f64, out);
  }
  out += ']';
}

}  // namespace

std::string formatTensor(const Tensor& t, bool f64) {
  std::string out;
  formatAxis(t, 0, 0, stridesOf(t.shape()), f64, out);
  return out;
}

}  // namespace nnc::cli
