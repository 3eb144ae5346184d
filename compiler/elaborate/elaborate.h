// Elaboration: from the syntax tree to a graph. Runs the compile-time part of
// the language (integer arithmetic, `def` expansion, `for` unrolling, layer
// sugar creating named params) and checks every shape on the way.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/diagnostics.h"
#include "compiler/graph/graph.h"
#include "dsl/ast.h"

namespace nnc {

// A setting from a `train` block, evaluated at compile time.
struct TrainValue {
  std::string kind;  // "int", "float", "string", or a call's name ("idx", "adam", "l2", ...)
  double number = 0;
  std::string text;
  std::map<std::string, TrainValue> args;  // a call's named arguments
  std::vector<TrainValue> positional;      // a call's positional arguments
  SourceLoc loc;
};

struct TrainConfig {
  std::string model;
  std::map<std::string, TrainValue> settings;
  SourceLoc loc;
};

struct ElaborateOptions {
  std::string model;                       // empty: the trained model, else the last one
  std::map<std::string, int64_t> overrides;  // model parameters (--set batch=1)
  // Values for the model parameters the model has and `overrides` does not
  // give; ignored for the others (gradcheck's batch of 2, for any model).
  std::map<std::string, int64_t> defaults;
};

// A model parameter (`model m(batch = 100, depth = 6)`) and the value it
// took: --set's, else its default.
struct ModelParam {
  std::string name;
  std::optional<int64_t> value;  // empty where it is not an integer (a float, a list)
};

// The model's graph, and what the commands that feed data and read results
// need to know of it, recorded where the declarations say it instead of
// guessed from shapes by each command.
struct Elaborated {
  Graph graph;
  std::optional<TrainConfig> train;  // the train block naming this model, if any
  std::vector<ModelParam> params;    // in declaration order

  // Per input and label: the axis indexing samples. It is the axis whose
  // size is written `batch`, the model parameter (`input x: f32[batch, 784]`);
  // where no axis is, the leading one (nnc's convention: a model without a
  // `batch` parameter takes samples along axis 0); -1 for a scalar.
  std::map<ValueId, int> batchAxis;
  // Samples per step: input 0's size along its batch axis (0 without one).
  int64_t batch = 0;
  // Outputs by what they hold per batch of `batch` samples, each list in
  // declaration order:
  std::vector<ValueId> scores;     // a row of class scores per sample: [batch, classes]
  std::vector<ValueId> perSample;  // one f32 per sample: a regression's prediction, a reconstruction error
  std::vector<std::pair<std::string, ValueId>> metrics;  // one f32 for the batch, by output name: `accuracy`, a KL term
  // The class scores the loss itself reads, where the loss is
  // softmax_cross_entropy (its logits) or cross_entropy (its probabilities),
  // [batch, classes]: training counts right answers from them at no cost.
  ValueId lossScores = kNoValue;

  const ModelParam* param(std::string_view name) const {
    for (const ModelParam& p : params)
      if (p.name == name) return &p;
    return nullptr;
  }
  bool hasBatchParam() const { return param("batch") != nullptr; }
};

// Limits on compile-time work, so runaway loops and recursion end in words.
inline constexpr int kMaxCallDepth = 64;
inline constexpr int64_t kMaxUnrolledSteps = 1'000'000;
inline constexpr size_t kMaxGraphNodes = 1'000'000;

Expected<Elaborated> elaborate(const ast::Program& prog, const ElaborateOptions& opt = {});

}  // namespace nnc
