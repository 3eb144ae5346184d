// The sequence models' ops: batched matmul, embedding, causal_mask and
// layernorm. Values by hand and from NumPy-style loops written here; every
// evaluation also checks the op's lowering (loop-IR evaluator and JIT, see
// op_test_util.h); gradients against finite differences. PyTorch checks of
// the same ops in a whole model: tests/reference (transformer_tiny).
#include <cmath>
#include <limits>

#include "compiler/autodiff/gradcheck.h"
#include "grad_test_util.h"
#include "op_test_util.h"

using namespace nnc;
using nnc::test::evalOp;
using nnc::test::f32;
using nnc::test::inferOp;
using nnc::test::Operand;
using nnc::test::randomTensor;
using nnc::test::requireError;
using nnc::test::requireGradientsMatch;
using nnc::test::tensor;
using nnc::test::tryEvalOp;

namespace {

Attrs flags(int64_t ta, int64_t tb) { return Attrs{{"transpose_a", ta}, {"transpose_b", tb}}; }

GradCheckOptions linear() {
  GradCheckOptions o;
  o.eps = 1e-3;
  return o;
}

Tensor ids(Shape s, std::vector<double> v) { return tensor(std::move(s), std::move(v), DType::I32); }

// The product of [.., M, K] @ [.., K, N] written out with explicit broadcast
// strides, independent of the op's BroadcastIndex.
Tensor batchedProduct(const Tensor& a, const Tensor& b, int64_t batchA, int64_t batchB, int64_t m, int64_t k,
                      int64_t n, bool ta, bool tb) {
  const int64_t batch = std::max(batchA, batchB);
  Tensor out(f32({batch, m, n}));
  for (int64_t q = 0; q < batch; ++q)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        const int64_t qa = batchA == 1 ? 0 : q, qb = batchB == 1 ? 0 : q;
        for (int64_t p = 0; p < k; ++p)
          s += a.data[qa * m * k + (ta ? p * m + i : i * k + p)] * b.data[qb * k * n + (tb ? j * k + p : p * n + j)];
        out.data[(q * m + i) * n + j] = s;
      }
  return out;
}

}  // namespace

TEST_CASE("batched matmul: shapes, broadcasting and errors", "[ops][sequence]") {
  CHECK(inferOp("matmul", {f32({4, 6, 8}), f32({4, 8, 6})})->shape == Shape{4, 6, 6});
  CHECK(inferOp("matmul", {f32({2, 1, 3, 5}), f32({4, 5, 7})})->shape == Shape{2, 4, 3, 7});
  CHECK(inferOp("matmul", {f32({5}), f32({3, 5, 2})})->shape == Shape{3, 2});
  CHECK(inferOp("matmul", {f32({3, 5, 4}), f32({5, 2})}, flags(1, 0))->shape == Shape{3, 4, 2});
  CHECK(inferOp("matmul", {f32({2, 3, 5}), f32({2, 7, 5})}, flags(0, 1))->shape == Shape{2, 3, 7});
  requireError(inferOp("matmul", {f32({3, 6, 8}), f32({4, 8, 6})}), {"batch dimensions", "[3]", "[4]"});
  requireError(inferOp("matmul", {f32({4, 6, 8}), f32({4, 7, 6})}), {"inner dimensions differ"});
  requireError(inferOp("matmul", {f32({4, 6, 8}), f32({8})}), {"right operand"});
}

TEST_CASE("batched matmul matches the product by hand, every transpose and broadcast", "[ops][sequence]") {
  const int64_t m = 3, k = 5, n = 4;
  for (int64_t ta = 0; ta < 2; ++ta)
    for (int64_t tb = 0; tb < 2; ++tb)
      for (auto [ba, bb] : {std::pair<int64_t, int64_t>{3, 3}, {1, 3}, {3, 1}}) {
        INFO("transpose_a " << ta << ", transpose_b " << tb << ", batches " << ba << " and " << bb);
        const Tensor a = randomTensor(ta ? Shape{ba, k, m} : Shape{ba, m, k}, 1 + ta);
        const Tensor b = randomTensor(tb ? Shape{bb, n, k} : Shape{bb, k, n}, 3 + tb);
        const Tensor want = batchedProduct(a, b, ba, bb, m, k, n, ta, tb);
        const Tensor got = evalOp("matmul", {a, b}, flags(ta, tb));
        nnc::test::requireClose(got, want.shape(), want.data, 1e-12, 1e-12);
      }
}

TEST_CASE("batched matmul with a vector on the left and broadcast leading axes", "[ops][sequence]") {
  // [2] @ [2, 2, 1]: each batch entry's one column dotted with a.
  const Tensor a = tensor({2}, {1, 2});
  const Tensor b = tensor({2, 2, 1}, {3, 4, 5, 6});
  nnc::test::requireClose(evalOp("matmul", {a, b}), {2, 1}, {11, 17});
  const Tensor x = randomTensor({2, 1, 3, 4}, 5), y = randomTensor({3, 4, 2}, 6);
  const Tensor got = evalOp("matmul", {x, y});
  REQUIRE(got.shape() == Shape{2, 3, 3, 2});
}

