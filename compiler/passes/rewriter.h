// What every graph pass is built on. A pass never edits a graph in place:
// it walks the old graph in id order (a topological order) and builds a new
// one, copying, replacing or dropping each node, and records where each old
// value went. Ids stay dense and topological without any renumbering step.
#pragma once
#include <string_view>
#include <vector>

#include "compiler/passes/pipeline.h"

namespace nnc::passes {

class Rewriter {
 public:
  explicit Rewriter(const Graph& in);

  const Graph& in;

  // The new id of old value v (kNoValue if it was dropped).
  ValueId operator[](ValueId v) const { return map_[static_cast<size_t>(v)]; }
  // The node unchanged, operands mapped.
  ValueId copy(ValueId v);
  // Old value v is new value `to` from now on.
  void alias(ValueId v, ValueId to) { map_[static_cast<size_t>(v)] = to; }
  // A new node (operands are new ids) standing for old value v: it takes
  // v's name, location and layer.
  Expected<ValueId> replace(ValueId v, std::string_view op, std::vector<ValueId> inputs, Attrs attrs);
  // A helper node for old value v (no name).
  Expected<ValueId> add(ValueId v, std::string_view op, std::vector<ValueId> inputs, Attrs attrs);

  Graph& out() { return out_; }
  Optimized finish();

 private:
  Graph out_;
  std::vector<ValueId> map_;
};

// Per value of g: the nodes using it, in order (a node using a value twice
// appears twice).
std::vector<std::vector<ValueId>> usersOf(const Graph& g);

// The value is a const whose every element equals x.
bool isConstFill(const Graph& g, ValueId v, double x);

}  // namespace nnc::passes
