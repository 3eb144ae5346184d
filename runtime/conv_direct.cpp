// Register-blocked direct convolution (conv_direct.h). The tiles are the
// instruction set's (gemm::DirectRows, runtime/conv_direct_tiles.h); here
// the per-call weight packing, the per-image padding and the threading.
//
// Forward: each image is copied into a zero-padded [C][Hp][Wp] buffer of
// this thread (read in place when there is no padding), so that every patch
// element k = (c, i, j) sits at the constant offset c·Hp·Wp + i·Wp + j from
// its window's start; the weights are repacked once per call into panels
// [F / block][K][block] of up to directNvMax vectors of filters. Work items
// are (image, filter block) pairs; every output element is one tile's sum in
// k order, whichever thread computes it, so results do not depend on the
// thread count.
//
// Input gradient (stride 1): the forward convolution of dy with the flipped,
// transposed weights w'[c, f, kh−1−i, kw−1−j] and padding kh−1−ph, which
// gives back an H×W map.
#include "runtime/conv_direct.h"

#include <algorithm>
#include <cstring>
#include <limits>
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

// Image [C, H, W] into [C, H + 2·ph, W + 2·pw] with zeros around.
void directPad(const float* x, int64_t C, int64_t H, int64_t W, int64_t ph, int64_t pw, float* out) {
  const int64_t Wp = W + 2 * pw, Hp = H + 2 * ph;
  for (int64_t c = 0; c < C; ++c) {
    float* o = out + c * Hp * Wp;
    std::memset(o, 0, sizeof(float) * size_t(ph * Wp));
    for (int64_t y = 0; y < H; ++y) {
      float* row = o + (ph + y) * Wp;
      std::memset(row, 0, sizeof(float) * size_t(pw));
      std::memcpy(row + pw, x + (c * H + y) * W, sizeof(float) * size_t(W));
      std::memset(row + pw + W, 0, sizeof(float) * size_t(pw));
    }
    std::memset(o + (ph + H) * Wp, 0, sizeof(float) * size_t(ph * Wp));
  }
}

// off[k] for k = (c, i, j): c·Hp·Wp + i·Wp + j in the padded image.
std::vector<int32_t> directOffsets(const ConvGeom& g) {
  const int64_t Wp = g.w + 2 * g.pw, plane = (g.h + 2 * g.ph) * Wp;
  std::vector<int32_t> off(size_t(std::max<int64_t>(g.patchSize(), 1)));
  for (int64_t c = 0; c < g.c; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) off[size_t((c * g.kh + i) * g.kw + j)] = int32_t(c * plane + i * Wp + j);
  return off;
}

// The forward convolution of g (groups 1, sw 1 or 2) with weights w [F, K].
void directForward(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act) {
  const int64_t OH = g.oh(), OW = g.ow(), K = g.patchSize();
  if (g.n <= 0 || g.f <= 0 || OH <= 0 || OW <= 0) return;
  const int64_t Hp = g.h + 2 * g.ph, Wp = g.w + 2 * g.pw, plane = Hp * Wp;
  const bool padded = g.ph != 0 || g.pw != 0;
  const std::vector<int32_t> off = directOffsets(g);
  const int64_t lanes = gemm::lanes(), blockF = lanes * gemm::directNvMax();
  const int64_t blocks = (g.f + blockF - 1) / blockF;
  // Block b starts at f0·K: every block before it is blockF wide.
  std::vector<float> wp(size_t((g.f + lanes) * K));
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t f0 = b * blockF, nf = std::min(blockF, g.f - f0), width = (nf + lanes - 1) / lanes * lanes;
    float* panel = wp.data() + f0 * K;
    for (int64_t k = 0; k < K; ++k)
      for (int64_t l = 0; l < width; ++l) panel[k * width + l] = l < nf ? w[(f0 + l) * K + k] : 0.0f;
  }
  const int64_t ys = OH * OW;
  // Slices of the weight panel of about 16 KB (L1 beside the image rows).
  const int64_t kmax = std::max<int64_t>(16, 4096 / blockF), slices = (K + kmax - 1) / kmax;
  const int64_t kc = (K + slices - 1) / slices;
  parallelFor(g.n * blocks, 1, [&](int64_t i0, int64_t i1) {
    float* part = directPadBuffer(size_t((padded ? g.c * plane : 0) + ys * blockF));
    float* buf = padded ? part + ys * blockF : nullptr;
    int64_t have = -1;
    for (int64_t it = i0; it < i1; ++it) {
      const int64_t n = it / blocks, b = it % blocks, f0 = b * blockF;
      const float* img = x + n * g.c * g.h * g.w;
      if (padded && have != n) {
        directPad(img, g.c, g.h, g.w, g.ph, g.pw, buf);
        have = n;
      }
      gemm::DirectRows r{padded ? buf : img, off.data(), K, wp.data() + f0 * K, bias ? bias + f0 : nullptr,
                         act == kActRelu, int(std::min(blockF, g.f - f0)), y + (n * g.f + f0) * ys, ys, OH, OW,
                         g.sh * Wp, g.sw, kc, part};
      gemm::directRows(r);
    }
  });
}

}  // namespace

