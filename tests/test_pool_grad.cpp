// The pooling gradients (maxpool2d_grad, maxpool2d_relu_grad,
// avgpool2d_grad; issue 19): each input-gradient element is written once,
// by the window scan's gather or the tiled passes, never a zero-filled dx
// with adds scattered into it; through the JIT against the interpreter on
// odd shapes, batch 1, strides 1 to 3 and padding, ties and NaN included,
// and bit-identical on 1 and 2 threads. emit-cpp runs the same loop IR
// (test_emit_cpp.cpp's poolnet).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "compiler/lower/lower.h"
#include "runtime/parallel.h"
#include "runtime/rng.h"

using namespace nnc;

namespace {

struct PoolCase {
  Shape x;
  std::vector<int64_t> kernel, stride, pad;
};

const std::vector<PoolCase> kCases = {
    {{1, 3, 7, 9}, {2, 2}, {1, 1}, {0, 0}},       // batch 1, stride 1: every inner element in 4 windows
    {{2, 3, 11, 13}, {3, 3}, {1, 1}, {1, 1}},     // 3×3 stride 1 pad 1
    {{3, 2, 9, 10}, {3, 3}, {2, 2}, {1, 1}},      // 3×3 stride 2 pad 1
    {{2, 2, 13, 11}, {3, 3}, {3, 3}, {1, 1}},     // stride 3 = kernel, padded: no overlap
    {{1, 4, 10, 11}, {2, 2}, {3, 3}, {1, 1}},     // stride past the kernel: elements no window reads
    {{2, 3, 12, 17}, {3, 2}, {2, 3}, {1, 0}},     // non-square, mixed
    {{2, 5, 8, 8}, {2, 2}, {2, 2}, {0, 0}},       // windows tile the image
    {{1, 3, 11, 7}, {3, 3}, {3, 3}, {0, 0}},      // tiling with rows and columns left over
    {{8, 16, 30, 31}, {3, 3}, {2, 2}, {1, 1}},    // large enough for the batch loop to run on two threads
    {{8, 16, 31, 33}, {2, 2}, {2, 2}, {0, 0}},    // the same, tiling
    {{2, 3, 7, 8}, {3, 3}, {1, 1}, {2, 2}},       // pad past half the kernel (ONNX's test_maxpool_2d_pads): corner windows hold one pixel
    {{1, 2, 6, 5}, {3, 2}, {2, 1}, {2, 1}},       // the same, non-square and strided
};

// 0: normal values; 1: small integers (ties everywhere, windows of zeros
// and negatives); 2: ties with NaN and -inf mixed in.
Tensor values(const Shape& shape, int kind, Rng& rng) {
  Tensor t(TensorType{DType::F32, shape});
  for (double& v : t.data) {
    if (kind == 0) {
      v = rng.normal();
      continue;
    }
    v = static_cast<double>(rng.below(4)) - 2;
    if (kind == 2 && rng.below(7) == 0) v = rng.below(2) ? std::nan("") : -std::numeric_limits<double>::infinity();
  }
  return t;
}

void requireClose(const float* got, const Tensor& want) {
  for (size_t i = 0; i < want.data.size(); ++i) {
    const double w = want.data[i];
    INFO("dx[" << i << "]: JIT " << got[i] << ", interpreter " << w);
    if (std::isnan(w)) REQUIRE(std::isnan(got[i]));
    else REQUIRE(std::abs(got[i] - w) <= 1e-5 + 1e-4 * std::abs(w));
  }
}

// The forward op, its gradient and the gradient's operands for `op`.
struct PoolGraph {
  Graph g;
  ValueId x = kNoValue, dy = kNoValue, dx = kNoValue;
};

PoolGraph poolGraph(const PoolCase& pc, const std::string& op) {
  PoolGraph p;
  Attrs attrs{{"kernel", pc.kernel}, {"stride", pc.stride}, {"pad", pc.pad}};
  p.x = *p.g.addSource("input", "x", TensorType{DType::F32, pc.x});
  auto y = p.g.add(op, {p.x}, attrs);
  REQUIRE(y);
  p.dy = *p.g.addSource("input", "dy", p.g.type(*y));
  if (op == "avgpool2d") {
    attrs.set("shape", pc.x);
    auto dx = p.g.add("avgpool2d_grad", {p.dy}, attrs);
    REQUIRE(dx);
    p.dx = *dx;
  } else {
    auto dx = p.g.add(op + "_grad", {p.x, p.dy}, attrs);
    REQUIRE(dx);
    p.dx = *dx;
  }
  return p;
}

bool sameAffine(const loop::Affine& a, const loop::Affine& b) {
  auto terms = [](loop::Affine x) {
    std::sort(x.terms.begin(), x.terms.end());
    return x.terms;
  };
  return a.c == b.c && terms(a) == terms(b);
}

// What the kernel's stores into buffer `out` amount to: `assigned`, the
// iterations of its assigning stores (guards not counted); `blindAdds`,
// adds or maxima into an element that no enclosing statement of the same
// iteration assigned first (what a scatter into a zero-filled buffer does).
struct Writes {
  int64_t assigned = 0;
  int blindAdds = 0;
};

void walk(const std::vector<loop::Stmt>& body, int out, int64_t reps, std::vector<loop::Affine> assignedHere,
          Writes& w) {
  for (const loop::Stmt& s : body) {
    if (s.kind == loop::Stmt::Kind::Loop) walk(s.body, out, reps * s.extent, assignedHere, w);
    if (s.kind == loop::Stmt::Kind::Guard) walk(s.body, out, reps, assignedHere, w);
    if (s.kind == loop::Stmt::Kind::Call) ++w.blindAdds;  // no runtime call writes a pooling gradient
    if (s.kind != loop::Stmt::Kind::Store || s.buf != out) continue;
    if (s.combine == loop::Combine::Assign) {
      w.assigned += reps;
      assignedHere.push_back(s.index);
    } else if (std::none_of(assignedHere.begin(), assignedHere.end(),
                            [&](const loop::Affine& a) { return sameAffine(a, s.index); })) {
      ++w.blindAdds;
    }
  }
}

}  // namespace

