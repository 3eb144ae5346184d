// matmul through the JIT (nnc's GEMM) against the reference interpreter on
// awkward shapes: 1x1, primes, 1xN, Nx1, and sizes that are no multiple of
// the vector width or the 14x32 register tile; each transpose flag. The
// comparison itself is op_test_util's: evaluator and JIT vs reference.
#include <catch2/catch.hpp>

#include "op_test_util.h"
#include "runtime/rng.h"

using namespace nnc;
using namespace nnc::test;

namespace {
Tensor randomTensor(Shape s, Rng& rng) {
  Tensor t(f32(std::move(s)));
  for (double& v : t.data) v = rng.uniform() * 2 - 1;
  return t;
}
}  // namespace

TEST_CASE("matmul through the JIT on awkward shapes", "[ops][gemm][jit]") {
  Rng rng(3);
  const int64_t shapes[][3] = {{1, 1, 1}, {1, 7, 1}, {7, 1, 1},   {1, 1, 13},  {13, 17, 1}, {1, 100, 37},
                               {37, 1, 100}, {7, 13, 17}, {31, 37, 41}, {33, 65, 17}, {15, 33, 29}, {29, 47, 300}};
  for (const auto& [m, n, k] : shapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        INFO("M " << m << " N " << n << " K " << k << " transpose_a " << ta << " transpose_b " << tb);
        const Tensor a = randomTensor(ta ? Shape{k, m} : Shape{m, k}, rng);
        const Tensor b = randomTensor(tb ? Shape{n, k} : Shape{k, n}, rng);
        const Tensor c = evalOp("matmul", {a, b}, {{"transpose_a", int64_t{ta}}, {"transpose_b", int64_t{tb}}});
        CHECK(c.shape() == Shape{m, n});
      }
}

// The registry is the single source of truth: every compute op says how it
// lowers, so every graph the front end accepts can be compiled.
TEST_CASE("every compute op has a lowering rule", "[ops][jit]") {
  for (const OpDef* op : allOps()) {
    INFO(op->name);
    if (op->kind == OpKind::Source) continue;
    CHECK((op->lower != nullptr || op->pointwise != nullptr));
  }
}
