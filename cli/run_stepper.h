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
// Runs `steps` train steps kernel by kernel on the batch fed last and prints
// the kernels taking the most time (a JIT stepper only).
Status profileSteps(Stepper& jit, int steps, std::ostream& out);

}  // namespace nnc::cli
