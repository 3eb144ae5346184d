// Whole-file reads and atomic writes, with errno's words on failure.
#pragma once
#include <string>
#include <string_view>

#include "base/diagnostics.h"

namespace nnc {

// Writes `bytes` to `path` through a temporary file and rename, so a reader
// never sees a half-written file. Errors (full disk, missing folder) in words.
Status writeFileAtomic(const std::string& path, std::string_view bytes);
Expected<std::string> readFile(const std::string& path);

}  // namespace nnc
