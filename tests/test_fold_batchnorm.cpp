// fold-batchnorm (compiler/passes/fold_batchnorm.cpp): inference batchnorm
// folded into the convolution before it. Where it fires and where not (the
// train step, a convolution read elsewhere, a max-pool in between), a golden
// dump, --no-fuse, and the JIT's inference against the interpreter on
// convolutions of each kind (3×3, stride 2, grouped, depthwise, 1×1, without
// bias; with and without relu), on random running statistics, γ and β, with
// γ of both signs, 1 and 2 threads alike.
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
#include "runtime/rng.h"
#include "pass_test_util.h"
#include "test_util.h"

using namespace nnc;

namespace {

using pass_test::count;
using pass_test::opsOf;
using pass_test::requireClose;

std::vector<ValueId> roots(const Graph& g) { return pass_test::outputsOf(g, true); }

struct Conv {
  const char* what;
  int64_t c, f, kernel, stride, pad, groups;
  bool bias, relu;
};

const Conv kConvs[] = {
    {"3x3", 3, 4, 3, 1, 1, 1, true, true},         {"3x3 no relu", 3, 4, 3, 1, 1, 1, true, false},
    {"stride 2", 3, 5, 3, 2, 1, 1, true, true},    {"grouped", 4, 6, 3, 1, 1, 2, true, true},
    {"depthwise s2", 4, 4, 3, 2, 1, 4, true, true}, {"1x1", 5, 7, 1, 1, 0, 1, true, true},
    {"no bias", 3, 4, 3, 1, 1, 1, false, true},     {"no bias, no relu", 4, 4, 3, 2, 1, 4, false, false},
};

// x → conv → [relu](batchnorm) → a second conv + batchnorm (so that two
// folds meet) → l2, trainable so that the train step can be checked too.
std::string modelText(const Conv& c) {
  const std::string conv =
      c.bias ? fmt::format("conv2d(x, filters = {}, kernel = {}, stride = {}, pad = {}, groups = {}, name = \"c1\")", c.f,
                           c.kernel, c.stride, c.pad, c.groups)
             : fmt::format("conv2d(x, W, stride = {}, pad = {}, groups = {})", c.stride, c.pad, c.groups);
  const std::string bn = c.relu ? "relu(batchnorm(" + conv + "))" : "batchnorm(" + conv + ")";
  return fmt::format(R"(model m {{
      input x: f32[3, {}, 7, 6]
      {}
      h = {}
      o = relu(batchnorm(conv2d(h, filters = 2, kernel = 1, name = "c2")))
      loss = l2(o)
      output h
      output o
    }}
    train m {{ optimizer = sgd(lr = 0.05) }})",
                     c.c,
                     c.bias ? "" : fmt::format("param W: f32[{}, {}, {}, {}] = he()", c.f, c.c / c.groups, c.kernel, c.kernel),
                     bn);
}




// Every param random: running variances in [0.2, 1.7), γ of both signs
// (a negative scale flips the relu's side), means and biases off 0.
TensorMap feedsOf(const Graph& g, uint64_t seed) {
  TensorMap feeds = randomFeeds(g, seed);
  auto params = initParams(g, 42);
  REQUIRE(params);
  Rng rng(seed + 1);
  for (auto& [name, t] : *params) {
    const bool var = name.find("running_var") != std::string::npos;
    for (double& v : t.data) v = var ? 0.2 + 1.5 * rng.uniform() : (name.find(".W") != std::string::npos ? v : rng.normal());
    feeds[name] = t;
  }
  if (feeds.count("W"))
    for (double& v : feeds["W"].data) v = rng.normal();
  return feeds;
}






PassOptions without(const char* name) {
  PassOptions o;
  o.disabled.insert(name);
  return o;
}

}  // namespace

