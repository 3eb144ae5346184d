// The `normal` sampling op (a VAE's reparameterization noise) and what every
// random op shares with dropout_mask: attributes and shape, the DSL's
// dispatch between the op and the initializer normal(std), the samples'
// statistics, one random stream drawn alike by the interpreter, the loop-IR
// evaluator, the JIT and emitted C++, no gradient through the noise, no
// merging or folding by the passes, and a small VAE that trains.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>

#include "compiler/autodiff/autodiff.h"
#include "compiler/autodiff/gradcheck.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/passes/pipeline.h"
#include "op_test_util.h"
#include "runtime/random_calls.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::f32;
using nnc::test::inferOp;
using nnc::test::requireError;

namespace {

ValueId add(Graph& g, std::string_view op, std::vector<ValueId> in, Attrs attrs = {}) {
  auto v = g.add(op, std::move(in), std::move(attrs));
  if (!v) FAIL("adding " << op << ": " << v.error().message);
  return *v;
}

ValueId source(Graph& g, const std::string& kind, const std::string& name, Shape shape) {
  auto v = g.addSource(kind, name, f32(std::move(shape)));
  if (!v) FAIL("adding " << name << ": " << v.error().message);
  return *v;
}

ValueId param(Graph& g, const std::string& name, Shape shape, std::vector<double> values) {
  auto p = g.addSource("param", name, f32(std::move(shape)), Attrs{{"init", std::string("value")}, {"args", values}});
  if (!p) FAIL("adding " << name << ": " << p.error().message);
  return *p;
}

// The reference rule's samples: `normal` on an f32 tensor of `shape`,
// drawn from `rng` (training) or in inference.
Tensor reference(Shape shape, double mean, double stddev, Rng* rng) {
  const OpDef* op = findOp("normal");
  REQUIRE(op);
  const Tensor x(f32(std::move(shape)));
  Tensor out(x.type);
  const Attrs attrs{{"mean", mean}, {"std", stddev}};
  const EvalEnv env{rng != nullptr, rng};
  REQUIRE(op->eval(EvalArgs{{&x}, attrs, out, env}));
  return out;
}

struct Moments {
  double mean = 0, stddev = 0;
};

Moments moments(const std::vector<double>& v) {
  Moments m;
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.stddev += (x - m.mean) * (x - m.mean);
  m.stddev = std::sqrt(m.stddev / static_cast<double>(v.size() - 1));
  return m;
}

std::vector<double> widened(const float* p, int64_t n) { return std::vector<double>(p, p + n); }

int countOps(const Graph& g, std::string_view op) {
  return static_cast<int>(std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op->name == op; }));
}

}  // namespace

TEST_CASE("normal: shape, dtype and attributes", "[random]") {
  auto t = inferOp("normal", {f32({2, 3})});
  REQUIRE(t);
  CHECK(*t == f32({2, 3}));
  // Only the operand's shape is used: an i32 operand gives f32 samples.
  auto fromI32 = inferOp("normal", {TensorType{DType::I32, {4}}}, {{"mean", 1.0}, {"std", int64_t{2}}});
  REQUIRE(fromI32);
  CHECK(*fromI32 == f32({4}));
  CHECK(inferOp("normal", {f32({})}));  // a scalar sample

  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  requireError(inferOp("normal", {f32({2})}, {{"std", 0.0}}), {"normal: std must be positive and finite, got 0"});
  requireError(inferOp("normal", {f32({2})}, {{"std", -1.5}}), {"normal: std must be positive and finite", "-1.5"});
  requireError(inferOp("normal", {f32({2})}, {{"std", nan}}), {"normal: std must be positive and finite", "nan"});
  requireError(inferOp("normal", {f32({2})}, {{"std", inf}}), {"normal: std must be positive and finite", "inf"});
  requireError(inferOp("normal", {f32({2})}, {{"mean", nan}}), {"normal: mean must be finite"});
  requireError(inferOp("normal", {}), {"normal takes 1 tensor operand, got 0"});
  requireError(inferOp("normal", {f32({2})}, {{"rate", 0.5}}), {"normal has no attribute 'rate'", "mean, std"});

  // In a .nn file the error points at the call.
  auto c = test::compile("model m {\n input mu: f32[3]\n output e = normal(mu, std = 0)\n}");
  REQUIRE_FALSE(c.model);
  CHECK_THAT(c.diag, Catch::Contains("m.nn:3:") && Catch::Contains("normal: std must be positive and finite, got 0"));
}

