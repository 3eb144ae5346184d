// The whole training step as one graph: forward, backward and the parameter
// update, so a backend runs a step as one call. The optimizer update is
// ordinary graph nodes: for SGD, W' = W − lr·dW.
#pragma once
#include <string>
#include <vector>

#include "compiler/autodiff.h"
#include "compiler/elaborate.h"

namespace nnc {

struct OptimizerSpec {
  std::string kind = "sgd";
  double lr = 0.01;
};

// From the train block's `optimizer = sgd(lr = 0.1)`; the default is sgd(0.01).
Expected<OptimizerSpec> optimizerFrom(const std::optional<TrainConfig>& train);

struct TrainStep {
  GradGraph grads;  // forward + backward (+ weight decay), then the update nodes
  // For each trainable param: its node and the node holding its next value.
  std::vector<std::pair<ValueId, ValueId>> updates;
};

// The train block's weight decay (`regularize = l2(0.005)`) added to the loss.
Status applyRegularization(Graph& g, const std::optional<TrainConfig>& train);
// The backward graph of a model, its train block's weight decay included.
Expected<GradGraph> gradientsOf(Graph g, const std::optional<TrainConfig>& train);

Expected<TrainStep> buildTrainStep(Graph forward, const std::optional<TrainConfig>& train);

}  // namespace nnc
