// The loop IR's LLVM printer: each Kernel becomes
//   void name(float* noalias b0, float* noalias b1, ...)
// with counted loops, affine address arithmetic and guards, built with
// IRBuilder. Arithmetic carries `contract`, so multiply-adds become FMAs.
#include <llvm/IR/Intrinsics.h>

#include "compiler/jit/llvm_module.h"
#include "compiler/loop_ir.h"

namespace nnc::jit {

namespace {

class Codegen {
 public:
  Codegen(Module& m, const loop::Kernel& k, llvm::Function* f)
      : ctx_(llvmContext(m)), mod_(llvmModule(m)), k_(k), f_(f), b_(ctx_), vars_(static_cast<size_t>(k.numVars)) {
    llvm::FastMathFlags fmf;
    fmf.setAllowContract();
    b_.setFastMathFlags(fmf);
  }

  void run() {
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", f_));
    for (const loop::Stmt& s : k_.body) stmt(s);
    b_.CreateRetVoid();
  }

 private:
  // nsw only: offsets such as i - 1 are negative before a guard rejects
  // them, so unsigned wrap-around would make them poison.
  llvm::Value* affine(const loop::Affine& a) {
    llvm::Value* r = nullptr;
    for (const auto& [v, coeff] : a.terms) {
      llvm::Value* term = vars_[static_cast<size_t>(v)];
      if (coeff != 1) term = b_.CreateMul(term, b_.getInt64(coeff), "", false, true);
      r = r ? b_.CreateAdd(r, term, "", false, true) : term;
    }
    if (!r) return b_.getInt64(a.c);
    return a.c ? b_.CreateAdd(r, b_.getInt64(a.c), "", false, true) : r;
  }

  llvm::Value* address(int buf, const loop::Affine& index) {
    return b_.CreateInBoundsGEP(b_.getFloatTy(), f_->getArg(static_cast<unsigned>(buf)), affine(index));
  }

  llvm::Value* intrinsic(llvm::Intrinsic::ID id, std::vector<llvm::Value*> args) {
    llvm::Function* fn = llvm::Intrinsic::getDeclaration(&mod_, id, {b_.getFloatTy()});
    return b_.CreateCall(fn, args);
  }

  llvm::Value* expr(const loop::Expr& e) {
    using loop::Op;
    auto arg = [&](size_t i) { return expr(*e.args[i]); };
    switch (e.op) {
      case Op::Const: return llvm::ConstantFP::get(b_.getFloatTy(), e.value);
      case Op::Load: return b_.CreateLoad(b_.getFloatTy(), address(e.buf, e.index));
      case Op::Index: return b_.CreateSIToFP(vars_[static_cast<size_t>(e.buf)], b_.getFloatTy());
      case Op::Neg: return b_.CreateFNeg(arg(0));
      case Op::Exp: return intrinsic(llvm::Intrinsic::exp, {arg(0)});
      case Op::Log: return intrinsic(llvm::Intrinsic::log, {arg(0)});
      case Op::Sqrt: return intrinsic(llvm::Intrinsic::sqrt, {arg(0)});
      case Op::Abs: return intrinsic(llvm::Intrinsic::fabs, {arg(0)});
      case Op::Tanh: {
        // No LLVM intrinsic: call libm's tanhf (the engine resolves process symbols).
        llvm::FunctionCallee fn = mod_.getOrInsertFunction(
            "tanhf", llvm::FunctionType::get(b_.getFloatTy(), {b_.getFloatTy()}, false));
        return b_.CreateCall(fn, {arg(0)});
      }
      case Op::Pow: return intrinsic(llvm::Intrinsic::pow, {arg(0), arg(1)});
      case Op::Add: return b_.CreateFAdd(arg(0), arg(1));
      case Op::Sub: return b_.CreateFSub(arg(0), arg(1));
      case Op::Mul: return b_.CreateFMul(arg(0), arg(1));
      case Op::Div: return b_.CreateFDiv(arg(0), arg(1));
      // maxnum/minnum match std::fmax/fmin, the evaluator's and the C++ printer's.
      case Op::Max: return intrinsic(llvm::Intrinsic::maxnum, {arg(0), arg(1)});
      case Op::Min: return intrinsic(llvm::Intrinsic::minnum, {arg(0), arg(1)});
      case Op::Greater:
        return b_.CreateSelect(b_.CreateFCmpOGT(arg(0), arg(1)), llvm::ConstantFP::get(b_.getFloatTy(), 1.0),
                               llvm::ConstantFP::get(b_.getFloatTy(), 0.0));
      case Op::Equal:
        return b_.CreateSelect(b_.CreateFCmpOEQ(arg(0), arg(1)), llvm::ConstantFP::get(b_.getFloatTy(), 1.0),
                               llvm::ConstantFP::get(b_.getFloatTy(), 0.0));
      case Op::Select: {
        llvm::Value* c = b_.CreateFCmpOGT(arg(0), llvm::ConstantFP::get(b_.getFloatTy(), 0.0));
        return b_.CreateSelect(c, arg(1), arg(2));
      }
    }
    return nullptr;
  }

