// The loop IR's LLVM printer: each Kernel becomes
//   void name(float* noalias b0, float* noalias b1, ...)
// with counted loops, affine address arithmetic and guards, built with
// IRBuilder. Arithmetic carries `contract`, so multiply-adds become FMAs.
//
// A top-level loop marked parallel, with enough work to pay for waking the
// thread pool, is outlined: its body becomes
//   internal void name.body<n>(float* noalias b0, ..., i64 begin, i64 end)
// reached through a trampoline name.par<n>(void** ctx, i64 begin, i64 end)
// that nnc_parallel_for (runtime/parallel.h) calls per chunk. The inliner
// turns the noalias parameters into scoped alias metadata, so the chunk loop
// vectorizes as the serial one does.
#include <llvm/IR/Intrinsics.h>

#include <algorithm>

#include "compiler/jit/llvm_module.h"
#include "compiler/lower/loop_ir.h"

namespace nnc::jit {

namespace {

// Below this many innermost operations a loop runs on the calling thread:
// waking a worker costs a few microseconds.
constexpr double kMinParallelWork = 1 << 15;

double work(const loop::Stmt& s) {
  switch (s.kind) {
    case loop::Stmt::Kind::Store: return 1;
    case loop::Stmt::Kind::Call: {
      double w = 1;  // the GEMM's M·N·K, roughly
      for (size_t i = 0; i < s.ints.size() && i < 3; ++i) w *= static_cast<double>(std::max<int64_t>(s.ints[i], 1));
      return w;
    }
    default: {
      double w = 0;
      for (const loop::Stmt& b : s.body) w += work(b);
      return s.kind == loop::Stmt::Kind::Loop ? w * static_cast<double>(s.extent) : w;
    }
  }
}

class Codegen {
 public:
  Codegen(Module& m, const loop::Kernel& k, llvm::Function* f)
      : module_(m), ctx_(llvmContext(m)), mod_(llvmModule(m)), k_(k), f_(f), b_(ctx_), vars_(static_cast<size_t>(k.numVars)) {
    llvm::FastMathFlags fmf;
    fmf.setAllowContract();
    b_.setFastMathFlags(fmf);
    for (unsigned i = 0; i < k.buffers.size(); ++i) bufs_.push_back(f->getArg(i));
  }

  void run() {
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", f_));
    for (const loop::Stmt& s : k_.body) {
      if (s.kind == loop::Stmt::Kind::Loop && s.parallel && work(s) >= kMinParallelWork)
        parallelLoop(s);
      else
        stmt(s);
    }
    b_.CreateRetVoid();
  }

  // The chunk function's body: `s` over [begin, end) instead of [0, extent).
  void runChunk(const loop::Stmt& s, llvm::Value* begin, llvm::Value* end) {
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", f_));
    countedLoop(s, begin, end);
    b_.CreateRetVoid();
  }

 private:
  void parallelLoop(const loop::Stmt& s) {
    const unsigned n = static_cast<unsigned>(k_.buffers.size());
    const std::string base = f_->getName().str() + ".body" + std::to_string(outlined_++);
    std::vector<llvm::Type*> params(n, b_.getPtrTy());
    params.push_back(b_.getInt64Ty());
    params.push_back(b_.getInt64Ty());
    llvm::Function* body = createKernel(m(), base, params);
    body->setLinkage(llvm::GlobalValue::InternalLinkage);
    {
      Codegen c(m(), k_, body);
      c.runChunk(s, body->getArg(n), body->getArg(n + 1));
    }
    // An innermost parallel loop is the one LLVM vectorizes, splitting each
    // chunk into a vector body and a scalar remainder whose roundings may
    // differ (FMA contraction, libmvec vs libm). Chunks of whole multiples
    // of `align` iterations put every element on the same side of that split
    // for any thread count: the pool deals units of `align` iterations.
    bool innermost = true;
    for (const loop::Stmt& c : s.body) innermost &= c.kind != loop::Stmt::Kind::Loop && c.kind != loop::Stmt::Kind::Guard;
    const int64_t align = innermost ? 256 : 1;
    const int64_t units = (s.extent + align - 1) / align;
    // trampoline(ctx, u0, u1) = body(ctx[0], ..., ctx[n-1], u0·align, min(u1·align, extent))
    llvm::Function* tramp = createKernel(m(), base + ".par", {b_.getPtrTy(), b_.getInt64Ty(), b_.getInt64Ty()});
    tramp->setLinkage(llvm::GlobalValue::InternalLinkage);
    {
      llvm::IRBuilder<> tb(llvm::BasicBlock::Create(ctx_, "entry", tramp));
      std::vector<llvm::Value*> args;
      for (unsigned i = 0; i < n; ++i)
        args.push_back(tb.CreateLoad(tb.getPtrTy(), tb.CreateConstInBoundsGEP1_64(tb.getPtrTy(), tramp->getArg(0), i)));
      llvm::Value* lo = tb.CreateMul(tramp->getArg(1), tb.getInt64(align), "", true, true);
      llvm::Value* hi = tb.CreateMul(tramp->getArg(2), tb.getInt64(align), "", true, true);
      hi = tb.CreateSelect(tb.CreateICmpSLT(hi, tb.getInt64(s.extent)), hi, tb.getInt64(s.extent));
      args.push_back(lo);
      args.push_back(hi);
      tb.CreateCall(body, args);
      tb.CreateRetVoid();
    }
    // The kernel packs its buffer pointers and hands the loop to the pool.
    llvm::AllocaInst* ctx = b_.CreateAlloca(llvm::ArrayType::get(b_.getPtrTy(), std::max(n, 1u)));
    for (unsigned i = 0; i < n; ++i) b_.CreateStore(bufs_[i], b_.CreateConstInBoundsGEP2_32(ctx->getAllocatedType(), ctx, 0, i));
    const double perUnit = std::max(1.0, work(s) / static_cast<double>(units));
    const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>(kMinParallelWork / perUnit));
    llvm::FunctionCallee pfor = mod_.getOrInsertFunction(
        "nnc_parallel_for",
        llvm::FunctionType::get(b_.getVoidTy(), {b_.getPtrTy(), b_.getPtrTy(), b_.getInt64Ty(), b_.getInt64Ty()}, false));
    b_.CreateCall(pfor, {tramp, ctx, b_.getInt64(units), b_.getInt64(grain)});
  }

