// emit-cpp's NAME.cpp: the kernels of both programs, the values the
// constructor writes (params, consts, optimizer state), then the entry
// functions calling the kernels on the arena's slots, and param access.
#include <cmath>

#include <fmt/format.h>

#include "compiler/emit/emit_model.h"

namespace nnc::emit {

namespace {

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

// The file's comment, its includes, and the kernels' namespace prelude.
std::string sourceIntro(const EmitModel& m) {
  const std::string& name = m.name;
  const bool train = m.train != nullptr;
  std::string c = fmt::format("// {}.cpp: model {}, written by nnc emit-cpp (see {}.hpp).\n", name, m.g.name, name);
  c += fmt::format(
      "// The kernels of infer{} as nnc's JIT compiles them, one function per\n"
      "// kernel (the comment above each names the graph nodes it computes), then\n"
      "// the entry functions calling them on the slots of one arena per program.\n"
      "#include \"{}.hpp\"\n\n"
      "#include <algorithm>\n#include <cmath>\n#include <cstdint>\n#include <cstdio>\n#include <cstring>\n"
      "#include <stdexcept>\n#include <string>\n#include <utility>\n#include <vector>\n\n"
      "#include \"nnc_runtime.h\"\n\n",
      train ? " and train_step" : "", name);
  c += fmt::format("namespace {} {{\n\nnamespace {{\n\n{}\n", m.opt.ns, loop::cppPrelude());
  return c;
}

// Each program's kernels, one function each.
std::string kernelSections(const EmitModel& m) {
  const ProgramPrinter& infer = *m.infer;
  std::string c;
  c += fmt::format("// ---- infer: {}, arena {} floats ----\n\n", plural(static_cast<int64_t>(infer.program().kernels.size()), "kernel"),
                   infer.arenaFloats());
  c += infer.kernels() + "\n";
  if (m.train)
    c += fmt::format("// ---- train_step: {}, arena {} floats ----\n\n{}\n",
                     plural(static_cast<int64_t>(m.train->program().kernels.size()), "kernel"), m.train->arenaFloats(),
                     m.train->kernels());
  return c;
}

// Values the constructor writes: params (unless read from a file), consts,
// optimizer state. Uniform values are filled, others copied from arrays.
struct InitValues {
  std::string data, initCode;  // the arrays; the constructor's statements
};

InitValues initValues(const EmitModel& m) {
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
  if (!m.opt.weightsFile)
    for (const Param& p : m.params)
      fill("k_" + p.id, p.offset ? fmt::format("params_ + {}", p.offset) : "params_", p.values,
           fmt::format("param {} {}", p.name, typeString(p.type)));
  for (const auto& f : m.infer->consts())
    fill("k_infer_" + ident(f.name), fmt::format("infer_arena_ + {}", f.offset), f.values, "infer's const " + f.name);
  if (m.train) {
    for (const auto& f : m.train->consts())
      fill("k_train_" + ident(f.name), fmt::format("train_arena_ + {}", f.offset), f.values, "train_step's const " + f.name);
    for (const StateInit& s : m.state)
      fill("k_state_" + ident(s.name), fmt::format("train_arena_ + {}", s.offset), s.values, "optimizer state " + s.name);
  }
  return {std::move(data), std::move(initCode)};
}

// The params' names, sizes and offsets, closing the file's private namespace.
std::string paramTables(const EmitModel& m) {
  std::vector<std::string> names, sizes, offsets;
  for (const Param& p : m.params) {
    names.push_back(fmt::format("\"{}\"", p.name));
    sizes.push_back(fmt::format("{}", p.type.numel()));
    offsets.push_back(fmt::format("{}", p.offset));
  }
  if (m.params.empty()) names = {"nullptr"}, sizes = offsets = {"0"};
  return fmt::format(
      "const char* const kParamNames[] = {{{}}};\n"
      "const int64_t kParamSizes[] = {{{}}};\n"
      "const int64_t kParamOffsets[] = {{{}}};  // in params_\n\n"
      "}}  // namespace\n{}\n",
      join(names), join(sizes), join(offsets), kWeightsIo);
}

// init() lays out the one memory block and writes the initial values; the
// constructor calls it (and reads the weights file).
std::string initAndConstructor(const EmitModel& m, const std::string& initCode) {
  const std::string& cls = m.cls;
  const int64_t paramFloats = m.paramFloats, inferFloats = m.inferFloats;
  std::string c = fmt::format(
      "void {0}::init() {{\n"
      "  // One block: params ({1} floats), infer's arena ({2}), train_step's ({3}),\n"
      "  // 64-byte aligned, zeroed.\n"
      "  memory_.assign({4} + 16, 0.0f);\n"
      "  float* base = memory_.data();\n"
      "  base += (16 - reinterpret_cast<std::uintptr_t>(base) / sizeof(float) % 16) % 16;\n"
      "  params_ = base;\n"
      "  infer_arena_ = base + {1};\n"
      "  train_arena_ = {5};\n",
      cls, paramFloats, inferFloats, m.trainFloats, m.memoryFloats,
      m.train ? fmt::format("base + {}", paramFloats + inferFloats) : "nullptr");
  c += initCode + "}\n\n";
  if (m.opt.weightsFile)
    c += fmt::format("{0}::{0}(const std::string& weights_path) {{\n  init();\n  load_weights(weights_path);\n}}\n\n", cls);
  else
    c += fmt::format("{0}::{0}() {{ init(); }}\n\n", cls);
  return c;
}

// infer: the launches, then the outputs copied out of the arena.
std::string inferFunction(const EmitModel& m) {
  ProgramPrinter& infer = *m.infer;
  std::vector<std::string> sig;
  for (size_t i = 0; i < m.inputs.size(); ++i)
    sig.push_back("const float* " + (m.inferReads[i] ? m.inputs[i].id : "/*" + m.inputs[i].id + ": not read*/"));
  for (const Operand* t : m.inferLabels) sig.push_back("const float* " + t->id);
  std::string copies;
  for (const Operand& y : m.outs) {
    sig.push_back("float* " + y.id);
    const int s = infer.slotOf(y.value);
    copies += fmt::format("  std::memcpy({}, {}, {} * sizeof(float));\n", y.id, infer.pointer(s), y.type.numel());
  }
  return fmt::format("void {}::infer({}) {{\n{}{}{}}}\n\n", m.cls, join(sig), locals(infer, "infer_arena_", true),
                     m.inferBody, copies);
}

// train_step: lr into its slot, the launches and commits, the loss.
std::string trainStepFunction(const EmitModel& m) {
  ProgramPrinter& train = *m.train;
  std::vector<std::string> sig;
  size_t r = 0;
  for (const Operand& x : m.inputs) sig.push_back("const float* " + (m.trainReads[r++] ? x.id : "/*" + x.id + ": not read*/"));
  for (const Operand& t : m.labels) sig.push_back("const float* " + (m.trainReads[r++] ? t.id : "/*" + t.id + ": not read*/"));
  sig.push_back(m.lrSlot >= 0 ? "float lr" : "float /*lr: not read*/");
  const std::string head = m.lrSlot >= 0 ? fmt::format("  {} = lr;  // train.lr\n", train.element(m.lrSlot)) : "";
  const std::string ret = fmt::format("  return {};  // the loss\n", train.element(m.lossSlot));
  return fmt::format("float {}::train_step({}) {{\n{}{}{}{}}}\n\n", m.cls, join(sig), locals(train, "train_arena_", false),
                     head, m.trainBody, ret);
}

// Param access by index and name, and the weights file's reader and writer.
std::string paramFunctions(const EmitModel& m) {
  return fmt::format(
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
      m.cls, m.g.name, m.fileFloats, m.opt.ns);
}

}  // namespace

std::string emitSource(const EmitModel& m) {
  std::string c = sourceIntro(m);
  c += kernelSections(m);
  const InitValues init = initValues(m);
  if (!init.data.empty()) c += "// ---- values ----\n\n" + init.data;
  c += paramTables(m);
  c += initAndConstructor(m, init.initCode);
  c += inferFunction(m);
  if (m.train) c += trainStepFunction(m);
  c += paramFunctions(m);
  return c;
}

}  // namespace nnc::emit
