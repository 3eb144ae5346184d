// Lexing and parsing of .nn source into an ast::Program.
#pragma once
#include "base/diagnostics.h"
#include "dsl/ast.h"

namespace nnc {

// Parses the file `file` of `sm`. The first error stops parsing; its
// diagnostic says what was expected at which file:line:col.
Expected<ast::Program> parse(const SourceManager& sm, uint32_t file);

// Limits that keep hostile input from exhausting the stack or memory.
inline constexpr int kMaxNestingDepth = 200;
inline constexpr size_t kMaxSourceBytes = 16u << 20;

}  // namespace nnc
