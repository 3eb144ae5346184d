// emit-cpp's NAME.hpp: the model's class, documented for a reader who has
// only this file: its operands, the weights file's layout, and what infer
// and train_step compute.
#include <algorithm>

#include <fmt/format.h>

#include "compiler/emit/emit_model.h"

namespace nnc::emit {

namespace {

// What the file is, how to build it, and the includes.
std::string headerIntro(const EmitModel& m) {
  const std::string& name = m.name;
  const Graph& g = m.g;
  const EmitCppOptions& opt = m.opt;
  const bool train = m.train != nullptr;
  const int64_t memoryFloats = m.memoryFloats;
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
  return h;
}

// The operands' and the params' tables (the params' is a weights file's layout).
std::string operandAndParamDocs(const EmitModel& m) {
  const Graph& g = m.g;
  const bool train = m.train != nullptr;
  const std::vector<Param>& params = m.params;
  std::string h;
  std::string opDoc;
  auto docLine = [&](const Operand& o, const char* role) {
    opDoc += fmt::format("//   {:<10} {:<7} {}  ({} floats)\n", o.id, role, typeString(o.type), o.type.numel());
  };
  for (const Operand& x : m.inputs) docLine(x, "input");
  if (train || !m.inferLabels.empty())
    for (const Operand& t : m.labels) docLine(t, "label");
  for (const Operand& y : m.outs) docLine(y, "output");
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
      m.fileFloats, paramDoc);
  return h;
}

// The operands' sizes, the constructor (from a weights file or the emitted
// values) and the move-only copy rules.
std::string sizesAndConstructors(const EmitModel& m) {
  const std::string& name = m.name;
  const std::string& cls = m.cls;
  const EmitCppOptions& opt = m.opt;
  const bool train = m.train != nullptr;
  std::string h;
  for (const Operand& x : m.inputs) h += fmt::format("  static constexpr int64_t {}_size = {};\n", x.id, x.type.numel());
  if (train || !m.inferLabels.empty())
    for (const Operand& t : m.labels) h += fmt::format("  static constexpr int64_t {}_size = {};\n", t.id, t.type.numel());
  for (const Operand& y : m.outs) h += fmt::format("  static constexpr int64_t {}_size = {};\n", y.id, y.type.numel());
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
  return h;
}

// infer's and train_step's declarations, with what they compute.
std::string entryDeclarations(const EmitModel& m) {
  const Graph& g = m.g;
  const bool train = m.train != nullptr;
  std::string h;
  std::vector<std::string> inferSig;
  for (const Operand& x : m.inputs) inferSig.push_back("const float* " + x.id);
  for (const Operand* t : m.inferLabels) inferSig.push_back("const float* " + t->id);
  for (const Operand& y : m.outs) inferSig.push_back("float* " + y.id);
  const bool samples = std::any_of(g.nodes.begin(), g.nodes.end(), [](const Node& n) { return n.op->is(OpId::Normal); });
  h += fmt::format("  // Inference (dropout off, {}).\n  void infer({});\n",
                   samples ? "normal samples at their mean, batchnorm on its\n  // running statistics"
                           : "batchnorm on its running statistics",
                   join(inferSig));
  if (train) {
    std::vector<std::string> trainSig;
    for (const Operand& x : m.inputs) trainSig.push_back("const float* " + x.id);
    for (const Operand& t : m.labels) trainSig.push_back("const float* " + t.id);
    trainSig.push_back("float lr");
    const bool masks = callsRuntime(m.train->program(), "nnc_dropout_mask");
    const bool draws = callsRuntime(m.train->program(), "nnc_normal");
    const char* drawn = masks && draws ? "Dropout masks and normal samples" : masks ? "Dropout masks" : "Normal samples";
    h += fmt::format(
        "\n  // One training step on a batch: forward, backward and the {} update of\n"
        "  // the params held here at learning rate lr (a schedule is the caller's).\n"
        "  // Returns the loss before the update.{}\n  float train_step({});\n",
        m.optimizer,
        masks || draws ? fmt::format("\n  // {} come from one process-wide generator, seeded\n"
                                     "  // with 0 at start: nnc::setRandomSeed (nnc_runtime.h) reseeds it.",
                                     drawn)
                       : "",
        join(trainSig));
  }
  return h;
}

// Param access, weights files, and the private members.
std::string paramAccessAndMembers(const EmitModel& m) {
  return fmt::format(
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
      m.params.size(), m.paramFloats, m.inferFloats, m.trainFloats, m.opt.ns);
}

}  // namespace

std::string emitHeader(const EmitModel& m) {
  std::string h = headerIntro(m);
  h += fmt::format("namespace {} {{\n\n", m.opt.ns);
  h += operandAndParamDocs(m);
  h += fmt::format("class {} {{\n public:\n", m.cls);
  h += sizesAndConstructors(m);
  h += entryDeclarations(m);
  h += paramAccessAndMembers(m);
  return h;
}

}  // namespace nnc::emit
