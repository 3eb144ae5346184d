// nnc run: train a model from its train block and report loss and accuracy
// per epoch. The step (forward, backward, update) is one graph, run as one
// native call by the JIT (default) or by the reference interpreter
// (--backend interp). Optimizer state is carried from step to step like the
// params; the learning rate is fed per step from the train block's schedule.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>

#include "cli/commands.h"
#include "cli/frontend.h"
#include "cli/run_data.h"
#include "cli/run_stepper.h"
#include "io/checkpoint.h"
#include "io/metrics.h"
#include "io/plot.h"
#include "io/progress.h"
#include "runtime/parallel.h"
#include "runtime/random_calls.h"
#include "runtime/rng.h"

namespace nnc::cli {

namespace {

struct RunSetup {
  int64_t epochs = 1, iterations = 0, limit = 0, testLimit = 0, logEvery = 100;
  uint64_t seed = 42;
  double validation = 0, flagQuantile = 0.99;
  bool shuffle = true, evalTrain = false;
  Augment augment;
};

Expected<RunSetup> setupFrom(const Options& o, const std::optional<TrainConfig>& train) {
  RunSetup r;
  std::string augment;
  if (train) {
    for (const auto& [key, v] : train->settings) {
      if (key == "epochs" || key == "iterations" || key == "limit") {
        // 0 would silently mean "all" (or, for epochs, train nothing).
        if (v.kind != "int" || v.number < 1)
          return error(v.loc, "{} is a positive whole number (leave it out for the default)", key);
        (key == "epochs" ? r.epochs : key == "iterations" ? r.iterations : r.limit) = static_cast<int64_t>(v.number);
      }
      if (key == "seed") r.seed = static_cast<uint64_t>(v.number);
      if (key == "log_every") r.logEvery = static_cast<int64_t>(v.number);
      if (key == "shuffle") r.shuffle = v.number != 0;
      if (key == "eval_train") r.evalTrain = v.number != 0;
      if (key == "flag_quantile") {
        if ((v.kind != "float" && v.kind != "int") || !(v.number > 0 && v.number <= 1))
          return error(v.loc, "flag_quantile is the share of training samples not flagged, in (0, 1]");
        r.flagQuantile = v.number;
      }
      if (key == "validation") {
        if ((v.kind != "float" && v.kind != "int") || !(v.number >= 0 && v.number < 1))
          return error(v.loc, "validation is the fraction of training samples held out, in [0, 1)");
        r.validation = v.number;
      }
      if (key == "augment") {
        if (v.kind != "string") return error(v.loc, "augment is a string such as \"shift=2,hflip\"");
        augment = v.text;
      }
    }
  }
  NNC_TRY(r.epochs, countOption(o, "epochs", r.epochs, true));
  NNC_TRY(r.iterations, countOption(o, "iterations", r.iterations, true));
  NNC_TRY(r.limit, countOption(o, "limit", r.limit, true));
  NNC_TRY(r.testLimit, countOption(o, "test-limit", r.testLimit, true));
  NNC_TRY(r.logEvery, countOption(o, "log-every", r.logEvery, false));
  if (o.flag("seed")) {
    NNC_TRY(int64_t s, countOption(o, "seed", 0, false));
    r.seed = static_cast<uint64_t>(s);
  }
  if (o.flag("augment")) augment = o.value("augment");
  if (o.flag("eval-train")) r.evalTrain = true;
  NNC_TRY(r.augment, augmentFrom(augment));
  return r;
}

// NaN without the sign bit's "-nan": the sign of a NaN means nothing here.
std::string valueWord(double v) { return std::isnan(v) ? "NaN" : fmt::format("{}", v); }

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Replays a step whose loss was not finite in the reference interpreter (f32,
// as the JIT computes) from the params it started with, and names the first
// node, in graph order, whose value is not finite.
Diagnostic firstNonFinite(const StepGraphs& s, const TensorMap& params, const TensorMap& state, const Batch& b,
                          double lr, uint64_t seed, const std::string& where) {
  const Graph& g = s.g;
  const Graph& sg = s.step->grads.graph;
  TensorMap feeds = params;
  for (const auto& [k, v] : state) feeds[k] = v;
  Tensor x(g.type(g.inputs[0]));
  std::copy(b.x.begin(), b.x.end(), x.data.begin());
  feeds[g.node(g.inputs[0]).name] = x;
  if (!g.labels.empty()) {
    Tensor t(g.type(g.labels[0]));
    std::copy_n(b.y.begin(), t.data.size(), t.data.begin());
    feeds[g.node(g.labels[0]).name] = t;
  }
  feeds[sg.node(s.step->lr).name] = Tensor(sg.type(s.step->lr), {lr});
  std::vector<ValueId> targets = {sg.loss};
  for (auto [_, next] : s.step->updates) targets.push_back(next);
  auto vals = interpret(sg, feeds, EvalOptions{false, true, seed}, targets);
  const std::string stop = fmt::format("{}: training stopped (try a smaller learning rate)", where);
  if (!vals) return error("{}; replaying the step in the interpreter failed: {}", stop, vals.error().message);
  for (ValueId v = 0; v < static_cast<ValueId>(vals->size()); ++v) {
    const Tensor& val = (*vals)[static_cast<size_t>(v)];
    const auto bad = std::find_if(val.data.begin(), val.data.end(), [](double d) { return !std::isfinite(d); });
    if (bad == val.data.end()) continue;
    const Node& n = sg.node(v);
    const std::string name = n.name.empty() ? "" : fmt::format(" '{}'", n.name);
    if (n.op->kind == OpKind::Source)
      return error(n.loc, "{}; {}{} already held {} before the step", stop, n.op->name, name, valueWord(*bad));
    return error(n.loc, "{}; the first non-finite value ({}) comes from {}{}: {}", stop, valueWord(*bad), n.op->name, name,
                 typeString(n.type));
  }
  return error("{}; replayed in the interpreter the step stays finite, so the JIT's rounding tipped it", stop);
}

// The state to return to when a loss turns out not finite: every snapshot
// interval, so that a replay from it to the failing step is short.
struct Snapshot {
  TensorMap params, state;
  std::string dropout, augment;
  int64_t step = 0;  // the step (within the epoch) it was taken before
};

}  // namespace

int runRun(const Options& o, std::ostream& out, std::ostream& err) {
  const auto t0 = std::chrono::steady_clock::now();
  auto l = loadFor(o, err);
  if (!l) return 1;
  const double parseMs = secondsSince(t0) * 1e3;
  auto fail = reporter(*l, err);
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
  const bool verbose = o.flag("verbose"), quiet = o.flag("quiet");
  auto setup = setupFrom(o, l->model.train);
  if (!setup) return fail(setup.error());
  const std::string metricsPath = o.value("metrics"), plotPath = o.value("plot");
  const std::string saveDir = o.value("save"), resumeDir = o.value("resume");
  if (!metricsPath.empty())
    if (auto st = checkMetricsPath(metricsPath); !st) return fail(st.error());
  if (!plotPath.empty())
    if (auto st = checkPlotPath(plotPath); !st) return fail(st.error());

  auto spec = dataSpecFrom(o, l->model.train);
  if (!spec) return fail(spec.error());
  auto data = loadData(*spec, setup->seed);
  if (!data) return fail(data.error());
  Dataset validation;
  if (setup->validation > 0) {
    auto v = splitValidation(data->train, setup->validation, setup->seed);
    if (!v) return fail(v.error());
    validation = v.take();
  }
  auto fit = fitData(l->model, *data);
  if (!fit) return fail(fit.error());
  const Dataset& train = data->train;
  const int64_t batch = fit->batch;

  auto t1 = std::chrono::steady_clock::now();
  auto step = buildTrainStep(g, l->model.train);
  if (!step) return fail(step.error());
  const double diffMs = secondsSince(t1) * 1e3;
  auto initial = initParams(g, setup->seed);
  if (!initial) return fail(initial.error());
  TensorMap params = initial.take(), state;
  const Graph& sg = step->grads.graph;
  for (auto [node, next] : step->state) {  // optimizer state starts from its initializer (zeros)
    auto v = initParam(sg.node(node), setup->seed);
    if (!v) return fail(v.error());
    state[sg.node(node).name] = v.take();
  }

  // Where training starts: from scratch, or where a checkpoint left off.
  Rng shuffle(setup->seed), augmentRng(setup->seed ^ 0x6175676d656e74ULL);
  setRandomSeed(setup->seed);  // dropout masks
  MetricsLog log;
  int64_t firstEpoch = 1, globalStep = 0;
  if (!resumeDir.empty()) {
    auto c = readCheckpoint(resumeDir);
    if (!c) return fail(c.error());
    if (c->model != g.name || c->optimizer != step->optimizer.kind)
      return fail(error("checkpoint '{}' is of model '{}' trained with {}, not '{}' with {}", resumeDir, c->model,
                        c->optimizer, g.name, step->optimizer.kind));
    for (auto* m : {&params, &state})
      for (auto& [name, t] : *m) {
        const auto& from = m == &params ? c->params : c->state;
        auto it = from.find(name);
        if (it == from.end())
          return fail(error("checkpoint '{}' has no value for '{}'", resumeDir, name));
        if (it->second.type.shape != t.type.shape)
          return fail(error("checkpoint '{}': '{}' is {}, but the model's is {}", resumeDir, name,
                            shapeString(it->second.type.shape), shapeString(t.type.shape)));
        t.data = it->second.data;
      }
    if (!shuffle.restore(c->rng["shuffle"]) || !augmentRng.restore(c->rng["augment"]) ||
        !restoreRandomState(c->rng["dropout"]))
      return fail(error("checkpoint '{}': its random generator states are malformed", resumeDir));
    firstEpoch = c->epoch + 1;
    globalStep = c->step;
    for (const MetricRow& r : c->metrics) log.add(r);
  }

  StepGraphs graphs{g, &*step, fit->scores, fit->trainScores, batch};
  graphs.metric = fit->metric;
  graphs.perSample = fit->perSample;
  std::unique_ptr<Stepper> stepper;
  if (verbose) out << fmt::format("parse + check {:.1f} ms, differentiate {:.1f} ms\n", parseMs, diffMs);
  if (backend == "jit") {
    auto j = jitStepper(graphs, params, state, JitSetup{*optLevel, *passes, o.flag("profile"), verbose ? &out : nullptr});
    if (!j) return fail(j.error());
    stepper = j.take();
  } else {
    stepper = interpStepper(graphs, params, state);
  }
  if (o.flag("profile")) {
    std::vector<int64_t> first(static_cast<size_t>(std::min(batch, train.count)));
    for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<int64_t>(i);
    if (static_cast<int64_t>(first.size()) < batch) return fail(error("--profile needs one batch of data"));
    Batch b;
    makeBatch(train, first, 0, batch, b);
    stepper->feed(b, true);
    if (auto st = stepper->trainStep(step->lrAt(0), setup->seed); !st) return fail(st.error());
    if (auto st = profileSteps(*stepper, 20, out); !st) return fail(st.error());
    return 0;
  }

  const int64_t samples = setup->limit ? std::min(setup->limit, train.count) : train.count;
  const int64_t steps = samples / batch;
  if (steps == 0) return fail(error("{} training samples make no batch of {}", samples, batch));
  int64_t epochs = setup->epochs;
  if (setup->iterations) epochs = (setup->iterations + steps - 1) / steps;
  const int64_t lastStep = setup->iterations ? setup->iterations : epochs * steps;
  out << fmt::format("training {} on {} ({} samples, batch {}, {} steps per epoch, optimizer {}, backend {}, {} "
                     "thread{})\n",
                     g.name, spec->path, steps * batch, batch, steps, step->optimizer.kind, backend, threadCount(),
                     threadCount() == 1 ? "" : "s");
  if (firstEpoch > epochs) {
    out << fmt::format("checkpoint '{}' is at epoch {}: nothing left to train\n", resumeDir, firstEpoch - 1);
    return 0;
  }
  if (firstEpoch > 1) out << fmt::format("resuming from '{}' after epoch {}\n", resumeDir, firstEpoch - 1);
  // A live bar on a terminal; plain step lines in logs and pipes.
  const bool live = !quiet && &out == &std::cout && ::isatty(STDOUT_FILENO);
  Progress progress(out, live);
  const bool augmenting = setup->augment.shift > 0 || setup->augment.hflip || setup->augment.binarize >= 0;
  if ((setup->augment.shift > 0 || setup->augment.hflip) && train.rows == 1)
    return fail(error("shift and hflip move pixels, but the data are {} features per sample, not images", train.cols));
  constexpr int64_t kSnapshotEvery = 100;
  std::vector<int64_t> order(static_cast<size_t>(train.count));
  Batch b;
  // Batch s of this epoch's order, augmented, fed to the train step.
  auto prepare = [&](int64_t s) {
    makeBatch(train, order, s * batch, batch, b);
    if (augmenting) augmentBatch(setup->augment, train, b.x.data(), batch, augmentRng);
    stepper->feed(b, true);
  };
  for (int64_t epoch = firstEpoch; epoch <= epochs && globalStep < lastStep; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
    order.resize(static_cast<size_t>(samples));
    if (setup->shuffle)
      for (size_t i = order.size(); i-- > 1;) std::swap(order[i], order[shuffle.below(i + 1)]);
    double lossSum = 0;
    int64_t right = 0, scored = 0, done = 0;
    Snapshot snap;
    for (int64_t s = 0; s < steps && globalStep < lastStep; ++s, ++globalStep, ++done) {
      if (s % kSnapshotEvery == 0) snap = {stepper->params(), stepper->state(), saveRandomState(), augmentRng.save(), s};
      prepare(s);
      const double lr = step->lrAt(globalStep);
      const uint64_t stepSeed = setup->seed + static_cast<uint64_t>(globalStep);
      auto loss = stepper->trainStep(lr, stepSeed);
      if (!loss) return fail(loss.error());
      if (!std::isfinite(*loss)) {
        progress.clear();
        // Back to the snapshot, forward to the failing step, then replay it.
        stepper->set(snap.params);
        stepper->set(snap.state);
        restoreRandomState(snap.dropout);
        augmentRng.restore(snap.augment);
        for (int64_t r = snap.step; r < s; ++r) {
          prepare(r);
          (void)stepper->trainStep(step->lrAt(globalStep - s + r), setup->seed + static_cast<uint64_t>(globalStep - s + r));
        }
        prepare(s);
        TensorMap before = params;
        for (const auto& [k, v] : stepper->params()) before[k] = v;
        return fail(firstNonFinite(graphs, before, stepper->state(), b, lr, stepSeed,
                                   fmt::format("the loss became {} at epoch {}, step {} (step {} of the run)", valueWord(*loss),
                                               epoch, s + 1, globalStep + 1)));
      }
      lossSum += *loss;
      if (const float* sc = stepper->trainScores()) {
        const int64_t k = train.classes;
        for (int64_t i = 0; i < batch; ++i, ++scored)
          right += std::max_element(sc + i * k, sc + i * k + k) - (sc + i * k) == static_cast<int64_t>(b.y[static_cast<size_t>(i)]);
      }
      const bool logNow = setup->logEvery && (s + 1) % setup->logEvery == 0;
      if (setup->logEvery == 0 || logNow || s + 1 == steps) log.add({epoch, globalStep + 1, "train", *loss});
      progress.update(epoch, epochs, s + 1, steps, lossSum / static_cast<double>(s + 1), secondsSince(start));
      if (logNow && !quiet && !live)
        out << fmt::format("  epoch {} step {}/{}: loss {:.4f}{}\n", epoch, s + 1, steps, *loss,
                           step->schedule.kind == "constant" ? "" : fmt::format(", lr {:.4g}", lr));
    }
    const double secs = secondsSince(start);
    progress.clear();
    const double trainLoss = lossSum / static_cast<double>(std::max<int64_t>(done, 1));
    const double trainAcc = scored ? static_cast<double>(right) / static_cast<double>(scored) : std::nan("");
    const double samplesPerSec = static_cast<double>(done * batch) / secs;
    log.add({epoch, globalStep, "train", kNoMetric, trainAcc, samplesPerSec});
    std::string line = fmt::format("epoch {}: train loss {:.4f}", epoch, trainLoss);
    if (scored) line += fmt::format(", train accuracy {:.4f}", trainAcc);
    auto score = [&](const Dataset& d, const char* split, int64_t limit) -> Status {
      if (d.count == 0) return ok();
      NNC_TRY(Score sc, evaluate(*stepper, *fit, d, limit));
      if (sc.seen == 0) {
        line += fmt::format(", no {} batch", split);
        return ok();
      }
      log.add({epoch, globalStep, split, sc.loss, sc.accuracy});
      if (fit->classify)
        line += fmt::format(", {} accuracy {:.4f} ({} samples)", split, sc.accuracy, sc.seen);
      else if (std::isnan(sc.accuracy))
        line += fmt::format(", {} loss {:.6g} ({} samples)", split, sc.loss, sc.seen);
      else
        line += fmt::format(", {} loss {:.6g}, accuracy {:.4f} ({} samples)", split, sc.loss, sc.accuracy, sc.seen);
      return ok();
    };
    // The training samples themselves in inference mode (no dropout), the
    // course notes' "train accuracy" in their overfitting experiments.
    if (setup->evalTrain)
      if (auto st = score(train, "train-set", samples); !st) return fail(st.error());
    if (auto st = score(validation, "validation", 0); !st) return fail(st.error());
    if (auto st = score(data->test, "test", setup->testLimit); !st) return fail(st.error());
    // Rewritten every epoch (atomically), so a stopped run keeps its curves.
    if (!metricsPath.empty())
      if (auto st = log.write(metricsPath); !st) return fail(st.error());
    if (!plotPath.empty())
      if (auto st = writePlot(plotPath, log); !st) return fail(st.error());
    if (!saveDir.empty()) {
      Checkpoint c{g.name, epoch, globalStep, setup->seed, step->optimizer.kind, params, stepper->state(), {}, log.rows()};
      for (const auto& [k, v] : stepper->params()) c.params[k] = v;
      c.rng = {{"shuffle", shuffle.save()}, {"augment", augmentRng.save()}, {"dropout", saveRandomState()}};
      if (auto st = writeCheckpoint(saveDir, c); !st) return fail(st.error());
    }
    out << fmt::format("{}, {:.0f} samples/s ({:.2f} s){}\n", line, samplesPerSec, secs,
                       saveDir.empty() ? "" : fmt::format(", saved to {}", saveDir));
  }
  if (fit->perSample != kNoValue && !data->test.labels.empty()) {
    auto report = perClassReport(*stepper, *fit, g.node(fit->perSample).name, train, samples, data->test,
                                 setup->testLimit, setup->flagQuantile, classNames(*spec, data->test));
    if (!report) return fail(report.error());
    out << *report;
  }
  return 0;
}

}  // namespace nnc::cli
