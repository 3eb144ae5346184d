// group_norm (torch.nn.GroupNorm): x [N, C, ...] normalized over each group
// of C/groups channels and every spatial position, then scaled and shifted
// per channel. In row-major order a group of one sample is one contiguous
// block of M = C/groups · spatial elements, which the evaluation and the
// lowering walk directly.
#include <cmath>

#include <fmt/format.h>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/lower/lower.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

namespace {

// [N, G, C/G, spatial]: the sizes the loops run over.
struct GroupGeom {
  int64_t n, groups, perGroup, spatial;
  int64_t block() const { return perGroup * spatial; }  // M
};

GroupGeom groupGeom(const Shape& x, int64_t groups) {
  int64_t spatial = 1;
  for (size_t d = 2; d < x.size(); ++d) spatial *= x[d];
  return {x[0], groups, x[1] / groups, spatial};
}

Expected<TensorType> groupNormShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  const TensorType &x = in[0], &gamma = in[1], &beta = in[2];
  const int64_t groups = attrs.i("groups");
  const double eps = attrs.f("eps");
  const std::string operands = fmt::format("x {}, gamma {}, beta {}", typeString(x), typeString(gamma), typeString(beta));
  if (x.rank() < 2) return error("group_norm: x must be [N, C, ...], got {}", operands);
  const int64_t c = x.shape[1];
  if (gamma.shape != Shape{c} || beta.shape != Shape{c})
    return error("group_norm: gamma and beta must be [{}] (the channels of x): {}", c, operands);
  if (groups < 1 || c % groups != 0)
    return error("group_norm: groups must be positive and divide the {} channels, got {}: {}", c, groups, operands);
  if (!(eps > 0)) return error("group_norm: eps must be positive, got {}", eps);
  return x;
}

// Biased variance, as torch.
Status groupNormEval(const EvalArgs& e) {
  const Tensor &x = *e.in[0], &gamma = *e.in[1], &beta = *e.in[2];
  const GroupGeom g = groupGeom(x.shape(), e.attrs.i("groups"));
  const double eps = e.attrs.f("eps");
  const auto m = static_cast<size_t>(g.block());
  for (int64_t b = 0; b < g.n * g.groups; ++b) {
    const double* xs = x.data.data() + static_cast<size_t>(b) * m;
    double* ys = e.out.data.data() + static_cast<size_t>(b) * m;
    double mean = 0, var = 0;
    for (size_t j = 0; j < m; ++j) mean += xs[j];
    mean /= static_cast<double>(m);
    for (size_t j = 0; j < m; ++j) var += (xs[j] - mean) * (xs[j] - mean);
    const double rstd = 1 / std::sqrt(var / static_cast<double>(m) + eps);
    for (size_t j = 0; j < m; ++j) {
      const auto c = static_cast<size_t>((b % g.groups) * g.perGroup + static_cast<int64_t>(j) / g.spatial);
      ys[j] = (xs[j] - mean) * rstd * gamma.data[c] + beta.data[c];
    }
  }
  return ok();
}

// Per (sample, group): the mean, then 1/sqrt(var + eps) into two scratch
// buffers (sums in the loop, two passes as the evaluation), then the output.
Status groupNormLower(LowerArgs& a) {
  using loop::Affine;
  using loop::Op;
  const GroupGeom g = groupGeom(a.inTypes[0].shape, a.attrs().i("groups"));
  const int mean = a.temp(g.n * g.groups, "mean"), rstd = a.temp(g.n * g.groups, "rstd");
  const std::vector<int> ng = newVars(a.k, 2);
  const int j = a.k.newVar(), j2 = a.k.newVar(), cc = a.k.newVar(), s = a.k.newVar();
  const Affine stat = Affine::var(ng[0], g.groups) + Affine::var(ng[1]);
  const Affine base = stat * g.block();
  const auto invM = static_cast<float>(1.0 / static_cast<double>(g.block()));
  const auto eps = static_cast<float>(a.attrs().f("eps"));
  auto centered = [&](const Affine& at) {
    return loop::apply(Op::Sub, {loop::load(a.in[0], at), loop::load(mean, stat)});
  };
  const loop::ExprP xc = centered(base + Affine::var(j2));
  const Affine at = base + Affine::var(cc, g.spatial) + Affine::var(s);
  const Affine ch = Affine::var(ng[1], g.perGroup) + Affine::var(cc);
  const loop::ExprP y = loop::apply(
      Op::Add, {loop::apply(Op::Mul, {loop::apply(Op::Mul, {centered(at), loop::load(rstd, stat)}), loop::load(a.in[1], ch)}),
                loop::load(a.in[2], ch)});
  std::vector<loop::Stmt> body;
  body.push_back(loop::store(mean, stat, loop::constant(0)));
  body.push_back(loop::loopOver(j, g.block(), {loop::store(mean, stat, loop::load(a.in[0], base + Affine::var(j)), loop::Combine::Add)}));
  body.push_back(loop::store(mean, stat, loop::apply(Op::Mul, {loop::load(mean, stat), loop::constant(invM)})));
  body.push_back(loop::store(rstd, stat, loop::constant(0)));
  body.push_back(loop::loopOver(j2, g.block(), {loop::store(rstd, stat, loop::apply(Op::Mul, {xc, xc}), loop::Combine::Add)}));
  const loop::ExprP var = loop::apply(Op::Mul, {loop::load(rstd, stat), loop::constant(invM)});
  body.push_back(loop::store(
      rstd, stat,
      loop::apply(Op::Div, {loop::constant(1), loop::apply(Op::Sqrt, {loop::apply(Op::Add, {var, loop::constant(eps)})})})));
  body.push_back(loop::loopOver(cc, g.perGroup, {loop::loopOver(s, g.spatial, {loop::store(a.out, at, y)})}));
  for (loop::Stmt& st : nest(ng, {g.n, g.groups}, std::move(body))) a.k.body.push_back(std::move(st));
  return ok();
}

