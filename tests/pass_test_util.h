// Helpers of the graph-pass tests (fold-batchnorm, fuse-residual,
// fuse-batchnorm): a model from source, the ops a pass left, and a program
// compiled for some roots run by the JIT against the interpreter (the one
// oracle) at rtol 1e-4, atol 1e-5.
#pragma once
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cli/frontend.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "compiler/passes/pipeline.h"
#include "runtime/parallel.h"

namespace pass_test {

using namespace nnc;

inline Elaborated compile(SourceManager& sm, const std::string& text, const char* file = "test.nn") {
  auto m = cli::compileSource(sm, file, text);
  if (!m) FAIL(sm.render(m.error()));
  return m.take();
}

// The compute nodes' ops, each with its act when it has one and followed by
// a space: "conv2d_fused.relu maxpool2d ".
inline std::string opsOf(const Graph& g) {
  std::string s;
  for (const Node& n : g.nodes)
    if (n.op->kind == OpKind::Compute) s += std::string(n.op->name) + (n.attrs.has("act") ? "." + n.attrs.s("act") : "") + " ";
  return s;
}

// How many of opsOf's tokens are exactly `op`.
inline size_t count(const std::string& ops, const std::string& op) {
  size_t n = 0;
  const std::string s = " " + ops, w = " " + op + " ";
  for (size_t at = s.find(w); at != std::string::npos; at = s.find(w, at + 1)) ++n;
  return n;
}

// The graph's outputs, and its loss after them when withLoss.
inline std::vector<ValueId> outputsOf(const Graph& g, bool withLoss) {
  std::vector<ValueId> o;
  for (const auto& [_, v] : g.outputs) o.push_back(v);
  if (withLoss) o.push_back(g.loss);
  return o;
}

// The inference program of roots (no train step).
inline std::unique_ptr<jit::CompiledProgram> inferJit(const Graph& g, const std::vector<ValueId>& roots,
                                                      const PassOptions& passes = {}) {
  jit::CompileOptions co;
  co.passes = passes;
  auto cp = jit::CompiledProgram::create(g, roots, LowerOptions{}, co);
  if (!cp) FAIL(cp.error().message);
  return cp.take();
}

// feeds into p's slots, one run on `threads` threads, the roots' values in order.
inline std::vector<float> run(jit::CompiledProgram& p, const Graph& g, const std::vector<ValueId>& roots,
                              const TensorMap& feeds, int threads) {
  setThreadCount(threads);
  for (const auto& [name, t] : feeds)
    if (float* d = p.data(g.findByName(name)))
      for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
  p.run();
  std::vector<float> r;
  for (ValueId v : roots) r.insert(r.end(), p.data(v), p.data(v) + p.size(v));
  setThreadCount(0);
  return r;
}

// The interpreter's values of the roots, in order.
inline std::vector<double> reference(const Graph& g, const TensorMap& feeds, const std::vector<ValueId>& roots) {
  auto want = interpret(g, feeds, EvalOptions{}, roots);
  REQUIRE(want);
  std::vector<double> r;
  for (ValueId v : roots) {
    const std::vector<double>& d = (*want)[static_cast<size_t>(v)].data;
    r.insert(r.end(), d.begin(), d.end());
  }
  return r;
}

inline void requireClose(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": JIT " << got[i] << ", interpreter " << want[i]);
    REQUIRE(std::abs(got[i] - want[i]) <= 1e-5 + 1e-4 * std::abs(want[i]));
  }
}

}  // namespace pass_test
