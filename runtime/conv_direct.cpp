// Register-blocked direct convolution (conv_direct.h). The tiles are the
// instruction set's (gemm::DirectRows, runtime/conv_direct_tiles.h); here
// the per-call weight packing, the per-image padding and the threading.
//
// Forward: each image is copied into a zero-padded [C][Hp][Wp] buffer of
// this thread (read in place when there is no padding; at stride 2 along
// rows with its columns deinterleaved by phase, DirLayout), so that every
// patch element k = (c, i, j) sits at a constant offset (c·Hp·Wp + i·Wp + j
// unphased) from its window's start; the weights are repacked once per call into panels
// [F / block][K][block] of up to directNvMax vectors of filters. Work items
// are (image, filter block) pairs; every output element is one tile's sum in
// k order, whichever thread computes it, so results do not depend on the
// thread count.
//
// Input gradient, stride 1 with padding below the window: the forward
// convolution of dy with the flipped, transposed weights w'[c, f, kh−1−i,
// kw−1−j] and padding kh−1−ph, which gives back an H×W map. Any other
// stride or padding by phases (directInputGradPhased): sh·sw stride-1
// correlations of dy with sub-kernels, interleaved into dx.
//
// Weight gradient: images in groups summed separately, then added in group
// order (directConvWeightGrad).
#include "runtime/conv_direct.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "runtime/activation.h"
#include "runtime/gemm_kernel.h"
#include "runtime/parallel.h"

