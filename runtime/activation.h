// The activations the GEMM's epilogue and the forward convolution apply to
// each result element, numbered as generated code passes them (the act
// argument of nnc_sgemm_ep and nnc_conv2d, an int64_t in the C ABI). The
// compiler converts its ops' "act" attribute to these in one place
// (compiler/ops/activation.h).
#pragma once

// For the elementwise loops of the runtime's baseline-built files (the
// passes that finish a chunk of a convolution's result in cache): compiled
// also for AVX-512 and AVX2 and chosen by the CPU when the program loads
// (function multiversioning, GCC and Clang on x86-64); a plain function
// elsewhere.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(NNC_NO_TARGET_CLONES)
#define NNC_WIDEST_VECTORS __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NNC_WIDEST_VECTORS
#endif

namespace nnc {

enum Activation : int {
  kActNone = 0,
  kActRelu = 1,     // x < 0 ? 0 : x (reluOf), so NaN stays NaN
  kActSigmoid = 2,  // 1 / (1 + e^-x)
  kActTanh = 3,
};

// relu as every runtime path computes it: x < 0 ? 0 : x, which is x86's
// max(0, x) (maxps returns its second operand when either is NaN), so a NaN
// propagates as in PyTorch; -0 stays -0 here where the reference gives +0,
// equal under ==.
inline float reluOf(float x) { return x < 0.0f ? 0.0f : x; }

// The larger of a and b, NaN if either is NaN (PyTorch's max_pool2d and
// maximum); ties keep a. Two selects, not `b > a || b != b` (whose
// short-circuit GCC leaves as branches): maxps(b, a), which gives a where
// either is NaN, then b where b is NaN; loops of it vectorize.
inline float maxOrNaN(float a, float b) {
  const float m = b > a ? b : a;
  return b != b ? b : m;
}

}  // namespace nnc
