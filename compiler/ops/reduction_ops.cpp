// Reductions over a set of axes: sum, mean, max, min, var, std, logsumexp.
#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/lower/lower.h"
#include "compiler/ops/broadcast.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

namespace {

enum class Reduce { Sum, Mean, Max, Min, Var, Std, LogSumExp };
constexpr std::string_view kNames[] = {"sum", "mean", "max", "min", "var", "std", "logsumexp"};

constexpr bool isExtremum(Reduce k) { return k == Reduce::Max || k == Reduce::Min; }
constexpr bool isVariance(Reduce k) { return k == Reduce::Var || k == Reduce::Std; }

// torch.var's divisor: N − correction, and 0 (an inf or NaN result, as torch)
// where the correction is at least N.
double varianceDivisor(int64_t count, const Attrs& attrs) {
  return static_cast<double>(std::max<int64_t>(count - attrs.i("correction"), 0));
}

// The max logsumexp subtracts: 0 where it is infinite (or NaN), as torch, so
// a cell of -inf gives log 0 = -inf and one holding +inf gives +inf, not NaN.
double finiteOrZero(double m) { return std::isfinite(m) ? m : 0.0; }

// The checked axes, sorted; empty attr means every axis.
Expected<std::vector<int64_t>> reduceAxes(Reduce k, const TensorType& x, const Attrs& attrs) {
  std::string_view name = kNames[static_cast<int>(k)];
  const auto& given = attrs.ints("axis");
  std::vector<int64_t> axes;
  if (given.empty()) {
    for (int d = 0; d < x.rank(); ++d) axes.push_back(d);
  } else {
    NNC_TRY(axes, normalizeAxes(name, given, x));
  }
  std::sort(axes.begin(), axes.end());
  return axes;
}

template <Reduce K>
Expected<TensorType> reduceShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  std::string_view name = kNames[static_cast<int>(K)];
  const TensorType& x = in[0];
  if (x.dtype != DType::F32) return error("{}: operand must be f32, got {}", name, typeString(x));
  int64_t keep = attrs.i("keepdims");
  if (keep != 0 && keep != 1) return error("{}: keepdims must be 0 or 1, got {}", name, keep);
  if constexpr (isVariance(K)) {
    if (attrs.i("correction") < 0)
      return error("{}: correction must be 0 or more, got {}", name, attrs.i("correction"));
  }
  NNC_TRY(auto axes, reduceAxes(K, x, attrs));
  // A max over nothing has no value (NumPy refuses too).
  for (int64_t a : axes)
    if (x.shape[static_cast<size_t>(a)] == 0)
      return error("{}: cannot reduce over axis {} of {}: it is empty", name, a, typeString(x));
  return TensorType{x.dtype, reducedShape(x.shape, axes, keep != 0)};
}

// Per reduced cell: the sum of f(x) over the cell's elements, where f may
// read the cell's earlier result `prev` (a mean, a max).
template <typename F>
void cellSums(const Tensor& x, const BroadcastIndex& cell, std::vector<double>& out, F f,
              const std::vector<double>& prev) {
  std::fill(out.begin(), out.end(), 0.0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    const size_t c = static_cast<size_t>(cell(i));
    out[c] += f(x.data[static_cast<size_t>(i)], prev.empty() ? 0.0 : prev[c]);
  }
}

// max (min): a NaN is sticky, else the larger (smaller).
template <Reduce K>
void extremumCells(const Tensor& x, const BroadcastIndex& cell, std::vector<double>& out) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::fill(out.begin(), out.end(), K == Reduce::Max ? -kInf : kInf);
  for (int64_t i = 0; i < x.numel(); ++i) {
    double v = x.data[static_cast<size_t>(i)];
    double& acc = out[static_cast<size_t>(cell(i))];
    const bool better = K == Reduce::Max ? v > acc : v < acc;
    acc = (better || std::isnan(v)) && !std::isnan(acc) ? v : acc;
  }
}

