// LLJIT behind jit.h. LLVM is built without exceptions: nothing here may throw
// through its frames, and every llvm::Error becomes a Diagnostic at once.
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/Core.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/Analysis/TargetLibraryInfo.h>
#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/DiagnosticInfo.h>
#include <llvm/Linker/Linker.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/DynamicLibrary.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Host.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "runtime/parallel.h"

#include "compiler/jit/llvm_module.h"

namespace nnc::jit {

namespace {

struct HostState {
  HostInfo info;
  std::string triple;
  std::string dataLayout;
};

// Host detection and target registration happen once per process; both are
// needed before the first Module or Engine.
const HostState& hostState() {
  static const HostState state = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    HostState s;
    s.triple = llvm::sys::getProcessTriple();
    s.info.vectorBits = 128;
    auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
    if (!jtmb) {
      // Not expected on any host LLVM was built for; generic code still works.
      llvm::consumeError(jtmb.takeError());
      s.info.cpu = llvm::sys::getHostCPUName().str();
      return s;
    }
    s.info.cpu = jtmb->getCPU();
    s.info.features = jtmb->getFeatures().getString();
    const auto& fs = jtmb->getFeatures().getFeatures();
    auto has = [&](const char* f) { return std::find(fs.begin(), fs.end(), f) != fs.end(); };
    if (has("+avx512f"))
      s.info.vectorBits = 512;
    else if (has("+avx"))
      s.info.vectorBits = 256;
    if (auto dl = jtmb->getDefaultDataLayoutForTarget())
      s.dataLayout = dl->getStringRepresentation();
    else
      llvm::consumeError(dl.takeError());
    return s;
  }();
  return state;
}

llvm::CodeGenOptLevel codeGenLevel(int level) {
  switch (level) {
    case 0: return llvm::CodeGenOptLevel::None;
    case 1: return llvm::CodeGenOptLevel::Less;
    case 2: return llvm::CodeGenOptLevel::Default;
    default: return llvm::CodeGenOptLevel::Aggressive;
  }
}

llvm::OptimizationLevel irLevel(int level) {
  switch (level) {
    case 0: return llvm::OptimizationLevel::O0;
    case 1: return llvm::OptimizationLevel::O1;
    case 2: return llvm::OptimizationLevel::O2;
    default: return llvm::OptimizationLevel::O3;
  }
}

// Writes the module's IR to a fresh temporary file so that a verifier failure
// can be inspected; returns its path, or a note on why there is none.
std::string dumpIR(const llvm::Module& mod, const std::string& function) {
  std::string stem = "nnc-invalid-";
  for (char c : function) stem += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  int fd = -1;
  llvm::SmallString<128> path;
  if (std::error_code ec = llvm::sys::fs::createTemporaryFile(stem, "ll", fd, path))
    return "(IR not dumped: " + ec.message() + ")";
  llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
  mod.print(os, nullptr);
  return path.str().str();
}

}  // namespace

const HostInfo& host() { return hostState().info; }

const char* llvmVersion() { return LLVM_VERSION_STRING; }

Diagnostic toDiagnostic(llvm::Error e, const std::string& what) {
  return error("{}: {}", what, llvm::toString(std::move(e)));
}

// ---------------------------------------------------------------- Module

Module::Module(const std::string& name) : impl_(std::make_unique<Impl>()) {
  const HostState& h = hostState();
  impl_->context = std::make_unique<llvm::LLVMContext>();
  impl_->module = std::make_unique<llvm::Module>(name, *impl_->context);
  impl_->module->setTargetTriple(h.triple);
  impl_->module->setDataLayout(h.dataLayout);
}

Module::~Module() = default;

std::string Module::ir() const {
  std::string s;
  llvm::raw_string_ostream os(s);
  if (impl_->module) impl_->module->print(os, nullptr);
  return s;
}

void setKernelAttributes(llvm::Function& f) {
  const HostInfo& h = host();
  f.addFnAttr("target-cpu", h.cpu);
  if (!h.features.empty()) f.addFnAttr("target-features", h.features);
  if (h.vectorBits == 512) f.addFnAttr("prefer-vector-width", "512");
  f.addFnAttr(llvm::Attribute::NoUnwind);
  f.setUWTableKind(llvm::UWTableKind::Async);
}

llvm::Function* createKernel(Module& m, const std::string& name,
                             llvm::ArrayRef<llvm::Type*> params) {
  llvm::Module& mod = llvmModule(m);
  // Function::Create would silently rename a duplicate to "name.1".
  if (mod.getFunction(name)) return nullptr;
  auto* type = llvm::FunctionType::get(llvm::Type::getVoidTy(mod.getContext()), params, false);
  auto* f = llvm::Function::Create(type, llvm::Function::ExternalLinkage, name, mod);
  setKernelAttributes(*f);
  for (unsigned i = 0; i < params.size(); ++i)
    if (params[i]->isPointerTy()) f->addParamAttr(i, llvm::Attribute::NoAlias);
  return f;
}

