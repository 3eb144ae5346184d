// Programs (kernels over one arena) through the JIT: parallel outlining,
// runtime calls, commits; each checked against the loop IR's evaluator.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "compiler/jit/jit.h"
#include "compiler/lower/lower.h"
#include "runtime/gemm.h"
#include "runtime/parallel.h"
#include "runtime/rng.h"

using namespace nnc;
using namespace nnc::loop;

namespace {

// y[i, j] = x[i, j] * 2 + b[j] over [rows, cols]: parallel over rows.
Kernel scaleBias(int64_t rows, int64_t cols) {
  Kernel k{"scale_bias", "", {{"x", rows * cols}, {"b", cols}, {"y", rows * cols}}, {}, 0};
  const int i = k.newVar(), j = k.newVar();
  const Affine ij = Affine::var(i, cols) + Affine::var(j);
  k.body.push_back(loopOver(
      i, rows,
      {loopOver(j, cols, {store(2, ij, apply(Op::Add, {apply(Op::Mul, {load(0, ij), constant(2)}), load(1, Affine::var(j))}))})},
      true));
  return k;
}

// A program of one kernel whose buffers are slots 0..n-1 in order.
Program single(Kernel k) {
  Program p;
  Launch l{0, {}};
  for (const Buffer& b : k.buffers) {
    l.slots.push_back(static_cast<int>(p.slots.size()));
    p.slots.push_back({b.name, static_cast<ValueId>(p.slots.size()), b.size, p.arenaFloats});
    p.arenaFloats += (b.size + 15) / 16 * 16;
  }
  p.kernels.push_back(std::move(k));
  p.launches.push_back(l);
  return p;
}

struct Run {
  std::vector<float> arena;
  void (*fn)(float*) = nullptr;
  std::unique_ptr<jit::Engine> engine;
};

Run compile(const Program& p, int level = 3) {
  Run r;
  auto e = jit::Engine::create(level);
  REQUIRE(e);
  r.engine = e.take();
  REQUIRE(r.engine->defineSymbol("nnc_parallel_for", reinterpret_cast<void*>(&nnc_parallel_for)));
  auto m = std::make_unique<jit::Module>("t");
  auto st = jit::addProgram(*m, p, "step");
  INFO((st ? "" : st.error().message));
  REQUIRE(st);
  auto added = r.engine->add(std::move(m));
  INFO((added ? "" : added.error().message));
  REQUIRE(added);
  auto f = r.engine->lookup("step");
  REQUIRE(f);
  r.fn = reinterpret_cast<void (*)(float*)>(*f);
  r.arena.assign(static_cast<size_t>(p.arenaFloats), 0.0f);
  return r;
}

}  // namespace

TEST_CASE("jit program: a parallel loop gives the evaluator's result for 1 and 2 threads", "[jit]") {
  const int64_t rows = 1000, cols = 129;  // 129k stores: above the threading threshold
  Program p = single(scaleBias(rows, cols));
  Run r = compile(p);
  std::vector<float> x(rows * cols), b(cols), want(rows * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 97) * 0.5f - 7;
  for (size_t j = 0; j < b.size(); ++j) b[j] = static_cast<float>(j) * 0.25f;
  evaluate(p.kernels[0], {x.data(), b.data(), want.data()});
  for (int threads : {1, 2}) {
    setThreadCount(threads);
    std::copy(x.begin(), x.end(), r.arena.begin() + p.slots[0].offset);
    std::copy(b.begin(), b.end(), r.arena.begin() + p.slots[1].offset);
    std::fill(r.arena.begin() + p.slots[2].offset, r.arena.end(), -1.0f);
    r.fn(r.arena.data());
    INFO("threads " << threads);
    CHECK(std::equal(want.begin(), want.end(), r.arena.begin() + p.slots[2].offset));
  }
  setThreadCount(0);
}

TEST_CASE("jit program: small parallel loops stay serial, and IR shows the outlined body", "[jit]") {
  Program small = single(scaleBias(3, 5));
  auto m = std::make_unique<jit::Module>("t");
  REQUIRE(jit::addProgram(*m, small, "step"));
  CHECK(m->ir().find("nnc_parallel_for") == std::string::npos);
  Program big = single(scaleBias(1000, 100));
  auto m2 = std::make_unique<jit::Module>("t2");
  REQUIRE(jit::addProgram(*m2, big, "step"));
  CHECK(m2->ir().find("call void @nnc_parallel_for") != std::string::npos);
  CHECK(m2->ir().find("define internal void @scale_bias.body0(ptr noalias") != std::string::npos);
}

