// matmul's operand geometry, shared by its registry entry (matmul_ops.cpp),
// the fused GEMM ops and the passes that make them: those fuse one plain
// GEMM and must leave batched products alone.
#pragma once
#include "base/tensor.h"
#include "compiler/graph/attrs.h"

namespace nnc {

// True when matmul(a, b) is a batch of products ([..., M, K] @ [..., K, N]
// with b of rank ≥ 3, or a transposed a of rank ≥ 3), false for one GEMM
// whose rows are a's leading axes ([..., M, K] @ [K, N]).
bool matmulIsBatched(const TensorType& a, const TensorType& b, const Attrs& attrs);

}  // namespace nnc
