#include "cli/run_stepper.h"

#include <algorithm>
#include <cmath>
#include <ostream>

#include "compiler/jit/compiled.h"

namespace nnc::cli {
namespace {

std::vector<ValueId> present(std::initializer_list<ValueId> ids) {
  std::vector<ValueId> out;
  for (ValueId v : ids)
    if (v != kNoValue) out.push_back(v);
  return out;
}

// Forward, backward and update in f32, as the JIT computes them, node by node.
class InterpStepper : public Stepper {
 public:
  InterpStepper(const StepGraphs& s, TensorMap params, TensorMap state)
      : s_(s), params_(std::move(params)), state_(std::move(state)), x_(s.g.type(s.g.inputs[0])) {
    if (!s.g.labels.empty()) t_ = Tensor(s.g.type(s.g.labels[0]));
    const Graph& sg = s.step->grads.graph;
    targets_ = present({sg.loss, s.trainScores});
    for (auto [_, next] : s.step->updates) targets_.push_back(next);
    for (auto [_, next] : s.step->state) targets_.push_back(next);
  }

  void feed(const Batch& b, bool) override {
    std::copy(b.x.begin(), b.x.end(), x_.data.begin());
    if (!s_.g.labels.empty()) std::copy_n(b.y.begin(), t_.data.size(), t_.data.begin());
  }

  Expected<double> trainStep(double lr, uint64_t seed) override {
    const Graph& g = s_.g;
    const Graph& sg = s_.step->grads.graph;
    TensorMap feeds = inputs();
    for (const auto& [name, v] : state_) feeds[name] = v;
    feeds[sg.node(s_.step->lr).name] = Tensor(sg.type(s_.step->lr), {lr});
    NNC_TRY(auto vals, interpret(sg, feeds, EvalOptions{false, true, seed}, targets_));
    for (auto [param, next] : s_.step->updates)
      params_[g.node(param).name].data = std::move(vals[static_cast<size_t>(next)].data);
    for (auto [node, next] : s_.step->state)
      state_[sg.node(node).name].data = std::move(vals[static_cast<size_t>(next)].data);
    if (s_.trainScores != kNoValue) {
      const auto& sc = vals[static_cast<size_t>(s_.trainScores)].data;
      trainScores_.assign(sc.begin(), sc.end());
    }
    return vals[static_cast<size_t>(sg.loss)].data[0];
  }

  const float* trainScores() override { return trainScores_.empty() ? nullptr : trainScores_.data(); }

  Expected<Scored> infer() override {
    NNC_TRY(auto vals, interpret(s_.g, inputs(), EvalOptions{false, false, 0},
                                 present({s_.scores, s_.g.loss, s_.metric, s_.perSample})));
    Scored r;
    if (s_.scores != kNoValue) {
      const Tensor& sc = vals[static_cast<size_t>(s_.scores)];
      scores_.assign(sc.data.begin(), sc.data.end());
      r.scores = scores_.data();
    }
    if (s_.metric != kNoValue) r.metric = vals[static_cast<size_t>(s_.metric)].data[0];
    if (s_.perSample != kNoValue) {
      const Tensor& ps = vals[static_cast<size_t>(s_.perSample)];
      perSample_.assign(ps.data.begin(), ps.data.end());
      r.perSample = perSample_.data();
    }
    r.loss = s_.g.loss != kNoValue ? vals[static_cast<size_t>(s_.g.loss)].data[0] : std::nan("");
    return r;
  }

  TensorMap params() override { return params_; }
  TensorMap state() override { return state_; }
  void set(const TensorMap& values) override {
    for (const auto& [name, t] : values) {
      if (auto p = params_.find(name); p != params_.end()) p->second.data = t.data;
      if (auto st = state_.find(name); st != state_.end()) st->second.data = t.data;
    }
  }
  bool holds(const std::string& name) const override { return params_.count(name) || state_.count(name); }
  void remember() override { saved_ = {params_, state_}; }
  void rewind() override {
    params_ = saved_.first;
    state_ = saved_.second;
  }

 private:
  TensorMap inputs() const {
    TensorMap feeds = params_;
    feeds[s_.g.node(s_.g.inputs[0]).name] = x_;
    if (!s_.g.labels.empty()) feeds[s_.g.node(s_.g.labels[0]).name] = t_;
    return feeds;
  }

  const StepGraphs& s_;
  TensorMap params_, state_;
  Tensor x_, t_;
  std::vector<ValueId> targets_;
  std::vector<float> scores_, trainScores_, perSample_;
  std::pair<TensorMap, TensorMap> saved_;
};

// The train step and inference as two compiled programs, each one native
// call. Params live in the train program's arena; inference gets a copy
// whenever training has changed them.
class JitStepper : public Stepper {
 public:
  explicit JitStepper(const StepGraphs& s) : s_(s) {}

