// fuse-batchnorm (compiler/passes/fuse_batchnorm.cpp) and the fused
// batchnorm ops: where the pass fires, a golden dump, the fused graph's
// reference rules against the unfused graph's, and the JIT's train step and
// inference against the interpreter on odd shapes ([N, C] and [N, C, H, W],
// C = 1, H·W = 1, N = 1, with and without relu), 1 and 2 threads alike.
#include <catch2/catch.hpp>

#include <cmath>

#include <fmt/format.h>

#include "cli/frontend.h"
#include "compiler/autodiff/gradcheck.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "compiler/passes/pipeline.h"
#include "runtime/parallel.h"
#include "op_test_util.h"
#include "pass_test_util.h"
#include "runtime/rng.h"
#include "test_util.h"

using namespace nnc;

namespace {

struct Shape4 {
  int64_t n, c, h, w;  // h = 0: [N, C]
  bool relu;
};

// x → a product with a param W of C channels (so the gradient runs through
// batchnorm to x) → [relu](batchnorm) → a layer of 2 → l2, trained by SGD.
// W has no bias: batchnorm cancels one, whose gradient would be rounding
// noise about an exact 0, which no relative tolerance bounds.
std::string modelText(const Shape4& s) {
  const std::string bn = s.relu ? "relu(batchnorm(a))" : "batchnorm(a)";
  if (s.h == 0)
    return fmt::format(R"(model m {{
      input x: f32[{}, {}]
      param W: f32[{}, {}] = he()
      a = matmul(x, W)
      h = {}
      loss = l2(dense(h, 2))
    }}
    train m {{ optimizer = sgd(lr = 0.05) }})",
                       s.n, s.c, s.c, s.c, bn);
  return fmt::format(R"(model m {{
      input x: f32[{}, {}, {}, {}]
      param W: f32[{}, {}, 1, 1] = he()
      a = conv2d(x, W)
      h = {}
      loss = l2(conv2d(h, filters = 2, kernel = 1))
    }}
    train m {{ optimizer = sgd(lr = 0.05) }})",
                     s.n, s.c, s.h, s.w, s.c, s.c, bn);
}

Elaborated compile(SourceManager& sm, const std::string& text) { return pass_test::compile(sm, text, "bn.nn"); }

using pass_test::opsOf;

bool has(const std::string& ops, const std::string& op) { return (" " + ops).find(" " + op + " ") != std::string::npos; }

void fillSlot(jit::CompiledProgram& p, ValueId v, const Tensor& t) {
  float* d = p.data(v);
  if (!d) return;
  for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
}

struct Step {
  TrainStep step;
  std::vector<ValueId> targets;  // the loss and every next value
  TensorMap feeds;
};

Step stepOf(const Elaborated& m) {
  auto step = buildTrainStep(m.graph, m.train);
  if (!step) FAIL(step.error().message);
  const Graph& g = step->grads.graph;
  std::vector<ValueId> targets = {g.loss};
  for (auto [_, next] : step->updates) targets.push_back(next);
  TensorMap feeds = randomFeeds(g, 7);
  auto params = initParams(g, 42);
  REQUIRE(params);
  for (auto& [k, v] : *params) feeds[k] = v;
  // Away from γ = 1, β = 0, so that their gradients' roles are told apart.
  for (const char* p : {"bn1.gamma", "bn1.beta"}) {
    Tensor& t = feeds[p];
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] += 0.3 * static_cast<double>(i + 1);
  }
  feeds[g.node(step->lr).name] = Tensor(g.type(step->lr), {0.05});
  return {step.take(), targets, feeds};
}

// The train step's graph optimized for its loss, as the compiler sees it.
auto optimizedStep(const Step& s, const PassOptions& passes = {}) {
  const Graph& g = s.step.grads.graph;
  return optimizeGraph(g, rootsOf({g.loss}, s.step.lowering()), passes);
}

// The JIT's train step (one run): the loss, then each param's next value.
std::vector<float> runJit(const Step& s, int threads, const PassOptions& passes = {}) {
  const Graph& g = s.step.grads.graph;
  setThreadCount(threads);
  jit::CompileOptions co;
  co.passes = passes;
  auto cp = jit::CompiledProgram::create(g, {g.loss}, s.step.lowering(), co);
  if (!cp) FAIL(cp.error().message);
  for (const auto& [name, v] : s.feeds) fillSlot(**cp, g.findByName(name), v);
  (*cp)->run();
  std::vector<float> r((*cp)->data(g.loss), (*cp)->data(g.loss) + 1);
  for (auto [param, _] : s.step.updates) r.insert(r.end(), (*cp)->data(param), (*cp)->data(param) + (*cp)->size(param));
  setThreadCount(0);
  return r;
}

