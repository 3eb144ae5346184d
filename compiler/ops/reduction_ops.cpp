// Reductions over a set of axes: sum, mean, max.
#include <algorithm>
#include <cmath>
#include <limits>

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

template <Reduce K>
OpDef reduction(std::string_view summary) {
  return {.name = kNames[static_cast<int>(K)],
          .operands = {"x"},
          .attrs = {{"axis", AttrKind::Ints, Attr{std::vector<int64_t>{}}}, {"keepdims", AttrKind::Int, Attr{int64_t{0}}}},
          .shape = reduceShape<K>,
          .eval = reduceEval<K>,
          .summary = summary};
}

}  // namespace

void addReductionOps(std::vector<OpDef>& r) {
  r.push_back(reduction<Reduce::Sum>("sum over axes (default all); keepdims keeps them as 1"));
  r.push_back(reduction<Reduce::Mean>("mean over axes (default all); keepdims keeps them as 1"));
  r.push_back(reduction<Reduce::Max>("max over axes (default all); keepdims keeps them as 1"));
}

}  // namespace nnc
