// Compile-time values of the .nn language: what a name can be bound to while
// a model is elaborated. Only tensors become graph values.
#pragma once
#include <string>
#include <vector>

#include "compiler/graph/graph.h"

namespace nnc {

// zeros(), constant(v), normal(std), uniform(low, high), xavier(), he(), load(file, key), or a literal ("value").
struct InitSpec {
  std::string kind = "zeros";
  std::vector<double> args;
  std::string file, key;  // load(file, key): the array `key` (default: the param's name) of an .npz
};

struct CtValue {
  enum class Kind { None, Int, Float, String, Tensor, List, Init };
  Kind kind = Kind::None;
  int64_t i = 0;
  double f = 0;
  std::string s;
  ValueId tensor = kNoValue;
  std::vector<CtValue> list;
  InitSpec init;
  SourceLoc loc;

  static CtValue intValue(int64_t v, SourceLoc l) { CtValue c; c.kind = Kind::Int; c.i = v; c.loc = l; return c; }
  static CtValue floatValue(double v, SourceLoc l) { CtValue c; c.kind = Kind::Float; c.f = v; c.loc = l; return c; }
  static CtValue tensorValue(ValueId v, SourceLoc l) { CtValue c; c.kind = Kind::Tensor; c.tensor = v; c.loc = l; return c; }
};

}  // namespace nnc
