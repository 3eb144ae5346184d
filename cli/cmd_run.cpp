// nnc run: train a model from its train block and report loss and accuracy
// per epoch. The step (forward, backward, update) is one graph, run as one
// native call by the JIT (default) or by the reference interpreter
// (--backend interp). Optimizer state is carried from step to step like the
// params; the learning rate is fed per step from the train block's schedule.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <numbers>
#include <optional>

#include "base/hash.h"
#include "cli/commands.h"
#include "cli/frontend.h"
#include "cli/memory_need.h"
#include "cli/run_data.h"
#include "cli/run_parallel.h"
#include "cli/run_stepper.h"
#include "io/checkpoint.h"
#include "io/file_io.h"
#include "io/metrics.h"
#include "io/plot.h"
#include "io/progress.h"
#include "io/text_dataset.h"
#include "runtime/collective.h"
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
  // The train block's, checked by the elaborator with the same rules.
  NNC_TRY(const RunSettings t, runSettingsFrom(train));
  r.epochs = t.epochs, r.iterations = t.iterations, r.limit = t.limit, r.logEvery = t.logEvery;
  r.seed = t.seed;
  r.validation = t.validation, r.flagQuantile = t.flagQuantile;
  r.shuffle = t.shuffle, r.evalTrain = t.evalTrain;
  std::string augment = t.augment;
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
// interval, so that a replay from it to the failing step is short. The
// params and state are the stepper's to remember (Stepper::remember: the
// JIT keeps one f32 copy, not f64 tensors).
struct Snapshot {
  std::string dropout, augment;
  int64_t step = 0;  // the step (within the epoch) it was taken before
};

// ---- the steps of a run ----------------------------------------------

// The command line and the train block, checked before any data are read.
struct RunArgs {
  std::string backend;
  int optLevel = 3;
  PassOptions passes;
  bool verbose = false, quiet = false;
  RunSetup setup;
  std::string metricsPath, plotPath, saveDir, resumeDir;
  std::optional<Checkpoint> resumed;  // --resume's checkpoint, read and checked up front
};

bool sameFolder(const std::string& a, const std::string& b) {
  std::error_code ec;
  return a == b || std::filesystem::equivalent(a, b, ec);
}

// Every output is checked before any data are read or any epoch trained:
// a path that cannot be written would otherwise fail after the first epoch.
// --save into a folder holding a checkpoint would replace it (the previous
// pair is removed once a new one is written): only that checkpoint's own
// run (--resume DIR) or --overwrite may.
Status checkOutputs(const Options& o, const RunArgs& a) {
  if (!a.metricsPath.empty()) {
    NNC_CHECK(checkMetricsPath(a.metricsPath));
    NNC_CHECK(checkWritableFile(a.metricsPath, "--metrics"));
  }
  if (!a.plotPath.empty()) {
    NNC_CHECK(checkPlotPath(a.plotPath));
    NNC_CHECK(checkWritableFile(a.plotPath, "--plot"));
  }
  if (o.flag("overwrite") && a.saveDir.empty())
    return error("--overwrite is for --save DIR: it lets a run replace the checkpoint in DIR");
  if (a.saveDir.empty()) return ok();
  NNC_CHECK(checkWritableFolder(a.saveDir, "--save"));
  const bool itsOwn = !a.resumeDir.empty() && sameFolder(a.saveDir, a.resumeDir);
  if (!holdsCheckpoint(a.saveDir) || o.flag("overwrite") || itsOwn) return ok();
  std::string what = "a checkpoint";
  if (auto c = readCheckpoint(a.saveDir)) what = fmt::format("a checkpoint of '{}' after epoch {}", c->model, c->epoch);
  return error("--save {}: the folder holds {}, which this run would replace; give --resume {} to continue it, "
               "--overwrite to replace it, or another folder",
               a.saveDir, what, a.saveDir);
}

Expected<RunArgs> parseRunArgs(const Options& o, const Elaborated& model, std::ostream& out) {
  RunArgs a;
  a.backend = o.value("backend", "jit");
  if (a.backend != "interp" && a.backend != "jit")
    return error("--backend {}: the backends are 'jit' (native code) and 'interp' (the reference interpreter)",
                 a.backend);
  NNC_CHECK(applyThreads(o));
  NNC_TRY(a.optLevel, optLevelOption(o));
  NNC_TRY(a.passes, passOptions(o, &out));
  a.verbose = o.flag("verbose"), a.quiet = o.flag("quiet");
  NNC_TRY(a.setup, setupFrom(o, model.train));
  a.metricsPath = o.value("metrics"), a.plotPath = o.value("plot");
  a.saveDir = o.value("save"), a.resumeDir = o.value("resume");
  if (o.flag("resume") && a.resumeDir.empty())
    return error("--resume takes a checkpoint folder (nnc run --save DIR writes one)");
  if (o.flag("save") && a.saveDir.empty()) return error("--save takes a folder to write the checkpoint into");
  NNC_CHECK(checkOutputs(o, a));
  if (!a.resumeDir.empty()) {
    NNC_TRY(a.resumed, readCheckpoint(a.resumeDir));
    // The seed goes into every step (dropout, random ops) and the validation
    // split: the resumed run continues with the checkpoint's, and an
    // explicit other one is a different run.
    if (o.flag("seed") && a.setup.seed != a.resumed->seed)
      return error("--seed {}: checkpoint '{}' was trained with seed {}; a resumed run continues with it (leave "
                   "--seed out)",
                   a.setup.seed, a.resumeDir, a.resumed->seed);
    a.setup.seed = a.resumed->seed;
  }
  return a;
}

