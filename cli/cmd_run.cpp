// nnc run: train a model from its train block on an IDX dataset and report
// loss and test accuracy per epoch. The step (forward, backward, update) is
// one graph; the reference interpreter runs it until the JIT backend exists.
// Optimizer state (TrainStep::state) is carried from step to step like the
// params; the learning rate is fed per step from the train block's schedule.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ostream>

#include "cli/commands.h"
#include "cli/frontend.h"
#include "compiler/interpreter.h"
#include "compiler/train_step.h"
#include "runtime/idx.h"
#include "runtime/metrics.h"
#include "runtime/plot.h"
#include "runtime/rng.h"

namespace nnc::cli {

namespace {

constexpr const char* kDefaultData = "/usr/share/datasets/fashion-mnist";

struct RunSetup {
  std::string dataDir = kDefaultData;
  int64_t epochs = 1;
  int64_t limit = 0;  // training samples used; 0: all
  uint64_t seed = 42;
  int64_t logEvery = 100;
};

Expected<int64_t> positiveInt(const Options& o, const std::string& name, int64_t dflt) {
  if (!o.flag(name)) return dflt;
  const std::string s = o.value(name);
  if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos)
    return error("--{} takes a non-negative integer, got '{}'", name, s);
  return static_cast<int64_t>(std::stoll(s));
}

Expected<RunSetup> setupFrom(const Options& o, const std::optional<TrainConfig>& train) {
  RunSetup r;
  if (train) {
    const auto& s = train->settings;
    if (auto d = s.find("data"); d != s.end()) {
      if (d->second.kind != "idx")
        return error(d->second.loc, "data source '{}' is not supported yet by nnc run (only idx(\"folder\"))",
                     d->second.kind);
      if (d->second.positional.empty() || d->second.positional[0].kind != "string")
        return error(d->second.loc, "idx(...) takes the dataset folder as a string");
      r.dataDir = d->second.positional[0].text;
    }
    if (auto e = s.find("epochs"); e != s.end()) r.epochs = static_cast<int64_t>(e->second.number);
    if (auto l = s.find("limit"); l != s.end()) r.limit = static_cast<int64_t>(l->second.number);
    if (auto sd = s.find("seed"); sd != s.end()) r.seed = static_cast<uint64_t>(sd->second.number);
    if (auto le = s.find("log_every"); le != s.end()) r.logEvery = static_cast<int64_t>(le->second.number);
  }
  NNC_TRY(r.epochs, positiveInt(o, "epochs", r.epochs));
  NNC_TRY(r.limit, positiveInt(o, "limit", r.limit));
  NNC_TRY(r.logEvery, positiveInt(o, "log-every", r.logEvery));
  if (o.flag("seed")) {
    NNC_TRY(int64_t s, positiveInt(o, "seed", 0));
    r.seed = static_cast<uint64_t>(s);
  }
  if (o.flag("data")) r.dataDir = o.value("data");
  return r;
}

// Copies samples `order[first .. first + batch)` into the model's input and label shapes.
void fillBatch(const Dataset& d, const std::vector<int64_t>& order, int64_t first, Tensor& x, Tensor& t) {
  const int64_t batch = t.numel(), pixels = d.rows * d.cols;
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t s = order[static_cast<size_t>(first + b)];
    for (int64_t p = 0; p < pixels; ++p)
      x.data[static_cast<size_t>(b * pixels + p)] = d.images[static_cast<size_t>(s * pixels + p)];
    t.data[static_cast<size_t>(b)] = d.labels[static_cast<size_t>(s)];
  }
}

// The first output shaped [batch, classes]: the model's class scores.
ValueId scoresOutput(const Graph& g, int64_t batch, int32_t classes) {
  for (const auto& [_, v] : g.outputs)
    if (g.type(v).shape == Shape{batch, classes}) return v;
  return kNoValue;
}

}  // namespace

