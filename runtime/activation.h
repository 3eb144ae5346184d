// The activations the GEMM's epilogue and the forward convolution apply to
// each result element, numbered as generated code passes them (the act
// argument of nnc_sgemm_ep and nnc_conv2d, an int64_t in the C ABI). The
// compiler converts its ops' "act" attribute to these in one place
// (compiler/ops/activation.h).
#pragma once

namespace nnc {

enum Activation : int {
  kActNone = 0,
  kActRelu = 1,     // x > 0 ? x : 0, so NaN gives 0
  kActSigmoid = 2,  // 1 / (1 + e^-x)
  kActTanh = 3,
};

}  // namespace nnc
