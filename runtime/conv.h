// Convolutions on NCHW images through the GEMM without an im2col buffer
// ("implicit im2col"): the GEMM packs each window straight from the image
// into its B panels (gemm_kernel.h, Patches), so the column matrix never
// exists in memory, and bias and activation are applied as each tile column
// of the output is finished. Small windows at stride 1 without padding
// (C·KH·KW <= 64, simple_convnet's 5×5 on one channel) are computed
// directly instead, forward and weight gradient, the image rows read in
// place (gemm_kernel.h, Direct and DirectGrad).
//
// Every function takes the geometry of the FORWARD convolution (ConvGeom):
// image x [n, c, h, w], weight w [f, c/groups, kh, kw], output
// y [n, f, oh, ow] with oh = (h + 2·ph − kh)/sh + 1 and ow likewise. Filter
// f' belongs to group g = f'/(f/groups), whose input channels are
// [g·c/groups, (g+1)·c/groups). The patch index k = (c'·kh + i)·kw + j runs
// over one group's channels c' and the window (i, j).
//
// Results depend only on the inputs, never on the thread count
// (runtime/parallel.h): every element is summed in a fixed order.
#pragma once
#include <cstdint>

#include "runtime/activation.h"

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
};

// y [n, f, oh, ow] = act(bias[f] + Σ_{c', i, j} w[f, c', i, j] · x[n, g·c/groups + c', oy·sh + i − ph,
// ox·sw + j − pw]) (0 outside the image); bias [f] or null for none. Per image and group one GEMM
// y_n,g [f/groups, oh·ow] = W_g [f/groups, K] · P_n,g [K, oh·ow], the weights read in place, the
// result written straight in NCHW. Parallel over images (or inside the GEMM when there are fewer
// images than threads).
//
// pool > 0 (act none or relu): max-pooling follows, pool×pool windows at stride pool, and
// y [n, f, oh/pool, ow/pool] holds only the window maxima (rows and columns past the last whole
// window are dropped, as maxpool2d's). The convolution's result never reaches memory: it is
// computed a few rows at a time into a per-thread buffer and pooled from there.
//
// Small windows over unpadded images at stride 1 (K <= 64) are computed directly
// (gemm_kernel.h, Direct), without the GEMM's packing.
void conv2d(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act,
            int64_t pool = 0);

// dw [f, c/groups, kh, kw] = Σ_n Σ_{oy, ox} dy[n, f, oy, ox] · x[n, g·c/groups + c', oy·sh + i − ph,
// ox·sw + j − pw] (overwritten). Per image and group dW_g += dy_n,g [f/groups, oh·ow] · P_n,gᵀ; the
// images are cut into a fixed number of chunks (independent of the thread count), each summed into
// its own partial dW, and the partials are added in chunk order.
void conv2dGradWeight(const ConvGeom& g, const float* x, const float* dy, float* dw);

// conv2d's input gradient (nnc's conv_transpose2d(dy, w, bias)): dx [n, c, h, w] = bias[c] (or 0,
// bias null) + Σ over the filters f' of c's group, the window (i, j) and the windows (oy, ox) reading
// pixel (y, x) of dy[n, f', oy, ox] · w[f', c − g·c/groups, i, j] (overwritten). Per image, in bands
// of output positions: col [K, band] = W_gᵀ · dy_n,g [:, band] into a per-thread buffer of about
// 256 KB, then added into dx_n window by window. Parallel over images.
void convTranspose2d(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx);

}  // namespace nnc

extern "C" {
// For generated code (loop IR calls); all integers int64_t, flags 0/1, act an Activation. When
// has_bias is 0 the bias pointer is not read.
void nnc_conv2d(const float* x, const float* w, const float* bias, float* y, int64_t N, int64_t C, int64_t H,
                int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW,
                int64_t groups, int64_t has_bias, int64_t act, int64_t pool);
void nnc_conv2d_grad_weight(const float* x, const float* dy, float* dw, int64_t N, int64_t C, int64_t H, int64_t W,
                            int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW,
                            int64_t groups);
void nnc_conv_transpose2d(const float* dy, const float* w, const float* bias, float* dx, int64_t N, int64_t C,
                          int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH,
                          int64_t PW, int64_t groups, int64_t has_bias);
}