// The data: the splits, a validation split held out of the training
// samples, and how the model takes them.
struct RunData {
  DataSpec spec;
  DataSplits data;
  Dataset validation;
  DataFit fit;
  std::string vocab;  // text data: vocab.json's text, saved with checkpoints
};

// The model is fitted to them after (fitData): text data may first set its
// `vocab` and `context` (textModelParams).
Expected<RunData> loadRunData(const Options& o, const Elaborated& model, const RunSetup& setup) {
  RunData r;
  NNC_TRY(r.spec, dataSpecFrom(o, model.train));
  NNC_TRY(r.data, loadData(r.spec, setup.seed));
  if (setup.validation > 0) {
    NNC_TRY(r.validation, splitValidation(r.data.train, setup.validation, setup.seed));
  }
  return r;
}

// The loss in bits per token (/ ln 2), for text data; "" for others.
std::string bitsUnit(const RunData& d) {
  return d.data.vocab.empty() ? "" : d.data.unit == "byte" ? "bits/byte" : "bits/char";
}
std::string bitsText(const RunData& d, double loss) {
  if (d.data.vocab.empty()) return "";
  return fmt::format(" ({:.4f} {})", loss / std::numbers::ln2, bitsUnit(d));
}

// What advances from step to step, and is saved in a checkpoint.
struct TrainingState {
  TensorMap params, state;
  Rng shuffle, augmentRng;
  MetricsLog log;
  int64_t firstEpoch = 1, globalStep = 0;
};

// Params from their initializers, optimizer state from its (zeros).
Status initialValues(const Graph& g, const TrainStep& step, uint64_t seed, TrainingState& t) {
  NNC_TRY(t.params, initParams(g, seed));
  const Graph& sg = step.grads.graph;
  for (auto [node, next] : step.state) {
    NNC_TRY(Tensor v, initParam(sg.node(node), seed));
    t.state[sg.node(node).name] = std::move(v);
  }
  return ok();
}

// Where a checkpoint left off: its params, state, random generators,
// epoch, step and metrics.
Status resumeFrom(const std::string& resumeDir, Checkpoint& c, const Graph& g, const TrainStep& step,
                  const std::string& vocab, TrainingState& t) {
  if (c.model != g.name || c.optimizer != step.optimizer.kind)
    return error("checkpoint '{}' is of model '{}' trained with {}, not '{}' with {}", resumeDir, c.model, c.optimizer,
                 g.name, step.optimizer.kind);
  // Ids mean units of one vocabulary: the same text, or one with the same units.
  if (c.vocab != vocab)
    return error("checkpoint '{}' {}: its ids would mean other {}", resumeDir,
                 c.vocab.empty()  ? "was not trained on text, but these data are text"
                 : vocab.empty()  ? "was trained on text (it has a vocab.json), but these data are not text"
                                  : "has another vocabulary than this text (its vocab.json differs)",
                 vocab.empty() || c.vocab.empty() ? "things" : "characters");

  for (auto* m : {&t.params, &t.state})
    for (auto& [name, v] : *m) {
      const auto& from = m == &t.params ? c.params : c.state;
      auto it = from.find(name);
      if (it == from.end()) return error("checkpoint '{}' has no value for '{}'", resumeDir, name);
      if (it->second.type.shape != v.type.shape)
        return error("checkpoint '{}': '{}' is {}, but the model's is {}", resumeDir, name,
                     shapeString(it->second.type.shape), shapeString(v.type.shape));
      NNC_CHECK(requireFinite(it->second.data, v.type.shape,
                              fmt::format("{} '{}' in checkpoint '{}'", m == &t.params ? "param" : "state", name,
                                          resumeDir)));
      v.data = it->second.data;
    }
  if (!t.shuffle.restore(c.rng["shuffle"]) || !t.augmentRng.restore(c.rng["augment"]) ||
      !restoreRandomState(c.rng["dropout"]))
    return error("checkpoint '{}': its random generator states are malformed", resumeDir);
  t.firstEpoch = c.epoch + 1;
  t.globalStep = c.step;
  for (const MetricRow& r : c.metrics) t.log.add(r);
  return ok();
}

// --profile: one train step on the first batch, then 20 timed ones.
Status profileRun(Stepper& stepper, const Dataset& train, int64_t batch, const TrainStep& step, uint64_t seed,
                  std::ostream& out) {
  std::vector<int64_t> first(static_cast<size_t>(std::min(batch, train.count)));
  for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<int64_t>(i);
  if (static_cast<int64_t>(first.size()) < batch) return error("--profile needs one batch of data");
  Batch b;
  makeBatch(train, first, 0, batch, b);
  stepper.feed(b, true);
  NNC_CHECK(stepper.trainStep(step.lrAt(0), seed));
  return profileSteps(stepper, 20, out);
}

