// Loading a .nn file for a command: read, parse, elaborate; diagnostics are
// rendered with file:line:col, the source line and a caret.
#pragma once
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>

#include "base/diagnostics.h"
#include "compiler/elaborate/elaborate.h"
#include "dsl/ast.h"

namespace nnc::cli {

struct Loaded {
  std::unique_ptr<SourceManager> sm = std::make_unique<SourceManager>();
  ast::Program program;
  Elaborated model;
};

// Prints the diagnostic and returns nullopt on any error.
std::optional<Loaded> load(const std::string& path, const ElaborateOptions& opt, std::ostream& err);

// Parses and elaborates `text` as if read from `name`, for tests and the fuzzer.
Expected<Elaborated> compileSource(SourceManager& sm, const std::string& name, std::string text,
                                   const ElaborateOptions& opt = {});

}  // namespace nnc::cli
