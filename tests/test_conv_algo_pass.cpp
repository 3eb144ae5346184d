// The conv-algo pass (compiler/passes/conv_algo.cpp): every fused
// convolution leaves the optimizer with a concrete algorithm, the
// runtime's choice unless --conv-algo forces one where it fits, and that
// algorithm is what the lowered runtime call passes. Which algorithm the
// runtime picks for a shape is its own business (runtime/conv.cpp): these
// tests ask it (convAlgoChoose, convAlgoFits) rather than naming one.
#include <catch2/catch.hpp>

#include <filesystem>
#include <regex>
#include <sstream>

#include "compiler/ops/conv_algo.h"
#include "compiler/passes/pipeline.h"
#include "runtime/activation.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::runCli;
using nnc::test::sourcePath;

namespace {

const std::string kModel = "examples/blocks/depthwise_separable.nn";  // 3×3, depthwise 3×3, 1×1, pooling

Elaborated load() {
  auto m = test::compile(test::readText(sourcePath(kModel)));
  if (!m.model) FAIL(m.diag);
  return std::move(*m.model);
}

struct Call {
  std::string fn;
  FusedConv conv;
  int64_t algo = -1;
};

// The nnc_conv* calls of a loop-IR dump, their geometry read back from the
// integer arguments: N, C, H, W, F, KH, KW, SH, SW, PH, PW, groups, then
// nnc_conv2d's has_bias, act, pool; nnc_conv_transpose2d's has_bias; algo last.
std::vector<Call> convCalls(const std::string& dump) {
  std::vector<Call> calls;
  const std::regex call(R"((nnc_conv2d|nnc_conv_transpose2d_masked|nnc_conv_transpose2d|nnc_conv2d_grad_weight)\(([^)]*)\);)");
  for (auto it = std::sregex_iterator(dump.begin(), dump.end(), call); it != std::sregex_iterator(); ++it) {
    std::vector<int64_t> ints;
    std::stringstream args((*it)[2].str());
    for (std::string a; std::getline(args, a, ',');)
      if (a.find_first_not_of(" 0123456789") == std::string::npos) ints.push_back(std::stoll(a));
    REQUIRE(ints.size() >= 13);
    Call c{(*it)[1].str(), {}, ints.back()};
    c.conv.geom = ConvGeom{.n = ints[0], .c = ints[1], .h = ints[2], .w = ints[3], .f = ints[4], .kh = ints[5],
                           .kw = ints[6], .sh = ints[7], .sw = ints[8], .ph = ints[9], .pw = ints[10], .groups = ints[11]};
    if (c.fn == "nnc_conv2d") {
      REQUIRE(ints.size() == 16);
      c.conv.act = static_cast<int>(ints[13]);
      c.conv.pool = ints[14];
    }
    c.conv.dir = c.fn == "nnc_conv2d" ? ConvDir::Forward
                 : c.fn.rfind("nnc_conv_transpose2d", 0) == 0 ? ConvDir::InputGrad
                                                   : ConvDir::WeightGrad;
    calls.push_back(c);
  }
  return calls;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("golden: conv-algo on a depthwise-separable net's train step and inference, the GEMM forced",
          "[passes][golden]") {
  std::string dumps;
  for (const bool train : {true, false}) {
    std::vector<std::string> args{"graph", sourcePath(kModel), "--dump-after=conv-algo", "--conv-algo=gemm"};
    if (train) args.push_back("--train");
    auto r = runCli(args);
    INFO(r.err);
    REQUIRE(r.code == 0);
    dumps += r.out;
  }
  CHECK(test::matchesGolden(dumps, "depthwise_separable.conv_algo"));
}

TEST_CASE("conv-algo gives each fused convolution the runtime's choice for its geometry", "[passes]") {
  const Elaborated m = load();
  std::vector<ValueId> roots;
  for (const auto& [_, v] : m.graph.outputs) roots.push_back(v);
  roots.push_back(m.graph.loss);
  auto o = optimizeGraph(m.graph, roots, PassOptions{});
  REQUIRE(o);
  const Graph& g = o->graph;
  int convs = 0;
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const std::optional<FusedConv> c = fusedConvOf(g, id);
    if (!c) continue;
    ++convs;
    const Node& n = g.node(id);
    INFO(n.name << " " << n.op->name);
    CHECK(n.attrs.s("algo") == convAlgoName(convAlgoChoose(c->geom, c->dir, c->act, c->pool)));
    CHECK(n.attrs.s("algo") != "auto");
  }
  CHECK(convs == 3);  // inference: conv1 and pointwise pooled, depthwise with its relu
  // The geometry is the forward convolution's in every direction.
  const std::optional<FusedConv> dw = fusedConvOf(g, o->map[static_cast<size_t>(m.graph.findByName("dw"))]);
  REQUIRE(dw);
  CHECK(dw->dir == ConvDir::Forward);
  CHECK(dw->act == kActRelu);
  CHECK(dw->pool == 0);
  const ConvGeom want{.n = 100, .c = 32, .h = 14, .w = 14, .f = 32, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
                      .groups = 32};
  CHECK((dw->geom.n == want.n && dw->geom.c == want.c && dw->geom.h == want.h && dw->geom.w == want.w &&
         dw->geom.f == want.f && dw->geom.kh == want.kh && dw->geom.kw == want.kw && dw->geom.sh == want.sh &&
         dw->geom.ph == want.ph && dw->geom.groups == want.groups));
}

TEST_CASE("a forced --conv-algo reaches the runtime calls where it fits, elsewhere the runtime's choice, said under -v",
          "[passes][cli]") {
  for (int a = 0; a < kConvAlgoCount; ++a) {
    const ConvAlgo forced = ConvAlgo(a);
    INFO("--conv-algo=" << convAlgoName(forced));
    auto r = runCli({"graph", sourcePath(kModel), "--train", "--dump-after=lower", "-v",
                     std::string("--conv-algo=") + convAlgoName(forced)});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const std::vector<Call> calls = convCalls(r.out);
    REQUIRE(calls.size() == 8);  // 3 forward, 3 weight gradients, 2 input gradients (x needs none)
    size_t misfits = 0;
    for (const Call& c : calls) {
      INFO(c.fn);
      const FusedConv& k = c.conv;
      const ConvAlgo chosen = convAlgoChoose(k.geom, k.dir, k.act, k.pool);
      const bool fits = forced != ConvAlgo::Auto && convAlgoFits(forced, k.geom, k.dir, k.act, k.pool);
      CHECK(c.algo == static_cast<int64_t>(fits ? forced : chosen));
      misfits += forced != ConvAlgo::Auto && !fits;
    }
    CHECK(count(r.out, std::string(": ") + convAlgoName(forced) + " does not fit, keeping the runtime's ") == misfits);
  }
  // The GEMM computes every convolution.
  auto gemm = runCli({"graph", sourcePath(kModel), "--train", "--dump-after=lower", "--conv-algo=gemm"});
  for (const Call& c : convCalls(gemm.out)) CHECK(c.algo == static_cast<int64_t>(ConvAlgo::Gemm));
  // Without the pass the calls leave the choice to the runtime (Auto, 0).
  auto off = runCli({"graph", sourcePath(kModel), "--dump-after=lower", "--no-fuse=conv-algo"});
  REQUIRE(off.code == 0);
  const std::vector<Call> calls = convCalls(off.out);
  REQUIRE(calls.size() == 3);
  for (const Call& c : calls) CHECK(c.algo == 0);
}

TEST_CASE("an unknown convolution algorithm is refused in words listing the valid ones", "[passes][cli]") {
  const std::string dir = test::tempDir("conv_algo");
  for (const std::string cmd : {"graph", "bench", "emit-cpp", "emit-llvm", "run"}) {
    std::vector<std::string> args{cmd, sourcePath(kModel), "--conv-algo=fast"};
    if (cmd.rfind("emit", 0) == 0) args.insert(args.end(), {"-o", dir + "/out"});
    auto r = runCli(args);
    INFO(cmd);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("--conv-algo: unknown convolution algorithm \"fast\"; the algorithms are auto, "
                                      "gemm, direct, winograd, depthwise"));
  }
  std::filesystem::remove_all(dir);
  // The attribute itself, as a pass or a test would set it.
  const Elaborated m = load();
  Graph g = m.graph;
  const ValueId x = g.findByName("x"), w = g.findByName("conv1.W");
  REQUIRE(x != kNoValue);
  REQUIRE(w != kNoValue);
  auto bad = g.add("conv2d_fused", {x, w}, Attrs{{"stride", std::vector<int64_t>{1}}, {"algo", std::string("fast")}});
  REQUIRE(!bad);
  CHECK_THAT(bad.error().message,
             Catch::Contains("conv2d_fused: algo: unknown convolution algorithm \"fast\"; the algorithms are auto, gemm, "
                             "direct, winograd, depthwise"));
  auto good = g.add("conv2d_fused", {x, w}, Attrs{{"algo", std::string("winograd")}});
  REQUIRE(good);
  CHECK(g.node(*good).attrs.s("algo") == "winograd");
  CHECK(g.node(*good).attrs.s("act") == "none");
}
