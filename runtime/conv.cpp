// Implicit-im2col convolutions (runtime/conv.h): the GEMM reads windows
// straight from the image through gemm::Patches; only the input gradient
// holds columns, a band of them at a time. Small windows skip the GEMM for
// the direct kernels (gemm::Direct, gemm::DirectGrad).
#include "runtime/conv.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "runtime/conv_depthwise.h"
#include "runtime/conv_direct.h"
#include "runtime/conv_winograd.h"
#include "runtime/gemm_kernel.h"
#include "runtime/parallel.h"

namespace nnc {

namespace {

// The patch source of one group of one image (x points at its first channel).
gemm::Patches patchesOf(const ConvGeom& g, const float* x, bool transposed) {
  return gemm::Patches{x, g.c / g.groups, g.h, g.w, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.ow(), transposed};
}

// Runs body(b, serial) for every item b (an image, a chunk of images): in
// parallel over items when there are at least as many as threads (serial
// true: each item's GEMMs then stay on their thread), else one item after
// the other, each item's GEMMs using the threads. Either way each item is
// computed the same way, so the results do not depend on the thread count.
template <typename Body>
void forItems(int64_t items, const Body& body) {
  if (items >= threadCount() && threadCount() > 1) {
    parallelFor(items, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) body(b, true);
    });
  } else {
    for (int64_t b = 0; b < items; ++b) body(b, false);
  }
}

// A buffer owned by the calling thread, reused across calls.
float* threadBuffer(size_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < floats) buf.resize(floats);
  return buf.data();
}

// How many partial weight gradients conv2dGradWeight sums the batch into: a
// function of the shapes only (never of the thread count), at most 64 (the
// chunks are what threads share), their extra copies of dw within about
// 16 MB.
int64_t weightGradChunks(const ConvGeom& g) {
  const int64_t size = std::max<int64_t>(g.f * g.patchSize(), 1);
  return std::clamp<int64_t>(1 + (int64_t(4) << 20) / size, 1, std::min<int64_t>(g.n, 64));
}

// Small windows over unpadded images at stride 1 (simple_convnet's 5×5 on
// one channel: K = 25) go direct (gemm::Direct): with K that short, packing
// the patches costs as much as the products. A function of the shapes only,
// as every choice here.
bool smallDirectFits(const ConvGeom& g, int act) {
  return g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && act <= kActRelu && g.patchSize() <= 64 && g.ow() >= 8;
}

// The pooling of conv2d(…, pool): y[f, py, px] = the max over the pool×pool
// window of z[f, ·, ·] (rows of z from the window's first, ow to a row), then
// + bias[f] and act. max commutes with adding a constant and with relu (both
// monotone, also in rounding), so this equals pooling act(z + bias).
// Compiled for the widest vectors the CPU has, as stepProduct below.
NNC_WIDEST_VECTORS void poolRows(const float* z, int64_t nf, int64_t ldz, int64_t ow, int64_t pool,
                                 const float* bias, int act, float* y, int64_t ldy) {
  const int64_t pw = ow / pool;
  if (pool == 2) {  // the common case, written so that it vectorizes
    for (int64_t f = 0; f < nf; ++f) {
      const float* __restrict r0 = z + f * ldz;
      const float* __restrict r1 = r0 + ow;
      float* __restrict out = y + f * ldy;
      const float b = bias ? bias[f] : 0.0f;
      for (int64_t px = 0; px < pw; ++px) {
        const float m = maxOrNaN(maxOrNaN(r0[2 * px], r0[2 * px + 1]), maxOrNaN(r1[2 * px], r1[2 * px + 1])) + b;
        out[px] = act == kActRelu ? reluOf(m) : m;
      }
    }
    return;
  }
  for (int64_t f = 0; f < nf; ++f)
    for (int64_t px = 0; px < pw; ++px) {
      float m = z[f * ldz + px * pool];
      for (int64_t i = 0; i < pool; ++i)
        for (int64_t j = 0; j < pool; ++j) m = maxOrNaN(m, z[f * ldz + i * ow + px * pool + j]);
      if (bias) m += bias[f];
      y[f * ldy + px] = act == kActRelu ? reluOf(m) : m;
    }
}

