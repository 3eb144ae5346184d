// PLACEHOLDER: filled in by the nn ops work.
#include "compiler/op_registry.h"

namespace nnc {

void addNNOps(std::vector<OpDef>&) {}

}  // namespace nnc
