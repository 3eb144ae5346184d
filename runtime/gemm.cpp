// Placeholder: plain loops, correct for every shape, until the packed,
// register-tiled kernel lands.
#include "runtime/gemm.h"

namespace nnc {

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float s = accumulate ? C[m * ldc + n] : 0.0f;
      for (int64_t k = 0; k < K; ++k)
        s += (transA ? A[k * lda + m] : A[m * lda + k]) * (transB ? B[n * ldb + k] : B[k * ldb + n]);
      C[m * ldc + n] = s;
    }
}

}  // namespace nnc

extern "C" void nnc_sgemm(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K, int64_t lda,
                          int64_t ldb, int64_t ldc, int64_t transA, int64_t transB, int64_t accumulate) {
  nnc::sgemm(transA != 0, transB != 0, M, N, K, A, lda, B, ldb, C, ldc, accumulate != 0);
}
