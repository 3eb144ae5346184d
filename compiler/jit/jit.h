// The JIT behind a small interface of our own: LLVM's headers are slow to
// compile and warn under our flags, so they stay in compiler/jit/*.cpp (and
// the internal compiler/jit/llvm_module.h that only those files include).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/diagnostics.h"

namespace nnc::loop {
struct Kernel;
}
namespace llvm {
class Module;
class TargetMachine;
}  // namespace llvm

namespace nnc::jit {

struct HostInfo {
  std::string cpu;       // LLVM's name, e.g. "znver4"
  std::string features;  // "+avx2,+avx512f,-..." as LLVM's subtarget features
  int vectorBits;        // the vector width generated code should prefer: 512, 256 or 128
};
// Detected once; the same values the Engine compiles for.
const HostInfo& host();
// The LLVM release nnc was built against, e.g. "19.1.7" (for `nnc --version`).
const char* llvmVersion();

// One unit of generated code: an LLVMContext and an llvm::Module, already set
// up with the host's triple and data layout. Code generators in
// compiler/jit/*.cpp reach the LLVM objects through llvm_module.h.
class Module {
 public:
  explicit Module(const std::string& name = "nnc");
  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The unoptimized IR, for debugging generators.
  std::string ir() const;

  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

class Engine {
 public:
  // optLevel 0..3 selects both the IR pipeline and the code generator's level.
  static Expected<std::unique_ptr<Engine>> create(int optLevel = 3);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Verifies, optimizes and adds `m`. An invalid module gives an error that
  // names the function and a file holding the IR, never a crash. With
  // optimizedIR, also returns the IR as it is after optimization.
  Status add(std::unique_ptr<Module> m, std::string* optimizedIR = nullptr);
  // The same for several modules at once, optimized and compiled to object
  // code in parallel on the thread pool (runtime/parallel.h); functions may
  // call across modules. With optimizedIR, their IR linked into one module
  // (one valid .ll file, as llvm-as and opt take it).
  Status addAll(std::vector<std::unique_ptr<Module>> ms, std::string* optimizedIR = nullptr);

  // The address of a function added earlier; compiles it on first lookup.
  Expected<void*> lookup(const std::string& name);

  // Makes `address` callable from JIT'd code as the C symbol `name`. The
  // function must not throw: LLVM is built without exceptions, and JIT'd
  // frames are nounwind. Fails if the name is already defined.
  Status defineSymbol(const std::string& name, void* address);

  int optLevel() const;

  struct Impl;

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  void optimize(llvm::Module& mod, llvm::TargetMachine& tm) const;
  std::unique_ptr<Impl> impl_;
};


// The loop IR's LLVM printer: adds `void K(float* noalias b0, ...)` for kernel K.
Status addKernel(Module& m, const nnc::loop::Kernel& k);

// Demo generators that exercise the whole path until the real lowering
// replaces them (they also let tests stay free of LLVM headers).
//   void name(float* noalias y, const float* noalias x, float a, int64_t n)
//   { for (i = 0; i < n; ++i) y[i] = a * x[i] + y[i]; }   // contract: may fuse
Status addSaxpy(Module& m, const std::string& name);
//   void name(float* noalias y, int64_t n) { callee(y, n); }
// with `callee` an external C function resolved at link time.
Status addCallExternal(Module& m, const std::string& name, const std::string& callee);
// A function whose entry block has no terminator: for testing verification.
Status addBrokenFunction(Module& m, const std::string& name);

}  // namespace nnc::jit
