// What every convolution kernel of the runtime shares: the geometry of the
// FORWARD convolution (ConvGeom), the algorithms that compute it
// (ConvAlgo) and the three directions a train step needs (ConvDir).
//
// Image x [n, c, h, w], weight w [f, c/groups, kh, kw], output
// y [n, f, oh, ow] with oh = (h + 2·ph − kh)/sh + 1 and ow likewise. Filter
// f' belongs to group g = f'/(f/groups), whose input channels are
// [g·c/groups, (g+1)·c/groups). The patch index k = (c'·kh + i)·kw + j runs
// over one group's channels c' and the window (i, j).
#pragma once
#include <cstdint>

namespace nnc {

struct ConvGeom {
  int64_t n = 1, c = 1, h = 1, w = 1;  // the image [n, c, h, w]
  int64_t f = 1, kh = 1, kw = 1;       // the weight [f, c/groups, kh, kw]
  int64_t sh = 1, sw = 1, ph = 0, pw = 0;
  int64_t groups = 1;

  // Window positions per axis; 0 when the window does not fit the padded image.
  int64_t oh() const { return h + 2 * ph < kh ? 0 : (h + 2 * ph - kh) / sh + 1; }
  int64_t ow() const { return w + 2 * pw < kw ? 0 : (w + 2 * pw - kw) / sw + 1; }
  int64_t patchSize() const { return c / groups * kh * kw; }  // K of one group's GEMM
  // Multiply-adds of the direct method (the FLOP count benchmarks divide by is twice this).
  double macs() const { return double(n) * double(f) * double(patchSize()) * double(oh()) * double(ow()); }
};

// How a convolution is computed. The numbers are the `algo` argument of the
// extern "C" calls (runtime/conv.h) and stay fixed.
//   Auto       the runtime chooses (convAlgoChoose); the compiler passes a concrete one
//   Gemm       implicit im2col: the GEMM packs windows straight from the image (conv.cpp)
//   Direct     register-blocked direct convolution (conv_direct.h)
//   Winograd   F(4×4, 3×3) for stride-1 3×3 windows (conv_winograd.h)
//   Depthwise  one filter per channel (groups = c = f/multiplier) (conv_depthwise.h)
enum class ConvAlgo : int { Auto = 0, Gemm = 1, Direct = 2, Winograd = 3, Depthwise = 4 };
inline constexpr int kConvAlgoCount = 5;

// Forward: y from x and w. InputGrad: dx from dy and w (nnc's conv_transpose2d).
// WeightGrad: dw from x and dy.
enum class ConvDir : int { Forward = 0, InputGrad = 1, WeightGrad = 2 };

// "auto", "gemm", "direct", "winograd", "depthwise"; null for a number out of range.
const char* convAlgoName(ConvAlgo a);
// The algorithm a name names; false for none.
bool convAlgoFromName(const char* name, ConvAlgo* out);

// Whether `a` can compute direction d of g (act and pool only matter
// forward: the activation and the fused max-pooling, 0 for none). Gemm fits
// everything; Auto fits everything.
bool convAlgoFits(ConvAlgo a, const ConvGeom& g, ConvDir d, int act = 0, int64_t pool = 0);

// The runtime's choice for direction d of g: a function of the shapes only,
// never of the thread count, so a compiled program computes the same bits
// on any number of threads. Never Auto.
ConvAlgo convAlgoChoose(const ConvGeom& g, ConvDir d, int act = 0, int64_t pool = 0);

}  // namespace nnc
