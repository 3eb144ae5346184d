// Demo generators (see jit.h): small, but they take the path the real
// lowering will take, from IRBuilder to a callable pointer.
#include "compiler/jit/llvm_module.h"

namespace nnc::jit {

namespace {

Diagnostic duplicate(const std::string& name) {
  return internalError("in the JIT", "the module already defines a function '{}'", name);
}

}  // namespace

Status addSaxpy(Module& m, const std::string& name) {
  llvm::LLVMContext& ctx = llvmContext(m);
  llvm::IRBuilder<> b(ctx);
  llvm::Type* ptr = b.getPtrTy();
  llvm::Function* f = createKernel(m, name, {ptr, ptr, b.getFloatTy(), b.getInt64Ty()});
  if (!f) return duplicate(name);
  llvm::Argument* y = f->getArg(0);
  llvm::Argument* x = f->getArg(1);
  llvm::Argument* a = f->getArg(2);
  llvm::Argument* n = f->getArg(3);
  y->setName("y");
  x->setName("x");
  a->setName("a");
  n->setName("n");
  f->addParamAttr(1, llvm::Attribute::ReadOnly);

  auto* entry = llvm::BasicBlock::Create(ctx, "entry", f);
  auto* loop = llvm::BasicBlock::Create(ctx, "loop", f);
  auto* exit = llvm::BasicBlock::Create(ctx, "exit", f);

  b.SetInsertPoint(entry);
  b.CreateCondBr(b.CreateICmpSGT(n, b.getInt64(0)), loop, exit);

  b.SetInsertPoint(loop);
  llvm::PHINode* i = b.CreatePHI(b.getInt64Ty(), 2, "i");
  llvm::Value* xp = b.CreateInBoundsGEP(b.getFloatTy(), x, i);
  llvm::Value* yp = b.CreateInBoundsGEP(b.getFloatTy(), y, i);
  llvm::Value* xv = b.CreateLoad(b.getFloatTy(), xp, "xv");
  llvm::Value* yv = b.CreateLoad(b.getFloatTy(), yp, "yv");
  // contract lets the backend fuse the multiply-add into an FMA.
  llvm::FastMathFlags fmf;
  fmf.setAllowContract();
  b.setFastMathFlags(fmf);
  llvm::Value* sum = b.CreateFAdd(b.CreateFMul(a, xv), yv);
  b.CreateStore(sum, yp);
  llvm::Value* next = b.CreateAdd(i, b.getInt64(1), "i.next", /*HasNUW=*/true, /*HasNSW=*/true);
  i->addIncoming(b.getInt64(0), entry);
  i->addIncoming(next, loop);
  b.CreateCondBr(b.CreateICmpSLT(next, n), loop, exit);

  b.SetInsertPoint(exit);
  b.CreateRetVoid();
  return ok();
}

Status addCallExternal(Module& m, const std::string& name, const std::string& callee) {
  llvm::LLVMContext& ctx = llvmContext(m);
  llvm::IRBuilder<> b(ctx);
  llvm::Function* f = createKernel(m, name, {b.getPtrTy(), b.getInt64Ty()});
  if (!f) return duplicate(name);
  auto* calleeType = llvm::FunctionType::get(b.getVoidTy(), {b.getPtrTy(), b.getInt64Ty()}, false);
  llvm::FunctionCallee target = llvmModule(m).getOrInsertFunction(callee, calleeType);
  if (auto* decl = llvm::dyn_cast<llvm::Function>(target.getCallee()))
    decl->addFnAttr(llvm::Attribute::NoUnwind);  // runtime functions must not throw (jit.h)
  b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", f));
  b.CreateCall(target, {f->getArg(0), f->getArg(1)});
  b.CreateRetVoid();
  return ok();
}

Status addBrokenFunction(Module& m, const std::string& name) {
  llvm::LLVMContext& ctx = llvmContext(m);
  llvm::IRBuilder<> b(ctx);
  llvm::Function* f = createKernel(m, name, {b.getFloatTy()});
  if (!f) return duplicate(name);
  b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", f));
  b.CreateFAdd(f->getArg(0), f->getArg(0));  // and no terminator
  return ok();
}

}  // namespace nnc::jit
