#include "compiler/lower.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "compiler/interpreter.h"
#include "compiler/ops/lower_rules.h"

namespace nnc {

using loop::Affine;
using loop::Stmt;

int LowerArgs::temp(int64_t elements, const std::string& name) {
  k.buffers.push_back({name, elements});
  return static_cast<int>(k.buffers.size()) - 1;
}

std::vector<int> newVars(loop::Kernel& k, size_t rank) {
  std::vector<int> v;
  for (size_t i = 0; i < rank; ++i) v.push_back(k.newVar());
  return v;
}

Affine rowMajor(const Shape& shape, const std::vector<int>& vars) {
  Affine a;
  int64_t stride = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] != 1) a = a + Affine::var(vars[d], stride);
    stride *= shape[d];
  }
  return a;
}

Affine broadcastIndex(const Shape& in, const Shape& out, const std::vector<int>& vars) {
  Affine a;
  int64_t stride = 1;
  const size_t lead = out.size() - in.size();
  for (size_t d = in.size(); d-- > 0;) {
    if (in[d] != 1) a = a + Affine::var(vars[d + lead], stride);
    stride *= in[d];
  }
  return a;
}

std::vector<Stmt> nest(const std::vector<int>& vars, const Shape& shape, std::vector<Stmt> body, bool parallel) {
  for (size_t d = shape.size(); d-- > 0;) {
    std::vector<Stmt> inner;
    inner.push_back(loop::loopOver(vars[d], shape[d], std::move(body), parallel && d == 0));
    body = std::move(inner);
  }
  return body;
}

Stmt fill(loop::Kernel& k, int buf, int64_t n, float v) {
  const int i = k.newVar();
  return loop::loopOver(i, n, {loop::store(buf, Affine::var(i), loop::constant(v))}, true);
}

Stmt copy(loop::Kernel& k, int dst, int src, int64_t n) {
  const int i = k.newVar();
  return loop::loopOver(i, n, {loop::store(dst, Affine::var(i), loop::load(src, Affine::var(i)))}, true);
}

// Adjacent output dims merge when every operand either spans both or
// broadcasts over both: an elementwise op on same-shaped operands becomes one
// flat loop, which compiles faster and vectorizes across rows.
struct Collapsed {
  Shape out;
  std::vector<Shape> in;
};

Collapsed collapseDims(const Shape& out, const std::vector<TensorType>& inTypes) {
  const size_t rank = out.size();
  std::vector<std::vector<bool>> present;  // operand spans out dim d
  for (const TensorType& t : inTypes) {
    std::vector<bool> p(rank, false);
    const size_t lead = rank - t.shape.size();
    for (size_t d = 0; d < t.shape.size(); ++d) p[d + lead] = t.shape[d] != 1 || out[d + lead] == 1;
    present.push_back(std::move(p));
  }
  Collapsed c;
  c.in.resize(inTypes.size());
  for (size_t d = 0; d < rank; ++d) {
    bool merge = d > 0;
    for (size_t i = 0; i < inTypes.size() && merge; ++i) merge = present[i][d] == present[i][d - 1];
    if (merge) {
      c.out.back() *= out[d];
      for (size_t i = 0; i < inTypes.size(); ++i)
        if (present[i][d]) c.in[i].back() *= out[d];
      continue;
    }
    c.out.push_back(out[d]);
    for (size_t i = 0; i < inTypes.size(); ++i) c.in[i].push_back(present[i][d] ? out[d] : 1);
  }
  return c;
}

Status lowerPointwise(LowerArgs& a) {
  const Collapsed c = collapseDims(a.outType().shape, a.inTypes);
  const std::vector<int> vars = newVars(a.k, c.out.size());
  std::vector<loop::ExprP> args;
  for (size_t i = 0; i < a.in.size(); ++i) args.push_back(loop::load(a.in[i], broadcastIndex(c.in[i], c.out, vars)));
  loop::ExprP v = a.node.op->pointwise(args, a.node.attrs);
  for (Stmt& s : nest(vars, c.out, {loop::store(a.out, rowMajor(c.out, vars), std::move(v))})) a.k.body.push_back(std::move(s));
  return ok();
}