// The epoch loop: batches in a shuffled order, augmented and fed to the
// train step; after each epoch the scores, metrics, plot and checkpoint.
class Trainer {
 public:
  Trainer(std::ostream& out, const Graph& g, const RunArgs& args, const RunData& data, const TrainStep& step,
          const StepGraphs& graphs, Stepper& stepper, TrainingState& t, const Shard& shard)
      : out_(out), g_(g), a_(args), setup_(args.setup), d_(data), train_(data.data.train), step_(step),
        graphs_(graphs), stepper_(stepper), t_(t), shard_(shard), batch_(data.fit.batch), global_(shard.batch) {
    // Batchnorm's running statistics: each rank updates them from its own
    // rows; they are averaged over the ranks before each evaluation.
    const Graph& sg = step.grads.graph;
    for (auto [node, next] : step.updates)
      if (sg.node(node).attrs.i("trainable") == 0) runningStats_.push_back(sg.node(node).name);
  }

  // The run's shape (samples, steps, epochs), its first line, then every
  // epoch left; false when a checkpoint left nothing to train.
  Expected<bool> run(const std::string& backend);
  // The training samples each epoch uses (--limit).
  int64_t samples() const { return samples_; }

 private:
  void prepare(int64_t s);
  Status trainEpoch(int64_t epoch);
  Diagnostic replayNonFinite(int64_t epoch, int64_t s, double loss, double lr, uint64_t stepSeed);
  Status sumLoss(double& loss);
  Status scoreSplits(int64_t epoch, std::string& line);
  Status writeEpochFiles(int64_t epoch);

  std::ostream& out_;
  const Graph& g_;
  const RunArgs& a_;
  const RunSetup& setup_;
  const RunData& d_;
  const Dataset& train_;
  const TrainStep& step_;
  const StepGraphs& graphs_;
  Stepper& stepper_;
  TrainingState& t_;
  const Shard& shard_;
  // This rank's rows of each step's batch, and the global batch (the same
  // but for a data-parallel run).
  const int64_t batch_, global_;
  std::vector<std::string> runningStats_;
  int64_t samples_ = 0, steps_ = 0, epochs_ = 0, lastStep_ = 0;
  bool live_ = false, augmenting_ = false;
  std::optional<Progress> progress_;
  std::vector<int64_t> order_;
  Batch b_;
  // The state to return to when a loss turns out not finite, taken every
  // kSnapshotEvery steps, so that a replay from it to the failing step is short.
  static constexpr int64_t kSnapshotEvery = 100;
  Snapshot snap_;
};

Expected<bool> Trainer::run(const std::string& backend) {
  samples_ = setup_.limit ? std::min(setup_.limit, train_.count) : train_.count;
  steps_ = samples_ / global_;
  if (steps_ == 0) return error("{} training samples make no batch of {}", samples_, global_);
  // The epochs and the step to stop before, counted on from where a
  // checkpoint left off: --epochs N trains epochs up to N, each of steps_
  // steps (whatever --limit the checkpoint's run had); --iterations N stops
  // after N steps in all, the checkpoint's included.
  epochs_ = setup_.epochs;
  int64_t left = 0;
  if (setup_.iterations) {
    left = setup_.iterations - t_.globalStep;
    epochs_ = t_.firstEpoch - 1 + (std::max<int64_t>(left, 0) + steps_ - 1) / steps_;
    lastStep_ = setup_.iterations;
  } else {
    left = (epochs_ - t_.firstEpoch + 1) * steps_;
    lastStep_ = t_.globalStep + std::max<int64_t>(left, 0);
  }
  // Whole batches only (PyTorch's drop_last=True): the header says how many
  // samples each epoch leaves out (others each epoch when shuffled).
  const int64_t dropped = samples_ - steps_ * global_;
  const std::string leftOut =
      dropped == 0 ? ""
                : fmt::format(" of {}: {} left out of each epoch, a partial batch{}", samples_, dropped,
                              setup_.shuffle ? " (other samples each epoch: shuffled)" : "");
  out_ << fmt::format("training {} on {} ({} samples{}, batch {}, {} steps per epoch, optimizer {}, backend {}, {} "
                      "thread{})\n",
                      g_.name, d_.spec.path, steps_ * global_, leftOut, global_, steps_, step_.optimizer.kind, backend,
                      threadCount(), threadCount() == 1 ? "" : "s");
  if (shard_.ranks > 1)
    out_ << fmt::format("data-parallel over {} processes: {} rows of each batch per process{}, gradients summed in {} "
                        "bucket{}\n",
                        shard_.ranks, global_ / shard_.ranks,
                        global_ % shard_.ranks ? fmt::format(" (the first {} one more)", global_ % shard_.ranks) : "",
                        step_.buckets, step_.buckets == 1 ? "" : "s");
  if (!d_.data.readNote.empty()) out_ << fmt::format("text: {}\n", d_.data.readNote);
  if (left <= 0) {
    if (setup_.iterations)
      out_ << fmt::format("checkpoint '{}' is at step {}: nothing left to train (--iterations {} counts the "
                          "checkpoint's steps)\n",
                          a_.resumeDir, t_.globalStep, setup_.iterations);
    else
      out_ << fmt::format("checkpoint '{}' is at epoch {}: nothing left to train (--epochs N counts the checkpoint's "
                          "epochs)\n",
                          a_.resumeDir, t_.firstEpoch - 1);
    return false;
  }
  if (t_.firstEpoch > 1)
    out_ << fmt::format("resuming from '{}' after epoch {} (step {})\n", a_.resumeDir, t_.firstEpoch - 1,
                        t_.globalStep);
  // A live bar on a terminal; plain step lines in logs and pipes.
  live_ = !a_.quiet && &out_ == &std::cout && ::isatty(STDOUT_FILENO);
  progress_.emplace(out_, live_);
  augmenting_ = setup_.augment.shift > 0 || setup_.augment.hflip || setup_.augment.binarize >= 0;
  if ((setup_.augment.shift > 0 || setup_.augment.hflip) && train_.rows == 1)
    return error("shift and hflip move pixels, but the data are {} features per sample, not images", train_.cols);
  order_.resize(static_cast<size_t>(train_.count));
  for (int64_t epoch = t_.firstEpoch; epoch <= epochs_ && t_.globalStep < lastStep_; ++epoch)
    NNC_CHECK(trainEpoch(epoch));
  return true;
}

