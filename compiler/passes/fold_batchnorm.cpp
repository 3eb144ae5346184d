// fold-batchnorm: inference batchnorm folded into the convolution before it.
// On the running statistics batchnorm is a per-channel affine map,
// y = s·(z − mean) + β with s = γ/√(var + eps), so of z = W∗x + b it is
//   conv2d_fused(x, W·s[f], (b − mean)·s + β)
// (grouped and depthwise alike: filter f's output channel is f; a conv2d
// under --no-fuse=conv likewise). The new weight and bias are computed
// inside the program from the params, one small kernel over W and one over
// [F] instead of a sweep over the whole activation, so the fold stays right
// when the params change (training in the same process, a loaded
// checkpoint).
// Only where the program runs batchnorm on its running statistics
// (opt.inference): training normalizes by the batch's, which no weight can
// absorb. Not through conv2d_pool_fused: max-pooling commutes with the map
// only where s > 0, which the params do not promise. It runs before
// fuse-pool and fuse-epilogue, so that a following relu (and max-pool) goes
// into the folded convolution just as after a convolution without batchnorm.
#include <ostream>

#include <fmt/format.h>

#include "compiler/ops/activation.h"
#include "compiler/passes/passes.h"

namespace nnc::passes {

namespace {

// The convolution batchnorm `bn` folds into, or kNoValue: a conv2d_fused
// with no activation yet (or a conv2d, under --no-fuse=conv) whose value
// nothing else reads.
ValueId foldableConv(const Graph& g, const std::vector<bool>& external,
                     const std::vector<std::vector<ValueId>>& users, ValueId bn) {
  const ValueId z = g.node(bn).inputs[0];
  const Node& c = g.node(z);
  const bool conv = c.op->is(OpId::Conv2d) || (c.op->is(OpId::Conv2dFused) && actAttr(c.attrs) == kActNone);
  if (!conv || external[static_cast<size_t>(z)]) return kNoValue;
  const std::vector<ValueId>& u = users[static_cast<size_t>(z)];
  return u.size() == 1 && u[0] == bn ? z : kNoValue;
}

}  // namespace

Expected<Optimized> foldBatchnorm(const Graph& g, const std::vector<bool>& external, const PassOptions& opt) {
  const std::vector<std::vector<ValueId>> users = usersOf(g);
  std::vector<ValueId> convOf(g.size(), kNoValue);  // batchnorm → the convolution it folds into
  std::vector<bool> folded(g.size(), false);        // a convolution rebuilt at its batchnorm
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id)
    if (opt.inference && g.node(id).op->is(OpId::Batchnorm))
      if (const ValueId z = foldableConv(g, external, users, id); z != kNoValue) {
        convOf[static_cast<size_t>(id)] = z;
        folded[static_cast<size_t>(z)] = true;
      }
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const size_t i = static_cast<size_t>(id);
    if (folded[i]) continue;  // rebuilt at the batchnorm, whose params may come after it
    if (convOf[i] == kNoValue) {
      r.copy(id);
      continue;
    }
    const Node& bn = g.node(id);
    const Node& conv = g.node(convOf[i]);
    const ValueId gamma = r[bn.inputs[1]], beta = r[bn.inputs[2]], mean = r[bn.inputs[3]], var = r[bn.inputs[4]];
    const ValueId w = r[conv.inputs[1]];
    const int64_t filters = g.type(conv.inputs[1]).shape[0];
    NNC_TRY(const ValueId eps, r.out().addSource("const", "", TensorType{DType::F32, {}},
                                                 Attrs{{"value", std::vector<double>{bn.attrs.f("eps")}}}, bn.loc));
    NNC_TRY(const ValueId shifted, r.add(id, "add", {var, eps}, {}));
    NNC_TRY(const ValueId sigma, r.add(id, "sqrt", {shifted}, {}));
    NNC_TRY(const ValueId s, r.add(id, "div", {gamma, sigma}, {}));
    // The bias before the weight: s's only other reader then runs after
    // the bias, which lets lowering compute s and the bias in one loop
    // (multi-output fusion's legality rule, compiler/lower/fusion_groups.cpp).
    ValueId bias = kNoValue;
    if (conv.inputs.size() > 2) {
      NNC_TRY(const ValueId centered, r.add(id, "sub", {r[conv.inputs[2]], mean}, {}));
      NNC_TRY(const ValueId scaled, r.add(id, "mul", {centered, s}, {}));
      NNC_TRY(bias, r.add(id, "add", {scaled, beta}, {}));
    } else {
      NNC_TRY(const ValueId scaledMean, r.add(id, "mul", {mean, s}, {}));
      NNC_TRY(bias, r.add(id, "sub", {beta, scaledMean}, {}));
    }
    const Shape& ws = g.type(conv.inputs[1]).shape;
    std::vector<int64_t> perFilter(ws.size(), 1);
    perFilter[0] = filters;
    NNC_TRY(const ValueId sw, r.add(id, "reshape", {s}, Attrs{{"shape", perFilter}}));
    NNC_TRY(const ValueId scaledW, r.add(id, "mul", {w, sw}, {}));
    NNC_CHECK(r.replace(id, conv.op->name, {r[conv.inputs[0]], scaledW, bias}, conv.attrs));
    if (opt.log && opt.dump)
      *opt.dump << fmt::format("fold-batchnorm: %{}{} into convolution %{}{} {}\n", id,
                               bn.name.empty() ? "" : " " + bn.name, convOf[i],
                               conv.name.empty() ? "" : " " + conv.name, typeString(conv.type));
  }
  return r.finish();
}

}  // namespace nnc::passes