template <Reduce K>
Status reduceEval(const EvalArgs& args) {
  const Tensor& x = *args.in[0];
  auto axes = reduceAxes(K, x.type, args.attrs);
  if (!axes) return std::move(axes.error());
  // The keepdims shape has the output's layout whether or not dims are kept,
  // so one index map sends each input element to the cell it reduces into.
  BroadcastIndex cell(reducedShape(x.shape(), *axes, true), x.shape());
  auto& out = args.out.data;
  const int64_t count = x.numel() / std::max<int64_t>(args.out.numel(), 1);
  auto identity = [](double v, double) { return v; };
  if constexpr (isExtremum(K)) {
    extremumCells<K>(x, cell, out);
  } else if constexpr (K == Reduce::Sum || K == Reduce::Mean) {
    cellSums(x, cell, out, identity, {});
    if (K == Reduce::Mean)
      for (double& v : out) v /= static_cast<double>(count);
  } else if constexpr (isVariance(K)) {
    // Two passes (the mean, then squares about it): no cancellation.
    std::vector<double> mean(out.size());
    cellSums(x, cell, mean, identity, {});
    for (double& m : mean) m /= static_cast<double>(count);
    cellSums(x, cell, out, [](double v, double m) { return (v - m) * (v - m); }, mean);
    const double divisor = varianceDivisor(count, args.attrs);
    for (double& v : out) v = K == Reduce::Std ? std::sqrt(v / divisor) : v / divisor;
  } else {
    std::vector<double> m(out.size());
    extremumCells<Reduce::Max>(x, cell, m);
    for (double& v : m) v = finiteOrZero(v);
    cellSums(x, cell, out, [](double v, double mc) { return std::exp(v - mc); }, m);
    for (size_t c = 0; c < out.size(); ++c) out[c] = std::log(out[c]) + m[c];
  }
  return ok();
}

// ---- lowering ----
//
// The output cells are the kept dims. Kept dims before the last reduced axis
// are the outer loops (the first one parallel: threads own disjoint cells);
// kept dims after it go innermost, inside the reduction loops, so the inner
// loop walks contiguous input either way. Per cell block: init, accumulate,
// and (mean) divide. Reducing only leading axes ([N, C] over N) leaves no
// kept dim outside the reduction, so no loop is parallel there: contiguous
// serial beats strided threaded for the bias-gradient sizes this sees.

using loop::Affine;
using loop::ExprP;
using loop::Op;
using loop::Stmt;

// The reference's `(v > acc || isnan(v)) && !isnan(acc) ? v : acc`: a NaN is
// sticky. Combine::Max is fmax, which would drop it. min: v < acc.
ExprP extremumStep(bool max, const ExprP& acc, const ExprP& v) {
  ExprP better = max ? loop::apply(Op::Greater, {v, acc}) : loop::apply(Op::Greater, {acc, v});
  ExprP larger = loop::apply(Op::Select, {better, v, acc});
  return loop::apply(Op::Select, {loop::apply(Op::Equal, {v, v}), larger, v});
}

// Loops over the dims `dims` of `shape` (vars `v`) around `body`.
std::vector<Stmt> loopsOver(const std::vector<size_t>& dims, const std::vector<int>& v, const Shape& shape,
                            std::vector<Stmt> body, bool parallel) {
  std::vector<int> vars;
  Shape extents;
  for (size_t d : dims) {
    vars.push_back(v[d]);
    extents.push_back(shape[d]);
  }
  return nest(vars, extents, std::move(body), parallel);
}

// x's dims with those of extent 1 dropped and neighbours of one kind (both
// reduced or both kept) merged: they address memory as one dim, and fewer,
// longer loops vectorize better. sum over {0, 2, 3} of [N, C, H, W] becomes
// a sum over {0, 2} of [N, C, H·W].
struct ReduceDims {
  Shape extent;
  std::vector<bool> reduced;
};

ReduceDims collapse(const Shape& xs, const std::vector<int64_t>& axes) {
  ReduceDims r;
  for (size_t d = 0; d < xs.size(); ++d) {
    if (xs[d] == 1) continue;
    const bool red = std::find(axes.begin(), axes.end(), static_cast<int64_t>(d)) != axes.end();
    if (!r.reduced.empty() && r.reduced.back() == red) {
      r.extent.back() *= xs[d];
    } else {
      r.extent.push_back(xs[d]);
      r.reduced.push_back(red);
    }
  }
  return r;
}

