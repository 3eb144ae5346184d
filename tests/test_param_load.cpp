// load("w.npz") initializers and buffer declarations: values read from the
// file beside the model, every mismatch an error at the param, and buffers
// left alone by the optimizer.
#include <catch2/catch.hpp>

#include <filesystem>

#include "compiler/autodiff/train_step.h"
#include "compiler/graph/graph_util.h"
#include "io/npy.h"
#include "test_util.h"

namespace nnc {
namespace {

Tensor t(Shape s, std::vector<double> v) { return Tensor(TensorType{DType::F32, std::move(s)}, std::move(v)); }

struct Model {
  SourceManager sm;
  Expected<Elaborated> e = error("not compiled");
  std::string diag;
};

void compileIn(Model& m, const std::string& dir, const std::string& src) {
  m.e = cli::compileSource(m.sm, dir + "/m.nn", src);
  if (!m.e) m.diag = m.sm.render(m.e.error());
}

TEST_CASE("load(): values from the .npz beside the model, by param name or key", "[load]") {
  const std::string dir = test::tempDir("param_load");
  REQUIRE(writeNpz(dir + "/w.npz", {{"W", t({2, 2}, {1, 2, 3, 4})}, {"other", t({2}, {0.5, -0.5})}}));
  Model m;
  compileIn(m, dir, R"(model m {
    input x: f32[1, 2]
    param W: f32[2, 2] = load("w.npz")
    buffer b: f32[2] = load("w.npz", "other")
    output y = x @ W + b
})");
  INFO(m.diag);
  REQUIRE(m.e);
  const Graph& g = m.e->graph;
  auto p = initParams(g, 42);
  REQUIRE(p);
  CHECK(p->at("W").data == std::vector<double>{1, 2, 3, 4});
  CHECK(p->at("b").data == std::vector<double>{0.5, -0.5});
  CHECK(g.paramCount(true) == 4);   // W only
  CHECK(g.paramCount(false) == 6);  // and the buffer
  // The train step has no gradient or update for the buffer.
  Model t2;
  compileIn(t2, dir, R"(model m {
    input x: f32[1, 2]
    label t: f32[1, 2]
    param W: f32[2, 2] = load("w.npz")
    buffer b: f32[2] = load("w.npz", "other")
    loss = mse(x @ W + b, t)
})");
  REQUIRE(t2.e);
  auto step = buildTrainStep(t2.e->graph, std::nullopt);
  REQUIRE(step);
  for (const auto& [param, _] : step->updates) CHECK(step->grads.graph.node(param).name != "b");
  CHECK(step->updates.size() == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("load(): a missing file, array or a shape other than declared is an error at the param", "[load]") {
  const std::string dir = test::tempDir("param_load_bad");
  REQUIRE(writeNpz(dir + "/w.npz", {{"W", t({2, 2}, {1, 2, 3, 4})}, {"nan", t({1}, {std::nan("")})}}));
  struct Case {
    const char* decl;
    std::vector<std::string> fragments;
  };
  const Case cases[] = {
      {R"(param W: f32[3, 2] = load("w.npz"))", {"m.nn:3:11", "param 'W' is declared [3, 2] but 'W' in", "is [2, 2]"}},
      {R"(param V: f32[2, 2] = load("w.npz"))", {"param 'V':", "has no array 'V' (it holds W, nan)"}},
      {R"(param W: f32[2, 2] = load("none.npz"))", {"param 'W': load(\"none.npz\")", "none.npz"}},
      {R"(param W: f32[1] = load("w.npz", "nan"))", {"'nan' in", "holds NaN at index 0"}},
      {R"(param W: f32[2, 2] = load(3))", {"load()'s file is a string, not an integer"}},
      {R"(param W: f32[2, 2] = load("w.npz", key = 1))", {"load()'s key is a string"}},
      {R"(param W: f32[2, 2] = load("w.npz", size = 1))", {"load() has no argument 'size'"}},
      {R"(param W: f32[2, 2] = load())", {"load() needs the .npz file"}},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.decl) {
      Model m;
      compileIn(m, dir, std::string("model m {\n    input x: f32[1, 2]\n    ") + c.decl + "\n    output y = x\n}");
      REQUIRE_FALSE(m.e);
      for (const std::string& f : c.fragments) {
        INFO(m.diag);
        CHECK(m.diag.find(f) != std::string::npos);
      }
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("batchnorm's running statistics must be buffers when written out", "[load]") {
  const char* src = R"(model m {
    input x: f32[4, 3]
    label t: f32[4, 3]
    param g: f32[3] = constant(1)
    param b: f32[3] = zeros()
    %s m: f32[3] = zeros()
    buffer v: f32[3] = constant(1)
    loss = mse(batchnorm(x, g, b, m, v), t)
})";
  for (const char* kw : {"param", "buffer"}) {
    DYNAMIC_SECTION(kw) {
      char text[512];
      std::snprintf(text, sizeof text, src, kw);
      auto c = test::compile(text);
      INFO(c.diag);
      REQUIRE(c.model);
      auto step = buildTrainStep(c.model->graph, std::nullopt);
      if (std::string(kw) == "param") {
        REQUIRE_FALSE(step);
        INFO(step.error().message);
        CHECK(step.error().message.find("running statistics must be buffers") != std::string::npos);
        CHECK(step.error().message.find("the trained param 'm'") != std::string::npos);
      } else {
        INFO((step ? "" : step.error().message));
        REQUIRE(step);
        size_t running = 0;
        for (const auto& [param, _] : step->updates) {
          const std::string& n = step->grads.graph.node(param).name;
          running += n == "m" || n == "v";
        }
        CHECK(running == 2);
      }
    }
  }
}

}  // namespace
}  // namespace nnc
