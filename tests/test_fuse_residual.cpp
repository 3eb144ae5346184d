// fuse-residual (compiler/passes/fuse_residual.cpp) and the runtime's
// conv2dResidual (runtime/conv.h): a residual sum, and the relu after it,
// taken inside the convolution of one branch. The runtime against its own
// convolution plus the sum (bit for bit: the same kernel, the same adds) on
// every algorithm and instruction set, batches of one and of several chunks;
// the pass's reach (not the train step, not a broadcast or a convolution
// read elsewhere), a golden dump, --no-fuse, and the JIT's inference against
// the interpreter on 1 and 2 threads.
#include <catch2/catch.hpp>

#include <cmath>

#include "cli/frontend.h"
#include "compiler/autodiff/gradcheck.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "compiler/passes/pipeline.h"
#include "conv_test_util.h"
#include "runtime/conv.h"
#include "runtime/parallel.h"
#include "pass_test_util.h"
#include "test_util.h"

using namespace nnc;

namespace {

using pass_test::count;
using pass_test::opsOf;
using pass_test::requireClose;

std::vector<ValueId> roots(const Graph& g) { return pass_test::outputsOf(g, false); }








// A residual block: the skip d, two convolutions on the other branch, the
// sum (with or without its relu). `bn` batchnorms the branch's last
// convolution, which inference folds into it first.
std::string blockText(int64_t c, int64_t h, int64_t w, int64_t kernel, bool bn, bool relu) {
  const std::string conv = fmt::format("conv2d(r, filters = {}, kernel = {}, pad = {}, name = \"c3\")", c, kernel,
                                       kernel / 2);
  const std::string branch = bn ? "batchnorm(" + conv + ")" : conv;
  return fmt::format(R"(model m {{
      input x: f32[2, 3, {}, {}]
      d = relu(conv2d(x, filters = {}, kernel = 3, pad = 1, name = "c1"))
      r = relu(conv2d(d, filters = {}, kernel = {}, pad = {}, name = "c2"))
      b = {}
      loss = l2(b)
      output b
    }}
    train m {{ optimizer = sgd(lr = 0.05) }})",
                     h, w, c, c, kernel, kernel / 2, relu ? "relu(d + " + branch + ")" : "d + " + branch);
}

TensorMap feedsOf(const Graph& g, uint64_t seed) {
  TensorMap feeds = randomFeeds(g, seed);
  auto params = initParams(g, 42);
  REQUIRE(params);
  for (auto& [name, t] : *params) {
    if (name.find("running_var") != std::string::npos)
      for (double& v : t.data) v = 0.5 + 0.1 * std::abs(v);
    feeds[name] = t;
  }
  return feeds;
}


PassOptions with(const char* algo, const char* off = nullptr) {
  PassOptions o;
  o.convAlgo = algo;
  if (off) o.disabled.insert(off);
  return o;
}

}  // namespace

TEST_CASE("conv2dResidual is the algorithm's convolution plus the sum, bit for bit, on every algorithm and ISA",
          "[conv_runtime][residual]") {
  using conv_test::randoms;
  conv_test::Restore restore;
  // F past a vector and not a multiple of 16, odd maps (Winograd's edge
  // tiles), and batches of one and of several of the runtime's chunks.
  const ConvGeom geoms[] = {
      {1, 3, 9, 7, 20, 3, 3, 1, 1, 1, 1, 1},   {70, 33, 8, 8, 33, 3, 3, 1, 1, 1, 1, 1},
      {3, 32, 11, 13, 32, 3, 3, 1, 1, 1, 1, 1}, {66, 16, 8, 8, 17, 1, 1, 1, 1, 0, 0, 1},
      {2, 8, 10, 10, 8, 3, 3, 2, 2, 1, 1, 8},
  };
  for (const std::string& isa : conv_test::isas()) {
    REQUIRE(setSgemmIsa(isa.c_str()));
    for (const ConvGeom& g : geoms)
      for (int a = 1; a < kConvAlgoCount; ++a)
        for (int act : {int(kActNone), int(kActRelu)}) {
          const ConvAlgo algo = ConvAlgo(a);
          if (!convAlgoFits(algo, g, ConvDir::Forward, act, 0)) continue;
          INFO(isa << " " << conv_test::describe(g) << " " << convAlgoName(algo) << " act " << act);
          const size_t ny = size_t(g.n * g.f * g.oh() * g.ow());
          const std::vector<float> x = randoms(size_t(g.n * g.c * g.h * g.w), 1), w = randoms(size_t(g.f * g.c / g.groups * g.kh * g.kw), 2),
                                   b = randoms(size_t(g.f), 3), z = randoms(ny, 4);
          std::vector<float> want(ny), got(ny, -7.0f);
          conv2d(g, x.data(), w.data(), b.data(), want.data(), kActNone, 0, algo);
          for (size_t i = 0; i < ny; ++i) {
            want[i] += z[i];
            if (act == kActRelu) want[i] = reluOf(want[i]);
          }
          for (int threads : {1, 2}) {
            setThreadCount(threads);
            conv2dResidual(g, x.data(), w.data(), b.data(), z.data(), got.data(), act, algo);
            REQUIRE(got == want);
          }
          setThreadCount(0);
        }
  }
}

