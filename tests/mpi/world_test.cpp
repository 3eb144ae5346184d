// Run under mpirun by tests/mpi/run.sh (ctest "mpi: ..."): the collectives
// the compiled train step calls, as dist/world.cpp implements them.
//   world_test sums N     buckets summed across N ranks, exactly and bit-identically twice
//   world_test mismatch   checkSame refuses a value rank 1 alone changed, naming rank 1
//   world_test kill       rank 1 dies (SIGKILL) while rank 0 waits for a bucket
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "dist/world.h"
#include "runtime/collective.h"

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::printf("rank %d: FAILED: %s\n", nnc::dist::world().rank, what.c_str());
    ++failures;
  }
}

// Buckets of 1, 1000 and 100,000 floats; rank r holds (r + 1) · (i % 7) in
// bucket 0 and 2 (integers: the sum is exact whatever the order) and
// 0.1 · (r + 1) + 1e-3 · i in bucket 1 (rounded: the sum's bits depend on
// the order, which must be the same each time).
void sums(int expected) {
  const nnc::dist::World& w = nnc::dist::world();
  expect(w.size == expected, "world size " + std::to_string(w.size));
  const std::vector<int64_t> sizes{1, 1000, 100000};
  std::vector<std::vector<float>> first;
  for (int round = 0; round < 2; ++round) {
    std::vector<std::vector<float>> b(sizes.size());
    for (size_t k = 0; k < sizes.size(); ++k) {
      b[k].resize(static_cast<size_t>(sizes[k]));
      for (int64_t i = 0; i < sizes[k]; ++i)
        b[k][static_cast<size_t>(i)] = k == 1 ? 0.1f * float(w.rank + 1) + 1e-3f * float(i) : float((w.rank + 1) * (i % 7));
    }
    // Started in order, waited in reverse: each sum is its own.
    for (size_t k = 0; k < sizes.size(); ++k) nnc_allreduce_start(b[k].data(), sizes[k], int64_t(k));
    for (size_t k = sizes.size(); k-- > 0;) nnc_allreduce_wait(b[k].data(), int64_t(k));
    expect(nnc_collectives_failed() == 0, "a wait failed: " + nnc::dist::lastFailure());
    const float ranks = float(w.size * (w.size + 1) / 2);
    for (size_t k : {size_t(0), size_t(2)})
      for (int64_t i = 0; i < sizes[k]; ++i)
        if (b[k][static_cast<size_t>(i)] != ranks * float(i % 7)) {
          expect(false, "bucket " + std::to_string(k) + " element " + std::to_string(i));
          break;
        }
    if (round == 0) first = b;
    else expect(std::memcmp(first[1].data(), b[1].data(), sizeof(float) * first[1].size()) == 0,
                "the rounded bucket's bits differ between two sums of the same values");
  }
  std::vector<double> v{double(w.rank), 1.0};
  expect(nnc::dist::sumAcross(v).ok() && v[1] == w.size && v[0] == w.size * (w.size - 1) / 2.0, "sumAcross");
  expect(nnc::dist::checkSame("the model", 42).ok(), "checkSame on equal values");
}

void mismatch() {
  const nnc::dist::World& w = nnc::dist::world();
  const nnc::Status s = nnc::dist::checkSame("the compiled graph's hash", w.rank == 1 ? 7 : 42);
  expect(!s.ok(), "checkSame accepted different values");
  if (!s.ok() && w.rank == 0) std::printf("%s\n", s.error().message.c_str());
}

void kill() {
  const nnc::dist::World& w = nnc::dist::world();
  std::vector<float> b(1000, 1.0f);
  if (w.rank == 1) raise(SIGKILL);
  nnc_allreduce_start(b.data(), 1000, 0);
  nnc_allreduce_wait(b.data(), 0);
  if (nnc_collectives_failed()) {
    std::printf("%s\n", nnc::dist::lastFailure().c_str());
    nnc::dist::abortAll(3);
  }
  expect(false, "the sum finished although rank 1 was killed");
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  auto w = nnc::dist::start(mode == "kill" ? 5 : 60);
  if (!w) {
    std::printf("%s\n", w.error().message.c_str());
    return 2;
  }
  if (mode == "sums") sums(argc > 2 ? std::stoi(argv[2]) : 2);
  else if (mode == "mismatch") mismatch();
  else if (mode == "kill") kill();
  else expect(false, "unknown mode " + mode);
  nnc::dist::stop();
  if (failures == 0) std::printf("rank %d: ok\n", w->rank);
  return failures == 0 ? 0 : 1;
}
