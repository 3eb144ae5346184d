// A convolution's bias gradient in its weight gradient's kernel (issue 19):
// fuse-conv turns sum(dy, axis = [0, 2, 3]) beside conv2d_grad_weight(x, dy)
// into conv2d_grad_bias_fused(dy, dw), and lowering has the runtime sum db
// beside dw in one nnc_conv2d_grad_weight call.
//
// Tolerance of db against the interpreter: the runtime sums each filter's
// N·OH·OW terms in f32 in its own order (one chain, or 16 lanes then the
// lanes), where the interpreter sums in double; the rounding error of such a
// sum is at most (terms + 2)·2^-23·Σ|dy|, added to the usual rtol 1e-4,
// atol 1e-5 (conv_test_util.h's bound for the convolutions' sums).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>

#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "runtime/parallel.h"
#include "runtime/rng.h"
#include "test_util.h"

using namespace nnc;

namespace {

// A strided convolution (its bias gradient fused) and a transposed one,
// whose bias sum reads its own dy, not its weight gradient's: left alone.
constexpr const char* kBiasNet = R"(model biasnet(batch = 2) {
    input x: f32[batch, 2, 7, 7]
    label t: i32[batch]
    c = relu(conv2d(x, filters = 3, kernel = 3, stride = 2, pad = 1, name = "c1"))
    u = conv_transpose2d(c, filters = 2, kernel = 2, stride = 2, name = "u1")
    logits = dense(flatten(u), 10, name = "fc")
    loss = softmax_cross_entropy(logits, t)
}
train biasnet { optimizer = sgd(lr = 0.1) }
)";

std::string biasNetFile() {
  const std::string path = test::tempDir("conv_bias_grad") + "/biasnet.nn";
  std::ofstream(path) << kBiasNet;
  return path;
}

struct ConvCase {
  Shape x;
  int64_t f, k, stride, pad, groups;
};

// dw = conv2d_grad_weight(x, dy) and db = sum(dy, axis = [0, 2, 3]), as
// autodiff writes a convolution's gradients.
struct GradGraph {
  Graph g;
  ValueId x = kNoValue, dy = kNoValue, dw = kNoValue, db = kNoValue;
};

GradGraph gradGraph(const ConvCase& c) {
  GradGraph r;
  const int64_t oh = (c.x[2] + 2 * c.pad - c.k) / c.stride + 1, ow = (c.x[3] + 2 * c.pad - c.k) / c.stride + 1;
  r.x = *r.g.addSource("input", "x", TensorType{DType::F32, c.x});
  r.dy = *r.g.addSource("input", "dy", TensorType{DType::F32, {c.x[0], c.f, oh, ow}});
  Attrs a{{"kernel", std::vector<int64_t>{c.k, c.k}},
          {"stride", std::vector<int64_t>{c.stride, c.stride}},
          {"pad", std::vector<int64_t>{c.pad, c.pad}},
          {"groups", c.groups}};
  auto dw = r.g.add("conv2d_grad_weight", {r.x, r.dy}, a);
  REQUIRE(dw);
  auto db = r.g.add("sum", {r.dy}, {{"axis", std::vector<int64_t>{0, 2, 3}}});
  REQUIRE(db);
  r.dw = *dw;
  r.db = *db;
  return r;
}

std::unique_ptr<jit::CompiledProgram> compiled(const Graph& g, const std::vector<ValueId>& targets,
                                               const std::string& algo) {
  jit::CompileOptions o;
  o.passes.convAlgo = algo;
  auto cp = jit::CompiledProgram::create(g, targets, LowerOptions{}, o);
  if (!cp) FAIL(cp.error().message);
  return cp.take();
}

void feed(jit::CompiledProgram& cp, const GradGraph& r, const TensorMap& feeds) {
  for (ValueId v : {r.x, r.dy}) {
    const Tensor& t = feeds.at(r.g.node(v).name);
    for (size_t i = 0; i < t.data.size(); ++i) cp.data(v)[i] = static_cast<float>(t.data[i]);
  }
}

}  // namespace

