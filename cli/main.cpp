#include "cli/cli.h"

int main(int argc, char** argv) { return nnc::cli::main(argc, argv); }
