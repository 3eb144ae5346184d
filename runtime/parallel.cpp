#include "runtime/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace nnc {

namespace {

thread_local bool inWorker = false;

// Workers sleep on a condition variable between jobs. A job is published with
// a generation number; each worker takes the chunk of its own index, and the
// caller waits until every chunk reports done.
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
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i, g = generation_] { work(i, g); });
  }

  void run(int chunks, const std::function<void(int)>& job) {
    std::lock_guard<std::mutex> serial(runMu_);  // one parallel region at a time
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      chunks_ = chunks;
      pending_ = chunks - 1;
      ++generation_;
    }
    wake_.notify_all();
    inWorker = true;
    job(0);
    inWorker = false;
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void work(int index, uint64_t seen) {
    inWorker = true;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (index >= chunks_) continue;
        job = job_;
      }
      (*job)(index);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mu_, runMu_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int chunks_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

int defaultThreads() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

std::mutex poolMu;
Pool* pool() {
  static Pool* p = [] {
    auto* q = new Pool;  // never destroyed: workers may outlive static destructors' order
    q->resize(defaultThreads());
    return q;
  }();
  return p;
}

}  // namespace

int threadCount() { return pool()->size(); }

void setThreadCount(int n) {
  std::lock_guard<std::mutex> lock(poolMu);
  const int want = n <= 0 ? defaultThreads() : n;
  if (want != pool()->size()) pool()->resize(want);
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
