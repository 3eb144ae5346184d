// Lowering's fusions: which graph nodes share a kernel. They are decided
// here, in one step (fusionGroups) before lowerGraph builds any kernel, and
// switched by LowerOptions (--no-fuse=elementwise, softmax_ce).
//
// All three stay in lowering rather than becoming graph passes, for the
// same reason: each decides which nodes share a loop nest, which is a
// loop-IR concern, and none needs a new op. As passes they would have to
// invent graph nodes for what is not one value: a chain inlined into its
// reader is an expression tree, a multi-output group stores several values
// from one loop, and the softmax-CE pair is one kernel with two results,
// where graph nodes have one result each. The graph dumps and the
// interpreter then stay those of the real ops, and the kernels' names and
// comments (k12_fused_add, k40_multi_sub, k9_fused_softmax_ce) say what was
// fused.
//   elementwise   a pointwise value used once, by a pointwise op of its
//                 shape, is computed inside that op's loop (inlinedPointwise)
//   multi-output  with elementwise: same-shape pointwise kernels along
//                 producer→consumer edges in one loop storing each
//                 (multiOutputGroups; its legality rule is there)
//   softmax_ce    softmax_cross_entropy and its gradient on the same operands
//                 in one kernel: one exp sweep per row instead of three
//                 (softmaxCePairs)
// and, not switched here since the graph pass fuse-conv already decided it,
// a convolution's bias gradient in its weight gradient's kernel
// (convBiasPairs).
// -v logs what each grouped (fusionLog).
#include "compiler/lower/fusion_groups.h"

#include <algorithm>
#include <queue>

#include <fmt/format.h>

