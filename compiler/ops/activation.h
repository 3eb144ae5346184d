// The fused ops' "act" attribute ("none", "relu", "sigmoid", "tanh", "gelu",
// "gelu_tanh", "silu") and the runtime's Activation (runtime/activation.h) it
// stands for: the one place the two are converted. Every activation but none
// is also an elementwise op (gelu_tanh: gelu with approximate = "tanh"),
// which computes it.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "compiler/graph/graph.h"
#include "compiler/ops/op_registry.h"
#include "runtime/activation.h"

namespace nnc {

// Empty for a name that is no activation.
std::optional<Activation> parseActivation(std::string_view name);
std::string_view activationName(Activation act);
// "none, relu, ...": every name, for messages.
std::string activationNames();
// Whether the convolutions apply act in their epilogues (relu, sigmoid,
// tanh); the GEMM's applies every activation.
bool convActivation(Activation act);

// A fused op's "act" attribute (its shape rule checked the name), and setting it.
Activation actAttr(const Attrs& a);
void setActAttr(Attrs& a, Activation act);

// The activation node n computes; empty for any other node.
std::optional<Activation> activationOf(const Node& n);
// The elementwise op computing act (not kActNone), and the attributes it
// takes to compute it (gelu's approximate).
const OpDef& activationOp(Activation act);
Attrs activationAttrs(Activation act);

}  // namespace nnc
