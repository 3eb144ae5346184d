// nnc emit-cpp: NAME.hpp and NAME.cpp, printed from the programs the JIT
// compiles (compiler/jit/compiled.cpp runs the same three steps: optimize,
// lower, plan memory). The kernels are loop::printCpp's functions; the entry
// functions call them on the slots of the arena as the JIT's entry does.
// One difference in where values live: sources are not copied into the
// arena. Params live in one block of their own, which both programs read
// (so training needs no copy to inference), and inputs and labels are read
// where the caller keeps them; their arena slots stay unused.
#include "compiler/emit/emit_cpp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "compiler/autodiff/train_step.h"

namespace nnc {

namespace {

bool keyword(const std::string& s) {
  static const std::set<std::string> kWords = {
      "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch",
      "char", "char16_t", "char32_t", "char8_t", "class", "compl", "concept", "const", "const_cast", "consteval",
      "constexpr", "constinit", "continue", "co_await", "co_return", "co_yield", "decltype", "default", "delete",
      "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for",
      "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq",
      "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
      "requires", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct",
      "switch", "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union",
      "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq", "std", "main"};
  return kWords.count(s) != 0;
}

// A C++ identifier for a graph name ("fc1.W" -> fc1_W).
std::string ident(const std::string& name) {
  std::string s;
  for (char c : name) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '_') s = "v" + s;
  if (keyword(s)) s += "_";
  return s;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// A float literal that reads back as the same float.
std::string floatLiteral(float v) {
  if (std::isnan(v)) return "NAN";
  if (std::isinf(v)) return v > 0 ? "INFINITY" : "-INFINITY";
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s + "f";
}

std::string floatArray(const std::vector<float>& v) {
  std::string out, line = "   ";
  for (float x : v) {
    const std::string item = floatLiteral(x);
    if (line.size() + item.size() + 2 > 110) {
      out += line;
      out += '\n';
      line = "   ";
    }
    line += ' ';
    line += item;
    line += ',';
  }
  out += line;
  out += '\n';
  return out;
}

std::vector<float> toFloats(const std::vector<double>& d) {
  std::vector<float> f(d.size());
  for (size_t i = 0; i < d.size(); ++i) f[i] = static_cast<float>(d[i]);
  return f;
}

bool uniform(const std::vector<float>& v) {
  for (float x : v)
    if (std::memcmp(&x, v.data(), sizeof x) != 0) return false;
  return true;
}

bool callsRuntime(const Program& p, const std::string& callee) {
  auto calls = [&](auto&& self, const std::vector<loop::Stmt>& body) -> bool {
    for (const loop::Stmt& s : body)
      if ((s.kind == loop::Stmt::Kind::Call && s.callee == callee) || self(self, s.body)) return true;
    return false;
  };
  for (const loop::Kernel& k : p.kernels)
    if (calls(calls, k.body)) return true;
  return false;
}

std::string plural(int64_t n, const char* what) { return fmt::format("{} {}{}", n, what, n == 1 ? "" : "s"); }

// One lowered program (infer or train_step), as CompiledProgram::create builds it.
struct Lowered {
  Graph graph;                 // after the passes
  std::vector<ValueId> map;    // the given graph's ids -> graph's
  Program program;
};

Expected<Lowered> lowerProgram(const Graph& g, const std::vector<ValueId>& targets, const LowerOptions& lower,
                               const PassOptions& passes) {
  NNC_TRY(Optimized o, optimizeGraph(g, rootsOf(targets, lower), passes));
  std::vector<ValueId> mapped;
  for (ValueId t : targets) mapped.push_back(o.map[static_cast<size_t>(t)]);
  const LowerOptions lo = mapCommits(loweringFor(lower, passes), o.map);
  NNC_TRY(Program p, lowerGraph(o.graph, mapped, lo));
  if (passes.dump && (passes.dumpAfter == "lower" || passes.dumpAfter == "all"))
    *passes.dump << "# after lower\n" << printProgram(p);
  return Lowered{std::move(o.graph), std::move(o.map), std::move(p)};
}

// A model param: its place in the params block and in a weights file.
struct Param {
  std::string name, id;
  TensorType type;
  int64_t offset = 0;      // in the params block (16-float aligned)
  int64_t fileOffset = 0;  // in NAME.weights (packed)
  std::vector<float> values;
};

// An operand of an entry function: an input, a label or an output.
struct Operand {
  std::string name, id, role;
  TensorType type;
  ValueId value;  // in the model graph
};

// Where an entry function finds each slot of its program.
struct Place {
  enum Kind { Arena, Params, Arg } kind = Arena;
  int64_t offset = 0;
  std::string arg;
};

// The text of one program: its kernels, and the body of its entry function.
class ProgramPrinter {
 public:
  ProgramPrinter(const Lowered& l, std::string ns) : l_(l), ns_(std::move(ns)), place_(l.program.slots.size()) {
    for (size_t s = 0; s < l.program.slots.size(); ++s) place_[s].offset = l.program.slots[s].offset;
  }