// Batch s of this epoch's order, augmented, fed to the train step.
void Trainer::prepare(int64_t s) {
  makeBatch(train_, order_, s * global_ + shard_.first, batch_, b_);
  if (augmenting_) augmentBatch(setup_.augment, train_, b_.x.data(), batch_, t_.augmentRng);
  stepper_.feed(b_, true);
}

Status Trainer::trainEpoch(int64_t epoch) {
  const auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<int64_t>(i);
  order_.resize(static_cast<size_t>(samples_));
  if (setup_.shuffle)
    for (size_t i = order_.size(); i-- > 1;) std::swap(order_[i], order_[t_.shuffle.below(i + 1)]);
  double lossSum = 0, stepSecs = 0;
  int64_t right = 0, scored = 0, done = 0;
  (void)nnc_collectives_wait_seconds();
  for (int64_t s = 0; s < steps_ && t_.globalStep < lastStep_; ++s, ++t_.globalStep, ++done) {
    if (s % kSnapshotEvery == 0) {
      stepper_.remember();
      snap_ = {saveRandomState(), t_.augmentRng.save(), s};
    }
    prepare(s);
    const double lr = step_.lrAt(t_.globalStep);
    const uint64_t stepSeed = rankSeed(setup_.seed + static_cast<uint64_t>(t_.globalStep), shard_.rank);
    const auto t0 = std::chrono::steady_clock::now();
    NNC_TRY(double loss, stepper_.trainStep(lr, stepSeed));
    stepSecs += secondsSince(t0);
    NNC_CHECK(sumLoss(loss));
    if (!std::isfinite(loss)) return replayNonFinite(epoch, s, loss, lr, stepSeed);
    lossSum += loss;
    if (const float* sc = stepper_.trainScores()) {
      const int64_t k = train_.classes;
      for (int64_t i = 0; i < batch_; ++i, ++scored)
        right += std::max_element(sc + i * k, sc + i * k + k) - (sc + i * k) == static_cast<int64_t>(b_.y[static_cast<size_t>(i)]);
    }
    const bool logNow = setup_.logEvery && (s + 1) % setup_.logEvery == 0;
    if (setup_.logEvery == 0 || logNow || s + 1 == steps_) t_.log.add({epoch, t_.globalStep + 1, "train", loss});
    progress_->update(epoch, epochs_, s + 1, steps_, lossSum / static_cast<double>(s + 1), secondsSince(start));
    if (logNow && !a_.quiet && !live_)
      out_ << fmt::format("  epoch {} step {}/{}: loss {:.4f}{}\n", epoch, s + 1, steps_, loss,
                          step_.schedule.kind == "constant" ? "" : fmt::format(", lr {:.4g}", lr));
  }
  const double secs = secondsSince(start), waited = nnc_collectives_wait_seconds();
  progress_->clear();
  if (shard_.ranks > 1) {
    std::vector<double> v = {static_cast<double>(right), static_cast<double>(scored)};
    NNC_CHECK(dist::sumAcross(v));
    right = static_cast<int64_t>(v[0]), scored = static_cast<int64_t>(v[1]);
    NNC_CHECK(averageAcross(stepper_, runningStats_, shard_.share()));
  }
  const double trainLoss = lossSum / static_cast<double>(std::max<int64_t>(done, 1));
  const double trainAcc = scored ? static_cast<double>(right) / static_cast<double>(scored) : std::nan("");
  const double samplesPerSec = static_cast<double>(done * global_) / secs;
  t_.log.add({epoch, t_.globalStep, "train", kNoMetric, trainAcc, samplesPerSec});
  std::string line = fmt::format("epoch {}: train loss {:.4f}{}", epoch, trainLoss, bitsText(d_, trainLoss));
  if (scored) line += fmt::format(", train accuracy {:.4f}", trainAcc);
  NNC_CHECK(scoreSplits(epoch, line));
  NNC_CHECK(writeEpochFiles(epoch));
  std::string waits;
  if (shard_.ranks > 1)
    waits = fmt::format(", waiting on the all-reduce {:.2f} ms per step ({:.1f}% of the step)",
                        1e3 * waited / static_cast<double>(std::max<int64_t>(done, 1)), 100 * waited / stepSecs);
  out_ << fmt::format("{}, {:.0f} samples/s ({:.2f} s){}{}\n", line, samplesPerSec, secs, waits,
                      a_.saveDir.empty() ? "" : fmt::format(", saved to {}", a_.saveDir));
  return ok();
}

