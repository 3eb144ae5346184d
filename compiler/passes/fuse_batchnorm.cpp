// fuse-batchnorm: training-mode batchnorm as four sweeps over memory.
// Autodiff writes batchnorm's gradient, and the train step its running
// statistics, as a dozen elementwise ops and reductions over the input's
// shape (batchnormGrad, addRunningStats), so that the gradient stays
// differentiable; each is a kernel and most a store. This pass, run on the
// final graph, recognizes them around each batchnorm(x, γ, β, ...):
//   mean(x) and the variances            → batchnorm_stats(x): S [2, C]
//   [relu](batchnorm(x, ...))            → batchnorm_fused(x, ..., S, act)
//   Σdy, Σdy·x̂ (dβ, dγ)                 → rows of batchnorm_grad_sums(dy, x, S[, y])
//   dx = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)) → batchnorm_grad_input(dy, x, S, γ, sums[, y])
// where dy·step(batchnorm) (relu's gradient) becomes dy with the relu output
// y as a mask. The ops these replace are left to the last dce. Without the
// statistics pattern (an inference graph) only the relu is fused; there a
// batchnorm after a convolution is already gone, folded by fold-batchnorm.
// batchnorm_fused is batchnorm in inference and in training alike, and
// batchnorm_stats is always the batch's, so no rewrite depends on the mode.
#include "compiler/passes/passes.h"

namespace nnc::passes {

namespace {

struct Match {
  ValueId bn = kNoValue, relu = kNoValue, x = kNoValue, gamma = kNoValue;
  bool stats = false;  // S is needed
  ValueId dy = kNoValue;
  bool masked = false;  // dy·step(bn) is the gradient
  // New ids: the batchnorm_fused node, S and the gradient sums.
  ValueId stored = kNoValue, s = kNoValue, sums = kNoValue;
};

enum class Role : uint8_t { None, Bn, Relu, StepOfBn, Mean, SumSquares, Dx, Dgamma, Dbeta };

struct Plan {
  std::vector<Match> matches;
  std::vector<Role> role;
  std::vector<size_t> of;  // the match a role belongs to
};

class Matcher {
 public:
  Matcher(const Graph& g, const std::vector<bool>& external, Plan& p)
      : g_(g), external_(external), users_(usersOf(g)), p_(p) {}

  void run(ValueId bn);

 private:
  // The first user of v with op `op` and exactly these operands.
  ValueId user(ValueId v, OpId op, const std::vector<ValueId>& inputs) const {
    for (ValueId u : users_[static_cast<size_t>(v)])
      if (g_.node(u).op->is(op) && g_.node(u).inputs == inputs) return u;
    return kNoValue;
  }
  // The first reduction of v over the statistics' axes.
  ValueId reduction(ValueId v, OpId op, bool keep) const {
    for (ValueId u : users_[static_cast<size_t>(v)]) {
      const Node& n = g_.node(u);
      if (n.op->is(op) && n.attrs.ints("axis") == axes_ && (n.attrs.i("keepdims") != 0) == keep) return u;
    }
    return kNoValue;
  }
  void set(ValueId v, Role r) {
    p_.role[static_cast<size_t>(v)] = r;
    p_.of[static_cast<size_t>(v)] = p_.matches.size();
  }
  void backward(Match& m, ValueId xc, ValueId sigma);
  ValueId inputGradient(const Match& m, ValueId xhat, ValueId sigma, ValueId dyXhat) const;

