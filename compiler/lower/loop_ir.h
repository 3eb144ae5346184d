// The loop-level IR: what a graph is lowered to before code generation.
// Kernels are loop nests over flat f32 buffers; indices are affine in the
// loop variables (enough for broadcasting, transposes, convolutions and
// pooling windows), with guards for padding. One lowering feeds several
// printers: a readable text dump, C++ source (emit-cpp) and LLVM IR (the
// JIT), plus a direct evaluator that tests lowering against the graph
// interpreter without compiling anything.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace nnc::loop {

// c + Σ coeff · var, over the enclosing loops' variables.
struct Affine {
  int64_t c = 0;
  std::vector<std::pair<int, int64_t>> terms;  // (loop variable, coefficient)

  static Affine constant(int64_t v) { return Affine{v, {}}; }
  static Affine var(int v, int64_t coeff = 1) { return Affine{0, {{v, coeff}}}; }
  Affine operator+(const Affine& o) const;
  Affine operator*(int64_t k) const;
  Affine operator+(int64_t k) const { return *this + constant(k); }
};

enum class Op : uint8_t {
  Const, Load, Index,                                 // leaves; Index: a loop variable's value
  Neg, Exp, Log, Sqrt, Tanh, Abs,                     // unary
  Add, Sub, Mul, Div, Max, Min, Pow,                  // binary; Max/Min: NaN if either is NaN, ties keep a
  Greater, Equal,                                     // a > b ? 1 : 0, a == b ? 1 : 0
  Select,                                             // a > 0 ? b : c
};
const char* opName(Op op);
int arity(Op op);

struct Expr;
using ExprP = std::shared_ptr<const Expr>;

struct Expr {
  Op op;
  float value = 0;     // Const
  int buf = -1;        // Load; for Index, the loop variable
  Affine index;        // Load
  std::vector<ExprP> args;
};

ExprP constant(float v);
ExprP load(int buf, Affine index);
ExprP indexOf(int var);  // the loop variable's current value, as a float
ExprP apply(Op op, std::vector<ExprP> args);

// How a store combines with the value already there.
// Max: old = max(old, v), Op::Max's rule (a NaN sticks, a NaN v wins).
enum class Combine : uint8_t { Assign, Add, Max };

// An argument of a runtime call: a pointer into a buffer.
struct CallArg {
  int buf = -1;
  Affine offset;  // elements from the buffer's start
};

struct Stmt {
  enum class Kind : uint8_t { Loop, Store, Guard, Call } kind;
  // Loop: for var in [0, extent) { body }
  int var = -1;
  int64_t extent = 0;
  bool parallel = false;  // iterations are independent (a later pass may thread them)
  // Store: buf[index] (combine)= value
  int buf = -1;
  Affine index;
  ExprP value;
  Combine combine = Combine::Assign;
  // Guard: if (lo <= cond < hi) { body }
  Affine cond;
  int64_t lo = 0, hi = 0;
  // Call: callee(pointers..., ints..., floats...), a function of the runtime
  // (compiler/lower/runtime_calls.h) such as the GEMM; printers emit a call, the
  // evaluator runs the same function.
  std::string callee;
  std::vector<CallArg> pointers;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::vector<Stmt> body;
};

Stmt loopOver(int var, int64_t extent, std::vector<Stmt> body, bool parallel = false);
Stmt store(int buf, Affine index, ExprP value, Combine combine = Combine::Assign);
Stmt guard(Affine cond, int64_t lo, int64_t hi, std::vector<Stmt> body);
Stmt call(std::string callee, std::vector<CallArg> pointers, std::vector<int64_t> ints = {},
          std::vector<float> floats = {});

struct Buffer {
  std::string name;
  int64_t size = 0;  // elements
};

// Lowering builds a kernel's body from these: an op's rule gets the buffers
// of its operands and result and adds statements (see compiler/lower/lower.h).

struct Kernel {
  std::string name;
  std::string comment;          // the graph nodes it computes
  std::vector<Buffer> buffers;  // its arguments, in order
  std::vector<Stmt> body;
  int numVars = 0;              // loop variables are 0 .. numVars-1

  int newVar() { return numVars++; }
};

// Readable text, e.g.
//   kernel relu_4(x[6], y[6]) {
//     for i0 in 0..6 parallel {
//       y[i0] = max(x[i0], 0)
//     }
//   }
std::string print(const Kernel& k);

// A C++ function `void NAME(const float* __restrict b0, float* __restrict b1,
// ...)`: buffers the kernel only reads are const, one it never touches is
// unnamed. It needs <cmath>, <cstdint>, cppPrelude() and, for calls, the
// runtime functions' declarations (emit-cpp copies them, runtime/*.h).
std::string printCpp(const Kernel& k);
// What printCpp's code uses besides the standard library: nnc_max and
// nnc_min (Op::Max's rule: NaN propagates, as comparisons that vectorize).
std::string cppPrelude();
// Whether the runtime function `callee` writes through its `pointer`-th
// pointer argument (one of its outputs); true for any pointer of an unknown one.
bool runtimeCallWrites(const std::string& callee, size_t pointer);

// Everything code generation reads from a kernel except its name, comment
// and buffer names, as bytes: two kernels with the same key compile to the
// same function up to its symbol, so a program compiles one and launches it
// on each kernel's buffers (the JIT's dedupe). Floats by their bits: -0 and
// each NaN stay apart.
std::string structuralKey(const Kernel& k);

// Runs the kernel on buffers (one per Kernel::buffers entry, of its size);
// the reference for what every printer's code must compute.
void evaluate(const Kernel& k, const std::vector<float*>& buffers);

}  // namespace nnc::loop
