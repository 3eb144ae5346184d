// simplify: algebraic identities that autodiff and layers leave behind.
//   x·1, 1·x, x/1, x+0, 0+x, x−0  → x   (when the result has x's type: a
//                                      constant that broadcasts x up is kept)
//   neg(neg(x))                    → x
//   transpose(transpose(x))        → x, or one transpose
//   reshape/flatten of a reshape   → one reshape; to x's own shape → x
// The seed gradient d loss/d loss = 1 is what most often disappears here:
// softmax_cross_entropy_grad(z, t)·1 becomes the gradient itself.
#include <numeric>

#include "compiler/passes/passes.h"

namespace nnc::passes {

namespace {

std::vector<int64_t> permOf(const Node& n) {
  std::vector<int64_t> p = n.attrs.ints("perm");
  if (p.empty()) {
    p.resize(n.type.shape.size());
    std::iota(p.rbegin(), p.rend(), 0);  // the default reverses the axes
  }
  return p;
}

bool isReshape(const Node& n) { return n.op->is(OpId::Reshape) || n.op->is(OpId::Flatten); }

// The operand x is what `n` computes, if an identity applies.
ValueId identityOperand(const Graph& g, const Node& n) {
  const OpDef& op = *n.op;
  auto same = [&](ValueId x) { return g.type(x) == n.type ? x : kNoValue; };
  if (n.inputs.size() == 2) {
    const ValueId a = n.inputs[0], b = n.inputs[1];
    if (op.is(OpId::Mul)) {
      if (isConstFill(g, b, 1)) return same(a);
      if (isConstFill(g, a, 1)) return same(b);
    }
    if (op.is(OpId::Add)) {
      if (isConstFill(g, b, 0)) return same(a);
      if (isConstFill(g, a, 0)) return same(b);
    }
    if (op.is(OpId::Sub) && isConstFill(g, b, 0)) return same(a);
    if (op.is(OpId::Div) && isConstFill(g, b, 1)) return same(a);
  }
  if (op.is(OpId::Neg) && g.node(n.inputs[0]).op->is(OpId::Neg)) return same(g.node(n.inputs[0]).inputs[0]);
  if (isReshape(n) || (op.is(OpId::Transpose) && n.type.shape.size() <= 1)) return same(n.inputs[0]);
  return kNoValue;
}

}  // namespace

Expected<Optimized> simplify(const Graph& g, const std::vector<bool>& external) {
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    if (n.op->kind == OpKind::Source) {
      r.copy(id);
      continue;
    }
    // A value the caller reads keeps a node of its own (it may be rewritten).
    if (const ValueId x = identityOperand(g, n); x != kNoValue && !external[static_cast<size_t>(id)]) {
      r.alias(id, r[x]);
      continue;
    }
    // Chains collapse onto the first operand: the inner node then usually
    // has no other use and dce removes it.
    const Node& inner = g.node(n.inputs.empty() ? id : n.inputs[0]);
    if (isReshape(n) && isReshape(inner)) {
      NNC_CHECK(r.replace(id, "reshape", {r[inner.inputs[0]]}, {{"shape", n.type.shape}}));
      continue;
    }
    if (n.op->is(OpId::Transpose) && inner.op->is(OpId::Transpose) && &inner != &n) {
      const std::vector<int64_t> outer = permOf(n), first = permOf(inner);
      std::vector<int64_t> composed(outer.size());
      bool identity = true;
      for (size_t d = 0; d < outer.size(); ++d) {
        composed[d] = first[static_cast<size_t>(outer[d])];
        identity &= composed[d] == static_cast<int64_t>(d);
      }
      if (identity)
        r.alias(id, r[inner.inputs[0]]);
      else
        NNC_CHECK(r.replace(id, "transpose", {r[inner.inputs[0]]}, {{"perm", composed}}));
      continue;
    }
    r.copy(id);
  }
  return r.finish();
}

}  // namespace nnc::passes