// A data-parallel step's loss: each rank's is its rows' share of the global
// batch's mean, so their sum is the global loss. A failed all-reduce
// (another rank gone, a timeout) stops the run here.
Status Trainer::sumLoss(double& loss) {
  if (shard_.ranks == 1) return ok();
  if (nnc_collectives_failed()) return error("{}", dist::lastFailure());
  std::vector<double> v = {loss};
  NNC_CHECK(dist::sumAcross(v));
  loss = v[0];
  return ok();
}

// Back to the snapshot, forward to the failing step s, then replay it in
// the interpreter to name the op.
Diagnostic Trainer::replayNonFinite(int64_t epoch, int64_t s, double loss, double lr, uint64_t stepSeed) {
  progress_->clear();
  stepper_.rewind();
  restoreRandomState(snap_.dropout);
  t_.augmentRng.restore(snap_.augment);
  for (int64_t r = snap_.step; r < s; ++r) {
    prepare(r);
    (void)stepper_.trainStep(step_.lrAt(t_.globalStep - s + r),
                             rankSeed(setup_.seed + static_cast<uint64_t>(t_.globalStep - s + r), shard_.rank));
  }
  prepare(s);
  TensorMap before = t_.params;
  for (const auto& [k, v] : stepper_.params()) before[k] = v;
  return firstNonFinite(graphs_, before, stepper_.state(), b_, lr, stepSeed,
                        fmt::format("the loss became {} at epoch {}, step {} (step {} of the run)", valueWord(loss), epoch,
                                    s + 1, t_.globalStep + 1));
}

// The epoch's scores on the train set (--eval-train), the validation and
// the test split, logged and added to the epoch's line.
Status Trainer::scoreSplits(int64_t epoch, std::string& line) {
  const DataFit& fit = d_.fit;
  auto score = [&](const Dataset& d, const char* split, int64_t limit) -> Status {
    if (d.count == 0) return ok();
    NNC_TRY(Score sc, evaluate(stepper_, fit, d, limit, shard_.rank, shard_.ranks));
    NNC_CHECK(sumScores(sc, fit));
    if (sc.seen == 0) {
      line += fmt::format(", no {} batch", split);
      return ok();
    }
    t_.log.add({epoch, t_.globalStep, split, sc.loss, sc.accuracy});
    if (fit.classify)
      line += fmt::format(", {} accuracy {:.4f} ({} samples)", split, sc.accuracy, sc.seen);
    else if (std::isnan(sc.accuracy))
      line += fmt::format(", {} loss {:.6g}{} ({} samples)", split, sc.loss, bitsText(d_, sc.loss), sc.seen);
    else
      line += fmt::format(", {} loss {:.6g}, accuracy {:.4f} ({} samples)", split, sc.loss, sc.accuracy, sc.seen);
    return ok();
  };
  // The training samples themselves in inference mode (no dropout), the
  // course notes' "train accuracy" in their overfitting experiments.
  if (setup_.evalTrain) NNC_CHECK(score(train_, "train-set", samples_));
  NNC_CHECK(score(d_.validation, "validation", 0));
  return score(d_.data.test, "test", setup_.testLimit);
}

// Rewritten every epoch (atomically), so a stopped run keeps its curves
// and can resume.
Status Trainer::writeEpochFiles(int64_t epoch) {
  if (shard_.rank != 0) return ok();  // the ranks hold the same params: rank 0 writes
  if (!a_.metricsPath.empty()) NNC_CHECK(t_.log.write(a_.metricsPath));
  if (!a_.plotPath.empty()) NNC_CHECK(writePlot(a_.plotPath, t_.log, bitsUnit(d_)));
  if (!a_.saveDir.empty()) {
    Checkpoint c{g_.name, epoch, t_.globalStep, setup_.seed, step_.optimizer.kind, t_.params, stepper_.state(), {}, t_.log.rows()};
    for (const auto& [k, v] : stepper_.params()) c.params[k] = v;
    c.rng = {{"shuffle", t_.shuffle.save()}, {"augment", t_.augmentRng.save()}, {"dropout", saveRandomState()}};
    c.vocab = d_.vocab;
    NNC_CHECK(writeCheckpoint(a_.saveDir, c));
  }
  return ok();
}