  const Graph& g_;
  const std::vector<bool>& external_;
  const std::vector<std::vector<ValueId>> users_;
  Plan& p_;
  std::vector<int64_t> axes_;
};

void Matcher::run(ValueId bn) {
  const Node& b = g_.node(bn);
  Match m;
  m.bn = bn;
  m.x = b.inputs[0];
  m.gamma = b.inputs[1];
  axes_ = g_.type(m.x).rank() == 4 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
  // The relu goes into the sweep when nothing else reads the batchnorm but
  // relu's gradient, step(bn), which reads the relu's output instead.
  bool fuseRelu = !external_[static_cast<size_t>(bn)];
  for (ValueId u : users_[static_cast<size_t>(bn)]) {
    const Node& n = g_.node(u);
    if (n.op->is(OpId::Relu) && m.relu == kNoValue) m.relu = u;
    else if (!n.op->is(OpId::Step)) fuseRelu = false;
  }
  if (!fuseRelu) m.relu = kNoValue;
  const ValueId mu = reduction(m.x, OpId::Mean, true);
  const ValueId xc = mu == kNoValue ? kNoValue : user(m.x, OpId::Sub, {m.x, mu});
  if (xc != kNoValue) {
    m.stats = true;
    set(mu, Role::Mean);
    if (const ValueId sq = user(xc, OpId::Square, {xc}); sq != kNoValue)
      if (const ValueId ss = reduction(sq, OpId::Sum, false); ss != kNoValue) set(ss, Role::SumSquares);
    const ValueId sq = user(xc, OpId::Mul, {xc, xc});
    const ValueId var = sq == kNoValue ? kNoValue : reduction(sq, OpId::Mean, true);
    ValueId sigma = kNoValue;
    if (var != kNoValue)
      for (ValueId u : users_[static_cast<size_t>(var)]) {
        const Node& n = g_.node(u);
        if (n.op->is(OpId::Add) && n.inputs[0] == var && isConstFill(g_, n.inputs[1], b.attrs.f("eps")))
          if (sigma = user(u, OpId::Sqrt, {u}); sigma != kNoValue) break;
      }
    if (sigma != kNoValue) backward(m, xc, sigma);
  }
  set(bn, Role::Bn);
  if (m.relu != kNoValue) {
    set(m.relu, Role::Relu);
    for (ValueId u : users_[static_cast<size_t>(bn)])
      if (g_.node(u).op->is(OpId::Step)) set(u, Role::StepOfBn);
  }
  p_.matches.push_back(m);
}

// batchnormGrad's nodes, in its operand orders: x̂ = xc/σ, dyXhat = dy·x̂,
// dγ = Σ dyXhat, dβ = Σ dy, and, where x needs a gradient,
// dx = (reshape(γ)/σ)·((dy − mean(dy)) − x̂·mean(dyXhat)).
void Matcher::backward(Match& m, ValueId xc, ValueId sigma) {
  const ValueId xhat = user(xc, OpId::Div, {xc, sigma});
  if (xhat == kNoValue) return;
  for (ValueId dyXhat : users_[static_cast<size_t>(xhat)]) {
    const Node& n = g_.node(dyXhat);
    if (!n.op->is(OpId::Mul) || n.inputs[1] != xhat || n.inputs[0] == xhat) continue;
    const ValueId dy = n.inputs[0];
    if (g_.type(dy) != g_.type(m.x)) continue;
    m.dy = dy;
    if (const ValueId dg = reduction(dyXhat, OpId::Sum, false); dg != kNoValue) set(dg, Role::Dgamma);
    if (const ValueId db = reduction(dy, OpId::Sum, false); db != kNoValue) set(db, Role::Dbeta);
    if (const ValueId dx = inputGradient(m, xhat, sigma, dyXhat); dx != kNoValue) set(dx, Role::Dx);
    // relu's gradient dy·step(bn): the sweeps mask dy themselves.
    const Node& d = g_.node(dy);
    if (d.op->is(OpId::Mul) && d.inputs.size() == 2)
      for (int side = 0; side < 2; ++side) {
        const Node& st = g_.node(d.inputs[static_cast<size_t>(side)]);
        const ValueId other = d.inputs[static_cast<size_t>(1 - side)];
        if (st.op->is(OpId::Step) && st.inputs[0] == m.bn && g_.type(other) == g_.type(dy)) {
          m.dy = other;
          m.masked = true;
          break;
        }
      }
    return;
  }
}

ValueId Matcher::inputGradient(const Match& m, ValueId xhat, ValueId sigma, ValueId dyXhat) const {
  ValueId scale = kNoValue;
  for (ValueId u : users_[static_cast<size_t>(sigma)]) {
    const Node& n = g_.node(u);
    if (n.op->is(OpId::Div) && n.inputs[1] == sigma && g_.node(n.inputs[0]).op->is(OpId::Reshape) &&
        g_.node(n.inputs[0]).inputs[0] == m.gamma)
      scale = u;
  }
  const ValueId dy = m.dy;
  const ValueId meanDyXhat = reduction(dyXhat, OpId::Mean, true), meanDy = reduction(dy, OpId::Mean, true);
  if (scale == kNoValue || meanDyXhat == kNoValue || meanDy == kNoValue) return kNoValue;
  const ValueId along = user(xhat, OpId::Mul, {xhat, meanDyXhat}), centered = user(dy, OpId::Sub, {dy, meanDy});
  if (along == kNoValue || centered == kNoValue) return kNoValue;
  const ValueId inner = user(centered, OpId::Sub, {centered, along});
  return inner == kNoValue ? kNoValue : user(scale, OpId::Mul, {scale, inner});
}

Attrs epsOf(const Node& bn) { return Attrs{{"eps", bn.attrs.f("eps")}}; }

// rows [row, row + 1) of a [2, C] value, as `shape`.
Expected<ValueId> row(Rewriter& r, ValueId old, ValueId v, int64_t at, const Shape& shape, bool named) {
  NNC_TRY(const ValueId s, r.add(old, "slice", {v}, {{"axis", int64_t{0}}, {"start", at}, {"end", at + 1}}));
  const Attrs a{{"shape", std::vector<int64_t>(shape.begin(), shape.end())}};
  return named ? r.replace(old, "reshape", {s}, a) : r.add(old, "reshape", {s}, a);
}

}  // namespace

Expected<Optimized> fuseBatchnorm(const Graph& g, const std::vector<bool>& external) {
  Plan p{{}, std::vector<Role>(g.size(), Role::None), std::vector<size_t>(g.size(), 0)};
  Matcher matcher(g, external, p);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id)
    if (g.node(id).op->is(OpId::Batchnorm)) matcher.run(id);
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const size_t i = static_cast<size_t>(id);
    if (p.role[i] == Role::None) {
      r.copy(id);
      continue;
    }
    Match& m = p.matches[p.of[i]];
    const Node& bn = g.node(m.bn);
    const int64_t channels = g.type(m.x).shape[1];
    if (m.stats && m.s == kNoValue) {
      NNC_TRY(m.s, r.add(m.bn, "batchnorm_stats", {r[m.x]}, {}));
    }
    auto sums = [&]() -> Expected<ValueId> {
      if (m.sums != kNoValue) return m.sums;
      std::vector<ValueId> in{r[m.dy], r[m.x], m.s};
      if (m.masked) in.push_back(m.stored);
      NNC_TRY(m.sums, r.add(id, "batchnorm_grad_sums", std::move(in), epsOf(bn)));
      return m.sums;
    };
    switch (p.role[i]) {
      case Role::Bn: {
        std::vector<ValueId> in;
        for (ValueId v : bn.inputs) in.push_back(r[v]);
        if (m.s != kNoValue) in.push_back(m.s);
        Attrs a = bn.attrs;
        a.set("act", std::string(m.relu != kNoValue ? "relu" : "none"));
        NNC_TRY(m.stored, r.replace(m.relu != kNoValue ? m.relu : id, "batchnorm_fused", std::move(in), a));
        break;
      }
      case Role::Relu: break;  // computed by the batchnorm_fused above
      case Role::StepOfBn: NNC_CHECK(r.replace(id, "step", {m.stored}, g.node(id).attrs)); break;
      case Role::Mean: NNC_CHECK(row(r, id, m.s, 0, g.type(id).shape, true)); break;
      case Role::SumSquares: {
        // Σ(x − mean)² = count · the biased variance.
        NNC_TRY(const ValueId var, row(r, id, m.s, 1, {channels}, false));
        const double count = static_cast<double>(g.type(m.x).numel() / channels);
        NNC_TRY(const ValueId c, r.out().addSource("const", "", TensorType{DType::F32, {}},
                                                  Attrs{{"value", std::vector<double>{count}}}, g.node(id).loc));
        NNC_CHECK(r.replace(id, "mul", {var, c}, {}));
        break;
      }
      case Role::Dx: {
        NNC_TRY(const ValueId s, sums());
        std::vector<ValueId> in{r[m.dy], r[m.x], m.s, r[m.gamma], s};
        if (m.masked) in.push_back(m.stored);
        NNC_CHECK(r.replace(id, "batchnorm_grad_input", std::move(in), epsOf(bn)));
        break;
      }
      case Role::Dgamma:
      case Role::Dbeta: {
        NNC_TRY(const ValueId s, sums());
        NNC_CHECK(row(r, id, s, p.role[i] == Role::Dgamma ? 1 : 0, g.type(id).shape, true));
        break;
      }
      case Role::None: break;
    }
  }
  return r.finish();
}

}  // namespace nnc::passes