namespace nnc {

namespace {

float* directPadBuffer(size_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

// Row copies and fills as plain loops: the rows are short (7–30 floats),
// where a call to memcpy or memset per row cost more than the copying.
void copyFloats(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}
void zeroFloats(float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = 0.0f;
}

// Image [C, H, W] into [C, H + 2·ph, W + 2·pw] with zeros around.
void directPad(const float* x, int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw, float* out) {
  const int64_t Wp = W + 2 * pw, Hp = H + 2 * ph;
  for (int64_t c = 0; c < C; ++c) {
    float* o = out + c * Hp * Wp;
    zeroFloats(o, ph * Wp + pw);
    for (int64_t y = 0; y < H; ++y) {
      float* row = o + (ph + y) * Wp + pw;
      copyFloats(row, x + (c * H + y) * W, W);
      // The right padding of this row and the left of the next, at once.
      zeroFloats(row + W, y + 1 < H ? 2 * pw : pw);
    }
    zeroFloats(o + (ph + H) * Wp, ph * Wp);
  }
}

// The copy the tiles read (or the image itself, unpadded at stride 1):
// planes of `rows` rows of `stride` floats. At stride 2 along rows the
// columns are deinterleaved as depthwise does (conv_depthwise.cpp's
// PaddedPlane): padded column X at (X mod 2)·len + X div 2, so the tiles
// run at stride 1 and a tap's R pixels are R consecutive floats, not every
// other one: half the lines per step k.
struct DirLayout {
  bool phased, copy;
  int64_t len, stride, rows, plane, sw;  // sw: the tiles' stride along a row
};

DirLayout directLayout(const ConvGeom& g) {
  DirLayout l{};
  l.phased = g.sw == 2;
  l.copy = l.phased || g.ph != 0 || g.pw != 0;
  l.len = l.phased ? g.ow() + (g.kw - 1) / 2 : g.w + 2 * g.pw;
  l.stride = l.phased ? 2 * l.len : l.len;
  l.rows = l.phased ? (g.oh() - 1) * g.sh + g.kh : g.h + 2 * g.ph;
  l.plane = l.rows * l.stride;
  l.sw = l.phased ? 1 : g.sw;
  return l;
}

// Image [C, H, W] into the layout's planes. Phased: only the pixels, the
// zeros around them written once for the thread's buffer (directZeroPhased).
void directCopy(const ConvGeom& g, const DirLayout& l, const float* x, float* out) {
  if (!l.phased) return directPad(x, g.c, g.h, g.w, g.ph, g.pw, out);
  for (int64_t c = 0; c < g.c; ++c)
    gemm::depthwisePad(gemm::DepthwisePad{x + c * g.h * g.w, out + c * l.plane, g.h, g.w, g.ph, g.pw, 2, l.len, l.rows});
}

// off[k] for k = (c, i, j): where the patch element sits from its window's
// start in the layout.
std::vector<int32_t> directOffsets(const ConvGeom& g, const DirLayout& l) {
  std::vector<int32_t> off(size_t(std::max<int64_t>(g.patchSize(), 1)));
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j)
        off[size_t((c * g.kh + i) * g.kw + j)] =
            int32_t(c * l.plane + i * l.stride + (l.phased ? (j % 2) * l.len + j / 2 : j));
  return off;
}

// w [F, K] as panels [F / block][K][block] of directNvMax vectors of
// filters, zero past F: block b starts at b·block·K (every block before it
// is block wide).
std::vector<float> directPanels(const float* w, int64_t F, int64_t K) {
  const int64_t lanes = gemm::lanes(), blockF = lanes * gemm::directNvMax();
  std::vector<float> wp(size_t((F + lanes) * K));
  for (int64_t f0 = 0; f0 < F; f0 += blockF) {
    const int64_t nf = std::min(blockF, F - f0), width = (nf + lanes - 1) / lanes * lanes;
    float* panel = wp.data() + f0 * K;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t l = 0; l < width; ++l) panel[k * width + l] = l < nf ? w[(f0 + l) * K + k] : 0.0f;
  }
  return wp;
}

// K's slice (DirectRows::kc): weight-panel slices of about 16 KB, which stay
// in L1 beside the image rows.
int64_t directSlice(int64_t K) {
  const int64_t blockF = gemm::lanes() * gemm::directNvMax();
  const int64_t kmax = std::max<int64_t>(16, 4096 / blockF), slices = (K + kmax - 1) / kmax;
  return (K + slices - 1) / slices;
}

// The forward convolution of g (groups 1, sw 1 or 2) with weights w [F, K].
void directForward(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act) {
  const int64_t OH = g.oh(), OW = g.ow(), K = g.patchSize();
  if (g.n <= 0 || g.f <= 0 || OH <= 0 || OW <= 0) return;
  const DirLayout l = directLayout(g);
  const std::vector<int32_t> off = directOffsets(g, l);
  const int64_t lanes = gemm::lanes(), blockF = lanes * gemm::directNvMax();
  const int64_t blocks = (g.f + blockF - 1) / blockF;
  const std::vector<float> wp = directPanels(w, g.f, K);
  const int64_t ys = OH * OW, kc = directSlice(K);
  parallelFor(g.n * blocks, 1, [&](int64_t i0, int64_t i1) {
    float* part = directPadBuffer(size_t((l.copy ? g.c * l.plane : 0) + ys * blockF));
    float* buf = l.copy ? part + ys * blockF : nullptr;
    if (l.phased) zeroFloats(buf, g.c * l.plane);
    int64_t have = -1;
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t n = it / blocks, b = it % blocks, f0 = b * blockF;
      const float* img = x + n * g.c * g.h * g.w;
      if (l.copy && have != n) {
        directCopy(g, l, img, buf);
        have = n;
      }
      gemm::DirectRows r{l.copy ? buf : img, off.data(), K, wp.data() + f0 * K, bias ? bias + f0 : nullptr,
                         act == kActRelu, int(std::min(blockF, g.f - f0)), y + (n * g.f + f0) * ys, ys, OH, OW,
                         g.sh * l.stride, l.sw, kc, part};
      // Into L2 while this image's last filter block is computed the next
      // image, while its first is, where there are more, the image's y.
      if (l.copy && b + 1 == blocks && n + 1 < g.n && it + 1 < i1) {
        r.ahead = img + g.c * g.h * g.w;
        r.aheadFloats = g.c * g.h * g.w;
      } else if (b == 0 && blocks > 1) {
        r.ahead = y + n * g.f * ys;
        r.aheadFloats = g.f * ys;
      }
      gemm::directRows(r);
    }
  });
}

}  // namespace