// Refuses a run whose memory (the compiler's plan for the programs this run
// compiles, the host copies, the data set loaded) exceeds what is available:
// the limit given by --memory-limit, else what was available when the run
// started (`avail`, read before the data were loaded). Before any param or
// arena is allocated.
Status checkMemory(const Options& o, const std::optional<MemoryLimit>& avail, const Graph& g, const TrainStep& step,
                   const StepGraphs& graphs, const RunArgs& args, const RunData& data) {
  std::optional<MemoryLimit> limit = avail;
  if (o.flag("memory-limit")) {
    NNC_TRY(std::optional<int64_t> given, parseMemorySize(o.value("memory-limit")));
    if (!given) return ok();
    limit = MemoryLimit{*given, "--memory-limit"};
  }
  if (!limit) return ok();  // nothing says how much there is (no /proc/meminfo)
  const Graph& sg = step.grads.graph;
  std::vector<ValueId> trainTargets = {sg.loss}, inferTargets;
  if (graphs.trainScores != kNoValue) trainTargets.push_back(graphs.trainScores);
  for (ValueId v : {graphs.scores, g.loss, graphs.metric, graphs.perSample})
    if (v != kNoValue) inferTargets.push_back(v);
  NNC_TRY(MemoryNeed m, memoryNeed(g, &step, args.passes, kNoValue, trainTargets, inferTargets));
  int64_t dataBytes = 0;
  for (const Dataset* d : {&data.data.train, &data.data.test, &data.validation})
    dataBytes += static_cast<int64_t>(4 * (d->images.capacity() + d->labels.capacity() + d->targets.capacity()));
  const bool jit = args.backend == "jit";
  const int64_t model = jit ? m.trainBytes() : m.interpBytes, need = model + dataBytes;
  if (need <= limit->bytes) return ok();
  std::string parts =
      jit ? fmt::format("params {}, optimizer state {} (both inside the train-step arena of {}), inference arena {}, "
                        "host copy of params and state {}, host batches {}",
                        humanBytes(4 * m.paramFloats), humanBytes(4 * m.stateFloats), humanBytes(4 * m.trainArenaFloats),
                        humanBytes(4 * m.inferArenaFloats), humanBytes(4 * m.hostCopyFloats),
                        humanBytes(8 * m.batchFloats))
          : fmt::format("the interpreter's f64 values of a step and copies of params {} and optimizer state {}",
                        humanBytes(8 * m.paramFloats), humanBytes(8 * m.stateFloats));
  return error(
      "model '{}' needs {} ({} bytes) to train with --backend {}, more than the {} ({} bytes) available ({}): {}, the "
      "data set {}; a smaller batch or model fits in less, and --memory-limit SIZE (or 'off') overrides the check",
      g.name, humanBytes(need), groupThousands(need), args.backend, humanBytes(limit->bytes),
      groupThousands(limit->bytes), limit->source, parts, humanBytes(dataBytes));
}

// --warmup N and --clip-grad-norm C replace the train block's settings,
// checked by the same rules (the train step reads them from the block).
Status applyStepOptions(const Options& o, const Graph& g, std::optional<TrainConfig>& train) {
  if (!o.flag("warmup") && !o.flag("clip-grad-norm")) return ok();
  if (!train) train = TrainConfig{g.name, {}, {}};
  if (o.flag("warmup")) {
    NNC_TRY(const int64_t n, countOption(o, "warmup", 0, false));
    train->settings["warmup"] = TrainValue{"int", static_cast<double>(n), "", {}, {}, {}};
  }
  if (o.flag("clip-grad-norm")) {
    const std::string v = o.value("clip-grad-norm");
    char* end = nullptr;
    const double c = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !(c > 0) || !std::isfinite(c))
      return error("--clip-grad-norm takes the largest gradient norm, a positive number, got '{}'", v);
    train->settings["clip_grad_norm"] = TrainValue{"float", c, "", {}, {}, {}};
  }
  return checkTrainSettings(*train);
}

// ---- data-parallel runs (docs/distributed.md) ------------------------

