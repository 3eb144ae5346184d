// fuse-relu-grad (compiler/passes/fuse_relu_grad.cpp) and the runtime's
// convTranspose2dMasked (runtime/conv.h): a relu's gradient, step(y), taken
// inside the input gradient of the convolution that read y. The runtime
// against its own input gradient times step(y) (bit for bit: the same
// kernel, the same products) on every algorithm and instruction set, batches
// of one and of several chunks, inf and NaN where y <= 0; the pass's reach
// (train steps only, --no-fuse), a golden dump, and the JIT's train step
// against the interpreter on 1 and 2 threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "compiler/autodiff/gradcheck.h"
#include "compiler/autodiff/train_step.h"
#include "conv_test_util.h"
#include "pass_test_util.h"
#include "runtime/conv.h"
#include "runtime/parallel.h"
#include "test_util.h"

using namespace nnc;

namespace {

using pass_test::count;
using pass_test::opsOf;

// conv → relu → conv → l2, trained by SGD: the second convolution's input
// gradient goes through the first one's relu.
std::string chainText(int64_t c, int64_t h, int64_t w, int64_t kernel, int64_t stride) {
  return fmt::format(R"(model m {{
      input x: f32[3, 2, {}, {}]
      a = relu(conv2d(x, filters = {}, kernel = 3, pad = 1, name = "c1"))
      b = conv2d(a, filters = {}, kernel = {}, stride = {}, pad = {}, name = "c2")
      loss = l2(b)
      output b
    }}
    train m {{ optimizer = sgd(lr = 0.05) }})",
                     h, w, c, c, kernel, stride, kernel / 2);
}

PassOptions with(const char* algo, const char* off = nullptr) {
  PassOptions o;
  o.convAlgo = algo;
  if (off) o.disabled.insert(off);
  return o;
}

struct Step {
  TrainStep step;
  TensorMap feeds;
};

Step stepOf(const Elaborated& m) {
  auto step = buildTrainStep(m.graph, m.train);
  if (!step) FAIL(step.error().message);
  const Graph& g = step->grads.graph;
  TensorMap feeds = randomFeeds(g, 5);
  auto params = initParams(g, 42);
  REQUIRE(params);
  for (auto& [k, v] : *params) feeds[k] = v;
  feeds[g.node(step->lr).name] = Tensor(g.type(step->lr), {0.05});
  return {step.take(), feeds};
}

// The loss, then each param's next value.
std::vector<ValueId> targetsOf(const Step& s) {
  std::vector<ValueId> t = {s.step.grads.graph.loss};
  for (auto [_, next] : s.step.updates) t.push_back(next);
  return t;
}

std::unique_ptr<jit::CompiledProgram> stepJit(const Step& s, const PassOptions& passes) {
  const Graph& g = s.step.grads.graph;
  jit::CompileOptions co;
  co.passes = passes;
  auto cp = jit::CompiledProgram::create(g, {g.loss}, s.step.lowering(), co);
  if (!cp) FAIL(cp.error().message);
  return cp.take();
}

std::vector<float> runStep(jit::CompiledProgram& p, const Step& s, int threads) {
  const Graph& g = s.step.grads.graph;
  setThreadCount(threads);
  for (const auto& [name, t] : s.feeds)
    if (float* d = p.data(g.findByName(name)))
      for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
  p.run();
  std::vector<float> r(p.data(g.loss), p.data(g.loss) + 1);
  for (auto [param, _] : s.step.updates) r.insert(r.end(), p.data(param), p.data(param) + p.size(param));
  setThreadCount(0);
  return r;
}

}  // namespace

TEST_CASE("convTranspose2dMasked is the algorithm's input gradient times step(y), bit for bit, on every algorithm and ISA",
          "[conv_runtime][relu_grad]") {
  using conv_test::randoms;
  conv_test::Restore restore;
  // C past a vector and not a multiple of 16, odd maps (Winograd's edge
  // tiles), stride 2, groups, and batches of one and of several chunks.
  const ConvGeom geoms[] = {
      {1, 20, 9, 7, 3, 3, 3, 1, 1, 1, 1, 1},   {12, 33, 36, 36, 33, 3, 3, 1, 1, 1, 1, 1},
      {3, 32, 11, 13, 32, 3, 3, 1, 1, 1, 1, 1}, {5, 17, 8, 8, 16, 1, 1, 1, 1, 0, 0, 1},
      {2, 16, 10, 9, 8, 3, 3, 2, 2, 1, 1, 1},   {2, 8, 10, 10, 8, 3, 3, 2, 2, 1, 1, 8},
  };
  for (const std::string& isa : conv_test::isas()) {
    REQUIRE(setSgemmIsa(isa.c_str()));
    for (const ConvGeom& g : geoms)
      for (int a = 1; a < kConvAlgoCount; ++a) {
        const ConvAlgo algo = ConvAlgo(a);
        if (!convAlgoFits(algo, g, ConvDir::InputGrad, kActNone, 0)) continue;
        INFO(isa << " " << conv_test::describe(g) << " " << convAlgoName(algo));
        const size_t nx = size_t(g.n * g.c * g.h * g.w);
        std::vector<float> dy = randoms(size_t(g.n * g.f * g.oh() * g.ow()), 1),
                           w = randoms(size_t(g.f * g.c / g.groups * g.kh * g.kw), 2), y = randoms(nx, 3);
        for (size_t i = 0; i < nx; i += 7) y[i] = 0.0f;  // step(0) = 0
        std::vector<float> want(nx), got(nx, -7.0f);
        convTranspose2d(g, dy.data(), w.data(), nullptr, want.data(), algo);
        size_t masked = 0;
        for (size_t i = 0; i < nx; ++i) {
          masked += !(y[i] > 0);
          want[i] *= y[i] > 0 ? 1.0f : 0.0f;
        }
        CHECK(masked > nx / 4);
        for (int threads : {1, 2}) {
          setThreadCount(threads);
          convTranspose2dMasked(g, dy.data(), w.data(), y.data(), got.data(), algo);
          REQUIRE(got == want);
        }
        setThreadCount(0);
      }
  }
}

