#include "compiler/lower/lower.h"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "compiler/graph/graph_util.h"
#include "compiler/lower/fusion_groups.h"
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

// The kernel of a group (members in id order, the root last). `leaves` gets
// the values it loads, `outputs` the stored members, in buffer order.
loop::Kernel lowerPointwiseGroup(const Graph& g, const std::vector<ValueId>& members, const std::vector<bool>& inlined,
                                 const std::vector<bool>& stored, std::vector<ValueId>& leaves,
                                 std::vector<ValueId>& outputs) {
  auto isMember = [&](ValueId v) { return std::find(members.begin(), members.end(), v) != members.end(); };
  std::vector<ValueId> computedInline;  // inlined nodes and members without a store, for the comment
  auto collect = [&](auto&& self, ValueId v) -> void {
    for (ValueId in : g.node(v).inputs) {
      if (inlined[static_cast<size_t>(in)]) {
        computedInline.push_back(in);
        self(self, in);
      } else if (!isMember(in) && std::find(leaves.begin(), leaves.end(), in) == leaves.end()) {
        leaves.push_back(in);
      }
    }
  };
  for (ValueId m : members) {
    collect(collect, m);
    if (stored[static_cast<size_t>(m)]) outputs.push_back(m);
    else computedInline.push_back(m);
  }
  std::sort(computedInline.begin(), computedInline.end());
  const ValueId root = members.back();
  const Node& n = g.node(root);
  loop::Kernel k;
  k.name = fmt::format("k{}_multi_{}", root, n.op->name);
  k.comment = fmt::format("%{}{} = {}(...) : {}, in one loop with", root, n.name.empty() ? "" : " " + n.name, n.op->name,
                          typeString(n.type));
  for (ValueId m : outputs)
    if (m != root) k.comment += fmt::format(" %{}{} = {}(...)", m, g.node(m).name.empty() ? "" : " " + g.node(m).name,
                                            g.node(m).op->name);
  if (!computedInline.empty()) {
    k.comment += ", computing inline";
    for (ValueId v : computedInline) k.comment += fmt::format(" %{} {}", v, g.node(v).op->name);
  }
  std::vector<TensorType> types;
  for (ValueId v : leaves) {
    types.push_back(g.type(v));
    k.buffers.push_back({ident(valueName(g, v)), g.type(v).numel()});
  }
  for (ValueId v : outputs) k.buffers.push_back({ident(valueName(g, v)), g.type(v).numel()});
  uniqueBufferNames(k);
  const Collapsed c = collapseDims(n.type.shape, types);
  const std::vector<int> vars = newVars(k, c.out.size());
  const Affine at = rowMajor(c.out, vars);
  std::vector<std::pair<ValueId, loop::ExprP>> computed;  // members so far: a reload of the store, or the expression
  auto build = [&](auto&& self, ValueId v) -> loop::ExprP {
    std::vector<loop::ExprP> args;
    for (ValueId in : g.node(v).inputs) {
      if (inlined[static_cast<size_t>(in)]) {
        args.push_back(self(self, in));
        continue;
      }
      if (isMember(in)) {
        auto it = std::find_if(computed.begin(), computed.end(), [&](const auto& e) { return e.first == in; });
        args.push_back(it->second);
        continue;
      }
      const size_t b = static_cast<size_t>(std::find(leaves.begin(), leaves.end(), in) - leaves.begin());
      args.push_back(loop::load(static_cast<int>(b), broadcastIndex(c.in[b], c.out, vars)));
    }
    return g.node(v).op->pointwise(args, g.node(v).attrs);
  };
  std::vector<Stmt> stores;
  for (ValueId m : members) {
    loop::ExprP value = build(build, m);
    if (!stored[static_cast<size_t>(m)]) {
      computed.emplace_back(m, std::move(value));
      continue;
    }
    const int buf = static_cast<int>(leaves.size() + static_cast<size_t>(
                                                         std::find(outputs.begin(), outputs.end(), m) - outputs.begin()));
    stores.push_back(loop::store(buf, at, std::move(value)));
    computed.emplace_back(m, loop::load(buf, at));
  }
  for (Stmt& st : nest(vars, c.out, std::move(stores))) k.body.push_back(std::move(st));
  return k;
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

// One kernel computing the weight gradient `dw` and the bias gradient `db`
// beside it: buffers x, dy, dw, db.
Expected<loop::Kernel> lowerConvGradPair(const Graph& g, ValueId dw, ValueId db, bool training) {
  const Node &n = g.node(dw), &b = g.node(db);
  loop::Kernel k;
  k.name = fmt::format("k{}_{}", dw, n.op->name);
  k.comment = fmt::format("%{}{} = {}(%{}, %{}) : {} and %{}{} = {}(%{}, %{})", dw, n.name.empty() ? "" : " " + n.name,
                          n.op->name, n.inputs[0], n.inputs[1], typeString(n.type), db, b.name.empty() ? "" : " " + b.name,
                          b.op->name, b.inputs[0], dw);
  std::vector<TensorType> types;
  for (ValueId v : n.inputs) {
    types.push_back(g.type(v));
    k.buffers.push_back({ident(valueName(g, v)), g.type(v).numel()});
  }
  for (ValueId v : {dw, db}) k.buffers.push_back({ident(valueName(g, v)), g.type(v).numel()});
  uniqueBufferNames(k);
  LowerArgs a{n, types, k, {0, 1}, 2, training};
  NNC_CHECK(lowerConvGradWeightFused(a, 3));
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

namespace {

// A program while lowerGraph builds it, kernel by kernel in graph order.
struct ProgramBuilder {
  const Graph& g;
  Program p;

  int addSlot(std::string name, ValueId v, int64_t size) {
    Slot s{std::move(name), v, size, p.arenaFloats};
    p.arenaFloats += alignedFloats(size);
    p.slots.push_back(std::move(s));
    return static_cast<int>(p.slots.size()) - 1;
  }
  int addValueSlot(ValueId v) {
    p.valueSlot[static_cast<size_t>(v)] = addSlot(valueName(g, v), v, g.type(v).numel());
    return p.valueSlot[static_cast<size_t>(v)];
  }
  // Every kernel's operands must be computed before it (a check of the
  // fusions' reordering: a value gets its slot where it is computed).
  Expected<std::vector<int>> operandSlots(ValueId id, const std::vector<ValueId>& operands) const {
    std::vector<int> slots;
    for (ValueId v : operands) {
      const int s = p.valueSlot[static_cast<size_t>(v)];
      NNC_INTERNAL_ASSERT(s >= 0, fmt::format("in lower, kernel of %{}", id), "reads %{} before it is computed", v);
      slots.push_back(s);
    }
    return slots;
  }
  void launch(loop::Kernel k, std::vector<int> slots) {
    p.launches.push_back(Launch{static_cast<int>(p.kernels.size()), std::move(slots)});
    p.kernels.push_back(std::move(k));
  }
};

// A multi-output group's one kernel, launched at its root.
Status lowerGroupAt(ProgramBuilder& b, const FusionGroups& f, ValueId id) {
  std::vector<ValueId> leaves, outputs;
  loop::Kernel k = lowerPointwiseGroup(b.g, f.members[static_cast<size_t>(id)], f.inlined, f.groups.stored, leaves, outputs);
  NNC_TRY(std::vector<int> slots, b.operandSlots(id, leaves));
  for (ValueId v : outputs) slots.push_back(b.addValueSlot(v));
  b.launch(std::move(k), std::move(slots));
  return ok();
}

// Whether `id`, a reshape or flatten, shares its operand's slot instead of
// copying it: views of sources, and views the caller reads, keep their own.
bool aliasesOperand(const Graph& g, ValueId id, const std::vector<bool>& external, const LowerOptions& opt) {
  const Node& n = g.node(id);
  return opt.planMemory && opt.aliasViews && n.op->view && !external[static_cast<size_t>(id)] &&
         g.node(n.inputs[0]).op->kind != OpKind::Source;
}

// The kernel computing `id` (which already has its slot): its op's own rule,
// its pointwise tree with inlined producers, or the softmax-CE pair with the
// gradient; its temporaries get slots of their own.
Status lowerKernelAt(ProgramBuilder& b, const FusionGroups& f, ValueId id, bool training) {
  const Graph& g = b.g;
  const Node& n = g.node(id);
  bool fused = false;
  for (ValueId v : n.inputs) fused |= f.inlined[static_cast<size_t>(v)];
  std::vector<ValueId> operands = n.inputs;
  loop::Kernel k;
  const ValueId gr = f.ceGrad[static_cast<size_t>(id)], db = f.biasGrad[static_cast<size_t>(id)];
  if (gr != kNoValue) {
    NNC_TRY(k, lowerSoftmaxCePair(g, id, gr, training));
  } else if (db != kNoValue) {
    NNC_TRY(k, lowerConvGradPair(g, id, db, training));
  } else if (fused) {
    operands.clear();
    k = lowerPointwiseTree(g, id, f.inlined, operands);
  } else {
    NNC_TRY(k, lowerInto(g, id, training));
  }
  NNC_TRY(std::vector<int> slots, b.operandSlots(id, operands));
  slots.push_back(b.p.valueSlot[static_cast<size_t>(id)]);
  if (gr != kNoValue) slots.push_back(b.addValueSlot(gr));
  if (db != kNoValue) slots.push_back(b.addValueSlot(db));
  for (size_t buf = slots.size(); buf < k.buffers.size(); ++buf)
    slots.push_back(b.addSlot(fmt::format("{}.{}", k.name, k.buffers[buf].name), kNoValue, k.buffers[buf].size));
  b.launch(std::move(k), std::move(slots));
  return ok();
}

// Where live value `id` is computed: in its group's kernel, in its view's
// operand's slot, not at all (a source the caller fills), or by a kernel.
Status lowerValue(ProgramBuilder& b, const FusionGroups& f, ValueId id, const std::vector<bool>& external,
                  const LowerOptions& opt) {
  const Node& n = b.g.node(id);
  if (const ValueId r = f.groups.root[static_cast<size_t>(id)]; r != kNoValue)
    return r == id ? lowerGroupAt(b, f, id) : ok();  // a member is computed in its group's kernel, at the root
  if (aliasesOperand(b.g, id, external, opt)) {
    NNC_TRY(const std::vector<int> in, b.operandSlots(id, n.inputs));
    b.p.valueSlot[static_cast<size_t>(id)] = in[0];
    return ok();
  }
  if (n.op->inPlace) {
    NNC_TRY(const std::vector<int> in, b.operandSlots(id, {n.inputs[0]}));
    b.p.valueSlot[static_cast<size_t>(id)] = in[0];
    return lowerKernelAt(b, f, id, opt.training);
  }
  b.addValueSlot(id);
  if (n.op->kind == OpKind::Source) return ok();
  return lowerKernelAt(b, f, id, opt.training);
}

// Each allreduce_start's operands: the slots the memory plan lays out back
// to back as one block (the bucket its call sums). buildTrainStep gives
// every bucket computed gradients of their own; anything else is a bug.
Expected<std::vector<std::vector<int>>> bucketGroups(const Graph& g, const Program& p, const std::vector<bool>& live,
                                                     const std::vector<bool>& pinned) {
  std::vector<std::vector<int>> groups;
  std::vector<bool> grouped(p.slots.size(), false);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    if (!live[static_cast<size_t>(id)] || !g.node(id).op->is(OpId::AllreduceStart)) continue;
    std::vector<int>& group = groups.emplace_back();
    for (ValueId v : g.node(id).inputs) {
      const int s = p.valueSlot[static_cast<size_t>(v)];
      NNC_INTERNAL_ASSERT(s >= 0 && !pinned[static_cast<size_t>(s)] && !grouped[static_cast<size_t>(s)] &&
                              p.slots[static_cast<size_t>(s)].size == g.type(v).numel(),
                          fmt::format("in lower, bucket of %{}", id),
                          "gradient %{} has no slot of its own to lay out in the bucket", v);
      grouped[static_cast<size_t>(s)] = true;
      group.push_back(s);
    }
  }
  return groups;
}

// Slots the caller reads or fills between runs keep their place for the
// whole program: sources, targets and both sides of every commit.
std::vector<bool> pinnedSlots(const Graph& g, const Program& p, const std::vector<ValueId>& targets) {
  std::vector<bool> pinned(p.slots.size(), false);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id)
    if (p.valueSlot[static_cast<size_t>(id)] >= 0 && g.node(id).op->kind == OpKind::Source)
      pinned[static_cast<size_t>(p.valueSlot[static_cast<size_t>(id)])] = true;
  for (ValueId t : targets) pinned[static_cast<size_t>(p.valueSlot[static_cast<size_t>(t)])] = true;
  for (const auto& [dst, src] : p.commits) pinned[static_cast<size_t>(dst)] = pinned[static_cast<size_t>(src)] = true;
  return pinned;
}

}  // namespace

