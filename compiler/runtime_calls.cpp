#include "compiler/runtime_calls.h"

#include "runtime/gemm.h"
#include "runtime/random_calls.h"

namespace nnc {

namespace {

void evalSgemm(float* const* p, const int64_t* i, const float*) {
  nnc_sgemm(p[0], p[1], p[2], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8]);
}

void evalDropoutMask(float* const* p, const int64_t* i, const float* f) { nnc_dropout_mask(p[0], i[0], f[0], f[1]); }

}  // namespace

const std::vector<RuntimeCall>& runtimeCalls() {
  static const std::vector<RuntimeCall> table = {
      // nnc_sgemm(A, B, C, M, N, K, lda, ldb, ldc, transA, transB, accumulate): runtime/gemm.h
      {"nnc_sgemm", 3, 9, 0, reinterpret_cast<void*>(&nnc_sgemm), &evalSgemm},
      // nnc_dropout_mask(out, n, rate, scale): runtime/random_calls.h
      {"nnc_dropout_mask", 1, 1, 2, reinterpret_cast<void*>(&nnc_dropout_mask), &evalDropoutMask},
  };
  return table;
}

const RuntimeCall* findRuntimeCall(std::string_view name) {
  for (const RuntimeCall& c : runtimeCalls())
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace nnc
