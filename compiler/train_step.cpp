#include "compiler/train_step.h"

namespace nnc {

Expected<OptimizerSpec> optimizerFrom(const std::optional<TrainConfig>& train) {
  OptimizerSpec o;
  if (!train) return o;
  auto it = train->settings.find("optimizer");
  if (it == train->settings.end()) return o;
  const TrainValue& v = it->second;
  if (v.kind != "sgd")
    return error(v.loc, "optimizer '{}' is not supported yet by the training step (only sgd)", v.kind);
  o.kind = v.kind;
  if (auto lr = v.args.find("lr"); lr != v.args.end()) o.lr = lr->second.number;
  else if (!v.positional.empty()) o.lr = v.positional[0].number;
  if (!(o.lr > 0)) return error(v.loc, "the learning rate must be positive, got {}", o.lr);
  return o;
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

Expected<TrainStep> buildTrainStep(Graph forward, const std::optional<TrainConfig>& train) {
  NNC_TRY(OptimizerSpec opt, optimizerFrom(train));
  NNC_TRY(GradGraph gg, gradientsOf(std::move(forward), train));
  TrainStep step{std::move(gg), {}};
  Graph& g = step.grads.graph;
  for (const auto& [name, grad] : step.grads.grads) {
    const ValueId param = g.findByName(name);
    const SourceLoc loc = g.node(param).loc;
    NNC_TRY(ValueId lr, g.addSource("const", "", TensorType{DType::F32, {}}, Attrs{{"value", std::vector<double>{opt.lr}}}, loc));
    NNC_TRY(ValueId delta, g.add("mul", {grad, lr}, {}, loc));
    NNC_TRY(ValueId next, g.add("sub", {param, delta}, {}, loc));
    g.node(next).name = name + ".next";
    step.updates.emplace_back(param, next);
  }
  return step;
}

}  // namespace nnc