TEST_CASE("jit program: a runtime call (GEMM) with a buffer offset", "[jit]") {
  // C[2x2] = A[2x3] @ B[3x2], A stored at offset 1 of its buffer.
  Kernel k{"mm", "", {{"a", 7}, {"b", 6}, {"c", 4}}, {}, 0};
  k.body.push_back(call("nnc_sgemm", {{0, Affine::constant(1)}, {1, {}}, {2, {}}}, {2, 2, 3, 3, 2, 2, 0, 0, 0}));
  Program p = single(k);
  Run r;
  {
    auto e = jit::Engine::create(2);
    REQUIRE(e);
    r.engine = e.take();
    REQUIRE(r.engine->defineSymbol("nnc_sgemm", reinterpret_cast<void*>(&nnc_sgemm)));
    auto m = std::make_unique<jit::Module>("t");
    REQUIRE(jit::addProgram(*m, p, "step"));
    REQUIRE(r.engine->add(std::move(m)));
    auto f = r.engine->lookup("step");
    REQUIRE(f);
    r.fn = reinterpret_cast<void (*)(float*)>(*f);
    r.arena.assign(static_cast<size_t>(p.arenaFloats), 0.0f);
  }
  const std::vector<float> a = {99, 1, 2, 3, 4, 5, 6}, b = {1, 0, 0, 1, 1, 1};
  std::copy(a.begin(), a.end(), r.arena.begin() + p.slots[0].offset);
  std::copy(b.begin(), b.end(), r.arena.begin() + p.slots[1].offset);
  r.fn(r.arena.data());
  const float* c = r.arena.data() + p.slots[2].offset;
  // [1 2 3; 4 5 6] @ [1 0; 0 1; 1 1] = [4 5; 10 11]
  CHECK(std::vector<float>(c, c + 4) == std::vector<float>{4, 5, 10, 11});
}

// ---- max pooling through the JIT against the reference interpreter ----

namespace {

struct PoolCase {
  Shape x;
  std::vector<int64_t> kernel, stride, pad;
};

// Values for x: 0 continuous (normal), 1 ties (a few small integers, so
// most windows hold equal maxima, zeros and all-negative windows), 2 ties
// with NaN and -inf mixed in.
Tensor poolInput(const Shape& shape, int kind, Rng& rng) {
  Tensor t(TensorType{DType::F32, shape});
  const double inf = std::numeric_limits<double>::infinity();
  for (double& v : t.data) {
    if (kind == 0) {
      v = rng.normal();
      continue;
    }
    v = static_cast<double>(rng.below(4)) - 2;  // -2, -1, 0, 1
    if (kind == 2 && rng.below(7) == 0) v = rng.below(2) ? std::nan("") : -inf;
  }
  return t;
}

void requireSame(const std::string& what, const float* got, const Tensor& want) {
  for (size_t i = 0; i < want.data.size(); ++i) {
    INFO(what << "[" << i << "]: JIT " << got[i] << ", interpreter " << want.data[i]);
    if (std::isnan(want.data[i])) {  // a NaN in a window propagates (data kind 2)
      REQUIRE(std::isnan(got[i]));
      continue;
    }
    if (std::isinf(want.data[i])) {
      REQUIRE(static_cast<double>(got[i]) == want.data[i]);
      continue;
    }
    REQUIRE(std::abs(got[i] - want.data[i]) <= 1e-5 + 1e-4 * std::abs(want.data[i]));
  }
}

// y = op(x) and dx = op_grad(x, dy) as one program, for 1 and 2 threads.
void checkPool(const PoolCase& pc, const std::string& op, int kind, uint64_t seed) {
  Graph g;
  auto x = g.addSource("input", "x", TensorType{DType::F32, pc.x});
  REQUIRE(x);
  Attrs attrs{{"kernel", pc.kernel}, {"stride", pc.stride}, {"pad", pc.pad}};
  auto y = g.add(op, {*x}, attrs);
  REQUIRE(y);
  auto dy = g.addSource("input", "dy", g.type(*y));
  REQUIRE(dy);
  auto dx = g.add(op + "_grad", {*x, *dy}, attrs);
  REQUIRE(dx);
  Rng rng(seed);
  TensorMap feeds{{"x", poolInput(pc.x, kind, rng)}, {"dy", poolInput(g.type(*y).shape, 0, rng)}};
  auto want = interpret(g, feeds, EvalOptions{}, {*y, *dx});
  REQUIRE(want);
  auto cp = jit::CompiledProgram::create(g, {*y, *dx}, LowerOptions{});
  if (!cp) FAIL(cp.error().message);
  for (int threads : {1, 2}) {
    setThreadCount(threads);
    for (ValueId v : {*x, *dy}) {
      const Tensor& t = feeds[g.node(v).name];
      for (size_t i = 0; i < t.data.size(); ++i) (*cp)->data(v)[i] = static_cast<float>(t.data[i]);
    }
    std::fill((*cp)->data(*dx), (*cp)->data(*dx) + (*cp)->size(*dx), -777.0f);  // every element must be written
    (*cp)->run();
    INFO(op << " threads " << threads << " data kind " << kind);
    requireSame(op, (*cp)->data(*y), (*want)[static_cast<size_t>(*y)]);
    requireSame(op + "_grad", (*cp)->data(*dx), (*want)[static_cast<size_t>(*dx)]);
  }
  setThreadCount(0);
}

}  // namespace