  int slotOf(ValueId original) const {
    if (original == kNoValue) return -1;
    const ValueId v = l_.map[static_cast<size_t>(original)];
    return v == kNoValue ? -1 : l_.program.valueSlot[static_cast<size_t>(v)];
  }

  void placeParam(ValueId original, int64_t offset) {
    if (const int s = slotOf(original); s >= 0) place_[static_cast<size_t>(s)] = Place{Place::Params, offset, ""};
  }
  // False when the program does not read it.
  bool placeArg(ValueId original, const std::string& arg) {
    const int s = slotOf(original);
    if (s < 0) return false;
    place_[static_cast<size_t>(s)] = Place{Place::Arg, 0, arg};
    return true;
  }

  std::string pointer(int slot) {
    const Place& p = place_[static_cast<size_t>(slot)];
    if (p.kind == Place::Arg) return p.arg;
    const std::string base = p.kind == Place::Params ? "p" : "a";
    (p.kind == Place::Params ? usesParams_ : usesArena_) = true;
    return p.offset ? fmt::format("{} + {}", base, p.offset) : base;
  }

  // The slot's first element, as an lvalue.
  std::string element(int slot) {
    const Place& p = place_[static_cast<size_t>(slot)];
    if (p.kind == Place::Arg) return p.arg + "[0]";
    (p.kind == Place::Params ? usesParams_ : usesArena_) = true;
    return fmt::format("{}[{}]", p.kind == Place::Params ? "p" : "a", p.offset);
  }

  std::string kernels() const {
    std::string out = fmt::format("namespace {} {{\n\n", ns_);
    for (const loop::Kernel& k : l_.program.kernels) out += loop::printCpp(k) + "\n";
    return out + fmt::format("}}  // namespace {}\n", ns_);
  }

  // The kernel launches, then the commits (each param or state value takes
  // its next value).
  std::string launches() {
    std::string out;
    const Program& p = l_.program;
    for (const Launch& launch : p.launches) {
      std::string args;
      for (int s : launch.slots) args += (args.empty() ? "" : ", ") + pointer(s);
      out += fmt::format("  {}::{}({});\n", ns_, p.kernels[static_cast<size_t>(launch.kernel)].name, args);
    }
    if (!p.commits.empty()) out += "  // The next values of the params and the optimizer state.\n";
    for (const auto& [dst, src] : p.commits) {
      const std::string d = pointer(dst), s = pointer(src);
      out += fmt::format("  std::memcpy({}, {}, {} * sizeof(float));  // {} <- {}\n", d, s,
                         p.slots[static_cast<size_t>(dst)].size, p.slots[static_cast<size_t>(dst)].name,
                         p.slots[static_cast<size_t>(src)].name);
    }
    return out;
  }

