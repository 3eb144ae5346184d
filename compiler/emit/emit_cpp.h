// nnc emit-cpp: a model as standalone C++ (no nnc, LLVM or fmt): a class
// with `infer` (and `train_step`) over fixed-size buffers, printed from the
// very programs the JIT compiles: the same graph passes and fusions, the
// same lowering to loop IR (one C++ function per kernel, printed by
// loop::printCpp), the same memory plan (one arena per program, the same
// slot offsets) and the same runtime calls (the GEMM and convolutions of
// runtime/, copied next to the model by emitRuntime).
//
// Files written (NAME = the model's name):
//   NAME.hpp, NAME.cpp    the class NS::NAME: kernels, entry functions, params
//   nnc_runtime.h/.cpp    the runtime the kernels call (compiler/emit/emit_runtime.cpp)
//   main_example.cpp      a tiny program running the model
//   CMakeLists.txt        builds main_example
//   NAME.weights          with weightsFile: the params, raw little-endian f32
// Every .cpp goes into one program: `g++ OUTDIR/*.cpp` builds main_example.
#pragma once
#include <string>
#include <vector>

#include "compiler/elaborate/elaborate.h"
#include "compiler/graph/graph_util.h"
#include "compiler/passes/pipeline.h"

namespace nnc {

struct EmitCppOptions {
  std::string ns = "nnc_model";  // the namespace of the class
  bool train = false;            // also train_step (forward, backward and the train block's optimizer)
  // Params in NAME.weights, read at run time (the constructor takes its
  // path), instead of constant arrays in NAME.cpp.
  bool weightsFile = false;
  PassOptions passes;            // the graph passes and fusions, as for the JIT
  // Every param of the model by name: its initial or trained value.
  TensorMap params;
  // Optimizer state by name ("W.m", "train.step"); missing entries start
  // from their initializers (zeros).
  TensorMap state;
  std::string origin;  // the command that emitted it, for the files' first comment
};

struct EmittedFile {
  std::string name;  // relative to the output folder
  std::string text;  // C++ source, or the bytes of NAME.weights
};

// The model's files (runtime included). Fails for a model without outputs,
// with --train for one without a loss, and for params missing from
// `opt.params` or of the wrong size.
Expected<std::vector<EmittedFile>> emitCpp(const Elaborated& model, const EmitCppOptions& opt);

// nnc_runtime.h and nnc_runtime.cpp: the runtime/ sources the kernels call,
// made standalone (compiler/emit/emit_runtime.cpp).
Expected<std::vector<EmittedFile>> emitRuntime();

// What main_example.cpp and CMakeLists.txt need to know of the class
// (compiler/emit/emit_example.cpp).
struct EmittedApi {
  struct Operand {
    std::string name, id;  // the graph's name, the C++ parameter's
    TensorType type;
    std::vector<double> example;  // an input's example value (one value: all elements)
    bool probabilities = false;   // an output computed by softmax
  };
  std::string model, file, cls, ns;  // file: NAME of NAME.hpp
  std::vector<Operand> inputs, inferLabels, outputs, labels;  // infer's operands in order; train_step's labels
  bool train = false, weightsFile = false;
};
std::vector<EmittedFile> emitExample(const EmittedApi& api);

}  // namespace nnc
