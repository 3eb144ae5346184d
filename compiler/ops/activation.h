// The fused ops' "act" attribute ("none", "relu", "sigmoid", "tanh") and the
// runtime's Activation (runtime/activation.h) it stands for: the one place
// the two are converted. Every activation but none is also the elementwise
// op of the same name, which computes it.
#pragma once
#include <optional>
#include <string_view>

#include "compiler/ops/op_registry.h"
#include "runtime/activation.h"

namespace nnc {

// Empty for a name that is no activation.
std::optional<Activation> parseActivation(std::string_view name);
std::string_view activationName(Activation act);

// A fused op's "act" attribute (its shape rule checked the name), and setting it.
Activation actAttr(const Attrs& a);
void setActAttr(Attrs& a, Activation act);

// The activation the op computes: relu, sigmoid and tanh; empty for any other op.
std::optional<Activation> activationOf(const OpDef& op);
// The elementwise op computing act (not kActNone).
const OpDef& activationOp(Activation act);

}  // namespace nnc
