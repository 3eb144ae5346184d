// Reductions over a set of axes: sum, mean, max.
#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/grad_ctx.h"
#include "compiler/op_registry.h"
#include "compiler/ops/broadcast.h"

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
          .summary = summary};
}

}  // namespace

void addReductionOps(std::vector<OpDef>& r) {
  r.push_back(reduction<Reduce::Sum>("sum over axes (default all); keepdims keeps them as 1"));
  r.push_back(reduction<Reduce::Mean>("mean over axes (default all); keepdims keeps them as 1"));
  r.push_back(reduction<Reduce::Max>("max over axes (default all); keepdims keeps them as 1"));
}

}  // namespace nnc
