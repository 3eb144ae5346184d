#include "compiler/lower/loop_ir.h"

#include <bit>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "compiler/lower/runtime_calls.h"

namespace nnc::loop {

Affine Affine::operator+(const Affine& o) const {
  Affine r = *this;
  r.c += o.c;
  for (const auto& [v, k] : o.terms) {
    bool merged = false;
    for (auto& [rv, rk] : r.terms)
      if (rv == v) {
        rk += k;
        merged = true;
      }
    if (!merged) r.terms.emplace_back(v, k);
  }
  std::erase_if(r.terms, [](const auto& t) { return t.second == 0; });
  return r;
}

Affine Affine::operator*(int64_t k) const {
  Affine r{c * k, terms};
  for (auto& t : r.terms) t.second *= k;
  std::erase_if(r.terms, [](const auto& t) { return t.second == 0; });
  return r;
}

const char* opName(Op op) {
  switch (op) {
    case Op::Const: return "const";
    case Op::Load: return "load";
    case Op::Index: return "index";
    case Op::Neg: return "neg";
    case Op::Exp: return "exp";
    case Op::Log: return "log";
    case Op::Sqrt: return "sqrt";
    case Op::Tanh: return "tanh";
    case Op::Abs: return "abs";
    case Op::Add: return "add";
    case Op::Sub: return "sub";
    case Op::Mul: return "mul";
    case Op::Div: return "div";
    case Op::Max: return "max";
    case Op::Min: return "min";
    case Op::Pow: return "pow";
    case Op::Greater: return "greater";
    case Op::Equal: return "equal";
    case Op::Select: return "select";
  }
  return "?";
}

int arity(Op op) {
  switch (op) {
    case Op::Const:
    case Op::Load:
    case Op::Index: return 0;
    case Op::Neg:
    case Op::Exp:
    case Op::Log:
    case Op::Sqrt:
    case Op::Tanh:
    case Op::Abs: return 1;
    case Op::Select: return 3;
    default: return 2;
  }
}

ExprP constant(float v) { return std::make_shared<const Expr>(Expr{Op::Const, v, -1, {}, {}}); }
ExprP load(int buf, Affine index) { return std::make_shared<const Expr>(Expr{Op::Load, 0, buf, std::move(index), {}}); }
ExprP indexOf(int var) { return std::make_shared<const Expr>(Expr{Op::Index, 0, var, {}, {}}); }
ExprP apply(Op op, std::vector<ExprP> args) {
  return std::make_shared<const Expr>(Expr{op, 0, -1, {}, std::move(args)});
}

Stmt loopOver(int var, int64_t extent, std::vector<Stmt> body, bool parallel) {
  Stmt s{Stmt::Kind::Loop};
  s.var = var;
  s.extent = extent;
  s.parallel = parallel;
  s.body = std::move(body);
  return s;
}

Stmt store(int buf, Affine index, ExprP value, Combine combine) {
  Stmt s{Stmt::Kind::Store};
  s.buf = buf;
  s.index = std::move(index);
  s.value = std::move(value);
  s.combine = combine;
  return s;
}

Stmt guard(Affine cond, int64_t lo, int64_t hi, std::vector<Stmt> body) {
  Stmt s{Stmt::Kind::Guard};
  s.cond = std::move(cond);
  s.lo = lo;
  s.hi = hi;
  s.body = std::move(body);
  return s;
}

Stmt call(std::string callee, std::vector<CallArg> pointers, std::vector<int64_t> ints, std::vector<float> floats) {
  Stmt s{Stmt::Kind::Call};
  s.callee = std::move(callee);
  s.pointers = std::move(pointers);
  s.ints = std::move(ints);
  s.floats = std::move(floats);
  return s;
}

// ---- text and C++ printers share the expression syntax ----

namespace {

std::string affineText(const Affine& a) {
  std::string s;
  for (const auto& [v, k] : a.terms) {
    const std::string term = k == 1 ? fmt::format("i{}", v) : fmt::format("{}*i{}", k, v);
    s += s.empty() ? term : " + " + term;
  }
  if (a.c != 0 || s.empty()) s += s.empty() ? std::to_string(a.c) : fmt::format(" + {}", a.c);
  return s;
}

// As C++: a negative constant is subtracted (i1 - 2, not i1 + -2).
std::string affineCpp(const Affine& a) {
  if (a.c >= 0 || a.terms.empty()) return affineText(a);
  return affineText(Affine{0, a.terms}) + fmt::format(" - {}", -a.c);
}

std::string floatText(float v) {
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

// A float literal C++ compiles to the same value; infinities and NaN have no
// literal (the printed source includes <cmath>).
std::string cppFloat(float v) {
  if (std::isnan(v)) return "NAN";
  if (std::isinf(v)) return v > 0 ? "INFINITY" : "(-INFINITY)";
  return floatText(v) + "f";
}

// `cpp` selects C++ spelling (std:: math, f suffixes) over the dump's.
std::string exprText(const Expr& e, const Kernel& k, bool cpp) {
  auto arg = [&](size_t i) { return exprText(*e.args[i], k, cpp); };
  const char* fn = cpp ? "std::" : "";
  switch (e.op) {
    case Op::Const: return cpp ? cppFloat(e.value) : floatText(e.value);
    case Op::Load:
      return fmt::format("{}[{}]", cpp ? fmt::format("b{}", e.buf) : k.buffers[static_cast<size_t>(e.buf)].name,
                         cpp ? affineCpp(e.index) : affineText(e.index));
    case Op::Index: return cpp ? fmt::format("static_cast<float>(i{})", e.buf) : fmt::format("float(i{})", e.buf);
    case Op::Neg: return fmt::format("(-{})", arg(0));
    case Op::Exp: return fmt::format("{}exp({})", fn, arg(0));
    case Op::Log: return fmt::format("{}log({})", fn, arg(0));
    case Op::Sqrt: return fmt::format("{}({})", cpp ? "nnc_sqrt" : "sqrt", arg(0));
    case Op::Tanh: return fmt::format("{}tanh({})", fn, arg(0));
    case Op::Abs: return fmt::format("{}{}({})", fn, cpp ? "fabs" : "abs", arg(0));
    case Op::Add: return fmt::format("({} + {})", arg(0), arg(1));
    case Op::Sub: return fmt::format("({} - {})", arg(0), arg(1));
    case Op::Mul: return fmt::format("({} * {})", arg(0), arg(1));
    case Op::Div: return fmt::format("({} / {})", arg(0), arg(1));
    case Op::Max: return fmt::format("{}({}, {})", cpp ? "nnc_max" : "max", arg(0), arg(1));
    case Op::Min: return fmt::format("{}({}, {})", cpp ? "nnc_min" : "min", arg(0), arg(1));
    case Op::Pow: return fmt::format("{}pow({}, {})", fn, arg(0), arg(1));
    case Op::Greater:
      return cpp ? fmt::format("({} > {} ? 1.0f : 0.0f)", arg(0), arg(1)) : fmt::format("({} > {})", arg(0), arg(1));
    case Op::Equal:
      return cpp ? fmt::format("({} == {} ? 1.0f : 0.0f)", arg(0), arg(1)) : fmt::format("({} == {})", arg(0), arg(1));
    case Op::Select:
      return cpp ? fmt::format("nnc_select({}, {}, {})", arg(0), arg(1), arg(2))
                 : fmt::format("({} > 0 ? {} : {})", arg(0), arg(1), arg(2));
  }
  return "?";
}

bool reads(const Expr& e, int buf) {
  if (e.op == Op::Load && e.buf == buf) return true;
  for (const ExprP& a : e.args)
    if (reads(*a, buf)) return true;
  return false;
}

bool uses(const Affine& a, int var) {
  for (const auto& [v, k] : a.terms)
    if (v == var && k != 0) return true;
  return false;
}

// Partial sums a reduction loop is printed with in C++ (see reductionCpp).
constexpr int64_t kPartialSums = 32;

// An innermost loop that only adds into one element, which it does not
// otherwise read: `for i { y[j] += f(i) }`, long enough to be worth
// vectorizing.
bool isReduction(const Stmt& s) {
  if (s.kind != Stmt::Kind::Loop || s.extent < 2 * kPartialSums || s.body.size() != 1) return false;
  const Stmt& b = s.body[0];
  return b.kind == Stmt::Kind::Store && b.combine == Combine::Add && !uses(b.index, s.var) && !reads(*b.value, b.buf);
}

// The JIT lets LLVM reassociate accumulations (`reassoc` on their adds), so
// that reductions vectorize; C++ compilers keep a float sum in order unless
// -ffast-math. The C++ printer makes the same freedom explicit: the sum runs
// in kPartialSums partial sums (lane l takes i ≡ l modulo their number),
// added in order at the end: loops the compiler vectorizes, in an order that
// depends only on the code.
void reductionCpp(const Stmt& s, int depth, std::string& out, const std::string& value) {
  const std::string pad(static_cast<size_t>(2 * depth), ' ');
  const Stmt& b = s.body[0];
  const std::string target = fmt::format("b{}[{}]", b.buf, affineCpp(b.index));
  const int64_t whole = s.extent / kPartialSums * kPartialSums;
  const int v = s.var;
  out += fmt::format("{}{{  // {} += the sum over i{}, in {} partial sums (they vectorize)\n", pad, target, v,
                     kPartialSums);
  out += fmt::format("{}  float acc[{}] = {{}};\n", pad, kPartialSums);
  out += fmt::format("{0}  for (int64_t i{1}b = 0; i{1}b < {2}; i{1}b += {3}) {{\n"
                     "{0}    for (int64_t i{1} = i{1}b; i{1} < i{1}b + {3}; ++i{1}) {{\n"
                     "{0}      acc[i{1} - i{1}b] += {4};\n"
                     "{0}    }}\n"
                     "{0}  }}\n",
                     pad, v, whole, kPartialSums, value);
  if (whole < s.extent)
    out += fmt::format("{0}  for (int64_t i{1} = {2}; i{1} < {3}; ++i{1}) {{\n"
                       "{0}    acc[i{1} - {2}] += {4};\n"
                       "{0}  }}\n",
                       pad, v, whole, s.extent, value);
  out += fmt::format("{0}  float sum = acc[0];\n"
                     "{0}  for (int l = 1; l < {1}; ++l) sum += acc[l];\n"
                     "{0}  {2} += sum;\n"
                     "{0}}}\n",
                     pad, kPartialSums, target);
}

bool contiguous(const Affine& a, int var) {
  for (const auto& [v, coeff] : a.terms)
    if (v == var && coeff != 1) return false;
  return true;
}
bool contiguous(const Expr& e, int var) {
  if (e.op == Op::Load && !contiguous(e.index, var)) return false;
  for (const ExprP& a : e.args)
    if (!contiguous(*a, var)) return false;
  return true;
}

// The hints the LLVM printer gives its loops (compiler/jit/loop_codegen.cpp,
// hintRowLoop and hintShortLoop), for Clang: a nested loop over a row of 16
// or more elements, every access contiguous, is not unrolled (Clang would
// unroll it and vectorize the loop around it, with gathers); a short loop of
// stores asks for the widest vectors that fit it. Empty when none applies.
std::string clangHint(const Stmt& s, int loops) {
  bool stores = !s.body.empty(), rowContiguous = true;
  for (const Stmt& c : s.body) {
    stores &= c.kind == Stmt::Kind::Store;
    rowContiguous &= c.kind == Stmt::Kind::Store && contiguous(c.index, s.var) && contiguous(*c.value, s.var);
  }
  if (loops > 0 && s.extent >= 16 && stores && rowContiguous) return "NNC_ROW_LOOP ";
  if (s.extent >= 4 && s.extent < 16 && stores) {
    int64_t width = 1;
    while (width * 2 <= s.extent) width *= 2;
    return fmt::format("NNC_SHORT_LOOP({}) ", width);
  }
  return "";
}

// `loops`: how many loops enclose s.
void stmtText(const Stmt& s, const Kernel& k, bool cpp, int depth, std::string& out, int loops = 0) {
  const std::string pad(static_cast<size_t>(2 * depth), ' ');
  switch (s.kind) {
    case Stmt::Kind::Loop:
      if (cpp && isReduction(s)) {
        reductionCpp(s, depth, out, exprText(*s.body[0].value, k, true));
        return;
      }
      if (cpp) out += pad + clangHint(s, loops);
      out += cpp ? fmt::format("for (int64_t i{0} = 0; i{0} < {1}; ++i{0}) {{\n", s.var, s.extent)
                 : fmt::format("{}for i{} in 0..{}{} {{\n", pad, s.var, s.extent, s.parallel ? " parallel" : "");
      break;
    case Stmt::Kind::Guard:
      out += cpp ? fmt::format("{0}if ({1} <= {2} && {2} < {3}) {{\n", pad, s.lo, affineCpp(s.cond), s.hi)
                 : fmt::format("{}if {} <= {} < {} {{\n", pad, s.lo, affineText(s.cond), s.hi);
      break;
    case Stmt::Kind::Call: {
      std::string args;
      for (const CallArg& a : s.pointers) {
        const std::string b = cpp ? fmt::format("b{}", a.buf) : k.buffers[static_cast<size_t>(a.buf)].name;
        const bool zero = a.offset.terms.empty() && a.offset.c == 0;
        args += (args.empty() ? "" : ", ") +
                (zero ? b : fmt::format("{} + {}", b, cpp ? affineCpp(a.offset) : affineText(a.offset)));
      }
      for (int64_t i : s.ints) args += fmt::format("{}{}", args.empty() ? "" : ", ", i);
      for (float f : s.floats) args += (args.empty() ? "" : ", ") + (cpp ? cppFloat(f) : floatText(f));
      out += fmt::format("{}{}({});\n", pad, s.callee, args);
      return;
    }
    case Stmt::Kind::Store: {
      const std::string target =
          fmt::format("{}[{}]", cpp ? fmt::format("b{}", s.buf) : k.buffers[static_cast<size_t>(s.buf)].name,
                      cpp ? affineCpp(s.index) : affineText(s.index));
      const std::string v = exprText(*s.value, k, cpp);
      if (s.combine == Combine::Assign) out += fmt::format("{}{} = {};\n", pad, target, v);
      if (s.combine == Combine::Add) out += fmt::format("{}{} += {};\n", pad, target, v);
      if (s.combine == Combine::Max)
        out += cpp ? fmt::format("{}{} = nnc_max({}, {});\n", pad, target, target, v)
                   : fmt::format("{}{} max= {};\n", pad, target, v);
      return;
    }
  }
  for (const Stmt& b : s.body) stmtText(b, k, cpp, depth + 1, out, loops + (s.kind == Stmt::Kind::Loop));
  out += pad + "}\n";
}

}  // namespace

std::string print(const Kernel& k) {
  std::string out = k.comment.empty() ? "" : "# " + k.comment + "\n";
  std::string params;
  for (const Buffer& b : k.buffers) params += fmt::format("{}{}[{}]", params.empty() ? "" : ", ", b.name, b.size);
  out += fmt::format("kernel {}({}) {{\n", k.name, params);
  for (const Stmt& s : k.body) stmtText(s, k, false, 1, out);
  return out + "}\n";
}

bool runtimeCallWrites(const std::string& callee, size_t pointer) {
  // An unknown function may write through any pointer.
  const RuntimeCall* call = findRuntimeCall(callee);
  return !call || (pointer >= static_cast<size_t>(call->output) && pointer < static_cast<size_t>(call->output + call->outputs));
}

namespace {

// Which buffers a kernel reads and which it writes.
struct BufferUse {
  std::vector<bool> read, written;
  explicit BufferUse(const Kernel& k) : read(k.buffers.size(), false), written(k.buffers.size(), false) {
    for (const Stmt& s : k.body) stmt(s);
  }
  void expr(const Expr& e) {
    if (e.op == Op::Load) read[static_cast<size_t>(e.buf)] = true;
    for (const ExprP& a : e.args) expr(*a);
  }
  void stmt(const Stmt& s) {
    if (s.kind == Stmt::Kind::Store) {
      written[static_cast<size_t>(s.buf)] = true;
      if (s.combine != Combine::Assign) read[static_cast<size_t>(s.buf)] = true;
      expr(*s.value);
    }
    if (s.kind == Stmt::Kind::Call)
      for (size_t i = 0; i < s.pointers.size(); ++i) {
        const auto b = static_cast<size_t>(s.pointers[i].buf);
        (runtimeCallWrites(s.callee, i) ? written : read)[b] = true;
      }
    for (const Stmt& b : s.body) stmt(b);
  }
};

}  // namespace

std::string cppPrelude() {
  return "// max and min that propagate NaN (NaN if either operand is; ties keep a),\n"
         "// as PyTorch's maximum and max_pool2d, in comparisons the compiler vectorizes.\n"
         "// Two selects each (a short-circuit || would stay a branch and not vectorize).\n"
         "[[maybe_unused]] static inline float nnc_max(float a, float b) {\n"
         "  const float m = b > a ? b : a;\n"
         "  return b != b ? b : m;\n"
         "}\n"
         "[[maybe_unused]] static inline float nnc_min(float a, float b) {\n"
         "  const float m = b < a ? b : a;\n"
         "  return b != b ? b : m;\n"
         "}\n"
         "// c > 0 ? x : y with both operands evaluated, as the loop IR means it: their\n"
         "// loads are then unconditional, and the compiler vectorizes the select.\n"
         "[[maybe_unused]] static inline float nnc_select(float c, float x, float y) { return c > 0 ? x : y; }\n"
         "// std::sqrt, which may set errno: unless -fno-math-errno, GCC and Clang keep\n"
         "// a libm call for that and leave its loop scalar. Clang's elementwise builtin\n"
         "// has no errno (GCC 12 has no equivalent: pass it -fno-math-errno).\n"
         "[[maybe_unused]] static inline float nnc_sqrt(float x) {\n"
         "#if defined(__clang__) && defined(__has_builtin)\n"
         "#if __has_builtin(__builtin_elementwise_sqrt)\n"
         "  return __builtin_elementwise_sqrt(x);\n"
         "#endif\n"
         "#endif\n"
         "  return std::sqrt(x);\n"
         "}\n"
         "// Loop hints for Clang, as the JIT gives LLVM (no effect on other compilers).\n"
         "#ifndef NNC_ROW_LOOP\n"
         "#ifdef __clang__\n"
         "// Hints, not demands: a short loop Clang cannot vectorize stays scalar.\n"
         "#pragma clang diagnostic ignored \"-Wpass-failed\"\n"
         "#define NNC_PRAGMA(x) _Pragma(#x)\n"
         "#define NNC_ROW_LOOP NNC_PRAGMA(clang loop unroll(disable))\n"
         "#define NNC_SHORT_LOOP(width) NNC_PRAGMA(clang loop vectorize(enable) vectorize_width(width))\n"
         "#else\n"
         "#define NNC_ROW_LOOP\n"
         "#define NNC_SHORT_LOOP(width)\n"
         "#endif\n"
         "#endif\n";
}

std::string printCpp(const Kernel& k) {
  std::string out = k.comment.empty() ? "" : "// " + k.comment + "\n";
  const BufferUse use(k);
  std::string params;
  for (size_t i = 0; i < k.buffers.size(); ++i) {
    const std::string what = fmt::format("{}[{}]", k.buffers[i].name, k.buffers[i].size);
    params += i ? ", " : "";
    if (!use.read[i] && !use.written[i])
      params += fmt::format("float* /* b{}: {}, unused */", i, what);
    else
      params += fmt::format("{}float* __restrict b{} /* {} */", use.written[i] ? "" : "const ", i, what);
  }
  out += fmt::format("void {}({}) {{\n", k.name, params);
  for (const Stmt& s : k.body) stmtText(s, k, true, 1, out);
  return out + "}\n";
}

// ---- evaluator ----

namespace {

// Op::Max and Op::Min (and a max= store, max(old, v)): NaN if either operand
// is NaN, else the larger (smaller); ties keep a. The JIT's and printed
// C++'s comparisons compute the same.
float maxOf(float a, float b) { return b > a || b != b ? b : a; }
float minOf(float a, float b) { return b < a || b != b ? b : a; }

struct Eval {
  const std::vector<float*>& bufs;
  std::vector<int64_t> vars;

