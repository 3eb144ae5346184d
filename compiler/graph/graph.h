// The graph IR: a static, shape-checked dataflow graph. Nodes live in a
// vector and refer to their operands by id; each node produces one value.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "base/tensor.h"
#include "compiler/graph/attrs.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

using ValueId = int32_t;
inline constexpr ValueId kNoValue = -1;

struct Node {
  const OpDef* op = nullptr;
  std::vector<ValueId> inputs;
  Attrs attrs;
  TensorType type;
  std::string name;  // the DSL name bound to this value, if any
  SourceLoc loc;     // where the DSL created it
  std::string layer; // "dense fc1" for the nodes a layer call created (nnc check groups them)
  // A param's initial values when they come from a file (init "load"): read
  // by the front end, shared by every copy of the graph.
  std::shared_ptr<const std::vector<double>> initial;
};

// Attributes of source nodes:
//   param: init (string: zeros|constant|normal|uniform|xavier|he|value),
//          args (floats: the initializer's arguments, or the literal's values),
//          trainable (int: 0 for batchnorm running statistics and buffers),
//          file, key (strings, init "load": the .npz and the array in it)
//   const: value (floats, one per element or one to broadcast)
struct Graph {
  std::string name;
  std::vector<Node> nodes;
  std::vector<ValueId> inputs, labels, params;  // in declaration order
  std::vector<std::pair<std::string, ValueId>> outputs;
  ValueId loss = kNoValue;

  const Node& node(ValueId id) const { return nodes.at(static_cast<size_t>(id)); }
  Node& node(ValueId id) { return nodes.at(static_cast<size_t>(id)); }
  const TensorType& type(ValueId id) const { return node(id).type; }
  size_t size() const { return nodes.size(); }

  // Adds a compute node after checking operands and attributes against the
  // registry and running the op's shape rule. Errors carry `loc`.
  Expected<ValueId> add(std::string_view op, std::vector<ValueId> inputs, Attrs attrs = {},
                        SourceLoc loc = {});
  // Adds a source node (input, label, param, const) of the given type.
  Expected<ValueId> addSource(std::string_view op, std::string name, TensorType type, Attrs attrs = {},
                              SourceLoc loc = {});

  ValueId findByName(std::string_view name) const;  // kNoValue if none
  int64_t paramCount(bool trainableOnly) const;
};

// `nnc graph`: one line per node, e.g.
//   %5 h1 = relu(%4) : f32[100, 40]
std::string printGraph(const Graph& g);
// Nodes [first, last) only, under the heading `title`, without loss and outputs.
std::string printGraphRange(const Graph& g, size_t first, size_t last, const std::string& title);
// `nnc graph --dot`: Graphviz.
std::string printDot(const Graph& g);

}  // namespace nnc
