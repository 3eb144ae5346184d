#include "compiler/lower/runtime_calls.h"

#include "runtime/collective.h"
#include "runtime/conv.h"
#include "runtime/gemm.h"
#include "runtime/random_calls.h"
#include "runtime/sequence.h"

namespace nnc {

namespace {

void evalSgemm(float* const* p, const int64_t* i, const float*) {
  nnc_sgemm(p[0], p[1], p[2], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8]);
}

void evalSgemmEp(float* const* p, const int64_t* i, const float*) {
  nnc_sgemm_ep(p[0], p[1], p[2], p[3], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9]);
}

void evalSgemmUpdate(float* const* p, const int64_t* i, const float*) {
  nnc_sgemm_update(p[0], p[1], p[2], p[3], p[4], i[0], i[1], i[2], i[3], i[4], i[5], i[6]);
}

void evalConv2d(float* const* p, const int64_t* i, const float*) {
  nnc_conv2d(p[0], p[1], p[2], p[3], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], i[10], i[11], i[12],
             i[13], i[14], i[15]);
}

void evalConv2dResidual(float* const* p, const int64_t* i, const float*) {
  nnc_conv2d_residual(p[0], p[1], p[2], p[3], p[4], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], i[10],
                      i[11], i[12], i[13], i[14]);
}

void evalConv2dGradWeight(float* const* p, const int64_t* i, const float*) {
  nnc_conv2d_grad_weight(p[0], p[1], p[2], p[3], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], i[10],
                         i[11], i[12], i[13]);
}

void evalConvTranspose2d(float* const* p, const int64_t* i, const float*) {
  nnc_conv_transpose2d(p[0], p[1], p[2], p[3], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], i[10], i[11],
                       i[12], i[13]);
}

void evalConvTranspose2dMasked(float* const* p, const int64_t* i, const float*) {
  nnc_conv_transpose2d_masked(p[0], p[1], p[2], p[3], i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9],
                              i[10], i[11], i[12]);
}

void evalDropoutMask(float* const* p, const int64_t* i, const float* f) { nnc_dropout_mask(p[0], i[0], f[0], f[1]); }

void evalNormal(float* const* p, const int64_t* i, const float* f) { nnc_normal(p[0], i[0], f[0], f[1]); }

void evalGatherRows(float* const* p, const int64_t* i, const float*) { nnc_gather_rows(p[0], p[1], p[2], i[0], i[1], i[2]); }

void evalScatterAddRows(float* const* p, const int64_t* i, const float*) {
  nnc_scatter_add_rows(p[0], p[1], p[2], i[0], i[1], i[2]);
}

void evalAttention(float* const* p, const int64_t* i, const float* f) {
  nnc_attention(p[0], p[1], p[2], p[3], i[0], i[1], i[2], i[3], i[4], i[5], f[0]);
}

void evalAttentionGrad(float* const* p, const int64_t* i, const float* f) {
  nnc_attention_grad(p[0], p[1], p[2], p[3], p[4], i[0], i[1], i[2], i[3], i[4], i[5], f[0]);
}

void evalAllreduceStart(float* const* p, const int64_t* i, const float*) { nnc_allreduce_start(p[0], i[0], i[1]); }

void evalAllreduceWait(float* const* p, const int64_t* i, const float*) { nnc_allreduce_wait(p[0], i[0]); }

}  // namespace

