// nnc emit-cpp: NAME.hpp and NAME.cpp, printed from the programs the JIT
// compiles (compiler/jit/compiled.cpp runs the same three steps: optimize,
// lower, plan memory). The kernels are loop::printCpp's functions; the entry
// functions call them on the slots of the arena as the JIT's entry does.
// One difference in where values live: sources are not copied into the
// arena. Params live in one block of their own, which both programs read
// (so training needs no copy to inference), and inputs and labels are read
// where the caller keeps them; their arena slots stay unused.
//
// This file lowers the programs and gathers what the files are printed from
// (EmitModel, emit_model.h); emit_header.cpp prints NAME.hpp, emit_source.cpp
// NAME.cpp, emit_example.cpp main_example.cpp, emit_runtime.cpp the runtime.
#include "compiler/emit/emit_cpp.h"

#include <cstring>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "compiler/autodiff/train_step.h"
#include "compiler/emit/emit_model.h"
#include "compiler/lower/compile_program.h"

namespace nnc {

using namespace emit;

namespace {

Expected<Lowered> lowerProgram(const Graph& g, const std::vector<ValueId>& targets, const LowerOptions& lower,
                               const PassOptions& passes) {
  return compileProgram(g, targets, lower, passes);
}

// emit-cpp writes files of these names for itself.
Expected<std::string> fileNameOf(const Graph& g) {
  const std::string name = ident(g.name.empty() ? "model" : g.name);
  if (name == "nnc_runtime" || name == "main_example")
    return error("model '{}': emit-cpp writes files of that name for its own use; rename the model", g.name);
  return name;
}

// The programs, as the JIT compiles them: infer, and with --train the train step.
struct Programs {
  Lowered infer;
  std::optional<TrainStep> step;
  std::optional<Lowered> train;
};

Expected<Programs> lowerPrograms(const Elaborated& model, const EmitCppOptions& opt) {
  const Graph& g = model.graph;
  std::vector<ValueId> outputs;
  for (const auto& [_, v] : g.outputs) outputs.push_back(v);
  if (outputs.empty()) return error("model '{}' has no outputs: nothing for infer to compute", g.name);
  NNC_TRY(Lowered inferLowered, lowerProgram(g, outputs, LowerOptions{}, opt.passes));
  std::optional<TrainStep> step;
  std::optional<Lowered> trainLowered;
  if (opt.train) {
    if (g.loss == kNoValue) return error("model '{}' has no loss: --train needs one", g.name);
    NNC_TRY(step, buildTrainStep(g, model.train));
    const Graph& sg = step->grads.graph;
    NNC_TRY(trainLowered, lowerProgram(sg, {sg.loss}, step->lowering(), opt.passes));
  }
  return Programs{std::move(inferLowered), std::move(step), std::move(trainLowered)};
}

// Params: one block, 16-float aligned each; packed in a weights file.
Status placeParams(EmitModel& m) {
  const Graph& g = m.g;
  std::set<std::string> paramIds;
  for (ValueId v : g.params) {
    const Node& n = g.node(v);
    auto it = m.opt.params.find(n.name);
    if (it == m.opt.params.end()) return error("no value for param '{}' of model '{}'", n.name, g.name);
    if (it->second.numel() != n.type.numel())
      return error("param '{}' of model '{}' is {}, but its value has {} elements", n.name, g.name, typeString(n.type),
                   it->second.numel());
    std::string id = ident(n.name);  // names the param's array: unique ("a.b" and "a_b" are both a_b)
    while (!paramIds.insert(id).second) id += "_";
    m.params.push_back({n.name, id, n.type, m.paramFloats, m.fileFloats, toFloats(it->second.data)});
    m.paramFloats += alignedFloats(n.type.numel());
    m.fileFloats += n.type.numel();
  }
  return ok();
}

// The entry functions' operands, each named so that it clashes with no
// other name the functions use.
void entryOperands(EmitModel& m) {
  const Graph& g = m.g;
  std::set<std::string> taken = {"a", "p", "lr", "i", "f", "ok", "v", "name", "path", "weights_path", m.cls};
  auto operand = [&](ValueId v, const char* role) {
    const Node& n = g.node(v);
    std::string id = ident(n.name);
    while (taken.count(id)) id += "_";
    taken.insert(id);
    return Operand{n.name, id, role, n.type, v};
  };
  for (ValueId v : g.inputs) m.inputs.push_back(operand(v, "input"));
  for (ValueId v : g.labels) m.labels.push_back(operand(v, "label"));
  for (const auto& [_, v] : g.outputs) m.outs.push_back(operand(v, "output"));
}

// Where infer finds its params and operands, and its launches.
void placeInfer(EmitModel& m) {
  ProgramPrinter& infer = *m.infer;
  for (const Param& p : m.params) infer.placeParam(m.g.findByName(p.name), p.offset);
  for (const Operand& x : m.inputs) m.inferReads.push_back(infer.placeArg(x.value, x.id));
  // Labels only where an output depends on one (they are then infer's operands too).
  for (const Operand& t : m.labels)
    if (infer.placeArg(t.value, t.id)) m.inferLabels.push_back(&t);
  m.inferBody = infer.launches();
}

// Where train_step finds its params and operands, the optimizer state's
// initial values (given, or from their initializers), and its launches.
Status placeTrain(EmitModel& m, const TrainStep& step) {
  const Graph& g = m.g;
  const Graph& sg = step.grads.graph;
  ProgramPrinter& train = *m.train;
  for (const Param& p : m.params) train.placeParam(sg.findByName(p.name), p.offset);
  for (const Operand& x : m.inputs) m.trainReads.push_back(train.placeArg(sg.findByName(x.name), x.id));
  for (const Operand& t : m.labels) m.trainReads.push_back(train.placeArg(sg.findByName(t.name), t.id));
  NNC_TRY(TensorMap init, initParams(sg, 42));
  for (ValueId v : sg.params) {
    const Node& n = sg.node(v);
    if (g.findByName(n.name) != kNoValue) continue;  // a model param
    const int s = train.slotOf(v);
    if (s < 0) continue;
    auto given = m.opt.state.find(n.name);
    const Tensor& t = given != m.opt.state.end() && given->second.numel() == n.type.numel() ? given->second : init.at(n.name);
    m.state.push_back({n.name, train.slotOffset(s), toFloats(t.data)});
  }
  m.lossSlot = train.slotOf(sg.loss);
  m.lrSlot = train.slotOf(step.lr);
  m.optimizer = step.optimizer.kind;
  m.trainBody = train.launches();
  return ok();
}

// NAME.weights: every param's floats, raw little-endian, one after the other.
std::string weightsFileBytes(const EmitModel& m) {
  std::string bytes;
  bytes.reserve(static_cast<size_t>(m.fileFloats) * 4);
  for (const Param& p : m.params)
    for (float v : p.values) {
      uint32_t u;
      std::memcpy(&u, &v, 4);
      for (int b = 0; b < 4; ++b) bytes += static_cast<char>((u >> (8 * b)) & 0xff);
    }
  return bytes;
}

// What main_example.cpp and CMakeLists.txt need of the class.
EmittedApi apiOf(const EmitModel& m) {
  const Graph& g = m.g;
  EmittedApi api;
  api.model = g.name;
  api.file = m.name;
  api.cls = m.cls;
  api.ns = m.opt.ns;
  api.train = m.opt.train;
  api.weightsFile = m.opt.weightsFile;
  auto apiOperand = [&](const Operand& o) {
    const Node& n = g.node(o.value);
    return EmittedApi::Operand{o.name, o.id, o.type,
                               n.attrs.has("example") ? n.attrs.floats("example") : std::vector<double>{},
                               n.op->is(OpId::Softmax)};
  };
  for (const Operand& x : m.inputs) api.inputs.push_back(apiOperand(x));
  for (const Operand* t : m.inferLabels) api.inferLabels.push_back(apiOperand(*t));
  for (const Operand& y : m.outs) api.outputs.push_back(apiOperand(y));
  for (const Operand& t : m.labels) api.labels.push_back(apiOperand(t));
  return api;
}

}  // namespace

// Lower both programs, lay out the params and operands, place them in each
// program, then print the files.
Expected<std::vector<EmittedFile>> emitCpp(const Elaborated& model, const EmitCppOptions& opt) {
  const Graph& g = model.graph;
  NNC_TRY(const std::string name, fileNameOf(g));
  NNC_TRY(const Programs programs, lowerPrograms(model, opt));
  EmitModel m{g, opt, name, name};
  NNC_CHECK(placeParams(m));
  entryOperands(m);
  ProgramPrinter infer(programs.infer, "infer_kernels");
  m.infer = &infer;
  placeInfer(m);
  std::optional<ProgramPrinter> train;
  if (programs.step) {
    train.emplace(*programs.train, "train_kernels");
    m.train = &*train;
    NNC_CHECK(placeTrain(m, *programs.step));
  }
  m.inferFloats = alignedFloats(infer.arenaFloats());
  m.trainFloats = train ? alignedFloats(train->arenaFloats()) : 0;
  m.memoryFloats = m.paramFloats + m.inferFloats + m.trainFloats;

  std::vector<EmittedFile> files = {{name + ".hpp", emitHeader(m)}, {name + ".cpp", emitSource(m)}};
  if (opt.weightsFile) files.push_back({name + ".weights", weightsFileBytes(m)});
  NNC_TRY(std::vector<EmittedFile> runtime, emitRuntime());
  for (EmittedFile& f : runtime) files.push_back(std::move(f));
  for (EmittedFile& f : emitExample(apiOf(m))) files.push_back(std::move(f));
  return files;
}

}  // namespace nnc
