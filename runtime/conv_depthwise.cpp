// Depthwise convolution (runtime/conv_depthwise.h): each channel's plane is
// copied into a per-thread buffer with its padding made of zeros and, at
// stride s > 1, its columns deinterleaved into s phases (column X of the
// padded row goes to phase X mod s, index X div s), so that every window tap
// is one fixed offset from the start of an output row and every vector load
// is contiguous. The row kernels (gemm_kernel.h, DepthwiseRows and
// DepthwiseGrad) run in the current instruction set.
//
// Forward: per (image, channel) plane, the copy of x, then one pass per
// filter of the channel (the multiplier m = f/c filters).
// Input gradient: per (image, channel), the m planes of dy copied with zeros
// around them (at strides up to 2, spread out with zeros between); dx's
// pixels fall into sh·sw phases by (y + ph) mod sh and (x + pw) mod sw, and
// within a phase each is a stride-1 correlation of the copied dy with the
// taps of that phase, summed over the m planes.
// Weight gradient: per channel, over the images in order, the copy of x and
// lane-wise sums per tap (and of dy for db) kept across images; the lanes
// are added last, in order. Threads split channels (or planes), never a sum.
#include "runtime/conv_depthwise.h"

#include <algorithm>
#include <vector>

#include "runtime/activation.h"
#include "runtime/gemm_kernel.h"
#include "runtime/parallel.h"

namespace nnc {

namespace {

// Slot 0: the padded copy; slot 1: the weight gradient's sums or the input
// gradient's phase rows. Owned by the calling thread, reused across calls.
float* depthwiseScratch(int slot, size_t floats) {
  thread_local std::vector<float> bufs[2];
  std::vector<float>& b = bufs[slot];
  if (b.size() < floats) b.resize(floats);
  return b.data();
}

// The padded, phase-deinterleaved copy of one image plane that the forward
// and the weight gradient read: rows Y = y + ph of the padded image for
// Y < rows, each of sw phases of `len` columns; tap (i, j) of output row oy
// at oy·sh·stride + i·stride + (j mod sw)·len + j div sw + ox.
struct PaddedPlane {
  int64_t len, stride, rows;
  explicit PaddedPlane(const ConvGeom& g)
      : len(g.ow() + (g.kw - 1) / g.sw), stride(g.sw * len), rows((g.oh() - 1) * g.sh + g.kh) {}
  size_t size() const { return size_t(rows * stride); }
};

std::vector<int64_t> paddedTaps(const ConvGeom& g, const PaddedPlane& p) {
  std::vector<int64_t> off;
  for (int64_t i = 0; i < g.kh; ++i)
    for (int64_t j = 0; j < g.kw; ++j) off.push_back(i * p.stride + (j % g.sw) * p.len + j / g.sw);
  return off;
}

void copyPadded(const ConvGeom& g, const PaddedPlane& p, const float* x, float* buf) {
  gemm::depthwisePad(gemm::DepthwisePad{x, buf, g.h, g.w, g.ph, g.pw, g.sw, p.len, p.rows});
}

// The next plane on its way into the cache while this one is computed:
// planes are small (a 14×14 one is 49 lines), too short a stream for the
// hardware prefetcher to run ahead of, and in the weight gradient they are
// a whole image apart.
void prefetchPlane(const float* x, int64_t floats) {
  for (int64_t e = 0; e < floats; e += 16) __builtin_prefetch(x + e);
}

}  // namespace

bool depthwiseFits(const ConvGeom& g, ConvDir d, int act) {
  if (g.groups != g.c || g.c < 1 || g.f < g.c || g.f % g.c != 0) return false;
  if (g.n < 1 || g.h < 1 || g.w < 1 || g.oh() < 1 || g.ow() < 1 || g.sh < 1 || g.sw < 1) return false;
  if (g.ph < 0 || g.pw < 0) return false;
  return d != ConvDir::Forward || act == kActNone || act == kActRelu;
}

void depthwiseConv2d(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act) {
  const int64_t m = g.f / g.c, taps = g.kh * g.kw, oh = g.oh(), ow = g.ow();
  const PaddedPlane p(g);
  const std::vector<int64_t> off = paddedTaps(g, p);
  parallelFor(g.n * g.c, 1, [&](int64_t p0, int64_t p1) {
    float* buf = depthwiseScratch(0, p.size());
    std::fill(buf, buf + p.size(), 0.0f);
    for (int64_t q = p0; q < p1; ++q) {
      const int64_t b = q / g.c, c = q % g.c;
      copyPadded(g, p, x + q * g.h * g.w, buf);
      prefetchPlane(x + (q + 1) * g.h * g.w, q + 1 < p1 ? g.h * g.w : 0);
      for (int64_t k = 0; k < m; ++k) {
        const int64_t f = c * m + k;
        gemm::depthwiseRows(gemm::DepthwiseRows{buf, off.data(), w + f * taps, taps, bias ? bias[f] : 0.0f, act,
                                                y + (b * g.f + f) * oh * ow, ow, oh, g.sh * p.stride, ow});
      }
    }
  });
}

namespace {

// The input gradient at strides of at most 2 each way, as one stride-1
// correlation of dy spread out: dy[u, v] at row u·sh + kh − 1, column
// v·sw + kw − 1 of a plane of zeros, correlated with the flipped taps from
// row ph, column pw. Up to 4× the products of the phases below, but in
// whole rows of dx, one kernel call a plane and no interleaving: on 7×7 dy
// planes the phases' calls of 7-wide rows and the interleave cost more than
// the products.
void depthwiseInputGradSpread(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx) {
  const int64_t m = g.f / g.c, taps = g.kh * g.kw, oh = g.oh(), ow = g.ow();
  const int64_t rows = g.h + g.ph + g.kh - 1, stride = g.w + g.pw + g.kw - 1, plane = rows * stride;
  // dy's rows and columns that land in the plane; the others reach no pixel.
  const int64_t nu = std::min(oh, (rows - g.kh) / g.sh + 1), nv = std::min(ow, (stride - g.kw) / g.sw + 1);
  std::vector<int64_t> off;
  for (int64_t k = 0; k < m; ++k)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) off.push_back(k * plane + (g.kh - 1 - i) * stride + (g.kw - 1 - j));
  parallelFor(g.n * g.c, 1, [&](int64_t p0, int64_t p1) {
    // Only the spread positions are written per plane: the zeros between
    // them are the same for every plane.
    float* buf = depthwiseScratch(0, size_t(m * plane));
    std::fill(buf, buf + m * plane, 0.0f);
    for (int64_t q = p0; q < p1; ++q) {
      const int64_t b = q / g.c, c = q % g.c;
      for (int64_t k = 0; k < m; ++k) {
        const float* src = dy + (b * g.f + c * m + k) * oh * ow;
        float* dst = buf + k * plane + (g.kh - 1) * stride + g.kw - 1;
        for (int64_t u = 0; u < nu; ++u)
          for (int64_t v = 0; v < nv; ++v) dst[u * g.sh * stride + v * g.sw] = src[u * ow + v];
      }
      gemm::depthwiseRows(gemm::DepthwiseRows{buf + g.ph * stride + g.pw, off.data(), w + c * m * taps, m * taps,
                                              bias ? bias[c] : 0.0f, kActNone, dx + q * g.h * g.w, g.w, g.h,
                                              stride, g.w});
    }
  });
}

}  // namespace

