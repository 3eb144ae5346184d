#include "compiler/runtime_calls.h"

#include "runtime/gemm.h"

namespace nnc {

namespace {

void evalSgemm(float* const* p, const int64_t* i, const float*) {
  nnc_sgemm(p[0], p[1], p[2], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8]);
}

}  // namespace

const std::vector<RuntimeCall>& runtimeCalls() {
  static const std::vector<RuntimeCall> table = {
      // nnc_sgemm(A, B, C, M, N, K, lda, ldb, ldc, transA, transB, accumulate): runtime/gemm.h
      {"nnc_sgemm", 3, 9, 0, reinterpret_cast<void*>(&nnc_sgemm), &evalSgemm},
  };
  return table;
}

const RuntimeCall* findRuntimeCall(std::string_view name) {
  for (const RuntimeCall& c : runtimeCalls())
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace nnc