TEST_CASE("normal: a tensor argument makes the op, numbers the param initializer", "[random][elaborate]") {
  auto c = test::compile(R"(model m {
    input mu: f32[2, 3]
    input x: f32[4]
    param W: f32[3, 3] = normal(0.01)
    param V: f32[3] = normal(std = 0.5)
    param U: f32[3] = normal()
    a = normal(mu)
    b = normal(mu, std = 0.5)
    d = normal(x, 0, 2)
    e = normal(x = x, mean = -1)
    f = normal([1, 2, 3])
    output y = a + b + sum(d) + sum(e) + sum(f) + sum(W) + sum(V) + sum(U)
  })");
  INFO(c.diag);
  REQUIRE(c.model);
  const Graph& g = c.model->graph;
  auto init = [&](const char* name) {
    const Node& n = g.node(g.findByName(name));
    REQUIRE(n.op->name == "param");
    CHECK(n.attrs.s("init") == "normal");
    return n.attrs.floats("args");
  };
  CHECK(init("W") == std::vector<double>{0.01});
  CHECK(init("V") == std::vector<double>{0.5});
  CHECK(init("U").empty());  // the initializer's default, 0.01
  auto op = [&](const char* name, Shape shape, double mean, double stddev) {
    INFO(name);
    const Node& n = g.node(g.findByName(name));
    REQUIRE(n.op->name == "normal");
    CHECK(n.type == f32(std::move(shape)));
    CHECK(n.attrs.f("mean") == mean);
    CHECK(n.attrs.f("std") == stddev);
  };
  op("a", {2, 3}, 0, 1);
  op("b", {2, 3}, 0, 0.5);
  op("d", {4}, 0, 2);
  op("e", {4}, -1, 1);
  op("f", {3}, 0, 1);
  CHECK(countOps(g, "normal") == 5);

  // A tensor is not an initializer, and the initializer takes no tensor.
  auto p = test::compile("model m {\n input mu: f32[3]\n param W: f32[3] = normal(mu)\n output y = W\n}");
  REQUIRE_FALSE(p.model);
  CHECK_THAT(p.diag, Catch::Contains("m.nn:3:") && Catch::Contains("a param is initialized by an initializer"));
  auto q = test::compile("model m {\n input mu: f32[3]\n output y = normal(0.5, mu)\n}");
  REQUIRE_FALSE(q.model);
  CHECK_THAT(q.diag, Catch::Contains("normal() takes 1 argument"));
}

TEST_CASE("normal: samples have the asked mean and deviation, inference gives the mean", "[random]") {
  const int64_t n = 100000;
  for (auto [mean, stddev] : {std::pair{0.0, 1.0}, std::pair{3.0, 0.5}}) {
    INFO("N(" << mean << ", " << stddev << "^2)");
    Rng rng(17);
    const Tensor s = reference({n}, mean, stddev, &rng);
    const Moments m = moments(s.data);
    CHECK(std::abs(m.mean - mean) <= 0.01);
    CHECK(std::abs(m.stddev - stddev) <= 0.01);
    CHECK(std::adjacent_find(s.data.begin(), s.data.end(), std::not_equal_to<>()) != s.data.end());
    CHECK(std::all_of(s.data.begin(), s.data.end(), [](double v) { return std::isfinite(v); }));
    // The runtime's draw, from the process-wide generator seeded alike, is the
    // same sequence: mean and std are exact in f32 here, so each sample is the
    // reference's rounded once.
    std::vector<float> rt(static_cast<size_t>(n), -777.0f);
    setRandomSeed(17);
    nnc_normal(rt.data(), n, static_cast<float>(mean), static_cast<float>(stddev));
    for (int64_t i = 0; i < n; ++i) {
      INFO("sample " << i);
      REQUIRE(rt[static_cast<size_t>(i)] == static_cast<float>(s.data[static_cast<size_t>(i)]));
    }

    // Inference: every element is the mean, in the reference and lowered
    // (evalOp also runs the kernel through the loop-IR evaluator and the JIT).
    const Tensor x = test::tensor({3, 5}, std::vector<double>(15, 0.0));
    const Tensor inference = test::evalOp("normal", {x}, {{"mean", mean}, {"std", stddev}});
    CHECK(inference.data == std::vector<double>(15, mean));
  }
}