TEST_CASE("fuse-conv: the bias gradient joins the weight gradient (golden)", "[passes][golden][conv]") {
  const std::string file = biasNetFile();
  const auto graph = test::runCli({"graph", file, "--train", "--dump-after=fuse-conv"});
  INFO(graph.err);
  REQUIRE(graph.code == 0);
  CHECK(test::matchesGolden(graph.out, "biasnet.fuse_conv"));
  // Lowered, the pair is one kernel: the call writes dw and db (has_db = 1).
  const auto lower = test::runCli({"graph", file, "--train", "--conv-algo=gemm", "--dump-after=lower"});
  REQUIRE(lower.code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(lower.out, m, std::regex(R"(nnc_conv2d_grad_weight\(x, \w+, grad_c1_W, grad_c1_b, ([0-9, ]+)\);)")));
  CHECK(m[1].str() == "2, 2, 7, 7, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1");
  CHECK(lower.out.find("conv2d_grad_bias_fused(") != std::string::npos);  // in the pair's comment
  CHECK_FALSE(std::regex_search(lower.out, std::regex(R"(kernel k[0-9]+_conv2d_grad_bias_fused)")));
  // --no-fuse=conv keeps autodiff's sum.
  const auto unfused = test::runCli({"graph", file, "--train", "--optimized", "--no-fuse=conv"});
  REQUIRE(unfused.code == 0);
  CHECK(unfused.out.find("conv2d_grad_bias_fused") == std::string::npos);
  CHECK(unfused.out.find("grad_c1.b = sum(") != std::string::npos);
}

TEST_CASE("the bias gradient beside the weight gradient matches the interpreter on 1 and 2 threads", "[conv][jit]") {
  const std::vector<ConvCase> cases = {
      {{1, 3, 9, 11}, 5, 3, 1, 1, 1},     // batch 1, 3×3 pad 1 (Winograd where forced)
      {{3, 4, 13, 7}, 6, 3, 2, 1, 1},     // stride 2
      {{2, 5, 10, 9}, 7, 3, 3, 0, 1},     // stride 3, no padding
      {{5, 17, 7, 9}, 19, 1, 1, 0, 1},    // 1×1, channels off any vector width
      {{2, 8, 10, 10}, 8, 3, 1, 1, 8},    // depthwise
      {{2, 6, 12, 12}, 6, 3, 1, 1, 2},    // grouped
      {{4, 1, 28, 28}, 30, 5, 1, 0, 1},   // simple_convnet's layer (direct)
      {{16, 32, 28, 28}, 32, 3, 1, 1, 1}, // vgg's second layer: threads split the work
  };
  uint64_t seed = 5;
  for (const ConvCase& c : cases)
    for (const char* algo : {"gemm", "direct", "winograd", "depthwise"}) {
      INFO("x " << c.x[0] << "x" << c.x[1] << "x" << c.x[2] << "x" << c.x[3] << " F " << c.f << " k " << c.k
                << " stride " << c.stride << " pad " << c.pad << " groups " << c.groups << " --conv-algo=" << algo);
      const GradGraph r = gradGraph(c);
      Rng rng(seed++);
      TensorMap feeds;
      for (ValueId v : {r.x, r.dy}) {
        Tensor t(r.g.type(v));
        for (double& e : t.data) e = rng.normal();
        feeds[r.g.node(v).name] = std::move(t);
      }
      auto want = interpret(r.g, feeds, EvalOptions{}, {r.db});
      REQUIRE(want);
      auto both = compiled(r.g, {r.dw, r.db}, algo), alone = compiled(r.g, {r.dw}, algo);
      bool fused = false;
      for (const Node& n : both->optimizedGraph().nodes) fused |= n.op->is(OpId::Conv2dGradBiasFused);
      CHECK(fused);
      CHECK(both->program().launches.size() == 1);  // one kernel computes both
      const Tensor& dy = feeds.at("dy");
      const int64_t terms = dy.numel() / c.f;
      std::vector<float> db1, dw1;
      for (int threads : {1, 2}) {
        setThreadCount(threads);
        feed(*both, r, feeds);
        feed(*alone, r, feeds);
        float* db = both->data(r.db);
        std::fill(db, db + c.f, std::nanf(""));
        both->run();
        alone->run();
        INFO("threads " << threads);
        for (int64_t f = 0; f < c.f; ++f) {
          const int64_t plane = terms / c.x[0];
          double mag = 0;
          for (int64_t n = 0; n < c.x[0]; ++n)
            for (int64_t p = 0; p < plane; ++p) mag += std::fabs(dy.data[static_cast<size_t>((n * c.f + f) * plane + p)]);
          const double w = (*want)[static_cast<size_t>(r.db)].data[static_cast<size_t>(f)];
          INFO("db[" << f << "]: JIT " << db[f] << ", interpreter " << w);
          CHECK(std::fabs(db[f] - w) <= 1e-4 * std::fabs(w) + 1e-5 + double(terms + 2) * std::ldexp(mag, -23));
        }
        // The weight gradient is the one computed without db, bit for bit.
        const size_t nw = static_cast<size_t>(both->size(r.dw));
        CHECK(std::memcmp(both->data(r.dw), alone->data(r.dw), nw * sizeof(float)) == 0);
        if (threads == 1) {
          db1.assign(db, db + c.f);
          dw1.assign(both->data(r.dw), both->data(r.dw) + nw);
        } else {
          CHECK(std::memcmp(db1.data(), db, db1.size() * sizeof(float)) == 0);
          CHECK(std::memcmp(dw1.data(), both->data(r.dw), nw * sizeof(float)) == 0);
        }
      }
      setThreadCount(0);
    }
}

