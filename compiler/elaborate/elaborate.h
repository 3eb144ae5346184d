// Elaboration: from the syntax tree to a graph. Runs the compile-time part of
// the language (integer arithmetic, `def` expansion, `for` unrolling, layer
// sugar creating named params) and checks every shape on the way.
#pragma once
#include <map>
#include <string>
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
};

struct Elaborated {
  Graph graph;
  std::optional<TrainConfig> train;  // the train block naming this model, if any
};

// Limits on compile-time work, so runaway loops and recursion end in words.
inline constexpr int kMaxCallDepth = 64;
inline constexpr int64_t kMaxUnrolledSteps = 1'000'000;
inline constexpr size_t kMaxGraphNodes = 1'000'000;

Expected<Elaborated> elaborate(const ast::Program& prog, const ElaborateOptions& opt = {});

}  // namespace nnc