namespace {

std::string valueName(const Graph& g, ValueId id) {
  const Node& n = g.node(id);
  return n.name.empty() ? fmt::format("v{}", id) : n.name;
}

// C-ish identifiers for kernel and buffer names: "fc1.W" -> "fc1_W".
std::string ident(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

// Two operands may be the same value; buffer names must still differ.
void uniqueBufferNames(loop::Kernel& k) {
  for (size_t i = 0; i < k.buffers.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (k.buffers[j].name == k.buffers[i].name) k.buffers[i].name += fmt::format("_{}", i);
}

Expected<loop::Kernel> lowerInto(const Graph& g, ValueId id, bool training) {
  const Node& n = g.node(id);
  if (!n.op->lower && !n.op->pointwise) return error(n.loc, "{}: no lowering to loop IR yet", n.op->name);
  loop::Kernel k;
  k.name = fmt::format("k{}_{}", id, n.op->name);
  k.comment = fmt::format("%{}{} = {}(", id, n.name.empty() ? "" : " " + n.name, n.op->name);
  std::vector<TensorType> types;
  std::vector<int> in;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const ValueId v = n.inputs[i];
    k.comment += fmt::format("{}%{}", i ? ", " : "", v);
    types.push_back(g.type(v));
    k.buffers.push_back({ident(valueName(g, v)), g.type(v).numel()});
    in.push_back(static_cast<int>(i));
  }
  k.comment += fmt::format(") : {}", typeString(n.type));
  k.buffers.push_back({ident(valueName(g, id)), n.type.numel()});
  uniqueBufferNames(k);
  LowerArgs a{n, types, k, in, static_cast<int>(in.size()), training};
  Status st = n.op->lower ? n.op->lower(a) : lowerPointwise(a);
  if (!st) {
    Diagnostic d = std::move(st.error());
    if (!d.loc.valid()) d.loc = n.loc;
    return d;
  }
  return k;
}

// Elementwise chains: a pointwise node whose only use is a pointwise
// consumer of the same shape is computed inside the consumer's loop instead
// of being stored and loaded back. Such a node gets no kernel and no slot.
std::vector<bool> inlinedPointwise(const Graph& g, const std::vector<bool>& live, const std::vector<bool>& external) {
  std::vector<int> uses(g.size(), 0);
  std::vector<ValueId> consumer(g.size(), kNoValue);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    if (!live[static_cast<size_t>(id)]) continue;
    for (ValueId v : g.node(id).inputs) {
      ++uses[static_cast<size_t>(v)];
      consumer[static_cast<size_t>(v)] = id;
    }
  }
  std::vector<bool> inlined(g.size(), false);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    const ValueId c = consumer[static_cast<size_t>(id)];
    inlined[static_cast<size_t>(id)] = live[static_cast<size_t>(id)] && !external[static_cast<size_t>(id)] &&
                                       n.op->pointwise && !n.op->lower && uses[static_cast<size_t>(id)] == 1 &&
                                       n.type.dtype == DType::F32 && g.node(c).op->pointwise && !g.node(c).op->lower &&
                                       g.type(c).shape == n.type.shape;
  }
  return inlined;
}

// The kernel of pointwise node `root` with its inlined producers folded in;
// `leaves` gets the values it loads, in buffer order (then the result).
loop::Kernel lowerPointwiseTree(const Graph& g, ValueId root, const std::vector<bool>& inlined,
                                std::vector<ValueId>& leaves) {
  std::vector<ValueId> chain;  // the inlined nodes, for the comment
  auto collect = [&](auto&& self, ValueId v) -> void {
    for (ValueId in : g.node(v).inputs) {
      if (inlined[static_cast<size_t>(in)]) {
        chain.push_back(in);
        self(self, in);
      } else if (std::find(leaves.begin(), leaves.end(), in) == leaves.end()) {
        leaves.push_back(in);
      }
    }
  };
  collect(collect, root);
  const Node& n = g.node(root);
  loop::Kernel k;
  k.name = fmt::format("k{}_fused_{}", root, n.op->name);
  k.comment = fmt::format("%{}{} = {}(...) : {}, computing inline", root, n.name.empty() ? "" : " " + n.name, n.op->name,
                          typeString(n.type));
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) k.comment += fmt::format(" %{} {}", *it, g.node(*it).op->name);
  std::vector<TensorType> types;
  for (ValueId v : leaves) {
    types.push_back(g.type(v));
    k.buffers.push_back({ident(valueName(g, v)), g.type(v).numel()});
  }
  k.buffers.push_back({ident(valueName(g, root)), n.type.numel()});
  uniqueBufferNames(k);
  const Collapsed c = collapseDims(n.type.shape, types);
  const std::vector<int> vars = newVars(k, c.out.size());
  auto build = [&](auto&& self, ValueId v) -> loop::ExprP {
    std::vector<loop::ExprP> args;
    for (ValueId in : g.node(v).inputs) {
      if (inlined[static_cast<size_t>(in)]) {
        args.push_back(self(self, in));
        continue;
      }
      const size_t b = static_cast<size_t>(std::find(leaves.begin(), leaves.end(), in) - leaves.begin());
      args.push_back(loop::load(static_cast<int>(b), broadcastIndex(c.in[b], c.out, vars)));
    }
    return g.node(v).op->pointwise(args, g.node(v).attrs);
  };
  loop::ExprP value = build(build, root);
  for (Stmt& st : nest(vars, c.out, {loop::store(static_cast<int>(leaves.size()), rowMajor(c.out, vars), value)}))
    k.body.push_back(std::move(st));
  return k;
}