  void stmt(const loop::Stmt& s) {
    switch (s.kind) {
      case loop::Stmt::Kind::Loop: {
        if (s.extent <= 0) return;
        llvm::BasicBlock* pre = b_.GetInsertBlock();
        auto* body = llvm::BasicBlock::Create(ctx_, "loop", f_);
        auto* after = llvm::BasicBlock::Create(ctx_, "after", f_);
        b_.CreateBr(body);
        b_.SetInsertPoint(body);
        llvm::PHINode* i = b_.CreatePHI(b_.getInt64Ty(), 2, llvm::Twine("i") + llvm::Twine(s.var));
        i->addIncoming(b_.getInt64(0), pre);
        vars_[static_cast<size_t>(s.var)] = i;
        for (const loop::Stmt& c : s.body) stmt(c);
        llvm::Value* next = b_.CreateAdd(i, b_.getInt64(1), "", true, true);  // 0 <= i < extent: no wrap
        i->addIncoming(next, b_.GetInsertBlock());
        b_.CreateCondBr(b_.CreateICmpSLT(next, b_.getInt64(s.extent)), body, after);
        b_.SetInsertPoint(after);
        return;
      }
      case loop::Stmt::Kind::Guard: {
        llvm::Value* c = affine(s.cond);
        llvm::Value* in = b_.CreateAnd(b_.CreateICmpSGE(c, b_.getInt64(s.lo)), b_.CreateICmpSLT(c, b_.getInt64(s.hi)));
        auto* then = llvm::BasicBlock::Create(ctx_, "then", f_);
        auto* after = llvm::BasicBlock::Create(ctx_, "endif", f_);
        b_.CreateCondBr(in, then, after);
        b_.SetInsertPoint(then);
        for (const loop::Stmt& c2 : s.body) stmt(c2);
        b_.CreateBr(after);
        b_.SetInsertPoint(after);
        return;
      }
      case loop::Stmt::Kind::Call: {
        std::vector<llvm::Type*> types;
        std::vector<llvm::Value*> args;
        for (const loop::CallArg& a : s.pointers) {
          types.push_back(b_.getPtrTy());
          args.push_back(address(a.buf, a.offset));
        }
        for (int64_t i : s.ints) {
          types.push_back(b_.getInt64Ty());
          args.push_back(b_.getInt64(i));
        }
        for (float f : s.floats) {
          types.push_back(b_.getFloatTy());
          args.push_back(llvm::ConstantFP::get(b_.getFloatTy(), f));
        }
        llvm::FunctionCallee fn =
            mod_.getOrInsertFunction(s.callee, llvm::FunctionType::get(b_.getVoidTy(), types, false));
        b_.CreateCall(fn, args);
        return;
      }
      case loop::Stmt::Kind::Store: {
        llvm::Value* v = expr(*s.value);
        llvm::Value* p = address(s.buf, s.index);
        if (s.combine != loop::Combine::Assign) {
          llvm::Value* old = b_.CreateLoad(b_.getFloatTy(), p);
          v = s.combine == loop::Combine::Add ? b_.CreateFAdd(old, v) : intrinsic(llvm::Intrinsic::maxnum, {old, v});
        }
        b_.CreateStore(v, p);
        return;
      }
    }
  }

  llvm::LLVMContext& ctx_;
  llvm::Module& mod_;
  const loop::Kernel& k_;
  llvm::Function* f_;
  llvm::IRBuilder<> b_;
  std::vector<llvm::Value*> vars_;
};

}  // namespace

Status addKernel(Module& m, const loop::Kernel& k) {
  llvm::LLVMContext& ctx = llvmContext(m);
  std::vector<llvm::Type*> params(k.buffers.size(), llvm::PointerType::getUnqual(ctx));
  llvm::Function* f = createKernel(m, k.name, params);
  if (!f) return error("JIT module already defines a function '{}'", k.name);
  for (size_t i = 0; i < k.buffers.size(); ++i) f->getArg(static_cast<unsigned>(i))->setName(k.buffers[i].name);
  Codegen(m, k, f).run();
  return ok();
}

}  // namespace nnc::jit
