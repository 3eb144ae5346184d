// Reductions over a set of axes: sum, mean, max.
#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/lower/lower.h"
#include "compiler/ops/broadcast.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

namespace {

enum class Reduce { Sum, Mean, Max };
constexpr std::string_view kNames[] = {"sum", "mean", "max"};

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
  NNC_TRY(auto axes, reduceAxes(K, x, attrs));
  // A max over nothing has no value (NumPy refuses too).
  for (int64_t a : axes)
    if (x.shape[static_cast<size_t>(a)] == 0)
      return error("{}: cannot reduce over axis {} of {}: it is empty", name, a, typeString(x));
  return TensorType{x.dtype, reducedShape(x.shape, axes, keep != 0)};
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
  if constexpr (K == Reduce::Max) std::fill(out.begin(), out.end(), -std::numeric_limits<double>::infinity());
  for (int64_t i = 0; i < x.numel(); ++i) {
    double v = x.data[static_cast<size_t>(i)];
    double& acc = out[static_cast<size_t>(cell(i))];
    if constexpr (K == Reduce::Max)
      acc = (v > acc || std::isnan(v)) && !std::isnan(acc) ? v : acc;
    else
      acc += v;
  }
  if constexpr (K == Reduce::Mean) {
    double count = static_cast<double>(x.numel()) / static_cast<double>(args.out.numel());
    for (double& v : out) v /= count;
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
// sticky. Combine::Max is fmax, which would drop it.
ExprP maxStep(const ExprP& acc, const ExprP& v) {
  ExprP larger = loop::apply(Op::Select, {loop::apply(Op::Greater, {v, acc}), v, acc});
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
  // max starts from the cell's first element: no -inf constant needed.
  const ExprP init = K == Reduce::Max ? loop::load(a.in[0], xFirst) : loop::constant(0);
  const ExprP x = loop::load(a.in[0], xi), acc = loop::load(a.out, cell);
  const Stmt update = K == Reduce::Max ? loop::store(a.out, cell, maxStep(acc, x))
                                       : loop::store(a.out, cell, x, loop::Combine::Add);
  std::vector<size_t> inner = reduced;
  inner.insert(inner.end(), trailing.begin(), trailing.end());
  std::vector<Stmt> body = loopsOver(trailing, v, xs, {loop::store(a.out, cell, init)}, false);
  for (Stmt& s : loopsOver(inner, v, xs, {update}, false)) body.push_back(std::move(s));
  if (K == Reduce::Mean) {
    const ExprP mean = loop::apply(Op::Div, {acc, loop::constant(static_cast<float>(count))});
    for (Stmt& s : loopsOver(trailing, v, xs, {loop::store(a.out, cell, mean)}, false)) body.push_back(std::move(s));
  }
  for (Stmt& s : loopsOver(outer, v, xs, std::move(body), true)) a.k.body.push_back(std::move(s));
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

// sum: dx = spread(dy); mean: spread(dy) / count; max: spread(dy) times a mask
// of the maxima, shared evenly among ties (as PyTorch's amax).
template <Reduce K>
Expected<std::vector<ValueId>> reduceGrad(GradCtx& c) {
  NNC_TRY(auto axes, reduceAxes(K, c.inTypes[0], c.attrs));
  NNC_TRY(ValueId d, spread(c, c.dy, axes));
  if constexpr (K == Reduce::Mean) {
    NNC_TRY(d, c.mul(d, static_cast<double>(c.outType.numel()) / static_cast<double>(c.inTypes[0].numel())));
  } else if constexpr (K == Reduce::Max) {
    NNC_TRY(ValueId ym, spread(c, c.y(), axes));
    NNC_TRY(ValueId below, c.op("sub", {ym, c.in[0]}));  // > 0 except at the maxima
    NNC_TRY(ValueId notMax, c.op("step", {below}));
    NNC_TRY(ValueId one, c.constant(1));
    NNC_TRY(ValueId isMax, c.op("sub", {one, notMax}));
    NNC_TRY(ValueId count, c.op("sum", {isMax}, {{"axis", axes}, {"keepdims", int64_t{1}}}));
    NNC_TRY(ValueId share, c.op("div", {isMax, count}));
    NNC_TRY(d, c.mul(d, share));
  }
  return std::vector<ValueId>{d};
}

// For max: the arg-max (first on ties) of each reduced cell.
void maxBranches(const std::vector<const Tensor*>& in, const Attrs& attrs, std::vector<int64_t>& p) {
  const Tensor& x = *in[0];
  auto axes = reduceAxes(Reduce::Max, x.type, attrs);
  if (!axes) return;
  const Shape kept = reducedShape(x.shape(), *axes, true);
  BroadcastIndex cell(kept, x.shape());
  std::vector<int64_t> best(static_cast<size_t>(numel(kept)), -1);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t& b = best[static_cast<size_t>(cell(i))];
    if (b < 0 || x.data[static_cast<size_t>(i)] > x.data[static_cast<size_t>(b)]) b = i;
  }
  p.insert(p.end(), best.begin(), best.end());
}

template <Reduce K>
OpDef reduction(std::string_view summary) {
  return {.name = kNames[static_cast<int>(K)],
          .operands = {"x"},
          .attrs = {{"axis", AttrKind::Ints, Attr{std::vector<int64_t>{}}}, {"keepdims", AttrKind::Int, Attr{int64_t{0}}}},
          .shape = reduceShape<K>,
          .eval = reduceEval<K>,
          .grad = reduceGrad<K>,
          .branches = K == Reduce::Max ? maxBranches : nullptr,
          .lower = reduceLower<K>,
          .summary = summary};
}

}  // namespace

void addReductionOps(std::vector<OpDef>& r) {
  r.push_back(reduction<Reduce::Sum>("sum over axes (default all); keepdims keeps them as 1"));
  r.push_back(reduction<Reduce::Mean>("mean over axes (default all); keepdims keeps them as 1"));
  r.push_back(reduction<Reduce::Max>("max over axes (default all); keepdims keeps them as 1"));
}

}  // namespace nnc