TEST_CASE("normal: odd counts use the first of the last pair, and the stream moves on", "[random]") {
  // Draws of 7, 2 and 1 samples, in the reference and the runtime: each
  // call consumes whole pairs, both alike.
  Rng rng(3);
  std::vector<Tensor> want;
  for (int64_t k : {7, 2, 1}) want.push_back(reference({k}, 0.0, 1.0, &rng));
  setRandomSeed(3);
  for (const Tensor& w : want) {
    std::vector<float> got(w.data.size());
    nnc_normal(got.data(), static_cast<int64_t>(got.size()), 0.0f, 1.0f);
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == static_cast<float>(w.data[i]));
  }
  // The 7 are the first 7 of 8 drawn at once; the 8th is dropped, not the
  // next call's first.
  Rng whole(3);
  const Tensor eight = reference({8}, 0.0, 1.0, &whole);
  CHECK(std::vector<double>(eight.data.begin(), eight.data.begin() + 7) == want[0].data);
  CHECK(want[1].data[0] != eight.data[7]);
  // An empty tensor draws nothing.
  std::vector<float> none;
  nnc_normal(none.data(), 0, 0.0f, 1.0f);
}

TEST_CASE("normal: the lowered kernel calls the runtime in training, fills the mean in inference", "[random]") {
  Graph g;
  const ValueId x = source(g, "input", "x", {5, 3});
  const ValueId e = add(g, "normal", {x}, {{"mean", 0.25}, {"std", 2.0}});
  auto k = lowerNode(g, e, /*training=*/true);
  REQUIRE(k);
  CHECK_THAT(loop::print(*k), Catch::Contains("nnc_normal"));
  std::vector<std::vector<float>> bufs;
  for (const loop::Buffer& b : k->buffers) bufs.emplace_back(static_cast<size_t>(b.size), -777.0f);
  std::vector<float*> ptrs;
  for (auto& b : bufs) ptrs.push_back(b.data());
  setRandomSeed(11);
  loop::evaluate(*k, ptrs);
  Rng rng(11);
  const Tensor want = reference({5, 3}, 0.25, 2.0, &rng);
  REQUIRE(bufs[1].size() == want.data.size());
  for (size_t i = 0; i < want.data.size(); ++i) CHECK(bufs[1][i] == static_cast<float>(want.data[i]));

  auto inference = lowerNode(g, e, false);
  REQUIRE(inference);
  CHECK_THAT(loop::print(*inference), !Catch::Contains("nnc_normal"));
}

