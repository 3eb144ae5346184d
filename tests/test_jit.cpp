// The JIT end to end through its own interface (no LLVM headers here): the
// demo generators stand in for the real lowering.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <vector>

#include "compiler/jit/jit.h"

using namespace nnc;

namespace {

using SaxpyFn = void (*)(float*, const float*, float, int64_t);

std::unique_ptr<jit::Engine> makeEngine(int level) {
  auto e = jit::Engine::create(level);
  INFO((e ? "" : e.error().message));
  REQUIRE(e);
  return e.take();
}

SaxpyFn jitSaxpy(jit::Engine& engine, const std::string& name, std::string* ir = nullptr) {
  auto m = std::make_unique<jit::Module>("saxpy");
  REQUIRE(jit::addSaxpy(*m, name));
  auto st = engine.add(std::move(m), ir);
  INFO((st ? "" : st.error().message));
  REQUIRE(st);
  auto p = engine.lookup(name);
  INFO((p ? "" : p.error().message));
  REQUIRE(p);
  REQUIRE(*p != nullptr);
  return reinterpret_cast<SaxpyFn>(*p);
}

// Products and sums of these are exact in float, so fused and unfused
// multiply-adds agree bit for bit and the comparison can be exact.
void checkExact(SaxpyFn f, int64_t n) {
  std::vector<float> x(n), y(n), ref(n);
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i % 7) - 3.5f;
    y[i] = static_cast<float>(i) * 0.25f;
  }
  const float a = 1.25f;
  for (int64_t i = 0; i < n; ++i) ref[i] = a * x[i] + y[i];
  f(y.data(), x.data(), a, n);
  CHECK(y == ref);
}

// Random data: each element must be the fused or the unfused result, since
// `contract` lets the backend choose.
void checkRandom(SaxpyFn f, int64_t n) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> d(-2.f, 2.f);
  std::vector<float> x(n), y(n), y0;
  for (int64_t i = 0; i < n; ++i) x[i] = d(rng), y[i] = d(rng);
  y0 = y;
  const float a = 0.7f;
  f(y.data(), x.data(), a, n);
  for (int64_t i = 0; i < n; ++i) {
    float prod = a * x[i];
    float unfused = prod + y0[i];
    float fused = std::fma(a, x[i], y0[i]);
    INFO("i = " << i);
    CHECK((y[i] == unfused || y[i] == fused));
  }
}

std::vector<std::pair<float*, int64_t>> g_calls;
extern "C" void nnc_test_runtime_fill(float* y, int64_t n) {
  g_calls.push_back({y, n});
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(i) * 2.f;
}

}  // namespace

TEST_CASE("jit: host detection", "[jit]") {
  const jit::HostInfo& h = jit::host();
  CHECK(!h.cpu.empty());
  CHECK((h.vectorBits == 128 || h.vectorBits == 256 || h.vectorBits == 512));
  if (h.features.find("+avx512f") != std::string::npos) CHECK(h.vectorBits == 512);
}

TEST_CASE("jit: saxpy at O3 and O0 matches a C++ loop", "[jit]") {
  for (int level : {3, 0}) {
    INFO("O" << level);
    auto engine = makeEngine(level);
    CHECK(engine->optLevel() == level);
    SaxpyFn f = jitSaxpy(*engine, "saxpy");
    for (int64_t n : {1, 17, 1000}) {
      INFO("n = " << n);
      checkExact(f, n);
      checkRandom(f, n);
    }
    // n <= 0 must not touch memory (null buffers would crash).
    f(nullptr, nullptr, 1.f, 0);
    f(nullptr, nullptr, 1.f, -5);
  }
}

