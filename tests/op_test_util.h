// Runs one registry op on concrete tensors: attributes completed, shape rule
// applied, reference evaluation run. For op-level tests.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>

#include "compiler/graph/graph.h"
#include "compiler/jit/compiled.h"
#include "compiler/lower/lower.h"
#include "compiler/ops/op_registry.h"

namespace nnc::test {

inline TensorType f32(Shape s) { return TensorType{DType::F32, std::move(s)}; }

// The shape rule's error, which must mention every fragment.
inline void requireError(const Expected<TensorType>& r, std::initializer_list<std::string> fragments) {
  REQUIRE_FALSE(r.ok());
  for (const std::string& f : fragments) REQUIRE_THAT(r.error().message, Catch::Matchers::Contains(f));
}

inline Tensor tensor(Shape shape, std::vector<double> data, DType dt = DType::F32) {
  return Tensor(TensorType{dt, std::move(shape)}, std::move(data));
}

// The result type, or the shape rule's error message.
inline Expected<TensorType> inferOp(std::string_view name, const std::vector<TensorType>& in, Attrs attrs = {}) {
  const OpDef* op = findOp(name);
  if (!op) return error("no op {}", name);
  auto full = completeAttrs(*op, in.size(), std::move(attrs));
  if (!full) return std::move(full.error());
  return op->shape(in, *full);
}

inline void requireCloseF32(std::string_view what, const float* got, const Tensor& want, const std::string& context) {
  for (size_t i = 0; i < want.data.size(); ++i) {
    INFO(what << ", element " << i << ": got " << got[i] << ", want " << want.data[i] << "\n" << context);
    if (std::isnan(want.data[i])) {
      REQUIRE(std::isnan(got[i]));
      continue;
    }
    if (std::isinf(want.data[i])) {
      REQUIRE(static_cast<double>(got[i]) == want.data[i]);
      continue;
    }
    REQUIRE(std::abs(got[i] - want.data[i]) <= 1e-5 + 1e-4 * std::abs(want.data[i]));
  }
}

// Every op evaluation in the op tests also checks the op's lowering, twice:
// the loop-IR kernel run by the loop IR's evaluator, and the same kernel
// compiled by the JIT (O2: vectorized, with remainder loops), both in f32,
// must match the reference evaluation (rtol 1e-4, atol 1e-5). Random ops in
// training mode draw other numbers and are skipped.
inline void checkLowered(std::string_view name, const std::vector<Tensor>& in, const Attrs& attrs, bool training,
                         const Tensor& want) {
  const OpDef* op = findOp(name);
  if (!op || (!op->lower && !op->pointwise) || (training && op->random)) return;
  Graph g;
  std::vector<ValueId> ids;
  for (size_t i = 0; i < in.size(); ++i) {
    auto id = g.addSource("input", "in" + std::to_string(i), in[i].type);
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  auto id = g.add(name, ids, attrs);
  REQUIRE(id.ok());
  auto k = lowerNode(g, *id, training);
  if (!k) FAIL("lowering " << name << ": " << k.error().message);
  std::vector<std::vector<float>> bufs;
  for (const loop::Buffer& b : k->buffers) bufs.emplace_back(static_cast<size_t>(b.size), -777.0f);  // poison
  for (size_t i = 0; i < in.size(); ++i)
    for (size_t j = 0; j < in[i].data.size(); ++j) bufs[i][j] = static_cast<float>(in[i].data[j]);
  std::vector<float*> ptrs;
  for (auto& b : bufs) ptrs.push_back(b.data());
  loop::evaluate(*k, ptrs);
  REQUIRE(bufs[in.size()].size() == want.data.size());
  requireCloseF32(std::string(name) + " lowered", bufs[in.size()].data(), want, loop::print(*k));

  LowerOptions lo;
  lo.training = training;
  jit::CompileOptions co;
  co.optLevel = 2;
  auto cp = jit::CompiledProgram::create(g, {*id}, lo, co);
  if (!cp) FAIL("compiling " << name << ": " << cp.error().message);
  for (size_t i = 0; i < in.size(); ++i)
    for (size_t j = 0; j < in[i].data.size(); ++j) (*cp)->data(ids[i])[j] = static_cast<float>(in[i].data[j]);
  (*cp)->run();
  requireCloseF32(std::string(name) + " JIT", (*cp)->data(*id), want, loop::print(*k));
}

inline Expected<Tensor> tryEvalOp(std::string_view name, const std::vector<Tensor>& in, Attrs attrs = {},
                                  bool training = false, uint64_t seed = 1) {
  const OpDef* op = findOp(name);
  if (!op) return error("no op {}", name);
  auto full = completeAttrs(*op, in.size(), std::move(attrs));
  if (!full) return std::move(full.error());
  std::vector<TensorType> types;
  std::vector<const Tensor*> ptrs;
  for (const Tensor& t : in) {
    types.push_back(t.type);
    ptrs.push_back(&t);
  }
  auto ty = op->shape(types, *full);
  if (!ty) return std::move(ty.error());
  Tensor out(*ty);
  Rng rng(seed);
  EvalEnv env{training, &rng};
  auto st = op->eval(EvalArgs{ptrs, *full, out, env});
  if (!st) return std::move(st.error());
  checkLowered(name, in, *full, training, out);
  return out;
}

inline Tensor evalOp(std::string_view name, const std::vector<Tensor>& in, Attrs attrs = {}, bool training = false) {
  auto r = tryEvalOp(name, in, std::move(attrs), training);
  if (!r) FAIL("evaluating " << name << ": " << r.error().message);
  return r.take();
}

// Element-wise closeness with PyTorch's default tolerances.
inline void requireClose(const Tensor& got, const Shape& shape, const std::vector<double>& want,
                         double rtol = 1e-4, double atol = 1e-5) {
  REQUIRE(got.shape() == shape);
  REQUIRE(got.data.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i << ": got " << got.data[i] << ", want " << want[i]);
    REQUIRE(std::abs(got.data[i] - want[i]) <= atol + rtol * std::abs(want[i]));
  }
}

}  // namespace nnc::test
