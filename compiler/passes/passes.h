// The graph passes, one per file of this folder; pipeline.cpp runs them in
// order, by name. A new pass is declared here and added to that table.
#pragma once
#include <vector>

#include "compiler/ops/matmul.h"
#include "compiler/passes/rewriter.h"

namespace nnc::passes {

// The passes (see pipeline.cpp for their order). `external` marks values
// the caller reads: they keep their value and a node of their own.
Expected<Optimized> simplify(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> foldConstants(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> eliminateCommon(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> eliminateDead(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fuseConv(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fusePool(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fuseBatchnorm(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fuseEpilogue(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fuseResidual(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fuseReluGrad(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fuseUpdate(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> overlapAllreduce(const Graph& g, const std::vector<bool>& external);
// The passes that read options: fold-batchnorm runs only where
// opt.inference; conv-algo reads opt.convAlgo; both log notes under opt.log.
Expected<Optimized> foldBatchnorm(const Graph& g, const std::vector<bool>& external, const PassOptions& opt);
Expected<Optimized> chooseConvAlgos(const Graph& g, const std::vector<bool>& external, const PassOptions& opt);
// expand-attention acts only where the attention fusion is off.
Expected<Optimized> expandAttention(const Graph& g, const std::vector<bool>& external, const PassOptions& opt);

// Whether node v is a matmul computed as one GEMM (not a batched product):
// what fuse-epilogue and fuse-update may fold into a fused GEMM.
inline bool isGemm(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  return n.op->is(OpId::Matmul) && !matmulIsBatched(g.type(n.inputs[0]), g.type(n.inputs[1]), n.attrs);
}

}  // namespace nnc::passes
