// nnc's single-precision GEMM, the one matrix product every backend calls
// (dense layers, convolutions: runtime/conv.h packs image patches straight
// into its B panels):
//   C[M×N] = (accumulate ? C : 0) + op(A)·op(B)
// row-major, op(A) is M×K: A[m·lda + k], or with transA A[k·lda + m];
// op(B) is K×N: B[k·ldb + n], or with transB B[n·ldb + k].
// Transposed operands are read in place (packing absorbs the transpose);
// nothing is materialized. Threads come from runtime/parallel.h; the result
// does not depend on the thread count.
#pragma once
#include <cstdint>

#include "runtime/activation.h"

namespace nnc {

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc, bool accumulate);

// The GEMM with an epilogue (no accumulate): C = act(op(A)·op(B) + bias),
// applied to each element once its whole K sum is done, while its tile
// column is in cache. biasKind: 0 none (bias is not read), 1 bias[n] per
// column (a dense layer's bias, N values), 2 bias[m] per row (M values).
// act: an Activation (runtime/activation.h). As deterministic as sgemm.
void sgemmEpilogue(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float* C, int64_t ldc, const float* bias, int biasKind, int act);

// The SGD step of a weight whose gradient is a product, in the GEMM:
// out[M×N] = W − lr·op(A)·op(B), the product added as each tile finishes
// (never stored on its own). out may be W itself (updated in place).
void sgemmUpdate(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                 const float* B, int64_t ldb, const float* W, float lr, float* out);

// The instruction set the kernels use: "avx512", "avx2" or "generic", the
// best the CPU supports unless set. setSgemmIsa lets tests and benchmarks
// exercise each path; it returns false, changing nothing, for a name the
// CPU cannot run.
const char* sgemmIsa();
bool setSgemmIsa(const char* name);

}  // namespace nnc

extern "C" {
// For generated code (loop IR call `nnc_sgemm`); flags are 0 or 1.
void nnc_sgemm(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
               int64_t ldc, int64_t transA, int64_t transB, int64_t accumulate);
// nnc::sgemmUpdate, lr read from lr[0]; out may equal W.
void nnc_sgemm_update(const float* A, const float* B, const float* W, const float* lr, float* out, int64_t M,
                      int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t transA, int64_t transB);
// nnc::sgemmEpilogue; bias_kind 0/1/2 as documented there, act an Activation.
void nnc_sgemm_ep(const float* A, const float* B, float* C, const float* bias, int64_t M, int64_t N, int64_t K,
                  int64_t lda, int64_t ldb, int64_t ldc, int64_t transA, int64_t transB, int64_t bias_kind,
                  int64_t act);
}
