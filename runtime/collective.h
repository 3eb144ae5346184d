// The collectives a compiled train step calls when it runs data-parallel
// (docs/distributed.md): start an in-place sum of one bucket of gradients
// across the processes as soon as the bucket's last gradient is written, and
// wait for it just before the first update that reads it. The runtime holds
// no communication library: the host program installs an implementation
// (dist/world.cpp under mpirun); with none installed (one process,
// emit-cpp's standalone code) both calls return at once.
#pragma once
#include <cstdint>

extern "C" {

struct NncCollectives {
  void* ctx;
  // Starts buf[0, n) ← Σ over processes of buf[0, n), bucket `bucket`
  // (0-based, at most one in flight per bucket).
  void (*start)(void* ctx, float* buf, int64_t n, int64_t bucket);
  // Waits for bucket's sum. On failure (a process gone, a timeout) it
  // returns nonzero after recording why; the host reads that after the step
  // (no error may unwind through JIT-compiled frames).
  int (*wait)(void* ctx, int64_t bucket);
};

// Installs c (copied), or with nullptr removes it. Not thread-safe against
// running steps: call between them.
void nnc_set_collectives(const NncCollectives* c);
// What the compiled step calls (compiler/ops/collective_ops.cpp): buf is
// the bucket's contiguous buffer of n floats (its gradients back to back);
// wait's `grad` is one gradient of the bucket, named for the kernel's
// dependence on it (the call itself waits for the whole bucket).
void nnc_allreduce_start(float* buf, int64_t n, int64_t bucket);
void nnc_allreduce_wait(float* grad, int64_t bucket);
// Nonzero once a wait failed since the last call (which clears it).
int nnc_collectives_failed(void);
// Seconds spent inside nnc_allreduce_wait since the last call (which
// resets it): how long the step stood waiting for the sums.
double nnc_collectives_wait_seconds(void);
}