TEST_CASE("fold-batchnorm: inference batchnorm goes into the convolution, its relu into the epilogue",
          "[passes][batchnorm][fold]") {
  for (const Conv& c : kConvs) {
    INFO(c.what);
    SourceManager sm;
    Elaborated m = pass_test::compile(sm, modelText(c), "fold.nn");
    const std::string ops = opsOf(pass_test::inferJit(m.graph, roots(m.graph))->optimizedGraph());
    INFO(ops);
    CHECK(count(ops, "batchnorm") + count(ops, "batchnorm_fused.relu") + count(ops, "batchnorm_fused.none") == 0);
    CHECK(count(ops, c.relu ? "conv2d_fused.relu" : "conv2d_fused.none") == (c.relu ? 2u : 1u));
    CHECK(count(ops, "relu") == 0);
    // Switched off by its name or its group, the batchnorms stay sweeps.
    for (const char* off : {"fold-batchnorm", "batchnorm"}) {
      INFO(off);
      const std::string kept = opsOf(pass_test::inferJit(m.graph, roots(m.graph), without(off))->optimizedGraph());
      CHECK(count(kept, "batchnorm") + count(kept, "batchnorm_fused.relu") + count(kept, "batchnorm_fused.none") == 2);
    }
    // Each fold trades the batchnorm's sweep for two tiny kernels: the
    // scale with the bias (one multi-output loop over [F]), and W·s.
    const size_t kernels = pass_test::inferJit(m.graph, roots(m.graph))->program().kernels.size();
    CHECK(kernels == pass_test::inferJit(m.graph, roots(m.graph), without("fold-batchnorm"))->program().kernels.size() + 2);
  }
}

TEST_CASE("fold-batchnorm: a max-pool after the relu still goes into the folded convolution, and conv2d folds too",
          "[passes][batchnorm][fold][jit]") {
  SourceManager sm;
  Elaborated m = pass_test::compile(sm, R"(model m {
      input x: f32[2, 3, 8, 8]
      p = maxpool2d(relu(batchnorm(conv2d(x, filters = 4, kernel = 3, pad = 1))), kernel = 2)
      loss = l2(p)
      output p
    })", "fold.nn");
  const Graph& g = m.graph;
  const TensorMap feeds = feedsOf(g, 9);
  const std::vector<double> ref = pass_test::reference(g, feeds, roots(g));
  for (const char* off : {"", "conv"}) {
    INFO("--no-fuse=" << off);
    auto cp = pass_test::inferJit(g, roots(g), without(off));
    const std::string ops = opsOf(cp->optimizedGraph());
    INFO(ops);
    CHECK(ops.find("batchnorm") == std::string::npos);
    CHECK(count(ops, *off ? "conv2d" : "conv2d_pool_fused.relu") == 1);
    requireClose(pass_test::run(*cp, g, roots(g), feeds, 1), ref);
  }
}

TEST_CASE("fold-batchnorm: the train step is untouched", "[passes][batchnorm][fold]") {
  SourceManager sm;
  Elaborated m = pass_test::compile(sm, modelText(kConvs[0]), "fold.nn");
  auto step = buildTrainStep(m.graph, m.train);
  REQUIRE(step);
  const Graph& g = step->grads.graph;
  jit::CompileOptions on, off;
  off.passes = without("fold-batchnorm");
  auto a = jit::CompiledProgram::create(g, {g.loss}, step->lowering(), on);
  auto b = jit::CompiledProgram::create(g, {g.loss}, step->lowering(), off);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(printGraph((*a)->optimizedGraph()) == printGraph((*b)->optimizedGraph()));
  CHECK(count(opsOf((*a)->optimizedGraph()), "batchnorm_stats") == 2);
  // optimizeGraph alone does not know the mode, and folds nothing.
  auto o = optimizeGraph(m.graph, roots(m.graph), PassOptions{});
  REQUIRE(o);
  CHECK(count(opsOf(o->graph), "batchnorm_fused.relu") == 2);
}

