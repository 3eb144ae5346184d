#include "compiler/ops/broadcast.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace nnc {

std::optional<Shape> broadcastShapes(const Shape& a, const Shape& b) {
  const Shape& big = a.size() >= b.size() ? a : b;
  const Shape& small = a.size() >= b.size() ? b : a;
  Shape out = big;
  size_t lead = big.size() - small.size();
  for (size_t i = 0; i < small.size(); ++i) {
    int64_t x = big[lead + i], y = small[i];
    if (x == y || y == 1) continue;
    if (x != 1) return std::nullopt;
    out[lead + i] = y;
  }
  return out;
}

Expected<Shape> broadcastShape(std::string_view op, const TensorType& a, const TensorType& b) {
  if (auto s = broadcastShapes(a.shape, b.shape)) return *s;
  // Name the first clashing pair (from the right, as broadcasting aligns).
  int64_t x = 0, y = 0;
  for (size_t i = 1; i <= std::min(a.shape.size(), b.shape.size()); ++i) {
    x = a.shape[a.shape.size() - i];
    y = b.shape[b.shape.size() - i];
    if (x != y && x != 1 && y != 1) break;
  }
  return error("{}: cannot broadcast {} with {} (dimension {} vs {})", op, typeString(a), typeString(b), x, y);
}

bool broadcastsTo(const Shape& from, const Shape& to) {
  auto s = broadcastShapes(from, to);
  return s && *s == to;
}

BroadcastIndex::BroadcastIndex(const Shape& operand, const Shape& out) {
  if (operand == out) {
    identity_ = true;
    return;
  }
  extents_ = out;
  strides_.assign(out.size(), 0);
  std::vector<int64_t> st = stridesOf(operand);
  size_t lead = out.size() - operand.size();
  for (size_t i = 0; i < operand.size(); ++i)
    if (operand[i] != 1) strides_[lead + i] = st[i];
}

Expected<int64_t> normalizeAxis(std::string_view op, int64_t axis, const TensorType& t) {
  int64_t r = t.rank();
  if (axis < -r || axis >= r) {
    if (r == 0) return error("{}: axis {} is out of range for the rank-0 (scalar) {}", op, axis, typeString(t));
    return error("{}: axis {} is out of range for rank {} ({}; valid axes are {} to {})", op, axis, r,
                 typeString(t), -r, r - 1);
  }
  return axis < 0 ? axis + r : axis;
}

Expected<std::vector<int64_t>> normalizeAxes(std::string_view op, const std::vector<int64_t>& axes,
                                             const TensorType& t) {
  std::vector<int64_t> out;
  for (int64_t a : axes) {
    NNC_TRY(int64_t n, normalizeAxis(op, a, t));
    if (std::find(out.begin(), out.end(), n) != out.end())
      return error("{}: axis {} is repeated in [{}] for rank {} ({})", op, n, fmt::join(axes, ", "), t.rank(),
                   typeString(t));
    out.push_back(n);
  }
  return out;
}

Shape reducedShape(const Shape& s, const std::vector<int64_t>& axes, bool keepdims) {
  Shape out;
  for (size_t d = 0; d < s.size(); ++d) {
    bool reduced = std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end();
    if (!reduced)
      out.push_back(s[d]);
    else if (keepdims)
      out.push_back(1);
  }
  return out;
}

Tensor reduceToShape(const Tensor& t, const Shape& to) {
  Tensor out(TensorType{t.type.dtype, to});
  BroadcastIndex cell(to, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) out.data[static_cast<size_t>(cell(i))] += t.data[static_cast<size_t>(i)];
  return out;
}

std::vector<int64_t> reduceToShapeAxes(const Shape& from, const Shape& to) {
  std::vector<int64_t> axes;
  size_t lead = from.size() - to.size();
  for (size_t d = 0; d < from.size(); ++d)
    if (d < lead || (to[d - lead] == 1 && from[d] != 1)) axes.push_back(static_cast<int64_t>(d));
  return axes;
}

}  // namespace nnc