// Groups of one only (depthwise and grouped shapes are other algorithms'),
// window strides of 1 or 2 along a row forward and for the weight gradient
// (the tiles are instantiated for those), activations the tiles apply
// (none, relu), offsets within int32. The input gradient at any stride and
// padding (its phases are stride-1 correlations), with at least 8 input
// channels: they are its filters, the vector lanes.
bool directFits(const ConvGeom& g, ConvDir d, int act) {
  if (g.groups != 1 || g.n <= 0 || g.c <= 0 || g.f <= 0 || g.oh() <= 0 || g.ow() <= 0) return false;
  if (double(g.c) * double(g.h + 2 * g.ph + g.kh) * double(g.w + 2 * g.pw + g.kw) >
      double(std::numeric_limits<int32_t>::max()))
    return false;
  switch (d) {
    case ConvDir::Forward: return (act == kActNone || act == kActRelu) && (g.sw == 1 || g.sw == 2) && g.sh >= 1;
    case ConvDir::InputGrad:
      // Stride 1 with padding below the window: the forward kernel on dy's
      // own padded copy. Otherwise by phases, dy padded to at most oh + kh + h
      // + ph rows.
      return g.c >= 8 && double(g.f) * double(g.oh() + 2 * g.kh + g.h + 2 * g.ph) *
                                 double(g.ow() + 2 * g.kw + g.w + 2 * g.pw) <=
                             double(std::numeric_limits<int32_t>::max());
    case ConvDir::WeightGrad: return g.sw == 1 || g.sw == 2;
  }
  return false;
}

void directConv2d(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act) {
  directForward(g, x, w, bias, y, act);
}

