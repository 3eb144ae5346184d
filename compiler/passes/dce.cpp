// dce: nodes nothing external depends on are dropped, unused constants too.
// Other sources stay: the caller feeds every input and param by id whether
// or not it is read.
#include "compiler/graph/graph_util.h"
#include "compiler/passes/passes.h"

namespace nnc::passes {

Expected<Optimized> eliminateDead(const Graph& g, const std::vector<bool>& external) {
  std::vector<ValueId> roots;
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id)
    if (external[static_cast<size_t>(id)]) roots.push_back(id);
  const std::vector<bool> live = liveNodes(g, roots);
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id)
    if (live[static_cast<size_t>(id)] || (g.node(id).op->kind == OpKind::Source && !g.node(id).op->is(OpId::Const)))
      r.copy(id);
  return r.finish();
}

}  // namespace nnc::passes
