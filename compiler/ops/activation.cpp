#include "compiler/ops/activation.h"

namespace nnc {

namespace {

struct Entry {
  Activation act;
  std::string_view name;  // the "act" attribute's value
  OpId op;                // the elementwise op computing it
};

constexpr Entry kActivations[] = {{kActNone, "none", OpId::Other},
                                  {kActRelu, "relu", OpId::Relu},
                                  {kActSigmoid, "sigmoid", OpId::Sigmoid},
                                  {kActTanh, "tanh", OpId::Tanh}};

}  // namespace

std::optional<Activation> parseActivation(std::string_view name) {
  for (const Entry& e : kActivations)
    if (e.name == name) return e.act;
  return std::nullopt;
}

std::string_view activationName(Activation act) {
  for (const Entry& e : kActivations)
    if (e.act == act) return e.name;
  return "none";
}

Activation actAttr(const Attrs& a) { return parseActivation(a.s("act")).value_or(kActNone); }

void setActAttr(Attrs& a, Activation act) { a.set("act", std::string(activationName(act))); }

std::optional<Activation> activationOf(const OpDef& op) {
  for (const Entry& e : kActivations)
    if (e.op != OpId::Other && op.is(e.op)) return e.act;
  return std::nullopt;
}

const OpDef& activationOp(Activation act) {
  for (const Entry& e : kActivations)
    if (e.act == act && e.op != OpId::Other) return findOp(e.op);
  return findOp(OpId::Relu);  // unreachable: kActNone has no op (see the header)
}

}  // namespace nnc
