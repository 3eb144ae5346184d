// A small thread pool for generated code and the GEMM. One pool per process;
// its size is set by `--threads N` (default: every core). A parallel_for
// inside a worker runs serially in that worker, so nested parallel regions
// (a threaded kernel calling the GEMM) never deadlock or oversubscribe.
#pragma once
#include <cstdint>
#include <functional>

namespace nnc {

// Threads the pool uses, the caller included (>= 1).
int threadCount();
// Sets the thread count (clamped to >= 1); 0 means every core this process
// may run on (coresAllowed).
void setThreadCount(int n);
// The cores of this process's CPU affinity (mpirun's binding, taskset, a
// container's cpuset), else the machine's; and the machine's.
int coresAllowed();
int machineCores();
// For a child process right after fork(): the parent's workers do not exist
// in it, so the pool is dropped (leaked, never joined) and the next parallel
// region starts a new one of `n` threads (0: every core).
void restartThreadPoolAfterFork(int n);

// Splits [0, n) into at most threadCount() contiguous chunks of at least
// `grain` iterations and runs fn(begin, end) on each, the caller taking one;
// returns when all are done. The chunks depend only on n, grain and the
// thread count, so a kernel whose iterations are independent gets the same
// result for any thread count.
void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace nnc

extern "C" {
// For generated code: fn(ctx, begin, end) over chunks of [0, n).
void nnc_parallel_for(void (*fn)(void* ctx, int64_t begin, int64_t end), void* ctx, int64_t n, int64_t grain);
}