TEST_CASE("batched matmul gradients", "[grad][sequence]") {
  SECTION("same batch") {
    requireGradientsMatch("matmul", {{randomTensor({3, 2, 4}, 1)}, {randomTensor({3, 4, 5}, 2)}}, {}, linear());
  }
  SECTION("broadcast batch axes on either side") {
    requireGradientsMatch("matmul", {{randomTensor({2, 1, 3, 4}, 3)}, {randomTensor({3, 4, 2}, 4)}}, {}, linear());
    requireGradientsMatch("matmul", {{randomTensor({1, 3, 4}, 5)}, {randomTensor({2, 4, 2}, 6)}}, {}, linear());
  }
  SECTION("every transpose flag") {
    for (int64_t ta = 0; ta < 2; ++ta)
      for (int64_t tb = 0; tb < 2; ++tb) {
        INFO("transpose_a " << ta << ", transpose_b " << tb);
        requireGradientsMatch("matmul",
                              {{randomTensor(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, 7)},
                               {randomTensor(tb ? Shape{2, 5, 4} : Shape{2, 4, 5}, 8)}},
                              flags(ta, tb), linear());
      }
  }
  SECTION("a vector, and a transposed batch over one matrix") {
    requireGradientsMatch("matmul", {{randomTensor({4}, 9)}, {randomTensor({3, 4, 2}, 10)}}, {}, linear());
    requireGradientsMatch("matmul", {{randomTensor({3, 4, 2}, 11)}, {randomTensor({4, 5}, 12)}}, flags(1, 0), linear());
  }
}

