// activation = "..." on the layer sugar: the same graph as the op written
// around the layer (so the epilogue fusions still apply), and errors that
// point at the argument.
#include <catch2/catch.hpp>

#include <fstream>

#include "test_util.h"

using namespace nnc;
using nnc::test::compile;

namespace {

std::string graphOf(const std::string& src) {
  auto c = compile(src);
  if (!c.model) FAIL(c.diag);
  return printGraph(c.model->graph);
}

std::string model(const std::string& body) {
  return "model m {\n  input x: f32[4, 1, 6, 6]\n  input v: f32[4, 8]\n" + body + "\n}";
}

}  // namespace

TEST_CASE("activation = on dense and the convolutions is the op around the layer", "[elaborate][activations]") {
  for (const char* act : {"relu", "relu6", "gelu", "silu", "elu", "selu", "softplus", "sigmoid", "tanh", "leaky_relu"}) {
    INFO(act);
    const std::string a = std::string("\"") + act + "\"";
    CHECK(graphOf(model("  output y = dense(v, 5, activation = " + a + ")")) ==
          graphOf(model(std::string("  output y = ") + act + "(dense(v, 5))")));
    CHECK(graphOf(model("  output y = conv2d(x, 3, 3, pad = 1, activation = " + a + ")")) ==
          graphOf(model(std::string("  output y = ") + act + "(conv2d(x, 3, 3, pad = 1))")));
    CHECK(graphOf(model("  output y = conv_transpose2d(x, 2, 2, stride = 2, activation = " + a + ")")) ==
          graphOf(model(std::string("  output y = ") + act + "(conv_transpose2d(x, 2, 2, stride = 2))")));
  }
  for (const char* none : {"none", "identity"})
    CHECK(graphOf(model(std::string("  output y = dense(v, 5, activation = \"") + none + "\")")) ==
          graphOf(model("  output y = dense(v, 5)")));
}

TEST_CASE("activation = errors name the argument and the accepted names", "[elaborate][activations]") {
  auto bad = compile(model("  output y = dense(v, 5, activation = \"swish\")"));
  REQUIRE_FALSE(bad.model);
  CHECK_THAT(bad.diag, Catch::Contains("m.nn:4:39: error: activation of 'dense' must be one of \"none\", \"identity\", "
                                       "\"relu\", \"relu6\", \"gelu\", \"silu\", \"elu\", \"selu\", \"softplus\", "
                                       "\"sigmoid\", \"tanh\", \"leaky_relu\""));
  auto notString = compile(model("  output y = conv2d(x, 3, 3, activation = relu)"));
  REQUIRE_FALSE(notString.model);
  auto number = compile(model("  output y = conv2d(x, 3, 3, activation = 1)"));
  REQUIRE_FALSE(number.model);
  CHECK_THAT(number.diag, Catch::Contains("m.nn:4:43: error: activation of 'conv2d' must be one of"));
}

TEST_CASE("dense(..., activation = \"relu\") still fuses into matmul_fused", "[cli][activations]") {
  const std::string dir = test::tempDir("layer_activation");
  const std::string path = dir + "/m.nn";
  std::ofstream(path) << "model m {\n  input x: f32[4, 8]\n  label t: i32[4]\n"
                         "  h = dense(x, 16, activation = \"relu\")\n"
                         "  loss = softmax_cross_entropy(dense(h, 3), t)\n}\n";
  auto r = test::runCli({"graph", path, "--optimized"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("h = matmul_fused(") && Catch::Contains("act=\"relu\")"));
}
