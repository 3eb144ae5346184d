// The fused convolutions' "algo" attribute ("auto", "gemm", "direct",
// "winograd", "depthwise") and what the runtime needs to choose or run an
// algorithm for one of them: the one place the compiler turns a fused
// convolution node into the runtime's ConvGeom, ConvDir and ConvAlgo
// (runtime/conv_geom.h), so the conv-algo pass and the lowering agree.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/graph/graph.h"
#include "runtime/conv_geom.h"

namespace nnc {

// "auto, gemm, direct, winograd, depthwise": every name convAlgoName knows.
std::string convAlgoNames();
// The algorithm `name` names, or an error saying what `what` (an op, an
// option) got and listing the valid names.
Expected<ConvAlgo> parseConvAlgo(std::string_view what, const std::string& name);
// A fused convolution's "algo" attribute (its shape rule checked the name).
ConvAlgo convAlgoAttr(const Attrs& a);

// "forward", "input grad", "weight grad".
const char* convDirName(ConvDir d);

// The runtime's view of one fused convolution.
struct FusedConv {
  ConvGeom geom;  // of the forward convolution, whichever direction is computed
  ConvDir dir = ConvDir::Forward;
  int act = 0;       // forward only: the fused activation (an Activation)
  int64_t pool = 0;  // forward only: the fused max-pooling's window, 0 for none
};

// For conv2d_fused, conv2d_pool_fused, conv2d_grad_weight_fused and
// conv_transpose2d_fused, from their operand types, result type and
// (complete) attributes; nullopt for every other op.
std::optional<FusedConv> fusedConvOf(const OpDef& op, const std::vector<TensorType>& in, const TensorType& out,
                                     const Attrs& a);
std::optional<FusedConv> fusedConvOf(const Graph& g, ValueId v);

}  // namespace nnc
