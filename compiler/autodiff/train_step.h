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
//
// Gradient clipping (`clip_grad_norm = c`) is graph nodes too: the global
// norm ‖g‖ = √(Σ over every gradient of Σg²), the factor
// min(1, c/(‖g‖ + 1e-6)) ("train.grad_scale"), and every gradient scaled by
// it before the update, as torch.nn.utils.clip_grad_norm_.
#pragma once
#include <string>
#include <vector>

#include "compiler/autodiff/autodiff.h"
#include "compiler/elaborate/elaborate.h"
#include "compiler/elaborate/train_settings.h"
#include "compiler/lower/lower.h"

namespace nnc {

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
  double clipGradNorm = 0;           // 0: no clipping
  ValueId gradScale = kNoValue;      // clipping's factor, f32[]; kNoValue without clipping
  int64_t buckets = 0;               // a data-parallel step's gradient buckets (allreduce_start nodes)
  double lrAt(int64_t step) const { return schedule.lrAt(optimizer.lr, step); }
  // How a backend lowers it: training mode, every param and state value
  // committed from its next value at the end of the step.
  LowerOptions lowering() const;
};

// The train block's weight decay (`regularize = l2(0.005)`) added to the loss.
Status applyRegularization(Graph& g, const std::optional<TrainConfig>& train);
// The backward graph of a model, its train block's weight decay included.
Expected<GradGraph> gradientsOf(Graph g, const std::optional<TrainConfig>& train);

// One process's share of a data-parallel run (docs/distributed.md): its
// step runs on its rows of each global batch, its loss is scaled by
// rows/global batch (so the gradients summed across processes are those of
// the global batch's mean), and the update reads gradients summed across
// processes in buckets of at most bucketBytes, in the order the backward
// completes them (allreduce_start / allreduce_wait, collective_ops.cpp).
struct DataParallel {
  int ranks = 1;
  double lossScale = 1;
  int64_t bucketBytes = 25 << 20;
};

Expected<TrainStep> buildTrainStep(Graph forward, const std::optional<TrainConfig>& train,
                                   const DataParallel* parallel = nullptr);

}  // namespace nnc
