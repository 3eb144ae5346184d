#include "compiler/jit/compiled.h"

#include <llvm/IR/Intrinsics.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <unordered_map>

#include "compiler/jit/llvm_module.h"
#include "compiler/lower/compile_program.h"
#include "compiler/lower/runtime_calls.h"
#include "runtime/parallel.h"

namespace nnc::jit {

namespace {

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

namespace {

// For each kernel, the first one of the program with its structural key
// (loop::structuralKey): the one whose function every launch of either calls.
// A step repeats kernels a lot (Adam's update per param shape, batchnorm's
// backward per channel count, a block's layers), and LLVM's time grows with
// the functions it is given, not with the launches.
std::vector<size_t> representatives(const std::vector<loop::Kernel>& kernels) {
  std::unordered_map<std::string, size_t> first;
  std::vector<size_t> rep(kernels.size());
  for (size_t i = 0; i < kernels.size(); ++i) rep[i] = first.try_emplace(loop::structuralKey(kernels[i]), i).first->second;
  return rep;
}

// `void entry(float* arena)`: each launch on its slots, then the commits.
// Kernels defined in other modules are declared here and linked by the JIT.
Status addEntry(Module& m, const Program& p, const std::vector<size_t>& rep, const std::string& entry) {
  llvm::Module& mod = llvmModule(m);
  llvm::IRBuilder<> b(llvmContext(m));
  llvm::Function* f = createKernel(m, entry, {b.getPtrTy()});
  NNC_INTERNAL_ASSERT(f, "in the JIT", "the module already defines a function '{}'", entry);
  f->getArg(0)->setName("arena");
  b.SetInsertPoint(llvm::BasicBlock::Create(llvmContext(m), "entry", f));
  auto slot = [&](int s) {
    return b.CreateConstInBoundsGEP1_64(b.getFloatTy(), f->getArg(0),
                                        static_cast<uint64_t>(p.slots[static_cast<size_t>(s)].offset));
  };
  for (const Launch& l : p.launches) {
    std::vector<llvm::Value*> args;
    for (int s : l.slots) args.push_back(slot(s));
    std::vector<llvm::Type*> types(args.size(), b.getPtrTy());
    llvm::FunctionCallee k = mod.getOrInsertFunction(p.kernels[rep[static_cast<size_t>(l.kernel)]].name,
                                                     llvm::FunctionType::get(b.getVoidTy(), types, false));
    b.CreateCall(k, args);
  }
  for (const auto& [dst, src] : p.commits)
    b.CreateMemCpy(slot(dst), llvm::MaybeAlign(64), slot(src), llvm::MaybeAlign(64),
                   static_cast<uint64_t>(p.slots[static_cast<size_t>(dst)].size) * 4);
  b.CreateRetVoid();
  return ok();
}

// `void K.thunk(float** args)` = K(args[0], ...): lets the profiler call
// each kernel through one signature.
void addThunk(Module& m, const loop::Kernel& k) {
  llvm::IRBuilder<> b(llvmContext(m));
  llvm::Function* f = createKernel(m, k.name + ".thunk", {b.getPtrTy()});
  b.SetInsertPoint(llvm::BasicBlock::Create(llvmContext(m), "entry", f));
  std::vector<llvm::Value*> args;
  for (size_t i = 0; i < k.buffers.size(); ++i)
    args.push_back(b.CreateLoad(b.getPtrTy(), b.CreateConstInBoundsGEP1_64(b.getPtrTy(), f->getArg(0), i)));
  b.CreateCall(llvmModule(m).getFunction(k.name), args);
  b.CreateRetVoid();
}

double exprCost(const loop::Expr& e) {
  double c = 1;
  for (const auto& a : e.args) c += exprCost(*a);
  return c;
}

// Statements, loops and expression nodes, plus a fixed cost per kernel.
double compileCost(const loop::Kernel& k) {
  double c = 20;
  std::vector<const loop::Stmt*> todo;
  for (const loop::Stmt& s : k.body) todo.push_back(&s);
  while (!todo.empty()) {
    const loop::Stmt* s = todo.back();
    todo.pop_back();
    c += s->kind == loop::Stmt::Kind::Loop ? 4 : 1;
    if (s->value) c += exprCost(*s->value);
    for (const loop::Stmt& b : s->body) todo.push_back(&b);
  }
  return c;
}

}  // namespace

Status addProgram(Module& m, const Program& p, const std::string& entry) {
  const std::vector<size_t> rep = representatives(p.kernels);
  for (size_t i = 0; i < p.kernels.size(); ++i)
    if (rep[i] == i) NNC_CHECK(addKernel(m, p.kernels[i]));
  return addEntry(m, p, rep, entry);
}

struct CompiledProgram::Impl {
  std::unique_ptr<Engine> engine;
  std::vector<size_t> rep;  // per kernel: the kernel whose function runs it
};

CompiledProgram::~CompiledProgram() { std::free(arenaBlock_); }

Expected<std::unique_ptr<CompiledProgram>> CompiledProgram::create(const Graph& g, const std::vector<ValueId>& targets,
                                                                   const LowerOptions& lower,
                                                                   const CompileOptions& opt) {
  std::unique_ptr<CompiledProgram> cp(new CompiledProgram);
  const auto start = std::chrono::steady_clock::now();
  NNC_TRY(LoweredProgram compiled, compileProgram(g, targets, lower, opt.passes));
  cp->graph_ = std::move(compiled.graph);
  cp->valueMap_ = std::move(compiled.map);
  cp->program_ = std::move(compiled.program);
  cp->times_.passesMs = compiled.passesMs;
  cp->times_.lowerMs = compiled.lowerMs;

  // One module per thread, so that LLVM optimizes and compiles them in
  // parallel; kernels are dealt largest first to the lightest module (by a
  // size estimate: compile time grows with the loops and expressions), and
  // the entry goes with the first.
  auto t0 = std::chrono::steady_clock::now();
  const std::string name = g.name.empty() ? "nnc" : g.name;
  const std::vector<loop::Kernel>& kernels = cp->program_.kernels;
  cp->impl_ = std::make_unique<Impl>();
  if (opt.dedupe) {
    cp->impl_->rep = representatives(kernels);
  } else {
    cp->impl_->rep.resize(kernels.size());
    std::iota(cp->impl_->rep.begin(), cp->impl_->rep.end(), size_t{0});
  }
  const std::vector<size_t>& rep = cp->impl_->rep;
  std::vector<size_t> order;
  std::vector<double> cost(kernels.size());
  for (size_t i = 0; i < kernels.size(); ++i)
    if (rep[i] == i) {
      order.push_back(i);
      cost[i] = compileCost(kernels[i]);
    }
  cp->times_.kernelsCompiled = static_cast<int>(order.size());
  const size_t parts = std::clamp<size_t>(static_cast<size_t>(threadCount()), 1, std::max<size_t>(order.size(), 1));
  std::vector<std::unique_ptr<Module>> modules;
  for (size_t i = 0; i < parts; ++i) modules.push_back(std::make_unique<Module>(name + "." + std::to_string(i)));
  std::vector<double> load(parts, 0.0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cost[a] > cost[b]; });
  for (size_t i : order) {
    const size_t m = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[m] += cost[i];
    NNC_CHECK(addKernel(*modules[m], kernels[i]));
    if (opt.profile) addThunk(*modules[m], kernels[i]);
  }
  cp->profiling_ = opt.profile;
  NNC_CHECK(addEntry(*modules[0], cp->program_, rep, opt.entry));
  cp->times_.irMs = msSince(t0);