const Shape4 kShapes[] = {
    {4, 3, 5, 5, true},  {4, 3, 5, 5, false}, {3, 1, 4, 4, true},   {5, 3, 1, 1, true},   {1, 3, 5, 5, false},
    {1, 2, 1, 1, true},  {6, 5, 0, 0, true},  {6, 5, 0, 0, false},  {1, 4, 0, 0, true},   {7, 1, 0, 0, false},
    {8, 17, 9, 11, true}, {64, 3, 0, 0, true},
};

}  // namespace

TEST_CASE("fuse-batchnorm: four sweeps replace batchnorm, its relu, statistics and gradient", "[passes][batchnorm]") {
  for (bool relu : {true, false}) {
    SourceManager sm;
    Elaborated m = compile(sm, modelText({4, 3, 5, 5, relu}));
    Step s = stepOf(m);
    auto o = optimizedStep(s);
    REQUIRE(o);
    const std::string ops = opsOf(o->graph);
    INFO(ops);
    CHECK(has(ops, "batchnorm_stats"));
    CHECK(has(ops, relu ? "batchnorm_fused.relu" : "batchnorm_fused.none"));
    CHECK(has(ops, "batchnorm_grad_sums"));
    CHECK(has(ops, "batchnorm_grad_input"));
    for (const char* gone : {"batchnorm", "relu", "step", "sqrt", "square", "mean"}) {
      INFO(gone);
      CHECK_FALSE(has(ops, gone));
    }
    PassOptions off;
    off.disabled.insert("batchnorm");
    auto u = optimizedStep(s, off);
    REQUIRE(u);
    CHECK(opsOf(u->graph).find("batchnorm_") == std::string::npos);
  }
}

TEST_CASE("fuse-batchnorm: read elsewhere, the batchnorm keeps its value and the relu its node", "[passes][batchnorm]") {
  SourceManager sm;
  Elaborated m = compile(sm, R"(model m {
      input x: f32[4, 3, 5, 5]
      a = conv2d(x, filters = 3, kernel = 1)
      b = batchnorm(a)
      loss = l2(conv2d(relu(b), filters = 2, kernel = 1)) + l2(b)
    }
    train m { optimizer = sgd(lr = 0.05) })");
  Step s = stepOf(m);
  auto o = optimizedStep(s);
  REQUIRE(o);
  const std::string ops = opsOf(o->graph);
  INFO(ops);
  CHECK(has(ops, "batchnorm_fused.none"));
  CHECK(has(ops, "relu"));
  CHECK(has(ops, "batchnorm_grad_input"));
}

TEST_CASE("golden: fuse-batchnorm on a convolution, batchnorm and relu", "[passes][golden][batchnorm]") {
  SourceManager sm;
  Elaborated m = compile(sm, modelText({4, 3, 5, 5, true}));
  Step s = stepOf(m);
  PassOptions opt;
  opt.convAlgo = "gemm";
  auto o = optimizedStep(s, opt);
  REQUIRE(o);
  CHECK(test::matchesGolden(printGraph(o->graph), "batchnorm_relu.optimized"));
}

TEST_CASE("fuse-batchnorm: the fused rules equal the unfused graph's and the JIT matches the interpreter on 1 and 2 threads",
          "[passes][batchnorm][jit]") {
  for (const Shape4& shape : kShapes) {
    const std::string text = modelText(shape);
    INFO(text);
    SourceManager sm;
    Elaborated m = compile(sm, text);
    Step s = stepOf(m);
    const Graph& g = s.step.grads.graph;
    auto want = interpret(g, s.feeds, EvalOptions{true, true}, s.targets);
    REQUIRE(want);
    // The reference rules of the fused graph (f64): the same values.
    auto o = optimizedStep(s);
    REQUIRE(o);
    REQUIRE(opsOf(o->graph).find("batchnorm_grad_input") != std::string::npos);
    auto got = interpret(o->graph, s.feeds, EvalOptions{true, true});
    REQUIRE(got);
    for (ValueId t : s.targets) {
      const Tensor &a = (*want)[static_cast<size_t>(t)], &b = (*got)[static_cast<size_t>(o->map[static_cast<size_t>(t)])];
      REQUIRE(a.data.size() == b.data.size());
      for (size_t i = 0; i < a.data.size(); ++i) REQUIRE(std::abs(a.data[i] - b.data[i]) <= 1e-12 + 1e-10 * std::abs(a.data[i]));
    }
    std::vector<double> reference;
    for (ValueId t : s.targets) {
      const std::vector<double>& d = (*want)[static_cast<size_t>(t)].data;
      reference.insert(reference.end(), d.begin(), d.end());
    }
    const std::vector<float> one = runJit(s, 1), two = runJit(s, 2);
    CHECK(one == two);
    REQUIRE(one.size() == reference.size());
    for (size_t i = 0; i < one.size(); ++i) {
      INFO("element " << i << ": JIT " << one[i] << ", interpreter " << reference[i]);
      REQUIRE(std::abs(one[i] - reference[i]) <= 1e-5 + 1e-4 * std::abs(reference[i]));
    }
  }
}