  // Arena values set once, by the constructor: consts of the optimized
  // graph, and (train_step) the optimizer state's initial values.
  struct Fill {
    std::string name;
    int64_t offset;
    std::vector<float> values;
  };
  std::vector<Fill> consts() const {
    std::vector<Fill> out;
    for (ValueId v = 0; v < static_cast<ValueId>(l_.graph.size()); ++v) {
      const Node& n = l_.graph.node(v);
      const int s = l_.program.valueSlot[static_cast<size_t>(v)];
      if (s < 0 || !n.op->is(OpId::Const)) continue;
      const std::vector<double>& vals = n.attrs.floats("value");
      std::vector<float> f(static_cast<size_t>(n.type.numel()));
      for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(vals.size() == 1 ? vals[0] : vals.at(i));
      out.push_back({l_.program.slots[static_cast<size_t>(s)].name, l_.program.slots[static_cast<size_t>(s)].offset,
                     std::move(f)});
    }
    return out;
  }

  int64_t arenaFloats() const { return l_.program.arenaFloats; }
  const Program& program() const { return l_.program; }
  const std::string& ns() const { return ns_; }
  bool usesParams() const { return usesParams_; }
  bool usesArena() const { return usesArena_; }
  int64_t slotOffset(int s) const { return l_.program.slots[static_cast<size_t>(s)].offset; }

 private:
  const Lowered& l_;
  std::string ns_;
  std::vector<Place> place_;
  bool usesParams_ = false, usesArena_ = false;
};

// `float* const a = arena;` lines for what the body uses (no unused variable).
std::string locals(const ProgramPrinter& p, const std::string& arena, bool paramsConst) {
  std::string out;
  if (p.usesArena()) out += fmt::format("  float* const a = {};\n", arena);
  if (p.usesParams()) out += fmt::format("  {}float* const p = params_;\n", paramsConst ? "const " : "");
  return out;
}

constexpr std::string_view kWeightsIo = R"(
namespace {

bool littleEndian() {
  const uint32_t one = 1;
  unsigned char first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

void swapBytes(float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    unsigned char b[4];
    std::memcpy(b, v + i, 4);
    std::swap(b[0], b[3]);
    std::swap(b[1], b[2]);
    std::memcpy(v + i, b, 4);
  }
}

}  // namespace
)";

}  // namespace