// What every rank must share with rank 0 before any step: the data (shapes
// and values) and the training (the train step's graph at the global batch,
// the schedule, the run's options). Refused in words otherwise: a rank with
// another file would train another model, or wait for sums that never come.
Status checkRanks(const dist::World& w, const Loaded& l, const RunArgs& a, const RunData& d) {
  const Graph& g = l.model.graph;
  if (d.fit.batch < w.size)
    return error("model '{}' has a batch of {}, fewer rows than the {} processes to share each batch", g.name,
                 d.fit.batch, w.size);
  if (!l.model.param("batch"))
    return error(g.node(g.inputs[0]).loc,
                 "model '{}' has no `batch` parameter: a data-parallel run compiles each process's step at its share "
                 "of the batch; declare the model as `model {}(batch = {})` and write `batch` in its input's shape",
                 g.name, g.name, d.fit.batch);
  NNC_CHECK(dist::checkSame("the data (their shapes and values)", dataHash(d.data)));
  NNC_TRY(TrainStep step, buildTrainStep(g, l.model.train));
  const RunSetup& r = a.setup;
  std::string text = printGraph(step.grads.graph);
  text += fmt::format("|{} {} {} {} {} {} {} {}|", r.epochs, r.iterations, r.limit, r.testLimit, r.seed, r.shuffle,
                      r.validation, r.evalTrain);
  for (int64_t k : {0, 1, 10, 100, 1000, 10000}) text += fmt::format("{} ", step.lrAt(k));
  text += a.resumeDir.empty() ? "" : fmt::format("resume {} {}", a.resumed->epoch, a.resumed->step);
  return dist::checkSame("the model and its training (the train step's graph at the global batch, the learning-rate "
                         "schedule, the run's options)",
                         fnv1a(text));
}

// The model again at this rank's rows of each batch (its `batch`
// parameter), with text data's vocabulary and context as before.
Status fitToShard(const Options& o, Loaded& l, RunData& d, const Shard& shard, std::ostream& err) {
  NNC_TRY(ElaborateOptions eo, elaborateOptions(o));
  if (!d.data.vocab.empty())
    eo.defaults = {{"vocab", static_cast<int64_t>(d.data.vocab.size())}, {"context", d.data.train.cols}};
  eo.overrides["batch"] = shard.rows;
  auto local = load(o.file, eo, err);
  if (!local) return error("model '{}' at batch {} (this process's rows of each batch) does not compile",
                           l.model.graph.name, shard.rows);
  NNC_TRY(DataFit fit, fitData(local->model, d.data));
  if (fit.batch != shard.rows)
    return error("model '{}' at --set batch={} takes batches of {}: its `batch` parameter must be its input's "
                 "leading axis for a data-parallel run",
                 l.model.graph.name, shard.rows, fit.batch);
  local->model.train = l.model.train;  // with --warmup and --clip-grad-norm applied
  l = std::move(*local);
  d.fit = fit;
  return ok();
}

// Every rank starts from the same params (the same seeded initializers,
// or the same checkpoint): checked, not assumed.
Status checkSameParams(Stepper& s, const TensorMap& kept) {
  TensorMap all = kept;
  for (auto& [k, v] : s.params()) all[k] = std::move(v);
  return dist::checkSame("the initial params", paramsHash(all));
}

Status refuseSingleProcessOptions(const Options& o, const RunArgs& a) {
  if (a.backend != "jit")
    return error("--backend {}: the reference interpreter runs one process; a data-parallel run (mpirun) uses the "
                 "JIT",
                 a.backend);
  if (o.flag("profile")) return error("--profile times one process's kernels: run it without mpirun");
  return ok();
}

int runOnRank(const Options& o, std::ostream& out, std::ostream& err, const dist::World& w);

}  // namespace

// Under mpirun, every process runs the same command, on its rank's rows of
// each batch (runOnRank); alone, a world of one, where nothing is shared.
int runRun(const Options& o, std::ostream& out, std::ostream& err) {
  auto w = dist::start();
  if (!w) {
    err << "nnc: " << w.error().message << "\n";
    return 1;
  }
  int rc = 0;
  {
    RankStreams streams(*w, out, err);
    rc = runOnRank(o, streams.out(), streams.err(), *w);
  }
  // A failed rank leaves MPI up: mpirun sees its exit code and stops the
  // others (they may be waiting for it in a collective).
  if (rc == 0) dist::stop();
  return rc;
}

namespace {

// Options → data → train step and initial values (or a checkpoint's) →
// the step backend → the epochs → the per-class report.
int runOnRank(const Options& o, std::ostream& out, std::ostream& err, const dist::World& w) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::optional<MemoryLimit> avail = availableMemory();  // before the data take theirs
  auto l = loadFor(o, err);
  if (!l) return 1;
  const double parseMs = secondsSince(t0) * 1e3;
  auto fail = reporter(*l, err);
  const Graph& g = l->model.graph;
  auto args = parseRunArgs(o, l->model, out);
  if (!args) return fail(args.error());
  if (auto st = applyStepOptions(o, g, l->model.train); !st) return fail(st.error());
  if (w.distributed()) {
    if (auto st = refuseSingleProcessOptions(o, *args); !st) return fail(st.error());
    // Without --threads, the ranks on one machine share its cores: mpirun
    // binds each to its own (the affinity holds one), or, oversubscribed,
    // leaves all of them to all ranks.
    if (!o.flag("threads")) {
      const int cores = coresAllowed();
      setThreadCount(cores >= machineCores() ? std::max(1, cores / w.localSize) : cores);
    }
  }
  const RunSetup& setup = args->setup;
  auto data = loadRunData(o, l->model, setup);
  if (!data) return fail(data.error());
  if (!fitModelToText(o, data->data, *l, err)) return 1;
  auto fitted = fitData(l->model, data->data);
  if (!fitted) return fail(fitted.error());
  data->fit = fitted.take();
  if (!data->data.vocab.empty()) data->vocab = vocabJson(data->data.unit, data->data.vocab);
  const Shard shard = shardOf(data->fit.batch, w);
  DataParallel parallel{w.size, shard.share(), 0};
  if (w.distributed()) {
    if (auto st = checkRanks(w, *l, *args, *data); !st) return fail(st.error());
    if (auto st = fitToShard(o, *l, *data, shard, err); !st) return fail(st.error());
    auto bytes = bucketBytesOption(o);
    if (!bytes) return fail(bytes.error());
    parallel.bucketBytes = *bytes;
  }
  const DataFit& fit = data->fit;

