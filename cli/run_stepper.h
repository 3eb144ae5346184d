// What `nnc run` drives: a backend that runs a training step and scores a
// batch. The JIT (default) and the reference interpreter (--backend interp)
// see the same batches, learning rates and initial params.
#pragma once
#include <iosfwd>
#include <memory>
#include <vector>

#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/passes/pipeline.h"

namespace nnc::cli {

struct StepGraphs {
  const Graph& g;         // the model (inference)
  const TrainStep* step;  // forward + backward + update; null: inference only
  ValueId scores;         // g's [batch, classes] output, or kNoValue
  ValueId trainScores;    // the train step's logits (the loss's first input), or kNoValue
  int64_t batch;
  bool inferLoss = true;  // inference computes the loss too (needs labels fed)
  ValueId metric = kNoValue;     // g's scalar `accuracy` output, or kNoValue
  ValueId perSample = kNoValue;  // g's f32[batch] output reported per class, or kNoValue
};

// One batch on the host: `x` batch × sample floats; `y` the labels as floats
// (class ids, or regression targets), laid out as the model's label.
struct Batch {
  std::vector<float> x, y;
};

class Stepper {
 public:
  virtual ~Stepper() = default;
  virtual void feed(const Batch& b, bool training) = 0;
  virtual Expected<double> trainStep(double lr, uint64_t seed) = 0;  // the loss; params updated
  // The last train step's logits [batch, classes] (nullptr if none).
  virtual const float* trainScores() = 0;
  // Inference on the batch fed last: scores [batch, classes] (nullptr if the
  // model has none) and the loss in evaluation mode (NaN if no loss).
  struct Scored {
    const float* scores = nullptr;
    double loss = 0;
    double metric = 0;                // StepGraphs::metric's value (0 if none)
    const float* perSample = nullptr;  // StepGraphs::perSample's values
  };
  virtual Expected<Scored> infer() = 0;
  // Params (batchnorm statistics included) and optimizer state by name.
  virtual TensorMap params() = 0;
  virtual TensorMap state() = 0;
  virtual void set(const TensorMap& values) = 0;  // names of either kind
  // Whether params() or state() returns the value `name` (the backend holds
  // and updates it); the caller need not keep a copy of what it holds.
  virtual bool holds(const std::string& name) const = 0;
  // Remembers the params and state (the JIT: one f32 copy, its buffer kept
  // between calls); rewind() returns to what was remembered last.
  virtual void remember() = 0;
  virtual void rewind() = 0;
};

std::unique_ptr<Stepper> interpStepper(const StepGraphs& s, TensorMap params, TensorMap state);

struct JitSetup {
  int optLevel = 2;
  PassOptions passes;
  bool profile = false;
  std::ostream* verbose = nullptr;  // compile-stage times
};
Expected<std::unique_ptr<Stepper>> jitStepper(const StepGraphs& s, const TensorMap& params, const TensorMap& state,
                                              const JitSetup& setup);
// Inference alone (nnc eval, nnc predict): feed(…, false) and infer().
Expected<std::unique_ptr<Stepper>> jitInferStepper(const StepGraphs& s, const TensorMap& params, const JitSetup& setup);
// Initializes the train step's params and optimizer state of `s` from their
// initializers one at a time, each f64 tensor freed once set (the JIT holds
// them as f32 in its arena), instead of keeping a host copy of all of them:
// what `nnc run` does when it starts from scratch. Into `kept` go those `s`
// does not hold (a frozen param, one no loss depends on), which the caller
// keeps for checkpoints; with the JIT that is usually nothing.
Status initStepperValues(Stepper& s, const Graph& g, const TrainStep& step, uint64_t seed, TensorMap& kept,
                         TensorMap& keptState);
// Drops from `params` and `state` the values `s` holds (after they were set).
void dropHeld(const Stepper& s, TensorMap& params, TensorMap& state);
// Runs `steps` train steps kernel by kernel on the batch fed last and prints
// the kernels taking the most time (a JIT stepper only).
Status profileSteps(Stepper& jit, int steps, std::ostream& out);

}  // namespace nnc::cli
