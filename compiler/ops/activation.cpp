#include "compiler/ops/activation.h"

namespace nnc {

namespace {

struct Entry {
  Activation act;
  std::string_view name;         // the "act" attribute's value
  OpId op;                       // the elementwise op computing it
  std::string_view approximate;  // gelu's attribute of that name; "" for the others
  bool conv;                     // the convolutions' epilogues apply it too
};

constexpr Entry kActivations[] = {{kActNone, "none", OpId::Other, "", true},
                                  {kActRelu, "relu", OpId::Relu, "", true},
                                  {kActSigmoid, "sigmoid", OpId::Sigmoid, "", true},
                                  {kActTanh, "tanh", OpId::Tanh, "", true},
                                  {kActGelu, "gelu", OpId::Gelu, "none", false},
                                  {kActGeluTanh, "gelu_tanh", OpId::Gelu, "tanh", false},
                                  {kActSilu, "silu", OpId::Silu, "", false}};

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

std::string activationNames() {
  std::string s;
  for (const Entry& e : kActivations) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

bool convActivation(Activation act) {
  for (const Entry& e : kActivations)
    if (e.act == act) return e.conv;
  return false;
}

Activation actAttr(const Attrs& a) { return parseActivation(a.s("act")).value_or(kActNone); }

void setActAttr(Attrs& a, Activation act) { a.set("act", std::string(activationName(act))); }

std::optional<Activation> activationOf(const Node& n) {
  for (const Entry& e : kActivations)
    if (e.op != OpId::Other && n.op->is(e.op) && (e.approximate.empty() || n.attrs.s("approximate") == e.approximate))
      return e.act;
  return std::nullopt;
}

const OpDef& activationOp(Activation act) {
  for (const Entry& e : kActivations)
    if (e.act == act && e.op != OpId::Other) return findOp(e.op);
  return findOp(OpId::Relu);  // unreachable: kActNone has no op (see the header)
}

Attrs activationAttrs(Activation act) {
  Attrs a;
  for (const Entry& e : kActivations)
    if (e.act == act && !e.approximate.empty()) a.set("approximate", std::string(e.approximate));
  return a;
}

}  // namespace nnc
