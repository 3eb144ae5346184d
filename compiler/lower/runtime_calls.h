// The runtime functions generated code may call (loop IR `call` statements):
// the GEMM, the thread pool, random masks. One table serves every consumer:
// the JIT defines each name as an absolute symbol, the loop IR evaluator runs
// `evaluate`, and emit-cpp copies the functions' sources next to the model.
// Signatures are C, with arguments in the call statement's order:
//   void name(float* p0, ..., int64_t i0, ..., float f0, ...)
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace nnc {

struct RuntimeCall {
  std::string_view name;
  int pointers = 0, ints = 0, floats = 0;  // the signature
  int output = 0;  // the first pointer operand the function writes; it reads the others
  void* address = nullptr;                 // the C function, for the JIT
  // The same function behind one uniform signature, for the evaluator.
  void (*evaluate)(float* const* p, const int64_t* i, const float* f) = nullptr;
  int outputs = 1;  // how many pointer operands it writes, from `output` on
};

const std::vector<RuntimeCall>& runtimeCalls();
const RuntimeCall* findRuntimeCall(std::string_view name);  // null if unknown

}  // namespace nnc