// One output block's statements: per-cell ones run over the trailing dims,
// per-element ones over the reduced and trailing dims, in the order added.
struct CellBlock {
  const std::vector<size_t>& trailing;
  std::vector<size_t> inner;
  const std::vector<int>& v;
  const Shape& xs;
  std::vector<Stmt> body;

  void perCell(std::vector<Stmt> s) { append(loopsOver(trailing, v, xs, std::move(s), false)); }
  void perElement(std::vector<Stmt> s) { append(loopsOver(inner, v, xs, std::move(s), false)); }
  void append(std::vector<Stmt> s) {
    for (Stmt& t : s) body.push_back(std::move(t));
  }
};

ExprP bin(Op op, ExprP a, ExprP b) { return loop::apply(op, {std::move(a), std::move(b)}); }

// acc = max (min) of the cell's elements, from its first element: no ±inf
// constant needed.
void extremumInto(CellBlock& b, bool max, int acc, const ExprP& x, const ExprP& first, const Affine& cell) {
  b.perCell({loop::store(acc, cell, first)});
  b.perElement({loop::store(acc, cell, extremumStep(max, loop::load(acc, cell), x))});
}

// The reference's passes, per cell: var and std keep the mean, logsumexp the
// max, in a temporary cell buffer.
template <Reduce K>
void reduceCells(LowerArgs& a, CellBlock& b, const ExprP& x, const ExprP& first, const Affine& cell, int64_t count) {
  const ExprP acc = loop::load(a.out, cell);
  if constexpr (isExtremum(K)) {
    extremumInto(b, K == Reduce::Max, a.out, x, first, cell);
  } else if constexpr (K == Reduce::Sum || K == Reduce::Mean) {
    b.perCell({loop::store(a.out, cell, loop::constant(0))});
    b.perElement({loop::store(a.out, cell, x, loop::Combine::Add)});
    if (K == Reduce::Mean) b.perCell({loop::store(a.out, cell, bin(Op::Div, acc, loop::constant(static_cast<float>(count))))});
  } else if constexpr (isVariance(K)) {
    const int mean = a.temp(a.outType().numel(), "mean");
    const ExprP m = loop::load(mean, cell);
    b.perCell({loop::store(mean, cell, loop::constant(0))});
    b.perElement({loop::store(mean, cell, x, loop::Combine::Add)});
    b.perCell({loop::store(mean, cell, bin(Op::Div, m, loop::constant(static_cast<float>(count)))),
               loop::store(a.out, cell, loop::constant(0))});
    const ExprP d = bin(Op::Sub, x, m);
    b.perElement({loop::store(a.out, cell, bin(Op::Mul, d, d), loop::Combine::Add)});
    ExprP v = bin(Op::Div, acc, loop::constant(static_cast<float>(varianceDivisor(count, a.attrs()))));
    b.perCell({loop::store(a.out, cell, K == Reduce::Std ? loop::apply(Op::Sqrt, {v}) : v)});
  } else {
    const int mx = a.temp(a.outType().numel(), "max");
    const ExprP m = loop::load(mx, cell);
    extremumInto(b, true, mx, x, first, cell);
    // m − m is 0 only for a finite m: finiteOrZero.
    const ExprP finite = bin(Op::Equal, bin(Op::Sub, m, m), loop::constant(0));
    b.perCell({loop::store(mx, cell, loop::apply(Op::Select, {finite, m, loop::constant(0)})),
               loop::store(a.out, cell, loop::constant(0))});
    b.perElement({loop::store(a.out, cell, loop::apply(Op::Exp, {bin(Op::Sub, x, m)}), loop::Combine::Add)});
    b.perCell({loop::store(a.out, cell, bin(Op::Add, loop::apply(Op::Log, {acc}), m))});
  }
}

