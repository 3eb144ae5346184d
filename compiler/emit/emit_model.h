// What emitCpp (compiler/emit/emit_cpp.cpp) gathers of a model before it
// prints NAME.hpp (emit_header.cpp) and NAME.cpp (emit_source.cpp): the
// params block, the entry functions' operands, and where each program finds
// them; and the small text helpers the three share.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "compiler/emit/emit_cpp.h"
#include "compiler/emit/program_printer.h"

namespace nnc::emit {

// ---- C++ text ----

// A C++ identifier for a graph name ("fc1.W" -> fc1_W).
std::string ident(const std::string& name);
std::string join(const std::vector<std::string>& v);
// A float literal that reads back as the same float.
std::string floatLiteral(float v);
// Float literals, comma-separated, in lines of at most 110 characters.
std::string floatArray(const std::vector<float>& v);
std::vector<float> toFloats(const std::vector<double>& d);
// Whether every value has the same bits as the first.
bool uniform(const std::vector<float>& v);
// Whether a kernel of `p` calls runtime function `callee`.
bool callsRuntime(const Program& p, const std::string& callee);
std::string plural(int64_t n, const char* what);

// ---- the model ----

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

// An optimizer state value's initial contents, written by the constructor.
struct StateInit {
  std::string name;
  int64_t offset;
  std::vector<float> values;
};

// Everything both files are printed from. `infer` and `train` (null without
// --train) place their slots: params in the params block, operands where
// the caller passes them.
struct EmitModel {
  const Graph& g;
  const EmitCppOptions& opt;
  std::string name, cls;  // NAME of the files; the class
  // Params: one block, 16-float aligned each; packed in a weights file.
  std::vector<Param> params;
  int64_t paramFloats = 0, fileFloats = 0;
  // Operands of the entry functions; labels infer reads (pointers into labels).
  std::vector<Operand> inputs, labels, outs;
  std::vector<const Operand*> inferLabels;
  std::vector<bool> inferReads, trainReads;  // per input (then label): read by the program
  ProgramPrinter* infer = nullptr;
  ProgramPrinter* train = nullptr;
  std::string inferBody, trainBody;  // the entry functions' launches
  std::string optimizer;             // the train block's optimizer kind
  std::vector<StateInit> state;
  int lossSlot = -1, lrSlot = -1;
  int64_t inferFloats = 0, trainFloats = 0, memoryFloats = 0;
};

// NAME.hpp: the class declaration and its documentation.
std::string emitHeader(const EmitModel& m);
// NAME.cpp: kernels, constant data, constructor, entry functions, param access.
std::string emitSource(const EmitModel& m);

}  // namespace nnc::emit
