// nnc run: train a model from its train block on an IDX dataset and report
// loss and test accuracy per epoch. The step (forward, backward, update) is
// one graph, run as one native call by the JIT (default) or by the reference
// interpreter (--backend interp).
// Optimizer state (TrainStep::state) is carried from step to step like the
// params; the learning rate is fed per step from the train block's schedule.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <ostream>

#include "cli/commands.h"
#include "cli/frontend.h"
#include "compiler/interpreter.h"
#include "compiler/jit/compiled.h"
#include "compiler/train_step.h"
#include "runtime/idx.h"
#include "runtime/metrics.h"
#include "runtime/plot.h"
#include "runtime/parallel.h"
#include "runtime/random_calls.h"
#include "runtime/rng.h"

namespace nnc::cli {

namespace {

constexpr const char* kDefaultData = "/usr/share/datasets/fashion-mnist";

struct RunSetup {
  std::string dataDir = kDefaultData;
  int64_t epochs = 1;
  int64_t limit = 0;  // training samples used; 0: all
  int64_t testLimit = 0;  // test samples scored; 0: all
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
  NNC_TRY(r.testLimit, positiveInt(o, "test-limit", r.testLimit));
  NNC_TRY(r.logEvery, positiveInt(o, "log-every", r.logEvery));
  if (o.flag("seed")) {
    NNC_TRY(int64_t s, positiveInt(o, "seed", 0));
    r.seed = static_cast<uint64_t>(s);
  }
  if (o.flag("data")) r.dataDir = o.value("data");
  return r;
}

// The first output shaped [batch, classes]: the model's class scores.
ValueId scoresOutput(const Graph& g, int64_t batch, int32_t classes) {
  for (const auto& [_, v] : g.outputs)
    if (g.type(v).shape == Shape{batch, classes}) return v;
  return kNoValue;
}

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// What runs a training step and scores a batch: the reference interpreter or
// the JIT. Both see the same batches, learning rates and initial params.
class Stepper {
 public:
  virtual ~Stepper() = default;
  // Copies samples order[first .. first + batch) into the input (and the
  // labels) of the training step, or of inference.
  virtual void feed(const Dataset& d, const std::vector<int64_t>& order, int64_t first, bool training) = 0;
  virtual Expected<double> trainStep(double lr, uint64_t seed) = 0;  // the loss; params updated
  // Class scores [batch, classes] of the batch fed for inference.
  virtual Expected<const float*> scores() = 0;
};

struct StepGraphs {
  const Graph& g;
  const TrainStep& step;
  ValueId scores;
  int64_t batch;
  int64_t pixels;
};

class InterpStepper : public Stepper {
 public:
  InterpStepper(const StepGraphs& s, TensorMap params, TensorMap state)
      : s_(s), params_(std::move(params)), state_(std::move(state)), x_(s.g.type(s.g.inputs[0])),
        t_(s.g.type(s.g.labels[0])) {
    const Graph& sg = s.step.grads.graph;
    targets_ = {sg.loss};
    for (auto [_, next] : s.step.updates) targets_.push_back(next);
    for (auto [_, next] : s.step.state) targets_.push_back(next);
  }

  void feed(const Dataset& d, const std::vector<int64_t>& order, int64_t first, bool) override {
    for (int64_t b = 0; b < s_.batch; ++b) {
      const int64_t i = order[static_cast<size_t>(first + b)];
      for (int64_t p = 0; p < s_.pixels; ++p)
        x_.data[static_cast<size_t>(b * s_.pixels + p)] = d.images[static_cast<size_t>(i * s_.pixels + p)];
      t_.data[static_cast<size_t>(b)] = d.labels[static_cast<size_t>(i)];
    }
  }

  Expected<double> trainStep(double lr, uint64_t seed) override {
    const Graph& g = s_.g;
    const Graph& sg = s_.step.grads.graph;
    TensorMap feeds = params_;
    feeds[g.node(g.inputs[0]).name] = x_;
    feeds[g.node(g.labels[0]).name] = t_;
    for (const auto& [name, v] : state_) feeds[name] = v;
    feeds[sg.node(s_.step.lr).name] = Tensor(sg.type(s_.step.lr), {lr});
    NNC_TRY(auto vals, interpret(sg, feeds, EvalOptions{false, true, seed}, targets_));
    for (auto [param, next] : s_.step.updates)
      params_[g.node(param).name].data = std::move(vals[static_cast<size_t>(next)].data);
    for (auto [node, next] : s_.step.state)
      state_[sg.node(node).name].data = std::move(vals[static_cast<size_t>(next)].data);
    return vals[static_cast<size_t>(sg.loss)].data[0];
  }