TEST_CASE("jit program: max pooling and its gradient match the interpreter, ties included", "[jit][pool]") {
  const std::vector<PoolCase> cases = {
      {{2, 3, 6, 8}, {2, 2}, {2, 2}, {0, 0}},      // windows tile the image
      {{2, 3, 7, 9}, {2, 2}, {2, 2}, {0, 0}},      // odd sizes: a row and a column in no window
      {{3, 2, 10, 40}, {2, 2}, {2, 2}, {0, 0}},    // rows of 40: whole vectors and a remainder
      {{2, 2, 9, 37}, {3, 3}, {3, 3}, {0, 0}},     // kernel = stride = 3, a column left over
      {{2, 3, 8, 9}, {2, 3}, {2, 3}, {0, 0}},      // non-square windows
      {{1, 2, 5, 6}, {1, 1}, {1, 1}, {0, 0}},      // 1×1 windows
      {{2, 3, 7, 9}, {3, 3}, {2, 2}, {1, 1}},      // kernel 3, stride 2, pad 1: overlapping, padded
      {{2, 2, 6, 7}, {2, 2}, {1, 1}, {0, 0}},      // stride 1: overlapping
      {{2, 2, 8, 8}, {2, 2}, {2, 2}, {1, 1}},      // kernel = stride with padding
      {{1, 2, 9, 11}, {2, 3}, {3, 2}, {0, 1}},     // stride past the kernel: pixels no window reads
  };
  uint64_t seed = 1;
  for (const PoolCase& pc : cases)
    for (int kind = 0; kind < 3; ++kind)
      for (const char* op : {"maxpool2d", "maxpool2d_relu"}) {
        INFO("x " << pc.x[0] << "x" << pc.x[1] << "x" << pc.x[2] << "x" << pc.x[3] << ", kernel " << pc.kernel[0] << "x"
                  << pc.kernel[1] << ", stride " << pc.stride[0] << "x" << pc.stride[1] << ", pad " << pc.pad[0]
                  << "x" << pc.pad[1]);
        checkPool(pc, op, kind, seed++);
      }
}

TEST_CASE("jit program: relu then max pooling fuses, and the fused step matches the interpreter", "[jit][pool]") {
  // maxpool2d(relu(x)) and step(x)·maxpool2d_grad(relu(x), dy), as autodiff
  // writes them, become maxpool2d_relu and maxpool2d_relu_grad.
  for (int kind = 0; kind < 3; ++kind) {
    Graph g;
    auto x = g.addSource("input", "x", TensorType{DType::F32, {3, 4, 12, 20}});
    REQUIRE(x);
    Attrs attrs{{"kernel", std::vector<int64_t>{2, 2}}, {"stride", std::vector<int64_t>{2, 2}},
                {"pad", std::vector<int64_t>{0, 0}}};
    auto r = g.add("relu", {*x});
    REQUIRE(r);
    auto y = g.add("maxpool2d", {*r}, attrs);
    REQUIRE(y);
    auto dy = g.addSource("input", "dy", g.type(*y));
    REQUIRE(dy);
    auto pg = g.add("maxpool2d_grad", {*r, *dy}, attrs);
    REQUIRE(pg);
    auto st = g.add("step", {*x});
    REQUIRE(st);
    auto dx = g.add("mul", {*pg, *st});
    REQUIRE(dx);
    Rng rng(77 + static_cast<uint64_t>(kind));
    TensorMap feeds{{"x", poolInput(g.type(*x).shape, kind, rng)}, {"dy", poolInput(g.type(*y).shape, 0, rng)}};
    auto want = interpret(g, feeds, EvalOptions{}, {*y, *dx});
    REQUIRE(want);
    auto cp = jit::CompiledProgram::create(g, {*y, *dx}, LowerOptions{});
    if (!cp) FAIL(cp.error().message);
    std::string ops;
    for (const Node& n : (*cp)->optimizedGraph().nodes) ops += std::string(n.op->name) + " ";
    INFO("optimized: " << ops);
    CHECK(ops.find("maxpool2d_relu ") != std::string::npos);
    CHECK(ops.find("maxpool2d_relu_grad ") != std::string::npos);
    for (ValueId v : {*x, *dy}) {
      const Tensor& t = feeds[g.node(v).name];
      for (size_t i = 0; i < t.data.size(); ++i) (*cp)->data(v)[i] = static_cast<float>(t.data[i]);
    }
    (*cp)->run();
    INFO("data kind " << kind);
    requireSame("pooled", (*cp)->data(*y), (*want)[static_cast<size_t>(*y)]);
    requireSame("dx", (*cp)->data(*dx), (*want)[static_cast<size_t>(*dx)]);
  }
}

