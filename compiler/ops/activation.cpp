#include "compiler/ops/activation.h"

#include <utility>

namespace nnc {

namespace {
constexpr std::pair<Activation, std::string_view> kNames[] = {
    {kActNone, "none"}, {kActRelu, "relu"}, {kActSigmoid, "sigmoid"}, {kActTanh, "tanh"}};
}  // namespace

std::optional<Activation> parseActivation(std::string_view name) {
  for (const auto& [act, n] : kNames)
    if (n == name) return act;
  return std::nullopt;
}

std::string_view activationName(Activation act) {
  for (const auto& [a, n] : kNames)
    if (a == act) return n;
  return "none";
}

Activation actAttr(const Attrs& a) { return parseActivation(a.s("act")).value_or(kActNone); }

void setActAttr(Attrs& a, Activation act) { a.set("act", std::string(activationName(act))); }

std::optional<Activation> activationOf(const OpDef& op) {
  const std::optional<Activation> act = parseActivation(op.name);
  return act == kActNone ? std::nullopt : act;
}

const OpDef& activationOp(Activation act) { return *findOp(activationName(act)); }

}  // namespace nnc