  int64_t at(const Affine& a) const {
    int64_t r = a.c;
    for (const auto& [v, k] : a.terms) r += k * vars[static_cast<size_t>(v)];
    return r;
  }

  float value(const Expr& e) const {
    auto arg = [&](size_t i) { return value(*e.args[i]); };
    switch (e.op) {
      case Op::Const: return e.value;
      case Op::Load: return bufs[static_cast<size_t>(e.buf)][at(e.index)];
      case Op::Index: return static_cast<float>(vars[static_cast<size_t>(e.buf)]);
      case Op::Neg: return -arg(0);
      case Op::Exp: return std::exp(arg(0));
      case Op::Log: return std::log(arg(0));
      case Op::Sqrt: return std::sqrt(arg(0));
      case Op::Tanh: return std::tanh(arg(0));
      case Op::Abs: return std::fabs(arg(0));
      case Op::Add: return arg(0) + arg(1);
      case Op::Sub: return arg(0) - arg(1);
      case Op::Mul: return arg(0) * arg(1);
      case Op::Div: return arg(0) / arg(1);
      case Op::Max: return maxOf(arg(0), arg(1));
      case Op::Min: return minOf(arg(0), arg(1));
      case Op::Pow: return std::pow(arg(0), arg(1));
      case Op::Greater: return arg(0) > arg(1) ? 1.0f : 0.0f;
      case Op::Equal: return arg(0) == arg(1) ? 1.0f : 0.0f;
      case Op::Select: return arg(0) > 0 ? arg(1) : arg(2);
    }
    return 0;
  }

