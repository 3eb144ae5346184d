// fuse-conv: every convolution becomes its implicit-im2col form. The GEMM
// packs each image's patches straight into its panels, so the column matrix
// (simple_convnet: 57,600 × 25 floats a step, forward and backward) is never
// written, and the forward result lands in NCHW without a permute.
// A convolution's bias gradient, sum(dy, axis = [0, 2, 3]) of the dy its
// weight gradient reads, becomes conv2d_grad_bias_fused(dy, dw): the weight
// gradient's kernel sums it beside dw instead of a reduction reading dy
// once more.
#include <map>

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

// sum(dy, axis = [0, 2, 3]) of an [N, F, OH, OW] dy, to [F].
bool isBiasSum(const Graph& g, const Node& n) {
  return n.op->is(OpId::Sum) && g.type(n.inputs[0]).rank() == 4 &&
         n.attrs.ints("axis") == std::vector<int64_t>{0, 2, 3} && n.attrs.i("keepdims") == 0;
}

}  // namespace

Expected<Optimized> fuseConv(const Graph& g, const std::vector<bool>&) {
  Rewriter r(g);
  std::map<ValueId, ValueId> weightGradOf;  // dy -> the first weight gradient reading it with no bias sum yet
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    if (isBiasSum(g, n)) {
      auto w = weightGradOf.find(n.inputs[0]);
      if (w != weightGradOf.end()) {
        NNC_CHECK(r.replace(id, opIdName(OpId::Conv2dGradBiasFused), {r[n.inputs[0]], r[w->second]}, {}));
        weightGradOf.erase(w);
        continue;
      }
    }
    const OpId fused = fusedForm(*n.op);
    if (fused == OpId::Other) {
      r.copy(id);
      continue;
    }
    std::vector<ValueId> in;
    for (ValueId v : n.inputs) in.push_back(r[v]);
    NNC_CHECK(r.replace(id, opIdName(fused), std::move(in), n.attrs));
    if (fused == OpId::Conv2dGradWeightFused) weightGradOf.emplace(n.inputs[1], id);
  }
  return r.finish();
}

}  // namespace nnc::passes