// Pairs each live softmax_cross_entropy_grad with a live loss on the same
// operands: pairedGrad[loss] = grad.
std::vector<ValueId> softmaxCePairs(const Graph& g, const std::vector<bool>& live) {
  std::vector<ValueId> paired(g.size(), kNoValue);
  for (ValueId gr = 0; gr < static_cast<ValueId>(g.size()); ++gr) {
    if (!live[static_cast<size_t>(gr)] || g.node(gr).op->name != "softmax_cross_entropy_grad") continue;
    for (ValueId l = 0; l < gr; ++l)
      if (live[static_cast<size_t>(l)] && g.node(l).op->name == "softmax_cross_entropy" &&
          g.node(l).inputs == g.node(gr).inputs && paired[static_cast<size_t>(l)] == kNoValue) {
        paired[static_cast<size_t>(l)] = gr;
        break;
      }
  }
  return paired;
}

// One kernel computing loss `l` and gradient `gr`: buffers z, t, loss, grad.
Expected<loop::Kernel> lowerSoftmaxCePair(const Graph& g, ValueId l, ValueId gr, bool training) {
  const Node& n = g.node(l);
  loop::Kernel k;
  k.name = fmt::format("k{}_fused_softmax_ce", l);
  k.comment = fmt::format("%{}{} = softmax_cross_entropy(%{}, %{}) and %{} = softmax_cross_entropy_grad(%{}, %{})", l,
                          n.name.empty() ? "" : " " + n.name, n.inputs[0], n.inputs[1], gr, n.inputs[0], n.inputs[1]);
  std::vector<TensorType> types;
  for (ValueId v : n.inputs) {
    types.push_back(g.type(v));
    k.buffers.push_back({ident(valueName(g, v)), g.type(v).numel()});
  }
  k.buffers.push_back({ident(valueName(g, l)), n.type.numel()});
  k.buffers.push_back({ident(valueName(g, gr)), g.type(gr).numel()});
  uniqueBufferNames(k);
  LowerArgs a{n, types, k, {0, 1}, 2, training};
  NNC_CHECK(lowerSoftmaxCrossEntropyFused(a, 3));
  return k;
}

}  // namespace

Expected<loop::Kernel> lowerNode(const Graph& g, ValueId id, bool training) { return lowerInto(g, id, training); }

std::vector<ValueId> rootsOf(const std::vector<ValueId>& targets, const LowerOptions& lo) {
  std::vector<ValueId> roots = targets;
  for (const auto& [param, next] : lo.commits) {
    roots.push_back(param);
    roots.push_back(next);
  }
  return roots;
}

