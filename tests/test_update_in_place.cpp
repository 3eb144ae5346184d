// In-place updates (compiler/lower/update_in_place.cpp): a next value written
// over its param when that is safe, the commit copy dropped; results are
// unchanged (the train-step tests compare every optimizer's steps with the
// interpreter with this on).
#include <catch2/catch.hpp>

#include <functional>

#include "cli/frontend.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/lower/lower.h"
#include "test_util.h"

using namespace nnc;
using loop::Affine;

namespace {

// kernel(p[8], g[8], n[8]) { for i in 0..8 { <body(i)> } }
loop::Kernel kernel(const std::function<std::vector<loop::Stmt>(int)>& body, int64_t extent = 8) {
  loop::Kernel k;
  k.name = "k";
  k.buffers = {{"p", 8}, {"g", 8}, {"n", 8}, {"m", 8}};
  const int i = k.newVar();
  k.body.push_back(loop::loopOver(i, extent, body(i), true));
  return k;
}

loop::ExprP at(int buf, int i, int64_t shift = 0) { return loop::load(buf, Affine::var(i) + shift); }

}  // namespace

TEST_CASE("canUpdateInPlace: one index, each element read before it is written", "[lower][memory]") {
  using loop::Op;
  // n[i] = p[i] - 0.1 * g[i]: SGD.
  CHECK(canUpdateInPlace(kernel([](int i) {
          return std::vector<loop::Stmt>{loop::store(
              2, Affine::var(i), loop::apply(Op::Sub, {at(0, i), loop::apply(Op::Mul, {loop::constant(0.1f), at(1, i)})}))};
        }),
        0, 2));
  // p read after n is written, in the same iteration: it would see n.
  CHECK_FALSE(canUpdateInPlace(kernel([](int i) {
                                 return std::vector<loop::Stmt>{loop::store(2, Affine::var(i), at(1, i)),
                                                                loop::store(3, Affine::var(i), at(0, i))};
                               }),
                               0, 2));
  // ... but before it is fine, and so is reading n after writing it.
  CHECK(canUpdateInPlace(kernel([](int i) {
          return std::vector<loop::Stmt>{loop::store(3, Affine::var(i), at(0, i)), loop::store(2, Affine::var(i), at(1, i)),
                                         loop::store(1, Affine::var(i), at(2, i))};
        }),
        0, 2));
  // A neighbour of p: iteration i would read what iteration i + 1 wrote.
  CHECK_FALSE(canUpdateInPlace(
      kernel([](int i) { return std::vector<loop::Stmt>{loop::store(2, Affine::var(i), at(0, i, 1))}; }, 7), 0, 2));
  // Accumulating into n reads it, that is, reads p.
  CHECK_FALSE(canUpdateInPlace(kernel([](int i) {
                                 return std::vector<loop::Stmt>{
                                     loop::store(2, Affine::var(i), at(0, i), loop::Combine::Add)};
                               }),
                               0, 2));
  // Half the elements: not every element of n is written.
  CHECK_FALSE(canUpdateInPlace(
      kernel([](int i) { return std::vector<loop::Stmt>{loop::store(2, Affine::var(i), at(0, i))}; }, 4), 0, 2));
  // p written.
  CHECK_FALSE(canUpdateInPlace(kernel([](int i) {
                                 return std::vector<loop::Stmt>{loop::store(0, Affine::var(i), at(1, i)),
                                                                loop::store(2, Affine::var(i), at(0, i))};
                               }),
                               0, 2));
}

TEST_CASE("updateInPlace: only where the writer is the param's last reader", "[lower][memory]") {
  using loop::Op;
  // Launch 0 computes n from p; launch 1 reads p afterwards (so p's old
  // value is still needed); launch 2 computes n2 from p2 and nothing reads
  // p2 after it.
  Program prog;
  prog.slots = {{"p", 0, 8, 0}, {"g", 1, 8, 0}, {"n", 2, 8, 0}, {"q", 3, 8, 0}, {"p2", 4, 8, 0}, {"n2", 5, 8, 0}};
  prog.valueSlot = {0, 1, 2, 3, 4, 5};
  auto sgd = kernel([](int i) {
    return std::vector<loop::Stmt>{loop::store(2, Affine::var(i), loop::apply(Op::Sub, {at(0, i), at(1, i)}))};
  });
  loop::Kernel copy = kernel([](int i) { return std::vector<loop::Stmt>{loop::store(3, Affine::var(i), at(0, i))}; });
  prog.kernels = {sgd, copy, sgd};
  prog.launches = {{0, {0, 1, 2, 3}}, {1, {0, 1, 2, 3}}, {2, {4, 1, 5, 3}}};
  prog.commits = {{0, 2}, {4, 5}};
  updateInPlace(prog);
  REQUIRE(prog.commits.size() == 1);
  CHECK(prog.commits[0] == std::pair<int, int>{0, 2});
  // The third launch now writes p2 itself: its kernel has one buffer fewer.
  CHECK(prog.launches[2].slots == std::vector<int>{4, 1, 3});
  CHECK(prog.kernels[2].buffers.size() == 3);
  CHECK(prog.valueSlot[5] == 4);
  std::vector<float> p2(8, 1.0f), g(8, 0.25f), q(8);
  loop::evaluate(prog.kernels[2], {p2.data(), g.data(), q.data()});
  CHECK(p2 == std::vector<float>(8, 0.75f));
}

TEST_CASE("updateInPlace: simple_convnet's Adam step commits nothing and needs 5 MB less", "[lower][memory]") {
  SourceManager sm;
  auto m = cli::compileSource(sm, "simple_convnet.nn", test::readText(test::sourcePath("examples/simple_convnet.nn")));
  REQUIRE(m);
  auto step = buildTrainStep(m->graph, m->train);
  REQUIRE(step);
  const Graph& g = step->grads.graph;
  LowerOptions lo = step->lowering();
  auto inPlace = lowerGraph(g, {g.loss}, lo);
  lo.updateInPlace = false;
  auto copied = lowerGraph(g, {g.loss}, lo);
  REQUIRE(inPlace);
  REQUIRE(copied);
  // W, m and v of 6 params (the step counter t is not a commit here).
  CHECK(copied->commits.size() >= 18);
  CHECK(inPlace->commits.empty());
  // fc1.W's three next values alone are 3 · 432,000 floats.
  CHECK(copied->arenaFloats - inPlace->arenaFloats >= 3 * 432000);
}
