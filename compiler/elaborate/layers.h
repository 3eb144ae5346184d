// Layer sugar: calls that create their own named params (dense, conv2d and
// conv_transpose2d without explicit weights, batchnorm) or expand into a few
// registry ops (dropout = x * dropout_mask(x)).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "compiler/elaborate/ct_value.h"

namespace nnc {

// What a layer needs from the elaborator.
class LayerContext {
 public:
  virtual ~LayerContext() = default;
  virtual Graph& graph() = 0;
  virtual Expected<ValueId> newParam(const std::string& name, TensorType type, const InitSpec& init, bool trainable,
                                     SourceLoc loc) = 0;
  virtual std::string freshPrefix(const std::string& kind) = 0;  // "dense1", "dense2", ...
  virtual Expected<ValueId> constant(double v, SourceLoc loc) = 0;
};

struct LayerCall {
  std::string name;
  SourceLoc loc;
  std::vector<CtValue> positional;
  std::vector<std::pair<std::string, CtValue>> named;
};

struct LayerResult {
  bool handled = false;  // false: not the layer form (conv2d(x, W)); call the op
  ValueId value = kNoValue;
};

bool isLayer(std::string_view name);
Expected<LayerResult> expandLayer(LayerContext& ctx, const LayerCall& call);

}  // namespace nnc
