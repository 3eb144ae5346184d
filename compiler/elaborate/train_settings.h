// What a train block's settings mean: the optimizer, the learning-rate
// schedule, weight decay, augmentation and the run's counts, each read from
// the TrainConfig the elaborator evaluated and checked against one set of
// rules. The elaborator applies them all (checkTrainSettings) when it
// evaluates a train block, so every command refuses the same blocks; the
// train step (compiler/autodiff/train_step.cpp) and nnc run read the values.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "compiler/elaborate/elaborate.h"

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
//   adamw(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
//        torch.optim.AdamW, decoupled weight decay on every trainable param
//        (torch's default, biases included): W·(1 − lr·wd), then adam's step
// Momentum and nesterov keep lr inside v (the notes' form), so under a
// schedule they differ from PyTorch, which scales its buffer by the current lr.
struct OptimizerSpec {
  std::string kind = "sgd";
  double lr = 0.01;
  double momentum = 0.9;
  double decayRate = 0.99;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-7;
  double weightDecay = 0.01;  // adamw's
};

// `schedule = step(every = N, gamma = g)`: lr·g^⌊s/N⌋;
// `schedule = exponential(gamma = g, every = 1)`: the same formula, per step
//   by default (torch's ExponentialLR stepped every `every` steps);
// `schedule = cosine(total = T, min_lr = 0)`:
//   min_lr + (lr − min_lr)·(1 + cos(π·min(s, T)/T))/2 (CosineAnnealingLR's eta_min);
// s counts optimizer steps (mini-batches) already taken, from 0.
// The train setting `warmup = W` ramps lr·s/W over steps 0..W−1, then runs
// the schedule on s − W, with a cosine's T counting the warmup too (decay
// over T − W steps), as HuggingFace's get_cosine_schedule_with_warmup.
struct ScheduleSpec {
  std::string kind = "constant";
  int64_t every = 1;
  double gamma = 0.1;
  int64_t total = 1;
  double minLr = 0;
  int64_t warmup = 0;
  double lrAt(double baseLr, int64_t step) const;
};

// From the train block's `optimizer = adam(lr = 0.001)`; the default is sgd(0.01).
// Unknown optimizers and argument names are errors that list the known ones.
Expected<OptimizerSpec> optimizerFrom(const std::optional<TrainConfig>& train);
Expected<ScheduleSpec> scheduleFrom(const std::optional<TrainConfig>& train);

// `clip_grad_norm = 1.0`: the largest global L2 norm of all trainable
// params' gradients (torch.nn.utils.clip_grad_norm_); 0 without one.
Expected<double> clipGradNormFrom(const std::optional<TrainConfig>& train);

// `regularize = l2(0.005)` (or l1, or `l2(lambda = 0.005)`); none without one.
struct RegularizeSpec {
  std::string kind;  // "l1" or "l2"
  double lambda = 0;
  SourceLoc loc;
};
Expected<std::optional<RegularizeSpec>> regularizeFrom(const std::optional<TrainConfig>& train);

// `augment = "shift=2,hflip,binarize=0.5"` (or nnc run's --augment):
// random shifts of up to `shift` pixels, random left-right flips, and
// thresholding (binarize < 0: off).
struct AugmentSpec {
  int64_t shift = 0;
  bool hflip = false;
  double binarize = -1;
};
// Errors are at `loc` (the train block's value; none for the command line).
Expected<AugmentSpec> augmentFrom(const std::string& text, SourceLoc loc = {});

// The train block's other settings, with nnc run's defaults where it gives none.
struct RunSettings {
  int64_t epochs = 1, iterations = 0, limit = 0, logEvery = 100;  // iterations, limit 0: unset
  uint64_t seed = 42;
  double validation = 0, flagQuantile = 0.99;
  bool shuffle = true, evalTrain = false;
  std::string augment;  // as written (checked)
};
Expected<RunSettings> runSettingsFrom(const std::optional<TrainConfig>& train);

// Every rule above at once, for the elaborator: a train block that nnc run
// would refuse is refused by every command (nnc check included), at the
// setting's file:line:col.
Status checkTrainSettings(const TrainConfig& train);

}  // namespace nnc
