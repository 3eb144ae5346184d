// What a gradient rule (OpDef::grad) sees: the forward node, the gradient of
// its output, and helpers that add backward nodes to the same graph.
#pragma once
#include <vector>

#include "compiler/graph/graph.h"

namespace nnc {

struct GradCtx {
  Graph& g;
  ValueId node;                    // the forward node
  std::vector<ValueId> in;         // its operands
  std::vector<TensorType> inTypes;
  TensorType outType;
  Attrs attrs;
  ValueId dy;                      // d loss / d output, of type outType
  SourceLoc loc;                   // the forward node's, for backward nodes
  std::vector<bool> needs;         // which operands need a gradient (others may get kNoValue)

  bool need(size_t k) const { return k < needs.size() && needs[k]; }

  // Adds a backward node (shape-checked like any other).
  Expected<ValueId> op(std::string_view name, std::vector<ValueId> ins, Attrs a = {}) {
    return g.add(name, std::move(ins), std::move(a), loc);
  }
  // Shorthands for the rules' arithmetic.
  Expected<ValueId> mul(ValueId a, ValueId b) { return op("mul", {a, b}); }
  Expected<ValueId> mul(ValueId a, double b) {
    NNC_TRY(ValueId c, constant(b));
    return op("mul", {a, c});
  }
  Expected<ValueId> constant(double v) {
    return g.addSource("const", "", TensorType{DType::F32, {}}, Attrs{{"value", std::vector<double>{v}}}, loc);
  }
  // Sums `v` over the dims broadcasting added, so it has shape `to` (the
  // gradient of an operand that was broadcast).
  Expected<ValueId> reduceTo(ValueId v, const Shape& to);
  // The forward node's own output (for rules such as sigmoid's y·(1 − y)).
  ValueId y() const { return node; }
};

}  // namespace nnc
