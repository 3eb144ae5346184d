// fuse-epilogue: a GEMM's bias add and activation happen in its store.
//   add(matmul(a, W), b)       → matmul_fused(a, W, b)        (b: one per column)
//   relu|sigmoid|tanh|gelu|silu(that) → matmul_fused(a, W, b, act)
//   relu|sigmoid|tanh(conv2d_fused(…)) → conv2d_fused(…, act)
// The pre-activation z then has no store of its own. Training also reads z
// in relu's gradient, step(z); since relu(z) > 0 exactly where z > 0, that
// becomes step(relu(z)), leaving the activation z's only user.
#include "compiler/ops/activation.h"
#include "compiler/passes/passes.h"

namespace nnc::passes {

namespace {

struct Plan {
  std::vector<bool> absorbed;       // computed inside its consumer's fused node
  std::vector<ValueId> stepOfRelu;  // step(z) → step(this relu(z))
  std::vector<ValueId> biasMatmul;  // add node → its matmul operand
  std::vector<ValueId> biasValue;   // add node → its bias operand
  std::vector<bool> activation;     // act node fused onto its producer
};

Plan plan(const Graph& g, const std::vector<bool>& external) {
  const size_t n = g.size();
  const std::vector<std::vector<ValueId>> users = usersOf(g);
  Plan p{std::vector<bool>(n, false), std::vector<ValueId>(n, kNoValue), std::vector<ValueId>(n, kNoValue),
         std::vector<ValueId>(n, kNoValue), std::vector<bool>(n, false)};
  for (ValueId id = 0; id < static_cast<ValueId>(n); ++id) {
    const Node& s = g.node(id);
    if (!s.op->is(OpId::Step)) continue;
    for (ValueId u : users[static_cast<size_t>(s.inputs[0])])
      if (u < id && g.node(u).op->is(OpId::Relu) && g.type(u) == s.type) p.stepOfRelu[static_cast<size_t>(id)] = u;
  }
  // The users of v once step(v)s are rewritten, other than `except`.
  auto onlyUser = [&](ValueId v, ValueId user) {
    if (external[static_cast<size_t>(v)]) return false;
    for (ValueId u : users[static_cast<size_t>(v)])
      if (u != user && p.stepOfRelu[static_cast<size_t>(u)] == kNoValue) return false;
    return true;
  };
  for (ValueId id = 0; id < static_cast<ValueId>(n); ++id) {
    const Node& a = g.node(id);
    if (!a.op->is(OpId::Add) || a.inputs.size() != 2) continue;
    for (int side = 0; side < 2; ++side) {
      const ValueId m = a.inputs[static_cast<size_t>(side)], b = a.inputs[static_cast<size_t>(1 - side)];
      if (!isGemm(g, m) || !onlyUser(m, id) || g.type(m) != a.type || m == b) continue;
      if (g.type(b).shape != Shape{a.type.shape.back()} || g.type(b).dtype != a.type.dtype) continue;
      p.biasMatmul[static_cast<size_t>(id)] = m;
      p.biasValue[static_cast<size_t>(id)] = b;
      p.absorbed[static_cast<size_t>(m)] = true;
      break;
    }
  }
  for (ValueId id = 0; id < static_cast<ValueId>(n); ++id) {
    const Node& act = g.node(id);
    const std::optional<Activation> a = activationOf(act);
    if (!a) continue;
    const ValueId y = act.inputs[0];
    const Node& prod = g.node(y);
    const bool gemm = p.biasMatmul[static_cast<size_t>(y)] != kNoValue || isGemm(g, y) ||
                      (prod.op->is(OpId::Conv2dFused) && actAttr(prod.attrs) == kActNone && convActivation(*a));
    // A step(y) may only be rewritten onto a relu.
    bool ok = gemm && onlyUser(y, id);
    for (ValueId u : users[static_cast<size_t>(y)])
      ok = ok && (u == id || act.op->is(OpId::Relu));
    if (!ok) continue;
    p.activation[static_cast<size_t>(id)] = true;
    p.absorbed[static_cast<size_t>(y)] = true;
  }
  // A step(z) whose z stays stored keeps reading z.
  for (ValueId id = 0; id < static_cast<ValueId>(n); ++id)
    if (p.stepOfRelu[static_cast<size_t>(id)] != kNoValue && !p.absorbed[static_cast<size_t>(g.node(id).inputs[0])])
      p.stepOfRelu[static_cast<size_t>(id)] = kNoValue;
  return p;
}

}  // namespace

Expected<Optimized> fuseEpilogue(const Graph& g, const std::vector<bool>& external) {
  const Plan p = plan(g, external);
  Rewriter r(g);
  // The fused GEMM computing add/matmul node y, with activation `act`.
  auto gemm = [&](ValueId id, ValueId y, Activation act) -> Status {
    const Node& prod = g.node(y);
    if (prod.op->is(OpId::Conv2dFused)) {
      Attrs attrs = prod.attrs;
      setActAttr(attrs, act);
      std::vector<ValueId> in;
      for (ValueId v : prod.inputs) in.push_back(r[v]);
      NNC_CHECK(r.replace(id, "conv2d_fused", std::move(in), attrs));
      return ok();
    }
    const ValueId m = p.biasMatmul[static_cast<size_t>(y)] != kNoValue ? p.biasMatmul[static_cast<size_t>(y)] : y;
    const Node& mm = g.node(m);
    std::vector<ValueId> in{r[mm.inputs[0]], r[mm.inputs[1]]};
    if (m != y) in.push_back(r[p.biasValue[static_cast<size_t>(y)]]);
    Attrs attrs = mm.attrs;
    setActAttr(attrs, act);
    NNC_CHECK(r.replace(id, "matmul_fused", std::move(in), attrs));
    return ok();
  };
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    const size_t i = static_cast<size_t>(id);
    if (p.absorbed[i]) continue;
    if (p.activation[i]) {
      NNC_CHECK(gemm(id, n.inputs[0], *activationOf(n)));
    } else if (p.biasMatmul[i] != kNoValue) {
      NNC_CHECK(gemm(id, id, kActNone));
    } else if (p.stepOfRelu[i] != kNoValue) {
      NNC_CHECK(r.replace(id, "step", {r[p.stepOfRelu[i]]}, n.attrs));
    } else {
      r.copy(id);
    }
  }
  return r.finish();
}

}  // namespace nnc::passes