// ---------------------------------------------------------------- Engine

struct Engine::Impl {
  int optLevel = 3;
  bool vectorMath = false;  // libmvec is loaded: vector math calls may be generated
  // Only for the IR pipeline's cost model; LLJIT owns the one that emits code.
  std::unique_ptr<llvm::TargetMachine> tm;
  // For the TargetMachines of parallel compilation (addAll).
  std::optional<llvm::orc::JITTargetMachineBuilder> jtmb;
  std::unique_ptr<llvm::orc::LLJIT> jit;
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
int Engine::optLevel() const { return impl_->optLevel; }

Expected<std::unique_ptr<Engine>> Engine::create(int optLevel) {
  if (optLevel < 0 || optLevel > 3) return error("JIT optimization level must be 0..3, not {}", optLevel);
  hostState();
  auto impl = std::make_unique<Impl>();
  impl->optLevel = optLevel;

  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) return toDiagnostic(jtmb.takeError(), "cannot detect the host for the JIT");
  jtmb->setCodeGenOptLevel(codeGenLevel(optLevel));
  // Object files we emit ourselves (addAll) are linked at any address.
  jtmb->setRelocationModel(llvm::Reloc::PIC_);
  jtmb->setCodeModel(llvm::CodeModel::Small);
  impl->jtmb = *jtmb;

  auto tm = jtmb->createTargetMachine();
  if (!tm) return toDiagnostic(tm.takeError(), "cannot create the JIT's target machine");
  impl->tm = std::move(*tm);

  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(*jtmb).create();
  if (!jit) return toDiagnostic(jit.takeError(), "cannot create the JIT");
  impl->jit = std::move(*jit);

  // Loaded into the process (globally), so the search below finds it.
  impl->vectorMath = !llvm::sys::DynamicLibrary::LoadLibraryPermanently("libmvec.so.1");
  // The optimizer may turn loops into memset/memcpy and generated code may
  // call libm: resolve what no module defines from the process itself.
  auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      impl->jit->getDataLayout().getGlobalPrefix());
  if (!gen) return toDiagnostic(gen.takeError(), "cannot expose the process's symbols to the JIT");
  impl->jit->getMainJITDylib().addGenerator(std::move(*gen));

  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

namespace {

// Function by function first, so that the error names the culprit.
Status verify(llvm::Module& mod) {
  for (llvm::Function& f : mod) {
    if (f.isDeclaration()) continue;
    std::string msg;
    llvm::raw_string_ostream os(msg);
    if (llvm::verifyFunction(f, &os)) {
      std::string name = f.getName().str();
      return internalError("in the JIT", "LLVM IR verification failed for function '{}' (IR dumped to {}):\n{}", name,
                           dumpIR(mod, name), llvm::StringRef(msg).trim().str());
    }
  }
  std::string msg;
  llvm::raw_string_ostream os(msg);
  if (llvm::verifyModule(mod, &os))
    return internalError("in the JIT", "LLVM IR verification failed for module '{}' (IR dumped to {}):\n{}",
                         mod.getName().str(), dumpIR(mod, mod.getName().str()), llvm::StringRef(msg).trim().str());
  return ok();
}

// The modules' IR as one module, as `llvm-as` and `opt` take it: each one
// printed and parsed again into one context (they have a context each), then
// linked, which resolves the calls from one module into another. Named for
// the first module without its ".N" part suffix.
Expected<std::string> linkedIR(const std::vector<std::unique_ptr<Module>>& ms) {
  if (ms.size() == 1) return ms[0]->ir();
  llvm::LLVMContext ctx;
  std::string name = ms.empty() ? "nnc" : llvmModule(*ms[0]).getName().str();
  if (const size_t dot = name.rfind('.');
      dot != std::string::npos && dot + 1 < name.size() &&
      std::all_of(name.begin() + static_cast<std::ptrdiff_t>(dot) + 1, name.end(), [](unsigned char c) { return std::isdigit(c); }))
    name.resize(dot);
  auto linked = std::make_unique<llvm::Module>(name, ctx);
  if (!ms.empty()) {
    linked->setTargetTriple(llvmModule(*ms[0]).getTargetTriple());
    linked->setDataLayout(llvmModule(*ms[0]).getDataLayout());
  }
  llvm::Linker linker(*linked);
  for (const auto& m : ms) {
    const std::string text = m->ir();
    llvm::SMDiagnostic diag;
    std::unique_ptr<llvm::Module> part = llvm::parseAssemblyString(text, diag, ctx);
    if (!part)
      return internalError("in the JIT", "cannot read back the IR of module '{}': {}", llvmModule(*m).getName().str(),
                           diag.getMessage().str());
    if (linker.linkInModule(std::move(part)))
      return internalError("in the JIT", "cannot link module '{}' into one module", llvmModule(*m).getName().str());
  }
  std::string s;
  llvm::raw_string_ostream os(s);
  linked->print(os, nullptr);
  return s;
}

}  // namespace

