// The exporter's per-op rules: each nnc op of an inference graph as ONNX
// nodes (opsets 11 to 17). Semantics follow the op registry's reference
// evaluation (compiler/ops/*), not the ops' names: avgpool2d counts padded
// zeros, batchnorm's momentum is PyTorch's, dropout and normal are their
// inference forms.
#include <algorithm>
#include <functional>
#include <map>

#include "onnx/export_ctx.h"

namespace nnc::onnxio {

namespace {

using Rule = std::function<Status(ExportCtx&, ValueId)>;

// Negative axes (the registry allows them) made non-negative for ONNX.
int64_t axisOf(int64_t axis, int rank) { return axis < 0 ? axis + rank : axis; }

std::vector<int64_t> pairOf(const std::vector<int64_t>& v) { return {v.front(), v.back()}; }

// [top, left, bottom, right]: nnc pads both sides alike.
std::vector<int64_t> padsOf(const std::vector<int64_t>& v) { return {v.front(), v.back(), v.front(), v.back()}; }

Rule simple(std::string op) {
  return [op](ExportCtx& c, ValueId v) {
    std::vector<std::string> ins;
    for (size_t i = 0; i < c.g.node(v).inputs.size(); ++i) ins.push_back(c.in(v, i));
    c.add(op, ins, {c.names[v]});
    return ok();
  };
}

const Node& operand(const ExportCtx& c, ValueId v, size_t i) { return c.g.node(c.g.node(v).inputs[i]); }

// mul(x, dropout_mask(...)) of x's own shape is x in inference: the mask is
// all ones. Returns the operand index kept, or -1.
int keptByMask(const ExportCtx& c, ValueId v) {
  const Node& n = c.g.node(v);
  if (n.op->name != "mul") return -1;
  for (int i = 0; i < 2; ++i)
    if (operand(c, v, static_cast<size_t>(i)).op->name == "dropout_mask" &&
        c.g.type(n.inputs[static_cast<size_t>(1 - i)]) == n.type)
      return 1 - i;
  return -1;
}

Status mulRule(ExportCtx& c, ValueId v) {
  if (const int kept = keptByMask(c, v); kept >= 0) {
    c.names[v] = c.in(v, static_cast<size_t>(kept));
    return ok();
  }
  c.add("Mul", {c.in(v, 0), c.in(v, 1)}, {c.names[v]});
  return ok();
}

// add(matmul(a, b), bias) with the matmul folded (ExportCtx::skip) is one Gemm.
Status addRule(ExportCtx& c, ValueId v) {
  const Node& n = c.g.node(v);
  for (size_t i = 0; i < 2; ++i) {
    const ValueId mm = n.inputs[i];
    if (!c.skip[static_cast<size_t>(mm)] || !c.g.node(mm).op->is(OpId::Matmul)) continue;
    const Node& m = c.g.node(mm);
    auto& gemm = c.add("Gemm", {c.in(mm, 0), c.in(mm, 1), c.in(v, 1 - i)}, {c.names[v]});
    if (m.attrs.i("transpose_a")) setInt(gemm, "transA", 1);
    if (m.attrs.i("transpose_b")) setInt(gemm, "transB", 1);
    return ok();
  }
  c.add("Add", {c.in(v, 0), c.in(v, 1)}, {c.names[v]});
  return ok();
}

// Gemm takes the transposes as attributes; MatMul the other ranks ([K] @ [K, N], [..., M, K] @ [K, N]).
Status matmulRule(ExportCtx& c, ValueId v) {
  const Node& n = c.g.node(v);
  const bool ta = n.attrs.i("transpose_a") != 0, tb = n.attrs.i("transpose_b") != 0;
  if (operand(c, v, 0).type.rank() == 2 && (ta || tb)) {
    auto& gemm = c.add("Gemm", {c.in(v, 0), c.in(v, 1)}, {c.names[v]});
    if (ta) setInt(gemm, "transA", 1);
    if (tb) setInt(gemm, "transB", 1);
    return ok();
  }
  std::string b = c.in(v, 1);
  if (tb) {  // a vector or a batch of rows against b^T
    b = c.valueName(v, "bT");
    setInts(c.add("Transpose", {c.in(v, 1)}, {b}), "perm", {1, 0});
  }
  c.add("MatMul", {c.in(v, 0), b}, {c.names[v]});
  return ok();
}

// Softmax and LogSoftmax normalize one axis from opset 13; before, they
// flattened from `axis` on, which is the same only for the last axis, so
// another axis is moved last and back.
Rule softmaxRule(std::string op) {
  return [op](ExportCtx& c, ValueId v) {
    const int rank = c.g.type(v).rank();
    const int64_t axis = axisOf(c.g.node(v).attrs.i("axis"), rank);
    if (c.opset >= 13 || axis == rank - 1) {
      setInt(c.add(op, {c.in(v, 0)}, {c.names[v]}), "axis", axis);
      return ok();
    }
    std::vector<int64_t> perm;
    for (int64_t d = 0; d < rank; ++d) perm.push_back(d);
    std::swap(perm[static_cast<size_t>(axis)], perm.back());
    const std::string t = c.valueName(v, "moved"), s = c.valueName(v, "normalized");
    setInts(c.add("Transpose", {c.in(v, 0)}, {t}), "perm", perm);
    setInt(c.add(op, {t}, {s}), "axis", rank - 1);
    setInts(c.add("Transpose", {s}, {c.names[v]}), "perm", perm);  // a swap is its own inverse
    return ok();
  };
}

Rule reduceRule(std::string op) {
  return [op](ExportCtx& c, ValueId v) {
    const Node& n = c.g.node(v);
    const int rank = operand(c, v, 0).type.rank();
    std::vector<int64_t> axes;
    for (int64_t a : n.attrs.ints("axis")) axes.push_back(axisOf(a, rank));
    if (axes.empty())
      for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
    std::sort(axes.begin(), axes.end());
    onnx::NodeProto* node;
    if (op == "ReduceSum" && c.opset >= 13) {  // axes became an input in opset 13 (the others: 18)
      node = &c.add(op, {c.in(v, 0), c.int64s(c.valueName(v, "axes"), axes)}, {c.names[v]});
    } else {
      node = &c.add(op, {c.in(v, 0)}, {c.names[v]});
      setInts(*node, "axes", axes);
    }
    setInt(*node, "keepdims", n.attrs.i("keepdims"));
    return ok();
  };
}

// The target shape with the batch-following axes written so that it holds at
// any batch: 0 (copy the input's) where the input has the same axis at the
// same place (the same size at both batch sizes), else one -1 (inferred).
Expected<std::vector<int64_t>> dynamicShape(const ExportCtx& c, ValueId v) {
  const Node& n = c.g.node(v);
  const ValueId x = n.inputs[0];
  std::vector<int64_t> shape = n.type.shape;
  auto sameAxis = [&](const Graph& g, size_t i) { return g.type(x).shape[i] == g.type(v).shape[i]; };
  int inferred = 0;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (!c.batchDims[static_cast<size_t>(v)][i]) continue;
    const auto& xd = c.batchDims[static_cast<size_t>(x)];
    if (i < xd.size() && xd[i] && sameAxis(c.g, i) && sameAxis(*c.other, i)) {
      shape[i] = 0;
    } else {
      shape[i] = -1;
      ++inferred;
    }
  }
  if (inferred > 1)
    return error("export-onnx: node '{}' (op {}) makes {} axes follow the batch: ONNX's Reshape infers only one "
                 "(export at a fixed batch: --static-batch, with --set batch=N)",
                 n.name.empty() ? c.valueName(v) : n.name, n.op->name, inferred);
  return shape;
}

Status reshapeRule(ExportCtx& c, ValueId v) {
  NNC_TRY(auto shape, dynamicShape(c, v));
  c.add("Reshape", {c.in(v, 0), c.int64s(c.valueName(v, "shape"), shape)}, {c.names[v]});
  return ok();
}

// nnc's flatten keeps the axes before `axis` (ONNX's Flatten always makes a
// matrix): Flatten where they agree, else Reshape [0, ..., 0, -1].
Status flattenRule(ExportCtx& c, ValueId v) {
  const int rank = operand(c, v, 0).type.rank();
  const int64_t axis = axisOf(c.g.node(v).attrs.i("axis"), rank);
  if (axis == 1 && rank >= 2) {
    setInt(c.add("Flatten", {c.in(v, 0)}, {c.names[v]}), "axis", 1);
    return ok();
  }
  std::vector<int64_t> shape(static_cast<size_t>(axis), 0);
  shape.push_back(-1);
  c.add("Reshape", {c.in(v, 0), c.int64s(c.valueName(v, "shape"), shape)}, {c.names[v]});
  return ok();
}

// Expand broadcasts both ways, so a 1 keeps an axis the input already has at
// full (batch) size; an axis the batch would have to create is refused.
Status broadcastRule(ExportCtx& c, ValueId v) {
  const Node& n = c.g.node(v);
  const ValueId x = n.inputs[0];
  std::vector<int64_t> shape = n.type.shape;
  const size_t lead = shape.size() - c.g.type(x).shape.size();
  for (size_t i = 0; i < shape.size(); ++i) {
    if (!c.batchDims[static_cast<size_t>(v)][i]) continue;
    if (i < lead || !c.batchDims[static_cast<size_t>(x)][i - lead])
      return error("export-onnx: node '{}' (op broadcast_to) makes a new axis of the batch's size: it has no ONNX "
                   "form at every batch size (export at a fixed batch: --static-batch, with --set batch=N)",
                   n.name.empty() ? c.valueName(v) : n.name);
    shape[i] = 1;
  }
  c.add("Expand", {c.in(v, 0), c.int64s(c.valueName(v, "shape"), shape)}, {c.names[v]});
  return ok();
}

Status transposeRule(ExportCtx& c, ValueId v) {
  const int rank = c.g.type(v).rank();
  std::vector<int64_t> perm;
  for (int64_t p : c.g.node(v).attrs.ints("perm")) perm.push_back(axisOf(p, rank));
  if (perm.empty())
    for (int64_t d = rank - 1; d >= 0; --d) perm.push_back(d);
  setInts(c.add("Transpose", {c.in(v, 0)}, {c.names[v]}), "perm", perm);
  return ok();
}

Status concatRule(ExportCtx& c, ValueId v) {
  std::vector<std::string> ins;
  for (size_t i = 0; i < c.g.node(v).inputs.size(); ++i) ins.push_back(c.in(v, i));
  setInt(c.add("Concat", ins, {c.names[v]}), "axis", axisOf(c.g.node(v).attrs.i("axis"), c.g.type(v).rank()));
  return ok();
}

// ONNX's Slice clamps and counts negative indices from the end as NumPy does
// (nnc's rule for its positive steps), so the attributes carry over as they
// are, and a slice of the batch axis stays right at any batch.
Status sliceRule(ExportCtx& c, ValueId v) {
  const Attrs& a = c.g.node(v).attrs;
  const int64_t axis = axisOf(a.i("axis"), c.g.type(v).rank());
  c.add("Slice",
        {c.in(v, 0), c.int64s(c.valueName(v, "starts"), {a.i("start")}), c.int64s(c.valueName(v, "ends"), {a.i("end")}),
         c.int64s(c.valueName(v, "axes"), {axis}), c.int64s(c.valueName(v, "steps"), {a.i("step")})},
        {c.names[v]});
  return ok();
}

Rule convRule(std::string op) {
  return [op](ExportCtx& c, ValueId v) {
    const Node& n = c.g.node(v);
    std::vector<std::string> ins;
    for (size_t i = 0; i < n.inputs.size(); ++i) ins.push_back(c.in(v, i));
    auto& node = c.add(op, ins, {c.names[v]});
    const Shape& w = operand(c, v, 1).type.shape;
    setInts(node, "kernel_shape", {w[2], w[3]});
    setInts(node, "strides", pairOf(n.attrs.ints("stride")));
    setInts(node, "pads", padsOf(n.attrs.ints("pad")));
    setInts(node, "dilations", {1, 1});
    setInt(node, "group", n.attrs.i("groups"));
    if (op == "ConvTranspose") setInts(node, "output_padding", pairOf(n.attrs.ints("output_pad")));
    return ok();
  };
}

// Both pad to the window's fit; max pads with -inf in both; nnc's average
// divides by the whole window, padded zeros included.
Rule poolRule(std::string op) {
  return [op](ExportCtx& c, ValueId v) {
    const Attrs& a = c.g.node(v).attrs;
    auto& node = c.add(op, {c.in(v, 0)}, {c.names[v]});
    const auto kernel = pairOf(a.ints("kernel"));
    setInts(node, "kernel_shape", kernel);
    setInts(node, "strides", a.ints("stride").empty() ? kernel : pairOf(a.ints("stride")));
    setInts(node, "pads", padsOf(a.ints("pad")));
    if (op == "AveragePool") setInt(node, "count_include_pad", 1);
    return ok();
  };
}

// Inference form: the running statistics. ONNX's momentum weighs the old
// running value (running = running * momentum + batch * (1 - momentum));
// nnc's, as PyTorch's, weighs the batch's.
Status batchnormRule(ExportCtx& c, ValueId v) {
  const Attrs& a = c.g.node(v).attrs;
  auto& node = c.add("BatchNormalization", {c.in(v, 0), c.in(v, 1), c.in(v, 2), c.in(v, 3), c.in(v, 4)}, {c.names[v]});
  setFloat(node, "epsilon", a.f("eps"));
  setFloat(node, "momentum", 1 - a.f("momentum"));
  return ok();
}

// step(x) = x > 0 as 1 or 0 (NaN > 0 is false in both).
Status stepRule(ExportCtx& c, ValueId v) {
  const std::string gt = c.valueName(v, "positive");
  c.add("Greater", {c.in(v, 0), c.floats(c.valueName(v, "zero"), {}, {0.0})}, {gt});
  setInt(c.add("Cast", {gt}, {c.names[v]}), "to", onnx::TensorProto::FLOAT);
  return ok();
}

// A value of x's shape filled with one number: dropout_mask's ones (where a
// use keeps it) and normal's mean, their inference forms.
Rule fillRule(bool mask) {
  return [mask](ExportCtx& c, ValueId v) {
    const std::string shape = c.valueName(v, "shape");
    c.add("Shape", {c.in(v, 0)}, {shape});
    setScalarTensor(c.add("ConstantOfShape", {shape}, {c.names[v]}), "value",
                    mask ? 1.0f : static_cast<float>(c.g.node(v).attrs.f("mean")));
    return ok();
  };
}

// ONNX's ArgMax gives int64 and nnc's argmax i32.
Status argmaxRule(ExportCtx& c, ValueId v) {
  const std::string idx = c.valueName(v, "int64");
  auto& node = c.add("ArgMax", {c.in(v, 0)}, {idx});
  setInt(node, "axis", axisOf(c.g.node(v).attrs.i("axis"), operand(c, v, 0).type.rank()));
  setInt(node, "keepdims", 0);
  setInt(c.add("Cast", {idx}, {c.names[v]}), "to", onnx::TensorProto::INT32);
  return ok();
}

const std::map<std::string_view, Rule>& rules() {
  static const std::map<std::string_view, Rule> r = {
      {"add", addRule},
      {"sub", simple("Sub")},
      {"mul", mulRule},
      {"div", simple("Div")},
      {"maximum", simple("Max")},
      {"minimum", simple("Min")},
      {"pow", simple("Pow")},
      {"neg", simple("Neg")},
      {"exp", simple("Exp")},
      {"log", simple("Log")},
      {"sqrt", simple("Sqrt")},
      {"abs", simple("Abs")},
      {"sign", simple("Sign")},
      {"relu", simple("Relu")},
      {"sigmoid", simple("Sigmoid")},
      {"tanh", simple("Tanh")},
      {"identity", simple("Identity")},
      {"square",
       [](ExportCtx& c, ValueId v) {
         c.add("Mul", {c.in(v, 0), c.in(v, 0)}, {c.names[v]});
         return ok();
       }},
      {"leaky_relu",
       [](ExportCtx& c, ValueId v) {
         setFloat(c.add("LeakyRelu", {c.in(v, 0)}, {c.names[v]}), "alpha", c.g.node(v).attrs.f("alpha"));
         return ok();
       }},
      {"step", stepRule},
      {"softmax", softmaxRule("Softmax")},
      {"log_softmax", softmaxRule("LogSoftmax")},
      {"sum", reduceRule("ReduceSum")},
      {"mean", reduceRule("ReduceMean")},
      {"max", reduceRule("ReduceMax")},
      {"argmax", argmaxRule},
      {"matmul", matmulRule},
      {"reshape", reshapeRule},
      {"flatten", flattenRule},
      {"transpose", transposeRule},
      {"concat", concatRule},
      {"slice", sliceRule},
      {"broadcast_to", broadcastRule},
      {"conv2d", convRule("Conv")},
      {"conv_transpose2d", convRule("ConvTranspose")},
      {"maxpool2d", poolRule("MaxPool")},
      {"avgpool2d", poolRule("AveragePool")},
      {"batchnorm", batchnormRule},
      {"dropout_mask", fillRule(true)},
      {"normal", fillRule(false)},
  };
  return r;
}

}  // namespace

bool hasExportRule(const Node& n) { return rules().count(n.op->name) != 0; }

bool keepsOperandOfMask(const ExportCtx& c, ValueId v) { return keptByMask(c, v) >= 0; }

Status emitNode(ExportCtx& c, ValueId v) {
  auto it = rules().find(c.g.node(v).op->name);
  if (it == rules().end()) return error("export-onnx: op {} has no ONNX form", c.g.node(v).op->name);
  return it->second(c, v);
}

}  // namespace nnc::onnxio