TEST_CASE("fuse-batchnorm: inference fuses the relu alone, on the running statistics", "[passes][batchnorm][jit]") {
  for (bool rank4 : {true, false}) {
    SourceManager sm;
    Elaborated m = compile(sm, modelText(rank4 ? Shape4{3, 4, 2, 3, true} : Shape4{5, 4, 0, 0, true}));
    const Graph& g = m.graph;
    TensorMap feeds = randomFeeds(g, 3);
    auto params = initParams(g, 42);
    REQUIRE(params);
    for (auto& [k, v] : *params) feeds[k] = v;
    for (auto& [name, v] : {std::pair{"bn1.running_mean", 0.4}, std::pair{"bn1.running_var", 2.5}})
      for (double& e : feeds[name].data) e = v;
    auto want = interpret(g, feeds, EvalOptions{false, false}, {g.loss});
    REQUIRE(want);
    // The convolution's batchnorm would fold into it (test_fold_batchnorm.cpp).
    jit::CompileOptions co;
    co.passes.disabled.insert("fold-batchnorm");
    auto cp = jit::CompiledProgram::create(g, {g.loss}, LowerOptions{}, co);
    if (!cp) FAIL(cp.error().message);
    const std::string ops = opsOf((*cp)->optimizedGraph());
    INFO(ops);
    CHECK(has(ops, "batchnorm_fused.relu"));
    CHECK_FALSE(has(ops, "batchnorm_stats"));
    for (const auto& [name, v] : feeds) fillSlot(**cp, g.findByName(name), v);
    (*cp)->run();
    const double ref = (*want)[static_cast<size_t>(g.loss)].data[0];
    CHECK(std::abs(*(*cp)->data(g.loss) - ref) <= 1e-5 + 1e-4 * std::abs(ref));
  }
}

TEST_CASE("fuse-batchnorm runs after autodiff: batchnorm's own gradient checks as before",
          "[passes][batchnorm][grad]") {
  // Autodiff and gradcheck see the expanded, differentiable gradient; the
  // pass rewrites only the final graph.
  for (bool relu : {false, true}) {
    SourceManager sm;
    Elaborated m = compile(sm, modelText({3, 2, 2, 2, relu}));
    auto r = gradCheck(m.graph, randomFeeds(m.graph, 3), GradCheckOptions{});
    if (!r) FAIL(r.error().message);
    for (const ParamCheck& p : r->params) {
      INFO(p.name << ": max rel " << p.maxRel);
      CHECK(p.ok);
    }
  }
}

namespace {

Tensor randomOf(Shape shape, Rng& rng, double offset = 0) {
  Tensor t(TensorType{DType::F32, std::move(shape)});
  for (double& v : t.data) v = offset + rng.normal();
  return t;
}

}  // namespace

TEST_CASE("fused batchnorm ops: each lowering (loop evaluator, JIT) against its reference rule", "[ops][batchnorm]") {
  Rng rng(31);
  for (const Shape& xs : {Shape{4, 3, 5, 2}, Shape{6, 3}, Shape{1, 1, 1, 1}, Shape{3, 5, 1, 1}}) {
    INFO(typeString(TensorType{DType::F32, xs}));
    const int64_t c = xs[1];
    // A mean far from 0, where E[x²] − mean² would cancel in f32.
    test::evalOp("batchnorm_stats", {randomOf(xs, rng, 300)});
    const Tensor x = randomOf(xs, rng), dy = randomOf(xs, rng), g = randomOf({c}, rng), b = randomOf({c}, rng);
    const Tensor rm = randomOf({c}, rng);
    Tensor rv = randomOf({c}, rng);
    for (double& v : rv.data) v = std::abs(v) + 0.1;
    const Tensor stats = test::evalOp("batchnorm_stats", {x});
    for (bool training : {false, true}) {
      // batchnorm_fused without stats is batchnorm then act, in either mode.
      Tensor want = test::evalOp("batchnorm", {x, g, b, rm, rv}, {}, training);
      test::requireClose(test::evalOp("batchnorm_fused", {x, g, b, rm, rv}, {}, training), xs, want.data, 1e-10, 1e-10);
      if (training)
        test::requireClose(test::evalOp("batchnorm_fused", {x, g, b, rm, rv, stats}, {}, true), xs, want.data, 1e-9, 1e-9);
      for (double& v : want.data) v = std::max(v, 0.0);
      const Tensor y = test::evalOp("batchnorm_fused", {x, g, b, rm, rv}, {{"act", std::string("relu")}}, training);
      test::requireClose(y, xs, want.data, 1e-10, 1e-10);
      if (!training) continue;
      for (bool masked : {false, true}) {
        std::vector<Tensor> in{dy, x, stats};
        if (masked) in.push_back(y);
        const Tensor sums = test::evalOp("batchnorm_grad_sums", in);
        std::vector<Tensor> gin{dy, x, stats, g, sums};
        if (masked) gin.push_back(y);
        test::evalOp("batchnorm_grad_input", gin);
      }
    }
  }
}