TEST_CASE("pooling gradients write each dx element once", "[pool][lower]") {
  for (const PoolCase& pc : kCases)
    for (const char* op : {"maxpool2d", "maxpool2d_relu", "avgpool2d"}) {
      INFO(op << " x " << pc.x[2] << "x" << pc.x[3] << " kernel " << pc.kernel[0] << "x" << pc.kernel[1] << " stride "
              << pc.stride[0] << "x" << pc.stride[1] << " pad " << pc.pad[0] << "x" << pc.pad[1]);
      PoolGraph p = poolGraph(pc, op);
      auto k = lowerNode(p.g, p.dx, true);
      REQUIRE(k);
      Writes w;
      walk(k->body, static_cast<int>(p.g.node(p.dx).inputs.size()), 1, {}, w);  // the result follows the operands
      CHECK(w.assigned == p.g.type(p.dx).numel());
      CHECK(w.blindAdds == 0);
    }
}

TEST_CASE("pooling gradients through the JIT match the interpreter and are bit-identical on 1 and 2 threads", "[pool][jit]") {
  uint64_t seed = 1;
  for (const PoolCase& pc : kCases)
    for (const char* op : {"maxpool2d", "maxpool2d_relu", "avgpool2d"})
      for (int kind = 0; kind < (std::string(op) == "avgpool2d" ? 1 : 3); ++kind) {
        INFO(op << " x " << pc.x[0] << "x" << pc.x[1] << "x" << pc.x[2] << "x" << pc.x[3] << " kernel " << pc.kernel[0]
                << "x" << pc.kernel[1] << " stride " << pc.stride[0] << "x" << pc.stride[1] << " pad " << pc.pad[0]
                << "x" << pc.pad[1] << " data kind " << kind);
        PoolGraph p = poolGraph(pc, op);
        Rng rng(seed++);
        TensorMap feeds{{"x", values(pc.x, kind, rng)}, {"dy", values(p.g.type(p.dy).shape, 0, rng)}};
        auto want = interpret(p.g, feeds, EvalOptions{}, {p.dx});
        REQUIRE(want);
        auto cp = jit::CompiledProgram::create(p.g, {p.dx}, LowerOptions{});
        if (!cp) FAIL(cp.error().message);
        std::vector<float> first;
        for (int threads : {1, 2}) {
          setThreadCount(threads);
          for (ValueId v : {p.x, p.dy})
            if (float* d = (*cp)->data(v)) {
              const Tensor& t = feeds[p.g.node(v).name];
              for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
            }
          float* dx = (*cp)->data(p.dx);
          const size_t n = static_cast<size_t>((*cp)->size(p.dx));
          std::fill(dx, dx + n, threads == 1 ? -777.0f : std::nanf(""));  // every element must be written
          (*cp)->run();
          INFO("threads " << threads);
          requireClose(dx, (*want)[static_cast<size_t>(p.dx)]);
          if (threads == 1) first.assign(dx, dx + n);
          else CHECK(std::memcmp(first.data(), dx, n * sizeof(float)) == 0);
        }
        setThreadCount(0);
      }
}
