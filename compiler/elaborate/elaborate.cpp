// Elaboration: runs the compile-time language over the syntax tree and
// builds the graph. Values at compile time are integers, floats, strings,
// lists, initializers and tensors (graph values); only tensors reach the graph.
#include "compiler/elaborate/elaborate.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "compiler/elaborate/ct_value.h"
#include "compiler/elaborate/layers.h"
#include "compiler/elaborate/train_settings.h"

namespace nnc {

namespace {

using ast::Expr;
using ast::ExprKind;
using ast::Stmt;
using ast::StmtKind;

const char* kindName(CtValue::Kind k) {
  switch (k) {
    case CtValue::Kind::None: return "nothing";
    case CtValue::Kind::Int: return "an integer";
    case CtValue::Kind::Float: return "a number";
    case CtValue::Kind::String: return "a string";
    case CtValue::Kind::Tensor: return "a tensor";
    case CtValue::Kind::List: return "a list";
    case CtValue::Kind::Init: return "an initializer";
  }
  return "?";
}

const std::set<std::string_view> kInitializers = {"zeros", "constant", "normal", "uniform", "xavier", "he", "load"};

// `normal` is both an initializer, normal(std), and the sampling op,
// normal(x, mean, std): a call whose first argument is a tensor (or a list,
// a constant tensor; the initializer takes numbers only), or that names the
// op's operand x, is the op.
bool isNormalOp(std::string_view callee, const std::vector<CtValue>& pos,
                const std::vector<std::pair<std::string, CtValue>>& named) {
  if (callee != "normal") return false;
  if (!pos.empty()) return pos[0].kind == CtValue::Kind::Tensor || pos[0].kind == CtValue::Kind::List;
  for (const auto& [name, _] : named)
    if (name == "x") return true;
  return false;
}

bool checkedAdd(int64_t a, int64_t b, int64_t& r) { return !__builtin_add_overflow(a, b, &r); }
bool checkedSub(int64_t a, int64_t b, int64_t& r) { return !__builtin_sub_overflow(a, b, &r); }
bool checkedMul(int64_t a, int64_t b, int64_t& r) { return !__builtin_mul_overflow(a, b, &r); }
// base ** exp for exp >= 0 by squaring. Squaring a base of |base| >= 2 that
// overflows while exponent bits remain means the result overflows too.
bool checkedPow(int64_t base, int64_t exp, int64_t& r) {
  r = 1;
  while (exp > 0) {
    if ((exp & 1) && !checkedMul(r, base, r)) return false;
    exp >>= 1;
    if (exp > 0 && !checkedMul(base, base, base)) return false;
  }
  return true;
}

Status flattenLiteral(const CtValue& v, const Shape& shape, size_t dim, std::vector<double>& out, SourceLoc loc);

class Elaborator final : public LayerContext {
 public:
  Elaborator(const ast::Program& prog, const ElaborateOptions& opt) : prog_(prog), opt_(opt) {}

  Expected<Elaborated> run();

  // LayerContext
  Graph& graph() override { return g_; }
  Expected<ValueId> newParam(const std::string& name, TensorType type, const InitSpec& init, bool trainable,
                             SourceLoc loc) override;
  std::string freshPrefix(const std::string& kind) override {
    return fmt::format("{}{}", kind, ++layerCounts_[kind]);
  }
  Expected<ValueId> constant(double v, SourceLoc loc) override {
    return g_.addSource("const", "", TensorType{DType::F32, {}}, Attrs{{"value", std::vector<double>{v}}}, loc);
  }

 private:
  using Scope = std::map<std::string, CtValue>;
  struct Frame {
    Scope vars;
    std::string prefix;  // for params declared inside a def: "block1."
    bool inModel = false;
    std::optional<CtValue> returned;
  };

  const ast::FuncDecl* findDef(std::string_view name) const {
    for (const auto& d : prog_.defs)
      if (d.name == name) return &d;
    return nullptr;
  }

  Status execBlock(const std::vector<Stmt>& body, Frame& f);
  Status exec(const Stmt& s, Frame& f);
  Expected<CtValue> eval(const Expr& e, Frame& f);
  Expected<CtValue> evalBinary(const Expr& e, Frame& f);
  Expected<CtValue> evalCall(const Expr& e, Frame& f);
  Expected<CtValue> callDef(const ast::FuncDecl& d, const Expr& call, std::vector<CtValue> pos,
                            std::vector<std::pair<std::string, CtValue>> named);
  Expected<CtValue> callOp(const OpDef& op, const Expr& call, std::vector<CtValue> pos,
                           std::vector<std::pair<std::string, CtValue>> named);
  Expected<TensorType> evalType(const ast::TypeExpr& t, Frame& f);
  Expected<CtValue> loadInit(const Expr& call, const std::vector<CtValue>& pos,
                             const std::vector<std::pair<std::string, CtValue>>& named);
  Expected<ValueId> asTensor(const CtValue& v, SourceLoc loc);
  Expected<int64_t> asInt(const CtValue& v, SourceLoc loc, std::string_view what);
  Status countStep(SourceLoc loc) {
    if (++steps_ > kMaxUnrolledSteps)
      return error(loc, "compile-time work exceeds {} steps (a runaway loop?)", kMaxUnrolledSteps);
    if (g_.size() > kMaxGraphNodes) return error(loc, "the graph exceeds {} nodes", kMaxGraphNodes);
    return ok();
  }
  void bindName(ValueId v, const std::string& name) {
    Node& n = g_.node(v);
    if (!n.name.empty()) return;
    std::string unique = name;
    for (int k = 1; usedNames_.count(unique); ++k) unique = fmt::format("{}_{}", name, k);
    usedNames_.insert(unique);
    n.name = unique;
  }
  Expected<TrainConfig> evalTrain(const ast::TrainDecl& t);
  Expected<TrainValue> evalTrainValue(const Expr& e);

