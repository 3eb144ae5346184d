// Programs (kernels over one arena) through the JIT: parallel outlining,
// runtime calls, commits; each checked against the loop IR's evaluator.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "compiler/jit/compiled.h"
#include "compiler/jit/jit.h"
#include "compiler/lower.h"
#include "runtime/gemm.h"
#include "runtime/parallel.h"

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
