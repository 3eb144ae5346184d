#include "compiler/autodiff/train_step.h"

#include <cmath>

namespace nnc {

namespace {

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

// clip_grad_norm_'s factor min(1, c/(‖g‖ + 1e-6)), ‖g‖ the L2 norm of all
// gradients together, and each gradient scaled by it.
Expected<ValueId> clipGradients(Graph& g, std::vector<std::pair<std::string, ValueId>>& grads, double maxNorm,
                                SourceLoc loc) {
  auto c = [&](double v) {
    return g.addSource("const", "", TensorType{DType::F32, {}}, Attrs{{"value", std::vector<double>{v}}}, loc);
  };
  auto op = [&](std::string_view name, std::vector<ValueId> in) { return g.add(name, std::move(in), {}, loc); };
  ValueId total = kNoValue;
  for (const auto& [name, grad] : grads) {
    NNC_TRY(ValueId sq, op("square", {grad}));
    NNC_TRY(ValueId ss, op("sum", {sq}));
    if (total == kNoValue) {
      total = ss;
    } else {
      NNC_TRY(total, op("add", {total, ss}));
    }
  }
  NNC_TRY(ValueId norm, op("sqrt", {total}));
  g.node(norm).name = "train.grad_norm";
  NNC_TRY(ValueId tiny, c(1e-6));
  NNC_TRY(ValueId den, op("add", {norm, tiny}));
  NNC_TRY(ValueId cap, c(maxNorm));
  NNC_TRY(ValueId ratio, op("div", {cap, den}));
  NNC_TRY(ValueId one, c(1));
  NNC_TRY(ValueId scale, op("minimum", {ratio, one}));
  g.node(scale).name = "train.grad_scale";
  for (auto& [name, grad] : grads) {
    NNC_TRY(grad, op("mul", {grad, scale}));
  }
  return scale;
}

// The loss (weight decay included) times `scale`, a process's share of the
// global batch's mean.
Status scaleLoss(Graph& g, double scale) {
  if (scale == 1) return ok();
  const SourceLoc loc = g.node(g.loss).loc;
  NNC_TRY(ValueId c, g.addSource("const", "", TensorType{DType::F32, {}},
                                 Attrs{{"value", std::vector<double>{scale}}}, loc));
  NNC_TRY(ValueId scaled, g.add("mul", {g.loss, c}, {}, loc));
  g.node(scaled).name = "train.rank_loss";
  g.loss = scaled;
  return ok();
}

// Every gradient the update reads becomes its sum across processes: the
// gradients, in the order the backward completes them (their node order),
// go into buckets of at most `bucketBytes` (each at least one gradient);
// each bucket gets one allreduce_start reading all of its gradients and an
// allreduce_wait per gradient, which the update reads instead. The starts
// stand at the end of the backward here; overlap-allreduce moves each up
// to its last gradient. A gradient that is a source (a constant) gets a
// copy of its own (identity): the memory plan lays out each bucket's
// gradients back to back, which needs slots of their own (a view of a
// computed value has its operand's, which no one else reads).
Expected<int64_t> allreduceGradients(Graph& g, std::vector<std::pair<std::string, ValueId>>& grads,
                                     int64_t bucketBytes, SourceLoc loc) {
  std::vector<size_t> order(grads.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return grads[a].second < grads[b].second; });
  for (auto& [name, grad] : grads)
    if (g.node(grad).op->kind == OpKind::Source) {
      NNC_TRY(grad, g.add("identity", {grad}, {}, loc));
    }
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = 0;
  for (size_t i : order) {
    const int64_t b = 4 * g.type(grads[i].second).numel();
    if (buckets.empty() || bytes + b > bucketBytes) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += b;
  }
  for (size_t k = 0; k < buckets.size(); ++k) {
    std::vector<ValueId> in;
    for (size_t i : buckets[k]) in.push_back(grads[i].second);
    const Attrs at{{"bucket", static_cast<int64_t>(k)}};
    NNC_TRY(ValueId token, g.add("allreduce_start", in, at, loc));
    g.node(token).name = fmt::format("train.bucket{}", k);
    for (size_t i : buckets[k]) {
      NNC_TRY(ValueId sum, g.add("allreduce_wait", {grads[i].second, token}, at, loc));
      g.node(sum).name = "train.sum." + grads[i].first;
      grads[i].second = sum;
    }
  }
  return static_cast<int64_t>(buckets.size());
}

}  // namespace

