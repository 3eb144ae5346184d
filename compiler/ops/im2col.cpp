#include "compiler/ops/im2col.h"

namespace nnc {

int64_t slideCount(int64_t in, int64_t k, int64_t stride, int64_t pad) {
  const int64_t room = in + 2 * pad - k;
  return room < 0 ? 0 : room / stride + 1;
}

namespace {
// Visits every (matrix entry, pixel) pair of the im2col matrix in row-major
// matrix order; the pixel index is -1 where the window covers padding. Both
// directions go through here so they cannot disagree on the layout.
template <class F>
void forEachPatchEntry(const PatchGeom& g, F&& f) {
  const int64_t oh = g.oh(), ow = g.ow();
  int64_t entry = 0;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x = 0; x < ow; ++x)
        for (int64_t c = 0; c < g.c; ++c)
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j, ++entry) {
              const int64_t row = y * g.sh - g.ph + i, col = x * g.sw - g.pw + j;
              const bool inside = row >= 0 && row < g.h && col >= 0 && col < g.w;
              f(entry, inside ? ((n * g.c + c) * g.h + row) * g.w + col : -1);
            }
}
}  // namespace

std::vector<double> im2col(std::span<const double> x, const PatchGeom& g) {
  std::vector<double> out(static_cast<size_t>(g.colRows() * g.colCols()), 0.0);
  forEachPatchEntry(g, [&](int64_t entry, int64_t pixel) {
    if (pixel >= 0) out[entry] = x[pixel];
  });
  return out;
}

std::vector<double> col2im(std::span<const double> col, const PatchGeom& g) {
  std::vector<double> out(static_cast<size_t>(g.imageSize()), 0.0);
  forEachPatchEntry(g, [&](int64_t entry, int64_t pixel) {
    if (pixel >= 0) out[pixel] += col[entry];
  });
  return out;
}

}  // namespace nnc