void depthwiseConvInputGrad(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx) {
  if ((g.sh > 1 || g.sw > 1) && g.sh <= 2 && g.sw <= 2) return depthwiseInputGradSpread(g, dy, w, bias, dx);
  const int64_t m = g.f / g.c, taps = g.kh * g.kw, oh = g.oh(), ow = g.ow();
  // The copy of dy: A zero rows above, B zero columns left (the farthest a
  // phase's tap reaches back), and rows and columns as far as dx's last
  // pixel reads, zeros past dy's.
  const int64_t A = (g.kh - 1) / g.sh, B = (g.kw - 1) / g.sw;
  const int64_t rows = (g.h - 1 + g.ph) / g.sh + A + 1, stride = (g.w - 1 + g.pw) / g.sw + B + 1;
  const int64_t plane = rows * stride, phases = g.sh * g.sw;
  // Per phase (ry, rx): the taps (i, j) = (ry + a·sh, rx + b·sw) of every
  // filter of the channel, at offset k·plane − a·stride − b of the copy.
  std::vector<int64_t> off, tapOf, first(size_t(phases + 1), 0);
  for (int64_t ry = 0; ry < g.sh; ++ry)
    for (int64_t rx = 0; rx < g.sw; ++rx) {
      for (int64_t k = 0; k < m; ++k)
        for (int64_t i = ry, a = 0; i < g.kh; i += g.sh, ++a)
          for (int64_t j = rx, b = 0; j < g.kw; j += g.sw, ++b) {
            off.push_back(k * plane - a * stride - b);
            tapOf.push_back(k * taps + i * g.kw + j);
          }
      first[size_t(ry * g.sw + rx + 1)] = int64_t(off.size());
    }
  parallelFor(g.n * g.c, 1, [&](int64_t p0, int64_t p1) {
    float* buf = depthwiseScratch(0, size_t(m * plane));
    float* phaseRows = depthwiseScratch(1, size_t(g.sw * g.h * g.w));
    std::fill(buf, buf + m * plane, 0.0f);
    std::vector<float> wt(off.size());
    for (int64_t q = p0; q < p1; ++q) {
      const int64_t b = q / g.c, c = q % g.c;
      // Clipped to the copy's rows and columns: dy's windows that lie wholly
      // in the padding (pad >= kernel) reach no pixel.
      for (int64_t k = 0; k < m; ++k)
        gemm::depthwisePad(gemm::DepthwisePad{dy + (b * g.f + c * m + k) * oh * ow, buf + k * plane, oh, ow, A, B, 1,
                                              stride, rows});
      for (size_t t = 0; t < wt.size(); ++t) wt[t] = w[c * m * taps + tapOf[t]];
      float* out = dx + q * g.h * g.w;
      const float bc = bias ? bias[c] : 0.0f;
      for (int64_t ry = 0; ry < g.sh; ++ry) {
        // dx's rows y ≡ ry − ph (mod sh), from y0: dy's row (y + ph) div sh − a.
        const int64_t y0 = ((ry - g.ph) % g.sh + g.sh) % g.sh;
        if (y0 >= g.h) continue;
        const int64_t ny = (g.h - 1 - y0) / g.sh + 1, uy0 = (y0 + g.ph) / g.sh;
        const bool direct = g.sw == 1;  // dx's rows are the phase's rows
        for (int64_t rx = 0; rx < g.sw; ++rx) {
          const int64_t x0 = ((rx - g.pw) % g.sw + g.sw) % g.sw;
          if (x0 >= g.w) continue;
          const int64_t nx = (g.w - 1 - x0) / g.sw + 1, ux0 = (x0 + g.pw) / g.sw;
          const int64_t t0 = first[size_t(ry * g.sw + rx)], nt = first[size_t(ry * g.sw + rx + 1)] - t0;
          // Not direct: phase rx into block x0 of phaseRows, then interleaved.
          gemm::depthwiseRows(gemm::DepthwiseRows{buf + (uy0 + A) * stride + ux0 + B, off.data() + t0,
                                                  wt.data() + t0, nt, bc, kActNone,
                                                  direct ? out + y0 * g.w + x0 : phaseRows + x0 * g.h * g.w, nx,
                                                  ny, stride, direct ? g.sh * g.w : nx});
        }
        if (direct) continue;
        const int64_t nx0 = (g.w + g.sw - 1) / g.sw, nx1 = (g.w - 1 + g.sw - 1) / g.sw;  // blocks x0 = 0, 1
        for (int64_t r = 0; r < ny; ++r) {
          float* __restrict d = out + (y0 + r * g.sh) * g.w;
          if (g.sw == 2) {  // a loop the compiler turns into vector interleaves
            const float* __restrict s0 = phaseRows + r * nx0;
            const float* __restrict s1 = phaseRows + g.h * g.w + r * nx1;
            for (int64_t u = 0; u < nx1; ++u) {
              d[2 * u] = s0[u];
              d[2 * u + 1] = s1[u];
            }
            if (nx0 > nx1) d[2 * nx1] = s0[nx1];
            continue;
          }
          for (int64_t x0 = 0; x0 < std::min(g.sw, g.w); ++x0) {
            const int64_t nx = (g.w - 1 - x0) / g.sw + 1;
            const float* __restrict s = phaseRows + x0 * g.h * g.w + r * nx;
            for (int64_t u = 0; u < nx; ++u) d[x0 + u * g.sw] = s[u];
          }
        }
      }
    }
  });
}