  t0 = std::chrono::steady_clock::now();
  NNC_TRY(cp->impl_->engine, Engine::create(opt.optLevel));
  cp->times_.engineMs = msSince(t0);
  for (const RuntimeCall& c : runtimeCalls()) NNC_CHECK(cp->impl_->engine->defineSymbol(std::string(c.name), c.address));
  NNC_CHECK(cp->impl_->engine->defineSymbol("nnc_parallel_for", reinterpret_cast<void*>(&nnc_parallel_for)));
  t0 = std::chrono::steady_clock::now();
  NNC_CHECK(cp->impl_->engine->addAll(std::move(modules), opt.keepIR ? &cp->ir_ : nullptr));
  cp->times_.optimizeMs = msSince(t0);
  t0 = std::chrono::steady_clock::now();
  NNC_TRY(void* fn, cp->impl_->engine->lookup(opt.entry));
  cp->times_.codegenMs = msSince(t0);
  cp->entry_ = reinterpret_cast<void (*)(float*)>(fn);

  const size_t bytes = static_cast<size_t>(std::max<int64_t>(cp->program_.arenaFloats, 16)) * 4;
  // calloc: a large block comes zeroed from mmap, so its pages are touched
  // by the first step rather than here; aligned by hand to 64 bytes.
  cp->arenaBlock_ = std::calloc(bytes + 64, 1);
  if (!cp->arenaBlock_) return error("cannot allocate the {}-byte arena of model '{}'", bytes, g.name);
  const auto addr = reinterpret_cast<uintptr_t>(cp->arenaBlock_);
  cp->arena_ = reinterpret_cast<float*>((addr + 63) / 64 * 64);
  const Graph& lowered = cp->graph_;
  for (ValueId v = 0; v < static_cast<ValueId>(lowered.size()); ++v) {
    const Node& n = lowered.node(v);
    const int s = cp->program_.valueSlot[static_cast<size_t>(v)];
    if (s < 0 || !n.op->is(OpId::Const)) continue;
    float* d = cp->arena_ + cp->program_.slots[static_cast<size_t>(s)].offset;
    const std::vector<double>& vals = n.attrs.floats("value");
    for (int64_t i = 0; i < n.type.numel(); ++i)
      d[i] = static_cast<float>(vals.size() == 1 ? vals[0] : vals.at(static_cast<size_t>(i)));
  }
  cp->times_.totalMs = msSince(start);
  return cp;
}

float* CompiledProgram::data(ValueId v) {
  if (v < 0 || static_cast<size_t>(v) >= valueMap_.size() || valueMap_[static_cast<size_t>(v)] == kNoValue) return nullptr;
  const int s = program_.valueSlot[static_cast<size_t>(valueMap_[static_cast<size_t>(v)])];
  return s < 0 ? nullptr : arena_ + program_.slots[static_cast<size_t>(s)].offset;
}

const float* CompiledProgram::data(ValueId v) const { return const_cast<CompiledProgram*>(this)->data(v); }

int64_t CompiledProgram::size(ValueId v) const {
  if (v < 0 || static_cast<size_t>(v) >= valueMap_.size() || valueMap_[static_cast<size_t>(v)] == kNoValue) return 0;
  const int s = program_.valueSlot[static_cast<size_t>(valueMap_[static_cast<size_t>(v)])];
  return s < 0 ? 0 : program_.slots[static_cast<size_t>(s)].size;
}

void CompiledProgram::run() { entry_(arena_); }

Expected<std::vector<double>> CompiledProgram::profile() {
  std::vector<double> ms;
  for (const Launch& l : program_.launches) {
    const loop::Kernel& k = program_.kernels[impl_->rep[static_cast<size_t>(l.kernel)]];
    if (!profiling_) return error("profile: the program was compiled without CompileOptions::profile");
    NNC_TRY(void* fn, impl_->engine->lookup(k.name + ".thunk"));
    std::vector<float*> args;
    for (int s : l.slots) args.push_back(arena_ + program_.slots[static_cast<size_t>(s)].offset);
    const auto t0 = std::chrono::steady_clock::now();
    reinterpret_cast<void (*)(float* const*)>(fn)(args.data());
    ms.push_back(msSince(t0));
  }
  for (const auto& [dst, src] : program_.commits)
    std::copy_n(arena_ + program_.slots[static_cast<size_t>(src)].offset, program_.slots[static_cast<size_t>(dst)].size,
                arena_ + program_.slots[static_cast<size_t>(dst)].offset);
  return ms;
}

}  // namespace nnc::jit
