// fuse-conv: every convolution becomes its implicit-im2col form. The GEMM
// packs each image's patches straight into its panels, so the column matrix
// (simple_convnet: 57,600 × 25 floats a step, forward and backward) is never
// written, and the forward result lands in NCHW without a permute.
#include "compiler/passes/rewriter.h"

namespace nnc::passes {

Expected<Optimized> fuseConv(const Graph& g, const std::vector<bool>&) {
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    const std::string_view op = n.op->name;
    if (op != "conv2d" && op != "conv2d_grad_weight" && op != "conv_transpose2d") {
      r.copy(id);
      continue;
    }
    std::vector<ValueId> in;
    for (ValueId v : n.inputs) in.push_back(r[v]);
    NNC_CHECK(r.replace(id, std::string(op) + "_fused", std::move(in), n.attrs));
  }
  return r.finish();
}

}  // namespace nnc::passes