template <Reduce K>
Status reduceLower(LowerArgs& a) {
  NNC_TRY(auto axes, reduceAxes(K, a.inTypes[0], a.attrs()));
  const ReduceDims c = collapse(a.inTypes[0].shape, axes);
  const Shape& xs = c.extent;
  size_t last = 0;  // one past the last reduced dim
  for (size_t d = 0; d < xs.size(); ++d)
    if (c.reduced[d]) last = d + 1;
  std::vector<size_t> outer, reduced, trailing;
  for (size_t d = 0; d < xs.size(); ++d) (c.reduced[d] ? reduced : d < last ? outer : trailing).push_back(d);
  const std::vector<int> v = newVars(a.k, xs.size());
  const std::vector<int64_t> xst = stridesOf(xs);
  // x at the cell's element, x at the cell's first element, the cell.
  Affine xi, xFirst, cell;
  int64_t cellStride = 1, count = 1;
  for (size_t d = xs.size(); d-- > 0;) {
    xi = xi + Affine::var(v[d], xst[d]);
    if (c.reduced[d]) {
      count *= xs[d];
      continue;
    }
    xFirst = xFirst + Affine::var(v[d], xst[d]);
    cell = cell + Affine::var(v[d], cellStride);
    cellStride *= xs[d];
  }
  std::vector<size_t> inner = reduced;
  inner.insert(inner.end(), trailing.begin(), trailing.end());
  CellBlock block{trailing, inner, v, xs, {}};
  reduceCells<K>(a, block, loop::load(a.in[0], xi), loop::load(a.in[0], xFirst), cell, count);
  for (Stmt& s : loopsOver(outer, v, xs, std::move(block.body), true)) a.k.body.push_back(std::move(s));
  return ok();
}

// dy spread back over the reduced axes: reshape to the keepdims shape, then
// broadcast to x's shape.
Expected<ValueId> spread(GradCtx& c, ValueId v, const std::vector<int64_t>& axes) {
  const Shape kept = reducedShape(c.inTypes[0].shape, axes, true);
  if (c.g.type(v).shape != kept) {
    NNC_TRY(v, c.op("reshape", {v}, {{"shape", kept}}));
  }
  return c.op("broadcast_to", {v}, {{"shape", c.inTypes[0].shape}});
}

// max (min): spread(dy) times a mask of the maxima (minima), shared evenly
// among ties (as PyTorch's amax and amin).
template <Reduce K>
Expected<ValueId> extremumShare(GradCtx& c, const std::vector<int64_t>& axes) {
  NNC_TRY(ValueId ym, spread(c, c.y(), axes));
  // > 0 except at the extrema
  NNC_TRY(ValueId off, K == Reduce::Max ? c.op("sub", {ym, c.in[0]}) : c.op("sub", {c.in[0], ym}));
  NNC_TRY(ValueId notExt, c.op("step", {off}));
  NNC_TRY(ValueId one, c.constant(1));
  NNC_TRY(ValueId isExt, c.op("sub", {one, notExt}));
  NNC_TRY(ValueId count, c.op("sum", {isExt}, {{"axis", axes}, {"keepdims", int64_t{1}}}));
  return c.op("div", {isExt, count});
}

// var: 2·(x − mean)/divisor; std: that over 2·std, (x − mean)/(divisor·std).
template <Reduce K>
Expected<ValueId> varianceGrad(GradCtx& c, const std::vector<int64_t>& axes) {
  NNC_TRY(ValueId mean, c.op("mean", {c.in[0]}, {{"axis", axes}, {"keepdims", int64_t{1}}}));
  NNC_TRY(ValueId diff, c.op("sub", {c.in[0], mean}));
  const double divisor = varianceDivisor(c.inTypes[0].numel() / std::max<int64_t>(c.outType.numel(), 1), c.attrs);
  ValueId dy = c.dy;
  if constexpr (K == Reduce::Std) {
    NNC_TRY(dy, c.op("div", {c.dy, c.y()}));
  }
  NNC_TRY(ValueId d, spread(c, dy, axes));
  NNC_TRY(ValueId t, c.mul(d, diff));
  return c.mul(t, (K == Reduce::Std ? 1.0 : 2.0) / divisor);
}

