#include "compiler/autodiff/autodiff.h"

#include <algorithm>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/ops/broadcast.h"

namespace nnc {

Expected<ValueId> GradCtx::reduceTo(ValueId v, const Shape& to) {
  const Shape from = g.type(v).shape;
  if (from == to) return v;
  const std::vector<int64_t> axes = reduceToShapeAxes(from, to);
  ValueId r = v;
  if (!axes.empty()) {
    NNC_TRY(r, op("sum", {v}, {{"axis", axes}, {"keepdims", int64_t{1}}}));
  }
  if (g.type(r).shape != to) {
    NNC_TRY(r, op("reshape", {r}, {{"shape", to}}));
  }
  return r;
}

namespace {

bool isTrainableParam(const Node& n) { return n.op->is(OpId::Param) && n.attrs.i("trainable") != 0; }

// Keeps the forward nodes and the backward nodes the gradients need; ids are
// renumbered in order, so the graph stays topologically sorted.
void pruneBackward(GradGraph& gg) {
  Graph& g = gg.graph;
  std::vector<bool> keep(g.size(), false);
  for (size_t i = 0; i < gg.forwardSize; ++i) keep[i] = true;
  for (const auto& [_, v] : gg.grads) keep[static_cast<size_t>(v)] = true;
  for (size_t i = g.size(); i-- > gg.forwardSize;)
    if (keep[i])
      for (ValueId v : g.nodes[i].inputs) keep[static_cast<size_t>(v)] = true;
  std::vector<ValueId> remap(g.size(), kNoValue);
  std::vector<Node> nodes;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!keep[i]) continue;
    remap[i] = static_cast<ValueId>(nodes.size());
    nodes.push_back(std::move(g.nodes[i]));
    for (ValueId& v : nodes.back().inputs) v = remap[static_cast<size_t>(v)];
  }
  g.nodes = std::move(nodes);
  for (auto& [_, v] : gg.grads) v = remap[static_cast<size_t>(v)];
}

}  // namespace