TEST_CASE("fold-batchnorm: not where the convolution is read elsewhere or pooled first", "[passes][batchnorm][fold]") {
  SourceManager sm;
  // a is read by l2 too; p is a max-pool of relu(conv), which max-pooling
  // would not commute with a negative γ/σ.
  Elaborated m = pass_test::compile(sm, R"(model m {
      input x: f32[2, 3, 8, 8]
      a = conv2d(x, filters = 4, kernel = 3, pad = 1)
      b = relu(batchnorm(a))
      p = maxpool2d(relu(conv2d(b, filters = 4, kernel = 3, pad = 1)), kernel = 2)
      q = batchnorm(p)
      loss = l2(q) + l2(a)
      output q
    })", "fold.nn");
  const Graph& g = m.graph;
  auto cp = pass_test::inferJit(g, roots(g));
  const std::string ops = opsOf(cp->optimizedGraph());
  INFO(ops);
  CHECK(count(ops, "batchnorm_fused.relu") == 1);
  CHECK(count(ops, "batchnorm_fused.none") == 1);
  CHECK(count(ops, "conv2d_pool_fused.relu") == 1);
  const TensorMap feeds = feedsOf(g, 5);
  requireClose(pass_test::run(*cp, g, roots(g), feeds, 1), pass_test::reference(g, feeds, roots(g)));
}

TEST_CASE("golden: fold-batchnorm on a convolution, batchnorm and relu", "[passes][golden][batchnorm][fold]") {
  SourceManager sm;
  Elaborated m = pass_test::compile(sm, modelText(kConvs[0]), "fold.nn");
  PassOptions opt;
  opt.convAlgo = "gemm";
  opt.inference = true;
  auto o = optimizeGraph(m.graph, roots(m.graph), opt);
  REQUIRE(o);
  CHECK(test::matchesGolden(printGraph(o->graph), "conv_batchnorm.fold"));
}

TEST_CASE("fold-batchnorm: the JIT's inference matches the interpreter's on random running statistics, 1 and 2 threads",
          "[passes][batchnorm][fold][jit]") {
  for (const Conv& c : kConvs) {
    const std::string text = modelText(c);
    INFO(c.what << "\n" << text);
    SourceManager sm;
    Elaborated m = pass_test::compile(sm, text, "fold.nn");
    const Graph& g = m.graph;
    const TensorMap feeds = feedsOf(g, 11);
    const std::vector<double> ref = pass_test::reference(g, feeds, roots(g));
    auto folded = pass_test::inferJit(g, roots(g));
    REQUIRE(opsOf(folded->optimizedGraph()).find("batchnorm") == std::string::npos);
    const std::vector<float> one = pass_test::run(*folded, g, roots(g), feeds, 1), two = pass_test::run(*folded, g, roots(g), feeds, 2);
    CHECK(one == two);
    requireClose(one, ref);
    size_t positive = 0;
    for (double v : ref) positive += v > 0;
    CHECK(positive > ref.size() / 8);  // the relus pass something on: the check is not of zeros
    // New params in the same program (a checkpoint loaded): folded again.
    const TensorMap other = feedsOf(g, 12);
    requireClose(pass_test::run(*folded, g, roots(g), other, 1), pass_test::reference(g, other, roots(g)));
  }
}

TEST_CASE("fold-batchnorm: nnc graph --optimized folds, --no-fuse=fold-batchnorm and --train do not", "[cli][fold]") {
  const std::string model = test::sourcePath("examples/cnn/mobile_resnet.nn");
  auto folded = test::runCli({"graph", model, "--optimized", "-v"});
  REQUIRE(folded.code == 0);
  CHECK(folded.out.find("batchnorm_fused(") == std::string::npos);
  CHECK(folded.out.find("fold-batchnorm: %9 into convolution %4") != std::string::npos);
  CHECK(folded.out.find("pass fold-batchnorm") != std::string::npos);
  auto kept = test::runCli({"graph", model, "--optimized", "--no-fuse=fold-batchnorm"});
  REQUIRE(kept.code == 0);
  CHECK(kept.out.find("batchnorm_fused(") != std::string::npos);
  auto train = test::runCli({"graph", model, "--optimized", "--train", "-v"});
  REQUIRE(train.code == 0);
  CHECK(train.out.find("fold-batchnorm: ") == std::string::npos);
  CHECK(train.out.find("batchnorm_stats(") != std::string::npos);
  auto help = test::runCli({"graph", "--help"});
  CHECK(help.out.find("fold-batchnorm") != std::string::npos);
}
