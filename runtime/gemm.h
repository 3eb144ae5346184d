// nnc's single-precision GEMM, the one matrix product every backend calls
// (dense layers, im2col convolution forward and backward):
//   C[M×N] = (accumulate ? C : 0) + op(A)·op(B)
// row-major, op(A) is M×K: A[m·lda + k], or with transA A[k·lda + m];
// op(B) is K×N: B[k·ldb + n], or with transB B[n·ldb + k].
// Transposed operands are read in place (packing absorbs the transpose);
// nothing is materialized. Threads come from runtime/parallel.h; the result
// does not depend on the thread count.
#pragma once
#include <cstdint>

namespace nnc {

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc, bool accumulate);

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
}
