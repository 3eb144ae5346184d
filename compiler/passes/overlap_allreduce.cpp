// overlap-allreduce: each allreduce_start moves up to just after the last
// of its gradients, so the bucket's sum across processes runs while the
// rest of the backward pass computes (buildTrainStep puts every start at
// the end of the backward, next to the waits). Off (--no-fuse=
// overlap-allreduce), the step computes every gradient, then communicates:
// what `docs/distributed.md` measures against.
#include <algorithm>

#include "compiler/passes/passes.h"

namespace nnc::passes {

Expected<Optimized> overlapAllreduce(const Graph& g, const std::vector<bool>&) {
  std::vector<std::vector<ValueId>> after(g.size());  // starts to place right after each value
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id)
    if (const Node& n = g.node(id); n.op->is(OpId::AllreduceStart))
      after[static_cast<size_t>(*std::max_element(n.inputs.begin(), n.inputs.end()))].push_back(id);
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    if (g.node(id).op->is(OpId::AllreduceStart)) continue;
    r.copy(id);
    for (ValueId s : after[static_cast<size_t>(id)]) r.copy(s);
  }
  return r.finish();
}

}  // namespace nnc::passes
