// Shared helpers for front-end and CLI tests.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli/cli.h"
#include "cli/frontend.h"

namespace nnc::test {

inline std::string sourcePath(const std::string& rel) { return std::string(NNC_SOURCE_DIR) + "/" + rel; }

// A fresh, empty folder under the system's temporary directory, named for
// the test and the process (ctest runs test cases in parallel processes).
inline std::string tempDir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("nnc_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

inline std::string readText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// Compiles `src` as the file "m.nn"; on error, the rendered diagnostic.
struct Compiled {
  std::optional<Elaborated> model;
  std::string diag;
};
inline Compiled compile(const std::string& src, ElaborateOptions opt = {}) {
  SourceManager sm;
  auto r = cli::compileSource(sm, "m.nn", src, opt);
  if (!r) return {std::nullopt, sm.render(r.error())};
  return {r.take(), ""};
}

struct CliResult {
  int code;
  std::string out, err;
};
inline CliResult runCli(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  int code = cli::run(args, out, err);
  return {code, out.str(), err.str()};
}

// Compares with a golden file in tests/golden; NNC_UPDATE_GOLDEN=1 rewrites it.
inline bool matchesGolden(const std::string& text, const std::string& name) {
  const std::string path = sourcePath("tests/golden/" + name);
  if (std::getenv("NNC_UPDATE_GOLDEN")) std::ofstream(path, std::ios::binary) << text;
  return readText(path) == text;
}

}  // namespace nnc::test