TEST_CASE("normal: the JIT and the interpreter, seeded alike, draw the same samples", "[random][jit]") {
  // z = mu + exp(0.5 logvar) * eps and a second, odd-sized draw: the JIT runs
  // the kernels in the interpreter's node order, so both take the stream's
  // samples in the same order.
  Graph g;
  g.name = "reparam";
  const ValueId mu = source(g, "input", "mu", {3, 5});
  const ValueId logvar = source(g, "input", "logvar", {3, 5});
  const ValueId half = add(g, "mul", {logvar, *g.addSource("const", "", f32({}), {{"value", std::vector<double>{0.5}}})});
  const ValueId eps = add(g, "normal", {mu});
  const ValueId z = add(g, "add", {mu, add(g, "mul", {add(g, "exp", {half}), eps})});
  const ValueId w = add(g, "normal", {source(g, "input", "u", {7})}, {{"mean", 1.0}, {"std", 0.1}});
  g.outputs = {{"z", z}, {"w", w}};

  TensorMap feeds;
  Rng fill(5);
  for (const char* name : {"mu", "logvar", "u"}) {
    Tensor t(g.type(g.findByName(name)));
    for (double& v : t.data) v = static_cast<float>(fill.uniform(-1, 1));
    feeds[name] = t;
  }
  auto want = interpret(g, feeds, EvalOptions{false, true, 42});
  REQUIRE(want);

  LowerOptions lo;
  lo.training = true;
  auto cp = jit::CompiledProgram::create(g, {z, w}, lo);
  if (!cp) FAIL(cp.error().message);
  for (const auto& [name, t] : feeds) {
    float* d = (*cp)->data(g.findByName(name));
    REQUIRE(d);
    for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
  }
  auto runSeeded = [&](bool reseed) {
    if (reseed) setRandomSeed(42);
    (*cp)->run();
    return std::pair{widened((*cp)->data(z), 15), widened((*cp)->data(w), 7)};
  };
  const auto [gotZ, gotW] = runSeeded(true);
  // rtol 1e-5: the samples themselves are equal (the same Box-Muller in
  // double, rounded once); z's exp is the JIT's f32 one (vectorized), not the
  // interpreter's double exp rounded, so z may differ in the last bits.
  for (const auto& [got, v] : {std::pair{gotZ, z}, std::pair{gotW, w}}) {
    const Tensor& ref = (*want)[static_cast<size_t>(v)];
    REQUIRE(got.size() == ref.data.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO(g.node(v).name << "[" << i << "]: JIT " << got[i] << ", interpreter " << ref.data[i]);
      CHECK(std::abs(got[i] - ref.data[i]) <= 1e-5 * std::max(1.0, std::abs(ref.data[i])));
    }
  }
  // The generator moves on between steps; reseeding replays the step.
  CHECK(runSeeded(false).second != gotW);
  CHECK(runSeeded(true).second == gotW);

  // Inference: z = mu exactly, w = 1.
  auto infer = jit::CompiledProgram::create(g, {z, w}, LowerOptions{});
  REQUIRE(infer);
  for (const auto& [name, t] : feeds)
    for (size_t i = 0; i < t.data.size(); ++i) (*infer)->data(g.findByName(name))[i] = static_cast<float>(t.data[i]);
  (*infer)->run();
  for (size_t i = 0; i < 15; ++i) CHECK((*infer)->data(z)[i] == static_cast<float>(feeds["mu"].data[i]));
  CHECK(widened((*infer)->data(w), 7) == std::vector<double>(7, 1.0));
}

TEST_CASE("normal passes no gradient, but mu + s * normal(mu) differentiates through mu and s", "[random][grad]") {
  // A param that reaches the loss only through normal's shape operand.
  auto c = test::compile(R"(model m {
    input x: f32[3]
    param W: f32[3] = zeros()
    loss = sum(x * normal(W))
  })");
  INFO(c.diag);
  REQUIRE(c.model);
  auto blocked = differentiate(c.model->graph);
  REQUIRE_FALSE(blocked);
  CHECK_THAT(blocked.error().message, Catch::Contains("only through ops that have no gradient") && Catch::Contains("'W'"));

  // loss = sum((mu + s·eps)·R): d/dmu = R, d/ds = R·eps, eps the sample drawn
  // in the same evaluation.
  Graph g;
  g.name = "reparam";
  std::vector<double> mus, ss, rs;
  for (int i = 0; i < 6; ++i) {
    mus.push_back(0.3 * i - 1);
    ss.push_back(0.5 + 0.1 * i);
    rs.push_back(1.0 - 0.4 * i);
  }
  const ValueId mu = param(g, "mu", {2, 3}, mus), s = param(g, "s", {2, 3}, ss);
  const ValueId eps = add(g, "normal", {mu}, {{"std", 1.5}});
  const ValueId r = *g.addSource("const", "R", f32({2, 3}), {{"value", rs}});
  g.loss = add(g, "sum", {add(g, "mul", {add(g, "add", {mu, add(g, "mul", {s, eps})}), r})});
  auto gg = differentiate(g);
  REQUIRE(gg);
  REQUIRE(gg->grads.size() == 2);
  auto vals = interpret(gg->graph, {}, EvalOptions{true, true, 42});
  REQUIRE(vals);
  const Tensor& e = (*vals)[static_cast<size_t>(eps)];
  CHECK(std::adjacent_find(e.data.begin(), e.data.end(), std::not_equal_to<>()) != e.data.end());
  for (const auto& [name, v] : gg->grads) {
    const Tensor& d = (*vals)[static_cast<size_t>(v)];
    REQUIRE(d.data.size() == 6);
    for (size_t i = 0; i < 6; ++i) {
      INFO(name << "[" << i << "]");
      if (name == "mu") CHECK(d.data[i] == rs[i]);
      else CHECK(d.data[i] == Approx(rs[i] * e.data[i]).epsilon(1e-12));
    }
  }
  // Finite differences agree: each evaluation draws the same noise (the
  // interpreter's generator is seeded per run).
  auto check = gradCheck(g, {});
  REQUIRE(check);
  for (const ParamCheck& p : check->params) {
    INFO(p.name << ": max rel " << p.maxRel);
    CHECK(p.checked == 6);
    CHECK(p.ok);
  }
}

