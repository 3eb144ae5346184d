// Sliding-window geometry over NCHW images, and the reference im2col/col2im
// of the course notes. conv2d, the pooling ops and the im2col/col2im ops
// share the geometry, so every one of them agrees on output sizes.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace nnc {

// Number of window positions along one axis: floor((in + 2·pad − k) / stride)
// + 1, or 0 when the window does not fit in the padded input at all (the
// plain formula would truncate a negative numerator towards zero).
int64_t slideCount(int64_t in, int64_t k, int64_t stride, int64_t pad);

// A kh×kw window sliding with stride (sh, sw) over an [n, c, h, w] image
// zero-padded by (ph, pw) on each side.
struct PatchGeom {
  int64_t n = 1, c = 1, h = 1, w = 1;
  int64_t kh = 1, kw = 1;
  int64_t sh = 1, sw = 1;
  int64_t ph = 0, pw = 0;

  int64_t oh() const { return slideCount(h, kh, sh, ph); }
  int64_t ow() const { return slideCount(w, kw, sw, pw); }
  // The im2col matrix: one row per (image, output position), one column per
  // (channel, window row, window column), each index row-major.
  int64_t colRows() const { return n * oh() * ow(); }
  int64_t colCols() const { return c * kh * kw; }
  int64_t imageSize() const { return n * c * h * w; }
};

// x holds g.imageSize() values; returns the colRows() × colCols() matrix,
// with zeros where the window covers padding.
std::vector<double> im2col(std::span<const double> x, const PatchGeom& g);

// The adjoint of im2col: scatters each matrix entry back to its pixel,
// summing where windows overlap and dropping entries that fall on padding.
std::vector<double> col2im(std::span<const double> col, const PatchGeom& g);

}  // namespace nnc
