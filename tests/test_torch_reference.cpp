// An independent cross-check against PyTorch: the models in
// tests/reference/models/*.nn, with the params, inputs and labels that
// tests/reference/gen_torch_refs.py drew, must give the loss and the
// gradients PyTorch computed in float64 (tests/reference/data/<case>/).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "compiler/autodiff/autodiff.h"
#include "compiler/interpreter/interpreter.h"
#include "io/npy.h"
#include "test_util.h"

using namespace nnc;

namespace {

struct RefCase {
  const char* name;   // the folder under tests/reference/data
  const char* model;  // the file under tests/reference/models, without .nn
  const char* decay;  // "" or addWeightDecay's kind
  double lambda;
};

// Must match gen_torch_refs.py's main().
const RefCase kCases[] = {
    {"mlp_sigmoid", "mlp_sigmoid", "", 0},
    {"mlp_relu", "mlp_relu", "", 0},
    {"convnet", "convnet", "", 0},
    {"binary_bce", "binary_bce", "", 0},
    {"binary_bce_logits", "binary_bce_logits", "", 0},
    {"regression_mse", "regression_mse", "", 0},
    {"batchnorm_dense", "batchnorm_dense", "", 0},
    {"batchnorm_conv", "batchnorm_conv", "", 0},
    {"conv_stride_avgpool", "conv_stride_avgpool", "", 0},
    {"weight_decay_l2", "weight_decay", "l2", 0.05},
    {"weight_decay_l1", "weight_decay", "l1", 0.05},
    {"transformer_tiny", "transformer_tiny", "", 0},
};

constexpr double kRtol = 1e-4, kAtol = 1e-5;

std::string dataDir(const RefCase& c) { return test::sourcePath(std::string("tests/reference/data/") + c.name); }

Tensor load(const std::string& path) {
  auto t = readNpy(path);
  if (!t) FAIL(t.error().message);
  return t.take();
}

// The model, with the weight decay of the case added to its loss.
Graph loadModel(const RefCase& c) {
  auto m = test::compile(test::readText(test::sourcePath(std::string("tests/reference/models/") + c.model + ".nn")));
  if (!m.model) FAIL(c.model << ".nn: " << m.diag);
  Graph g = std::move(m.model->graph);
  if (*c.decay) {
    Status st = addWeightDecay(g, c.decay, c.lambda);
    if (!st) FAIL("addWeightDecay: " << st.error().message);
  }
  return g;
}

// Every input, label and param, by name, from the case's folder.
TensorMap loadFeeds(const RefCase& c, const Graph& g) {
  TensorMap feeds;
  for (const auto* ids : {&g.inputs, &g.labels, &g.params})
    for (ValueId v : *ids) {
      const std::string& name = g.node(v).name;
      const std::string path = dataDir(c) + "/" + name + ".npy";
      INFO("feed " << name);
      REQUIRE(std::filesystem::exists(path));  // a param left out would silently take its initializer
      Tensor t = load(path);
      REQUIRE(t.shape() == g.type(v).shape);
      REQUIRE(t.type.dtype == g.type(v).dtype);
      feeds[name] = std::move(t);
    }
  return feeds;
}

// As numpy.allclose: |got - want| <= atol + rtol * |want| everywhere.
void requireClose(const std::string& what, const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  int64_t bad = 0, worst = -1;
  double worstExcess = 0, maxAbs = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got.data[static_cast<size_t>(i)], w = want.data[static_cast<size_t>(i)];
    const double diff = std::abs(g - w), excess = diff - (kAtol + kRtol * std::abs(w));
    maxAbs = std::max(maxAbs, diff);
    if (!(excess <= 0)) {
      ++bad;
      if (worst < 0 || excess > worstExcess || std::isnan(excess)) {
        worst = i;
        worstExcess = excess;
      }
    }
  }
  std::ostringstream msg;
  msg.precision(10);
  msg << what << ": " << bad << " of " << got.numel() << " entries differ (max abs difference " << maxAbs << ")";
  if (worst >= 0)
    msg << "; worst at flat index " << worst << ": nnc " << got.data[static_cast<size_t>(worst)] << ", torch "
        << want.data[static_cast<size_t>(worst)];
  INFO(msg.str());
  CHECK(bad == 0);
}

void checkLoss(const RefCase& c, bool f64) {
  const Graph g = loadModel(c);
  const TensorMap feeds = loadFeeds(c, g);
  auto vals = interpret(g, feeds, EvalOptions{f64, true, 42}, {g.loss});
  if (!vals) FAIL("interpret: " << vals.error().message);
  requireClose("loss", (*vals)[static_cast<size_t>(g.loss)], load(dataDir(c) + "/loss.npy"));
}

void checkGradients(const RefCase& c, bool f64) {
  const Graph g = loadModel(c);
  const TensorMap feeds = loadFeeds(c, g);
  auto gg = differentiate(g);
  if (!gg) FAIL("differentiate: " << gg.error().message);
  std::vector<ValueId> targets{gg->graph.loss};
  for (const auto& [_, v] : gg->grads) targets.push_back(v);
  auto vals = interpret(gg->graph, feeds, EvalOptions{f64, true, 42}, targets);
  if (!vals) FAIL("interpret gradients: " << vals.error().message);

  // One gradient per trainable param, and one reference file per gradient.
  std::set<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dataDir(c))) {
    const std::string f = e.path().filename().string();
    if (f.rfind("grad_", 0) == 0) files.insert(f);
  }
  std::set<std::string> names;
  for (const auto& [name, v] : gg->grads) {
    names.insert("grad_" + name + ".npy");
    requireClose("d loss / d " + name, (*vals)[static_cast<size_t>(v)], load(dataDir(c) + "/grad_" + name + ".npy"));
  }
  CHECK(names == files);
}

}  // namespace

TEST_CASE("torch reference: forward loss (f64 and f32)", "[torch]") {
  for (const RefCase& c : kCases) {
    DYNAMIC_SECTION(c.name << " f64") { checkLoss(c, true); }
    DYNAMIC_SECTION(c.name << " f32") { checkLoss(c, false); }
  }
}

TEST_CASE("torch reference: gradients (f64 and f32)", "[torch]") {
  for (const RefCase& c : kCases) {
    DYNAMIC_SECTION(c.name << " f64") { checkGradients(c, true); }
    DYNAMIC_SECTION(c.name << " f32") { checkGradients(c, false); }
  }
}
