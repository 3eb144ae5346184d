// fuse-relu-grad: a relu's gradient in the convolution gradient before it.
//   mul(conv_transpose2d_fused(dy, W), step(y))  → conv_transpose2d_mask_fused(dy, W, y)
// (either operand order). In a train step the input gradient of a
// convolution that reads relu(z) is multiplied by step(z) — step(y) once
// fuse-epilogue has put the relu into the convolution that made y — before
// it reaches that convolution's own gradients; fused, the runtime multiplies
// each chunk of images while it is still in cache, so the product is never
// written and read back by a kernel of its own. Only where nothing else
// reads the input gradient, it has no bias and y has its type.
#include "compiler/passes/passes.h"

namespace nnc::passes {

namespace {

// The conv_transpose2d_fused operand of mul node m that may absorb it (0 or
// 1), or -1.
int convSide(const Graph& g, const std::vector<std::vector<ValueId>>& users, const std::vector<bool>& external,
             ValueId m) {
  const Node& n = g.node(m);
  if (!n.op->is(OpId::Mul) || n.inputs.size() != 2 || n.inputs[0] == n.inputs[1]) return -1;
  for (int side = 0; side < 2; ++side) {
    const ValueId c = n.inputs[static_cast<size_t>(side)], s = n.inputs[static_cast<size_t>(1 - side)];
    const Node& conv = g.node(c);
    const Node& step = g.node(s);
    if (conv.op->is(OpId::ConvTranspose2dFused) && conv.inputs.size() == 2 && !external[static_cast<size_t>(c)] &&
        users[static_cast<size_t>(c)].size() == 1 && step.op->is(OpId::Step) && g.type(c) == n.type &&
        g.type(s) == n.type && g.type(step.inputs[0]) == n.type)
      return side;
  }
  return -1;
}

}  // namespace

Expected<Optimized> fuseReluGrad(const Graph& g, const std::vector<bool>& external) {
  const std::vector<std::vector<ValueId>> users = usersOf(g);
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const int side = convSide(g, users, external, id);
    if (side < 0) {
      r.copy(id);
      continue;
    }
    const Node& m = g.node(id);
    const Node& conv = g.node(m.inputs[static_cast<size_t>(side)]);
    const ValueId y = g.node(m.inputs[static_cast<size_t>(1 - side)]).inputs[0];
    NNC_CHECK(r.replace(id, opIdName(OpId::ConvTranspose2dMaskFused), {r[conv.inputs[0]], r[conv.inputs[1]], r[y]},
                        conv.attrs));
  }
  return r.finish();
}

}  // namespace nnc::passes