namespace {

// One phase (a, b) of a strided input gradient: the rows y ≡ a − ph (mod
// sh) and columns x ≡ b − pw (mod sw) of dx, at y = sh·u + a − ph for u0
// ≤ u < u0 + nu (likewise x, v), take only the taps i = a + sh·t, j = b +
// sw·s of the window, from dy[u − t, v − s]: a stride-1 correlation of dy
// with that sub-kernel, flipped (ta × tb taps; none where a ≥ kh or b ≥ kw).
struct DirPhase {
  int64_t a, b, ta, tb, u0, nu, v0, nv;
};

DirPhase directPhase(const ConvGeom& g, int64_t a, int64_t b) {
  auto axis = [](int64_t r, int64_t k, int64_t s, int64_t p, int64_t n, int64_t* t, int64_t* u0, int64_t* nu) {
    *t = r < k ? (k - r + s - 1) / s : 0;
    *u0 = p > r ? (p - r + s - 1) / s : 0;
    const int64_t last = n - 1 + p - r;  // sh·u ≤ last
    *nu = last < 0 ? 0 : std::max<int64_t>(0, last / s + 1 - *u0);
  };
  DirPhase ph{a, b, 0, 0, 0, 0, 0, 0};
  axis(a, g.kh, g.sh, g.ph, g.h, &ph.ta, &ph.u0, &ph.nu);
  axis(b, g.kw, g.sw, g.pw, g.w, &ph.tb, &ph.v0, &ph.nv);
  return ph;
}

// The input gradient by phases (any stride, any padding): each image's dy
// is copied once into a zero-padded [F][Hq][Wq] buffer (ceil(kh/sh) − 1
// rows above, ceil(kw/sw) − 1 columns left, zeros below and right as far as
// any phase reads), each phase's correlation (its own packed weights, K =
// F·ta·tb) goes through the register tiles into a buffer of this thread,
// and its pixels are interleaved into dx. Every dx element is one phase's
// one tile sum in k order, so the thread count changes nothing.
void directInputGradPhased(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx) {
  const int64_t OH = g.oh(), OW = g.ow(), kk = g.kh * g.kw, H = g.h, W = g.w;
  const int64_t pt = (g.kh + g.sh - 1) / g.sh - 1, pl = (g.kw + g.sw - 1) / g.sw - 1;
  // Every phase, q = a·sw + b, empty ones (no pixels of dx) included.
  std::vector<DirPhase> phases;
  int64_t hq = OH, wq = OW, most = 0;
  for (int64_t a = 0; a < g.sh; ++a)
    for (int64_t b = 0; b < g.sw; ++b) {
      const DirPhase p = directPhase(g, a, b);
      phases.push_back(p);
      if (p.nu <= 0 || p.nv <= 0) continue;
      hq = std::max(hq, p.u0 + p.nu);
      wq = std::max(wq, p.v0 + p.nv);
      most = std::max(most, p.nu * p.nv);
    }
  hq += pt;
  wq += pl;
  const int64_t plane = hq * wq, blockF = gemm::lanes() * gemm::directNvMax();
  // Stride 2 along rows: both phases of a row parity side by side in the
  // buffer, then each dx row written once, alternating them.
  const int64_t slots = g.sw == 2 ? 2 : 1;
  // Per phase: w'[c, (f·ta + t)·tb + s] = w[f, c, a + sh·(ta − 1 − t), b + sw·(tb − 1 − s)], as panels.
  std::vector<std::vector<float>> wp(phases.size());
  std::vector<std::vector<int32_t>> off(phases.size());
  std::vector<int64_t> kc(phases.size());
  for (size_t q = 0; q < phases.size(); ++q) {
    const DirPhase& p = phases[q];
    const int64_t K = g.f * p.ta * p.tb;
    if (K == 0 || p.nu <= 0 || p.nv <= 0) continue;
    std::vector<float> wt(size_t(g.c * K));
    off[q].resize(size_t(K));
    for (int64_t f = 0; f < g.f; ++f)
      for (int64_t t = 0; t < p.ta; ++t)
        for (int64_t s = 0; s < p.tb; ++s) {
          const int64_t k = (f * p.ta + t) * p.tb + s, i = p.a + g.sh * (p.ta - 1 - t), j = p.b + g.sw * (p.tb - 1 - s);
          off[q][size_t(k)] = int32_t(f * plane + t * wq + s);
          for (int64_t c = 0; c < g.c; ++c) wt[size_t(c * K + k)] = w[(f * g.c + c) * kk + i * g.kw + j];
        }
    wp[q] = directPanels(wt.data(), g.c, K);
    kc[q] = directSlice(K);
  }
  parallelFor(g.n, 1, [&](int64_t n0, int64_t n1) {
    float* pad = directPadBuffer(size_t(g.f * plane + slots * g.c * most + most * blockF));
    float* out = pad + g.f * plane;
    float* part = out + slots * g.c * most;
    zeroFloats(pad, g.f * plane);
    for (int64_t n = n0; n < n1; ++n) {
      // Only the image's pixels: the zeros around them stay from the fill.
      const float* d = dy + n * g.f * OH * OW;
      for (int64_t f = 0; f < g.f; ++f)
        for (int64_t y = 0; y < OH; ++y) copyFloats(pad + f * plane + (y + pt) * wq + pl, d + (f * OH + y) * OW, OW);
      float* img = dx + n * g.c * H * W;
      for (size_t q = 0; q < phases.size(); ++q) {
        const DirPhase& p = phases[q];
        const int64_t K = g.f * p.ta * p.tb, ys = p.nu * p.nv;
        float* o = out + (slots == 2 ? p.b : 0) * g.c * most;
        if (ys <= 0) {
        } else if (K == 0) {
          for (int64_t c = 0; c < g.c; ++c) std::fill(o + c * ys, o + (c + 1) * ys, bias ? bias[c] : 0.0f);
        } else {
          // Output (u, v) reads rows u − ta + 1 + t of dy, padded row + pt.
          const float* in = pad + (p.u0 - p.ta + 1 + pt) * wq + (p.v0 - p.tb + 1 + pl);
          for (int64_t c0 = 0; c0 < g.c; c0 += blockF) {
            gemm::DirectRows r{in,    off[q].data(), K, wp[q].data() + c0 * K, bias ? bias + c0 : nullptr, false,
                               int(std::min(blockF, g.c - c0)), o + c0 * ys, ys, p.nu, p.nv, wq, 1, kc[q], part};
            // Into L2 by the first phase's tiles this image's dx, whose
            // interleaving waited on its lines from memory, by the second's
            // the next image's dy for its copy.
            if (q == 0 && c0 == 0) {
              r.ahead = img;
              r.aheadFloats = g.c * H * W;
            } else if (q == 1 && c0 == 0 && n + 1 < n1) {
              r.ahead = d + g.f * OH * OW;
              r.aheadFloats = g.f * OH * OW;
            }
            gemm::directRows(r);
          }
        }
        if (slots == 2) {
          if (p.b == 0) continue;
          // Both phases of rows a: even columns x (x + pw ≡ pw mod 2) come
          // from phase b = pw mod 2, odd ones from the other, in order.
          const DirPhase& p0 = phases[q - 1];
          const int64_t e = g.pw % 2, ne = e == 0 ? p0.nv : p.nv, no = e == 0 ? p.nv : p0.nv;
          const float* se = out + e * g.c * most;
          const float* so = out + (1 - e) * g.c * most;
          for (int64_t c = 0; c < g.c; ++c)
            gemm::interleaveRows(se + c * p.nu * ne, ne, so + c * p.nu * no, no,
                                 img + (c * H + g.sh * p.u0 + p.a - g.ph) * W, g.sh * W, W, p.nu);
          continue;
        }
        for (int64_t c = 0; c < g.c; ++c)
          for (int64_t u = 0; u < p.nu; ++u) {
            const float* src = o + c * ys + u * p.nv;
            float* row = img + (c * H + g.sh * (p.u0 + u) + p.a - g.ph) * W + g.sw * p.v0 + p.b - g.pw;
            if (g.sw == 1) copyFloats(row, src, p.nv);
            else
              for (int64_t v = 0; v < p.nv; ++v) row[g.sw * v] = src[v];
          }
      }
    }
  });
}

}  // namespace