// Groups of one only (depthwise and grouped shapes are other algorithms'),
// window strides of 1 or 2 along a row (the tiles are instantiated for
// those), activations the tiles apply (none, relu), offsets within int32.
// The input gradient only at stride 1 with padding below the window (its
// transposed convolution then has a padding of its own ≥ 0), and with at
// least 8 input channels: they are its filters, the vector lanes.
bool directFits(const ConvGeom& g, ConvDir d, int act) {
  if (g.groups != 1 || g.n <= 0 || g.c <= 0 || g.f <= 0 || g.oh() <= 0 || g.ow() <= 0) return false;
  if (double(g.c) * double(g.h + 2 * g.ph + g.kh) * double(g.w + 2 * g.pw + g.kw) >
      double(std::numeric_limits<int32_t>::max()))
    return false;
  switch (d) {
    case ConvDir::Forward: return (act == kActNone || act == kActRelu) && (g.sw == 1 || g.sw == 2) && g.sh >= 1;
    case ConvDir::InputGrad: return g.c >= 8 && g.sh == 1 && g.sw == 1 && g.ph < g.kh && g.pw < g.kw;
    case ConvDir::WeightGrad: return g.sw == 1 || g.sw == 2;
  }
  return false;
}

void directConv2d(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act) {
  directForward(g, x, w, bias, y, act);
}

void directConvInputGrad(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx) {
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

// Images in chunks of a fixed size (the shapes choose it, never the thread
// count): each chunk is padded and its dy transposed to [n][p][f] once per
// thread, then every (filter block, row range) item of the thread adds the
// chunk's sums to its running sums, which stay in the tile layout until the
// last chunk stores them. Each dw element is one chain over images and
// positions in order; db[f] is summed beside it, by the thread owning the
// filter block's first rows.
void directConvWeightGrad(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db) {
  const int64_t OH = g.oh(), OW = g.ow(), K = g.patchSize(), P = OH * OW;
  const int64_t Hp = g.h + 2 * g.ph, Wp = g.w + 2 * g.pw, plane = Hp * Wp, img = g.c * plane;
  const bool padded = g.ph != 0 || g.pw != 0;
  const std::vector<int32_t> off = directOffsets(g);
  const int64_t lanes = gemm::lanes(), blockF = lanes * gemm::directNvMax();
  const int64_t fblocks = (g.f + blockF - 1) / blockF, fpad = (g.f + lanes - 1) / lanes * lanes;
  // Row ranges of at most 96 rows: enough items for two threads on every
  // shape of the table, long enough for full tiles.
  const int64_t kparts = (K + 95) / 96, klen = (K + kparts - 1) / kparts;
  const int64_t chunk = std::min<int64_t>(g.n, std::max<int64_t>(1, 512 / std::max<int64_t>(P, 1)));
  std::vector<float> part(size_t(fpad * K));
  parallelFor(fblocks * kparts, 1, [&](int64_t i0, int64_t i1) {
    float* buf = directPadBuffer(size_t(chunk * ((padded ? img : 0) + P * fpad)));
    float* dyT = buf + (padded ? chunk * img : 0);
    for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
      const int64_t nc = std::min(chunk, g.n - n0);
      const float* in = x + n0 * g.c * g.h * g.w;
      if (padded) {
        for (int64_t b = 0; b < nc; ++b) directPad(in + b * g.c * g.h * g.w, g.c, g.h, g.w, g.ph, g.pw, buf + b * img);
        in = buf;
      }
      for (int64_t b = 0; b < nc; ++b)
        gemm::transposeRows(dy + (n0 + b) * g.f * P, g.f, fpad, P, P, dyT + b * P * fpad, fpad);
      for (int64_t it = i0; it < i1; ++it) {
        const int64_t fb = it / kparts, k0 = it % kparts * klen, f0 = fb * blockF;
        const int nf = int(std::min(blockF, g.f - f0));
        const int64_t width = (nf + lanes - 1) / lanes * lanes;
        const bool last = n0 + nc == g.n;
        gemm::DirectGradRows r{in, padded ? img : g.c * g.h * g.w, off.data() + k0, std::min(klen, K - k0), dyT + f0,
                               fpad, nf, nc, OH, OW, g.sh * Wp, g.sw, part.data() + f0 * K + k0 * width, n0 == 0,
                               last ? dw + f0 * K + k0 : nullptr, K};
        gemm::directGradRows(r);
        if (db && k0 == 0) {
          // From dyT, f innermost: each filter's sum is still one chain over
          // images and positions in order, but the chains run side by side.
          float sum[64];  // blockF <= 64 (directNvMax · lanes)
          for (int f = 0; f < nf; ++f) sum[f] = n0 == 0 ? 0.0f : db[f0 + f];
          for (int64_t q = 0; q < nc * P; ++q) {
            const float* d = dyT + q * fpad + f0;
            for (int f = 0; f < nf; ++f) sum[f] += d[f];
          }
          std::copy(sum, sum + nf, db + f0);
        }
      }
    }
  });
}

}  // namespace nnc
