// Loading a model for a command: a .nn file (read, parse, elaborate) or an
// .onnx file (imported in memory into .nn text, then the same); diagnostics
// are rendered with file:line:col, the source line and a caret. The values
// of `load("w.npz")` initializers are read here, where the file's folder is
// known.
#pragma once
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/diagnostics.h"
#include "base/tensor.h"
#include "compiler/elaborate/elaborate.h"
#include "dsl/ast.h"

namespace nnc::cli {

// Arrays a model's load() calls take from memory rather than from a file:
// an imported ONNX model's weights, under the file name its source gives.
struct MemoryWeights {
  std::string file;
  std::map<std::string, Tensor> arrays;
};

struct Loaded {
  std::unique_ptr<SourceManager> sm = std::make_unique<SourceManager>();
  ast::Program program;
  Elaborated model;
  MemoryWeights imported;  // an .onnx model's weights (file empty for a .nn file)
};

// Prints the diagnostic and returns nullopt on any error. A path ending in
// .onnx is imported first (onnx/onnx_io.h).
std::optional<Loaded> load(const std::string& path, const ElaborateOptions& opt, std::ostream& err);

// Parses and elaborates `text` as if read from `name` (load() paths are
// relative to its folder), for tests, the fuzzer and imported models.
Expected<Elaborated> compileSource(SourceManager& sm, const std::string& name, std::string text,
                                   const ElaborateOptions& opt = {}, const MemoryWeights* memory = nullptr);

// Fills every load() param of g from its .npz (relative to sourcePath's
// folder) or from `memory`; a missing file, array or a shape that differs
// from the declaration is an error at the param.
Status resolveLoads(Graph& g, const std::string& sourcePath, const MemoryWeights* memory);

}  // namespace nnc::cli
