// fold: a node whose operands are all constants becomes a constant,
// evaluated once by the op's reference rule and rounded to f32 as the
// compiled code would hold it. Random ops never fold; large results are
// left to compute at run time rather than bloat the program.
#include "compiler/passes/passes.h"

namespace nnc::passes {

namespace {

constexpr int64_t kMaxFolded = 1 << 16;

Tensor constValue(const Node& n) {
  Tensor t(n.type);
  const std::vector<double>& v = n.attrs.floats("value");
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = v.size() == 1 ? v[0] : v[i];
  return t;
}

}  // namespace

Expected<Optimized> foldConstants(const Graph& g, const std::vector<bool>&) {
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    bool foldable = n.op->kind == OpKind::Compute && n.op->eval && !n.inputs.empty() &&
                    !n.op->random && !n.op->collective && n.type.numel() <= kMaxFolded;
    // Operands as already rewritten: a chain of constant ops folds in one pass.
    for (ValueId v : n.inputs) foldable = foldable && r.out().node(r[v]).op->is(OpId::Const);
    if (!foldable) {
      r.copy(id);
      continue;
    }
    std::vector<Tensor> operands;
    std::vector<const Tensor*> in;
    for (ValueId v : n.inputs) operands.push_back(constValue(r.out().node(r[v])));
    for (const Tensor& t : operands) in.push_back(&t);
    Tensor out(n.type);
    const EvalEnv env;
    if (!n.op->eval(EvalArgs{in, n.attrs, out, env})) {  // e.g. a bad class id: the run will report it
      r.copy(id);
      continue;
    }
    std::vector<double> values;
    for (double x : out.data) values.push_back(static_cast<double>(static_cast<float>(x)));
    NNC_TRY(ValueId c, r.out().addSource("const", n.name, n.type, {{"value", values}}, n.loc));
    r.alias(id, c);
  }
  return r.finish();
}

}  // namespace nnc::passes
