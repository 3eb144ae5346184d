// PLACEHOLDER
#include "cli/cli.h"

#include <iostream>

namespace nnc::cli {
int run(const std::vector<std::string>&, std::ostream&, std::ostream& err) {
  err << "not yet\n";
  return 1;
}
int main(int argc, char** argv) { return run(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr); }
}  // namespace nnc::cli
