#include "runtime/parallel.h"

#ifdef __linux__
#include <sched.h>
#endif

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace nnc {

namespace {

thread_local bool inWorker = false;

// A job is published with a generation number; each worker takes the chunk
// of its own index, and the caller waits until every chunk reports done.
// Between jobs a worker spins on the generation for a while before it sleeps
// on a condition variable, and the caller spins on the count of pending
// chunks: a train step runs dozens of parallel loops a few microseconds
// apart, and waking a sleeping thread costs tens of microseconds on a VM
// (mnist_mlp's step took 1.7x as long on 2 threads as on 1 with sleeps only).
class Pool {
 public:
  ~Pool() { resize(0); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int threads) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
    stop_ = false;
    // A new worker must not take a job published before it existed.
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i, g = generation_.load()] { work(i, g); });
  }

  void run(int chunks, const std::function<void(int)>& job) {
    std::lock_guard<std::mutex> serial(runMu_);  // one parallel region at a time
    {
      // A seqlock: the generation is odd while the job is written. mu_ also
      // keeps a worker from missing the wake-up between its check and sleep.
      std::lock_guard<std::mutex> lock(mu_);
      generation_.fetch_add(1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);
      job_.store(&job, std::memory_order_relaxed);
      chunks_.store(chunks, std::memory_order_relaxed);
      pending_.store(chunks - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    inWorker = true;
    job(0);
    inWorker = false;
    for (int i = 0; i < kSpins && pending_.load(std::memory_order_acquire) != 0; ++i) pause();
    if (pending_.load(std::memory_order_acquire) != 0) {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
    }
  }

 private:
  // About 200 µs of spinning (a pause is some 10-60 cycles): longer than
  // the gap between two steps' parallel loops when nnc run prepares a
  // batch or nnc bench runs the other program in between.
  static constexpr int kSpins = 1 << 14;

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }

  void work(int index, uint64_t seen) {
    inWorker = true;
    for (;;) {
      for (int i = 0; i < kSpins && generation_.load(std::memory_order_acquire) == seen; ++i) pause();
      if (generation_.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
      }
      if (stop_.load()) return;
      // A consistent view of the job: an even generation that did not move
      // while reading it (a worker without a chunk may read late, when the
      // caller is already publishing the next job).
      const uint64_t g = generation_.load(std::memory_order_acquire);
      if (g & 1) continue;
      const std::function<void(int)>* job = job_.load(std::memory_order_relaxed);
      const int chunks = chunks_.load(std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (generation_.load(std::memory_order_relaxed) != g) continue;
      seen = g;
      if (index >= chunks) continue;
      (*job)(index);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mu_, runMu_;
  std::condition_variable wake_, done_;
  std::atomic<const std::function<void(int)>*> job_{nullptr};
  std::atomic<int> chunks_{0}, pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace

int coresAllowed() {
#ifdef __linux__
  // The cores this process may run on: fewer than the machine's under
  // taskset, a container's cpuset, or mpirun's binding of each rank to one.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
  return machineCores();
}

int machineCores() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

namespace {

int defaultThreads() { return coresAllowed(); }

std::mutex poolMu;
std::atomic<Pool*> current{nullptr};
int startThreads = 0;  // what a new pool starts with (0: every core)

Pool* pool() {
  Pool* p = current.load(std::memory_order_acquire);
  if (p) return p;
  std::lock_guard<std::mutex> lock(poolMu);
  p = current.load(std::memory_order_relaxed);
  if (!p) {
    p = new Pool;  // never destroyed: workers may outlive static destructors' order
    p->resize(startThreads > 0 ? startThreads : defaultThreads());
    current.store(p, std::memory_order_release);
  }
  return p;
}

}  // namespace

int threadCount() { return pool()->size(); }

void setThreadCount(int n) {
  Pool* p = pool();
  std::lock_guard<std::mutex> lock(poolMu);
  const int want = n <= 0 ? defaultThreads() : n;
  if (want != p->size()) p->resize(want);
}

void restartThreadPoolAfterFork(int n) {
  // Only this thread exists now; the old pool's mutexes may have been held
  // by a thread that is gone, so neither is touched again.
  new (&poolMu) std::mutex;
  current.store(nullptr, std::memory_order_relaxed);
  startThreads = n;
}

void parallelFor(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t maxChunks = std::min<int64_t>(threadCount(), (n + grain - 1) / grain);
  if (maxChunks <= 1 || inWorker) {
    fn(0, n);
    return;
  }
  const int chunks = static_cast<int>(maxChunks);
  pool()->run(chunks, [&](int c) {
    const int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
    if (begin < end) fn(begin, end);
  });
}

}  // namespace nnc

extern "C" void nnc_parallel_for(void (*fn)(void*, int64_t, int64_t), void* ctx, int64_t n, int64_t grain) {
  nnc::parallelFor(n, grain, [&](int64_t b, int64_t e) { fn(ctx, b, e); });
}