void directConvInputGrad(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx) {
  if (g.sh != 1 || g.sw != 1 || g.ph >= g.kh || g.pw >= g.kw) return directInputGradPhased(g, dy, w, bias, dx);
  const int64_t kk = g.kh * g.kw;
  std::vector<float> wt(size_t(g.c * g.f * kk));
  for (int64_t f = 0; f < g.f; ++f)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j)
          wt[size_t(((c * g.f + f) * g.kh + g.kh - 1 - i) * g.kw + g.kw - 1 - j)] =
              w[((f * g.c + c) * g.kh + i) * g.kw + j];
  const ConvGeom t{g.n, g.f, g.oh(), g.ow(), g.c, g.kh, g.kw, 1, 1, g.kh - 1 - g.ph, g.kw - 1 - g.pw, 1};
  directForward(t, dy, wt.data(), bias, dx, kActNone);
}

// The images in groups (their number a function of the shapes, never of
// the thread count), each summed on its own into running sums that stay in
// the tile layout ([k][width] per filter block) between its chunks; dw and
// db are then the groups' sums added in group order. Work items are (group,
// filter block, row range), group-major: a thread pads a chunk and
// transposes its dy to [n][p][f] once for all of its items of the group, so
// with as many threads as groups no thread repeats another's copies, and
// each dw element is one fixed chain whichever thread computed each part.
// As many groups as their running sums allow in about 2 MB (L2), 2 to 8.
constexpr int64_t kGradChunk = 256;

// s[f] += d[p·ld + f] for p < rows, f < n (n <= ld, s and d's rows readable
// to ld): from dyT, f innermost. In blocks of 16 filters held in registers
// down the rows, four chains (rows ≡ 0..3 mod 4, added in that order at the
// end: the order is a function of the shapes only) so that the adds do not
// wait on each other; compiled for the widest vectors the CPU has (this file
// is otherwise built for the baseline instruction set).
NNC_WIDEST_VECTORS void addRows(float* __restrict s, const float* __restrict d, int64_t rows, int64_t ld,
                                int64_t n) {
  int64_t f0 = 0;
  for (; f0 + 16 <= ld && f0 < n; f0 += 16) {
    float acc[4][16] = {};
    int64_t p = 0;
    for (; p + 4 <= rows; p += 4)
      for (int c = 0; c < 4; ++c)
        for (int j = 0; j < 16; ++j) acc[c][j] += d[(p + c) * ld + f0 + j];
    for (; p < rows; ++p)
      for (int j = 0; j < 16; ++j) acc[0][j] += d[p * ld + f0 + j];
    for (int j = 0; j < 16; ++j) s[f0 + j] += (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]);
  }
  for (int64_t p = 0; p < rows; ++p)
    for (int64_t f = f0; f < n; ++f) s[f] += d[p * ld + f];
}

