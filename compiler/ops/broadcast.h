// NumPy broadcasting and axis handling shared by the elementwise and
// reduction ops, and by autodiff: the gradient of a broadcast operand is the
// output gradient summed back to the operand's shape (reduceToShape).
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"
#include "base/tensor.h"

namespace nnc {

// The NumPy broadcast of two shapes (align trailing dims; each pair equal or
// one of them 1), or nothing if they do not broadcast.
std::optional<Shape> broadcastShapes(const Shape& a, const Shape& b);
// The same, with an error naming the op and both types:
//   "add: cannot broadcast f32[100, 40] with f32[30] (dimension 40 vs 30)"
Expected<Shape> broadcastShape(std::string_view op, const TensorType& a, const TensorType& b);
// True if `from` broadcasts to exactly `to` (every dim equal or 1, rank <= to's).
bool broadcastsTo(const Shape& from, const Shape& to);

// Maps a flat row-major index into `out` to the flat index of the element of
// `operand` that broadcasting reads there. `operand` must broadcast to `out`.
// Read the other way round it maps each element of a big tensor to the cell
// of a smaller one it reduces into, which is how reductions use it.
class BroadcastIndex {
 public:
  BroadcastIndex(const Shape& operand, const Shape& out);
  int64_t operator()(int64_t outIndex) const {
    if (identity_) return outIndex;
    int64_t off = 0;
    for (size_t d = extents_.size(); d-- > 0;) {
      off += (outIndex % extents_[d]) * strides_[d];
      outIndex /= extents_[d];
    }
    return off;
  }

 private:
  bool identity_ = false;
  std::vector<int64_t> extents_, strides_;  // per out dim; stride 0 where broadcast
};

// Checks axes against `t`'s rank (negative ones count from the end) and
// returns them non-negative, in the given order. Errors, naming the op, the
// type and its rank, on an axis out of range or repeated.
Expected<std::vector<int64_t>> normalizeAxes(std::string_view op, const std::vector<int64_t>& axes,
                                             const TensorType& t);
Expected<int64_t> normalizeAxis(std::string_view op, int64_t axis, const TensorType& t);

// `s` with the (normalized) axes removed, or set to 1 with keepdims.
Shape reducedShape(const Shape& s, const std::vector<int64_t>& axes, bool keepdims);

// The gradient of broadcasting `to` up to `from`: `t` (of shape `from`)
// summed over the broadcast dims, giving shape `to`. `to` must broadcast to
// t's shape.
Tensor reduceToShape(const Tensor& t, const Shape& to);
// The same as a graph recipe: sum `from` over these axes with keepdims=1,
// then reshape to `to` (needed only when the ranks differ). Empty when `to`
// equals `from`.
std::vector<int64_t> reduceToShapeAxes(const Shape& from, const Shape& to);

}  // namespace nnc
