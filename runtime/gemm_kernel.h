// Internal to the GEMM: what the driver (gemm.cpp) shares with the
// per-instruction-set tile code (gemm_avx512.cpp, gemm_avx2.cpp,
// gemm_generic.cpp, all instantiating gemm_tiles.h).
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/activation.h"

namespace nnc::gemm {

// op(B) read straight from an NCHW image instead of a matrix: the columns of
// the im2col matrix of one group of one image, never materialized (the
// packing of B gathers them). With k = (c·KH + i)·KW + j over the group's
// channels c and kernel positions (i, j), and p = oy·OW + ox over the output
// positions, the patch matrix is
//   P(k, p) = x[c, oy·SH + i − PH, ox·SW + j − PW]   (0 outside the image)
// and op(B) is P (K×N = k×p, a convolution's forward) or, `transposed`, Pᵀ
// (K×N = p×k, its weight gradient).
struct Patches {
  const float* x;  // the group's first channel: [C, H, W]
  int64_t C, H, W, KH, KW, SH, SW, PH, PW, OW;
  bool transposed;
};

struct Args {
  bool transA, transB, accumulate;
  int64_t M, N, K;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
  // The depth of one cache block, fixed for the whole call so that every C
  // element is summed in the same order whichever thread computes it.
  int64_t kc;
  // Optional: op(B) from an image (then B, ldb and transB are ignored and B
  // is always packed).
  const Patches* patch = nullptr;
  // Optional epilogue, applied to each element once its whole K sum is in C
  // (after the accumulate): C = act(C + bias), with bias[n] per column
  // (biasKind 1) or bias[m] per row (2), none for 0; act an Activation.
  // Row m and column n count from the whole C.
  const float* bias = nullptr;
  int biasKind = 0, act = kActNone;
  // op(A)·op(B) is scaled by alpha before it is added to C (alpha 1: no
  // multiply): the in-place update W −= lr·dW is accumulate with −lr.
  float alpha = 1.0f;
  // Run on the calling thread alone (the caller is already one of several
  // threads): one block for all of C rather than a band per thread.
  bool serial = false;
  bool hasEpilogue() const { return biasKind != 0 || act != kActNone; }
};

// A convolution whose window is small (conv.cpp decides), computed directly:
// rows [oy0, oy1) of one image's y [F, OH, OW] = act(bias[f] + Σ_k w[f·K + k]
// · x[c, oy + i, ox + j]) with k = (c·KH + i)·KW + j, K = C·KH·KW, stride 1,
// no padding, act kActNone or kActRelu, bias null for none; row oy of filter
// f is stored at y + f·ldf + (oy − oy0)·OW. The register tile holds several
// filters by two vectors of one output row and reads the image rows in
// place: no packing, which is most of the cost of a GEMM whose K is 25.
struct Direct {
  const float* x;     // [C, H, W]
  const float* w;     // [F, K]
  const float* bias;  // [F] or null
  float* y;
  int64_t C, H, W, F, KH, KW;
  int64_t oy0, oy1, ldf;
  int act;  // an Activation
};

// The weight gradient of a Direct convolution, summed over images:
// part[(f·K + k)·W + l] += Σ over images b, positions p ≡ l (mod W) of
// dy[b, f, p] · x[b, c, oy + i, ox + j] (W: the instruction set's lanes,
// Isa::lanes), for every image b in [0, n) of x [n, C, H, W] and dy
// [n, F, OH·OW]. The caller sums the lanes, in a fixed order.
struct DirectGrad {
  const float* x;
  const float* dy;
  float* part;  // [F·K, lanes]
  int64_t n, C, H, W, F, KH, KW;
};

// The register-blocked direct convolution (runtime/conv_direct.cpp,
// conv_direct_tiles.h): rows of one image's output for one block of nf
// filters, y[f·ldf + oy·OW + ox] = act(bias[f] + Σ_k wp[k·nv·lanes + f] ·
// in[oy·rowStep + ox·SW + off[k]]) for f < nf, oy < OH, ox < OW, with nv =
// ceil(nf / lanes) (at most Isa::directNvMax), SW 1 or 2 and act none or relu.
struct DirectRows {
  const float* in;     // the (padded) image
  const int32_t* off;  // [K]: where patch element k sits from a window's start
  int64_t K;
  const float* wp;    // [K][nv·lanes], zero past nf
  const float* bias;  // [nf] or null
  bool relu;
  int nf;
  float* y;
  int64_t ldf, OH, OW, rowStep, SW;
  // K in slices of kc (a function of the shapes: the order of each sum);
  // part: [OH·OW][nv·lanes] for the sums between slices.
  int64_t kc;
  float* part;
  // y[(oy·OW + ox)·ldf + f] instead, whole vectors of filters (up to
  // nv·lanes, zeros past nf) stored as the tile holds them: no transpose.
  bool pixelMajor = false;
  // The input the caller reads next (the next image, before its padded
  // copy is made), `aheadFloats` of it, or null: the non-constant-stride
  // one-row tiles prefetch it into L2, a line a step k, so that the copy
  // does not wait on memory.
  const float* ahead = nullptr;
  int64_t aheadFloats = 0;
};

// The direct convolution's weight gradient for one block of nf filters and
// nk patch rows: dw[f·K + k] (or the running sums part, [nk][nv·lanes],
// tile-native) = Σ over the nimg images, oy, ox of dyT[(n·OH·OW + oy·OW +
// ox)·ldT + f] · in[n·imgStride + oy·rowStep + ox·SW + off[k]], added to
// part unless first; dw null: the sums stay in part for the next chunk.
struct DirectGradRows {
  const float* in;
  int64_t imgStride;
  const int32_t* off;  // [nk]
  int64_t nk;
  const float* dyT;  // at the block's first filter; zero past nf
  int64_t ldT;
  int nf;
  int64_t nimg, OH, OW, rowStep, SW;
  float* part;
  bool first;
  float* dw;  // at (first filter, first row), rows K apart; or null
  int64_t K;
};

// Depthwise convolution (conv_depthwise.cpp): one channel's plane at a time,
// read from a padded copy the caller made (zeros around the image, columns
// deinterleaved by stride), so that every tap is a fixed offset from the
// start of a row and the rows need no edge tests. For r < rows and
// x < count:
//   out[r·ldo + x] = act(bias + Σ_{t < taps} w[t] · src[r·lds + off[t] + x])
// act kActNone or kActRelu; taps 0 writes the bias. Every src element the
// sums name exists; the last vector of a row is loaded under a mask.
struct DepthwiseRows {
  const float* src;
  const int64_t* off;
  const float* w;
  int64_t taps;
  float bias;
  int act;
  float* out;
  int64_t count, rows, lds, ldo;
};

// The padded copy DepthwiseRows reads: image rows y < h of x [h, w] go to
// rows y + ph of buf, whose row Y holds sw phases of len floats (padded
// column X at phase X mod sw, index X div sw, image column X − pw), for
// Y < rows and indices < len. Only the image's pixels are written: the
// zeros around them are the caller's, written once for every plane.
struct DepthwisePad {
  const float* x;
  float* buf;
  int64_t h, w, ph, pw, sw, len, rows;
};

// The weight gradient of DepthwiseRows, lane-wise (W = Isa::lanes): for
// t < taps, acc[t·W + l] += Σ over r < rows and x < count, x ≡ l (mod W), of
// dy[r·lddy + x] · src[r·lds + off[t] + x], the sums in the order of r, then
// x; with db also acc[taps·W + l] += the same sums of dy alone. The caller
// adds the lanes, in order.
struct DepthwiseGrad {
  const float* src;
  const int64_t* off;
  int64_t taps;
  const float* dy;
  float* acc;
  bool db;
  int64_t count, rows, lds, lddy;
};

// One instruction set's implementation: computes C[m0:m1, n0:n1] (all of K),
// packing into this thread's scratch buffers.
struct Isa {
  const char* name;
  int mr, nr;  // register tile
  void (*block)(const Args&, int64_t m0, int64_t m1, int64_t n0, int64_t n1);
  // addPatches (below) in this instruction set.
  void (*addPatches)(const Patches& geometry, float* img, const float* col, int64_t ldcol, int64_t p0, int64_t count);
  void (*direct)(const Direct& d);
  // Null where the instruction set has no lane masks.
  bool (*directGrad)(const DirectGrad& d);
  int lanes;
  // The direct convolution's (DirectRows above), kept together.
  void (*directRows)(const DirectRows& a);
  int directNvMax;
  void (*directGradRows)(const DirectGradRows& a);
  // dst[c·ldd + r] = src[r·lds + c] (r < rows), 0 for rows ≤ r < padRows (a multiple of lanes).
  void (*transposeRows)(const float* src, int64_t rows, int64_t padRows, int64_t cols, int64_t lds, float* dst,
                        int64_t ldd);
  // interleaveRows (below) in this instruction set.
  void (*interleaveRows)(const float* ev, int64_t lde, const float* od, int64_t ldo, float* dst, int64_t ldd,
                         int64_t w, int64_t rows);
  // ---- Depthwise convolution (conv_depthwise.cpp; DepthwiseRows,
  // DepthwiseGrad and DepthwisePad above), in conv_depthwise_tiles.h.
  void (*depthwiseRows)(const DepthwiseRows& d);
  void (*depthwiseGrad)(const DepthwiseGrad& d);
  void (*depthwisePad)(const DepthwisePad& d);
};

Isa avx512Isa();
Isa avx2Isa();
Isa genericIsa();

// The whole epilogue on C[m0:m1, n0:n1], in baseline code (libm's exp and
// tanh). The tiles apply bias and relu to their registers themselves; an
// instruction set's block calls this for sigmoid and tanh on each finished
// tile column while it is in L1, and the driver for K = 0.
void epilogue(const Args& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1);

// The adjoint of packing patches (col2im of a band): img [C, H, W] += the
// windows of col, a [C·KH·KW, count] block (row k at col + k·ldcol) of the
// patch matrix over the output positions p0 .. p0 + count − 1; `geometry`
// gives the shapes (its x is not read). Elements are added in a fixed order
// (k, then position), with the current instruction set's vectors.
void addPatches(const Patches& geometry, float* img, const float* col, int64_t ldcol, int64_t p0, int64_t count);

// Direct (above) in the current instruction set, on the calling thread.
void direct(const Direct& d);
// DirectGrad in the current instruction set; false, doing nothing, where it
// has none (rows narrower than its vectors, no lane masks).
bool directGrad(const DirectGrad& d);
int lanes();
// DirectRows in the current instruction set, on the calling thread.
void directRows(const DirectRows& a);
int directNvMax();
void directGradRows(const DirectGradRows& a);
void transposeRows(const float* src, int64_t rows, int64_t padRows, int64_t cols, int64_t lds, float* dst,
                   int64_t ldd);
// dst[r·ldd + 2m] = ev[r·lde + m] and dst[r·ldd + 2m + 1] = od[r·ldo + m]
// for r < rows and columns < w (two column phases into whole rows).
void interleaveRows(const float* ev, int64_t lde, const float* od, int64_t ldo, float* dst, int64_t ldd, int64_t w,
                    int64_t rows);
// DepthwiseRows, DepthwiseGrad and DepthwisePad in the current instruction set, on the calling thread.
void depthwiseRows(const DepthwiseRows& d);
void depthwiseGrad(const DepthwiseGrad& d);
void depthwisePad(const DepthwisePad& d);

// The threaded driver behind sgemm: any Args (patches, epilogue included).
// Nothing for M or N <= 0; for K <= 0, C = epilogue(accumulate ? C : 0). kc
// is filled in here.
void run(Args g);

// A 64-byte aligned buffer of at least `floats` floats, owned by the calling
// thread and reused across calls; slot 0 holds packed A, slot 1 packed B.
float* scratch(int slot, size_t floats);

}  // namespace nnc::gemm
