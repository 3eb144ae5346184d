// Convolutions on NCHW images through the GEMM without an im2col buffer
// ("implicit im2col"): the GEMM packs each window straight from the image
// into its B panels (gemm_kernel.h, Patches), so the column matrix never
// exists in memory, and bias and activation are applied as each tile column
// of the output is finished. Small windows at stride 1 without padding
// (C·KH·KW <= 64, simple_convnet's 5×5 on one channel) are computed
// directly instead, forward and weight gradient, the image rows read in
// place (gemm_kernel.h, Direct and DirectGrad).
//
// Every function takes the geometry of the FORWARD convolution (ConvGeom,
// runtime/conv_geom.h) and an algorithm (ConvAlgo): Auto asks
// convAlgoChoose; one that does not fit the shapes (convAlgoFits) falls back
// to Gemm, the implicit im2col described here. The other algorithms live in
// conv_direct.h, conv_winograd.h and conv_depthwise.h; this file dispatches.
//
// Results depend only on the inputs, never on the thread count
// (runtime/parallel.h): every element is summed in a fixed order.
#pragma once
#include <cstdint>

#include "runtime/activation.h"
#include "runtime/conv_geom.h"

namespace nnc {


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
            int64_t pool = 0, ConvAlgo algo = ConvAlgo::Auto);

// y = act(conv2d(x, w, bias) + z), z [n, f, oh, ow] (a residual connection's other branch), act none
// or relu. Winograd adds z in its output transform; the other algorithms take the batch in chunks of
// images of about 2 MB of results (a function of the shapes), each convolved, then added to z and
// activated while it is in L2: the sum never makes a trip through memory of its own.
void conv2dResidual(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* z, float* y,
                    int act, ConvAlgo algo = ConvAlgo::Auto);

// dw [f, c/groups, kh, kw] = Σ_n Σ_{oy, ox} dy[n, f, oy, ox] · x[n, g·c/groups + c', oy·sh + i − ph,
// ox·sw + j − pw] (overwritten). Per image and group dW_g += dy_n,g [f/groups, oh·ow] · P_n,gᵀ; the
// images are cut into a fixed number of chunks (independent of the thread count), each summed into
// its own partial dW, and the partials are added in chunk order. db [f] = Σ dy over images and
// windows (overwritten) unless null.
void conv2dGradWeight(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db = nullptr,
                      ConvAlgo algo = ConvAlgo::Auto);

// conv2d's input gradient (nnc's conv_transpose2d(dy, w, bias)): dx [n, c, h, w] = bias[c] (or 0,
// bias null) + Σ over the filters f' of c's group, the window (i, j) and the windows (oy, ox) reading
// pixel (y, x) of dy[n, f', oy, ox] · w[f', c − g·c/groups, i, j] (overwritten). Per image, in bands
// of output positions: col [K, band] = W_gᵀ · dy_n,g [:, band] into a per-thread buffer of about
// 256 KB, then added into dx_n window by window. Parallel over images.
void convTranspose2d(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx,
                     ConvAlgo algo = ConvAlgo::Auto);
// dx = convTranspose2d(dy, w) · step(y), y of dx's shape (the relu output
// whose gradient follows): the product taken chunk by chunk while in cache.
void convTranspose2dMasked(const ConvGeom& g, const float* dy, const float* w, const float* y, float* dx,
                           ConvAlgo algo = ConvAlgo::Auto);

}  // namespace nnc

extern "C" {
// For generated code (loop IR calls); all integers int64_t, flags 0/1, act an Activation, algo a
// ConvAlgo. When has_bias is 0 the bias pointer is not read, when has_db is 0 db is not written.
void nnc_conv2d(const float* x, const float* w, const float* bias, float* y, int64_t N, int64_t C, int64_t H,
                int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW,
                int64_t groups, int64_t has_bias, int64_t act, int64_t pool, int64_t algo);
void nnc_conv2d_residual(const float* x, const float* w, const float* bias, const float* z, float* y, int64_t N,
                         int64_t C, int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t SW,
                         int64_t PH, int64_t PW, int64_t groups, int64_t has_bias, int64_t act, int64_t algo);
void nnc_conv2d_grad_weight(const float* x, const float* dy, float* dw, float* db, int64_t N, int64_t C, int64_t H,
                            int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW,
                            int64_t groups, int64_t has_db, int64_t algo);
void nnc_conv_transpose2d(const float* dy, const float* w, const float* bias, float* dx, int64_t N, int64_t C,
                          int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH,
                          int64_t PW, int64_t groups, int64_t has_bias, int64_t algo);
void nnc_conv_transpose2d_masked(const float* dy, const float* w, const float* y, float* dx, int64_t N, int64_t C,
                                 int64_t H, int64_t W, int64_t F, int64_t KH, int64_t KW, int64_t SH, int64_t SW,
                                 int64_t PH, int64_t PW, int64_t groups, int64_t algo);
}
