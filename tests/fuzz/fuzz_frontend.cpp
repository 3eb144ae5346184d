// Any byte string must end in a graph or a diagnostic: never a crash, a hang
// or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cli/frontend.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nnc::SourceManager sm;
  auto r = nnc::cli::compileSource(sm, "fuzz.nn", std::string(reinterpret_cast<const char*>(data), size));
  if (!r) (void)sm.render(r.error());
  return 0;
}
