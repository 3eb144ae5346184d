// Internal to compiler/jit/*.cpp: the LLVM side of jit::Module, and the
// helpers every generated function needs. Includes LLVM; never include it
// from outside compiler/jit/.
#pragma once
#include <memory>
#include <string>

#include <llvm/ADT/ArrayRef.h>
#include <llvm/IR/DerivedTypes.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/Error.h>

#include "compiler/jit/jit.h"

namespace nnc::jit {

struct Module::Impl {
  // Declared before `module` so that it outlives it.
  std::unique_ptr<llvm::LLVMContext> context;
  std::unique_ptr<llvm::Module> module;
};

inline llvm::LLVMContext& llvmContext(Module& m) { return *m.impl().context; }
inline llvm::Module& llvmModule(Module& m) { return *m.impl().module; }

// Sets what every generated function needs: the host's CPU and features (so
// the backend and the vectorizer's cost model see AVX-512 etc.), the preferred
// vector width (LLVM defaults to 256 bits even on AVX-512 CPUs), nounwind, and
// an async unwind table so that profilers and debuggers can walk JIT'd frames.
void setKernelAttributes(llvm::Function& f);

// Creates `void name(params...)` with external linkage and the attributes
// above. Pointer parameters are noalias: buffers handed to a kernel never
// overlap, and saying so removes the vectorizer's runtime alias checks.
// Null if the module already has a function of that name.
llvm::Function* createKernel(Module& m, const std::string& name,
                             llvm::ArrayRef<llvm::Type*> params);

// llvm::Error -> our Diagnostic, with a context prefix. Consumes the error.
Diagnostic toDiagnostic(llvm::Error e, const std::string& what);

}  // namespace nnc::jit
