// emit-cpp's view of one lowered program (infer or train_step): where each
// slot lives for the entry function (the arena, the params block or an
// argument), and the program's text: its kernels and its entry's body.
#pragma once
#include <string>
#include <vector>

#include <fmt/format.h>

#include "compiler/graph/graph.h"
#include "compiler/lower/compile_program.h"
#include "compiler/lower/lower.h"

namespace nnc::emit {

// One lowered program (infer or train_step), as CompiledProgram::create builds it.
using Lowered = LoweredProgram;

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
inline std::string locals(const ProgramPrinter& p, const std::string& arena, bool paramsConst) {
  std::string out;
  if (p.usesArena()) out += fmt::format("  float* const a = {};\n", arena);
  if (p.usesParams()) out += fmt::format("  {}float* const p = params_;\n", paramsConst ? "const " : "");
  return out;
}

}  // namespace nnc::emit