void gemmConv2d(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act, int64_t pool) {
  const int64_t s = g.oh() * g.ow(), cg = g.c / g.groups, fg = g.f / g.groups, k = g.patchSize();
  if (g.n <= 0 || g.f <= 0 || s <= 0) return;
  const bool direct = smallDirectFits(g, act);
  if (pool > 0) {
    // Per image and group: z, the convolution before bias and act, a band
    // of 8 filters by one row of windows at a time (direct, into a buffer
    // that stays in L1) or whole (the GEMM), then its windows' maxima.
    const int64_t ph = g.oh() / pool, pw = g.ow() / pool;
    forItems(g.n, [&](int64_t b, bool serial) {
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        const float* img = x + (b * g.c + gi * cg) * g.h * g.w;
        const float* wg = w + gi * fg * k;
        const float* bg = bias ? bias + gi * fg : nullptr;
        float* out = y + (b * g.f + gi * fg) * ph * pw;
        if (direct) {
          const int64_t band = 8;
          float* z = threadBuffer(size_t(band * pool * g.ow()));
          for (int64_t f0 = 0; f0 < fg; f0 += band) {
            const int64_t nf = std::min(band, fg - f0);
            for (int64_t py = 0; py < ph; ++py) {
              gemm::direct(gemm::Direct{img, wg + f0 * k, nullptr, z, cg, g.h, g.w, nf, g.kh, g.kw, py * pool,
                                        (py + 1) * pool, pool * g.ow(), 0});
              poolRows(z, nf, pool * g.ow(), g.ow(), pool, bg ? bg + f0 : nullptr, act, out + f0 * ph * pw + py * pw,
                       ph * pw);
            }
          }
        } else {
          float* z = threadBuffer(size_t(fg * s));
          const gemm::Patches p = patchesOf(g, img, false);
          gemm::Args a{false, false, false, fg, s, k, wg, k, nullptr, 0, z, s, 0};
          a.patch = &p;
          a.serial = serial;
          gemm::run(a);
          for (int64_t py = 0; py < ph; ++py)
            poolRows(z + py * pool * g.ow(), fg, s, g.ow(), pool, bg, act, out + py * pw, ph * pw);
        }
      }
    });
    return;
  }
  if (direct) {
    forItems(g.n, [&](int64_t b, bool) {
      for (int64_t gi = 0; gi < g.groups; ++gi)
        gemm::direct(gemm::Direct{x + (b * g.c + gi * cg) * g.h * g.w, w + gi * fg * k, bias ? bias + gi * fg : nullptr,
                                  y + (b * g.f + gi * fg) * s, cg, g.h, g.w, fg, g.kh, g.kw, 0, g.oh(), s, act});
    });
    return;
  }
  forItems(g.n, [&](int64_t b, bool serial) {
    for (int64_t gi = 0; gi < g.groups; ++gi) {
      const gemm::Patches p = patchesOf(g, x + (b * g.c + gi * cg) * g.h * g.w, false);
      gemm::Args a{false, false, false, fg, s, k, w + gi * fg * k, k, nullptr, 0, y + (b * g.f + gi * fg) * s, s, 0};
      a.patch = &p;
      a.bias = bias ? bias + gi * fg : nullptr;
      a.biasKind = bias ? 2 : 0;
      a.act = act;
      a.serial = serial;
      gemm::run(a);
    }
  });
}