void directConvWeightGrad(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db) {
  const int64_t OH = g.oh(), OW = g.ow(), K = g.patchSize(), P = OH * OW;
  const DirLayout l = directLayout(g);
  const bool padded = l.copy;
  const int64_t img = g.c * l.plane;
  const std::vector<int32_t> off = directOffsets(g, l);
  const int64_t lanes = gemm::lanes(), blockF = lanes * gemm::directNvMax();
  const int64_t fblocks = (g.f + blockF - 1) / blockF, fpad = (g.f + lanes - 1) / lanes * lanes;
  // Row ranges of at most 96 rows: long enough for full tiles, short enough
  // that a range's running sums stay in L1 across a chunk.
  const int64_t kparts = (K + 95) / 96, klen = (K + kparts - 1) / kparts, items = fblocks * kparts;
  // Per group: the running sums [fpad·K] (block b at b·blockF·K, as [k][width]), then db's [fpad].
  const int64_t stride = fpad * K + fpad;
  const int64_t want = std::clamp<int64_t>((int64_t(1) << 19) / stride, 2, 8);
  const int64_t per = (g.n + want - 1) / want, groups = (g.n + per - 1) / per;
  // Chunks of about kGradChunk positions.
  const int64_t chunk = std::min<int64_t>(per, std::max<int64_t>(1, kGradChunk / std::max<int64_t>(P, 1)));
  // Every element read is written first: each group starts with first set.
  std::unique_ptr<float[]> part(new float[size_t(groups * stride)]);
  parallelFor(groups * items, 1, [&](int64_t i0, int64_t i1) {
    float* buf = directPadBuffer(size_t(chunk * ((padded ? img : 0) + P * fpad)));
    float* dyT = buf + (padded ? chunk * img : 0);
    if (l.phased) zeroFloats(buf, chunk * img);
    for (int64_t q = i0 / items; q * items < i1; ++q) {
      const int64_t j0 = std::max(i0, q * items) - q * items, j1 = std::min(i1, (q + 1) * items) - q * items;
      float* gp = part.get() + q * stride;
      float* gdb = gp + fpad * K;
      const int64_t nq0 = q * per, nq1 = std::min(g.n, (q + 1) * per);
      for (int64_t n0 = nq0; n0 < nq1; n0 += chunk) {
        const int64_t nc = std::min(chunk, nq1 - n0);
        const float* in = x + n0 * g.c * g.h * g.w;
        if (padded) {
          for (int64_t b = 0; b < nc; ++b)
            directCopy(g, l, in + b * g.c * g.h * g.w, buf + b * img);
          in = buf;
        }
        // dy^T block by block, [block][n][p][width]: each block's tiles
        // stream a dense array rather than every other pair of lines.
        for (int64_t f0 = 0; f0 < g.f; f0 += blockF) {
          const int64_t nf = std::min(blockF, g.f - f0), width = (nf + lanes - 1) / lanes * lanes;
          for (int64_t b = 0; b < nc; ++b)
            gemm::transposeRows(dy + ((n0 + b) * g.f + f0) * P, nf, width, P, P, dyT + (chunk * f0 + b * width) * P,
                                width);
        }
        for (int64_t it = j0; it < j1; ++it) {
          const int64_t fb = it / kparts, k0 = it % kparts * klen, f0 = fb * blockF;
          const int nf = int(std::min(blockF, g.f - f0));
          const int64_t width = (nf + lanes - 1) / lanes * lanes;
          const float* dyb = dyT + chunk * f0 * P;
          gemm::DirectGradRows r{in,   padded ? img : g.c * g.h * g.w, off.data() + k0, std::min(klen, K - k0),
                                 dyb,  width, nf, nc, OH, OW, g.sh * l.stride, l.sw, gp + f0 * K + k0 * width,
                                 n0 == nq0, nullptr, K};
          gemm::directGradRows(r);
          if (db && k0 == 0) {
            float* s = gdb + f0;
            if (n0 == nq0) std::fill(s, s + nf, 0.0f);
            addRows(s, dyb, nc * P, width, nf);
          }
        }
      }
    }
  });
  // Group 0's sums += each later group's, in group order (vectors along
  // the filters), then into dw [f][k].
  parallelFor(K, 1, [&](int64_t ka, int64_t kz) {
    for (int64_t f0 = 0; f0 < g.f; f0 += blockF) {
      const int64_t nf = std::min(blockF, g.f - f0), width = (nf + lanes - 1) / lanes * lanes;
      float* s0 = part.get() + f0 * K;
      for (int64_t q = 1; q < groups; ++q) {
        const float* sq = s0 + q * stride;
        for (int64_t i = ka * width; i < kz * width; ++i) s0[i] += sq[i];
      }
      for (int64_t f = 0; f < nf; ++f)
        for (int64_t k = ka; k < kz; ++k) dw[(f0 + f) * K + k] = s0[k * width + f];
    }
  });
  if (db)
    for (int64_t f = 0; f < g.f; ++f) {
      float sum = part[size_t(fpad * K + f)];
      for (int64_t q = 1; q < groups; ++q) sum += part[size_t(q * stride + fpad * K + f)];
      db[f] = sum;
    }
}

}  // namespace nnc