Status applyRegularization(Graph& g, const std::optional<TrainConfig>& train) {
  NNC_TRY(const std::optional<RegularizeSpec> r, regularizeFrom(train));
  if (!r) return ok();
  auto st = addWeightDecay(g, r->kind, r->lambda);
  if (!st) st.error().loc = r->loc;
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

// The step writes batchnorm's running statistics: a trained param would get
// two updates, a const none.
Status checkRunningStats(const Graph& g) {
  for (const Node& bn : g.nodes) {
    if (!bn.op->is(OpId::Batchnorm)) continue;
    for (ValueId r : {bn.inputs[3], bn.inputs[4]})
      if (!g.node(r).op->is(OpId::Param) || g.node(r).attrs.i("trainable") != 0)
        return error(bn.loc, "batchnorm's running statistics must be buffers (declared with `buffer`), not {} '{}'",
                     g.node(r).op->is(OpId::Param) ? "the trained param" : g.node(r).op->name,
                     g.node(r).name.empty() ? "(unnamed)" : g.node(r).name);
  }
  return ok();
}

Expected<TrainStep> buildTrainStep(Graph forward, const std::optional<TrainConfig>& train,
                                   const DataParallel* parallel) {
  NNC_CHECK(checkRunningStats(forward));
  NNC_TRY(OptimizerSpec opt, optimizerFrom(train));
  NNC_TRY(ScheduleSpec sched, scheduleFrom(train));
  NNC_TRY(const double clip, clipGradNormFrom(train));
  NNC_CHECK(applyRegularization(forward, train));
  if (parallel && forward.loss != kNoValue) NNC_CHECK(scaleLoss(forward, parallel->lossScale));
  NNC_TRY(GradGraph gg, differentiate(forward));
  TrainStep step{std::move(gg), {}, {}, kNoValue, opt, sched, clip};
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
  // What the update reads: the gradients, clipped if the block says so
  // (step.grads keeps the unclipped ones, which nnc grad and eval print).
  std::vector<std::pair<std::string, ValueId>> grads = step.grads.grads;
  if (parallel && parallel->ranks > 1) {
    NNC_TRY(step.buckets, allreduceGradients(g, grads, parallel->bucketBytes, loc));
  }
  if (clip > 0) {
    SourceLoc clipLoc = train->settings.at("clip_grad_norm").loc;
    NNC_TRY(step.gradScale, clipGradients(g, grads, clip, clipLoc));
  }
  const ValueId lr = step.lr;
  const bool adamw = opt.kind == "adamw";
  const bool adam = opt.kind == "adam" || adamw;
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
  // AdamW's decoupled decay W·(1 − lr·wd), from this step's lr (torch's order:
  // decay first, then the Adam step on the decayed W).
  ValueId keep = kNoValue;
  if (adamw && opt.weightDecay > 0) {
    NNC_TRY(ValueId wd, c(opt.weightDecay));
    NNC_TRY(ValueId lrwd, op("mul", {lr, wd}));
    NNC_TRY(ValueId one, c(1));
    NNC_TRY(keep, op("sub", {one, lrwd}));
  }

  for (const auto& [name, grad] : grads) {
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
      ValueId from = param;
      if (keep != kNoValue) {
        NNC_TRY(from, op("mul", {param, keep}));
      }
      NNC_TRY(next, op("sub", {from, d}));
    }
    step.updates.emplace_back(param, named(next, name + ".next"));
  }
  return step;
}

}  // namespace nnc