void gemmConvWeightGrad(const ConvGeom& g, const float* x, const float* dy, float* dw) {
  const int64_t s = g.oh() * g.ow(), cg = g.c / g.groups, fg = g.f / g.groups, k = g.patchSize();
  const int64_t size = g.f * k;
  if (size <= 0) return;
  if (g.n <= 0 || s <= 0) {
    std::fill(dw, dw + size, 0.0f);
    return;
  }
  if (g.groups == 1 && smallDirectFits(g, kActNone) && gemm::lanes() > 1) {
    // Direct: each chunk of images sums into its own lane-wise partial
    // [F·K, lanes]; the partials, then the lanes, are added in order.
    const int64_t chunks = std::min<int64_t>(g.n, 16), lanes = gemm::lanes(), part = size * lanes;
    float* partials = threadBuffer(size_t(chunks * part));
    std::fill(partials, partials + chunks * part, 0.0f);
    std::atomic<bool> done{true};  // false where the instruction set has no direct kernel
    forItems(chunks, [&](int64_t q, bool) {
      const int64_t b0 = g.n * q / chunks, b1 = g.n * (q + 1) / chunks;
      if (!gemm::directGrad(gemm::DirectGrad{x + b0 * g.c * g.h * g.w, dy + b0 * g.f * s, partials + q * part, b1 - b0,
                                             g.c, g.h, g.w, g.f, g.kh, g.kw}))
        done = false;
    });
    if (done) {
      for (int64_t q = 1; q < chunks; ++q) {
        const float* __restrict src = partials + q * part;
        float* __restrict dst = partials;
        for (int64_t e = 0; e < part; ++e) dst[e] += src[e];
      }
      for (int64_t e = 0; e < size; ++e) {
        float sum = 0.0f;
        for (int64_t l = 0; l < lanes; ++l) sum += partials[e * lanes + l];
        dw[e] = sum;
      }
      return;
    }
  }
  const int64_t chunks = weightGradChunks(g);
  float* partials = chunks > 1 ? threadBuffer(size_t((chunks - 1) * size)) : nullptr;
  // Chunk q sums images [n·q/chunks, n·(q+1)/chunks) into its own dW, in
  // image order, each image's product added onto the last.
  forItems(chunks, [&](int64_t q, bool serial) {
    float* out = q == 0 ? dw : partials + (q - 1) * size;
    const int64_t b0 = g.n * q / chunks, b1 = g.n * (q + 1) / chunks;
    for (int64_t b = b0; b < b1; ++b)
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        const gemm::Patches p = patchesOf(g, x + (b * g.c + gi * cg) * g.h * g.w, true);
        gemm::Args a{false, false, b > b0, fg, k, s, dy + (b * g.f + gi * fg) * s, s, nullptr, 0,
                     out + gi * fg * k, k, 0};
        a.patch = &p;
        a.serial = serial;
        gemm::run(a);
      }
  });
  if (chunks > 1)
    parallelFor(size, 4096, [&](int64_t e0, int64_t e1) {
      for (int64_t q = 1; q < chunks; ++q) {
        const float* __restrict part = partials + (q - 1) * size;
        for (int64_t e = e0; e < e1; ++e) dw[e] += part[e];
      }
    });
}

void gemmConvInputGrad(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx) {
  const int64_t s = g.oh() * g.ow(), cg = g.c / g.groups, fg = g.f / g.groups, k = g.patchSize();
  const int64_t plane = g.h * g.w;
  if (g.n <= 0 || g.c <= 0 || plane <= 0) return;
  // Bands of output positions whose columns [K, band] fill about 256 KB,
  // whole tile widths of at least 32 positions.
  const int64_t band = std::min(s, std::max<int64_t>(32, (int64_t(1) << 16) / std::max<int64_t>(k, 1) / 32 * 32));
  forItems(g.n, [&](int64_t b, bool serial) {
    float* img = dx + b * g.c * plane;
    for (int64_t c = 0; c < g.c; ++c) std::fill(img + c * plane, img + (c + 1) * plane, bias ? bias[c] : 0.0f);
    if (s <= 0 || fg <= 0) return;
    float* col = threadBuffer(size_t(k * band));
    for (int64_t gi = 0; gi < g.groups; ++gi)
      for (int64_t p0 = 0; p0 < s; p0 += band) {
        const int64_t bw = std::min(band, s - p0);
        // col[K, bw] = W_gᵀ · dy_n,g[:, p0 : p0 + bw]; W_g [fg, K] read transposed in place.
        gemm::Args a{true, false, false, k, bw, fg, w + gi * fg * k, k, dy + (b * g.f + gi * fg) * s + p0, s, col, bw, 0};
        a.serial = serial;
        gemm::run(a);
        gemm::addPatches(patchesOf(g, nullptr, false), img + gi * cg * plane, col, bw, p0, bw);
      }
  });
}

}  // namespace

