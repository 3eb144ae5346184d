// fuse-residual: a residual connection's sum (and the relu after it) in the
// convolution that computes one branch.
//   add(conv2d_fused(x, W, b), z)        → conv2d_residual_fused(x, W, b, z)
//   relu(that add)                       → conv2d_residual_fused(…, act = relu)
// The convolution's result then never makes a trip through memory of its
// own: the runtime adds z to each chunk of images while it is in cache. Only
// where nothing else reads the convolution (nor, with the relu, the sum: a
// train step's relu gradient reads step(sum)), the convolution has a bias and
// no activation yet, and z has its type (no broadcasting). In practice that
// is inference, where fold-batchnorm has made the batchnormed branch of a
// residual block one convolution.
#include "compiler/ops/activation.h"
#include "compiler/passes/passes.h"

namespace nnc::passes {

namespace {

bool onlyUser(const std::vector<std::vector<ValueId>>& users, const std::vector<bool>& external, ValueId v,
              ValueId user) {
  return !external[static_cast<size_t>(v)] && users[static_cast<size_t>(v)].size() == 1 &&
         users[static_cast<size_t>(v)][0] == user;
}

// The convolution operand of add node `a` that may absorb it (side 0 or 1),
// or -1.
int convSide(const Graph& g, const std::vector<std::vector<ValueId>>& users, const std::vector<bool>& external,
             ValueId a) {
  const Node& n = g.node(a);
  if (!n.op->is(OpId::Add) || n.inputs.size() != 2 || n.inputs[0] == n.inputs[1]) return -1;
  for (int side = 0; side < 2; ++side) {
    const ValueId c = n.inputs[static_cast<size_t>(side)], z = n.inputs[static_cast<size_t>(1 - side)];
    const Node& conv = g.node(c);
    if (conv.op->is(OpId::Conv2dFused) && conv.inputs.size() == 3 && actAttr(conv.attrs) == kActNone &&
        onlyUser(users, external, c, a) && g.type(c) == n.type && g.type(z) == n.type)
      return side;
  }
  return -1;
}

}  // namespace

Expected<Optimized> fuseResidual(const Graph& g, const std::vector<bool>& external) {
  const std::vector<std::vector<ValueId>> users = usersOf(g);
  // add node → the relu that takes it along, and the adds so taken.
  std::vector<ValueId> reluOf(g.size(), kNoValue);
  std::vector<bool> absorbed(g.size(), false);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    if (!n.op->is(OpId::Relu)) continue;
    const ValueId a = n.inputs[0];
    if (convSide(g, users, external, a) >= 0 && onlyUser(users, external, a, id)) {
      reluOf[static_cast<size_t>(a)] = id;
      absorbed[static_cast<size_t>(a)] = true;
    }
  }
  Rewriter r(g);
  auto fused = [&](ValueId id, ValueId add, Activation act) -> Status {
    const Node& a = g.node(add);
    const int side = convSide(g, users, external, add);
    const Node& conv = g.node(a.inputs[static_cast<size_t>(side)]);
    Attrs attrs = conv.attrs;
    setActAttr(attrs, act);
    std::vector<ValueId> in;
    for (ValueId v : conv.inputs) in.push_back(r[v]);
    in.push_back(r[a.inputs[static_cast<size_t>(1 - side)]]);
    NNC_CHECK(r.replace(id, opIdName(OpId::Conv2dResidualFused), std::move(in), std::move(attrs)));
    return ok();
  };
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    if (absorbed[static_cast<size_t>(id)]) continue;
    if (n.op->is(OpId::Relu) && reluOf[static_cast<size_t>(n.inputs[0])] == id) {
      NNC_CHECK(fused(id, n.inputs[0], kActRelu));
    } else if (convSide(g, users, external, id) >= 0) {
      NNC_CHECK(fused(id, id, kActNone));
    } else {
      r.copy(id);
    }
  }
  return r.finish();
}

}  // namespace nnc::passes