  void run(const Stmt& s) {
    switch (s.kind) {
      case Stmt::Kind::Loop:
        for (int64_t i = 0; i < s.extent; ++i) {
          vars[static_cast<size_t>(s.var)] = i;
          for (const Stmt& b : s.body) run(b);
        }
        return;
      case Stmt::Kind::Guard: {
        const int64_t c = at(s.cond);
        if (c >= s.lo && c < s.hi)
          for (const Stmt& b : s.body) run(b);
        return;
      }
      case Stmt::Kind::Call: {
        const RuntimeCall* fn = findRuntimeCall(s.callee);
        if (!fn) throw std::logic_error("loop IR evaluator: unknown runtime function " + s.callee);
        std::vector<float*> ptrs;
        for (const CallArg& a : s.pointers) ptrs.push_back(bufs[static_cast<size_t>(a.buf)] + at(a.offset));
        fn->evaluate(ptrs.data(), s.ints.data(), s.floats.data());
        return;
      }
      case Stmt::Kind::Store: {
        float& dst = bufs[static_cast<size_t>(s.buf)][at(s.index)];
        const float v = value(*s.value);
        dst = s.combine == Combine::Assign ? v : s.combine == Combine::Add ? dst + v : maxOf(dst, v);
        return;
      }
    }
  }
};

}  // namespace

void evaluate(const Kernel& k, const std::vector<float*>& buffers) {
  Eval e{buffers, std::vector<int64_t>(static_cast<size_t>(k.numVars), 0)};
  for (const Stmt& s : k.body) e.run(s);
}


namespace {

struct KeyWriter {
  std::string out;
  template <class T>
  void pod(T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void affine(const Affine& a) {
    pod(a.c);
    pod(a.terms.size());
    for (const auto& [v, c] : a.terms) {
      pod(v);
      pod(c);
    }
  }
  void expr(const Expr& e) {
    pod(e.op);
    pod(std::bit_cast<uint32_t>(e.value));
    pod(e.buf);
    affine(e.index);
    pod(e.args.size());
    for (const ExprP& a : e.args) expr(*a);
  }
  void stmt(const Stmt& s) {
    pod(s.kind);
    pod(s.var);
    pod(s.extent);
    pod(s.parallel);
    pod(s.buf);
    affine(s.index);
    pod(s.value != nullptr);
    if (s.value) expr(*s.value);
    pod(s.combine);
    affine(s.cond);
    pod(s.lo);
    pod(s.hi);
    pod(s.callee.size());
    out += s.callee;
    pod(s.pointers.size());
    for (const CallArg& a : s.pointers) {
      pod(a.buf);
      affine(a.offset);
    }
    pod(s.ints.size());
    for (int64_t i : s.ints) pod(i);
    pod(s.floats.size());
    for (float f : s.floats) pod(std::bit_cast<uint32_t>(f));
    pod(s.body.size());
    for (const Stmt& b : s.body) stmt(b);
  }
};

}  // namespace

std::string structuralKey(const Kernel& k) {
  KeyWriter w;
  w.pod(k.numVars);
  w.pod(k.buffers.size());
  for (const Buffer& b : k.buffers) w.pod(b.size);
  w.pod(k.body.size());
  for (const Stmt& s : k.body) w.stmt(s);
  return std::move(w.out);
}

}  // namespace nnc::loop