const char* convAlgoName(ConvAlgo a) {
  static const char* const names[kConvAlgoCount] = {"auto", "gemm", "direct", "winograd", "depthwise"};
  const int i = int(a);
  return i >= 0 && i < kConvAlgoCount ? names[i] : nullptr;
}

bool convAlgoFromName(const char* name, ConvAlgo* out) {
  for (int i = 0; i < kConvAlgoCount; ++i)
    if (std::strcmp(convAlgoName(ConvAlgo(i)), name) == 0) {
      *out = ConvAlgo(i);
      return true;
    }
  return false;
}

bool convAlgoFits(ConvAlgo a, const ConvGeom& g, ConvDir d, int act, int64_t pool) {
  // A fused max-pooling follows any algorithm (conv2d pools its rows); it
  // takes act none or relu.
  if (pool > 0 && act != kActNone && act != kActRelu) return a == ConvAlgo::Gemm || a == ConvAlgo::Auto;
  switch (a) {
    case ConvAlgo::Auto:
    case ConvAlgo::Gemm: return true;
    case ConvAlgo::Direct: return directFits(g, d, act);
    case ConvAlgo::Winograd: return winogradFits(g, d, act);
    case ConvAlgo::Depthwise: return depthwiseFits(g, d, act);
  }
  return false;
}

// From the conv-layer table (bench/bench_conv.cpp, docs/performance.md):
// depthwise wherever each channel has its own filters (5–9× the GEMM);
// Winograd for stride-1 3×3 layers of at least 32 channels each way, where
// its 36 products have enough channels (1.3–1.7× the direct kernel in each
// direction on 32→32 @ 28², 64→64 @ 14² and 128→128 @ 7²; with 1 input
// channel it is 2.5× slower); the direct kernel wherever it fits (1.2–2×
// the GEMM on every shape it takes); the GEMM for the rest.
ConvAlgo convAlgoChoose(const ConvGeom& g, ConvDir d, int act, int64_t pool) {
  if (g.groups == g.c && g.c > 1 && convAlgoFits(ConvAlgo::Depthwise, g, d, act, pool)) return ConvAlgo::Depthwise;
  if (g.c >= 32 && g.f >= 32 && convAlgoFits(ConvAlgo::Winograd, g, d, act, pool))
    return ConvAlgo::Winograd;
  if (convAlgoFits(ConvAlgo::Direct, g, d, act, pool)) return ConvAlgo::Direct;
  return ConvAlgo::Gemm;
}

namespace {

// Auto resolved, and a forced algorithm that cannot compute the shapes
// replaced by the GEMM (which computes every one).
ConvAlgo resolve(ConvAlgo a, const ConvGeom& g, ConvDir d, int act = kActNone, int64_t pool = 0) {
  if (a == ConvAlgo::Auto) a = convAlgoChoose(g, d, act, pool);
  return convAlgoFits(a, g, d, act, pool) ? a : ConvAlgo::Gemm;
}

// The elementwise finishing passes over a chunk in cache, compiled for the
// widest vectors the CPU has (this file is otherwise built for the baseline
// instruction set, where they ran one float at a time).
NNC_WIDEST_VECTORS void stepProduct(float* __restrict d, const float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) d[i] = d[i] * (y[i] > 0.0f ? 1.0f : 0.0f);
}

NNC_WIDEST_VECTORS void residualSum(float* __restrict y, const float* __restrict z, int64_t n, bool relu) {
  if (relu)
    for (int64_t i = 0; i < n; ++i) y[i] = reluOf(y[i] + z[i]);
  else
    for (int64_t i = 0; i < n; ++i) y[i] = y[i] + z[i];
}

// Images per chunk of n where a result of `perImage` floats an image is
// finished while in cache (pooled, a residual sum added, a relu mask
// applied): about 2 MB of results, a function of the shapes only.
int64_t imagesPerChunk(int64_t perImage, int64_t n) {
  return std::clamp<int64_t>((int64_t(1) << 19) / std::max<int64_t>(1, perImage), 1, std::max<int64_t>(1, n));
}

// The forward result's chunks.
int64_t imagesPerChunk(const ConvGeom& g) { return imagesPerChunk(g.f * g.oh() * g.ow(), g.n); }