// Two launches of kernels that differ only in names, on different slots of
// one program: one function is compiled and each launch computes its own.
TEST_CASE("jit program: identical kernels on different buffers share one function", "[jit]") {
  Program p = single(scaleBias(1000, 129));
  Kernel twin = scaleBias(1000, 129);
  twin.name = "scale_bias_twin";
  twin.buffers = {{"x2", 1000 * 129}, {"b2", 129}, {"y2", 1000 * 129}};
  Kernel other = scaleBias(1000, 129);
  other.name = "scale_bias_other";
  other.body[0].body[0].body[0].value = apply(Op::Add, {apply(Op::Mul, {load(0, Affine::var(0, 129) + Affine::var(1)), constant(3)}),
                                                         load(1, Affine::var(1))});
  CHECK(structuralKey(twin) == structuralKey(p.kernels[0]));
  CHECK(structuralKey(other) != structuralKey(p.kernels[0]));
  for (const Kernel* k : {&twin, &other}) {
    Launch l{static_cast<int>(p.kernels.size()), {}};
    for (const Buffer& b : k->buffers) {
      l.slots.push_back(static_cast<int>(p.slots.size()));
      p.slots.push_back({b.name, static_cast<ValueId>(p.slots.size()), b.size, p.arenaFloats});
      p.arenaFloats += (b.size + 15) / 16 * 16;
    }
    p.kernels.push_back(*k);
    p.launches.push_back(l);
  }
  auto m = std::make_unique<jit::Module>("t");
  REQUIRE(jit::addProgram(*m, p, "step"));
  CHECK(m->ir().find("define void @scale_bias(") != std::string::npos);
  CHECK(m->ir().find("define void @scale_bias_twin(") == std::string::npos);
  CHECK(m->ir().find("define void @scale_bias_other(") != std::string::npos);

  Run r = compile(p);
  std::vector<std::vector<float>> inputs;
  for (int launch = 0; launch < 3; ++launch) {
    std::vector<float> x(1000 * 129), b(129);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * (launch + 3)) % 101) * 0.25f - 5;
    for (size_t j = 0; j < b.size(); ++j) b[j] = static_cast<float>(j + launch) * 0.5f;
    const std::vector<int>& s = p.launches[static_cast<size_t>(launch)].slots;
    std::copy(x.begin(), x.end(), r.arena.begin() + p.slots[static_cast<size_t>(s[0])].offset);
    std::copy(b.begin(), b.end(), r.arena.begin() + p.slots[static_cast<size_t>(s[1])].offset);
    inputs.push_back(std::move(x));
    inputs.push_back(std::move(b));
  }
  for (int threads : {1, 2}) {
    setThreadCount(threads);
    r.fn(r.arena.data());
    for (int launch = 0; launch < 3; ++launch) {
      INFO("launch " << launch << ", threads " << threads);
      const std::vector<int>& s = p.launches[static_cast<size_t>(launch)].slots;
      std::vector<float> want(1000 * 129);
      evaluate(p.kernels[static_cast<size_t>(launch)],
               {inputs[static_cast<size_t>(2 * launch)].data(), inputs[static_cast<size_t>(2 * launch + 1)].data(), want.data()});
      CHECK(std::equal(want.begin(), want.end(), r.arena.begin() + p.slots[static_cast<size_t>(s[2])].offset));
    }
  }
  setThreadCount(0);
}