TEST_CASE("fuse-residual: the sum and its relu go into the branch's convolution in inference only",
          "[passes][residual]") {
  for (bool bn : {false, true})
    for (bool relu : {false, true}) {
      INFO("batchnorm " << bn << ", relu " << relu);
      SourceManager sm;
      Elaborated m = pass_test::compile(sm, blockText(4, 6, 5, 3, bn, relu), "residual.nn");
      const std::string ops = opsOf(pass_test::inferJit(m.graph, roots(m.graph))->optimizedGraph());
      INFO(ops);
      CHECK(count(ops, relu ? "conv2d_residual_fused.relu" : "conv2d_residual_fused.none") == 1);
      CHECK(count(ops, "add") == (bn ? 2u : 0u));  // the folded bias's own adds, on [F]
      CHECK(count(ops, "relu") == 0);
      // Switched off by name or group: the sum is a kernel again.
      for (const char* off : {"fuse-residual", "epilogue"}) {
        const std::string kept = opsOf(pass_test::inferJit(m.graph, roots(m.graph), with("auto", off))->optimizedGraph());
        CHECK(count(kept, "conv2d_residual_fused.relu") + count(kept, "conv2d_residual_fused.none") == 0);
      }
      // In the train step the relu's gradient reads the sum, so the relu
      // stays a kernel of its own; batchnorm there uses the batch's
      // statistics, so a batchnormed branch does not end in a convolution.
      auto step = buildTrainStep(m.graph, m.train);
      REQUIRE(step);
      const Graph& tg = step->grads.graph;
      auto cp = jit::CompiledProgram::create(tg, {tg.loss}, step->lowering(), jit::CompileOptions{});
      REQUIRE(cp);
      const std::string train = opsOf((*cp)->optimizedGraph());
      INFO(train);
      CHECK(count(train, "conv2d_residual_fused.none") == (bn ? 0u : 1u));
      CHECK(count(train, "conv2d_residual_fused.relu") == 0);
    }
}

TEST_CASE("fuse-residual: not for a broadcast sum or a convolution read elsewhere", "[passes][residual]") {
  SourceManager sm;
  Elaborated m = pass_test::compile(sm, R"(model m {
      param s: f32[4, 1, 1] = zeros()
      input x: f32[2, 3, 6, 6]
      a = conv2d(x, filters = 4, kernel = 3, pad = 1)
      e = relu(a + s)
      c = conv2d(e, filters = 4, kernel = 3, pad = 1)
      f = relu(c + e)
      loss = l2(f) + l2(c)
      output f
      output c
    })", "residual.nn");
  const std::string ops = opsOf(pass_test::inferJit(m.graph, roots(m.graph))->optimizedGraph());
  INFO(ops);
  CHECK(ops.find("conv2d_residual_fused") == std::string::npos);
}

TEST_CASE("golden: fuse-residual on a batchnormed residual block", "[passes][golden][residual]") {
  SourceManager sm;
  Elaborated m = pass_test::compile(sm, blockText(4, 6, 5, 3, true, true), "residual.nn");
  PassOptions opt;
  opt.convAlgo = "gemm";
  opt.inference = true;
  auto o = optimizeGraph(m.graph, roots(m.graph), opt);
  REQUIRE(o);
  CHECK(test::matchesGolden(printGraph(o->graph), "residual_block.fuse_residual"));
}

TEST_CASE("fuse-residual: the JIT's inference matches the interpreter's on each algorithm, 1 and 2 threads",
          "[passes][residual][jit]") {
  struct Case {
    int64_t c, h, w, kernel;
    const char* algo;
  };
  // 32 channels 3×3: Winograd's own sum; 1×1 and the GEMM: chunks.
  const Case cases[] = {{32, 9, 7, 3, "winograd"}, {32, 9, 7, 3, "direct"}, {5, 6, 7, 1, "auto"}, {4, 5, 6, 3, "gemm"}};
  for (const Case& k : cases)
    for (bool bn : {false, true}) {
      INFO(k.c << " channels, " << k.kernel << "×" << k.kernel << ", " << k.algo << ", batchnorm " << bn);
      SourceManager sm;
      Elaborated m = pass_test::compile(sm, blockText(k.c, k.h, k.w, k.kernel, bn, true), "residual.nn");
      const Graph& g = m.graph;
      const TensorMap feeds = feedsOf(g, 17);
      const std::vector<double> ref = pass_test::reference(g, feeds, roots(g));
      auto cp = pass_test::inferJit(g, roots(g), with(k.algo));
      REQUIRE(opsOf(cp->optimizedGraph()).find("conv2d_residual_fused.relu") != std::string::npos);
      const std::vector<float> one = pass_test::run(*cp, g, roots(g), feeds, 1), two = pass_test::run(*cp, g, roots(g), feeds, 2);
      CHECK(one == two);
      requireClose(one, ref);
      size_t positive = 0;
      for (double v : ref) positive += v > 0;
      CHECK(positive > ref.size() / 8);
    }
}
