// fuse-pool: relu followed by max-pooling. max and relu commute, so
// maxpool2d(relu(z)) is the window maximum of z starting from 0 instead of
// −inf: the relu costs nothing and its [N, C, H, W] result is never stored.
// Backward, step(z)·maxpool2d_grad(relu(z), dy) is the pooling gradient
// whose scan starts from 0 (a window with no positive element passes no
// gradient), one kernel instead of three.
#include "compiler/passes/rewriter.h"

namespace nnc::passes {

namespace {

// relu(z)'s operand z, or kNoValue.
ValueId reluOperand(const Graph& g, ValueId v, const std::vector<bool>& external) {
  const Node& n = g.node(v);
  return n.op->name == "relu" && !external[static_cast<size_t>(v)] ? n.inputs[0] : kNoValue;
}

}  // namespace

Expected<Optimized> fusePool(const Graph& g, const std::vector<bool>& external) {
  const std::vector<std::vector<ValueId>> users = usersOf(g);
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    if (n.op->name == "maxpool2d") {
      if (const ValueId z = reluOperand(g, n.inputs[0], external); z != kNoValue) {
        NNC_CHECK(r.replace(id, "maxpool2d_relu", {r[z]}, n.attrs));
        continue;
      }
    }
    // mul(maxpool2d_grad(relu(z), dy), step(z)), either operand order.
    if (n.op->name == "mul" && n.inputs.size() == 2) {
      bool done = false;
      for (int side = 0; side < 2 && !done; ++side) {
        const ValueId a = n.inputs[static_cast<size_t>(side)], s = n.inputs[static_cast<size_t>(1 - side)];
        const Node &pg = g.node(a), &st = g.node(s);
        if (pg.op->name != "maxpool2d_grad" || st.op->name != "step" || external[static_cast<size_t>(a)] ||
            users[static_cast<size_t>(a)].size() != 1 || g.type(a) != n.type)
          continue;
        const ValueId z = reluOperand(g, pg.inputs[0], external);
        if (z == kNoValue || st.inputs[0] != z) continue;
        NNC_CHECK(r.replace(id, "maxpool2d_relu_grad", {r[z], r[pg.inputs[1]]}, pg.attrs));
        done = true;
      }
      if (done) continue;
    }
    r.copy(id);
  }
  return r.finish();
}

}  // namespace nnc::passes