TEST_CASE("random ops are neither merged by cse nor folded", "[random][passes]") {
  Graph g;
  g.name = "noise";
  const ValueId x = source(g, "input", "x", {4});
  const ValueId c = *g.addSource("const", "c", f32({3}), {{"value", std::vector<double>{1, 2, 3}}});
  const ValueId a = add(g, "normal", {x}), b = add(g, "normal", {x});
  const ValueId m1 = add(g, "dropout_mask", {x}), m2 = add(g, "dropout_mask", {x});
  const ValueId folded = add(g, "exp", {c});      // control: a pure op of a constant folds
  const ValueId sampled = add(g, "normal", {c});  // normal of a constant does not
  g.outputs = {{"d", add(g, "sub", {a, b})}, {"m", add(g, "sub", {m1, m2})}, {"k", add(g, "add", {folded, sampled})}};
  std::vector<ValueId> roots;
  for (const auto& [_, v] : g.outputs) roots.push_back(v);
  auto o = optimizeGraph(g, roots, PassOptions{});
  REQUIRE(o);
  CHECK(countOps(o->graph, "normal") == 3);
  CHECK(countOps(o->graph, "dropout_mask") == 2);
  CHECK(countOps(o->graph, "exp") == 0);
  CHECK(o->graph.node(o->map[sampled]).op->name == "normal");
  const Node& d = o->graph.node(o->map[g.outputs[0].second]);
  CHECK(d.inputs[0] != d.inputs[1]);

  // Compiled in training: two draws, two different sample tensors.
  LowerOptions lo;
  lo.training = true;
  auto cp = jit::CompiledProgram::create(g, {a, b, sampled}, lo);
  REQUIRE(cp);
  (*cp)->run();
  CHECK(widened((*cp)->data(a), 4) != widened((*cp)->data(b), 4));
  const std::vector<double> s = widened((*cp)->data(sampled), 3);
  CHECK(std::adjacent_find(s.begin(), s.end(), std::not_equal_to<>()) != s.end());
}

