// Op handles (compiler/ops/op_id.h) and the activation attribute
// (compiler/ops/activation.h): the facts the passes test ops by.
#include <catch2/catch.hpp>

#include "compiler/graph/graph.h"
#include "compiler/ops/activation.h"

using namespace nnc;

TEST_CASE("op handles: every handle is the registered op of its name", "[ops]") {
  for (size_t i = 1; i < kOpIdCount; ++i) {
    const OpId id = static_cast<OpId>(i);
    INFO(opIdName(id));
    const OpDef* byName = findOp(opIdName(id));
    REQUIRE(byName != nullptr);
    CHECK(&findOp(id) == byName);
    CHECK(byName->is(id));
    CHECK(byName->name == opIdName(id));
  }
  CHECK(findOp("relu")->is(OpId::Relu));
  CHECK_FALSE(findOp("relu")->is(OpId::Sigmoid));
  CHECK(findOp("conv2d_pool_fused")->is(OpId::Conv2dPoolFused));
  // Ops the compiler never names have no handle.
  CHECK(findOp("exp")->is(OpId::Other));
  CHECK(findOp("log")->id == OpId::Other);
}

TEST_CASE("op handles: a graph node's op answers is()", "[ops]") {
  Graph g;
  g.name = "m";
  auto x = g.addSource("input", "x", TensorType{DType::F32, {2, 3}});
  REQUIRE(x);
  auto r = g.add("relu", {*x});
  REQUIRE(r);
  CHECK(g.node(*x).op->is(OpId::Input));
  CHECK(g.node(*r).op->is(OpId::Relu));
  CHECK(g.inputs == std::vector<ValueId>{*x});
}

TEST_CASE("activations: attribute names, runtime numbers and elementwise ops", "[ops]") {
  // The numbers generated code passes to nnc_sgemm_ep and nnc_conv2d.
  CHECK(int(kActNone) == 0);
  CHECK(int(kActRelu) == 1);
  CHECK(int(kActSigmoid) == 2);
  CHECK(int(kActTanh) == 3);
  CHECK(parseActivation("none") == kActNone);
  CHECK(parseActivation("relu") == kActRelu);
  CHECK(parseActivation("sigmoid") == kActSigmoid);
  CHECK(parseActivation("tanh") == kActTanh);
  CHECK_FALSE(parseActivation("Relu"));
  CHECK(parseActivation("gelu") == kActGelu);
  CHECK(parseActivation("gelu_tanh") == kActGeluTanh);
  CHECK(parseActivation("silu") == kActSilu);
  CHECK_FALSE(parseActivation("swish"));
  for (Activation a : {kActNone, kActRelu, kActSigmoid, kActTanh, kActGelu, kActGeluTanh, kActSilu})
    CHECK(parseActivation(activationName(a)) == a);
  CHECK(activationName(kActTanh) == "tanh");
  // The convolutions' epilogues take the first four only.
  CHECK(convActivation(kActTanh));
  CHECK_FALSE(convActivation(kActGelu));

  auto node = [](const char* op, Attrs attrs = {}) { return Node{.op = findOp(op), .attrs = std::move(attrs)}; };
  CHECK(activationOf(node("relu")) == kActRelu);
  CHECK(activationOf(node("sigmoid")) == kActSigmoid);
  CHECK(activationOf(node("tanh")) == kActTanh);
  CHECK(activationOf(node("gelu", {{"approximate", std::string("none")}})) == kActGelu);
  CHECK(activationOf(node("gelu", {{"approximate", std::string("tanh")}})) == kActGeluTanh);
  CHECK(activationOf(node("silu")) == kActSilu);
  CHECK_FALSE(activationOf(node("exp")));
  CHECK(activationOp(kActGeluTanh).name == "gelu");
  CHECK(activationAttrs(kActGeluTanh).s("approximate") == "tanh");
  CHECK_FALSE(activationAttrs(kActRelu).has("approximate"));
  CHECK(activationOp(kActSigmoid).name == "sigmoid");
  CHECK(activationOp(kActRelu).name == "relu");

  Attrs a;
  setActAttr(a, kActSigmoid);
  CHECK(a.s("act") == "sigmoid");
  CHECK(actAttr(a) == kActSigmoid);
}