using Grads = Expected<std::vector<ValueId>>;

// The gradient as ordinary ops over the [N, G, M] view (so it is itself
// differentiable): with x̂ = (x − μ)·r, r = 1/sqrt(var + eps) and
// g = dy·γ, dx = r·(g − mean(g) − x̂·mean(g·x̂)) per group;
// dγ = Σ dy·x̂ and dβ = Σ dy over every axis but the channels.
Grads groupNormGrad(GradCtx& c) {
  const Shape& xs = c.inTypes[0].shape;
  const GroupGeom geo = groupGeom(xs, c.attrs.i("groups"));
  const Attrs keep2{{"axis", std::vector<int64_t>{2}}, {"keepdims", int64_t{1}}};
  NNC_TRY(ValueId xr, c.op("reshape", {c.in[0]}, {{"shape", Shape{geo.n, geo.groups, geo.block()}}}));
  NNC_TRY(ValueId mu, c.op("mean", {xr}, keep2));
  NNC_TRY(ValueId xc, c.op("sub", {xr, mu}));
  NNC_TRY(ValueId sq, c.op("square", {xc}));
  NNC_TRY(ValueId var, c.op("mean", {sq}, keep2));
  NNC_TRY(ValueId eps, c.constant(c.attrs.f("eps")));
  NNC_TRY(ValueId ve, c.op("add", {var, eps}));
  NNC_TRY(ValueId sd, c.op("sqrt", {ve}));
  NNC_TRY(ValueId r, c.op("div", {xc, sd}));  // x̂ in the group view
  Shape chShape(xs.size() - 1, 1);
  chShape[0] = xs[1];  // [C, 1, ...]: broadcasts over [N, C, spatial...]
  std::vector<int64_t> notChannel{0};
  for (size_t d = 2; d < xs.size(); ++d) notChannel.push_back(static_cast<int64_t>(d));
  std::vector<ValueId> grads(3, kNoValue);
  NNC_TRY(ValueId xhat, c.op("reshape", {r}, {{"shape", xs}}));
  if (c.need(1)) {
    NNC_TRY(ValueId p, c.mul(c.dy, xhat));
    NNC_TRY(grads[1], c.op("sum", {p}, {{"axis", notChannel}}));
  }
  if (c.need(2)) {
    NNC_TRY(grads[2], c.op("sum", {c.dy}, {{"axis", notChannel}}));
  }
  if (c.need(0)) {
    NNC_TRY(ValueId gb, c.op("reshape", {c.in[1]}, {{"shape", chShape}}));
    NNC_TRY(ValueId gf, c.mul(c.dy, gb));
    NNC_TRY(ValueId gr, c.op("reshape", {gf}, {{"shape", Shape{geo.n, geo.groups, geo.block()}}}));
    NNC_TRY(ValueId gm, c.op("mean", {gr}, keep2));
    NNC_TRY(ValueId gx, c.mul(gr, r));
    NNC_TRY(ValueId gxm, c.op("mean", {gx}, keep2));
    NNC_TRY(ValueId t1, c.op("sub", {gr, gm}));
    NNC_TRY(ValueId t2, c.mul(r, gxm));
    NNC_TRY(ValueId t3, c.op("sub", {t1, t2}));
    NNC_TRY(ValueId dx, c.op("div", {t3, sd}));
    NNC_TRY(grads[0], c.op("reshape", {dx}, {{"shape", xs}}));
  }
  return grads;
}

}  // namespace

void addGroupNormOps(std::vector<OpDef>& r) {
  r.push_back({.name = "group_norm",
               .operands = {"x", "gamma", "beta"},
               .attrs = {{"groups", AttrKind::Int, std::nullopt}, {"eps", AttrKind::Float, Attr{1e-5}}},
               .shape = groupNormShape,
               .eval = groupNormEval,
               .grad = groupNormGrad,
               .lower = groupNormLower,
               .summary = "torch's GroupNorm: x [N, C, ...] normalized over groups of C/groups channels, then "
                          "gamma [C] * xhat + beta [C]"});
}

}  // namespace nnc