// Forward by algorithm a, without pooling.
void forwardBy(ConvAlgo a, const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act) {
  switch (a) {
    case ConvAlgo::Direct: directConv2d(g, x, w, bias, y, act); return;
    case ConvAlgo::Winograd: winogradConv2d(g, x, w, bias, y, act); return;
    case ConvAlgo::Depthwise: depthwiseConv2d(g, x, w, bias, y, act); return;
    default: gemmConv2d(g, x, w, bias, y, act, 0); return;
  }
}

}  // namespace

void conv2d(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act, int64_t pool,
            ConvAlgo algo) {
  const ConvAlgo a = resolve(algo, g, ConvDir::Forward, act, pool);
  if (a == ConvAlgo::Gemm) return gemmConv2d(g, x, w, bias, y, act, pool);
  if (pool <= 0) return forwardBy(a, g, x, w, bias, y, act);
  if (pool == 2 && a == ConvAlgo::Winograd) return winogradConv2dPool2(g, x, w, bias, y, act);
  // Pooled: the convolution (before bias and act) of a chunk of images into
  // a buffer of this thread, then its windows' maxima, bias and act
  // (poolRows). Chunks of several images (about 2 MB of results, a function
  // of the shapes only) keep Winograd's GEMMs and the direct kernel's
  // weight panels as wide as unpooled.
  const int64_t s = g.oh() * g.ow(), ph = g.oh() / pool, pw = g.ow() / pool;
  if (g.n <= 0 || g.f <= 0 || s <= 0) return;
  const int64_t per = imagesPerChunk(g);
  const int64_t chunks = (g.n + per - 1) / per;
  forItems(chunks, [&](int64_t q, bool) {
    ConvGeom part = g;
    const int64_t b0 = q * per;
    part.n = std::min(per, g.n - b0);
    float* z = threadBuffer(size_t(part.n * g.f * s));
    forwardBy(a, part, x + b0 * g.c * g.h * g.w, w, nullptr, z, kActNone);
    for (int64_t b = 0; b < part.n; ++b)
      for (int64_t py = 0; py < ph; ++py)
        poolRows(z + b * g.f * s + py * pool * g.ow(), g.f, s, g.ow(), pool, bias, act,
                 y + (b0 + b) * g.f * ph * pw + py * pw, ph * pw);
  });
}

void conv2dResidual(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* z, float* y,
                    int act, ConvAlgo algo) {
  const ConvAlgo a = resolve(algo, g, ConvDir::Forward, act);
  if (a == ConvAlgo::Winograd) return winogradConv2dResidual(g, x, w, bias, z, y, act);
  const int64_t img = g.f * g.oh() * g.ow();
  if (g.n <= 0 || img <= 0) return;
  const int64_t per = imagesPerChunk(g);
  for (int64_t b0 = 0; b0 < g.n; b0 += per) {
    ConvGeom part = g;
    part.n = std::min(per, g.n - b0);
    float* __restrict yc = y + b0 * img;
    const float* __restrict zc = z + b0 * img;
    forwardBy(a, part, x + b0 * g.c * g.h * g.w, w, bias, yc, kActNone);
    parallelFor(part.n * img, 16384,
                [&](int64_t i0, int64_t i1) { residualSum(yc + i0, zc + i0, i1 - i0, act == kActRelu); });
  }
}

void conv2dGradWeight(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db, ConvAlgo algo) {
  switch (resolve(algo, g, ConvDir::WeightGrad)) {
    case ConvAlgo::Direct: return directConvWeightGrad(g, x, dy, dw, db);
    case ConvAlgo::Winograd: return winogradConvWeightGrad(g, x, dy, dw, db);
    case ConvAlgo::Depthwise: return depthwiseConvWeightGrad(g, x, dy, dw, db);
    default: break;
  }
  gemmConvWeightGrad(g, x, dy, dw);
  if (!db) return;
  // db[f] = Σ_n Σ_p dy[n, f, p], images in order.
  const int64_t s = g.oh() * g.ow();
  parallelFor(g.f, 1, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      float sum = 0.0f;
      for (int64_t b = 0; b < g.n; ++b) {
        const float* r = dy + (b * g.f + f) * s;
        for (int64_t p = 0; p < s; ++p) sum += r[p];
      }
      db[f] = sum;
    }
  });
}

