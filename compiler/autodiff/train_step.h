// The whole training step as one graph: forward, backward and the parameter
// update, so a backend runs a step as one call. The optimizer update is
// ordinary graph nodes (for SGD, W.next = W − lr·dW), and optimizer state
// (momentum, squared-gradient averages, Adam's step count) is graph values:
// a non-trainable param source "W.m" per state with a node "W.m.next", which
// the runner feeds back as the next step's value exactly like a param.
//
// The learning rate is an f32[] input "train.lr" whose example value is the
// base rate: the runner feeds lrAt(step) from the schedule each step (no cos
// or floor op is needed in the graph, and a backend sees one scalar input);
// a caller that feeds nothing trains at the base rate.
#pragma once
#include <string>
#include <vector>

#include "compiler/autodiff/autodiff.h"
#include "compiler/elaborate/elaborate.h"
#include "compiler/lower/lower.h"

namespace nnc {

// The course notes' optimizers. Defaults as the notes have them; eps is the
// notes' 1e-7 for adagrad and rmsprop and PyTorch's 1e-8 for adam.
//   sgd(lr=0.01):                W −= lr·g
//   momentum(lr=0.01, momentum=0.9): v = m·v − lr·g; W += v
//   nesterov(lr=0.01, momentum=0.9): v' = m·v − lr·g; W += m·m·v − (1+m)·lr·g
//        (the notes' form, = W + m·v' − lr·g; equal to
//        torch.optim.SGD(momentum=m, nesterov=True) at a constant lr)
//   adagrad(lr=0.01, eps=1e-7):  h += g²; W −= lr·g/(√h + eps)
//   rmsprop(lr=0.01, decay_rate=0.99, eps=1e-7): h = ρh + (1−ρ)g²; W −= lr·g/(√h + eps)
//   adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8): torch.optim.Adam,
//        bias-corrected: W −= lr·(m/(1−β1ᵗ))/(√(v/(1−β2ᵗ)) + eps)
// Momentum and nesterov keep lr inside v (the notes' form), so under a
// schedule they differ from PyTorch, which scales its buffer by the current lr.
struct OptimizerSpec {
  std::string kind = "sgd";
  double lr = 0.01;
  double momentum = 0.9;
  double decayRate = 0.99;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-7;
};

// `schedule = step(every = N, gamma = g)`: lr·g^⌊s/N⌋;
// `schedule = cosine(total = T)`: lr·(1 + cos(π·min(s, T)/T))/2;
// s counts optimizer steps (mini-batches) already taken, from 0.
struct ScheduleSpec {
  std::string kind = "constant";
  int64_t every = 1;
  double gamma = 0.1;
  int64_t total = 1;
  double lrAt(double baseLr, int64_t step) const;
};

// From the train block's `optimizer = adam(lr = 0.001)`; the default is sgd(0.01).
// Unknown optimizers and argument names are errors that list the known ones.
Expected<OptimizerSpec> optimizerFrom(const std::optional<TrainConfig>& train);
Expected<ScheduleSpec> scheduleFrom(const std::optional<TrainConfig>& train);

struct TrainStep {
  GradGraph grads;  // forward + backward (+ weight decay), then the update nodes
  // For each trainable param, and each batchnorm running statistic: its
  // node and the node holding its next value.
  std::vector<std::pair<ValueId, ValueId>> updates;
  // Optimizer state ("W.m", "W.v", "train.step": params with trainable=0,
  // initialized to zeros) and the node holding its next value.
  std::vector<std::pair<ValueId, ValueId>> state;
  ValueId lr = kNoValue;  // the "train.lr" input
  OptimizerSpec optimizer;
  ScheduleSpec schedule;
  double lrAt(int64_t step) const { return schedule.lrAt(optimizer.lr, step); }
  // How a backend lowers it: training mode, every param and state value
  // committed from its next value at the end of the step.
  LowerOptions lowering() const;
};

// The train block's weight decay (`regularize = l2(0.005)`) added to the loss.
Status applyRegularization(Graph& g, const std::optional<TrainConfig>& train);
// The backward graph of a model, its train block's weight decay included.
Expected<GradGraph> gradientsOf(Graph g, const std::optional<TrainConfig>& train);

Expected<TrainStep> buildTrainStep(Graph forward, const std::optional<TrainConfig>& train);

}  // namespace nnc