  auto t1 = std::chrono::steady_clock::now();
  auto step = buildTrainStep(g, l->model.train, w.distributed() ? &parallel : nullptr);
  if (!step && g.loss == kNoValue && !l->imported.file.empty())
    return fail(error("{}: an ONNX model holds no loss; `nnc import {} -o MODEL.nn --loss softmax_cross_entropy` (or "
                      "another loss) writes one that nnc run trains",
                      o.file, o.file));
  if (!step) return fail(step.error());
  const double diffMs = secondsSince(t1) * 1e3;
  StepGraphs graphs{g, &*step, fit.scores, fit.trainScores, fit.batch};
  graphs.metric = fit.metric;
  graphs.perSample = fit.perSample;
  if (auto st = checkMemory(o, avail, g, *step, graphs, *args, *data); !st) return fail(st.error());
  TrainingState t{{}, {}, Rng(setup.seed), Rng(setup.seed ^ 0x6175676d656e74ULL), {}};
  // The JIT from scratch initializes each param straight into its arena
  // (initStepperValues, below): no f64 copy of all params is ever made.
  const bool streamInit = args->backend == "jit" && args->resumeDir.empty();
  if (!streamInit)
    if (auto st = initialValues(g, *step, setup.seed, t); !st) return fail(st.error());
  // Where training starts: from scratch, or where a checkpoint left off.
  setRandomSeed(setup.seed);  // dropout masks
  if (!args->resumeDir.empty())
    if (auto st = resumeFrom(args->resumeDir, *args->resumed, g, *step, data->vocab, t); !st) return fail(st.error());
  if (w.rank > 0) {
    // Masks and augmentations of a rank's own, drawn from rank 0's streams
    // (which checkpoints keep), so a resumed run with any N derives them again.
    setRandomSeed(rankSeed(fnv1a(saveRandomState()), w.rank));
    t.augmentRng = Rng(rankSeed(t.augmentRng.next(), w.rank));
  }

  std::unique_ptr<Stepper> stepper;
  const Resident before = residentMemory();
  if (args->verbose) out << fmt::format("parse + check {:.1f} ms, differentiate {:.1f} ms\n", parseMs, diffMs);
  if (args->backend == "jit") {
    auto j = jitStepper(graphs, t.params, t.state,
                        JitSetup{args->optLevel, args->passes, o.flag("profile"), args->verbose ? &out : nullptr});
    if (!j) return fail(j.error());
    stepper = j.take();
    // Host copies of what the arena now holds are dropped; kept are only
    // values it does not (a frozen param), for checkpoints.
    if (streamInit) {
      if (auto st = initStepperValues(*stepper, g, *step, setup.seed, t.params, t.state); !st) return fail(st.error());
    } else {
      dropHeld(*stepper, t.params, t.state);
    }
  } else {
    stepper = interpStepper(graphs, t.params, t.state);
  }
  if (args->verbose) {
    // What compiling took (LLVM's working memory and the code; the arenas'
    // pages count only once written: the params here, the rest by the first step).
    const Resident after = residentMemory();
    out << fmt::format("memory: resident {} with the data read, {} with both programs compiled and the params set "
                       "(peak {})\n",
                       humanBytes(before.now), humanBytes(after.now), humanBytes(after.peak));
  }
  if (w.distributed())
    if (auto st = checkSameParams(*stepper, t.params); !st) return fail(st.error());
  if (o.flag("profile")) {
    if (auto st = profileRun(*stepper, data->data.train, fit.batch, *step, setup.seed, out); !st) return fail(st.error());
    return 0;
  }

  Trainer trainer(out, g, *args, *data, *step, graphs, *stepper, t, shard);
  auto trained = trainer.run(args->backend);
  if (!trained) return fail(trained.error());
  if (!*trained) return 0;
  if (fit.perSample != kNoValue && !data->data.test.labels.empty() && w.rank == 0) {
    auto report = perClassReport(*stepper, fit, g.node(fit.perSample).name, data->data.train, trainer.samples(),
                                 data->data.test, setup.testLimit, setup.flagQuantile,
                                 classNames(data->spec, data->data.test));
    if (!report) return fail(report.error());
    out << *report;
  }
  return 0;
}

}  // namespace

}  // namespace nnc::cli