Expected<Program> lowerGraph(const Graph& g, const std::vector<ValueId>& targets, const LowerOptions& opt) {
  const std::vector<ValueId> roots = rootsOf(targets, opt);
  const std::vector<bool> live = liveNodes(g, roots);
  std::vector<bool> external(g.size(), false);
  for (ValueId r : roots) external[static_cast<size_t>(r)] = true;
  const std::vector<bool> inlined = opt.fuseElementwise ? inlinedPointwise(g, live, external)
                                                        : std::vector<bool>(g.size(), false);
  const std::vector<ValueId> ceGrad = opt.fuseSoftmaxCe ? softmaxCePairs(g, live) : std::vector<ValueId>(g.size(), kNoValue);
  std::vector<bool> ceGradDone(g.size(), false);
  Program p;
  p.valueSlot.assign(g.size(), -1);
  auto addSlot = [&](std::string name, ValueId v, int64_t size) {
    Slot s{std::move(name), v, size, p.arenaFloats};
    p.arenaFloats += (std::max<int64_t>(size, 1) + 15) / 16 * 16;  // 64-byte aligned slots
    p.slots.push_back(std::move(s));
    return static_cast<int>(p.slots.size()) - 1;
  };
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    if (!live[static_cast<size_t>(id)] || inlined[static_cast<size_t>(id)] || ceGradDone[static_cast<size_t>(id)]) continue;
    const Node& n = g.node(id);
    p.valueSlot[static_cast<size_t>(id)] = addSlot(valueName(g, id), id, n.type.numel());
    if (n.op->kind == OpKind::Source) continue;
    bool fused = false;
    for (ValueId v : n.inputs) fused |= inlined[static_cast<size_t>(v)];
    std::vector<ValueId> operands = n.inputs;
    loop::Kernel k;
    const ValueId gr = ceGrad[static_cast<size_t>(id)];
    if (gr != kNoValue) {
      NNC_TRY(k, lowerSoftmaxCePair(g, id, gr, opt.training));
    } else if (fused) {
      operands.clear();
      k = lowerPointwiseTree(g, id, inlined, operands);
    } else {
      NNC_TRY(k, lowerInto(g, id, opt.training));
    }
    Launch l{static_cast<int>(p.kernels.size()), {}};
    for (ValueId v : operands) l.slots.push_back(p.valueSlot[static_cast<size_t>(v)]);
    l.slots.push_back(p.valueSlot[static_cast<size_t>(id)]);
    if (gr != kNoValue) {
      p.valueSlot[static_cast<size_t>(gr)] = addSlot(valueName(g, gr), gr, g.type(gr).numel());
      l.slots.push_back(p.valueSlot[static_cast<size_t>(gr)]);
      ceGradDone[static_cast<size_t>(gr)] = true;
    }
    for (size_t b = l.slots.size(); b < k.buffers.size(); ++b)
      l.slots.push_back(addSlot(fmt::format("{}.{}", k.name, k.buffers[b].name), kNoValue, k.buffers[b].size));
    p.kernels.push_back(std::move(k));
    p.launches.push_back(std::move(l));
  }
  for (const auto& [param, next] : opt.commits)
    p.commits.emplace_back(p.valueSlot[static_cast<size_t>(param)], p.valueSlot[static_cast<size_t>(next)]);
  if (opt.planMemory) {
    std::vector<bool> pinned(p.slots.size(), false);
    for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id)
      if (p.valueSlot[static_cast<size_t>(id)] >= 0 && g.node(id).op->kind == OpKind::Source)
        pinned[static_cast<size_t>(p.valueSlot[static_cast<size_t>(id)])] = true;
    for (ValueId t : targets) pinned[static_cast<size_t>(p.valueSlot[static_cast<size_t>(t)])] = true;
    for (const auto& [dst, src] : p.commits) pinned[static_cast<size_t>(dst)] = pinned[static_cast<size_t>(src)] = true;
    planMemory(p, pinned);
  }
  return p;
}

std::string printProgram(const Program& p) {
  std::string out = fmt::format("# arena: {} floats ({} bytes) in {} slots\n", p.arenaFloats, p.arenaFloats * 4,
                                p.slots.size());
  for (size_t i = 0; i < p.slots.size(); ++i)
    out += fmt::format("#   slot {:3} @{:<8} {:>8} floats  {}\n", i, p.slots[i].offset, p.slots[i].size,
                       p.slots[i].name);
  for (const Launch& l : p.launches) {
    out += '\n';
    out += loop::print(p.kernels[static_cast<size_t>(l.kernel)]);
  }
  for (const auto& [dst, src] : p.commits)
    out += fmt::format("\ncommit {} <- {}", p.slots[static_cast<size_t>(dst)].name, p.slots[static_cast<size_t>(src)].name);
  if (!p.commits.empty()) out += "\n";
  return out;
}

}  // namespace nnc
