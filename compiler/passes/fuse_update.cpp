// fuse-update: the SGD step of a weight whose gradient is a product read by
// nothing else runs inside that product's GEMM:
//   sub(W, mul(lr, matmul(a, b)))  →  matmul_update(W, lr, a, b)
// The GEMM adds −lr·op(a)·op(b) to each finished tile (runtime/gemm.h,
// sgemmUpdate), so the weight gradient is never stored; with the in-place
// update (compiler/lower/update_in_place.cpp) it lands straight in W.
#include "compiler/passes/passes.h"

namespace nnc::passes {

Expected<Optimized> fuseUpdate(const Graph& g, const std::vector<bool>& external) {
  const std::vector<std::vector<ValueId>> users = usersOf(g);
  auto onlyUse = [&](ValueId v) { return !external[static_cast<size_t>(v)] && users[static_cast<size_t>(v)].size() == 1; };
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    bool done = false;
    if (n.op->is(OpId::Sub) && n.inputs.size() == 2 && g.type(n.inputs[0]) == n.type) {
      const ValueId w = n.inputs[0], scaled = n.inputs[1];
      const Node& mul = g.node(scaled);
      if (mul.op->is(OpId::Mul) && mul.inputs.size() == 2 && onlyUse(scaled))
        for (int side = 0; side < 2 && !done; ++side) {
          const ValueId lr = mul.inputs[static_cast<size_t>(side)], prod = mul.inputs[static_cast<size_t>(1 - side)];
          const Node& mm = g.node(prod);
          if (!g.type(lr).shape.empty() || g.type(lr).dtype != n.type.dtype || !isGemm(g, prod) ||
              !onlyUse(prod) || g.type(prod) != n.type || prod == w || lr == w)
            continue;
          NNC_CHECK(r.replace(id, "matmul_update", {r[w], r[lr], r[mm.inputs[0]], r[mm.inputs[1]]}, mm.attrs));
          done = true;
        }
    }
    if (!done) r.copy(id);
  }
  return r.finish();
}

}  // namespace nnc::passes