void convTranspose2d(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx, ConvAlgo algo) {
  switch (resolve(algo, g, ConvDir::InputGrad)) {
    case ConvAlgo::Direct: return directConvInputGrad(g, dy, w, bias, dx);
    case ConvAlgo::Winograd: return winogradConvInputGrad(g, dy, w, bias, dx);
    case ConvAlgo::Depthwise: return depthwiseConvInputGrad(g, dy, w, bias, dx);
    default: return gemmConvInputGrad(g, dy, w, bias, dx);
  }
}

// The input gradient in chunks of images (about 2 MB of dx each, a function
// of the shapes), each multiplied by step(y) while it is in cache: a
// product, not a select, so an inf or NaN gradient where y <= 0 gives NaN,
// as mul(conv_transpose2d(dy, W), step(y)) does.
void convTranspose2dMasked(const ConvGeom& g, const float* dy, const float* w, const float* y, float* dx,
                           ConvAlgo algo) {
  const int64_t img = g.c * g.h * g.w, dyImg = g.f * g.oh() * g.ow();
  if (g.n <= 0 || img <= 0) return;
  const int64_t per = imagesPerChunk(img, g.n);
  for (int64_t b0 = 0; b0 < g.n; b0 += per) {
    ConvGeom part = g;
    part.n = std::min(per, g.n - b0);
    float* __restrict d = dx + b0 * img;
    const float* __restrict m = y + b0 * img;
    convTranspose2d(part, dy + b0 * dyImg, w, nullptr, d, algo);
    parallelFor(part.n * img, 16384, [&](int64_t i0, int64_t i1) { stepProduct(d + i0, m + i0, i1 - i0); });
  }
}

}  // namespace nnc

namespace {

nnc::ConvGeom geomOf(int64_t N, int64_t C, int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH,
                     int64_t SW, int64_t PH, int64_t PW, int64_t groups) {
  return nnc::ConvGeom{N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups};
}

}  // namespace

extern "C" void nnc_conv2d(const float* x, const float* w, const float* bias, float* y, int64_t N, int64_t C,
                           int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH,
                           int64_t PW, int64_t groups, int64_t has_bias, int64_t act, int64_t pool, int64_t algo) {
  nnc::conv2d(geomOf(N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups), x, w, has_bias ? bias : nullptr, y, int(act),
              pool, nnc::ConvAlgo(algo));
}

extern "C" void nnc_conv2d_residual(const float* x, const float* w, const float* bias, const float* z, float* y,
                                    int64_t N, int64_t C, int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW,
                                    int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t groups, int64_t has_bias,
                                    int64_t act, int64_t algo) {
  nnc::conv2dResidual(geomOf(N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups), x, w, has_bias ? bias : nullptr, z, y,
                      int(act), nnc::ConvAlgo(algo));
}

extern "C" void nnc_conv2d_grad_weight(const float* x, const float* dy, float* dw, float* db, int64_t N, int64_t C,
                                       int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t SW,
                                       int64_t PH, int64_t PW, int64_t groups, int64_t has_db, int64_t algo) {
  nnc::conv2dGradWeight(geomOf(N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups), x, dy, dw, has_db ? db : nullptr,
                        nnc::ConvAlgo(algo));
}

extern "C" void nnc_conv_transpose2d(const float* dy, const float* w, const float* bias, float* dx, int64_t N,
                                     int64_t C, int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH,
                                     int64_t SW, int64_t PH, int64_t PW, int64_t groups, int64_t has_bias,
                                     int64_t algo) {
  nnc::convTranspose2d(geomOf(N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups), dy, w, has_bias ? bias : nullptr, dx,
                       nnc::ConvAlgo(algo));
}

extern "C" void nnc_conv_transpose2d_masked(const float* dy, const float* w, const float* y, float* dx, int64_t N,
                                            int64_t C, int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW,
                                            int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t groups,
                                            int64_t algo) {
  nnc::convTranspose2dMasked(geomOf(N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups), dy, w, y, dx,
                             nnc::ConvAlgo(algo));
}
