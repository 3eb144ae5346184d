// Loop-IR lowerings of the fused batchnorm ops (compiler/ops/batchnorm_ops.cpp).
// x is viewed as [N, C, S]. The per-channel sweeps (statistics, gradient
// sums) are parallel over channels, each channel's sum one fixed sequence,
// so results do not depend on the thread count; the elementwise sweeps are
// parallel over N. Statistics take two passes over a channel, mean then
// Σ(x − mean)², back to back: the loop IR is f32 only, so no double
// accumulator could rescue E[x²] − mean² from cancellation when |mean| ≫ σ,
// and a channel's slice (N·S floats, 200 KB for [64, 32, 28, 28]) is still in
// L2 for the second pass, which then costs no memory traffic.
#include "compiler/ops/activation.h"
#include "compiler/ops/batchnorm_ops.h"

namespace nnc {

namespace {

using namespace lx;

struct Nc {
  int64_t n, c, s;
  double count() const { return static_cast<double>(n * s); }
  // x[i, ch, k] for loop variables i and k and channel index ch.
  Affine at(int i, const Affine& ch, int k) const { return v(i, c * s) + ch * s + v(k); }
};

Nc ncOf(const Shape& x) { return {x[0], x[1], x.size() == 4 ? x[2] * x[3] : 1}; }

void emit(LowerArgs& a, Stmt s) { a.k.body.push_back(std::move(s)); }

// dst[at] = Σ over the channel's elements of term(i, k), then · scale. The
// sum over k is an innermost loop of its own, so both printers see a
// reduction they vectorize (C++ needs a lone store in the loop).
template <class Term>
void channelSum(LowerArgs& a, const Nc& d, std::vector<Stmt>& body, int dst, const Affine& at, Term term,
                double scale) {
  const int i = a.k.newVar(), k = a.k.newVar();
  body.push_back(loop::store(dst, at, num(0)));
  body.push_back(loops({{i, d.n}, {k, d.s}}, {loop::store(dst, at, term(i, k), loop::Combine::Add)}));
  body.push_back(loop::store(dst, at, mul(ld(dst, at), num(scale))));
}

// Per channel into stats[2, C] (as batchnorm_stats' result): the mean, then
// the biased variance about it.
std::vector<Stmt> statsBody(LowerArgs& a, const Nc& d, int x, int stats, int ch) {
  std::vector<Stmt> body;
  channelSum(a, d, body, stats, v(ch), [&](int i, int k) { return ld(x, d.at(i, v(ch), k)); }, 1 / d.count());
  channelSum(a, d, body, stats, v(ch) + d.c,
             [&](int i, int k) {
               ExprP dev = sub(ld(x, d.at(i, v(ch), k)), ld(stats, v(ch)));
               return mul(dev, dev);
             },
             1 / d.count());
  return body;
}

// 1/√(var + eps) of channel ch from stats[2, C].
ExprP rstd(const LowerArgs& a, int stats, const Nc& d, int ch) {
  return div(num(1), un(Op::Sqrt, add(ld(stats, v(ch) + d.c), num(a.attrs().f("eps")))));
}

// dy·step(y) when relu's output y is operand yOperand, else dy.
ExprP maskedDy(const LowerArgs& a, size_t yOperand, const Affine& at) {
  ExprP dy = ld(a.in[0], at);
  return a.in.size() > yOperand ? mul(dy, gt(ld(a.in[yOperand], at), num(0))) : dy;
}

}  // namespace

Status lowerBatchnormStats(LowerArgs& a) {
  const Nc d = ncOf(a.inTypes[0].shape);
  const int ch = a.k.newVar();
  emit(a, loops({{ch, d.c}}, statsBody(a, d, a.in[0], a.out, ch), true));
  return ok();
}

// Per channel the scale γ/σ and the statistics (given, computed here in
// training, the running ones in inference), then y = act((x − mean)·scale + β).
Status lowerBatchnormFused(LowerArgs& a) {
  const Nc d = ncOf(a.inTypes[0].shape);
  const int x = a.in[0], gamma = a.in[1], beta = a.in[2];
  int stats = a.in.size() > 5 ? a.in[5] : -1;
  const int ch = a.k.newVar();
  if (!a.training) {
    stats = a.temp(2 * d.c, "stats");
    emit(a, loops({{ch, d.c}}, {loop::store(stats, v(ch), ld(a.in[3], v(ch))),
                                loop::store(stats, v(ch) + d.c, ld(a.in[4], v(ch)))}));
  } else if (stats < 0) {
    stats = a.temp(2 * d.c, "stats");
    emit(a, loops({{ch, d.c}}, statsBody(a, d, x, stats, ch), true));
  }
  const int scale = a.temp(d.c, "scale"), c2 = a.k.newVar();
  emit(a, loops({{c2, d.c}}, {loop::store(scale, v(c2), mul(ld(gamma, v(c2)), rstd(a, stats, d, c2)))}));
  const int i = a.k.newVar(), c3 = a.k.newVar(), k = a.k.newVar();
  const Affine el = d.at(i, v(c3), k);
  ExprP y = add(mul(sub(ld(x, el), ld(stats, v(c3))), ld(scale, v(c3))), ld(beta, v(c3)));
  const Activation act = actAttr(a.attrs());
  if (act != kActNone) y = activationOp(act).pointwise({y}, activationAttrs(act));
  emit(a, loops({{i, d.n}, {c3, d.c}, {k, d.s}}, {loop::store(a.out, el, y)}, true));
  return ok();
}

// sums[0, ch] = Σ dy, sums[1, ch] = Σ dy·(x − mean), then ·1/σ. Both sums
// read a row of the channel, one after the other, so the second reads it
// from L1: one pass over dy and x in memory.
Status lowerBatchnormGradSums(LowerArgs& a) {
  const Nc d = ncOf(a.inTypes[0].shape);
  const int x = a.in[1], stats = a.in[2], out = a.out;
  const int ch = a.k.newVar(), i = a.k.newVar(), k1 = a.k.newVar(), k2 = a.k.newVar();
  const Affine s0 = v(ch), s1 = v(ch) + d.c;
  ExprP dev = sub(ld(x, d.at(i, v(ch), k2)), ld(stats, v(ch)));
  std::vector<Stmt> row;
  row.push_back(loops({{k1, d.s}}, {loop::store(out, s0, maskedDy(a, 3, d.at(i, v(ch), k1)), loop::Combine::Add)}));
  row.push_back(loops({{k2, d.s}}, {loop::store(out, s1, mul(maskedDy(a, 3, d.at(i, v(ch), k2)), dev), loop::Combine::Add)}));
  std::vector<Stmt> body;
  body.push_back(loop::store(out, s0, num(0)));
  body.push_back(loop::store(out, s1, num(0)));
  body.push_back(loops({{i, d.n}}, std::move(row)));
  body.push_back(loop::store(out, s1, mul(ld(out, s1), rstd(a, stats, d, ch))));
  emit(a, loops({{ch, d.c}}, std::move(body), true));
  return ok();
}

// dx = k·(dy − mean(dy) − (x − mean)·b), with per channel k = γ/σ, and
// b = mean(dy·x̂)/σ, so that (x − mean)·b is x̂·mean(dy·x̂).
Status lowerBatchnormGradInput(LowerArgs& a) {
  const Nc d = ncOf(a.inTypes[0].shape);
  const int x = a.in[1], stats = a.in[2], gamma = a.in[3], sums = a.in[4];
  const int kbuf = a.temp(d.c, "k"), mdy = a.temp(d.c, "mean_dy"), bbuf = a.temp(d.c, "b");
  const int ch = a.k.newVar();
  const double inv = 1 / d.count();
  emit(a, loops({{ch, d.c}}, {loop::store(kbuf, v(ch), mul(ld(gamma, v(ch)), rstd(a, stats, d, ch))),
                              loop::store(mdy, v(ch), mul(ld(sums, v(ch)), num(inv))),
                              loop::store(bbuf, v(ch), mul(mul(ld(sums, v(ch) + d.c), num(inv)), rstd(a, stats, d, ch)))}));
  const int i = a.k.newVar(), c = a.k.newVar(), k = a.k.newVar();
  const Affine el = d.at(i, v(c), k);
  ExprP dev = sub(ld(x, el), ld(stats, v(c)));
  ExprP dx = mul(ld(kbuf, v(c)), sub(sub(maskedDy(a, 5, el), ld(mdy, v(c))), mul(dev, ld(bbuf, v(c)))));
  emit(a, loops({{i, d.n}, {c, d.c}, {k, d.s}}, {loop::store(a.out, el, dx)}, true));
  return ok();
}

}  // namespace nnc