TEST_CASE("conv2d_grad_bias_fused without its weight gradient's kernel is a sum of its own", "[conv][jit]") {
  // dw a plain input: nothing to pair with, so the op's own lowering runs.
  Graph g;
  const ValueId dy = *g.addSource("input", "dy", TensorType{DType::F32, {3, 7, 5, 6}});
  const ValueId dw = *g.addSource("input", "dw", TensorType{DType::F32, {7, 2, 3, 3}});
  auto db = g.add("conv2d_grad_bias_fused", {dy, dw});
  REQUIRE(db);
  Rng rng(3);
  TensorMap feeds;
  for (ValueId v : {dy, dw}) {
    Tensor t(g.type(v));
    for (double& e : t.data) e = rng.normal();
    feeds[g.node(v).name] = std::move(t);
  }
  auto want = interpret(g, feeds, EvalOptions{}, {*db});
  REQUIRE(want);
  auto cp = jit::CompiledProgram::create(g, {*db}, LowerOptions{});
  if (!cp) FAIL(cp.error().message);
  for (ValueId v : {dy, dw}) {
    const Tensor& t = feeds.at(g.node(v).name);
    for (size_t i = 0; i < t.data.size(); ++i) (*cp)->data(v)[i] = static_cast<float>(t.data[i]);
  }
  (*cp)->run();
  const Tensor& d = feeds.at("dy");
  for (int64_t f = 0; f < 7; ++f) {
    double mag = 0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t p = 0; p < 30; ++p) mag += std::fabs(d.data[static_cast<size_t>((n * 7 + f) * 30 + p)]);
    const double w = (*want)[static_cast<size_t>(*db)].data[static_cast<size_t>(f)];
    CHECK(std::fabs((*cp)->data(*db)[f] - w) <= 1e-4 * std::fabs(w) + 1e-5 + (90 + 2) * std::ldexp(mag, -23));
  }
}