void depthwiseConvWeightGrad(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db) {
  const int64_t m = g.f / g.c, taps = g.kh * g.kw, oh = g.oh(), ow = g.ow(), lanes = gemm::lanes();
  const PaddedPlane p(g);
  const std::vector<int64_t> off = paddedTaps(g, p);
  const int64_t sums = (taps + 1) * lanes;  // per filter: each tap's lanes, then db's
  parallelFor(g.c, 1, [&](int64_t c0, int64_t c1) {
    float* buf = depthwiseScratch(0, p.size());
    float* acc = depthwiseScratch(1, size_t(m * sums));
    std::fill(buf, buf + p.size(), 0.0f);
    for (int64_t c = c0; c < c1; ++c) {
      std::fill(acc, acc + m * sums, 0.0f);
      for (int64_t b = 0; b < g.n; ++b) {
        copyPadded(g, p, x + (b * g.c + c) * g.h * g.w, buf);
        prefetchPlane(x + ((b + 1) * g.c + c) * g.h * g.w, b + 1 < g.n ? g.h * g.w : 0);
        for (int64_t k = 0; k < m; ++k)
          gemm::depthwiseGrad(gemm::DepthwiseGrad{buf, off.data(), taps, dy + (b * g.f + c * m + k) * oh * ow,
                                                  acc + k * sums, db != nullptr, ow, oh, g.sh * p.stride, ow});
      }
      for (int64_t k = 0; k < m; ++k) {
        const int64_t f = c * m + k;
        for (int64_t t = 0; t <= taps; ++t) {
          const float* lane = acc + k * sums + t * lanes;
          float s = 0.0f;
          for (int64_t l = 0; l < lanes; ++l) s += lane[l];
          if (t < taps)
            dw[f * taps + t] = s;
          else if (db)
            db[f] = s;
        }
      }
    }
  });
}

}  // namespace nnc