  Expected<const float*> scores() override {
    TensorMap feeds = params_;
    feeds[s_.g.node(s_.g.inputs[0]).name] = x_;
    NNC_TRY(auto vals, interpret(s_.g, feeds, EvalOptions{false, false, 0}, {s_.scores}));
    const Tensor& sc = vals[static_cast<size_t>(s_.scores)];
    scores_.assign(sc.data.begin(), sc.data.end());
    return scores_.data();
  }

 private:
  const StepGraphs& s_;
  TensorMap params_, state_;
  Tensor x_, t_;
  std::vector<ValueId> targets_;
  std::vector<float> scores_;
};

// The train step and inference as two compiled programs, each one native
// call. Params live in the train program's arena; inference gets a copy
// whenever training has changed them.
class JitStepper : public Stepper {
 public:
  static Expected<std::unique_ptr<JitStepper>> create(const StepGraphs& s, const TensorMap& params,
                                                      const TensorMap& state, int optLevel, const PassOptions& passes,
                                                      bool profile, std::ostream* verbose) {
    std::unique_ptr<JitStepper> j(new JitStepper(s));
    const Graph& sg = s.step.grads.graph;
    const LowerOptions train = s.step.lowering();
    jit::CompileOptions co;
    co.optLevel = optLevel;
    co.passes = passes;
    co.profile = profile;
    co.entry = "train_step";
    NNC_TRY(j->train_, jit::CompiledProgram::create(sg, {sg.loss}, train, co));
    if (s.scores != kNoValue) {
      co.entry = "infer";
      NNC_TRY(j->infer_, jit::CompiledProgram::create(s.g, {s.scores}, LowerOptions{}, co));
    }
    for (const auto& [name, t] : params) NNC_CHECK(j->set(sg.findByName(name), t));
    for (const auto& [name, t] : state) NNC_CHECK(j->set(sg.findByName(name), t));
    if (verbose) {
      auto line = [&](const char* what, const jit::CompiledProgram& p) {
        const jit::CompileTimes& t = p.times();
        *verbose << fmt::format(
            "  {:<10} {:3} kernels, arena {:.1f} MiB: passes {:.1f} ms, lower {:.1f} ms, LLVM IR {:.1f} ms, JIT setup {:.1f} ms, "
            "optimize + codegen {:.1f} ms, link {:.1f} ms; total {:.1f} ms\n",
            what, p.program().kernels.size(), static_cast<double>(p.arenaBytes()) / (1 << 20), t.passesMs, t.lowerMs, t.irMs,
            t.engineMs, t.optimizeMs, t.codegenMs, t.totalMs);
      };
      line("train_step", *j->train_);
      if (j->infer_) line("infer", *j->infer_);
    }
    return j;
  }

  void feed(const Dataset& d, const std::vector<int64_t>& order, int64_t first, bool training) override {
    jit::CompiledProgram& p = training ? *train_ : *infer_;
    float* x = p.data(s_.g.inputs[0]);
    float* t = training ? p.data(s_.g.labels[0]) : nullptr;
    for (int64_t b = 0; b < s_.batch; ++b) {
      const int64_t i = order[static_cast<size_t>(first + b)];
      std::copy_n(d.images.data() + i * s_.pixels, s_.pixels, x + b * s_.pixels);
      if (t) t[b] = static_cast<float>(d.labels[static_cast<size_t>(i)]);
    }
  }

  Expected<double> trainStep(double lr, uint64_t) override {
    train_->data(s_.step.lr)[0] = static_cast<float>(lr);
    train_->run();
    dirty_ = true;
    return static_cast<double>(train_->data(s_.step.grads.graph.loss)[0]);
  }