int runRun(const Options& o, std::ostream& out, std::ostream& err) {
  auto l = [&] {
    auto eo = elaborateOptions(o);
    if (!eo) {
      err << "nnc: " << eo.error().message << "\n";
      return std::optional<Loaded>{};
    }
    return load(o.file, *eo, err);
  }();
  if (!l) return 1;
  auto fail = [&](const Diagnostic& d) {
    err << l->sm->render(d);
    return 1;
  };
  const Graph& g = l->model.graph;
  const std::string backend = o.value("backend", "interp");
  if (backend != "interp") return fail(error("--backend {}: only 'interp' (the reference interpreter) exists yet", backend));
  auto setup = setupFrom(o, l->model.train);
  if (!setup) return fail(setup.error());
  const std::string metricsPath = o.value("metrics"), plotPath = o.value("plot");
  if (!metricsPath.empty())
    if (auto st = checkMetricsPath(metricsPath); !st) return fail(st.error());
  if (!plotPath.empty())
    if (auto st = checkPlotPath(plotPath); !st) return fail(st.error());
  MetricsLog log;
  if (g.inputs.size() != 1 || g.labels.size() != 1)
    return fail(error("nnc run trains models with one input and one label; '{}' has {} and {}", g.name,
                      g.inputs.size(), g.labels.size()));
  const TensorType xt = g.type(g.inputs[0]), tt = g.type(g.labels[0]);

  auto train = loadIdxDataset(setup->dataDir, "train");
  if (!train) return fail(train.error());
  auto test = loadIdxDataset(setup->dataDir, "test");
  if (!test) return fail(test.error());
  const int64_t batch = xt.shape.empty() ? 0 : xt.shape[0];
  if (xt.rank() < 2 || xt.numel() != batch * train->rows * train->cols || tt.shape != Shape{batch} ||
      tt.dtype != DType::I32)
    return fail(error(g.node(g.inputs[0]).loc,
                      "the data are {}×{} images with class ids, but model '{}' takes input {} and label {} "
                      "(expected [batch, {}] or [batch, 1, {}, {}] and i32[batch])",
                      train->rows, train->cols, g.name, typeString(xt), typeString(tt), train->rows * train->cols,
                      train->rows, train->cols));
  const ValueId scores = scoresOutput(g, batch, train->classes);

  auto step = buildTrainStep(g, l->model.train);
  if (!step) return fail(step.error());
  auto params = initParams(g, setup->seed);
  if (!params) return fail(params.error());
  std::vector<ValueId> targets = {step->grads.graph.loss};
  for (auto [_, next] : step->updates) targets.push_back(next);
  // Optimizer state starts from its initializer (zeros).
  const Graph& sg = step->grads.graph;
  TensorMap state;
  for (auto [node, next] : step->state) {
    auto v = initParam(sg.node(node), setup->seed);
    if (!v) return fail(v.error());
    state[sg.node(node).name] = v.take();
    targets.push_back(next);
  }
  const std::string lrName = sg.node(step->lr).name;

  const int64_t samples = setup->limit ? std::min(setup->limit, train->count) : train->count;
  const int64_t steps = samples / batch;
  if (steps == 0) return fail(error("{} training samples make no batch of {}", samples, batch));
  out << fmt::format("training {} on {} ({} samples, batch {}, {} steps per epoch, optimizer {}, backend {})\n",
                     g.name, setup->dataDir, steps * batch, batch, steps, step->optimizer.kind, backend);
  Rng shuffle(setup->seed);
  std::vector<int64_t> order(static_cast<size_t>(train->count));
  Tensor x(xt), t(tt);
  int64_t globalStep = 0;
  for (int64_t epoch = 1; epoch <= setup->epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    if (setup->limit) order.resize(static_cast<size_t>(samples));
    for (size_t i = order.size(); i-- > 1;) std::swap(order[i], order[shuffle.below(i + 1)]);
    double lossSum = 0;
    for (int64_t s = 0; s < steps; ++s, ++globalStep) {
      fillBatch(*train, order, s * batch, x, t);
      TensorMap feeds = *params;
      feeds[g.node(g.inputs[0]).name] = x;
      feeds[g.node(g.labels[0]).name] = t;
      for (const auto& [name, v] : state) feeds[name] = v;
      const double lr = step->lrAt(globalStep);
      feeds[lrName] = Tensor(sg.type(step->lr), {lr});
      auto vals = interpret(sg, feeds, EvalOptions{false, true, setup->seed + static_cast<uint64_t>(globalStep)}, targets);
      if (!vals) return fail(vals.error());
      const double loss = (*vals)[static_cast<size_t>(sg.loss)].data[0];
      if (!std::isfinite(loss))
        return fail(error("the loss became {} at epoch {}, step {}: training stopped (try a smaller learning rate)",
                          loss, epoch, s + 1));
      lossSum += loss;
      if (setup->logEvery == 0 || (s + 1) % setup->logEvery == 0 || s + 1 == steps)
        log.add({epoch, globalStep + 1, "train", loss});
      for (auto [param, next] : step->updates)
        (*params)[g.node(param).name].data = std::move((*vals)[static_cast<size_t>(next)].data);
      for (auto [node, next] : step->state)
        state[sg.node(node).name].data = std::move((*vals)[static_cast<size_t>(next)].data);
      if (setup->logEvery && (s + 1) % setup->logEvery == 0)
        out << fmt::format("  epoch {} step {}/{}: loss {:.4f}{}\n", epoch, s + 1, steps, loss,
                           step->schedule.kind == "constant" ? "" : fmt::format(", lr {:.4g}", lr));
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string acc = "no [batch, classes] output to score";
    double accuracy = std::nan("");
    if (scores != kNoValue) {
      int64_t right = 0, seen = 0;
      std::vector<int64_t> all(static_cast<size_t>(test->count));
      for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
      for (int64_t first = 0; first + batch <= test->count; first += batch) {
        fillBatch(*test, all, first, x, t);
        TensorMap feeds = *params;
        feeds[g.node(g.inputs[0]).name] = x;
        auto vals = interpret(g, feeds, EvalOptions{false, false, setup->seed}, {scores});
        if (!vals) return fail(vals.error());
        const Tensor& sc = (*vals)[static_cast<size_t>(scores)];
        for (int64_t b = 0; b < batch; ++b, ++seen) {
          auto row = sc.data.begin() + b * train->classes;
          right += std::max_element(row, row + train->classes) - row == static_cast<int64_t>(t.data[static_cast<size_t>(b)]);
        }
      }
      accuracy = static_cast<double>(right) / static_cast<double>(seen);
      acc = fmt::format("test accuracy {:.4f} ({} images)", accuracy, seen);
    }
    const double samplesPerSec = static_cast<double>(steps * batch) / secs;
    log.add({epoch, globalStep, "test", std::nan(""), accuracy, samplesPerSec});
    // Rewritten every epoch (atomically), so a stopped run keeps its curves.
    if (!metricsPath.empty())
      if (auto st = log.write(metricsPath); !st) return fail(st.error());
    if (!plotPath.empty())
      if (auto st = writePlot(plotPath, log); !st) return fail(st.error());
    out << fmt::format("epoch {}: train loss {:.4f}, {}, {:.0f} samples/s\n", epoch, lossSum / static_cast<double>(steps),
                       acc, samplesPerSec);
  }
  return 0;
}

}  // namespace nnc::cli