Expected<std::vector<EmittedFile>> emitCpp(const Elaborated& model, const EmitCppOptions& opt) {
  const Graph& g = model.graph;
  const std::string name = ident(g.name.empty() ? "model" : g.name);
  if (name == "nnc_runtime" || name == "main_example")
    return error("model '{}': emit-cpp writes files of that name for its own use; rename the model", g.name);
  const std::string cls = name;

  // ---- the programs, as the JIT compiles them ----
  std::vector<ValueId> outputs;
  for (const auto& [_, v] : g.outputs) outputs.push_back(v);
  if (outputs.empty()) return error("model '{}' has no outputs: nothing for infer to compute", g.name);
  NNC_TRY(const Lowered inferLowered, lowerProgram(g, outputs, LowerOptions{}, opt.passes));
  std::optional<TrainStep> step;
  std::optional<Lowered> trainLowered;
  if (opt.train) {
    if (g.loss == kNoValue) return error("model '{}' has no loss: --train needs one", g.name);
    NNC_TRY(step, buildTrainStep(g, model.train));
    const Graph& sg = step->grads.graph;
    NNC_TRY(trainLowered, lowerProgram(sg, {sg.loss}, step->lowering(), opt.passes));
  }

  // ---- params: one block, 16-float aligned each; packed in a weights file ----
  std::vector<Param> params;
  std::set<std::string> paramIds;
  int64_t paramFloats = 0, fileFloats = 0;
  for (ValueId v : g.params) {
    const Node& n = g.node(v);
    auto it = opt.params.find(n.name);
    if (it == opt.params.end()) return error("no value for param '{}' of model '{}'", n.name, g.name);
    if (it->second.numel() != n.type.numel())
      return error("param '{}' of model '{}' is {}, but its value has {} elements", n.name, g.name, typeString(n.type),
                   it->second.numel());
    std::string id = ident(n.name);  // names the param's array: unique ("a.b" and "a_b" are both a_b)
    while (!paramIds.insert(id).second) id += "_";
    params.push_back({n.name, id, n.type, paramFloats, fileFloats, toFloats(it->second.data)});
    paramFloats += alignedFloats(n.type.numel());
    fileFloats += n.type.numel();
  }

  // ---- operands of the entry functions ----
  std::set<std::string> taken = {"a", "p", "lr", "i", "f", "ok", "v", "name", "path", "weights_path", cls};
  auto operand = [&](ValueId v, const char* role) {
    const Node& n = g.node(v);
    std::string id = ident(n.name);
    while (taken.count(id)) id += "_";
    taken.insert(id);
    return Operand{n.name, id, role, n.type, v};
  };
  std::vector<Operand> inputs, labels, outs;
  for (ValueId v : g.inputs) inputs.push_back(operand(v, "input"));
  for (ValueId v : g.labels) labels.push_back(operand(v, "label"));
  for (const auto& [_, v] : g.outputs) outs.push_back(operand(v, "output"));

  ProgramPrinter infer(inferLowered, "infer_kernels");
  for (const Param& p : params) infer.placeParam(g.findByName(p.name), p.offset);
  std::vector<bool> inferReads;
  for (const Operand& x : inputs) inferReads.push_back(infer.placeArg(x.value, x.id));
  // Labels only where an output depends on one (they are then infer's operands too).
  std::vector<const Operand*> inferLabels;
  for (const Operand& t : labels)
    if (infer.placeArg(t.value, t.id)) inferLabels.push_back(&t);
  const std::string inferBody = infer.launches();

  std::optional<ProgramPrinter> train;
  std::string trainBody;
  std::vector<bool> trainReads;
  struct StateInit {
    std::string name;
    int64_t offset;
    std::vector<float> values;
  };
  std::vector<StateInit> state;
  int lossSlot = -1, lrSlot = -1;
  if (step) {
    const Graph& sg = step->grads.graph;
    train.emplace(*trainLowered, "train_kernels");
    for (const Param& p : params) train->placeParam(sg.findByName(p.name), p.offset);
    for (const Operand& x : inputs) trainReads.push_back(train->placeArg(sg.findByName(x.name), x.id));
    for (const Operand& t : labels) trainReads.push_back(train->placeArg(sg.findByName(t.name), t.id));
    NNC_TRY(TensorMap init, initParams(sg, 42));
    for (ValueId v : sg.params) {
      const Node& n = sg.node(v);
      if (g.findByName(n.name) != kNoValue) continue;  // a model param
      const int s = train->slotOf(v);
      if (s < 0) continue;
      auto given = opt.state.find(n.name);
      const Tensor& t = given != opt.state.end() && given->second.numel() == n.type.numel() ? given->second : init.at(n.name);
      state.push_back({n.name, train->slotOffset(s), toFloats(t.data)});
    }
    lossSlot = train->slotOf(sg.loss);
    lrSlot = train->slotOf(step->lr);
    trainBody = train->launches();
  }

  const int64_t inferFloats = alignedFloats(infer.arenaFloats());
  const int64_t trainFloats = train ? alignedFloats(train->arenaFloats()) : 0;
  const int64_t memoryFloats = paramFloats + inferFloats + trainFloats;

  // ---- NAME.hpp ----
  std::string h = fmt::format("// {}.hpp: model {} as standalone C++, written by nnc emit-cpp", name, g.name);
  h += opt.origin.empty() ? ".\n" : fmt::format("\n//   {}\n", opt.origin);
  h += fmt::format(
      "// Do not edit: regenerate. Build every .cpp of this folder into one program\n"
      "// (`g++ *.cpp` builds main_example; C++17, no dependency). For speed: -O2 or\n"
      "// -O3, -march=native (the GEMM then uses the CPU's widest vectors, as nnc's\n"
      "// JIT does) and, with GCC, -fno-math-errno (square roots in vector loops).\n"
      "//\n"
      "// The kernels are those nnc's JIT compiles for this model (same graph passes,\n"
      "// fusions, memory plan and runtime calls); they run on the calling thread.\n"
      "// infer{} {}. One object holds the params\n"
      "// and the working memory ({}); objects are independent, so threads may\n"
      "// run one each, but one object is not safe to use from two threads at once.\n"
      "#pragma once\n#include <cstdint>\n#include <string>\n#include <vector>\n\n",
      train ? " and train_step" : "", train ? "each take one fixed-size batch" : "takes one fixed-size batch",
      memoryFloats * 4 >= (1 << 20) ? fmt::format("{:.1f} MiB", static_cast<double>(memoryFloats * 4) / (1 << 20))
                                    : fmt::format("{:.1f} KiB", static_cast<double>(memoryFloats * 4) / (1 << 10)));
  h += fmt::format("namespace {} {{\n\n", opt.ns);
  std::string opDoc;
  auto docLine = [&](const Operand& o, const char* role) {
    opDoc += fmt::format("//   {:<10} {:<7} {}  ({} floats)\n", o.id, role, typeString(o.type), o.type.numel());
  };
  for (const Operand& x : inputs) docLine(x, "input");
  if (train || !inferLabels.empty())
    for (const Operand& t : labels) docLine(t, "label");
  for (const Operand& y : outs) docLine(y, "output");
  h += fmt::format(
      "// Model {}. Operands are row-major float arrays of fixed sizes (i32 values,\n"
      "// such as class ids, are held as floats), read or written in place; no\n"
      "// alignment is needed:\n{}",
      g.name, opDoc);
  std::string paramDoc;
  for (const Param& p : params)
    paramDoc += fmt::format("//   {:<3} {:<14} {:<18} floats [{}, {})\n", &p - params.data(), p.name, typeString(p.type),
                            p.fileOffset, p.fileOffset + p.type.numel());
  h += fmt::format(
      "//\n// Params (param(i), and the layout of a weights file: the {} floats below,\n"
      "// raw little-endian f32, each param row-major, one after the other, no header):\n{}",
      fileFloats, paramDoc);
  h += fmt::format("class {} {{\n public:\n", cls);
  for (const Operand& x : inputs) h += fmt::format("  static constexpr int64_t {}_size = {};\n", x.id, x.type.numel());
  if (train || !inferLabels.empty())
    for (const Operand& t : labels) h += fmt::format("  static constexpr int64_t {}_size = {};\n", t.id, t.type.numel());
  for (const Operand& y : outs) h += fmt::format("  static constexpr int64_t {}_size = {};\n", y.id, y.type.numel());
  h += "\n";
  if (opt.weightsFile)
    h += fmt::format(
        "  // Params from a weights file ({}.weights, written next to this file).\n"
        "  // Throws std::runtime_error when it cannot be read or has the wrong size.\n"
        "  explicit {}(const std::string& weights_path);\n",
        name, cls);
  else
    h += fmt::format("  // Params from the values emitted into {}.cpp ({}).\n  {}();\n", name,
                     opt.origin.find("--weights") != std::string::npos ? "the weights given to nnc emit-cpp"
                                                                         : "the model's initial values",
                     cls);
  h += fmt::format("  {0}(const {0}&) = delete;\n  {0}& operator=(const {0}&) = delete;\n", cls);
  h += fmt::format("  {0}({0}&&) = default;  // a moved-from object is unusable\n  {0}& operator=({0}&&) = default;\n\n", cls);
  std::vector<std::string> inferSig;
  for (const Operand& x : inputs) inferSig.push_back("const float* " + x.id);
  for (const Operand* t : inferLabels) inferSig.push_back("const float* " + t->id);
  for (const Operand& y : outs) inferSig.push_back("float* " + y.id);
  const bool samples = std::any_of(g.nodes.begin(), g.nodes.end(), [](const Node& n) { return n.op->is(OpId::Normal); });
  h += fmt::format("  // Inference (dropout off, {}).\n  void infer({});\n",
                   samples ? "normal samples at their mean, batchnorm on its\n  // running statistics"
                           : "batchnorm on its running statistics",
                   join(inferSig));
  if (train) {
    std::vector<std::string> trainSig;
    for (const Operand& x : inputs) trainSig.push_back("const float* " + x.id);
    for (const Operand& t : labels) trainSig.push_back("const float* " + t.id);
    trainSig.push_back("float lr");
    const bool masks = callsRuntime(trainLowered->program, "nnc_dropout_mask");
    const bool draws = callsRuntime(trainLowered->program, "nnc_normal");
    const char* drawn = masks && draws ? "Dropout masks and normal samples" : masks ? "Dropout masks" : "Normal samples";
    h += fmt::format(
        "\n  // One training step on a batch: forward, backward and the {} update of\n"
        "  // the params held here at learning rate lr (a schedule is the caller's).\n"
        "  // Returns the loss before the update.{}\n  float train_step({});\n",
        step->optimizer.kind,
        masks || draws ? fmt::format("\n  // {} come from one process-wide generator, seeded\n"
                                     "  // with 0 at start: nnc::setRandomSeed (nnc_runtime.h) reseeds it.",
                                     drawn)
                       : "",
        join(trainSig));
  }
  h += fmt::format(
      "\n  static constexpr int num_params = {};\n"
      "  static const char* param_name(int i);\n"
      "  static int64_t param_size(int i);  // floats\n"
      "  float* param(int i);\n"
      "  const float* param(int i) const;\n"
      "  float* param(const std::string& name);  // nullptr when there is none\n"
      "  // All params from or to a weights file (layout above); throw\n"
      "  // std::runtime_error when the file cannot be read or written.\n"
      "  void load_weights(const std::string& path);\n"
      "  void save_weights(const std::string& path) const;\n\n"
      " private:\n"
      "  void init();\n"
      "  std::vector<float> memory_;\n"
      "  float* params_ = nullptr;       // {} floats\n"
      "  float* infer_arena_ = nullptr;  // {} floats\n"
      "  float* train_arena_ = nullptr;  // {} floats\n"
      "}};\n\n}}  // namespace {}\n",
      params.size(), paramFloats, inferFloats, trainFloats, opt.ns);

  // ---- NAME.cpp ----
  std::string c = fmt::format("// {}.cpp: model {}, written by nnc emit-cpp (see {}.hpp).\n", name, g.name, name);
  c += fmt::format(
      "// The kernels of infer{} as nnc's JIT compiles them, one function per\n"
      "// kernel (the comment above each names the graph nodes it computes), then\n"
      "// the entry functions calling them on the slots of one arena per program.\n"
      "#include \"{}.hpp\"\n\n"
      "#include <algorithm>\n#include <cmath>\n#include <cstdint>\n#include <cstdio>\n#include <cstring>\n"
      "#include <stdexcept>\n#include <string>\n#include <utility>\n#include <vector>\n\n"
      "#include \"nnc_runtime.h\"\n\n",
      train ? " and train_step" : "", name);
  c += fmt::format("namespace {} {{\n\nnamespace {{\n\n{}\n", opt.ns, loop::cppPrelude());
  c += fmt::format("// ---- infer: {}, arena {} floats ----\n\n", plural(static_cast<int64_t>(inferLowered.program.kernels.size()), "kernel"),
                   infer.arenaFloats());
  c += infer.kernels() + "\n";
  if (train)
    c += fmt::format("// ---- train_step: {}, arena {} floats ----\n\n{}\n",
                     plural(static_cast<int64_t>(trainLowered->program.kernels.size()), "kernel"), train->arenaFloats(),
                     train->kernels());

  // Values the constructor writes: params (unless read from a file), consts, optimizer state.
  std::string data, initCode;
  auto fill = [&](const std::string& arrayName, const std::string& where, const std::vector<float>& v,
                  const std::string& what) {
    if (uniform(v)) {
      if (!v.empty() && !(v[0] == 0.0f && !std::signbit(v[0])))
        initCode += fmt::format("  std::fill_n({}, {}, {});  // {}\n", where, v.size(), floatLiteral(v[0]), what);
      return;
    }
    data += fmt::format("// {}\nconst float {}[{}] = {{\n{}}};\n\n", what, arrayName, v.size(), floatArray(v));
    initCode += fmt::format("  std::memcpy({}, {}, sizeof {});  // {}\n", where, arrayName, arrayName, what);
  };
  if (!opt.weightsFile)
    for (const Param& p : params)
      fill("k_" + p.id, p.offset ? fmt::format("params_ + {}", p.offset) : "params_", p.values,
           fmt::format("param {} {}", p.name, typeString(p.type)));
  for (const auto& f : infer.consts())
    fill("k_infer_" + ident(f.name), fmt::format("infer_arena_ + {}", f.offset), f.values, "infer's const " + f.name);
  if (train) {
    for (const auto& f : train->consts())
      fill("k_train_" + ident(f.name), fmt::format("train_arena_ + {}", f.offset), f.values, "train_step's const " + f.name);
    for (const StateInit& s : state)
      fill("k_state_" + ident(s.name), fmt::format("train_arena_ + {}", s.offset), s.values, "optimizer state " + s.name);
  }
  if (!data.empty()) c += "// ---- values ----\n\n" + data;
  std::string names, sizes, offsets;
  for (const Param& p : params) {
    names += fmt::format("{}\"{}\"", names.empty() ? "" : ", ", p.name);
    sizes += fmt::format("{}{}", sizes.empty() ? "" : ", ", p.type.numel());
    offsets += fmt::format("{}{}", offsets.empty() ? "" : ", ", p.offset);
  }
  if (params.empty()) names = "nullptr", sizes = offsets = "0";
  c += fmt::format(
      "const char* const kParamNames[] = {{{}}};\n"
      "const int64_t kParamSizes[] = {{{}}};\n"
      "const int64_t kParamOffsets[] = {{{}}};  // in params_\n\n"
      "}}  // namespace\n{}\n",
      names, sizes, offsets, kWeightsIo);

  c += fmt::format(
      "void {0}::init() {{\n"
      "  // One block: params ({1} floats), infer's arena ({2}), train_step's ({3}),\n"
      "  // 64-byte aligned, zeroed.\n"
      "  memory_.assign({4} + 16, 0.0f);\n"
      "  float* base = memory_.data();\n"
      "  base += (16 - reinterpret_cast<std::uintptr_t>(base) / sizeof(float) % 16) % 16;\n"
      "  params_ = base;\n"
      "  infer_arena_ = base + {1};\n"
      "  train_arena_ = {5};\n",
      cls, paramFloats, inferFloats, trainFloats, memoryFloats,
      train ? fmt::format("base + {}", paramFloats + inferFloats) : "nullptr");
  c += initCode + "}\n\n";
  if (opt.weightsFile)
    c += fmt::format("{0}::{0}(const std::string& weights_path) {{\n  init();\n  load_weights(weights_path);\n}}\n\n", cls);
  else
    c += fmt::format("{0}::{0}() {{ init(); }}\n\n", cls);

  // infer
  {
    std::vector<std::string> sig;
    for (size_t i = 0; i < inputs.size(); ++i)
      sig.push_back("const float* " + (inferReads[i] ? inputs[i].id : "/*" + inputs[i].id + ": not read*/"));
    for (const Operand* t : inferLabels) sig.push_back("const float* " + t->id);
    std::string copies;
    for (const Operand& y : outs) {
      sig.push_back("float* " + y.id);
      const int s = infer.slotOf(y.value);
      copies += fmt::format("  std::memcpy({}, {}, {} * sizeof(float));\n", y.id, infer.pointer(s), y.type.numel());
    }
    c += fmt::format("void {}::infer({}) {{\n{}{}{}}}\n\n", cls, join(sig), locals(infer, "infer_arena_", true),
                     inferBody, copies);
  }
  // train_step
  if (train) {
    std::vector<std::string> sig;
    size_t r = 0;
    for (const Operand& x : inputs) sig.push_back("const float* " + (trainReads[r++] ? x.id : "/*" + x.id + ": not read*/"));
    for (const Operand& t : labels) sig.push_back("const float* " + (trainReads[r++] ? t.id : "/*" + t.id + ": not read*/"));
    sig.push_back(lrSlot >= 0 ? "float lr" : "float /*lr: not read*/");
    const std::string head = lrSlot >= 0 ? fmt::format("  {} = lr;  // train.lr\n", train->element(lrSlot)) : "";
    const std::string ret = fmt::format("  return {};  // the loss\n", train->element(lossSlot));
    c += fmt::format("float {}::train_step({}) {{\n{}{}{}{}}}\n\n", cls, join(sig), locals(*train, "train_arena_", false),
                     head, trainBody, ret);
  }
  c += fmt::format(
      "const char* {0}::param_name(int i) {{ return kParamNames[i]; }}\n"
      "int64_t {0}::param_size(int i) {{ return kParamSizes[i]; }}\n"
      "float* {0}::param(int i) {{ return params_ + kParamOffsets[i]; }}\n"
      "const float* {0}::param(int i) const {{ return params_ + kParamOffsets[i]; }}\n\n"
      "float* {0}::param(const std::string& name) {{\n"
      "  for (int i = 0; i < num_params; ++i)\n"
      "    if (name == kParamNames[i]) return param(i);\n"
      "  return nullptr;\n"
      "}}\n\n"
      "void {0}::load_weights(const std::string& path) {{\n"
      "  std::FILE* f = std::fopen(path.c_str(), \"rb\");\n"
      "  if (!f) throw std::runtime_error(\"cannot open \" + path);\n"
      "  bool ok = true;\n"
      "  for (int i = 0; i < num_params && ok; ++i)\n"
      "    ok = std::fread(param(i), sizeof(float), static_cast<size_t>(kParamSizes[i]), f) == static_cast<size_t>(kParamSizes[i]);\n"
      "  ok = ok && std::fgetc(f) == EOF;\n"
      "  std::fclose(f);\n"
      "  if (!ok) throw std::runtime_error(path + \" is not a weights file of model {1} ({2} floats)\");\n"
      "  if (!littleEndian())\n"
      "    for (int i = 0; i < num_params; ++i) swapBytes(param(i), kParamSizes[i]);\n"
      "}}\n\n"
      "void {0}::save_weights(const std::string& path) const {{\n"
      "  std::FILE* f = std::fopen(path.c_str(), \"wb\");\n"
      "  if (!f) throw std::runtime_error(\"cannot create \" + path);\n"
      "  bool ok = true;\n"
      "  for (int i = 0; i < num_params && ok; ++i) {{\n"
      "    std::vector<float> v(param(i), param(i) + kParamSizes[i]);\n"
      "    if (!littleEndian()) swapBytes(v.data(), kParamSizes[i]);\n"
      "    ok = std::fwrite(v.data(), sizeof(float), v.size(), f) == v.size();\n"
      "  }}\n"
      "  if (std::fclose(f) != 0 || !ok) throw std::runtime_error(\"cannot write \" + path);\n"
      "}}\n\n"
      "}}  // namespace {3}\n",
      cls, g.name, fileFloats, opt.ns);

  std::vector<EmittedFile> files = {{name + ".hpp", h}, {name + ".cpp", c}};
  if (opt.weightsFile) {
    std::string bytes;
    bytes.reserve(static_cast<size_t>(fileFloats) * 4);
    for (const Param& p : params)
      for (float v : p.values) {
        uint32_t u;
        std::memcpy(&u, &v, 4);
        for (int b = 0; b < 4; ++b) bytes += static_cast<char>((u >> (8 * b)) & 0xff);
      }
    files.push_back({name + ".weights", std::move(bytes)});
  }
  NNC_TRY(std::vector<EmittedFile> runtime, emitRuntime());
  for (EmittedFile& f : runtime) files.push_back(std::move(f));
  EmittedApi api;
  api.model = g.name;
  api.file = name;
  api.cls = cls;
  api.ns = opt.ns;
  api.train = opt.train;
  api.weightsFile = opt.weightsFile;
  auto apiOperand = [&](const Operand& o) {
    const Node& n = g.node(o.value);
    return EmittedApi::Operand{o.name, o.id, o.type,
                               n.attrs.has("example") ? n.attrs.floats("example") : std::vector<double>{},
                               n.op->is(OpId::Softmax)};
  };
  for (const Operand& x : inputs) api.inputs.push_back(apiOperand(x));
  for (const Operand* t : inferLabels) api.inferLabels.push_back(apiOperand(*t));
  for (const Operand& y : outs) api.outputs.push_back(apiOperand(y));
  for (const Operand& t : labels) api.labels.push_back(apiOperand(t));
  for (EmittedFile& f : emitExample(api)) files.push_back(std::move(f));
  return files;
}

}  // namespace nnc
