// fuse-pool: relu followed by max-pooling. max and relu commute, so
// maxpool2d(relu(z)) is the window maximum of z starting from 0 instead of
// −inf: the relu costs nothing and its [N, C, H, W] result is never stored.
// Backward, step(z)·maxpool2d_grad(relu(z), dy) is the pooling gradient
// whose scan starts from 0 (a window with no positive element passes no
// gradient), one kernel instead of three.
// When nothing else reads the convolution before the relu (inference), the
// pooling moves into the convolution (conv2d_pool_fused), whose [N, C, H, W]
// result is then never stored either.
#include <algorithm>

#include "compiler/ops/activation.h"
#include "compiler/passes/passes.h"

namespace nnc::passes {

namespace {

// relu(z)'s operand z, or kNoValue.
ValueId reluOperand(const Graph& g, ValueId v, const std::vector<bool>& external) {
  const Node& n = g.node(v);
  return n.op->is(OpId::Relu) && !external[static_cast<size_t>(v)] ? n.inputs[0] : kNoValue;
}

bool isConvWithoutAct(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  return n.op->is(OpId::Conv2dFused) && actAttr(n.attrs) == kActNone;
}

// k when a pooling's windows are k×k at stride k without padding over an
// [N, C, H, W] value (they tile it), else 0.
int64_t tilingPool(const Attrs& a, const Shape& in) {
  const std::vector<int64_t>& k = a.ints("kernel");
  std::vector<int64_t> s = a.ints("stride");
  if (s.empty()) s = k;
  const std::vector<int64_t>& p = a.ints("pad");
  const bool unpadded = std::all_of(p.begin(), p.end(), [](int64_t x) { return x == 0; });
  auto same = [](const std::vector<int64_t>& v, int64_t x) {
    return std::all_of(v.begin(), v.end(), [&](int64_t y) { return y == x; });
  };
  if (in.size() != 4 || k.empty() || !unpadded || !same(k, k[0]) || !same(s, k[0])) return 0;
  return k[0];
}

}  // namespace

Expected<Optimized> fusePool(const Graph& g, const std::vector<bool>& external) {
  const std::vector<std::vector<ValueId>> users = usersOf(g);
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    if (n.op->is(OpId::Maxpool2d)) {
      if (const ValueId z = reluOperand(g, n.inputs[0], external); z != kNoValue) {
        if (const int64_t pool = tilingPool(n.attrs, g.type(z).shape);
            pool > 0 && isConvWithoutAct(g, z) && !external[static_cast<size_t>(z)] &&
            users[static_cast<size_t>(z)].size() == 1 && users[static_cast<size_t>(n.inputs[0])].size() == 1) {
          // Nothing else reads the convolution or its relu (inference: the
          // train step's relu gradient reads z): pool inside the convolution.
          const Node& conv = g.node(z);
          Attrs a = conv.attrs;
          setActAttr(a, kActRelu);
          a.set("pool", pool);
          std::vector<ValueId> in;
          for (ValueId v : conv.inputs) in.push_back(r[v]);
          NNC_CHECK(r.replace(id, "conv2d_pool_fused", std::move(in), std::move(a)));
          continue;
        }
        NNC_CHECK(r.replace(id, "maxpool2d_relu", {r[z]}, n.attrs));
        continue;
      }
    }
    // mul(maxpool2d_grad(relu(z), dy), step(z)), either operand order.
    if (n.op->is(OpId::Mul) && n.inputs.size() == 2) {
      bool done = false;
      for (int side = 0; side < 2 && !done; ++side) {
        const ValueId a = n.inputs[static_cast<size_t>(side)], s = n.inputs[static_cast<size_t>(1 - side)];
        const Node &pg = g.node(a), &st = g.node(s);
        if (!pg.op->is(OpId::Maxpool2dGrad) || !st.op->is(OpId::Step) || external[static_cast<size_t>(a)] ||
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
