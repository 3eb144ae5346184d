#include "compiler/passes/rewriter.h"

namespace nnc::passes {

Rewriter::Rewriter(const Graph& g) : in(g), map_(g.size(), kNoValue) { out_.name = g.name; }

ValueId Rewriter::copy(ValueId v) {
  Node n = in.node(v);
  for (ValueId& x : n.inputs) x = (*this)[x];
  out_.nodes.push_back(std::move(n));
  const ValueId id = static_cast<ValueId>(out_.nodes.size() - 1);
  alias(v, id);
  return id;
}

Expected<ValueId> Rewriter::add(ValueId v, std::string_view op, std::vector<ValueId> inputs, Attrs attrs) {
  const Node& old = in.node(v);
  NNC_TRY(ValueId id, out_.add(op, std::move(inputs), std::move(attrs), old.loc));
  out_.node(id).layer = old.layer;
  return id;
}

Expected<ValueId> Rewriter::replace(ValueId v, std::string_view op, std::vector<ValueId> inputs, Attrs attrs) {
  NNC_TRY(ValueId id, add(v, op, std::move(inputs), std::move(attrs)));
  out_.node(id).name = in.node(v).name;
  alias(v, id);
  return id;
}

Optimized Rewriter::finish() {
  auto remap = [&](const std::vector<ValueId>& ids) {
    std::vector<ValueId> r;
    for (ValueId v : ids) r.push_back((*this)[v]);
    return r;
  };
  out_.inputs = remap(in.inputs);
  out_.labels = remap(in.labels);
  out_.params = remap(in.params);
  for (const auto& [name, v] : in.outputs)
    if ((*this)[v] != kNoValue) out_.outputs.emplace_back(name, (*this)[v]);
  out_.loss = in.loss == kNoValue ? kNoValue : (*this)[in.loss];
  return Optimized{std::move(out_), std::move(map_)};
}

std::vector<std::vector<ValueId>> usersOf(const Graph& g) {
  std::vector<std::vector<ValueId>> users(g.size());
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id)
    for (ValueId v : g.node(id).inputs) users[static_cast<size_t>(v)].push_back(id);
  return users;
}

bool isConstFill(const Graph& g, ValueId v, double x) {
  const Node& n = g.node(v);
  if (!n.op->is(OpId::Const) || !n.attrs.has("value")) return false;
  for (double e : n.attrs.floats("value"))
    if (e != x) return false;
  return true;
}

}  // namespace nnc::passes