TEST_CASE("a small VAE trains: finite steps and a falling loss", "[random][train]") {
  // Points of a 2-d plane in 4-d, encoded to 2 latents with the
  // reparameterization trick, decoded back; loss = reconstruction + KL.
  auto c = test::compile(R"(model vae(batch = 32) {
    input x: f32[batch, 4]
    h = tanh(dense(x, 16, name = "enc"))
    mu = dense(h, 2, name = "mu")
    logvar = dense(h, 2, name = "logvar")
    z = mu + exp(0.5 * logvar) * normal(mu)
    recon = dense(tanh(dense(z, 16, name = "dec")), 4, name = "out")
    kl = -0.5 * mean(1 + logvar - square(mu) - exp(logvar))
    loss = mse(recon, x) + 0.01 * kl
    output code = mu
    output y = recon
}
train vae { optimizer = adam(lr = 0.01) })");
  INFO(c.diag);
  REQUIRE(c.model);
  const Graph& g = c.model->graph;
  auto step = buildTrainStep(g, c.model->train);
  REQUIRE(step);
  const Graph& sg = step->grads.graph;
  auto cp = jit::CompiledProgram::create(sg, {sg.loss}, step->lowering());
  if (!cp) FAIL(cp.error().message);
  auto state = initParams(sg, 42);  // params and optimizer state
  REQUIRE(state);
  for (const auto& [name, t] : *state)
    if (float* d = (*cp)->data(sg.findByName(name)))
      for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);

  Rng data(8);
  auto batch = [&] {
    std::vector<float> x;
    for (int i = 0; i < 32; ++i) {
      const double a = data.uniform(-1, 1), b = data.uniform(-1, 1);
      x.insert(x.end(), {static_cast<float>(a), static_cast<float>(b), static_cast<float>(0.5 * (a + b)),
                         static_cast<float>(0.5 * (a - b))});
    }
    return x;
  };
  setRandomSeed(1);
  std::vector<double> losses;
  for (int s = 0; s < 60; ++s) {
    const std::vector<float> x = batch();
    std::copy(x.begin(), x.end(), (*cp)->data(sg.findByName("x")));
    (*cp)->data(step->lr)[0] = static_cast<float>(step->lrAt(s));
    (*cp)->run();
    losses.push_back((*cp)->data(sg.loss)[0]);
    INFO("step " << s);
    REQUIRE(std::isfinite(losses.back()));
  }
  const double first = std::accumulate(losses.begin(), losses.begin() + 5, 0.0) / 5;
  const double last = std::accumulate(losses.end() - 5, losses.end(), 0.0) / 5;
  INFO("mean loss of the first 5 steps " << first << ", of the last 5 " << last);
  CHECK(last < 0.5 * first);

  // Inference with the trained params encodes deterministically: code = mu.
  std::vector<ValueId> outs;
  for (const auto& [_, v] : g.outputs) outs.push_back(v);
  auto infer = jit::CompiledProgram::create(g, outs, LowerOptions{});
  REQUIRE(infer);
  for (ValueId p : g.params) {
    const ValueId sp = sg.findByName(g.node(p).name);
    std::copy_n((*cp)->data(sp), (*cp)->size(sp), (*infer)->data(p));
  }
  const std::vector<float> x = batch();
  std::copy(x.begin(), x.end(), (*infer)->data(g.findByName("x")));
  (*infer)->run();
  const ValueId y = g.outputs.back().second;
  const std::vector<double> once = widened((*infer)->data(y), 128);
  (*infer)->run();
  CHECK(widened((*infer)->data(y), 128) == once);
}

TEST_CASE("nnc help ops lists normal", "[random][cli]") {
  auto help = test::runCli({"help", "ops"});
  REQUIRE(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("  normal(x, mean=") && Catch::Contains("samples of N(mean, std^2)"));
}

namespace {

constexpr const char* kEmitModel = R"(model vae(batch = 4) {
    input x: f32[batch, 3]
    mu = dense(x, 2, name = "mu")
    z = mu + 0.5 * normal(mu)
    y = dense(z, 3, name = "dec")
    loss = mse(y, x)
    output code = mu
}
)";

// Prints each param ("param NAME v..."), then per train step its loss
// ("loss v") and the params after it.
constexpr const char* kEmitDriver = R"(#include <cstdio>

#include "vae.hpp"

static void params(nnc_model::vae& m) {
  for (int i = 0; i < m.num_params; ++i) {
    std::printf("param %s", m.param_name(i));
    for (int64_t j = 0; j < m.param_size(i); ++j) std::printf(" %.9g", static_cast<double>(m.param(i)[j]));
    std::printf("\n");
  }
}