TEST_CASE("convTranspose2dMasked: a non-finite gradient where y <= 0 is NaN, as the product it replaces",
          "[conv_runtime][relu_grad]") {
  // 1×1, one filter, weight 1: the input gradient is dy itself.
  const ConvGeom g{1, 1, 1, 4, 1, 1, 1, 1, 1, 0, 0, 1};
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> dy = {inf, inf, 2.0f, -3.0f}, w = {1.0f}, y = {1.0f, -1.0f, 0.0f, 5.0f};
  std::vector<float> dx(4);
  convTranspose2dMasked(g, dy.data(), w.data(), y.data(), dx.data(), ConvAlgo::Gemm);
  CHECK(dx[0] == inf);
  CHECK(std::isnan(dx[1]));
  CHECK(dx[2] == 0.0f);
  CHECK(dx[3] == -3.0f);
}

TEST_CASE("fuse-relu-grad: the relu's gradient goes into the next convolution's input gradient in train steps",
          "[passes][relu_grad]") {
  SourceManager sm;
  Elaborated m = pass_test::compile(sm, chainText(4, 6, 5, 3, 1), "chain.nn");
  Step s = stepOf(m);
  const std::string ops = opsOf(stepJit(s, {})->optimizedGraph());
  INFO(ops);
  CHECK(count(ops, "conv_transpose2d_mask_fused") == 1);
  CHECK(count(ops, "conv_transpose2d_fused") == 0);
  CHECK(count(ops, "step") == 0);
  CHECK(count(ops, "mul") == 4);  // SGD's lr · gradient, one per param
  for (const char* off : {"fuse-relu-grad", "epilogue"}) {
    const std::string kept = opsOf(stepJit(s, with("auto", off))->optimizedGraph());
    INFO(kept);
    CHECK(count(kept, "conv_transpose2d_mask_fused") == 0);
    CHECK(count(kept, "conv_transpose2d_fused") == 1);
    CHECK(count(kept, "mul") == 5);
  }
  // Inference has no gradient to fuse.
  const std::string infer = opsOf(pass_test::inferJit(m.graph, pass_test::outputsOf(m.graph, false))->optimizedGraph());
  CHECK(count(infer, "conv_transpose2d_mask_fused") == 0);
}

TEST_CASE("golden: fuse-relu-grad on a convolution, relu, convolution train step", "[passes][golden][relu_grad]") {
  SourceManager sm;
  Elaborated m = pass_test::compile(sm, chainText(4, 6, 5, 3, 1), "chain.nn");
  Step s = stepOf(m);
  const Graph& g = s.step.grads.graph;
  PassOptions opt;
  opt.convAlgo = "gemm";
  auto o = optimizeGraph(g, rootsOf({g.loss}, s.step.lowering()), opt);
  REQUIRE(o);
  CHECK(test::matchesGolden(printGraph(o->graph), "conv_chain.fuse_relu_grad"));
}

TEST_CASE("fuse-relu-grad: the JIT's train step matches the interpreter's on each algorithm, 1 and 2 threads",
          "[passes][relu_grad][jit]") {
  struct Case {
    int64_t c, h, w, kernel, stride;
    const char* algo;
  };
  // 32 channels 3×3: Winograd; stride 2: the direct kernel's phases; 1×1 and the GEMM.
  const Case cases[] = {{32, 9, 7, 3, 1, "winograd"}, {32, 9, 7, 3, 1, "direct"}, {16, 9, 8, 3, 2, "direct"},
                        {5, 6, 7, 1, 1, "auto"},      {4, 5, 6, 3, 1, "gemm"}};
  for (const Case& k : cases) {
    INFO(k.c << " channels, " << k.kernel << "×" << k.kernel << " stride " << k.stride << ", " << k.algo);
    SourceManager sm;
    Elaborated m = pass_test::compile(sm, chainText(k.c, k.h, k.w, k.kernel, k.stride), "chain.nn");
    Step s = stepOf(m);
    const std::vector<ValueId> targets = targetsOf(s);
    const std::vector<double> ref = pass_test::reference(s.step.grads.graph, s.feeds, targets);
    auto cp = stepJit(s, with(k.algo));
    REQUIRE(opsOf(cp->optimizedGraph()).find("conv_transpose2d_mask_fused") != std::string::npos);
    const std::vector<float> one = runStep(*cp, s, 1), two = runStep(*cp, s, 2);
    CHECK(one == two);
    pass_test::requireClose(one, ref);
  }
}