  // Runs `steps` train steps kernel by kernel on the batch fed last and
  // prints the kernels taking the most time, with their share of the step.
  Status profile(int steps, std::ostream& out) {
    const Program& p = train_->program();
    std::vector<double> total(p.launches.size(), 0.0);
    for (int i = 0; i < steps; ++i) {
      NNC_TRY(auto ms, train_->profile());
      for (size_t k = 0; k < ms.size(); ++k) total[k] += ms[k];
    }
    double sum = 0;
    for (double t : total) sum += t;
    std::vector<size_t> order(total.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return total[a] > total[b]; });
    out << fmt::format("train step profile ({} steps, {:.3f} ms per step):\n", steps, sum / steps);
    for (size_t i = 0; i < std::min<size_t>(order.size(), 15); ++i) {
      const loop::Kernel& k = p.kernels[static_cast<size_t>(p.launches[order[i]].kernel)];
      out << fmt::format("  {:8.3f} ms {:5.1f}%  {}\n", total[order[i]] / steps, 100 * total[order[i]] / sum,
                         k.comment);
    }
    return ok();
  }

  Expected<const float*> scores() override {
    if (dirty_) {
      for (ValueId p : s_.g.params)
        if (float* dst = infer_->data(p)) std::copy_n(train_->data(p), infer_->size(p), dst);
      dirty_ = false;
    }
    infer_->run();
    return infer_->data(s_.scores);
  }

 private:
  explicit JitStepper(const StepGraphs& s) : s_(s) {}

 public:
  float* data(ValueId v) { return train_->data(v); }

 private:

  Status set(ValueId v, const Tensor& t) {
    float* d = train_->data(v);
    if (!d) return ok();  // not read by the step (a param no loss depends on)
    for (int64_t i = 0; i < t.numel(); ++i) d[i] = static_cast<float>(t.data[static_cast<size_t>(i)]);
    return ok();
  }

  const StepGraphs& s_;
  std::unique_ptr<jit::CompiledProgram> train_, infer_;
  bool dirty_ = true;
};

}  // namespace