const std::vector<RuntimeCall>& runtimeCalls() {
  static const std::vector<RuntimeCall> table = {
      // nnc_sgemm(A, B, C, M, N, K, lda, ldb, ldc, transA, transB, accumulate): runtime/gemm.h
      {"nnc_sgemm", 3, 9, 0, 2, reinterpret_cast<void*>(&nnc_sgemm), &evalSgemm},
      // nnc_sgemm_ep(A, B, C, bias, M, N, K, lda, ldb, ldc, transA, transB, bias_kind, act): runtime/gemm.h
      {"nnc_sgemm_ep", 4, 10, 0, 2, reinterpret_cast<void*>(&nnc_sgemm_ep), &evalSgemmEp},
      // nnc_sgemm_update(A, B, W, lr, out, M, N, K, lda, ldb, transA, transB): runtime/gemm.h
      {"nnc_sgemm_update", 5, 7, 0, 4, reinterpret_cast<void*>(&nnc_sgemm_update), &evalSgemmUpdate},
      // nnc_conv2d(x, w, bias, y, N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups, has_bias, act, pool, algo): runtime/conv.h
      {"nnc_conv2d", 4, 16, 0, 3, reinterpret_cast<void*>(&nnc_conv2d), &evalConv2d},
      // nnc_conv2d_residual(x, w, bias, z, y, N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups, has_bias, act, algo): runtime/conv.h
      {"nnc_conv2d_residual", 5, 15, 0, 4, reinterpret_cast<void*>(&nnc_conv2d_residual), &evalConv2dResidual},
      // nnc_conv2d_grad_weight(x, dy, dw, db, N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups, has_db, algo): runtime/conv.h
      {"nnc_conv2d_grad_weight", 4, 14, 0, 2, reinterpret_cast<void*>(&nnc_conv2d_grad_weight), &evalConv2dGradWeight, 2},
      // nnc_conv_transpose2d(dy, w, bias, dx, N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups, has_bias, algo): runtime/conv.h
      {"nnc_conv_transpose2d", 4, 14, 0, 3, reinterpret_cast<void*>(&nnc_conv_transpose2d), &evalConvTranspose2d},
      // nnc_conv_transpose2d_masked(dy, w, y, dx, N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups, algo): runtime/conv.h
      {"nnc_conv_transpose2d_masked", 4, 13, 0, 3, reinterpret_cast<void*>(&nnc_conv_transpose2d_masked),
       &evalConvTranspose2dMasked},
      // nnc_dropout_mask(out, n, rate, scale): runtime/random_calls.h
      {"nnc_dropout_mask", 1, 1, 2, 0, reinterpret_cast<void*>(&nnc_dropout_mask), &evalDropoutMask},
      // nnc_normal(out, n, mean, std): runtime/random_calls.h
      {"nnc_normal", 1, 1, 2, 0, reinterpret_cast<void*>(&nnc_normal), &evalNormal},
      // nnc_gather_rows(table, ids, out, n, width, rows): runtime/sequence.h
      {"nnc_gather_rows", 3, 3, 0, 2, reinterpret_cast<void*>(&nnc_gather_rows), &evalGatherRows},
      // nnc_scatter_add_rows(ids, dy, grad, n, width, rows): runtime/sequence.h
      {"nnc_scatter_add_rows", 3, 3, 0, 2, reinterpret_cast<void*>(&nnc_scatter_add_rows), &evalScatterAddRows},
      // nnc_attention(q, k, v, o, heads, t, s, dh, dv, causal, scale): runtime/sequence.h
      {"nnc_attention", 4, 6, 1, 3, reinterpret_cast<void*>(&nnc_attention), &evalAttention},
      // nnc_attention_grad(q, k, v, dy, grad, heads, t, s, dh, dv, causal, scale): runtime/sequence.h
      {"nnc_attention_grad", 5, 6, 1, 4, reinterpret_cast<void*>(&nnc_attention_grad), &evalAttentionGrad},
      // nnc_allreduce_start(buf, n, bucket), nnc_allreduce_wait(grad, bucket): runtime/collective.h
      {"nnc_allreduce_start", 1, 2, 0, 0, reinterpret_cast<void*>(&nnc_allreduce_start), &evalAllreduceStart},
      {"nnc_allreduce_wait", 1, 1, 0, 0, reinterpret_cast<void*>(&nnc_allreduce_wait), &evalAllreduceWait},
  };
  return table;
}

const RuntimeCall* findRuntimeCall(std::string_view name) {
  for (const RuntimeCall& c : runtimeCalls())
    if (c.name == name) return &c;
  return nullptr;
}

}  // namespace nnc
