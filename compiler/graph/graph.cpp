#include "compiler/graph/graph.h"

#include <fmt/format.h>

namespace nnc {

namespace {
// Refuse tensors too large to allocate: a clear error instead of bad_alloc.
constexpr int64_t kMaxElements = int64_t{1} << 31;

Status checkType(const TensorType& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) {
    if (d <= 0) return error("dimension {} in {} must be positive", d, typeString(t));
    if (d > kMaxElements || n > kMaxElements / d)
      return error("tensor {} has more than 2^31 elements", typeString(t));
    n *= d;
  }
  return ok();
}
}  // namespace

Expected<ValueId> Graph::add(std::string_view opName, std::vector<ValueId> ins, Attrs attrs, SourceLoc loc) {
  const OpDef* op = findOp(opName);
  if (!op) return error(loc, "unknown op '{}'", opName);
  auto full = completeAttrs(*op, ins.size(), std::move(attrs));
  if (!full) {
    full.error().loc = loc;
    return std::move(full.error());
  }
  std::vector<TensorType> types;
  for (ValueId v : ins) types.push_back(type(v));
  auto t = op->shape(types, *full);
  if (!t) {
    t.error().loc = loc;
    return std::move(t.error());
  }
  if (auto c = checkType(*t); !c) {
    c.error().loc = loc;
    c.error().message = fmt::format("{}: result {}", op->name, c.error().message);
    return std::move(c.error());
  }
  nodes.push_back(Node{op, std::move(ins), full.take(), t.take(), {}, loc, {}});
  return static_cast<ValueId>(nodes.size() - 1);
}

Expected<ValueId> Graph::addSource(std::string_view opName, std::string name, TensorType type, Attrs attrs,
                                   SourceLoc loc) {
  const OpDef* op = findOp(opName);
  if (!op || op->kind != OpKind::Source) return error(loc, "'{}' is not a source op", opName);
  auto full = completeAttrs(*op, 0, std::move(attrs));
  if (!full) {
    full.error().loc = loc;
    return std::move(full.error());
  }
  if (auto c = checkType(type); !c) {
    c.error().loc = loc;
    return std::move(c.error());
  }
  nodes.push_back(Node{op, {}, full.take(), std::move(type), std::move(name), loc, {}});
  ValueId id = static_cast<ValueId>(nodes.size() - 1);
  if (op->is(OpId::Input)) inputs.push_back(id);
  if (op->is(OpId::Label)) labels.push_back(id);
  if (op->is(OpId::Param)) params.push_back(id);
  return id;
}

ValueId Graph::findByName(std::string_view n) const {
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name == n) return static_cast<ValueId>(i);
  return kNoValue;
}

int64_t Graph::paramCount(bool trainableOnly) const {
  int64_t n = 0;
  for (ValueId p : params) {
    const Node& nd = node(p);
    if (trainableOnly && nd.attrs.has("trainable") && nd.attrs.i("trainable") == 0) continue;
    n += nd.type.numel();
  }
  return n;
}

namespace {
// Empty lists and strings (a param's file and key unless it is loaded) are
// left out of dumps.
bool isEmptyList(const Attr& a) {
  if (auto* v = std::get_if<std::vector<double>>(&a)) return v->empty();
  if (auto* v = std::get_if<std::vector<int64_t>>(&a)) return v->empty();
  if (auto* v = std::get_if<std::string>(&a)) return v->empty();
  return false;
}

std::string ref(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  return n.name.empty() ? fmt::format("%{}", v) : fmt::format("%{}:{}", v, n.name);
}
}  // namespace

std::string printGraph(const Graph& g) {
  std::string out = printGraphRange(g, 0, g.size(), "graph " + g.name);
  out.resize(out.size() - 2);  // the closing brace
  if (g.loss != kNoValue) out += fmt::format("  loss {}\n", ref(g, g.loss));
  for (const auto& [name, v] : g.outputs) out += fmt::format("  output {} = {}\n", name, ref(g, v));
  return out + "}\n";
}

std::string printGraphRange(const Graph& g, size_t first, size_t last, const std::string& title) {
  std::string out = title + " {\n";
  for (size_t i = first; i < last; ++i) {
    const Node& n = g.nodes[i];
    std::string line = fmt::format("  %{}{} = {}", i, n.name.empty() ? "" : " " + n.name, n.op->name);
    std::string args;
    for (ValueId v : n.inputs) args += (args.empty() ? "" : ", ") + ref(g, v);
    for (const auto& [k, a] : n.attrs.items()) {
      if (isEmptyList(a)) continue;  // defaults such as example=[] say nothing
      args += (args.empty() ? "" : ", ") + k + "=" + attrString(a);
    }
    if (!args.empty() || n.op->kind == OpKind::Compute) line += "(" + args + ")";
    out += line + " : " + typeString(n.type) + "\n";
  }
  return out + "}\n";
}

std::string printDot(const Graph& g) {
  std::string out = fmt::format("digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"monospace\"];\n", g.name);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const char* shape = n.op->kind == OpKind::Source ? "ellipse" : "box";
    std::string label = n.name.empty() ? std::string(n.op->name) : fmt::format("{}\\n{}", n.name, n.op->name);
    out += fmt::format("  n{} [shape={}, label=\"{}\\n{}\"];\n", i, shape, label, typeString(n.type));
    for (ValueId v : n.inputs) out += fmt::format("  n{} -> n{};\n", v, i);
  }
  if (g.loss != kNoValue) out += fmt::format("  loss [shape=plaintext];\n  n{} -> loss;\n", g.loss);
  for (size_t k = 0; k < g.outputs.size(); ++k)
    out += fmt::format("  out{} [shape=plaintext, label=\"{}\"];\n  n{} -> out{};\n", k, g.outputs[k].first,
                       g.outputs[k].second, k);
  return out + "}\n";
}

}  // namespace nnc
