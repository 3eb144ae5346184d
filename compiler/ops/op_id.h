// Handles for the ops the compiler refers to outside their own registry
// entries (passes, lowering, autodiff, emit, cli), each op's name written
// once, here. The registry gives each OpDef its handle (OpDef::id), so a
// test of a node's op is `n.op->is(OpId::Relu)`: a misspelt handle does not
// compile, where a misspelt name string silently compared false. The
// registry checks at startup that every name below is an op.
#pragma once
#include <cstddef>
#include <string_view>

namespace nnc {

#define NNC_OP_IDS(X)                                       \
  /* elementwise */                                         \
  X(Add, "add")                                             \
  X(Sub, "sub")                                             \
  X(Mul, "mul")                                             \
  X(Div, "div")                                             \
  X(Neg, "neg")                                             \
  X(Relu, "relu")                                           \
  X(Sigmoid, "sigmoid")                                     \
  X(Tanh, "tanh")                                           \
  X(Gelu, "gelu")                                           \
  X(Silu, "silu")                                           \
  X(Step, "step")                                           \
  X(Sqrt, "sqrt")                                           \
  X(Square, "square")                                       \
  /* reductions */                                          \
  X(Sum, "sum")                                             \
  X(Mean, "mean")                                           \
  /* shape */                                               \
  X(Reshape, "reshape")                                     \
  X(Flatten, "flatten")                                     \
  X(Transpose, "transpose")                                 \
  /* sources */                                             \
  X(Const, "const")                                         \
  X(Param, "param")                                         \
  X(Input, "input")                                         \
  X(Label, "label")                                         \
  X(Normal, "normal")                                       \
  /* nn and losses */                                       \
  X(Matmul, "matmul")                                       \
  X(Conv2d, "conv2d")                                       \
  X(Conv2dGradWeight, "conv2d_grad_weight")                 \
  X(ConvTranspose2d, "conv_transpose2d")                    \
  X(Maxpool2d, "maxpool2d")                                 \
  X(Maxpool2dGrad, "maxpool2d_grad")                        \
  X(Batchnorm, "batchnorm")                                 \
  X(Softmax, "softmax")                                     \
  X(CrossEntropy, "cross_entropy")                          \
  X(SoftmaxCrossEntropy, "softmax_cross_entropy")           \
  X(SoftmaxCrossEntropyGrad, "softmax_cross_entropy_grad")  \
  /* fused (compiler/ops/fused_ops.cpp) */                  \
  X(MatmulFused, "matmul_fused")                            \
  X(MatmulUpdate, "matmul_update")                          \
  X(Conv2dFused, "conv2d_fused")                            \
  X(Conv2dPoolFused, "conv2d_pool_fused")                   \
  X(Conv2dResidualFused, "conv2d_residual_fused")           \
  X(ConvTranspose2dMaskFused, "conv_transpose2d_mask_fused") \
  X(Conv2dGradWeightFused, "conv2d_grad_weight_fused")      \
  X(Conv2dGradBiasFused, "conv2d_grad_bias_fused")          \
  X(ConvTranspose2dFused, "conv_transpose2d_fused")         \
  X(Maxpool2dRelu, "maxpool2d_relu")                        \
  X(Maxpool2dReluGrad, "maxpool2d_relu_grad")              \
  /* data-parallel collectives (collective_ops.cpp) */      \
  X(AllreduceStart, "allreduce_start")                      \
  X(AllreduceWait, "allreduce_wait")

enum class OpId : unsigned char {
  Other,  // an op the compiler never names
#define NNC_OP_ID_ENUM(id, name) id,
  NNC_OP_IDS(NNC_OP_ID_ENUM)
#undef NNC_OP_ID_ENUM
};

inline constexpr std::string_view kOpIdNames[] = {
    "",
#define NNC_OP_ID_NAME(id, name) name,
    NNC_OP_IDS(NNC_OP_ID_NAME)
#undef NNC_OP_ID_NAME
};
inline constexpr size_t kOpIdCount = std::size(kOpIdNames);  // OpId::Other included

// The op's name ("" for OpId::Other).
constexpr std::string_view opIdName(OpId id) { return kOpIdNames[static_cast<size_t>(id)]; }

}  // namespace nnc