int main() {
  nnc_model::vae m;
  float x[12];
  for (int i = 0; i < 12; ++i) x[i] = 0.1f * static_cast<float>(i) - 0.5f;
  params(m);
  for (int s = 0; s < 3; ++s) {
    std::printf("loss %.9g\n", static_cast<double>(m.train_step(x, 0.1f)));
    params(m);
  }
}
)";

}  // namespace

TEST_CASE("emit-cpp: a model with normal builds standalone and trains as the JIT does", "[random][emit]") {
  const std::string dir = test::tempDir("emit_normal");
  std::ofstream(dir + "/vae.nn") << kEmitModel;
  std::ofstream(dir + "/driver.cpp") << kEmitDriver;
  auto r = test::runCli({"emit-cpp", dir + "/vae.nn", "-o", dir + "/out", "--train"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(test::readText(dir + "/out/nnc_runtime.h"), Catch::Contains("void nnc_normal(float* out, int64_t n"));
  CHECK_THAT(test::readText(dir + "/out/vae.cpp"), Catch::Contains("nnc_normal("));
  const std::string hpp = test::readText(dir + "/out/vae.hpp");
  CHECK_THAT(hpp, Catch::Contains("// Normal samples come from one process-wide generator"));
  CHECK_THAT(hpp, Catch::Contains("// Inference (dropout off, normal samples at their mean"));

  // The runtime, the model and the driver at -O2 (about 5 s), run once.
  const std::string cc = "g++ -std=c++17 -O2 -Wall -Wextra -Werror -Iout -c ";
  const std::string cmd = "cd " + dir + " && (" + cc + "out/nnc_runtime.cpp -o rt.o & " + cc + "out/vae.cpp -o vae.o & " +
                          cc + "driver.cpp -o driver.o & wait) > build.log 2>&1 && g++ rt.o vae.o driver.o -o driver " +
                          ">> build.log 2>&1 && ./driver > run.txt";
  const int code = std::system(cmd.c_str());
  INFO(test::readText(dir + "/build.log"));
  REQUIRE(code == 0);
  std::istringstream text(test::readText(dir + "/run.txt"));

  // The JIT's train step from the emitted params, its generator seeded with
  // 0 as a new process's is: the same samples, so the same losses and updates.
  auto c = test::compile(kEmitModel);
  REQUIRE(c.model);
  auto step = buildTrainStep(c.model->graph, c.model->train);
  REQUIRE(step);
  const Graph& sg = step->grads.graph;
  auto cp = jit::CompiledProgram::create(sg, {sg.loss}, step->lowering());
  if (!cp) FAIL(cp.error().message);
  float* x = (*cp)->data(sg.findByName("x"));
  for (int i = 0; i < 12; ++i) x[i] = 0.1f * static_cast<float>(i) - 0.5f;
  (*cp)->data(step->lr)[0] = 0.1f;
  setRandomSeed(0);
  auto close = [](double got, double want) { return std::abs(got - want) <= 1e-5 + 1e-4 * std::abs(want); };
  for (int s = 0; s <= 3; ++s) {
    if (s > 0) {
      (*cp)->run();
      std::string word;
      double loss = 0;
      REQUIRE((text >> word >> loss));
      REQUIRE(word == "loss");
      INFO("step " << s << ": emitted C++ " << loss << ", JIT " << (*cp)->data(sg.loss)[0]);
      CHECK(close(loss, (*cp)->data(sg.loss)[0]));
    }
    for (size_t k = 0; k < c.model->graph.params.size(); ++k) {
      std::string word, name;
      REQUIRE((text >> word >> name));
      REQUIRE(word == "param");
      const ValueId sp = sg.findByName(name);
      REQUIRE(sp != kNoValue);
      float* slot = (*cp)->data(sp);
      for (int64_t j = 0; j < (*cp)->size(sp); ++j) {
        double v = 0;
        REQUIRE((text >> v));
        if (s == 0) {
          slot[j] = static_cast<float>(v);  // the emitted initial values
        } else {
          INFO("step " << s << ", " << name << "[" << j << "]: emitted C++ " << v << ", JIT " << slot[j]);
          CHECK(close(v, slot[j]));
        }
      }
    }
  }
  std::filesystem::remove_all(dir);
}
