// Gradient checks of single ops: params for the differentiable operands,
// loss = sum(op(...) * R) with a fixed random R (so d loss / d output is not
// uniform), then the symbolic gradient against central finite differences.
#pragma once
#include <catch2/catch.hpp>

#include "compiler/autodiff/gradcheck.h"
#include "runtime/rng.h"

namespace nnc::test {

struct Operand {
  Tensor value;
  bool differentiable = true;  // false: a constant (labels, masks)
};

inline Tensor randomTensor(Shape shape, uint64_t seed, double scale = 1.0) {
  Tensor t(TensorType{DType::F32, std::move(shape)});
  Rng rng(seed);
  for (double& v : t.data) v = scale * rng.normal();
  return t;
}

inline Expected<Graph> opGraph(std::string_view op, const std::vector<Operand>& operands, Attrs attrs) {
  Graph g;
  g.name = std::string(op);
  std::vector<ValueId> ins;
  for (size_t k = 0; k < operands.size(); ++k) {
    const Tensor& t = operands[k].value;
    if (operands[k].differentiable) {
      NNC_TRY(ValueId p, g.addSource("param", fmt::format("p{}", k), t.type, Attrs{{"init", std::string("value")}, {"args", t.data}}));
      ins.push_back(p);
    } else {
      NNC_TRY(ValueId c, g.addSource("const", fmt::format("c{}", k), t.type, Attrs{{"value", t.data}}));
      ins.push_back(c);
    }
  }
  NNC_TRY(ValueId y, g.add(op, ins, std::move(attrs)));
  Tensor r = randomTensor(g.type(y).shape, 977);
  NNC_TRY(ValueId rc, g.addSource("const", "R", r.type, Attrs{{"value", r.data}}));
  NNC_TRY(ValueId prod, g.add("mul", {y, rc}));
  NNC_TRY(g.loss, g.add("sum", {prod}));
  return g;
}

// Checks every entry of every differentiable operand (up to `samples` each).
inline void requireGradientsMatch(std::string_view op, const std::vector<Operand>& operands, Attrs attrs = {},
                                  GradCheckOptions opt = {}) {
  if (opt.samples == 10) opt.samples = 200;
  auto g = opGraph(op, operands, std::move(attrs));
  if (!g) FAIL("building " << op << ": " << g.error().message);
  auto r = gradCheck(*g, {}, opt);
  if (!r) FAIL("checking " << op << ": " << r.error().message);
  for (const ParamCheck& p : r->params) {
    INFO(op << " operand " << p.name << ": " << p.checked << " entries, " << p.kinks << " at kinks, max abs "
            << p.maxAbs << ", max rel " << p.maxRel);
    CHECK(p.checked > 0);
    CHECK(p.ok);
  }
}

}  // namespace nnc::test