Expected<GradGraph> differentiate(const Graph& forward, const GradOptions& opt) {
  if (forward.loss == kNoValue) return error("model '{}' has no loss to differentiate", forward.name);
  GradGraph gg{forward, forward.size(), {}};
  Graph& g = gg.graph;
  const size_t n = forward.size();

  // Which values to differentiate with respect to.
  std::vector<ValueId> wrt;
  if (opt.wrt.empty()) {
    for (ValueId p : forward.params)
      if (isTrainableParam(forward.node(p))) wrt.push_back(p);
  } else {
    for (const std::string& name : opt.wrt) {
      const ValueId v = forward.findByName(name);
      if (v == kNoValue) return error("no value named '{}' in model '{}'", name, forward.name);
      const Node& nd = forward.node(v);
      if (nd.type.dtype != DType::F32)
        return error(nd.loc, "'{}' is {}: integer values have no gradient", name, typeString(nd.type));
      wrt.push_back(v);
    }
  }
  if (wrt.empty()) return error("model '{}' has no trainable params", forward.name);

  // A node is active if it depends on a wrt value and the loss depends on it.
  std::vector<bool> depends(n, false), needed(n, false);
  for (ValueId v : wrt) depends[static_cast<size_t>(v)] = true;
  for (size_t i = 0; i < n; ++i)
    for (ValueId v : forward.nodes[i].inputs) depends[i] = depends[i] || depends[static_cast<size_t>(v)];
  needed[static_cast<size_t>(forward.loss)] = true;
  for (size_t i = n; i-- > 0;)
    if (needed[i])
      for (ValueId v : forward.nodes[i].inputs) needed[static_cast<size_t>(v)] = true;

  // Contributions to each value's gradient, summed when the value is reached.
  std::vector<std::vector<ValueId>> parts(n);
  NNC_TRY(ValueId seed, g.addSource("const", "", TensorType{DType::F32, {}}, Attrs{{"value", std::vector<double>{1.0}}},
                                    forward.node(forward.loss).loc));
  parts[static_cast<size_t>(forward.loss)].push_back(seed);
  std::vector<ValueId> grad(n, kNoValue);
  std::vector<bool> blocked(n, false);  // reached the loss only through ops without a gradient

  for (size_t i = n; i-- > 0;) {
    if (!depends[i] || !needed[i]) continue;
    if (parts[i].empty()) {
      if (blocked[i])
        for (ValueId v : forward.nodes[i].inputs) blocked[static_cast<size_t>(v)] = true;
      continue;
    }
    const Node fwd = forward.nodes[i];  // a copy: adding nodes moves g.nodes
    ValueId dy = parts[i][0];
    for (size_t k = 1; k < parts[i].size(); ++k) {
      NNC_TRY(dy, g.add("add", {dy, parts[i][k]}, {}, fwd.loc));
    }
    grad[i] = dy;
    // Backward values take the names of the values they are gradients of.
    if (!fwd.name.empty() && static_cast<size_t>(dy) >= n && g.node(dy).name.empty()) g.node(dy).name = "grad_" + fwd.name;
    if (fwd.op->kind == OpKind::Source) continue;
    if (fwd.op->noGradient) {
      for (ValueId v : fwd.inputs) blocked[static_cast<size_t>(v)] = true;
      continue;
    }
    if (fwd.op->internal)
      return error(fwd.loc, "'{}' is a fused op: differentiate the graph before optimizing it", fwd.op->name);
    NNC_INTERNAL_ASSERT(fwd.op->grad, fmt::format("in autodiff at %{}", i), "op '{}' has no gradient rule", fwd.op->name);
    GradCtx ctx{g, static_cast<ValueId>(i), fwd.inputs, {}, fwd.type, fwd.attrs, dy, fwd.loc, {}};
    for (ValueId v : fwd.inputs) {
      ctx.inTypes.push_back(forward.type(v));
      ctx.needs.push_back(depends[static_cast<size_t>(v)]);
    }
    NNC_TRY(std::vector<ValueId> dx, fwd.op->grad(ctx));
    for (size_t k = 0; k < fwd.inputs.size() && k < dx.size(); ++k) {
      const auto in = static_cast<size_t>(fwd.inputs[k]);
      if (!depends[in]) continue;
      if (dx[k] == kNoValue) {
        blocked[in] = true;
        continue;
      }
      NNC_INTERNAL_ASSERT(g.type(dx[k]).shape == forward.type(fwd.inputs[k]).shape, fmt::format("in autodiff at %{}", i),
                          "gradient rule of '{}' gives {} for operand {} of type {}", fwd.op->name,
                          typeString(g.type(dx[k])), k, typeString(forward.type(fwd.inputs[k])));
      parts[in].push_back(dx[k]);
    }
  }

  for (ValueId v : wrt) {
    const Node& nd = forward.node(v);
    const auto i = static_cast<size_t>(v);
    if (grad[i] == kNoValue) {
      if (blocked[i])
        return error(nd.loc, "the loss depends on '{}' only through ops that have no gradient (such as step or argmax)",
                     nd.name);
      return error(nd.loc, "'{}' does not affect the loss, so it has no gradient", nd.name);
    }
    gg.grads.emplace_back(nd.name, grad[i]);
  }
  pruneBackward(gg);
  return gg;
}

Status addWeightDecay(Graph& g, const std::string& kind, double lambda) {
  if (kind != "l1" && kind != "l2") return error("weight decay is l1(lambda) or l2(lambda), not '{}'", kind);
  if (g.loss == kNoValue) return error("model '{}' has no loss to regularize", g.name);
  const SourceLoc loc = g.node(g.loss).loc;
  ValueId total = kNoValue;
  for (ValueId p : g.params) {
    if (!isTrainableParam(g.node(p)) || g.type(p).rank() < 2) continue;
    NNC_TRY(ValueId norm, g.add(kind, {p}, {}, loc));
    total = total == kNoValue ? norm : *g.add("add", {total, norm}, {}, loc);
  }
  if (total == kNoValue) return ok();
  NNC_TRY(ValueId lam, g.addSource("const", "", TensorType{DType::F32, {}}, Attrs{{"value", std::vector<double>{lambda}}}, loc));
  NNC_TRY(ValueId decay, g.add("mul", {lam, total}, {}, loc));
  NNC_TRY(ValueId loss, g.add("add", {g.loss, decay}, {}, loc));
  g.node(loss).name = "regularized_loss";
  g.loss = loss;
  return ok();
}

std::string printBackward(const GradGraph& gg) {
  std::string out = printGraphRange(gg.graph, gg.forwardSize, gg.graph.size(), "backward " + gg.graph.name);
  out.pop_back();  // reopen the closing brace for the gradient list
  out.pop_back();
  for (const auto& [name, v] : gg.grads) out += fmt::format("  grad {} = %{}\n", name, v);
  return out + "}\n";
}

}  // namespace nnc
