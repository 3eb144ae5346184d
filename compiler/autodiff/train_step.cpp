#include "compiler/autodiff/train_step.h"

#include <cmath>
#include <numbers>

namespace nnc {

namespace {

struct NumArg {
  std::string_view name;
  double* value;
};

std::string argList(const std::vector<NumArg>& known) {
  std::string s;
  for (const auto& a : known) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s.empty() ? "none" : s;
}

// Reads a call's named number arguments; `positional`: the name the one
// positional argument stands for (the optimizers' `sgd(0.1)` is lr), if any.
Status readArgs(const TrainValue& v, const std::string& what, const std::vector<NumArg>& known,
                std::string_view positional) {
  if (v.positional.size() > (positional.empty() ? 0u : 1u))
    return error(v.loc, "{} '{}' takes named arguments ({})", what, v.kind, argList(known));
  auto set = [&](std::string_view name, const TrainValue& a) -> Status {
    for (const auto& k : known)
      if (k.name == name) {
        if (a.kind != "int" && a.kind != "float")
          return error(a.loc, "{} '{}': {} takes a number", what, v.kind, name);
        *k.value = a.number;
        return ok();
      }
    return error(a.loc, "{} '{}' has no argument '{}' (its arguments: {})", what, v.kind, name, argList(known));
  };
  if (!v.positional.empty()) NNC_CHECK(set(positional, v.positional[0]));
  for (const auto& [name, a] : v.args) NNC_CHECK(set(name, a));
  return ok();
}

Status inUnit(const TrainValue& v, const char* name, double x) {
  if (x >= 0 && x < 1) return ok();
  return error(v.loc, "{}'s {} must be in [0, 1), got {}", v.kind, name, x);
}

// Each training-mode batchnorm moves its running statistics toward the
// batch's, as PyTorch does: r ← (1 − m)·r + m·batch, with the unbiased
// variance. They are params that no gradient moves: the step computes their
// next value and the runner commits it like any param's, so inference and
// checkpoints see them.
Status addRunningStats(Graph& g, std::vector<std::pair<ValueId, ValueId>>& updates) {
  const size_t forwardNodes = g.nodes.size();
  for (size_t i = 0; i < forwardNodes; ++i) {
    if (!g.nodes[i].op->is(OpId::Batchnorm)) continue;
    const Node bn = g.nodes[i];  // a copy: adding nodes moves them
    const ValueId x = bn.inputs[0], rmean = bn.inputs[3], rvar = bn.inputs[4];
    const TensorType xt = g.type(x), ct = g.type(rmean);
    const std::vector<int64_t> axes = xt.rank() == 4 ? std::vector<int64_t>{0, 2, 3} : std::vector<int64_t>{0};
    const double count = static_cast<double>(xt.numel() / xt.shape[1]);
    const double m = bn.attrs.f("momentum");
    auto c = [&](double v) {
      return g.addSource("const", "", TensorType{DType::F32, {}}, Attrs{{"value", std::vector<double>{v}}}, bn.loc);
    };
    auto op = [&](std::string_view name, std::vector<ValueId> in, Attrs a = {}) {
      return g.add(name, std::move(in), std::move(a), bn.loc);
    };
    NNC_TRY(ValueId mean, op("mean", {x}, {{"axis", axes}, {"keepdims", int64_t{1}}}));
    NNC_TRY(ValueId dev, op("sub", {x, mean}));
    NNC_TRY(ValueId dev2, op("square", {dev}));
    NNC_TRY(ValueId ss, op("sum", {dev2}, {{"axis", axes}, {"keepdims", int64_t{0}}}));
    NNC_TRY(ValueId denom, c(std::max(count - 1, 1.0)));
    NNC_TRY(ValueId var, op("div", {ss, denom}));
    NNC_TRY(ValueId flatMean, op("reshape", {mean}, {{"shape", ct.shape}}));
    NNC_TRY(ValueId keep, c(1 - m));
    NNC_TRY(ValueId take, c(m));
    for (auto [r, batch] : {std::pair{rmean, flatMean}, std::pair{rvar, var}}) {
      NNC_TRY(ValueId a, op("mul", {keep, r}));
      NNC_TRY(ValueId b, op("mul", {take, batch}));
      NNC_TRY(ValueId next, op("add", {a, b}));
      g.node(next).name = g.node(r).name + ".next";
      updates.emplace_back(r, next);
    }
  }
  return ok();
}

}  // namespace

double ScheduleSpec::lrAt(double baseLr, int64_t step) const {
  if (kind == "step") return baseLr * std::pow(gamma, static_cast<double>(step / every));
  if (kind == "cosine") {
    const double s = static_cast<double>(std::min(step, total)) / static_cast<double>(total);
    return baseLr * 0.5 * (1 + std::cos(std::numbers::pi * s));
  }
  return baseLr;
}

Expected<OptimizerSpec> optimizerFrom(const std::optional<TrainConfig>& train) {
  OptimizerSpec o;
  if (!train) return o;
  auto it = train->settings.find("optimizer");
  if (it == train->settings.end()) return o;
  const TrainValue& v = it->second;
  o.kind = v.kind;
  std::vector<NumArg> known = {{"lr", &o.lr}};
  if (v.kind == "sgd") {
  } else if (v.kind == "momentum" || v.kind == "nesterov") {
    known.push_back({"momentum", &o.momentum});
  } else if (v.kind == "adagrad") {
    known.push_back({"eps", &o.eps});
  } else if (v.kind == "rmsprop") {
    known.push_back({"decay_rate", &o.decayRate});
    known.push_back({"eps", &o.eps});
  } else if (v.kind == "adam") {
    o.lr = 0.001;
    o.eps = 1e-8;
    known.push_back({"beta1", &o.beta1});
    known.push_back({"beta2", &o.beta2});
    known.push_back({"eps", &o.eps});
  } else {
    return error(v.loc, "unknown optimizer '{}' (known: sgd, momentum, nesterov, adagrad, rmsprop, adam)", v.kind);
  }
  NNC_CHECK(readArgs(v, "optimizer", known, "lr"));
  if (!(o.lr > 0)) return error(v.loc, "the learning rate must be positive, got {}", o.lr);
  if (!(o.eps > 0)) return error(v.loc, "{}'s eps must be positive, got {}", v.kind, o.eps);
  NNC_CHECK(inUnit(v, "momentum", o.momentum));
  NNC_CHECK(inUnit(v, "decay_rate", o.decayRate));
  NNC_CHECK(inUnit(v, "beta1", o.beta1));
  NNC_CHECK(inUnit(v, "beta2", o.beta2));
  return o;
}

Expected<ScheduleSpec> scheduleFrom(const std::optional<TrainConfig>& train) {
  ScheduleSpec s;
  if (!train) return s;
  auto it = train->settings.find("schedule");
  if (it == train->settings.end()) return s;
  const TrainValue& v = it->second;
  s.kind = v.kind;
  double every = 0, total = 0;
  if (v.kind == "constant") {
    NNC_CHECK(readArgs(v, "schedule", {}, ""));
  } else if (v.kind == "step") {
    NNC_CHECK(readArgs(v, "schedule", {{"every", &every}, {"gamma", &s.gamma}}, ""));
    if (!(every >= 1) || every != std::floor(every) || every > 1e15)
      return error(v.loc, "step(every = N) takes a whole number of steps N >= 1");
    if (!(s.gamma > 0)) return error(v.loc, "step's gamma must be positive, got {}", s.gamma);
    s.every = static_cast<int64_t>(every);
  } else if (v.kind == "cosine") {
    NNC_CHECK(readArgs(v, "schedule", {{"total", &total}}, ""));
    if (!(total >= 1) || total != std::floor(total) || total > 1e15)
      return error(v.loc, "cosine(total = T) takes a whole number of steps T >= 1");
    s.total = static_cast<int64_t>(total);
  } else {
    return error(v.loc, "unknown schedule '{}' (known: constant(), step(every, gamma), cosine(total))", v.kind);
  }
  return s;
}

Status applyRegularization(Graph& g, const std::optional<TrainConfig>& train) {
  if (!train) return ok();
  auto it = train->settings.find("regularize");
  if (it == train->settings.end()) return ok();
  const TrainValue& r = it->second;
  double lambda = 0;
  if (!r.positional.empty()) lambda = r.positional[0].number;
  else if (auto l = r.args.find("lambda"); l != r.args.end()) lambda = l->second.number;
  else return error(r.loc, "regularize takes l1(lambda) or l2(lambda)");
  auto st = addWeightDecay(g, r.kind, lambda);
  if (!st) st.error().loc = r.loc;
  return st;
}

Expected<GradGraph> gradientsOf(Graph g, const std::optional<TrainConfig>& train) {
  NNC_CHECK(applyRegularization(g, train));
  return differentiate(g);
}

LowerOptions TrainStep::lowering() const {
  LowerOptions lo;
  lo.training = true;
  lo.commits = updates;
  lo.commits.insert(lo.commits.end(), state.begin(), state.end());
  return lo;
}

Expected<TrainStep> buildTrainStep(Graph forward, const std::optional<TrainConfig>& train) {
  NNC_TRY(OptimizerSpec opt, optimizerFrom(train));
  NNC_TRY(ScheduleSpec sched, scheduleFrom(train));
  NNC_TRY(GradGraph gg, gradientsOf(std::move(forward), train));
  TrainStep step{std::move(gg), {}, {}, kNoValue, opt, sched};
  Graph& g = step.grads.graph;
  SourceLoc loc;
  if (train) {
    auto it = train->settings.find("optimizer");
    loc = it != train->settings.end() ? it->second.loc : train->loc;
  }
  const TensorType scalar{DType::F32, {}};
  auto c = [&](double v) { return g.addSource("const", "", scalar, Attrs{{"value", std::vector<double>{v}}}, loc); };
  auto op = [&](std::string_view name, std::vector<ValueId> in) { return g.add(name, std::move(in), {}, loc); };
  auto state = [&](const std::string& name, const TensorType& t) {
    return g.addSource("param", name, t, Attrs{{"init", std::string("zeros")}, {"trainable", int64_t{0}}}, loc);
  };
  auto named = [&](ValueId v, std::string name) {
    g.node(v).name = std::move(name);
    return v;
  };
  NNC_TRY(step.lr, g.addSource("input", "train.lr", scalar, Attrs{{"example", std::vector<double>{opt.lr}}}, loc));
  NNC_CHECK(addRunningStats(g, step.updates));
  if (step.grads.grads.empty()) return step;
  const ValueId lr = step.lr;
  const bool adam = opt.kind == "adam";
  // Adam's bias corrections 1 − βᵗ, with t counting this step from 1.
  ValueId bc1 = kNoValue, bc2 = kNoValue;
  if (adam) {
    NNC_TRY(ValueId t, state("train.step", scalar));
    NNC_TRY(ValueId one, c(1));
    NNC_TRY(ValueId t1, op("add", {t, one}));
    step.state.emplace_back(t, named(t1, "train.step.next"));
    NNC_TRY(ValueId b1, c(opt.beta1));
    NNC_TRY(ValueId b2, c(opt.beta2));
    NNC_TRY(ValueId p1, op("pow", {b1, t1}));
    NNC_TRY(ValueId p2, op("pow", {b2, t1}));
    NNC_TRY(bc1, op("sub", {one, p1}));
    NNC_TRY(bc2, op("sub", {one, p2}));
  }
  // Scalar constants, shared by every param's update; only those the optimizer uses.
  const bool momentum = opt.kind == "momentum" || opt.kind == "nesterov";
  const bool adaptive = opt.kind == "adagrad" || opt.kind == "rmsprop" || adam;
  ValueId mom = kNoValue, eps = kNoValue, rho1 = kNoValue, rest1 = kNoValue, rho2 = kNoValue, rest2 = kNoValue;
  if (momentum) {
    NNC_TRY(mom, c(opt.momentum));
  }
  if (adaptive) {
    NNC_TRY(eps, c(opt.eps));
  }
  if (opt.kind == "rmsprop" || adam) {
    const double r = adam ? opt.beta1 : opt.decayRate;
    NNC_TRY(rho1, c(r));
    NNC_TRY(rest1, c(1 - r));
  }
  if (adam) {
    NNC_TRY(rho2, c(opt.beta2));
    NNC_TRY(rest2, c(1 - opt.beta2));
  }

  for (const auto& [name, grad] : step.grads.grads) {
    const ValueId param = g.findByName(name);
    const TensorType pt = g.type(param);  // a copy: adding nodes moves them
    NNC_TRY(ValueId lrg, op("mul", {lr, grad}));
    ValueId next = kNoValue;
    if (opt.kind == "sgd") {
      NNC_TRY(next, op("sub", {param, lrg}));
    } else if (momentum) {
      NNC_TRY(ValueId v, state(name + ".v", pt));
      NNC_TRY(ValueId mv, op("mul", {mom, v}));
      NNC_TRY(ValueId v1, op("sub", {mv, lrg}));
      step.state.emplace_back(v, named(v1, name + ".v.next"));
      if (opt.kind == "momentum") {
        NNC_TRY(next, op("add", {param, v1}));
      } else {
        // W + m·m·v − (1+m)·lr·g written as W + m·v' − lr·g.
        NNC_TRY(ValueId mv1, op("mul", {mom, v1}));
        NNC_TRY(ValueId d, op("sub", {mv1, lrg}));
        NNC_TRY(next, op("add", {param, d}));
      }
    } else if (opt.kind == "adagrad" || opt.kind == "rmsprop") {
      NNC_TRY(ValueId h, state(name + ".h", pt));
      NNC_TRY(ValueId g2, op("square", {grad}));
      ValueId h1 = kNoValue;
      if (opt.kind == "adagrad") {
        NNC_TRY(h1, op("add", {h, g2}));
      } else {
        NNC_TRY(ValueId a, op("mul", {rho1, h}));
        NNC_TRY(ValueId b, op("mul", {rest1, g2}));
        NNC_TRY(h1, op("add", {a, b}));
      }
      step.state.emplace_back(h, named(h1, name + ".h.next"));
      NNC_TRY(ValueId root, op("sqrt", {h1}));
      NNC_TRY(ValueId den, op("add", {root, eps}));
      NNC_TRY(ValueId d, op("div", {lrg, den}));
      NNC_TRY(next, op("sub", {param, d}));
    } else {  // adam
      NNC_TRY(ValueId m, state(name + ".m", pt));
      NNC_TRY(ValueId v, state(name + ".v", pt));
      NNC_TRY(ValueId m1a, op("mul", {rho1, m}));
      NNC_TRY(ValueId m1b, op("mul", {rest1, grad}));
      NNC_TRY(ValueId m1, op("add", {m1a, m1b}));
      NNC_TRY(ValueId g2, op("square", {grad}));
      NNC_TRY(ValueId v1a, op("mul", {rho2, v}));
      NNC_TRY(ValueId v1b, op("mul", {rest2, g2}));
      NNC_TRY(ValueId v1, op("add", {v1a, v1b}));
      step.state.emplace_back(m, named(m1, name + ".m.next"));
      step.state.emplace_back(v, named(v1, name + ".v.next"));
      NNC_TRY(ValueId mhat, op("div", {m1, bc1}));
      NNC_TRY(ValueId vhat, op("div", {v1, bc2}));
      NNC_TRY(ValueId root, op("sqrt", {vhat}));
      NNC_TRY(ValueId den, op("add", {root, eps}));
      NNC_TRY(ValueId lm, op("mul", {lr, mhat}));
      NNC_TRY(ValueId d, op("div", {lm, den}));
      NNC_TRY(next, op("sub", {param, d}));
    }
    step.updates.emplace_back(param, named(next, name + ".next"));
  }
  return step;
}

}  // namespace nnc
