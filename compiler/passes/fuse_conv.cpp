// fuse-conv: every convolution becomes its implicit-im2col form. The GEMM
// packs each image's patches straight into its panels, so the column matrix
// (simple_convnet: 57,600 × 25 floats a step, forward and backward) is never
// written, and the forward result lands in NCHW without a permute.
#include "compiler/passes/passes.h"

namespace nnc::passes {

namespace {

// Each convolution op's implicit-im2col form; OpId::Other for other ops.
OpId fusedForm(const OpDef& op) {
  if (op.is(OpId::Conv2d)) return OpId::Conv2dFused;
  if (op.is(OpId::Conv2dGradWeight)) return OpId::Conv2dGradWeightFused;
  if (op.is(OpId::ConvTranspose2d)) return OpId::ConvTranspose2dFused;
  return OpId::Other;
}

}  // namespace

Expected<Optimized> fuseConv(const Graph& g, const std::vector<bool>&) {
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    const OpId fused = fusedForm(*n.op);
    if (fused == OpId::Other) {
      r.copy(id);
      continue;
    }
    std::vector<ValueId> in;
    for (ValueId v : n.inputs) in.push_back(r[v]);
    NNC_CHECK(r.replace(id, opIdName(fused), std::move(in), n.attrs));
  }
  return r.finish();
}

}  // namespace nnc::passes