  // What run() records besides the graph: the batch axes, and the outputs'
  // kinds (from the finished graph).
  int batchAxisOf(const ast::TypeExpr& t) const;
  void recordDataFacts(Elaborated& out) const;

  const ast::Program& prog_;
  const ElaborateOptions& opt_;
  Graph g_;
  bool hasBatchParam_ = false;
  std::map<ValueId, int> batchAxis_;
  std::map<std::string, int> layerCounts_, defCounts_;
  std::set<std::string> usedNames_;
  int depth_ = 0;
  int64_t steps_ = 0;
};

Expected<ValueId> Elaborator::newParam(const std::string& name, TensorType type, const InitSpec& init,
                                       bool trainable, SourceLoc loc) {
  if (usedNames_.count(name)) return error(loc, "a value named '{}' already exists", name);
  usedNames_.insert(name);
  Attrs a{{"init", init.kind}, {"args", init.args}, {"trainable", int64_t{trainable ? 1 : 0}}};
  if (init.kind == "load") {
    a.set("file", init.file);
    a.set("key", init.key.empty() ? name : init.key);
  }
  return g_.addSource("param", name, std::move(type), std::move(a), loc);
}

// load("w.npz") or load("w.npz", "key"): the values are read by whoever
// compiles the source (cli/frontend.cpp), which knows where the file is;
// here only the names are recorded.
Expected<CtValue> Elaborator::loadInit(const Expr& e, const std::vector<CtValue>& pos,
                                       const std::vector<std::pair<std::string, CtValue>>& named) {
  CtValue v;
  v.kind = CtValue::Kind::Init;
  v.loc = e.loc;
  v.init.kind = "load";
  std::vector<const CtValue*> args(2, nullptr);
  if (pos.size() > 2) return error(e.loc, "load() takes a file and a key");
  for (size_t k = 0; k < pos.size(); ++k) args[k] = &pos[k];
  for (const auto& [n, x] : named) {
    const size_t k = n == "file" ? 0 : n == "key" ? 1 : 2;
    if (k == 2) return error(e.loc, "load() has no argument '{}' (it takes file and key)", n);
    if (args[k]) return error(e.loc, "load(): '{}' given twice", n);
    args[k] = &x;
  }
  if (!args[0]) return error(e.loc, "load() needs the .npz file to read");
  for (size_t k = 0; k < 2; ++k)
    if (args[k] && args[k]->kind != CtValue::Kind::String)
      return error(args[k]->loc.valid() ? args[k]->loc : e.loc, "load()'s {} is a string, not {}", k == 0 ? "file" : "key",
                   kindName(args[k]->kind));
  v.init.file = args[0]->s;
  if (args[1]) v.init.key = args[1]->s;
  if (v.init.file.empty()) return error(e.loc, "load(): the file name is empty");
  return v;
}

Expected<ValueId> Elaborator::asTensor(const CtValue& v, SourceLoc loc) {
  switch (v.kind) {
    case CtValue::Kind::Tensor: return v.tensor;
    case CtValue::Kind::Int: return constant(static_cast<double>(v.i), loc);
    case CtValue::Kind::Float: return constant(v.f, loc);
    case CtValue::Kind::List: {  // a literal such as [0.5, 0.5] becomes a constant
      Shape shape;
      for (const CtValue* x = &v; x->kind == CtValue::Kind::List; x = &x->list[0]) {
        if (x->list.empty()) return error(loc, "an empty list is not a tensor");
        shape.push_back(static_cast<int64_t>(x->list.size()));
      }
      std::vector<double> data;
      NNC_CHECK(flattenLiteral(v, shape, 0, data, loc));
      return g_.addSource("const", "", TensorType{DType::F32, shape}, Attrs{{"value", data}}, loc);
    }
    default: return error(loc, "expected a tensor, got {}", kindName(v.kind));
  }
}

Expected<int64_t> Elaborator::asInt(const CtValue& v, SourceLoc loc, std::string_view what) {
  if (v.kind != CtValue::Kind::Int) return error(loc, "{} must be an integer, got {}", what, kindName(v.kind));
  return v.i;
}

Expected<TensorType> Elaborator::evalType(const ast::TypeExpr& t, Frame& f) {
  TensorType ty;
  ty.dtype = t.dtype == ast::ScalarType::F32 ? DType::F32 : DType::I32;
  for (const auto& d : t.dims) {
    NNC_TRY(CtValue v, eval(*d, f));
    NNC_TRY(int64_t n, asInt(v, d->loc, "a dimension"));
    if (n <= 0) return error(d->loc, "dimension must be positive, got {}", n);
    ty.shape.push_back(n);
  }
  return ty;
}

// Flattens a nested list literal, checking it is rectangular and matches `shape`.
Status flattenLiteral(const CtValue& v, const Shape& shape, size_t dim, std::vector<double>& out, SourceLoc loc) {
  if (dim == shape.size()) {
    if (v.kind == CtValue::Kind::Int) out.push_back(static_cast<double>(v.i));
    else if (v.kind == CtValue::Kind::Float) out.push_back(v.f);
    else return error(v.loc.valid() ? v.loc : loc, "expected a number in the literal, got {}", kindName(v.kind));
    return ok();
  }
  if (v.kind != CtValue::Kind::List)
    return error(v.loc.valid() ? v.loc : loc, "literal does not match the declared shape {}: expected a list of {} at depth {}",
                 shapeString(shape), shape[dim], dim + 1);
  if (static_cast<int64_t>(v.list.size()) != shape[dim])
    return error(v.loc.valid() ? v.loc : loc, "literal does not match the declared shape {}: {} item{} at depth {}, expected {}",
                 shapeString(shape), v.list.size(), v.list.size() == 1 ? "" : "s", dim + 1, shape[dim]);
  for (const CtValue& e : v.list) NNC_CHECK(flattenLiteral(e, shape, dim + 1, out, loc));
  return ok();
}

Status Elaborator::execBlock(const std::vector<Stmt>& body, Frame& f) {
  for (const Stmt& s : body) {
    NNC_CHECK(exec(s, f));
    if (f.returned) return ok();
  }
  return ok();
}

Status Elaborator::exec(const Stmt& s, Frame& f) {
  NNC_CHECK(countStep(s.loc));
  switch (s.kind) {
    case StmtKind::Input:
    case StmtKind::Label: {
      const char* what = s.kind == StmtKind::Input ? "input" : "label";
      if (!f.inModel) return error(s.loc, "'{}' declarations belong in a model, not in a def", what);
      if (f.vars.count(s.name) || usedNames_.count(s.name))
        return error(s.nameLoc, "'{}' is already defined", s.name);
      NNC_TRY(TensorType ty, evalType(s.type, f));
      Attrs attrs;
      if (s.value) {  // an example value, used when nothing is fed
        if (s.kind != StmtKind::Input) return error(s.value->loc, "only inputs take an example value");
        NNC_TRY(CtValue ex, eval(*s.value, f));
        std::vector<double> data;
        if (ex.kind == CtValue::Kind::List) {
          NNC_CHECK(flattenLiteral(ex, ty.shape, 0, data, s.value->loc));
        } else {
          NNC_CHECK(flattenLiteral(ex, {}, 0, data, s.value->loc));
        }
        attrs.set("example", data);
      }
      usedNames_.insert(s.name);
      NNC_TRY(ValueId v, g_.addSource(what, s.name, ty, std::move(attrs), s.nameLoc));
      batchAxis_[v] = batchAxisOf(s.type);
      f.vars[s.name] = CtValue::tensorValue(v, s.nameLoc);
      return ok();
    }
    case StmtKind::Param: {
      NNC_TRY(TensorType ty, evalType(s.type, f));
      if (ty.dtype != DType::F32) return error(s.type.loc, "params must be f32");
      NNC_TRY(CtValue init, eval(*s.value, f));
      InitSpec spec;
      if (init.kind == CtValue::Kind::Init) {
        spec = init.init;
      } else if (init.kind == CtValue::Kind::List || init.kind == CtValue::Kind::Int ||
                 init.kind == CtValue::Kind::Float) {
        spec.kind = "value";
        if (init.kind == CtValue::Kind::List) {
          NNC_CHECK(flattenLiteral(init, ty.shape, 0, spec.args, s.value->loc));
        } else {
          spec.args = {init.kind == CtValue::Kind::Int ? static_cast<double>(init.i) : init.f};
        }
      } else {
        return error(s.value->loc, "a param is initialized by an initializer (zeros(), he(), ...) or a literal, not {}",
                     kindName(init.kind));
      }
      if (f.vars.count(s.name)) return error(s.nameLoc, "'{}' is already defined", s.name);
      NNC_TRY(ValueId v, newParam(f.prefix + s.name, ty, spec, s.trainable, s.nameLoc));
      f.vars[s.name] = CtValue::tensorValue(v, s.nameLoc);
      return ok();
    }
    case StmtKind::Output: {
      if (!f.inModel) return error(s.loc, "'output' belongs in a model, not in a def");
      CtValue v;
      if (s.value) {
        NNC_TRY(v, eval(*s.value, f));
      } else {
        auto it = f.vars.find(s.name);
        if (it == f.vars.end()) return error(s.nameLoc, "unknown name '{}'", s.name);
        v = it->second;
      }
      NNC_TRY(ValueId t, asTensor(v, s.nameLoc));
      for (const auto& [n, _] : g_.outputs)
        if (n == s.name) return error(s.nameLoc, "output '{}' is declared twice", s.name);
      bindName(t, s.name);
      g_.outputs.emplace_back(s.name, t);
      f.vars[s.name] = CtValue::tensorValue(t, s.nameLoc);
      return ok();
    }
    case StmtKind::Assign: {
      NNC_TRY(CtValue v, eval(*s.value, f));
      if (v.kind == CtValue::Kind::None)
        return error(s.value->loc, "this expression gives nothing to assign to '{}'", s.name);
      if (v.kind == CtValue::Kind::Tensor) bindName(v.tensor, f.prefix + s.name);
      f.vars[s.name] = std::move(v);
      return ok();
    }
    case StmtKind::For: {
      NNC_TRY(CtValue lo, eval(*s.lo, f));
      NNC_TRY(CtValue hi, eval(*s.hi, f));
      NNC_TRY(int64_t a, asInt(lo, s.lo->loc, "a loop bound"));
      NNC_TRY(int64_t b, asInt(hi, s.hi->loc, "a loop bound"));
      if (b - a > kMaxUnrolledSteps)
        return error(s.loc, "loop of {} iterations exceeds the unrolling limit of {}", b - a, kMaxUnrolledSteps);
      for (int64_t i = a; i < b; ++i) {
        NNC_CHECK(countStep(s.loc));
        f.vars[s.name] = CtValue::intValue(i, s.nameLoc);
        NNC_CHECK(execBlock(s.body, f));
        if (f.returned) return ok();
      }
      return ok();
    }
    case StmtKind::Return: {
      if (f.inModel) return error(s.loc, "'return' belongs in a def, not in a model");
      NNC_TRY(CtValue v, eval(*s.value, f));
      f.returned = std::move(v);
      return ok();
    }
  }
  return ok();
}

Expected<CtValue> Elaborator::eval(const Expr& e, Frame& f) {
  switch (e.kind) {
    case ExprKind::Int: return CtValue::intValue(e.intValue, e.loc);
    case ExprKind::Float: return CtValue::floatValue(e.floatValue, e.loc);
    case ExprKind::String: {
      CtValue v;
      v.kind = CtValue::Kind::String;
      v.s = e.text;
      v.loc = e.loc;
      return v;
    }
    case ExprKind::Ident: {
      auto it = f.vars.find(e.text);
      if (it != f.vars.end()) return it->second;
      if (findDef(e.text) || findOp(e.text) || kInitializers.count(e.text) || isLayer(e.text))
        return error(e.loc, "'{}' is a function: call it as {}(...)", e.text, e.text);
      return error(e.loc, "unknown name '{}'", e.text);
    }
    case ExprKind::List: {
      CtValue v;
      v.kind = CtValue::Kind::List;
      v.loc = e.loc;
      for (const auto& x : e.elems) {
        NNC_TRY(CtValue item, eval(*x, f));
        v.list.push_back(std::move(item));
      }
      return v;
    }
    case ExprKind::Unary: {
      NNC_TRY(CtValue x, eval(*e.elems[0], f));
      if (x.kind == CtValue::Kind::Int) {
        if (x.i == INT64_MIN) return error(e.loc, "integer overflow in negation");
        return CtValue::intValue(-x.i, e.loc);
      }
      if (x.kind == CtValue::Kind::Float) return CtValue::floatValue(-x.f, e.loc);
      NNC_TRY(ValueId t, asTensor(x, e.loc));
      NNC_TRY(ValueId r, g_.add("neg", {t}, {}, e.loc));
      return CtValue::tensorValue(r, e.loc);
    }
    case ExprKind::Binary: return evalBinary(e, f);
    case ExprKind::Call: return evalCall(e, f);
  }
  return error(e.loc, "unhandled expression");
}

Expected<CtValue> Elaborator::evalBinary(const Expr& e, Frame& f) {
  NNC_TRY(CtValue a, eval(*e.elems[0], f));
  NNC_TRY(CtValue b, eval(*e.elems[1], f));
  using K = CtValue::Kind;
  using ast::BinOp;
  const bool numA = a.kind == K::Int || a.kind == K::Float, numB = b.kind == K::Int || b.kind == K::Float;
  if (a.kind == K::Int && b.kind == K::Int) {
    int64_t r = 0;
    bool okay = true;
    switch (e.binop) {
      case BinOp::Add: okay = checkedAdd(a.i, b.i, r); break;
      case BinOp::Sub: okay = checkedSub(a.i, b.i, r); break;
      case BinOp::Mul: okay = checkedMul(a.i, b.i, r); break;
      case BinOp::Div:
        if (b.i == 0) return error(e.loc, "division by zero");
        return CtValue::floatValue(static_cast<double>(a.i) / static_cast<double>(b.i), e.loc);
      case BinOp::FloorDiv:
      case BinOp::Mod: {
        if (b.i == 0) return error(e.loc, "division by zero");
        if (a.i == INT64_MIN && b.i == -1) return error(e.loc, "integer overflow");
        int64_t q = a.i / b.i, m = a.i % b.i;
        if (m != 0 && ((m < 0) != (b.i < 0))) {  // floor, as Python
          --q;
          m += b.i;
        }
        r = e.binop == BinOp::FloorDiv ? q : m;
        break;
      }
      case BinOp::MatMul: return error(e.loc, "'@' needs tensors, got two integers");
      case BinOp::Pow:
        if (b.i < 0) break;  // a float, as Python's 2 ** -1
        okay = checkedPow(a.i, b.i, r);
        break;
    }
    if (e.binop == BinOp::Pow && b.i < 0) {
      if (a.i == 0) return error(e.loc, "0 cannot be raised to a negative power");
      return CtValue::floatValue(std::pow(static_cast<double>(a.i), static_cast<double>(b.i)), e.loc);
    }
    if (!okay) return error(e.loc, "integer overflow in compile-time arithmetic");
    return CtValue::intValue(r, e.loc);
  }
  if (numA && numB) {
    const double x = a.kind == K::Int ? static_cast<double>(a.i) : a.f;
    const double y = b.kind == K::Int ? static_cast<double>(b.i) : b.f;
    switch (e.binop) {
      case BinOp::Add: return CtValue::floatValue(x + y, e.loc);
      case BinOp::Sub: return CtValue::floatValue(x - y, e.loc);
      case BinOp::Mul: return CtValue::floatValue(x * y, e.loc);
      case BinOp::Div:
        if (y == 0) return error(e.loc, "division by zero");
        return CtValue::floatValue(x / y, e.loc);
      case BinOp::Pow: {
        if (x == 0 && y < 0) return error(e.loc, "0 cannot be raised to a negative power");
        const double p = std::pow(x, y);
        // Python's OverflowError, or the complex root of a negative base.
        if (!std::isfinite(p)) return error(e.loc, "{} ** {} is not a finite real number", x, y);
        return CtValue::floatValue(p, e.loc);
      }
      default: return error(e.loc, "'//', '%' and '@' are not defined on non-integer numbers");
    }
  }
  const char* op = nullptr;
  switch (e.binop) {
    case BinOp::Add: op = "add"; break;
    case BinOp::Sub: op = "sub"; break;
    case BinOp::Mul: op = "mul"; break;
    case BinOp::Div: op = "div"; break;
    case BinOp::MatMul: op = "matmul"; break;
    case BinOp::Pow: op = "pow"; break;
    case BinOp::FloorDiv:
    case BinOp::Mod: return error(e.loc, "'//' and '%' are compile-time integer operators; they do not apply to tensors");
  }
  NNC_TRY(ValueId ta, asTensor(a, e.elems[0]->loc));
  NNC_TRY(ValueId tb, asTensor(b, e.elems[1]->loc));
  NNC_TRY(ValueId r, g_.add(op, {ta, tb}, {}, e.loc));
  return CtValue::tensorValue(r, e.loc);
}

Expected<Attr> toAttr(const CtValue& v, SourceLoc loc) {
  using K = CtValue::Kind;
  switch (v.kind) {
    case K::Int: return Attr{v.i};
    case K::Float: return Attr{v.f};
    case K::String: return Attr{v.s};
    case K::List: {
      bool allInt = true;
      for (const CtValue& x : v.list) {
        if (x.kind != K::Int && x.kind != K::Float)
          return error(x.loc.valid() ? x.loc : loc, "an attribute list holds numbers, not {}", kindName(x.kind));
        allInt &= x.kind == K::Int;
      }
      if (allInt) {
        std::vector<int64_t> r;
        for (const CtValue& x : v.list) r.push_back(x.i);
        return Attr{r};
      }
      std::vector<double> r;
      for (const CtValue& x : v.list) r.push_back(x.kind == K::Int ? static_cast<double>(x.i) : x.f);
      return Attr{r};
    }
    default: return error(loc, "expected a number, a string or a list of numbers, got {}", kindName(v.kind));
  }
}

Expected<CtValue> Elaborator::callOp(const OpDef& op, const Expr& call, std::vector<CtValue> pos,
                                     std::vector<std::pair<std::string, CtValue>> named) {
  if (op.kind == OpKind::Source)
    return error(call.loc, "'{}' is declared with a statement, not called", op.name);
  std::vector<ValueId> operands;
  Attrs attrs;
  size_t nextAttr = 0;
  const size_t required = static_cast<size_t>(op.requiredOperands());
  for (size_t k = 0; k < pos.size(); ++k) {
    const CtValue& v = pos[k];
    const SourceLoc loc = call.args[k].loc;
    const bool slotLeft = op.variadic || operands.size() < op.operands.size();
    if (op.variadic && v.kind == CtValue::Kind::List && operands.empty()) {
      for (const CtValue& x : v.list) {
        NNC_TRY(ValueId t, asTensor(x, x.loc.valid() ? x.loc : loc));
        operands.push_back(t);
      }
      continue;
    }
    if (slotLeft && (v.kind == CtValue::Kind::Tensor || operands.size() < required)) {
      NNC_TRY(ValueId t, asTensor(v, loc));
      operands.push_back(t);
      continue;
    }
    if (nextAttr >= op.attrs.size())
      return error(loc, "too many arguments to '{}'", op.name);
    NNC_TRY(Attr a, toAttr(v, loc));
    attrs.set(std::string(op.attrs[nextAttr++].name), std::move(a));
  }
  for (size_t k = 0; k < named.size(); ++k) {
    auto& [name, v] = named[k];
    const SourceLoc loc = call.args[pos.size() + k].loc;
    bool isOperand = false;
    for (size_t s = 0; s < op.operands.size(); ++s)
      if (op.operands[s] == name) {
        if (s != operands.size()) return error(loc, "operand '{}' of '{}' given out of order", name, op.name);
        NNC_TRY(ValueId t, asTensor(v, loc));
        operands.push_back(t);
        isOperand = true;
      }
    if (isOperand) continue;
    if (attrs.has(name)) return error(loc, "'{}' given twice", name);
    NNC_TRY(Attr a, toAttr(v, loc));
    attrs.set(name, std::move(a));
  }
  NNC_TRY(ValueId r, g_.add(op.name, std::move(operands), std::move(attrs), call.loc));
  return CtValue::tensorValue(r, call.loc);
}

Expected<CtValue> Elaborator::callDef(const ast::FuncDecl& d, const Expr& call, std::vector<CtValue> pos,
                                      std::vector<std::pair<std::string, CtValue>> named) {
  if (depth_ >= kMaxCallDepth)
    return error(call.loc, "calls nested deeper than {} (unbounded recursion in '{}'?)", kMaxCallDepth, d.name);
  Frame callee;
  callee.prefix = fmt::format("{}{}.", d.name, ++defCounts_[d.name]);
  if (pos.size() > d.params.size())
    return error(call.loc, "'{}' takes {} argument{}, got {}", d.name, d.params.size(),
                 d.params.size() == 1 ? "" : "s", pos.size());
  for (size_t k = 0; k < pos.size(); ++k) callee.vars[d.params[k].name] = std::move(pos[k]);
  for (size_t k = 0; k < named.size(); ++k) {
    auto& [name, v] = named[k];
    bool found = false;
    for (const auto& p : d.params) found |= p.name == name;
    if (!found) return error(call.args[pos.size() + k].loc, "'{}' has no parameter '{}'", d.name, name);
    if (callee.vars.count(name)) return error(call.args[pos.size() + k].loc, "'{}' given twice", name);
    callee.vars[name] = std::move(v);
  }
  for (const auto& p : d.params) {
    if (callee.vars.count(p.name)) continue;
    if (!p.defaultValue) return error(call.loc, "missing argument '{}' of '{}'", p.name, d.name);
    Frame empty;
    NNC_TRY(CtValue v, eval(*p.defaultValue, empty));
    callee.vars[p.name] = std::move(v);
  }
  ++depth_;
  Status st = execBlock(d.body, callee);
  --depth_;
  if (!st) return std::move(st.error()).note(call.loc, fmt::format("in '{}' called here", d.name));
  if (!callee.returned) {
    CtValue none;
    none.loc = call.loc;
    return none;
  }
  return *callee.returned;
}

Expected<CtValue> Elaborator::evalCall(const Expr& e, Frame& f) {
  NNC_CHECK(countStep(e.loc));
  std::vector<CtValue> pos;
  std::vector<std::pair<std::string, CtValue>> named;
  for (const ast::Arg& a : e.args) {
    NNC_TRY(CtValue v, eval(*a.value, f));
    if (a.name.empty()) {
      if (!named.empty()) return error(a.loc, "positional argument after a named one");
      pos.push_back(std::move(v));
    } else {
      for (const auto& [n, _] : named)
        if (n == a.name) return error(a.loc, "'{}' given twice", a.name);
      named.emplace_back(a.name, std::move(v));
    }
  }
  if (const ast::FuncDecl* d = findDef(e.text)) return callDef(*d, e, std::move(pos), std::move(named));
  if (e.text == "load") return loadInit(e, pos, named);
  if (kInitializers.count(e.text) && !isNormalOp(e.text, pos, named)) {
    CtValue v;
    v.kind = CtValue::Kind::Init;
    v.loc = e.loc;
    v.init.kind = e.text;
    // Named arguments in their conventional order: normal(std), uniform(low, high), constant(value).
    static const std::map<std::string, std::vector<std::string>, std::less<>> kNames = {
        {"constant", {"value"}}, {"normal", {"std"}}, {"uniform", {"low", "high"}},
        {"zeros", {}}, {"xavier", {}}, {"he", {}}};
    const auto& names = kNames.find(e.text)->second;
    std::vector<std::optional<double>> args(names.size());
    if (pos.size() > names.size()) return error(e.loc, "{}() takes {} argument{}", e.text, names.size(), names.size() == 1 ? "" : "s");
    auto num = [&](const CtValue& x, SourceLoc loc) -> Expected<double> {
      if (x.kind == CtValue::Kind::Int) return static_cast<double>(x.i);
      if (x.kind == CtValue::Kind::Float) return x.f;
      return error(loc, "{}() takes numbers, got {}", e.text, kindName(x.kind));
    };
    for (size_t k = 0; k < pos.size(); ++k) {
      NNC_TRY(args[k], num(pos[k], e.args[k].loc));
    }
    for (size_t k = 0; k < named.size(); ++k) {
      auto it = std::find(names.begin(), names.end(), named[k].first);
      if (it == names.end()) return error(e.args[pos.size() + k].loc, "{}() has no argument '{}'", e.text, named[k].first);
      NNC_TRY(args[static_cast<size_t>(it - names.begin())], num(named[k].second, e.args[pos.size() + k].loc));
    }
    for (size_t k = 0; k < args.size(); ++k) {
      if (!args[k]) {
        if (e.text == "constant") return error(e.loc, "constant() needs a value");
        break;  // the initializer's defaults apply from here on
      }
      v.init.args.push_back(*args[k]);
    }
    return v;
  }
  if (isLayer(e.text)) {
    LayerCall lc{e.text, e.loc, {}, {}};
    for (size_t k = 0; k < pos.size(); ++k) lc.positional.push_back(pos[k]);
    for (auto& [n, v] : named) lc.named.emplace_back(n, v);
    const size_t first = g_.size();
    auto r = expandLayer(*this, lc);
    if (!r) return std::move(r.error());
    if (r->handled) {
      // The layer's params are named "<prefix>.W": the prefix names the layer.
      std::string prefix;
      for (size_t i = first; i < g_.size() && prefix.empty(); ++i)
        if (g_.nodes[i].op->is(OpId::Param)) prefix = g_.nodes[i].name.substr(0, g_.nodes[i].name.rfind('.'));
      for (size_t i = first; i < g_.size(); ++i)
        if (g_.nodes[i].op->kind != OpKind::Source)
          g_.nodes[i].layer = prefix.empty() ? e.text : e.text + " " + prefix;
      return CtValue::tensorValue(r->value, e.loc);
    }
  }
  if (const OpDef* op = findOp(e.text)) {
    if (op->internal)
      return error(e.loc, "'{}' is made by the optimizer's fusions and cannot be called; write the unfused ops", e.text);
    return callOp(*op, e, std::move(pos), std::move(named));
  }
  return error(e.loc, "unknown function '{}'", e.text);
}

Expected<TrainValue> Elaborator::evalTrainValue(const Expr& e) {
  TrainValue tv;
  tv.loc = e.loc;
  if (e.kind == ExprKind::Call) {
    tv.kind = e.text;
    for (const ast::Arg& a : e.args) {
      NNC_TRY(TrainValue v, evalTrainValue(*a.value));
      if (a.name.empty()) tv.positional.push_back(std::move(v));
      else tv.args[a.name] = std::move(v);
    }
    return tv;
  }
  Frame f;
  NNC_TRY(CtValue v, eval(e, f));
  switch (v.kind) {
    case CtValue::Kind::Int: tv.kind = "int"; tv.number = static_cast<double>(v.i); return tv;
    case CtValue::Kind::Float: tv.kind = "float"; tv.number = v.f; return tv;
    case CtValue::Kind::String: tv.kind = "string"; tv.text = v.s; return tv;
    default: return error(e.loc, "a train setting is a number, a string or a call like adam(lr = 0.001)");
  }
}

const std::set<std::string, std::less<>> kTrainKeys = {
    "data", "optimizer", "epochs", "iterations", "seed", "regularize", "schedule", "limit",
    "validation", "augment", "shuffle", "log_every", "eval_train", "flag_quantile", "warmup", "clip_grad_norm"};
const std::set<std::string, std::less<>> kOptimizers = {"sgd",     "momentum", "nesterov", "adagrad",
                                                        "rmsprop", "adam",     "adamw"};
const std::set<std::string, std::less<>> kDataSources = {"idx", "npz", "npy", "csv", "images", "text"};

Expected<TrainConfig> Elaborator::evalTrain(const ast::TrainDecl& t) {
  TrainConfig c;
  c.model = t.model;
  c.loc = t.loc;
  for (const ast::TrainEntry& en : t.entries) {
    if (!kTrainKeys.count(en.key)) {
      std::string known;
      for (const auto& k : kTrainKeys) known += (known.empty() ? "" : ", ") + k;
      return error(en.loc, "unknown train setting '{}' (known: {})", en.key, known);
    }
    if (c.settings.count(en.key)) return error(en.loc, "train setting '{}' given twice", en.key);
    NNC_TRY(TrainValue v, evalTrainValue(*en.value));
    if (en.key == "optimizer" && !kOptimizers.count(v.kind))
      return error(en.value->loc,
                   "unknown optimizer '{}' (known: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw)",
                   v.kind == "string" ? v.text : v.kind);
    if (en.key == "data" && !kDataSources.count(v.kind))
      return error(en.value->loc, "data is one of idx(\"folder\"), npz(\"file\"), npy(\"folder\"), csv(\"file\"), images(\"folder\"), text(\"file or folder\")");
    if ((en.key == "epochs" || en.key == "seed" || en.key == "limit" || en.key == "iterations") &&
        (v.kind != "int" || v.number < 0))
      return error(en.value->loc, "'{}' must be a non-negative integer", en.key);
    c.settings[en.key] = std::move(v);
  }
  // What the settings mean, checked here so that every command (nnc check
  // too) refuses what nnc run would.
  NNC_CHECK(checkTrainSettings(c));
  return c;
}

int Elaborator::batchAxisOf(const ast::TypeExpr& t) const {
  if (t.dims.empty()) return -1;
  if (hasBatchParam_)
    for (size_t k = 0; k < t.dims.size(); ++k)
      if (t.dims[k]->kind == ExprKind::Ident && t.dims[k]->text == "batch") return static_cast<int>(k);
  return 0;
}

void Elaborator::recordDataFacts(Elaborated& out) const {
  const Graph& g = out.graph;
  out.batchAxis = batchAxis_;
  if (!g.inputs.empty()) {
    const int axis = batchAxis_.at(g.inputs[0]);
    if (axis >= 0) out.batch = g.type(g.inputs[0]).shape[static_cast<size_t>(axis)];
  }
  for (const auto& [name, v] : g.outputs) {
    const TensorType& t = g.type(v);
    if (t.rank() == 2 && t.shape[0] == out.batch) out.scores.push_back(v);
    if (t.shape == Shape{out.batch} && t.dtype == DType::F32) out.perSample.push_back(v);
    if (t.numel() == 1 && t.dtype == DType::F32) out.metrics.emplace_back(name, v);
  }
  if (g.loss != kNoValue) {
    const Node& l = g.node(g.loss);
    if ((l.op->is(OpId::SoftmaxCrossEntropy) || l.op->is(OpId::CrossEntropy)) &&
        g.type(l.inputs[0]).rank() == 2 && g.type(l.inputs[0]).shape[0] == out.batch)
      out.lossScores = l.inputs[0];
  }
}

Expected<Elaborated> Elaborator::run() {
  if (prog_.models.empty()) return error("no model in this file");
  // Every train block must name a model and be well-formed, whichever model is built.
  std::vector<TrainConfig> trains;
  for (const ast::TrainDecl& t : prog_.trains) {
    bool found = false;
    for (const auto& m : prog_.models) found |= m.name == t.model;
    if (!found) return error(t.modelLoc, "train block names unknown model '{}'", t.model);
    NNC_TRY(TrainConfig c, evalTrain(t));
    trains.push_back(std::move(c));
  }
  std::string want = opt_.model;
  if (want.empty()) want = trains.empty() ? prog_.models.back().name : trains.front().model;
  const ast::FuncDecl* model = nullptr;
  for (const auto& m : prog_.models)
    if (m.name == want) model = &m;
  if (!model) {
    std::string names;
    for (const auto& m : prog_.models) names += (names.empty() ? "" : ", ") + m.name;
    return error("no model named '{}' (this file has: {})", want, names);
  }
  g_.name = model->name;
  Frame f;
  f.inModel = true;
  for (const auto& [k, v] : opt_.overrides) {
    bool found = false;
    for (const auto& p : model->params) found |= p.name == k;
    if (!found) return error("model '{}' has no parameter '{}'", model->name, k);
  }
  std::vector<ModelParam> params;
  for (const auto& p : model->params) {
    hasBatchParam_ |= p.name == "batch";
    std::optional<int64_t> given;
    if (auto ov = opt_.overrides.find(p.name); ov != opt_.overrides.end()) given = ov->second;
    else if (auto d = opt_.defaults.find(p.name); d != opt_.defaults.end()) given = d->second;
    if (given) {
      f.vars[p.name] = CtValue::intValue(*given, p.loc);
    } else {
      if (!p.defaultValue) return error(p.loc, "model parameter '{}' has no default and no value was given", p.name);
      Frame empty;
      NNC_TRY(CtValue v, eval(*p.defaultValue, empty));
      f.vars[p.name] = std::move(v);
    }
    const CtValue& v = f.vars[p.name];
    params.push_back({p.name, v.kind == CtValue::Kind::Int ? std::optional<int64_t>(v.i) : std::nullopt});
  }
  NNC_CHECK(execBlock(model->body, f));
  auto loss = f.vars.find("loss");
  if (loss != f.vars.end()) {
    if (loss->second.kind != CtValue::Kind::Tensor)
      return error(loss->second.loc, "'loss' must be a tensor, got {}", kindName(loss->second.kind));
    const TensorType& t = g_.type(loss->second.tensor);
    if (!t.shape.empty() || t.dtype != DType::F32)
      return error(loss->second.loc, "'loss' must be an f32 scalar, got {}", typeString(t));
    g_.loss = loss->second.tensor;
  }
  if (g_.loss == kNoValue && g_.outputs.empty())
    return error(model->loc, "model '{}' has neither a loss nor an output", model->name);
  Elaborated out;
  out.graph = std::move(g_);
  out.params = std::move(params);
  recordDataFacts(out);
  for (auto& t : trains)
    if (t.model == model->name && !out.train) out.train = std::move(t);
  return out;
}

}  // namespace

Expected<Elaborated> elaborate(const ast::Program& prog, const ElaborateOptions& opt) {
  Elaborator e(prog, opt);
  return e.run();
}

}  // namespace nnc
