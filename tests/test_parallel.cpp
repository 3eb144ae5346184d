// The thread pool (runtime/parallel.h): every iteration runs exactly once,
// back-to-back regions (the workers spinning between them) and regions with
// fewer chunks than threads (workers that sit one out) included, and nested
// regions run serially in the worker.
#include <catch2/catch.hpp>

#include <atomic>
#include <vector>

#include "runtime/parallel.h"

namespace {

struct RestoreThreads {
  int threads = nnc::threadCount();
  ~RestoreThreads() { nnc::setThreadCount(threads); }
};

}  // namespace

TEST_CASE("parallelFor runs each iteration once, region after region", "[parallel]") {
  RestoreThreads restore;
  for (int threads : {1, 2, 3, 4}) {
    nnc::setThreadCount(threads);
    REQUIRE(nnc::threadCount() == threads);
    std::vector<std::atomic<int>> hits(1000);
    int64_t expected = 0;
    // Sizes and grains that give 1 to `threads` chunks, 3000 regions in a row.
    for (int r = 0; r < 3000; ++r) {
      const int64_t n = 1 + r % 997, grain = 1 + (r * 37) % 400;
      nnc::parallelFor(n, grain, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1, std::memory_order_relaxed);
      });
      expected += n;
    }
    int64_t total = 0;
    for (auto& h : hits) total += h.load();
    INFO(threads << " threads");
    CHECK(total == expected);
    // Index i is in every region with n > i: count them.
    for (int64_t i : {0, 1, 500, 996}) {
      int64_t want = 0;
      for (int r = 0; r < 3000; ++r) want += (1 + r % 997) > i;
      CHECK(hits[static_cast<size_t>(i)].load() == want);
    }
  }
}

TEST_CASE("parallelFor inside a worker runs serially there", "[parallel]") {
  RestoreThreads restore;
  nnc::setThreadCount(2);
  std::atomic<int64_t> sum{0};
  nnc::parallelFor(8, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      nnc::parallelFor(100, 1, [&](int64_t b2, int64_t e2) {
        for (int64_t j = b2; j < e2; ++j) sum.fetch_add(i * 100 + j);
      });
  });
  CHECK(sum.load() == 8 * 4950 + 100 * 28 * 100);  // Σ_j j per i, and Σ_i i·100 per j
}
