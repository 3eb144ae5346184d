// The op registry: the single source of truth about every op. An entry gives
// the op's operands, attributes, shape rule and reference evaluation (later:
// gradient rule and lowering). Adding an op means adding one entry to one of
// compiler/ops/*.cpp.
#pragma once
#include <optional>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"
#include "base/tensor.h"
#include "compiler/graph/attrs.h"
#include "compiler/lower/loop_ir.h"
#include "compiler/ops/op_id.h"
#include "runtime/rng.h"

namespace nnc {

struct AttrSpec {
  std::string_view name;
  AttrKind kind;
  std::optional<Attr> defaultValue;  // none: the attribute is required
};

struct EvalEnv {
  bool training = false;  // dropout, normal and batchnorm behave differently
  Rng* rng = nullptr;     // for random ops (dropout masks, normal samples)
};

struct EvalArgs {
  std::vector<const Tensor*> in;
  const Attrs& attrs;
  Tensor& out;  // allocated with the node's type, zero-filled
  const EvalEnv& env;
};

// Shape rule: from operand types and (complete, checked) attributes to the
// result type, or a diagnostic (without location: the caller adds it) that
// names the op and every shape involved.
using ShapeFn = Expected<TensorType> (*)(const std::vector<TensorType>& in, const Attrs& attrs);
// Reference evaluation in double precision with plain loops. May fail on bad
// data (a label out of range), never on shapes: those were checked.
using EvalFn = Status (*)(const EvalArgs& args);

struct GradCtx;  // compiler/autodiff/grad_ctx.h
// Gradient rule: adds the nodes computing d loss / d operand for each operand
// from d loss / d output (ctx.dy); kNoValue (-1) for an operand that gets none.
using GradFn = Expected<std::vector<int32_t>> (*)(GradCtx& ctx);

// For ops that are not smooth everywhere (relu at 0, a max-pool tie): which
// branch each output takes, e.g. the sign of relu's input or the arg-max of
// each pooling window. Where two evaluations give different branch patterns,
// a finite difference between them crosses a kink (see gradcheck).
using BranchFn = void (*)(const std::vector<const Tensor*>& in, const Attrs& attrs, std::vector<int64_t>& pattern);

// Lowering rules (compiler/lower/lower.h). A pointwise op gives its scalar formula
// over loaded operands; the loops and broadcasting are generic. Others write
// their loop nests (and runtime calls) themselves.
struct LowerArgs;
using PointwiseFn = loop::ExprP (*)(const std::vector<loop::ExprP>& args, const Attrs& attrs);
using LowerFn = Status (*)(LowerArgs& args);

enum class OpKind {
  Compute,  // an ordinary op, evaluated by `eval`
  Source,   // input, label, param, const: the interpreter supplies the value
};

struct OpDef {
  std::string_view name;
  OpId id = OpId::Other;  // filled in by the registry from the name (op_id.h)
  std::vector<std::string_view> operands;  // names, for named arguments
  int minOperands = -1;                    // -1: all operands required
  bool variadic = false;                   // the last operand repeats (concat)
  std::vector<AttrSpec> attrs;
  ShapeFn shape = nullptr;
  EvalFn eval = nullptr;
  GradFn grad = nullptr;
  bool noGradient = false;  // no gradient flows through (argmax, step, masks); else `grad` is required
  // Draws from the random stream (dropout_mask, normal): two calls are two
  // different samples, so the passes never merge (cse) or fold one.
  bool random = false;
  BranchFn branches = nullptr;  // set for non-smooth ops
  PointwiseFn pointwise = nullptr;
  LowerFn lower = nullptr;
  // The result is the operand's data under another type (reshape, flatten):
  // lowering gives it the operand's slot and no kernel.
  bool view = false;
  // The result is operand 0's data, changed where it lies: lowering gives it
  // operand 0's slot, and the kernel runs (allreduce_wait).
  bool inPlace = false;
  OpKind kind = OpKind::Compute;
  // Made only by the optimizer's fusions (compiler/passes/), after
  // differentiation: the DSL cannot call it and it has no gradient rule.
  bool internal = false;
  // Talks to the other processes of a data-parallel run (collective_ops.cpp):
  // like a random op, never merged or folded, however plain its operands.
  bool collective = false;
  std::string_view summary;  // one line for `nnc help ops`

  bool is(OpId op) const { return id == op; }
  int requiredOperands() const {
    return minOperands < 0 ? static_cast<int>(operands.size()) : minOperands;
  }
};

const OpDef* findOp(std::string_view name);
const OpDef& findOp(OpId id);  // any id but OpId::Other
const std::vector<const OpDef*>& allOps();

// Checks operand count and attributes (unknown names, kinds, required ones)
// and fills in defaults. Ints attributes accept a single int (repeated later
// by the op's rule as it needs).
Expected<Attrs> completeAttrs(const OpDef& op, size_t numOperands, Attrs given);

// Each ops/*.cpp file contributes its entries through one of these.
void addSourceOps(std::vector<OpDef>& r);
void addElementwiseOps(std::vector<OpDef>& r);
void addReductionOps(std::vector<OpDef>& r);
void addShapeOps(std::vector<OpDef>& r);
void addMatmulOps(std::vector<OpDef>& r);  // matmul, plain and batched (matmul_ops.cpp)
void addNNOps(std::vector<OpDef>& r);    // conv, pooling, dropout, batchnorm
void addSequenceOps(std::vector<OpDef>& r);  // embedding, causal_mask, layernorm (sequence_ops.cpp)
void addLossOps(std::vector<OpDef>& r);  // softmax family, losses, metrics
void addFusedOps(std::vector<OpDef>& r); // internal: what the fusion passes make
void addBatchnormOps(std::vector<OpDef>& r);  // internal: fuse-batchnorm's (batchnorm_ops.cpp)
void addPadOps(std::vector<OpDef>& r);        // pad and its gradient (pad_ops.cpp)
void addGroupNormOps(std::vector<OpDef>& r);  // group_norm (group_norm_ops.cpp)
void addCollectiveOps(std::vector<OpDef>& r);  // internal: allreduce_start/wait (collective_ops.cpp)

}  // namespace nnc