  Status compile(const TensorMap& params, const TensorMap& state, const JitSetup& setup) {
    const Graph& sg = s_.step ? s_.step->grads.graph : s_.g;
    jit::CompileOptions co;
    co.optLevel = setup.optLevel;
    co.passes = setup.passes;
    co.profile = setup.profile;
    if (s_.step) {
      co.entry = "train_step";
      NNC_TRY(train_, jit::CompiledProgram::create(sg, present({sg.loss, s_.trainScores}), s_.step->lowering(), co));
    }
    co.entry = "infer";
    NNC_TRY(infer_, jit::CompiledProgram::create(
                        s_.g, present({s_.scores, s_.inferLoss ? s_.g.loss : kNoValue, s_.metric, s_.perSample}),
                        LowerOptions{}, co));
    set(params);
    set(state);
    if (setup.verbose && train_) {
      auto line = [&](const char* what, const jit::CompiledProgram& p) {
        const jit::CompileTimes& t = p.times();
        *setup.verbose << fmt::format(
            "  {:<10} {:3} kernels ({} compiled), arena {:.1f} MiB: passes {:.1f} ms, lower {:.1f} ms, LLVM IR {:.1f} ms, JIT setup "
            "{:.1f} ms, optimize + codegen {:.1f} ms, link {:.1f} ms; total {:.1f} ms\n",
            what, p.program().kernels.size(), t.kernelsCompiled, static_cast<double>(p.arenaBytes()) / (1 << 20), t.passesMs, t.lowerMs,
            t.irMs, t.engineMs, t.optimizeMs, t.codegenMs, t.totalMs);
      };
      line("train_step", *train_);
      line("infer", *infer_);
    }
    return ok();
  }

  void feed(const Batch& b, bool training) override {
    jit::CompiledProgram& p = training ? *train_ : *infer_;
    if (float* x = p.data(s_.g.inputs[0])) std::copy(b.x.begin(), b.x.end(), x);
    if (s_.g.labels.empty()) return;
    if (float* t = p.data(s_.g.labels[0])) std::copy_n(b.y.begin(), p.size(s_.g.labels[0]), t);
  }

  Expected<double> trainStep(double lr, uint64_t) override {
    train_->data(s_.step->lr)[0] = static_cast<float>(lr);
    train_->run();
    dirty_ = true;
    return static_cast<double>(train_->data(s_.step->grads.graph.loss)[0]);
  }

  const float* trainScores() override {
    return s_.trainScores != kNoValue ? train_->data(s_.trainScores) : nullptr;
  }

  Expected<Scored> infer() override {
    if (dirty_ && train_) {
      for (ValueId p : s_.g.params)
        if (float* dst = infer_->data(p)) std::copy_n(train_->data(p), infer_->size(p), dst);
      dirty_ = false;
    }
    infer_->run();
    Scored r;
    if (s_.scores != kNoValue) r.scores = infer_->data(s_.scores);
    if (s_.metric != kNoValue) r.metric = static_cast<double>(infer_->data(s_.metric)[0]);
    if (s_.perSample != kNoValue) r.perSample = infer_->data(s_.perSample);
    r.loss = s_.inferLoss && s_.g.loss != kNoValue ? static_cast<double>(infer_->data(s_.g.loss)[0]) : std::nan("");
    return r;
  }

  TensorMap params() override { return s_.step ? read(s_.step->updates) : TensorMap{}; }
  TensorMap state() override { return s_.step ? read(s_.step->state) : TensorMap{}; }

  void set(const TensorMap& values) override {
    // Params live in the train program, or in inference's when there is none.
    jit::CompiledProgram& p = train_ ? *train_ : *infer_;
    const Graph& pg = s_.step ? s_.step->grads.graph : s_.g;
    for (const auto& [name, t] : values) {
      const ValueId v = pg.findByName(name);
      float* d = v == kNoValue ? nullptr : p.data(v);
      if (!d) continue;  // not read by the step (a param no loss depends on)
      for (int64_t i = 0; i < std::min<int64_t>(t.numel(), p.size(v)); ++i)
        d[i] = static_cast<float>(t.data[static_cast<size_t>(i)]);
    }
    dirty_ = train_ != nullptr;
  }

  bool holds(const std::string& name) const override {
    if (!s_.step) return false;
    const Graph& sg = s_.step->grads.graph;
    for (const auto* pairs : {&s_.step->updates, &s_.step->state})
      for (auto [node, _] : *pairs)
        if (sg.node(node).name == name) return train_->data(node) != nullptr;
    return false;
  }

  // Params and state in one f32 buffer, in updates-then-state order.
  void remember() override { copySaved(true); }
  void rewind() override {
    copySaved(false);
    dirty_ = true;
  }

