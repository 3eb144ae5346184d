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
  kActRelu = 1,      // x < 0 ? 0 : x (reluOf), so NaN stays NaN
  kActSigmoid = 2,   // 1 / (1 + e^-x)
  kActTanh = 3,
  kActGelu = 4,      // x·Φ(x), erf by erfOf below (geluOf)
  kActGeluTanh = 5,  // torch's tanh form (geluTanhOf)
  kActSilu = 6,      // x·sigmoid(x)
};

// erf(x) ≈ x·P(x²)/Q(x²) on x clamped to [-4, 4] (Eigen's and XLA's rational
// form; error near float epsilon): plain arithmetic, so loops of it
// vectorize. The compiler's erf and gelu lowerings spell out the same
// formula from these coefficients (compiler/ops/elementwise_ops.cpp).
inline constexpr double kErfP[] = {-1.60960333262415e-02, -2.95459980854025e-03, -7.34990630326855e-04,
                                   -5.69250639462346e-05, -2.10102402082508e-06, 2.77068142495902e-08,
                                   -2.72614225801306e-10};  // of x^1, x^3, ... x^13
inline constexpr double kErfQ[] = {-1.42647390514189e-02, -7.37332916720468e-03, -1.68282697438203e-03,
                                   -2.13374055278905e-04, -1.45660718464996e-05};  // of x^0, x^2, ... x^8
inline constexpr double kSqrtHalf = 0.70710678118654752440;  // 1/√2
inline constexpr double kGeluC = 0.79788456080286535588;     // √(2/π), the tanh form's
inline constexpr double kGeluK = 0.044715;

inline float erfOf(float x) {
  x = x < -4.0f ? -4.0f : (x > 4.0f ? 4.0f : x);
  const float x2 = x * x;
  float p = static_cast<float>(kErfP[6]), q = static_cast<float>(kErfQ[4]);
  for (int i = 5; i >= 0; --i) p = p * x2 + static_cast<float>(kErfP[i]);
  for (int i = 3; i >= 0; --i) q = q * x2 + static_cast<float>(kErfQ[i]);
  return x * p / q;
}
inline float geluOf(float x) { return 0.5f * x * (1.0f + erfOf(x * static_cast<float>(kSqrtHalf))); }

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
