// cse: two nodes with the same op, operands and attributes compute the same
// value; the later one is replaced by the earlier. Random ops (dropout
// masks, normal samples: OpDef::random) are never merged: two draws are two
// different values, nor are the collectives (their order is the processes'
// protocol).
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "compiler/passes/passes.h"

namespace nnc::passes {

Expected<Optimized> eliminateCommon(const Graph& g, const std::vector<bool>& external) {
  Rewriter r(g);
  std::map<std::string, ValueId> seen;  // key -> new id
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    if (n.op->is(OpId::AllreduceStart)) {
      // Gradients merged into one value are one slot of the bucket, summed once.
      std::vector<ValueId> in;
      for (ValueId v : n.inputs)
        if (std::find(in.begin(), in.end(), r[v]) == in.end()) in.push_back(r[v]);
      NNC_CHECK(r.replace(id, n.op->name, in, n.attrs));
      continue;
    }
    if (n.op->kind == OpKind::Source || n.op->random || n.op->collective) {
      r.copy(id);
      continue;
    }
    std::string key(n.op->name);
    for (ValueId v : n.inputs) key += fmt::format(" %{}", r[v]);
    for (const auto& [name, a] : n.attrs.items()) key += fmt::format(" {}={}", name, attrString(a));
    auto it = seen.find(key);
    // An external value keeps a node of its own (its slot is read by name).
    if (it != seen.end() && !external[static_cast<size_t>(id)]) {
      r.alias(id, it->second);
      continue;
    }
    seen.emplace(key, r.copy(id));
  }
  return r.finish();
}

}  // namespace nnc::passes
