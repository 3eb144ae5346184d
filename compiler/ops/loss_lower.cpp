// Loop-IR lowerings of the softmax family, the losses and the metrics.
// Per-row work (log-sum-exp, arg-max) runs in a parallel loop over rows into
// per-row temps; a scalar result is then one ordered sum over those (or over
// block partial sums), never a store shared by parallel iterations.
//
// Class ids are i32 values held as floats. The reference rejects an id out
// of [0, K); lowered code cannot report errors, so the runtime validates
// labels before feeding them. Here an id is only ever compared with a
// column index (never used to address memory), so a bad id reads nothing out
// of bounds: it matches no column (a zero one-hot row, a loss term of 0, a
// miss for accuracy).
#include <functional>

#include "compiler/ops/lower_rules.h"

namespace nnc {

namespace {

using namespace lx;
using loop::Combine;

void emit(LowerArgs& a, Stmt s) { a.k.body.push_back(std::move(s)); }

// A tensor as [outer, n, inner] around the reduced axis.
struct Slices {
  int64_t outer = 1, n = 1, inner = 1;
  Slices(const Shape& s, int axis) {
    for (int d = 0; d < static_cast<int>(s.size()); ++d) (d < axis ? outer : d == axis ? n : inner) *= s[d];
  }
  Slices(int64_t o, int64_t k, int64_t i) : outer(o), n(k), inner(i) {}
  Affine el(int o, int k, int i) const { return v(o, n * inner) + v(k, inner) + v(i); }
  Affine slice(int o, int i) const { return v(o, inner) + v(i); }
};

int axisOf(const LowerArgs& a) {
  const int64_t axis = a.attrs().i("axis"), rank = a.inTypes[0].rank();
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

// Statements for one o of a parallel loop over the slices: lse[o, i] =
// max + log Σ exp(x − max) along the axis, as the reference (max first,
// so exp never overflows). The max starts from the slice's first element;
// a NaN anywhere makes the max (max= propagates it) or else the sum NaN,
// hence the slice, as in the reference. Without `finish`, lse is left
// holding the max and sum the Σ.
std::vector<Stmt> logSumExp(loop::Kernel& k, int x, const Slices& s, int o, int lse, int sum, bool finish = true) {
  auto over = [&](bool axis, auto body) {
    const int kk = k.newVar(), i = k.newVar();
    std::vector<Stmt> inner = body(kk, i);
    return axis ? loops({{kk, s.n}, {i, s.inner}}, std::move(inner)) : loops({{i, s.inner}}, std::move(inner));
  };
  std::vector<Stmt> r;
  r.push_back(over(false, [&](int, int i) {
    return std::vector<Stmt>{loop::store(lse, s.slice(o, i), ld(x, v(o, s.n * s.inner) + v(i))),
                             loop::store(sum, s.slice(o, i), num(0))};
  }));
  r.push_back(over(true, [&](int kk, int i) {
    return std::vector<Stmt>{loop::store(lse, s.slice(o, i), ld(x, s.el(o, kk, i)), Combine::Max)};
  }));
  r.push_back(over(true, [&](int kk, int i) {
    return std::vector<Stmt>{loop::store(
        sum, s.slice(o, i), un(Op::Exp, sub(ld(x, s.el(o, kk, i)), ld(lse, s.slice(o, i)))), Combine::Add)};
  }));
  if (!finish) return r;
  r.push_back(over(false, [&](int, int i) {
    const Affine at = s.slice(o, i);
    return std::vector<Stmt>{loop::store(lse, at, add(ld(lse, at), un(Op::Log, ld(sum, at))))};
  }));
  return r;
}

// Statements for one o of a parallel loop: arg[o, i] = the index of the
// first maximum along the axis, NaN counting as the maximum (the first NaN
// wins), as the reference's argmaxOf. best: scratch of arg's size.
std::vector<Stmt> argMax(loop::Kernel& k, int x, const Slices& s, int o, int arg, int best) {
  const int i0 = k.newVar(), kk = k.newVar(), i = k.newVar();
  const ExprP xv = ld(x, s.el(o, kk, i)), b = ld(best, s.slice(o, i));
  // x > best, or x is NaN while best is not (x == x is false only for NaN).
  const ExprP wins = add(gt(xv, b), mul(sub(num(1), eq(xv, xv)), eq(b, b)));
  std::vector<Stmt> r;
  r.push_back(loops({{i0, s.inner}}, {loop::store(best, s.slice(o, i0), ld(x, v(o, s.n * s.inner) + v(i0))),
                                      loop::store(arg, s.slice(o, i0), num(0))}));
  // arg first: both stores test `wins` against the old best.
  r.push_back(loops({{kk, s.n}, {i, s.inner}},
                    {loop::store(arg, s.slice(o, i), select(wins, loop::indexOf(kk), ld(arg, s.slice(o, i)))),
                     loop::store(best, s.slice(o, i), select(wins, xv, b))}));
  return r;
}

// out[0] = factor · Σ_{e < n} term(e). Blocks of kBlock terms are summed in
// a parallel loop into partial sums, which (and the tail) are then added in
// order; blocking also keeps long f32 sums accurate.
void sumAll(LowerArgs& a, int64_t n, const std::function<ExprP(const Affine&)>& term, double factor) {
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = n / kBlock, tail = n % kBlock;
  const Affine out = Affine::constant(0);
  int part = -1;
  if (blocks > 0) {
    part = a.temp(blocks, "partial");
    const int b = a.k.newVar(), r = a.k.newVar();
    emit(a, loops({{b, blocks}},
                  {loop::store(part, v(b), num(0)),
                   loops({{r, kBlock}}, {loop::store(part, v(b), term(v(b, kBlock) + v(r)), Combine::Add)})},
                  true));
  }
  emit(a, loop::store(a.out, out, num(0)));
  if (blocks > 0) {
    const int b = a.k.newVar();
    emit(a, loops({{b, blocks}}, {loop::store(a.out, out, ld(part, v(b)), Combine::Add)}));
  }
  if (tail > 0) {
    const int r = a.k.newVar();
    emit(a, loops({{r, tail}}, {loop::store(a.out, out, term(v(r) + blocks * kBlock), Combine::Add)}));
  }
  if (factor != 1) emit(a, loop::store(a.out, out, mul(ld(a.out, out), num(factor))));
}

// Predictions [..., K] viewed as rows of K (every leading position a row)
// and targets: ids of the leading shape or per-class values of the
// predictions' shape.
struct ClassRows {
  int64_t rows, k;
  bool ids;
  explicit ClassRows(const LowerArgs& a)
      : rows(a.inTypes[0].numel() / a.inTypes[0].shape.back()),
        k(a.inTypes[0].shape.back()),
        ids(a.inTypes[1].dtype == DType::I32) {}
  Slices slices() const { return Slices(rows, k, 1); }
};

// Builds a parallel loop over rows with `body(row)`, the per-row sums going
// to a temp, then the scalar result = factor · Σ rows.
void perRowSum(LowerArgs& a, int64_t rows, const std::function<std::vector<Stmt>(int row, int rowSum)>& body,
               double factor) {
  const int rowSum = a.temp(rows, "row_sum"), o = a.k.newVar();
  emit(a, loops({{o, rows}}, body(o, rowSum), true));
  sumAll(a, rows, [&](const Affine& e) { return ld(rowSum, e); }, factor);
}

Status softmaxLike(LowerArgs& a, bool log) {
  const Slices s(a.inTypes[0].shape, axisOf(a));
  if (s.outer * s.n * s.inner == 0) return ok();  // nothing to write; an empty axis has no first element to read
  const int x = a.in[0], max = a.temp(s.outer * s.inner, "max"), sum = a.temp(s.outer * s.inner, "sum");
  const int o = a.k.newVar(), kk = a.k.newVar(), i = a.k.newVar();
  // Not x − lse with lse = max + log Σ rounded to f32: near |x| = 1e4 its
  // ulp (2^-10) alone is a relative error of 1e-3 in every probability
  // (ONNX's test_softmax_large_number). x − max is exact for inputs that
  // close, so the error stays that of exp and log.
  std::vector<Stmt> body = logSumExp(a.k, x, s, o, max, sum, false);
  const ExprP shifted = sub(ld(x, s.el(o, kk, i)), ld(max, s.slice(o, i)));
  const ExprP y = log ? sub(shifted, un(Op::Log, ld(sum, s.slice(o, i)))) : div(un(Op::Exp, shifted), ld(sum, s.slice(o, i)));
  body.push_back(loops({{kk, s.n}, {i, s.inner}}, {loop::store(a.out, s.el(o, kk, i), y)}));
  emit(a, loops({{o, s.outer}}, std::move(body), true));
  return ok();
}

// The loss term of class c in a row: the target id matches c, or the
// per-class target value t[row, c].
ExprP targetOf(const ClassRows& c, int t, int row, int cls) {
  return c.ids ? eq(loop::indexOf(cls), ld(t, v(row))) : ld(t, v(row, c.k) + v(cls));
}

// With label smoothing ε the target is (1 − ε)·t + ε/K.
ExprP smoothedTargetOf(const ClassRows& c, double eps, int t, int row, int cls) {
  ExprP w = targetOf(c, t, row, cls);
  if (eps == 0) return w;
  return add(mul(num(1 - eps), std::move(w)), num(eps / static_cast<double>(c.k)));
}

// Row term t_c·l_c, zero targets adding 0 (a −inf logit with target 0 adds
// 0, not NaN); an unsmoothed class id selects its column's l.
ExprP targetTerm(const ClassRows& c, double eps, ExprP w, ExprP l) {
  if (c.ids && eps == 0) return select(std::move(w), std::move(l), num(0));
  ExprP zero = eq(w, num(0));
  return select(std::move(zero), num(0), mul(std::move(w), std::move(l)));
}

double smoothingOf(const LowerArgs& a) { return a.attrs().f("label_smoothing"); }

// The elementwise losses: out = factor · Σ term(operands at e).
Status elementSum(LowerArgs& a, double factor, ExprP (*term)(ExprP, ExprP)) {
  const int x = a.in[0], y = a.in.size() > 1 ? a.in[1] : -1;
  sumAll(
      a, a.inTypes[0].numel(),
      [&](const Affine& e) { return term(ld(x, e), y >= 0 ? ld(y, e) : nullptr); }, factor);
  return ok();
}

// PyTorch's clamped log, as the reference's std::max(log p, −100): NaN
// passes through (std::max returns its first argument when unordered).
ExprP clampedLog(ExprP p) {
  ExprP l = un(Op::Log, std::move(p));
  return select(gt(num(-100), l), num(-100), l);
}

double inverse(int64_t n) { return 1.0 / static_cast<double>(n); }

}  // namespace

Status lowerSoftmax(LowerArgs& a) { return softmaxLike(a, false); }
Status lowerLogSoftmax(LowerArgs& a) { return softmaxLike(a, true); }

// Per row: −Σ_c t_c·(z_c − lse), zero targets skipped (a −inf logit with
// target 0 adds 0, not NaN), class ids as a one-hot match; mean over rows.
Status lowerSoftmaxCrossEntropy(LowerArgs& a) {
  const ClassRows c(a);
  const double eps = smoothingOf(a);
  const int z = a.in[0], t = a.in[1], lse = a.temp(c.rows, "lse"), sum = a.temp(c.rows, "sum");
  perRowSum(
      a, c.rows,
      [&](int o, int rowSum) {
        std::vector<Stmt> body = logSumExp(a.k, z, c.slices(), o, lse, sum);
        const int cls = a.k.newVar();
        const ExprP l = sub(ld(z, v(o, c.k) + v(cls)), ld(lse, v(o)));
        const ExprP term = targetTerm(c, eps, smoothedTargetOf(c, eps, t, o, cls), l);
        body.push_back(loop::store(rowSum, v(o), num(0)));
        body.push_back(loops({{cls, c.k}}, {loop::store(rowSum, v(o), term, Combine::Add)}));
        return body;
      },
      -inverse(c.rows));
  return ok();
}

// (softmax(z) − target) / N per element.
Status lowerSoftmaxCrossEntropyGrad(LowerArgs& a) {
  const ClassRows c(a);
  const double eps = smoothingOf(a);
  const int z = a.in[0], t = a.in[1], lse = a.temp(c.rows, "lse"), sum = a.temp(c.rows, "sum");
  const int o = a.k.newVar(), cls = a.k.newVar();
  std::vector<Stmt> body = logSumExp(a.k, z, c.slices(), o, lse, sum);
  const Affine at = v(o, c.k) + v(cls);
  const ExprP p = un(Op::Exp, sub(ld(z, at), ld(lse, v(o))));
  body.push_back(loops({{cls, c.k}},
                       {loop::store(a.out, at, div(sub(p, smoothedTargetOf(c, eps, t, o, cls)), num(static_cast<double>(c.rows))))}));
  emit(a, loops({{o, c.rows}}, std::move(body), true));
  return ok();
}

// softmax_cross_entropy and its gradient together (the softmax_ce fusion):
// per row one max, one sweep of exp(z − max) stored into the gradient and
// summed, then the gradient scaled in place, (e/Σe − target)/N, beside the
// loss term. The unfused pair sweeps the logits with exp three times.
Status lowerSoftmaxCrossEntropyFused(LowerArgs& a, int grad) {
  const ClassRows c(a);
  const double eps = smoothingOf(a);
  const int z = a.in[0], t = a.in[1], lse = a.temp(c.rows, "lse"), sum = a.temp(c.rows, "sum");
  const double n = static_cast<double>(c.rows);
  perRowSum(
      a, c.rows,
      [&](int o, int rowSum) {
        const int c0 = a.k.newVar(), c1 = a.k.newVar(), c2 = a.k.newVar();
        auto at = [&](int cls) { return v(o, c.k) + v(cls); };
        std::vector<Stmt> body;
        body.push_back(loop::store(lse, v(o), ld(z, v(o, c.k))));
        body.push_back(loop::store(sum, v(o), num(0)));
        body.push_back(loops({{c0, c.k}}, {loop::store(lse, v(o), ld(z, at(c0)), Combine::Max)}));
        body.push_back(loops({{c1, c.k}}, {loop::store(grad, at(c1), un(Op::Exp, sub(ld(z, at(c1)), ld(lse, v(o))))),
                                           loop::store(sum, v(o), ld(grad, at(c1)), Combine::Add)}));
        body.push_back(loop::store(lse, v(o), add(ld(lse, v(o)), un(Op::Log, ld(sum, v(o))))));
        const ExprP w = smoothedTargetOf(c, eps, t, o, c2);
        const ExprP l = sub(ld(z, at(c2)), ld(lse, v(o)));
        const ExprP term = targetTerm(c, eps, w, l);
        body.push_back(loop::store(rowSum, v(o), num(0)));
        body.push_back(loops({{c2, c.k}}, {loop::store(grad, at(c2), div(sub(div(ld(grad, at(c2)), ld(sum, v(o))), w), num(n))),
                                           loop::store(rowSum, v(o), term, Combine::Add)}));
        return body;
      },
      -inverse(c.rows));
  return ok();
}

// −Σ t·log(p + 1e-7) / N; for ids only the label's column (so p elsewhere,
// even negative, does not matter).
Status lowerCrossEntropy(LowerArgs& a) {
  const ClassRows c(a);
  const int p = a.in[0], t = a.in[1];
  perRowSum(
      a, c.rows,
      [&](int o, int rowSum) {
        const int cls = a.k.newVar();
        const ExprP l = un(Op::Log, add(ld(p, v(o, c.k) + v(cls)), num(1e-7)));
        const ExprP w = targetOf(c, t, o, cls);
        return std::vector<Stmt>{
            loop::store(rowSum, v(o), num(0)),
            loops({{cls, c.k}}, {loop::store(rowSum, v(o), c.ids ? select(w, l, num(0)) : mul(w, l), Combine::Add)})};
      },
      -inverse(c.rows));
  return ok();
}

// −Σ logp[row, t_row] / N: only the label's column is read into the sum.
Status lowerNll(LowerArgs& a) {
  const ClassRows c(a);
  const int lp = a.in[0], t = a.in[1];
  perRowSum(
      a, c.rows,
      [&](int o, int rowSum) {
        const int cls = a.k.newVar();
        const ExprP term = select(targetOf(c, t, o, cls), ld(lp, v(o, c.k) + v(cls)), num(0));
        return std::vector<Stmt>{loop::store(rowSum, v(o), num(0)),
                                 loops({{cls, c.k}}, {loop::store(rowSum, v(o), term, Combine::Add)})};
      },
      -inverse(c.rows));
  return ok();
}

// ½d² where |d| < δ, else δ·(|d| − ½δ); a NaN d fails the test and takes
// the linear piece, NaN, as in the reference.
Status lowerHuber(LowerArgs& a) {
  const double delta = a.attrs().f("delta");
  const int y = a.in[0], t = a.in[1];
  sumAll(
      a, a.inTypes[0].numel(),
      [&](const Affine& e) {
        const ExprP d = sub(ld(y, e), ld(t, e)), ad = un(Op::Abs, d);
        return select(gt(num(delta), ad), mul(num(0.5), mul(d, d)), mul(num(delta), sub(ad, num(0.5 * delta))));
      },
      inverse(a.inTypes[0].numel()));
  return ok();
}

// Σ p·(log p − logq) / batch, p = 0 adding 0 (torch's xlogy).
Status lowerKlDiv(LowerArgs& a) {
  const int lq = a.in[0], p = a.in[1];
  sumAll(
      a, a.inTypes[0].numel(),
      [&](const Affine& e) {
        const ExprP pv = ld(p, e);
        return select(eq(pv, num(0)), num(0), mul(pv, sub(un(Op::Log, pv), ld(lq, e))));
      },
      inverse(a.inTypes[0].shape[0]));
  return ok();
}

Status lowerMse(LowerArgs& a) {
  return elementSum(a, inverse(a.inTypes[0].numel()), [](ExprP y, ExprP t) {
    ExprP d = sub(std::move(y), std::move(t));
    return mul(d, d);
  });
}

Status lowerSse(LowerArgs& a) {
  return elementSum(a, 0.5, [](ExprP y, ExprP t) {
    ExprP d = sub(std::move(y), std::move(t));
    return mul(d, d);
  });
}

Status lowerBce(LowerArgs& a) {
  return elementSum(a, -inverse(a.inTypes[0].numel()), [](ExprP p, ExprP t) {
    return add(mul(t, clampedLog(p)), mul(sub(num(1), t), clampedLog(sub(num(1), p))));
  });
}

// Each term 0 where its log is clamped (a select, so p = 0 gives 0, not
// t/0); NaN p fails the clamp test and stays NaN, as in the reference.
Status lowerBceGrad(LowerArgs& a) {
  const int p = a.in[0], t = a.in[1], e = a.k.newVar();
  const ExprP pv = ld(p, v(e)), tv = ld(t, v(e)), q = sub(num(1), pv);
  auto unlessClamped = [](ExprP x, ExprP g) { return select(gt(num(-100), un(Op::Log, std::move(x))), num(0), std::move(g)); };
  const ExprP g = add(unlessClamped(pv, un(Op::Neg, div(tv, pv))), unlessClamped(q, div(sub(num(1), tv), q)));
  const int64_t n = a.inTypes[0].numel();
  emit(a, loops({{e, n}}, {loop::store(a.out, v(e), div(g, num(static_cast<double>(n))))}, true));
  return ok();
}

// max(z, 0) − z·t + log(1 + exp(−|z|)): log1p's argument is at most 1, so
// log(1 + ·) loses only absolute precision below f32's epsilon.
Status lowerBceWithLogits(LowerArgs& a) {
  return elementSum(a, inverse(a.inTypes[0].numel()), [](ExprP z, ExprP t) {
    return add(sub(bin(Op::Max, z, num(0)), mul(z, t)),
               un(Op::Log, add(num(1), un(Op::Exp, un(Op::Neg, un(Op::Abs, z))))));
  });
}

Status lowerL1(LowerArgs& a) {
  return elementSum(a, 1.0, [](ExprP x, ExprP) { return un(Op::Abs, std::move(x)); });
}

Status lowerL2(LowerArgs& a) {
  return elementSum(a, 0.5, [](ExprP x, ExprP) { return mul(x, x); });
}

// out[e, d] = (t[e] == d): an id out of range gives a zero row.
Status lowerOneHot(LowerArgs& a) {
  const int64_t n = a.inTypes[0].numel(), depth = a.attrs().i("depth");
  const int e = a.k.newVar(), d = a.k.newVar();
  emit(a, loops({{e, n}, {d, depth}}, {loop::store(a.out, v(e, depth) + v(d), eq(loop::indexOf(d), ld(a.in[0], v(e))))},
                true));
  return ok();
}

Status lowerArgmax(LowerArgs& a) {
  const Slices s(a.inTypes[0].shape, axisOf(a));
  const int best = a.temp(s.outer * s.inner, "best"), o = a.k.newVar();
  emit(a, loops({{o, s.outer}}, argMax(a.k, a.in[0], s, o, a.out, best), true));
  return ok();
}

// Per row: argmax(y) == the label (the id, or argmax of the target row).
Status lowerAccuracy(LowerArgs& a) {
  const ClassRows c(a);
  const int y = a.in[0], t = a.in[1];
  const int yArg = a.temp(c.rows, "y_arg"), yBest = a.temp(c.rows, "y_best");
  const int tArg = c.ids ? t : a.temp(c.rows, "t_arg"), tBest = c.ids ? -1 : a.temp(c.rows, "t_best");
  perRowSum(
      a, c.rows,
      [&](int o, int rowSum) {
        std::vector<Stmt> body = argMax(a.k, y, c.slices(), o, yArg, yBest);
        if (!c.ids)
          for (Stmt& st : argMax(a.k, t, c.slices(), o, tArg, tBest)) body.push_back(std::move(st));
        body.push_back(loop::store(rowSum, v(o), eq(ld(yArg, v(o)), ld(tArg, v(o)))));
        return body;
      },
      inverse(c.rows));
  return ok();
}

}  // namespace nnc
