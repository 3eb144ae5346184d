// The nnc command line, as a library so tests can run it in-process.
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

namespace nnc::cli {

// Runs `nnc args...` writing to `out` and `err`; returns the exit code.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int main(int argc, char** argv);

}  // namespace nnc::cli