// logsumexp: spread(dy) · softmax(x) = spread(dy) · exp(x − spread(y)).
Expected<ValueId> logSumExpGrad(GradCtx& c, const std::vector<int64_t>& axes) {
  NNC_TRY(ValueId ys, spread(c, c.y(), axes));
  NNC_TRY(ValueId z, c.op("sub", {c.in[0], ys}));
  NNC_TRY(ValueId p, c.op("exp", {z}));
  NNC_TRY(ValueId d, spread(c, c.dy, axes));
  return c.mul(d, p);
}

// sum: dx = spread(dy); mean: spread(dy) / count; the others above.
template <Reduce K>
Expected<std::vector<ValueId>> reduceGrad(GradCtx& c) {
  NNC_TRY(auto axes, reduceAxes(K, c.inTypes[0], c.attrs));
  ValueId d = kNoValue;
  if constexpr (isVariance(K)) {
    NNC_TRY(d, varianceGrad<K>(c, axes));
  } else if constexpr (K == Reduce::LogSumExp) {
    NNC_TRY(d, logSumExpGrad(c, axes));
  } else {
    NNC_TRY(d, spread(c, c.dy, axes));
  }
  if constexpr (K == Reduce::Mean) {
    NNC_TRY(d, c.mul(d, static_cast<double>(c.outType.numel()) / static_cast<double>(c.inTypes[0].numel())));
  } else if constexpr (isExtremum(K)) {
    NNC_TRY(ValueId share, extremumShare<K>(c, axes));
    NNC_TRY(d, c.mul(d, share));
  }
  return std::vector<ValueId>{d};
}

// For max (min): the arg-max (arg-min; first on ties) of each reduced cell.
template <Reduce K>
void extremumBranches(const std::vector<const Tensor*>& in, const Attrs& attrs, std::vector<int64_t>& p) {
  const Tensor& x = *in[0];
  auto axes = reduceAxes(K, x.type, attrs);
  if (!axes) return;
  const Shape kept = reducedShape(x.shape(), *axes, true);
  BroadcastIndex cell(kept, x.shape());
  std::vector<int64_t> best(static_cast<size_t>(numel(kept)), -1);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t& b = best[static_cast<size_t>(cell(i))];
    const double v = x.data[static_cast<size_t>(i)];
    if (b < 0 || (K == Reduce::Max ? v > x.data[static_cast<size_t>(b)] : v < x.data[static_cast<size_t>(b)])) b = i;
  }
  p.insert(p.end(), best.begin(), best.end());
}

template <Reduce K>
OpDef reduction(std::string_view summary) {
  std::vector<AttrSpec> attrs = {{"axis", AttrKind::Ints, Attr{std::vector<int64_t>{}}},
                                 {"keepdims", AttrKind::Int, Attr{int64_t{0}}}};
  if (isVariance(K)) attrs.push_back({"correction", AttrKind::Int, Attr{int64_t{1}}});
  return {.name = kNames[static_cast<int>(K)],
          .operands = {"x"},
          .attrs = std::move(attrs),
          .shape = reduceShape<K>,
          .eval = reduceEval<K>,
          .grad = reduceGrad<K>,
          .branches = isExtremum(K) ? extremumBranches<K> : nullptr,
          .lower = reduceLower<K>,
          .summary = summary};
}

}  // namespace

void addReductionOps(std::vector<OpDef>& r) {
  r.push_back(reduction<Reduce::Sum>("sum over axes (default all); keepdims keeps them as 1"));
  r.push_back(reduction<Reduce::Mean>("mean over axes (default all); keepdims keeps them as 1"));
  r.push_back(reduction<Reduce::Max>("max over axes (default all); keepdims keeps them as 1"));
  r.push_back(reduction<Reduce::Min>("min over axes (default all); keepdims keeps them as 1"));
  r.push_back(reduction<Reduce::Var>("variance over axes, divided by N - correction (default 1: unbiased, as torch)"));
  r.push_back(reduction<Reduce::Std>("standard deviation over axes: sqrt(var(x, axis, keepdims, correction))"));
  r.push_back(reduction<Reduce::LogSumExp>("log(sum(e ** x)) over axes, stable: the max is subtracted first"));
}

}  // namespace nnc