int runRun(const Options& o, std::ostream& out, std::ostream& err) {
  const auto t0 = std::chrono::steady_clock::now();
  auto l = [&] {
    auto eo = elaborateOptions(o);
    if (!eo) {
      err << "nnc: " << eo.error().message << "\n";
      return std::optional<Loaded>{};
    }
    return load(o.file, *eo, err);
  }();
  if (!l) return 1;
  const double parseMs = msSince(t0);
  auto fail = [&](const Diagnostic& d) {
    err << l->sm->render(d);
    return 1;
  };
  const Graph& g = l->model.graph;
  const std::string backend = o.value("backend", "jit");
  if (backend != "interp" && backend != "jit")
    return fail(error("--backend {}: the backends are 'jit' (native code) and 'interp' (the reference interpreter)",
                      backend));
  if (auto st = applyThreads(o); !st) return fail(st.error());
  auto optLevel = optLevelOption(o);
  if (!optLevel) return fail(optLevel.error());
  auto passes = passOptions(o, &out);
  if (!passes) return fail(passes.error());
  const bool verbose = o.flag("verbose");
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
  // Compiled code compares class ids but cannot report one out of range: the
  // data are checked here, once, against the model's number of classes.
  if (scores == kNoValue) {
    for (const auto& [_, v] : g.outputs)
      if (g.type(v).rank() == 2 && g.type(v).shape[0] == batch && g.type(v).shape[1] < train->classes)
        return fail(error(g.node(v).loc, "the data have {} classes, but output '{}' scores {}: {}", train->classes,
                          g.node(v).name, g.type(v).shape[1], typeString(g.type(v))));
  }
  if (test->classes > train->classes)
    return fail(error("the test set has labels up to {}, but the training set only {} classes", test->classes - 1,
                      train->classes));
  setRandomSeed(setup->seed);  // dropout masks

  auto t1 = std::chrono::steady_clock::now();
  auto step = buildTrainStep(g, l->model.train);
  if (!step) return fail(step.error());
  const double diffMs = msSince(t1);
  auto params = initParams(g, setup->seed);
  if (!params) return fail(params.error());
  // Optimizer state starts from its initializer (zeros).
  const Graph& sg = step->grads.graph;
  TensorMap state;
  for (auto [node, next] : step->state) {
    auto v = initParam(sg.node(node), setup->seed);
    if (!v) return fail(v.error());
    state[sg.node(node).name] = v.take();
  }

  const StepGraphs graphs{g, *step, scores, batch, train->rows * train->cols};
  std::unique_ptr<Stepper> stepper;
  if (verbose) out << fmt::format("parse + check {:.1f} ms, differentiate {:.1f} ms\n", parseMs, diffMs);
  if (backend == "jit") {
    auto j = JitStepper::create(graphs, *params, state, *optLevel, *passes, o.flag("profile"), verbose ? &out : nullptr);
    if (!j) return fail(j.error());
    if (o.flag("profile")) {
      std::vector<int64_t> first(static_cast<size_t>(batch));
      for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<int64_t>(i);
      (*j)->feed(*train, first, 0, true);
      (*j)->data(step->lr)[0] = static_cast<float>(step->lrAt(0));
      if (auto st = (*j)->profile(20, out); !st) return fail(st.error());
      return 0;
    }
    stepper = j.take();
  } else {
    stepper = std::make_unique<InterpStepper>(graphs, *params, state);
  }

  const int64_t samples = setup->limit ? std::min(setup->limit, train->count) : train->count;
  const int64_t steps = samples / batch;
  if (steps == 0) return fail(error("{} training samples make no batch of {}", samples, batch));
  out << fmt::format("training {} on {} ({} samples, batch {}, {} steps per epoch, optimizer {}, backend {}, {} "
                     "thread{})\n",
                     g.name, setup->dataDir, steps * batch, batch, steps, step->optimizer.kind, backend,
                     threadCount(), threadCount() == 1 ? "" : "s");
  Rng shuffle(setup->seed);
  std::vector<int64_t> order(static_cast<size_t>(train->count));
  int64_t globalStep = 0;
  for (int64_t epoch = 1; epoch <= setup->epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    if (setup->limit) order.resize(static_cast<size_t>(samples));
    for (size_t i = order.size(); i-- > 1;) std::swap(order[i], order[shuffle.below(i + 1)]);
    double lossSum = 0;
    for (int64_t s = 0; s < steps; ++s, ++globalStep) {
      stepper->feed(*train, order, s * batch, true);
      const double lr = step->lrAt(globalStep);
      auto loss = stepper->trainStep(lr, setup->seed + static_cast<uint64_t>(globalStep));
      if (!loss) return fail(loss.error());
      if (!std::isfinite(*loss))
        return fail(error("the loss became {} at epoch {}, step {}: training stopped (try a smaller learning rate)",
                          *loss, epoch, s + 1));
      lossSum += *loss;
      if (setup->logEvery == 0 || (s + 1) % setup->logEvery == 0 || s + 1 == steps)
        log.add({epoch, globalStep + 1, "train", *loss});
      if (setup->logEvery && (s + 1) % setup->logEvery == 0)
        out << fmt::format("  epoch {} step {}/{}: loss {:.4f}{}\n", epoch, s + 1, steps, *loss,
                           step->schedule.kind == "constant" ? "" : fmt::format(", lr {:.4g}", lr));
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string acc = "no [batch, classes] output to score";
    double accuracy = std::nan("");
    if (scores != kNoValue) {
      int64_t right = 0, seen = 0;
      std::vector<int64_t> all(static_cast<size_t>(test->count));
      for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
      const int64_t testCount = setup->testLimit ? std::min(setup->testLimit, test->count) : test->count;
      for (int64_t first = 0; first + batch <= testCount; first += batch) {
        stepper->feed(*test, all, first, false);
        auto sc = stepper->scores();
        if (!sc) return fail(sc.error());
        for (int64_t b = 0; b < batch; ++b, ++seen) {
          const float* row = *sc + b * train->classes;
          right += std::max_element(row, row + train->classes) - row == test->labels[static_cast<size_t>(first + b)];
        }
      }
      accuracy = static_cast<double>(right) / static_cast<double>(seen);
      acc = seen ? fmt::format("test accuracy {:.4f} ({} images)", accuracy, seen) : "no test batch";
    }
    const double samplesPerSec = static_cast<double>(steps * batch) / secs;
    log.add({epoch, globalStep, "test", std::nan(""), accuracy, samplesPerSec});
    // Rewritten every epoch (atomically), so a stopped run keeps its curves.
    if (!metricsPath.empty())
      if (auto st = log.write(metricsPath); !st) return fail(st.error());
    if (!plotPath.empty())
      if (auto st = writePlot(plotPath, log); !st) return fail(st.error());
    out << fmt::format("epoch {}: train loss {:.4f}, {}, {:.0f} samples/s ({:.2f} s)\n", epoch,
                       lossSum / static_cast<double>(steps), acc, samplesPerSec, secs);
  }
  return 0;
}

}  // namespace nnc::cli