TEST_CASE("jit: optimized saxpy IR is vectorized for the host", "[jit]") {
  auto engine = makeEngine(3);
  std::string ir;
  jitSaxpy(*engine, "saxpy", &ir);
  CHECK(ir.find("define void @saxpy(ptr noalias") != std::string::npos);
  CHECK((ir.find("fmul") != std::string::npos || ir.find("fma") != std::string::npos));
  CHECK(ir.find("uwtable") != std::string::npos);
  if (jit::host().vectorBits == 512) {
    CHECK(ir.find("\"prefer-vector-width\"=\"512\"") != std::string::npos);
    CHECK(ir.find("<16 x float>") != std::string::npos);
  }
  // noalias means no runtime overlap check before the vector loop.
  CHECK(ir.find("vector.memcheck") == std::string::npos);
}

TEST_CASE("jit: several modules and functions in one engine", "[jit]") {
  auto engine = makeEngine(2);
  SaxpyFn f1 = jitSaxpy(*engine, "saxpy_a");
  SaxpyFn f2 = jitSaxpy(*engine, "saxpy_b");
  CHECK(f1 != f2);
  checkExact(f1, 33);
  checkExact(f2, 33);
}

TEST_CASE("jit: an invalid function is an error with an IR dump, not a crash", "[jit]") {
  auto engine = makeEngine(3);
  auto m = std::make_unique<jit::Module>("broken");
  REQUIRE(jit::addBrokenFunction(*m, "broken_fn"));
  auto st = engine->add(std::move(m));
  REQUIRE_FALSE(st);
  const std::string& msg = st.error().message;
  INFO(msg);
  CHECK(st.error().internal());  // nnc generated the IR: a bug in nnc, not in the model
  CHECK(msg.find("verification failed") != std::string::npos);
  CHECK(msg.find("'broken_fn'") != std::string::npos);
  CHECK(msg.find("does not have terminator") != std::string::npos);
  auto at = msg.find("IR dumped to ");
  REQUIRE(at != std::string::npos);
  auto start = at + std::string("IR dumped to ").size();
  auto end = msg.find("):", start);
  REQUIRE(end != std::string::npos);
  std::filesystem::path dump = msg.substr(start, end - start);
  REQUIRE(std::filesystem::exists(dump));
  CHECK(std::filesystem::file_size(dump) > 0);
  std::filesystem::remove(dump);

  // The engine is still usable afterwards.
  checkExact(jitSaxpy(*engine, "saxpy"), 17);
}

TEST_CASE("jit: errors for bad levels, names and duplicates", "[jit]") {
  CHECK_FALSE(jit::Engine::create(4));
  CHECK_FALSE(jit::Engine::create(-1));
  auto engine = makeEngine(1);
  auto missing = engine->lookup("no_such_function");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("no_such_function") != std::string::npos);

  jit::Module m;
  REQUIRE(jit::addSaxpy(m, "twice"));
  CHECK_FALSE(jit::addSaxpy(m, "twice"));
  CHECK(m.ir().find("@twice(") != std::string::npos);

  CHECK_FALSE(engine->add(nullptr));
}

TEST_CASE("jit: JIT'd code calls a runtime function registered by name", "[jit]") {
  auto engine = makeEngine(3);
  REQUIRE(engine->defineSymbol("nnc_test_runtime_fill",
                               reinterpret_cast<void*>(&nnc_test_runtime_fill)));
  CHECK_FALSE(engine->defineSymbol("nnc_test_runtime_fill",
                                   reinterpret_cast<void*>(&nnc_test_runtime_fill)));
  auto m = std::make_unique<jit::Module>("calls");
  REQUIRE(jit::addCallExternal(*m, "call_fill", "nnc_test_runtime_fill"));
  auto st = engine->add(std::move(m));
  INFO((st ? "" : st.error().message));
  REQUIRE(st);
  auto p = engine->lookup("call_fill");
  INFO((p ? "" : p.error().message));
  REQUIRE(p);
  auto fn = reinterpret_cast<void (*)(float*, int64_t)>(*p);
  std::vector<float> y(5, -1.f);
  g_calls.clear();
  fn(y.data(), 5);
  REQUIRE(g_calls.size() == 1);
  CHECK(g_calls[0].first == y.data());
  CHECK(g_calls[0].second == 5);
  CHECK(y == std::vector<float>{0.f, 2.f, 4.f, 6.f, 8.f});
}