void Engine::optimize(llvm::Module& mod, llvm::TargetMachine& tm) const {
  // Declared in this order so that they are destroyed in the reverse one.
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PipelineTuningOptions pto;
  // As clang sets them: vectorize from O2 on.
  pto.LoopVectorization = impl_->optLevel >= 2;
  pto.SLPVectorization = impl_->optLevel >= 2;
  pto.LoopInterleaving = impl_->optLevel >= 2;
  // With the TargetMachine, the vectorizer gets the host's cost model.
  llvm::PassBuilder pb(&tm, pto);
  // glibc's libmvec gives the vectorizer vector exp/log/tanh/pow: without
  // it, a loop calling them runs one lane at a time. Registered before the
  // defaults, which then leave ours in place.
  llvm::TargetLibraryInfoImpl tlii{llvm::Triple(mod.getTargetTriple())};
  if (impl_->vectorMath)
    tlii.addVectorizableFunctionsFromVecLib(llvm::TargetLibraryInfoImpl::LIBMVEC_X86, llvm::Triple(mod.getTargetTriple()));
  fam.registerPass([&] { return llvm::TargetLibraryAnalysis(tlii); });
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = impl_->optLevel == 0 ? pb.buildO0DefaultPipeline(llvm::OptimizationLevel::O0)
                                                     : pb.buildPerModuleDefaultPipeline(irLevel(impl_->optLevel));
  mpm.run(mod, mam);
}

Status Engine::add(std::unique_ptr<Module> m, std::string* optimizedIR) {
  NNC_INTERNAL_ASSERT(m && m->impl().module, "in the JIT", "no module to add");
  llvm::Module& mod = llvmModule(*m);
  NNC_CHECK(verify(mod));
  mod.setDataLayout(impl_->jit->getDataLayout());
  optimize(mod, *impl_->tm);
  if (optimizedIR) *optimizedIR = m->ir();

  llvm::orc::ThreadSafeModule tsm(std::move(m->impl().module), std::move(m->impl().context));
  if (auto e = impl_->jit->addIRModule(std::move(tsm)))
    return toDiagnostic(std::move(e), "cannot add module to the JIT");
  return ok();
}

Status Engine::addAll(std::vector<std::unique_ptr<Module>> ms, std::string* optimizedIR) {
  for (auto& m : ms) {
    NNC_INTERNAL_ASSERT(m && m->impl().module, "in the JIT", "no module to add");
    NNC_CHECK(verify(llvmModule(*m)));
    llvmModule(*m).setDataLayout(impl_->jit->getDataLayout());
  }
  // Each module has its own LLVMContext and gets its own TargetMachine, so
  // optimization and code generation run on the pool's threads side by side.
  std::vector<llvm::SmallVector<char, 0>> objects(ms.size());
  std::vector<std::string> failures(ms.size());
  parallelFor(static_cast<int64_t>(ms.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      auto tm = impl_->jtmb->createTargetMachine();
      if (!tm) {
        failures[static_cast<size_t>(i)] = llvm::toString(tm.takeError());
        continue;
      }
      llvm::Module& mod = llvmModule(*ms[static_cast<size_t>(i)]);
      optimize(mod, **tm);
      llvm::raw_svector_ostream os(objects[static_cast<size_t>(i)]);
      llvm::legacy::PassManager pm;
      if ((*tm)->addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::ObjectFile)) {
        failures[static_cast<size_t>(i)] = "the target cannot emit object files";
        continue;
      }
      pm.run(mod);
    }
  });
  for (const std::string& f : failures)
    NNC_INTERNAL_ASSERT(f.empty(), "in the JIT", "code generation failed: {}", f);
  if (optimizedIR) {
    NNC_TRY(*optimizedIR, linkedIR(ms));
  }
  for (size_t i = 0; i < ms.size(); ++i) {
    auto buf = llvm::MemoryBuffer::getMemBufferCopy(llvm::StringRef(objects[i].data(), objects[i].size()),
                                                    llvmModule(*ms[i]).getName());
    if (auto e = impl_->jit->addObjectFile(std::move(buf)))
      return toDiagnostic(std::move(e), "cannot add an object file to the JIT");
  }
  return ok();
}

Expected<void*> Engine::lookup(const std::string& name) {
  auto addr = impl_->jit->lookup(name);
  if (!addr) return toDiagnostic(addr.takeError(), "JIT lookup of '" + name + "' failed");
  return addr->toPtr<void*>();
}

Status Engine::defineSymbol(const std::string& name, void* address) {
  llvm::orc::SymbolMap symbols;
  symbols[impl_->jit->mangleAndIntern(name)] = llvm::orc::ExecutorSymbolDef(
      llvm::orc::ExecutorAddr::fromPtr(address),
      llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable);
  if (auto e = impl_->jit->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(symbols))))
    return toDiagnostic(std::move(e), "cannot define JIT symbol '" + name + "'");
  return ok();
}

}  // namespace nnc::jit