  Module& m() { return module_; }

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
    return b_.CreateInBoundsGEP(b_.getFloatTy(), bufs_[static_cast<size_t>(buf)], affine(index));
  }

  llvm::Value* intrinsic(llvm::Intrinsic::ID id, std::vector<llvm::Value*> args) {
    llvm::Function* fn = llvm::Intrinsic::getDeclaration(&mod_, id, {b_.getFloatTy()});
    return b_.CreateCall(fn, args);
  }

  // Op::Max (Op::Min): b > a (b < a) ? b : a, which x86 selects as one
  // maxps (minps), then b where b is NaN; a NaN a falls through both. NaN if
  // either operand is, ties keep a.
  llvm::Value* extremum(llvm::Value* a, llvm::Value* b, bool max) {
    llvm::Value* wins = max ? b_.CreateFCmpOGT(b, a) : b_.CreateFCmpOLT(b, a);
    llvm::Value* m = b_.CreateSelect(wins, b, a);
    return b_.CreateSelect(b_.CreateFCmpUNO(b, b), b, m);
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
      // NaN-propagating, as the evaluator's maxOf/minOf and the C++ printer's
      // nnc_max/nnc_min: not maxnum (which drops a NaN) nor llvm.maximum
      // (which also orders -0 below +0, in a longer sequence on x86).
      case Op::Max: return extremum(arg(0), arg(1), true);
      case Op::Min: return extremum(arg(0), arg(1), false);
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

  // for (i = begin; i < end; ++i) body, entered only if begin < end.
  void countedLoop(const loop::Stmt& s, llvm::Value* begin, llvm::Value* end) {
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* body = llvm::BasicBlock::Create(ctx_, "loop", f_);
    auto* after = llvm::BasicBlock::Create(ctx_, "after", f_);
    b_.CreateCondBr(b_.CreateICmpSLT(begin, end), body, after);
    b_.SetInsertPoint(body);
    llvm::PHINode* i = b_.CreatePHI(b_.getInt64Ty(), 2, llvm::Twine("i") + llvm::Twine(s.var));
    i->addIncoming(begin, pre);
    vars_[static_cast<size_t>(s.var)] = i;
    ++depth_;
    for (const loop::Stmt& c : s.body) stmt(c);
    --depth_;
    llvm::Value* next = b_.CreateAdd(i, b_.getInt64(1), "", true, true);  // i < end: no wrap
    i->addIncoming(next, b_.GetInsertBlock());
    llvm::BranchInst* latch = b_.CreateCondBr(b_.CreateICmpSLT(next, end), body, after);
    hintShortLoop(s, latch);
    hintRowLoop(s, latch);
    b_.SetInsertPoint(after);
  }

  static bool contiguous(const loop::Affine& a, int var) {
    for (const auto& [v, coeff] : a.terms)
      if (v == var && coeff != 1) return false;
    return true;
  }
  static bool contiguous(const loop::Expr& e, int var) {
    if (e.op == loop::Op::Load && !contiguous(e.index, var)) return false;
    for (const loop::ExprP& a : e.args)
      if (!contiguous(*a, var)) return false;
    return true;
  }

  // A nested innermost loop over a row of 16 or more elements, assigning
  // (no accumulation) with every access contiguous in it, such as a pooling
  // pass over a 24-column row, is what the lowering meant to be vectorized.
  // LLVM would first unroll it fully (it is short) and then vectorize the
  // enclosing loop instead, across rows, with gathers and scatters.
  // Unrolling is turned off for it: the vectorizer then sees the row loop
  // itself and uses whole-vector loads. (Accumulating rows, such as a column
  // sum's, keep LLVM's choice: unrolled, the sums stay in registers.)
  void hintRowLoop(const loop::Stmt& s, llvm::BranchInst* latch) {
    if (depth_ == 0 || s.extent < 16) return;
    for (const loop::Stmt& c : s.body)
      if (c.kind != loop::Stmt::Kind::Store || c.combine != loop::Combine::Assign || !contiguous(c.index, s.var) ||
          !contiguous(*c.value, s.var))
        return;
    llvm::Metadata* off[] = {llvm::MDString::get(ctx_, "llvm.loop.unroll.disable")};
    llvm::Metadata* ops[] = {nullptr, llvm::MDNode::get(ctx_, off)};
    llvm::MDNode* md = llvm::MDNode::getDistinct(ctx_, ops);
    md->replaceOperandWith(0, md);
    latch->setMetadata(llvm::LLVMContext::MD_loop, md);
  }

  // A short innermost loop (a row of 12 pooling windows) is narrower than
  // the 16 lanes the vectorizer would pick from prefer-vector-width=512, and
  // then runs entirely in its scalar remainder. Asking for the widest power
  // of two that fits gives a vector body and a short remainder instead.
  void hintShortLoop(const loop::Stmt& s, llvm::BranchInst* latch) {
    if (s.extent < 4 || s.extent >= 16) return;
    for (const loop::Stmt& c : s.body)
      if (c.kind != loop::Stmt::Kind::Store) return;
    int64_t width = 1;
    while (width * 2 <= s.extent) width *= 2;
    llvm::Metadata* enable[] = {llvm::MDString::get(ctx_, "llvm.loop.vectorize.enable"),
                                llvm::ConstantAsMetadata::get(b_.getTrue())};
    llvm::Metadata* w[] = {llvm::MDString::get(ctx_, "llvm.loop.vectorize.width"),
                           llvm::ConstantAsMetadata::get(b_.getInt32(static_cast<uint32_t>(width)))};
    llvm::Metadata* ops[] = {nullptr, llvm::MDNode::get(ctx_, enable), llvm::MDNode::get(ctx_, w)};
    llvm::MDNode* md = llvm::MDNode::getDistinct(ctx_, ops);
    md->replaceOperandWith(0, md);
    latch->setMetadata(llvm::LLVMContext::MD_loop, md);
  }

  void stmt(const loop::Stmt& s) {
    switch (s.kind) {
      case loop::Stmt::Kind::Loop:
        if (s.extent > 0) countedLoop(s, b_.getInt64(0), b_.getInt64(s.extent));
        return;
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
          if (s.combine == loop::Combine::Add) {
            // `reassoc` on accumulations only: the vectorizer may then keep
            // partial sums in vector lanes. The order still depends only on
            // the code, never on the thread count.
            auto* add = llvm::cast<llvm::Instruction>(b_.CreateFAdd(old, v));
            llvm::FastMathFlags f = add->getFastMathFlags();
            f.setAllowReassoc();
            add->setFastMathFlags(f);
            v = add;
          } else {
            v = extremum(old, v, true);
          }
        }
        b_.CreateStore(v, p);
        return;
      }
    }
  }

  Module& module_;
  llvm::LLVMContext& ctx_;
  llvm::Module& mod_;
  const loop::Kernel& k_;
  llvm::Function* f_;
  llvm::IRBuilder<> b_;
  std::vector<llvm::Value*> vars_;
  std::vector<llvm::Value*> bufs_;
  int outlined_ = 0;
  int depth_ = 0;  // loops enclosing the code being generated
};

}  // namespace

Status addKernel(Module& m, const loop::Kernel& k) {
  llvm::LLVMContext& ctx = llvmContext(m);
  std::vector<llvm::Type*> params(k.buffers.size(), llvm::PointerType::getUnqual(ctx));
  llvm::Function* f = createKernel(m, k.name, params);
  NNC_INTERNAL_ASSERT(f, "in the JIT", "the module already defines a function '{}'", k.name);
  for (size_t i = 0; i < k.buffers.size(); ++i) f->getArg(static_cast<unsigned>(i))->setName(k.buffers[i].name);
  // Never inlined into a program's entry: a kernel's code (its vector
  // reductions' order included) must not depend on which module it shares
  // with the entry, which depends on the thread count.
  f->addFnAttr(llvm::Attribute::NoInline);
  Codegen(m, k, f).run();
  return ok();
}

}  // namespace nnc::jit