  Status profile(int steps, std::ostream& out) {
    if (train_) NNC_CHECK(profileProgram(*train_, "train step", steps, out));
    // Inference on the params as trained so far and whatever batch its
    // input slots hold: the kernels' times do not depend on the values.
    return profileProgram(*infer_, "inference", steps, out);
  }

 private:
  static Status profileProgram(jit::CompiledProgram& prog, const char* what, int steps, std::ostream& out) {
    const Program& p = prog.program();
    std::vector<double> total(p.launches.size(), 0.0);
    for (int i = 0; i < steps; ++i) {
      NNC_TRY(auto ms, prog.profile());
      for (size_t k = 0; k < ms.size(); ++k) total[k] += ms[k];
    }
    double sum = 0;
    for (double t : total) sum += t;
    std::vector<size_t> order(total.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return total[a] > total[b]; });
    out << fmt::format("{} profile ({} runs, {:.3f} ms per run):\n", what, steps, sum / steps);
    for (size_t i = 0; i < std::min<size_t>(order.size(), 15); ++i) {
      const loop::Kernel& k = p.kernels[static_cast<size_t>(p.launches[order[i]].kernel)];
      out << fmt::format("  {:8.3f} ms {:5.1f}%  {}\n", total[order[i]] / steps, 100 * total[order[i]] / sum,
                         k.comment);
    }
    return ok();
  }

  TensorMap read(const std::vector<std::pair<ValueId, ValueId>>& pairs) {
    const Graph& sg = s_.step->grads.graph;
    TensorMap out;
    for (auto [node, _] : pairs) {
      Tensor t(sg.type(node));
      if (const float* d = train_->data(node))
        for (int64_t i = 0; i < t.numel(); ++i) t.data[static_cast<size_t>(i)] = d[i];
      out[sg.node(node).name] = std::move(t);
    }
    return out;
  }

  void copySaved(bool save) {
    if (!s_.step) return;
    size_t at = 0;
    for (const auto* pairs : {&s_.step->updates, &s_.step->state})
      for (auto [node, _] : *pairs) {
        float* d = train_->data(node);
        if (!d) continue;
        const size_t n = static_cast<size_t>(train_->size(node));
        if (save) {
          if (saved_.size() < at + n) saved_.resize(at + n);
          std::copy_n(d, n, saved_.data() + at);
        } else {
          std::copy_n(saved_.data() + at, n, d);
        }
        at += n;
      }
  }

  const StepGraphs& s_;
  std::unique_ptr<jit::CompiledProgram> train_, infer_;
  bool dirty_ = true;
  std::vector<float> saved_;  // remember()'s copy
};

}  // namespace

std::unique_ptr<Stepper> interpStepper(const StepGraphs& s, TensorMap params, TensorMap state) {
  return std::make_unique<InterpStepper>(s, std::move(params), std::move(state));
}

Expected<std::unique_ptr<Stepper>> jitStepper(const StepGraphs& s, const TensorMap& params, const TensorMap& state,
                                              const JitSetup& setup) {
  auto j = std::make_unique<JitStepper>(s);
  NNC_CHECK(j->compile(params, state, setup));
  return std::unique_ptr<Stepper>(std::move(j));
}

Expected<std::unique_ptr<Stepper>> jitInferStepper(const StepGraphs& s, const TensorMap& params, const JitSetup& setup) {
  if (s.step) return error("jitInferStepper: a train step was given");
  return jitStepper(s, params, {}, setup);
}

Status initStepperValues(Stepper& s, const Graph& g, const TrainStep& step, uint64_t seed, TensorMap& kept,
                         TensorMap& keptState) {
  const Graph& sg = step.grads.graph;
  auto one = [&](const Node& n, TensorMap& keep) -> Status {
    TensorMap v;
    NNC_TRY(v[n.name], initParam(n, seed));
    s.set(v);
    if (!s.holds(n.name)) keep[n.name] = std::move(v[n.name]);
    return ok();
  };
  for (ValueId p : g.params) NNC_CHECK(one(g.node(p), kept));
  for (auto [node, _] : step.state) NNC_CHECK(one(sg.node(node), keptState));
  return ok();
}

void dropHeld(const Stepper& s, TensorMap& params, TensorMap& state) {
  for (TensorMap* m : {&params, &state})
    for (auto it = m->begin(); it != m->end();) it = s.holds(it->first) ? m->erase(it) : std::next(it);
}

Status profileSteps(Stepper& s, int steps, std::ostream& out) {
  auto* j = dynamic_cast<JitStepper*>(&s);
  if (!j) return error("--profile times the JIT's kernels: it needs --backend jit");
  return j->profile(steps, out);
}

}  // namespace nnc::cli