namespace nnc {

namespace {

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

// The values the kernel rooted at `id` loads: its operands, or for a
// pointwise tree the operands of its inlined producers too (first use first).
std::vector<ValueId> kernelLeaves(const Graph& g, ValueId id, const std::vector<bool>& inlined) {
  std::vector<ValueId> leaves;
  auto collect = [&](auto&& self, ValueId v) -> void {
    for (ValueId in : g.node(v).inputs) {
      if (inlined[static_cast<size_t>(in)]) self(self, in);
      else if (std::find(leaves.begin(), leaves.end(), in) == leaves.end()) leaves.push_back(in);
    }
  };
  collect(collect, id);
  return leaves;
}

// Multi-output fusion. Kernels run in graph order. A group is a root R, a
// pointwise kernel, and pointwise kernels P of R's exact shape that R
// reads, directly or through other members or their inlined trees; the
// group is one loop at R's position that computes every member, in id
// order, and stores each one read outside the group (or by the caller).
// Members read inside the group are not reloaded from memory where they
// were just computed (a load of the element just stored, which the JIT
// forwards from the register; a member nothing outside reads gets no store
// at all and is folded into its readers' expressions).
//
// The legality rule: P may join R's group only if every kernel reading P is
// in the group or runs after R. Moving P from its own position forward to
// R's then reorders nothing that depends on it, and P's operands, ready at
// P's position, are still ready at R's. Roots are taken from the last
// kernel backwards and candidates from the highest id down, so a kernel
// reading P is always decided before P; a group formed later has a smaller
// root, which keeps the rule true for every group formed before.
// lowerGraph checks the resulting order once more.

// isKernel[v]: v is computed by a kernel rooted at v (live, not inlined, not
// a source, not a gradient computed with its softmax-CE loss).
Groups multiOutputGroups(const Graph& g, const std::vector<bool>& isKernel, const std::vector<bool>& inlined,
                         const std::vector<bool>& external) {
  const size_t n = g.size();
  std::vector<std::vector<ValueId>> readers(n), leaves(n);
  for (ValueId k = 0; k < static_cast<ValueId>(n); ++k) {
    if (!isKernel[static_cast<size_t>(k)]) continue;
    leaves[static_cast<size_t>(k)] = kernelLeaves(g, k, inlined);
    for (ValueId v : leaves[static_cast<size_t>(k)]) readers[static_cast<size_t>(v)].push_back(k);
  }
  auto fusible = [&](ValueId v) {
    const Node& nd = g.node(v);
    return isKernel[static_cast<size_t>(v)] && nd.op->pointwise && !nd.op->lower && nd.type.dtype == DType::F32;
  };
  Groups gr{std::vector<ValueId>(n, kNoValue), std::vector<bool>(n, false)};
  std::vector<bool> inGroup(n, false), seen(n, false);
  for (ValueId r = static_cast<ValueId>(n); r-- > 0;) {
    if (!fusible(r) || gr.root[static_cast<size_t>(r)] != kNoValue) continue;
    const Shape& shape = g.type(r).shape;
    std::vector<ValueId> members = {r};
    inGroup[static_cast<size_t>(r)] = true;
    std::priority_queue<ValueId> candidates;  // highest id first
    std::vector<ValueId> touched;
    auto offer = [&](ValueId m) {
      for (ValueId v : leaves[static_cast<size_t>(m)])
        if (!seen[static_cast<size_t>(v)] && fusible(v) && gr.root[static_cast<size_t>(v)] == kNoValue &&
            g.type(v).shape == shape) {
          seen[static_cast<size_t>(v)] = true;
          touched.push_back(v);
          candidates.push(v);
        }
    };
    offer(r);
    while (!candidates.empty()) {
      const ValueId p = candidates.top();
      candidates.pop();
      bool legal = true;
      for (ValueId k : readers[static_cast<size_t>(p)]) {
        const ValueId at = gr.root[static_cast<size_t>(k)] != kNoValue ? gr.root[static_cast<size_t>(k)] : k;
        legal &= inGroup[static_cast<size_t>(k)] || at > r;
      }
      if (!legal) continue;
      inGroup[static_cast<size_t>(p)] = true;
      members.push_back(p);
      offer(p);
    }
    for (ValueId v : touched) seen[static_cast<size_t>(v)] = false;
    if (members.size() > 1)
      for (ValueId m : members) {
        gr.root[static_cast<size_t>(m)] = r;
        bool outside = external[static_cast<size_t>(m)] || m == r;
        for (ValueId k : readers[static_cast<size_t>(m)]) outside |= !inGroup[static_cast<size_t>(k)];
        gr.stored[static_cast<size_t>(m)] = outside;
      }
    for (ValueId m : members) inGroup[static_cast<size_t>(m)] = false;
  }
  return gr;
}

// Pairs each live softmax_cross_entropy_grad with a live loss on the same
// operands and label smoothing: pairedGrad[loss] = grad.
std::vector<ValueId> softmaxCePairs(const Graph& g, const std::vector<bool>& live) {
  std::vector<ValueId> paired(g.size(), kNoValue);
  for (ValueId gr = 0; gr < static_cast<ValueId>(g.size()); ++gr) {
    if (!live[static_cast<size_t>(gr)] || !g.node(gr).op->is(OpId::SoftmaxCrossEntropyGrad)) continue;
    for (ValueId l = 0; l < gr; ++l)
      if (live[static_cast<size_t>(l)] && g.node(l).op->is(OpId::SoftmaxCrossEntropy) &&
          g.node(l).inputs == g.node(gr).inputs && g.node(l).attrs == g.node(gr).attrs &&
          paired[static_cast<size_t>(l)] == kNoValue) {
        paired[static_cast<size_t>(l)] = gr;
        break;
      }
  }
  return paired;
}

// Pairs each live conv2d_grad_bias_fused(dy, dw) with its operand dw, the
// conv2d_grad_weight_fused reading the same dy: paired[dw] = db. Not a
// switch of its own: fuse-conv made the node for exactly this kernel.
std::vector<ValueId> convBiasPairs(const Graph& g, const std::vector<bool>& live) {
  std::vector<ValueId> paired(g.size(), kNoValue);
  for (ValueId db = 0; db < static_cast<ValueId>(g.size()); ++db) {
    const Node& n = g.node(db);
    if (!live[static_cast<size_t>(db)] || !n.op->is(OpId::Conv2dGradBiasFused)) continue;
    const ValueId dw = n.inputs[1];
    if (g.node(dw).op->is(OpId::Conv2dGradWeightFused) && g.node(dw).inputs[1] == n.inputs[0] &&
        paired[static_cast<size_t>(dw)] == kNoValue)
      paired[static_cast<size_t>(dw)] = db;
  }
  return paired;
}

}  // namespace

FusionGroups fusionGroups(const Graph& g, const std::vector<bool>& live, const std::vector<bool>& external,
                          const LowerOptions& opt) {
  FusionGroups f;
  f.inlined = opt.fuseElementwise ? inlinedPointwise(g, live, external) : std::vector<bool>(g.size(), false);
  f.ceGrad = opt.fuseSoftmaxCe ? softmaxCePairs(g, live) : std::vector<ValueId>(g.size(), kNoValue);
  f.ceLoss.assign(g.size(), kNoValue);  // the inverse of ceGrad
  for (ValueId l = 0; l < static_cast<ValueId>(g.size()); ++l)
    if (f.ceGrad[static_cast<size_t>(l)] != kNoValue) f.ceLoss[static_cast<size_t>(f.ceGrad[static_cast<size_t>(l)])] = l;
  f.biasGrad = convBiasPairs(g, live);
  f.weightGrad.assign(g.size(), kNoValue);
  for (ValueId w = 0; w < static_cast<ValueId>(g.size()); ++w)
    if (const ValueId b = f.biasGrad[static_cast<size_t>(w)]; b != kNoValue) f.weightGrad[static_cast<size_t>(b)] = w;
  f.groups = Groups{std::vector<ValueId>(g.size(), kNoValue), std::vector<bool>(g.size(), false)};
  if (opt.fuseElementwise && opt.fuseMultiOutput) {
    std::vector<bool> isKernel(g.size(), false);
    for (ValueId v = 0; v < static_cast<ValueId>(g.size()); ++v)
      isKernel[static_cast<size_t>(v)] = live[static_cast<size_t>(v)] && !f.inlined[static_cast<size_t>(v)] &&
                                         g.node(v).op->kind != OpKind::Source && f.ceLoss[static_cast<size_t>(v)] == kNoValue;
    f.groups = multiOutputGroups(g, isKernel, f.inlined, external);
  }
  f.members.resize(g.size());  // per group root, in id order
  for (ValueId v = 0; v < static_cast<ValueId>(g.size()); ++v)
    if (const ValueId r = f.groups.root[static_cast<size_t>(v)]; r != kNoValue) f.members[static_cast<size_t>(r)].push_back(v);
  return f;
}

std::string fusionLog(const FusionGroups& f, const LowerOptions& opt) {
  const int64_t inlined = std::count(f.inlined.begin(), f.inlined.end(), true);
  int64_t groups = 0, grouped = 0;
  for (const std::vector<ValueId>& m : f.members) {
    groups += !m.empty();
    grouped += static_cast<int64_t>(m.size());
  }
  const int64_t pairs = static_cast<int64_t>(f.ceLoss.size()) - std::count(f.ceLoss.begin(), f.ceLoss.end(), kNoValue);
  auto line = [](const char* name, bool on, const std::string& what) {
    return fmt::format("fuse {:<14} {}\n", name, on ? what : " off");
  };
  std::string out = line("elementwise", opt.fuseElementwise, fmt::format("{:>4} values computed in their reader's loop", inlined));
  out += line("multi-output", opt.fuseElementwise && opt.fuseMultiOutput,
              fmt::format("{:>4} groups of {} values in all, one loop each", groups, grouped));
  out += line("softmax_ce", opt.fuseSoftmaxCe, fmt::format("{:>4} loss and gradient pairs, one kernel each", pairs));
  return out;
}

}  // namespace nnc
