// pad, conv1d (and conv2d's pad = "same"), groupnorm, lstm and gru against
// PyTorch: the models in tests/reference/seq_models/*.nn, with the params and
// inputs tests/reference/gen_seq_refs.py drew, must give every output, the
// loss and the gradient of every param (the op inputs are params too)
// that PyTorch computed in float64 (tests/reference/data/seq_<case>/); then
// the JIT's train-mode program must agree with the reference interpreter.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "compiler/autodiff/autodiff.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "io/npy.h"
#include "test_util.h"

using namespace nnc;

namespace {

// Must match gen_seq_refs.py's main(); each is seq_models/<name>.nn and data/seq_<name>/.
const char* const kCases[] = {"pad_constant", "pad_reflect", "pad_replicate", "conv1d", "groupnorm",
                              "lstm",         "lstm_last",   "gru",           "gru_last"};

constexpr double kRtol = 1e-4, kAtol = 1e-5;

std::string dataDir(const std::string& c) { return test::sourcePath("tests/reference/data/seq_" + c); }

Tensor load(const std::string& path) {
  auto t = readNpy(path);
  if (!t) FAIL(t.error().message);
  return t.take();
}

Elaborated loadModel(const std::string& c) {
  auto m = test::compile(test::readText(test::sourcePath("tests/reference/seq_models/" + c + ".nn")));
  if (!m.model) FAIL(c << ".nn: " << m.diag);
  return std::move(*m.model);
}

TensorMap loadFeeds(const std::string& c, const Graph& g) {
  TensorMap feeds;
  for (const auto* ids : {&g.inputs, &g.labels, &g.params})
    for (ValueId v : *ids) {
      const std::string& name = g.node(v).name;
      const std::string path = dataDir(c) + "/" + name + ".npy";
      INFO("feed " << name);
      REQUIRE(std::filesystem::exists(path));  // a param left out would silently take its initializer
      Tensor t = load(path);
      REQUIRE(t.shape() == g.type(v).shape);
      feeds[name] = std::move(t);
    }
  return feeds;
}

// As numpy.allclose: |got - want| <= atol + rtol * |want| everywhere.
template <typename At>
void requireClose(const std::string& what, int64_t n, At got, const Tensor& want) {
  REQUIRE(n == want.numel());
  int64_t bad = 0, worst = -1;
  double maxAbs = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double g = got(i), w = want.data[static_cast<size_t>(i)];
    const double diff = std::abs(g - w);
    maxAbs = std::max(maxAbs, diff);
    if (!(diff <= kAtol + kRtol * std::abs(w))) {
      ++bad;
      if (worst < 0) worst = i;
    }
  }
  std::ostringstream msg;
  msg.precision(10);
  msg << what << ": " << bad << " of " << n << " entries differ (max abs difference " << maxAbs << ")";
  if (worst >= 0) msg << "; first at flat index " << worst << ": got " << got(worst) << ", want " << want.data[static_cast<size_t>(worst)];
  INFO(msg.str());
  CHECK(bad == 0);
}

void requireClose(const std::string& what, const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  requireClose(what, got.numel(), [&](int64_t i) { return got.data[static_cast<size_t>(i)]; }, want);
}

struct Differentiated {
  Graph graph;
  std::vector<std::pair<std::string, ValueId>> checked;  // (reference file, value): outputs, loss, gradients
};

Differentiated differentiated(const std::string& c, const Elaborated& m) {
  auto gg = differentiate(m.graph);
  if (!gg) FAIL("differentiate: " << gg.error().message);
  Differentiated d{std::move(gg->graph), {}};
  for (const auto& [name, v] : m.graph.outputs) d.checked.emplace_back("out_" + name, v);
  d.checked.emplace_back("loss", d.graph.loss);
  std::set<std::string> names, files;
  for (const auto& [name, v] : gg->grads) {
    d.checked.emplace_back("grad_" + name, v);
    names.insert("grad_" + name + ".npy");
  }
  for (const auto& e : std::filesystem::directory_iterator(dataDir(c))) {
    const std::string f = e.path().filename().string();
    if (f.rfind("grad_", 0) == 0) files.insert(f);
  }
  CHECK(names == files);  // one gradient per param, one reference per gradient
  return d;
}

void checkAgainstTorch(const std::string& c, bool f64) {
  const Elaborated m = loadModel(c);
  const Differentiated d = differentiated(c, m);
  const TensorMap feeds = loadFeeds(c, m.graph);
  std::vector<ValueId> targets;
  for (const auto& [_, v] : d.checked) targets.push_back(v);
  auto vals = interpret(d.graph, feeds, EvalOptions{f64, true, 42}, targets);
  if (!vals) FAIL("interpret: " << vals.error().message);
  for (const auto& [file, v] : d.checked)
    requireClose(file, (*vals)[static_cast<size_t>(v)], load(dataDir(c) + "/" + file + ".npy"));
}

// The JIT's program for the outputs, the loss and the gradients (all passes
// on) against the reference interpreter in f32.
void checkJit(const std::string& c) {
  const Elaborated m = loadModel(c);
  const Differentiated d = differentiated(c, m);
  const TensorMap feeds = loadFeeds(c, m.graph);
  std::vector<ValueId> targets;
  for (const auto& [_, v] : d.checked) targets.push_back(v);
  auto vals = interpret(d.graph, feeds, EvalOptions{false, true, 42}, targets);
  if (!vals) FAIL("interpret: " << vals.error().message);
  LowerOptions lo;
  lo.training = true;
  auto cp = jit::CompiledProgram::create(d.graph, targets, lo);
  if (!cp) FAIL("compile: " << cp.error().message);
  for (const auto* ids : {&d.graph.inputs, &d.graph.params})
    for (ValueId v : *ids) {
      const Tensor& t = feeds.at(d.graph.node(v).name);
      float* dst = (*cp)->data(v);
      REQUIRE(dst);
      for (size_t i = 0; i < t.data.size(); ++i) dst[i] = static_cast<float>(t.data[i]);
    }
  (*cp)->run();
  for (const auto& [file, v] : d.checked) {
    const float* got = (*cp)->data(v);
    REQUIRE(got);
    const Tensor& want = (*vals)[static_cast<size_t>(v)];
    requireClose("JIT " + file, want.numel(), [&](int64_t i) { return static_cast<double>(got[i]); }, want);
  }
}

}  // namespace

TEST_CASE("seq torch reference: outputs, loss and gradients (f64 and f32)", "[torch][seq]") {
  for (const char* c : kCases) {
    DYNAMIC_SECTION(c << " f64") { checkAgainstTorch(c, true); }
    DYNAMIC_SECTION(c << " f32") { checkAgainstTorch(c, false); }
  }
}

TEST_CASE("seq torch reference models: JIT against the interpreter", "[jit][seq]") {
  for (const char* c : kCases) DYNAMIC_SECTION(c) { checkJit(c); }
}