// Decide the fusions, lower every live value in graph order, add the
// commits, then the in-place updates and the memory plan.
Expected<Program> lowerGraph(const Graph& g, const std::vector<ValueId>& targets, const LowerOptions& opt) {
  const std::vector<ValueId> roots = rootsOf(targets, opt);
  const std::vector<bool> live = liveNodes(g, roots);
  std::vector<bool> external(g.size(), false);
  for (ValueId r : roots) external[static_cast<size_t>(r)] = true;
  const FusionGroups fused = fusionGroups(g, live, external, opt);
  if (opt.log) *opt.log << fusionLog(fused, opt);
  ProgramBuilder b{g, {}};
  b.p.valueSlot.assign(g.size(), -1);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    // Inlined values are computed in their reader's kernel, a softmax-CE
    // gradient in its loss's, a bias gradient in its weight gradient's.
    if (!live[static_cast<size_t>(id)] || fused.inlined[static_cast<size_t>(id)] ||
        fused.ceLoss[static_cast<size_t>(id)] != kNoValue || fused.weightGrad[static_cast<size_t>(id)] != kNoValue)
      continue;
    NNC_CHECK(lowerValue(b, fused, id, external, opt));
  }
  Program p = std::move(b.p);
  for (const auto& [param, next] : opt.commits)
    p.commits.emplace_back(p.valueSlot[static_cast<size_t>(param)], p.valueSlot[static_cast<size_t>(next)]);
  if (opt.planMemory && opt.updateInPlace) updateInPlace(p);
  const std::vector<bool> pinned = pinnedSlots(g, p, targets);
  NNC_TRY(p.groups, bucketGroups(g, p, live, pinned));
  if (opt.planMemory)
    planMemory(p, pinned);
  else if (!p.groups.empty())
    placeInOrder(p);
  return p;
}

std::string printProgram(const Program& p) {
  std::string out = fmt::format("# arena: {} floats ({} bytes) in {} slots\n", p.arenaFloats, p.arenaFloats * 4,
                                p.slots.size());
  for (size_t i = 0; i < p.slots.size(); ++i)
    out += fmt::format("#   slot {:3} @{:<8} {:>8} floats  {}\n", i, p.slots[i].offset, p.slots[i].size,
                       p.slots[i].name);
  for (size_t i = 0; i < p.groups.size(); ++i) {
    out += fmt::format("#   bucket {}: slots", i);
    for (int s : p.groups[i]) out += fmt::format(" {}", s);
    out += '\n';
  }
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