TEST_CASE("embedding reads rows by id, its gradient adds them back", "[ops][sequence]") {
  const Tensor table = tensor({3, 2}, {10, 11, 20, 21, 30, 31});
  nnc::test::requireClose(evalOp("embedding", {ids({2, 2}, {2, 0, 2, 1}), table}), {2, 2, 2},
                          {30, 31, 10, 11, 30, 31, 20, 21});
  const Tensor dy = tensor({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  nnc::test::requireClose(evalOp("embedding_grad", {ids({4}, {2, 0, 2, 1}), dy}, {{"rows", int64_t{3}}}), {3, 2},
                          {3, 4, 7, 8, 6, 8});
  auto bad = tryEvalOp("embedding", {ids({2}, {1, 3}), table});
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Catch::Matchers::Contains("id 3 at index 1"));
  requireError(inferOp("embedding", {f32({4}), f32({3, 2})}), {"ids must be i32"});
  requireError(inferOp("embedding", {TensorType{DType::I32, {4}}, f32({3})}), {"f32[rows, width]"});
  requireGradientsMatch("embedding", {Operand{ids({2, 3}, {0, 4, 4, 1, 2, 0}), false}, {randomTensor({5, 3}, 1)}}, {},
                        linear());
}

TEST_CASE("causal_mask hides the keys after each query", "[ops][sequence]") {
  const double inf = std::numeric_limits<double>::infinity();
  nnc::test::requireClose(evalOp("causal_mask", {tensor({1, 2, 3}, {1, 2, 3, 4, 5, 6})}, {{"value", -9.0}}),
                          {1, 2, 3}, {1, 2, -9, 4, 5, 6});  // 2 queries over 3 keys: the first sees 2
  const Tensor sq = evalOp("causal_mask", {tensor({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9})});
  CHECK(sq.data == std::vector<double>{1, -inf, -inf, 4, 5, -inf, 7, 8, 9});
  requireError(inferOp("causal_mask", {f32({3, 2})}), {"fewer keys than queries"});
  requireGradientsMatch("causal_mask", {{randomTensor({2, 4, 4}, 2)}}, {{"value", 0.0}}, linear());
}

TEST_CASE("layernorm normalizes the last axes", "[ops][sequence]") {
  // Row [1, 2, 3, 6]: mean 3, biased var 3.5.
  const double s = 1 / std::sqrt(3.5 + 1e-5);
  nnc::test::requireClose(evalOp("layernorm", {tensor({1, 4}, {1, 2, 3, 6}), tensor({4}, {1, 1, 2, 1}),
                                               tensor({4}, {0, 0, 0, 1})}),
                          {1, 4}, {-2 * s, -1 * s, 0, 3 * s + 1});
  evalOp("layernorm", {randomTensor({3, 5, 7}, 1), randomTensor({5, 7}, 2), randomTensor({5, 7}, 3)});
  evalOp("layernorm", {randomTensor({2, 3, 130}, 4), randomTensor({130}, 5), randomTensor({130}, 6)});
  requireError(inferOp("layernorm", {f32({3, 4}), f32({3}), f32({3})}), {"last axes"});
  requireError(inferOp("layernorm", {f32({3, 4}), f32({4}), f32({3})}), {"beta"});
  requireGradientsMatch("layernorm", {{randomTensor({3, 5}, 7)}, {randomTensor({5}, 8)}, {randomTensor({5}, 9)}});
  requireGradientsMatch("layernorm",
                        {{randomTensor({2, 3, 4}, 10)}, {randomTensor({3, 4}, 11)}, {randomTensor({3, 4}, 12)}});
}

TEST_CASE("attention equals softmax(scale q kT + mask) v spelled out", "[ops][sequence]") {
  for (int64_t causal = 0; causal < 2; ++causal)
    for (auto [t, s] : {std::pair<int64_t, int64_t>{5, 5}, {3, 7}, {40, 40}, {33, 70}}) {
      INFO("causal " << causal << ", T " << t << ", S " << s);
      const int64_t dh = 6, dv = 3;
      const Tensor q = randomTensor({2, 2, t, dh}, 1), k = randomTensor({2, 2, s, dh}, 2),
                   v = randomTensor({2, 2, s, dv}, 3);
      const Tensor got = evalOp("attention", {q, k, v}, {{"causal", causal}});  // also runs the JIT's kernel
      Tensor scores = evalOp("matmul", {q, k}, flags(0, 1));
      for (double& x : scores.data) x /= std::sqrt(static_cast<double>(dh));
      if (causal) scores = evalOp("causal_mask", {scores});
      const Tensor p = evalOp("softmax", {scores}, {{"axis", int64_t{-1}}});
      const Tensor want = evalOp("matmul", {p, v});
      nnc::test::requireClose(got, want.shape(), want.data, 1e-12, 1e-12);
    }
  requireError(inferOp("attention", {f32({2, 4, 3}), f32({3, 4, 3}), f32({3, 4, 3})}), {"leading"});
  requireError(inferOp("attention", {f32({2, 4, 3}), f32({2, 4, 2}), f32({2, 4, 3})}), {"feature size"});
  requireError(inferOp("attention", {f32({2, 4, 3}), f32({2, 3, 3}), f32({2, 3, 3})}, {{"causal", int64_t{1}}}),
               {"at least as many keys"});
}

TEST_CASE("attention gradients, and attention_grad's kernel against its reference", "[grad][sequence]") {
  for (int64_t causal = 0; causal < 2; ++causal) {
    INFO("causal " << causal);
    requireGradientsMatch("attention",
                          {{randomTensor({2, 4, 3}, 4)}, {randomTensor({2, 6, 3}, 5)}, {randomTensor({2, 6, 2}, 6)}},
                          {{"causal", causal}});
    // Long enough for several query blocks of the kernel (runtime/sequence.cpp).
    evalOp("attention_grad",
           {randomTensor({3, 70, 5}, 7), randomTensor({3, 75, 5}, 8), randomTensor({3, 75, 4}, 9),
            randomTensor({3, 70, 4}, 10)},
           {{"causal", causal}, {"scale", 0.3}});
  }
}

TEST_CASE("self_attention is attention of qkv's three slices, its gradient stacked", "[ops][grad][sequence]") {
  for (int64_t causal = 0; causal < 2; ++causal) {
    INFO("causal " << causal);
    const Tensor qkv = randomTensor({3, 2, 37, 4}, 20 + causal);
    const int64_t n = 2 * 37 * 4;
    Tensor q(f32({2, 37, 4})), k(q.type), v(q.type);
    std::copy(qkv.data.begin(), qkv.data.begin() + n, q.data.begin());
    std::copy(qkv.data.begin() + n, qkv.data.begin() + 2 * n, k.data.begin());
    std::copy(qkv.data.begin() + 2 * n, qkv.data.end(), v.data.begin());
    const Tensor want = evalOp("attention", {q, k, v}, {{"causal", causal}});
    const Tensor got = evalOp("self_attention", {qkv}, {{"causal", causal}});
    nnc::test::requireClose(got, want.shape(), want.data, 1e-12, 1e-12);
    const Tensor dy = randomTensor({2, 37, 4}, 30);
    const Tensor g3 = evalOp("attention_grad", {q, k, v, dy}, {{"causal", causal}});
    const Tensor gs = evalOp("self_attention_grad", {qkv, dy}, {{"causal", causal}});
    nnc::test::requireClose(gs, qkv.shape(), g3.data, 1e-12, 1e-12);
    requireGradientsMatch("self_attention", {{randomTensor({3, 2, 5, 3}, 40)}}, {{"causal", causal}});
  }
  requireError(inferOp("self_attention", {f32({2, 4, 5, 3})}), {"f32[3, ..., T, dh]"});
}
