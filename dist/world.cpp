#include "dist/world.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>

#include "runtime/collective.h"

#ifdef NNC_HAVE_MPI
#include <mpi.h>
#endif

namespace nnc::dist {

namespace {

World theWorld;
bool started = false;

}  // namespace

bool launchedByMpirun() { return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr; }

const World& world() { return theWorld; }

#ifndef NNC_HAVE_MPI

Expected<World> start(double) {
  if (launchedByMpirun())
    return error("this nnc was built without MPI (libopenmpi-dev was missing at configure time): it cannot "
                 "train across the processes mpirun started; run it without mpirun, or rebuild");
  started = true;
  return theWorld;
}
void stop() {}
Status checkSame(std::string_view, uint64_t) { return ok(); }
Status sumAcross(std::vector<double>&) { return ok(); }
std::string lastFailure() { return ""; }
void abortAll(int code) { std::exit(code); }

#else

namespace {

// How often the communication thread drives the sums in flight while the
// step computes (NNC_POLL_US overrides it, for measuring).
const int kPollMicros = std::getenv("NNC_POLL_US") ? std::atoi(std::getenv("NNC_POLL_US")) : 200;

// Why bucket `bucket`'s sum failed, naming this rank.
std::string bucketFailure(int64_t bucket, const std::string& why) {
  return fmt::format("rank {}: the sum of gradient bucket {} {}", theWorld.rank, bucket, why);
}

// The communication thread: buckets are started (MPI_Iallreduce, in the
// order the step starts them, the same on every rank) and driven to
// completion here, so the sums progress while the step computes. All MPI
// calls of the process are made under `mu`, one at a time
// (MPI_THREAD_SERIALIZED); between steps the thread makes none.
class Collectives {
 public:
  explicit Collectives(double timeout) : timeout_(timeout), thread_([this] { loop(); }) {}
  ~Collectives() {
    {
      std::lock_guard<std::mutex> l(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void start(float* buf, int64_t n, int64_t bucket) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (static_cast<size_t>(bucket) >= buckets_.size()) buckets_.resize(static_cast<size_t>(bucket) + 1);
      buckets_[static_cast<size_t>(bucket)] = Bucket{buf, n, MPI_REQUEST_NULL, Bucket::Queued};
      queue_.push_back(bucket);
    }
    cv_.notify_all();
  }

  // The step's thread has nothing else to do until the bucket is summed, so
  // it drives MPI itself (busy, under the lock) rather than sleeping while
  // the communication thread polls: a sum's last rounds then take
  // microseconds, not a poll interval each.
  int wait(int64_t bucket) {
    std::unique_lock<std::mutex> l(mu_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_);
    issueQueued();
    Bucket& b = buckets_.at(static_cast<size_t>(bucket));
    while (b.state == Bucket::InFlight) {
      int done = 0;
      if (MPI_Test(&b.req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
        b.state = Bucket::Failed;
        failure_ = bucketFailure(bucket, "failed in MPI");
        break;
      }
      if (done) {
        b.state = Bucket::Done;
        --inFlight_;
      } else if (std::chrono::steady_clock::now() > deadline) {
        failure_ = bucketFailure(bucket, fmt::format("did not finish within {} s: another rank has stopped or hangs",
                                                     static_cast<int>(timeout_)));
        return 1;
      }
    }
    return b.state == Bucket::Done ? 0 : 1;
  }

  // Runs f with MPI to itself (between steps).
  template <class F>
  auto exclusive(F f) {
    std::lock_guard<std::mutex> l(mu_);
    return f();
  }

  std::string failure() {
    std::lock_guard<std::mutex> l(mu_);
    return failure_;
  }

 private:
  struct Bucket {
    float* buf = nullptr;
    int64_t n = 0;
    MPI_Request req = MPI_REQUEST_NULL;
    enum State { Idle, Queued, InFlight, Done, Failed } state = Idle;
  };

  void loop() {
    std::unique_lock<std::mutex> l(mu_);
    while (true) {
      cv_.wait(l, [&] { return quit_ || !queue_.empty() || inFlight_ > 0; });
      if (quit_) return;
      issueQueued();
      for (Bucket& b : buckets_) {
        if (b.state != Bucket::InFlight) continue;
        int done = 0;
        MPI_Test(&b.req, &done, MPI_STATUS_IGNORE);
        if (done) {
          b.state = Bucket::Done;
          --inFlight_;
          cv_.notify_all();
        }
      }
      if (inFlight_ > 0) {
        // Let the step's thread in (waits, new buckets) between polls.
        l.unlock();
        std::this_thread::sleep_for(std::chrono::microseconds(kPollMicros));
        l.lock();
      }
    }
  }

  // Under mu_: every bucket started so far, in order, goes to MPI.
  void issueQueued() {
    while (!queue_.empty()) {
      const int64_t id = queue_.front();
      queue_.pop_front();
      Bucket& b = buckets_[static_cast<size_t>(id)];
      const int rc = MPI_Iallreduce(MPI_IN_PLACE, b.buf, static_cast<int>(b.n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                                    &b.req);
      if (rc != MPI_SUCCESS) {
        b.state = Bucket::Failed;
        failure_ = bucketFailure(id, "could not start (MPI_Iallreduce failed)");
        continue;
      }
      b.state = Bucket::InFlight;
      ++inFlight_;
    }
  }

  double timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Bucket> buckets_;
  std::deque<int64_t> queue_;
  int inFlight_ = 0;
  bool quit_ = false;
  std::string failure_;
  std::thread thread_;
};

Collectives* comm = nullptr;

}  // namespace

Expected<World> start(double timeoutSeconds) {
  if (started) return theWorld;
  started = true;
  if (!launchedByMpirun()) return theWorld;
  // MPI_Iallreduce on the ring schedule unless the user chose another: a
  // fixed reduction order (docs/distributed.md, determinism), and here
  // 1.5x faster than libnbc's default for two processes (binomial) on
  // 1.7 MB (208 against 314 µs).
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0);
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
    return error("MPI_Init_thread failed: the processes mpirun started could not connect");
  if (provided < MPI_THREAD_SERIALIZED)
    return error("this MPI gives thread level {}, and nnc needs MPI_THREAD_SERIALIZED ({})", provided,
                 int(MPI_THREAD_SERIALIZED));
  MPI_Comm_rank(MPI_COMM_WORLD, &theWorld.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &theWorld.size);
  if (const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE")) theWorld.localSize = std::max(1, std::atoi(local));
  comm = new Collectives(timeoutSeconds);
  const NncCollectives hooks{comm, [](void* c, float* buf, int64_t n, int64_t bucket) {
                               static_cast<Collectives*>(c)->start(buf, n, bucket);
                             },
                             [](void* c, int64_t bucket) { return static_cast<Collectives*>(c)->wait(bucket); }};
  nnc_set_collectives(&hooks);
  return theWorld;
}

void stop() {
  if (!comm) return;
  nnc_set_collectives(nullptr);
  delete comm;
  comm = nullptr;
  MPI_Finalize();
}

Status checkSame(std::string_view what, uint64_t value) {
  if (!comm) return ok();
  std::vector<uint64_t> all(static_cast<size_t>(theWorld.size));
  comm->exclusive([&] {
    MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    return 0;
  });
  std::string differ;
  for (int r = 0; r < theWorld.size; ++r)
    if (all[static_cast<size_t>(r)] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (differ.empty()) return ok();
  std::string values;
  for (int r = 0; r < theWorld.size; ++r) values += fmt::format("{}rank {}: {:016x}", r ? ", " : "", r, all[static_cast<size_t>(r)]);
  return error("the ranks disagree on {}: rank(s) {} differ from rank 0 ({}); every rank must run the same model "
               "on the same data",
               what, differ, values);
}

Status sumAcross(std::vector<double>& v) {
  if (!comm) return ok();
  comm->exclusive([&] {
    return MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  });
  return ok();
}

std::string lastFailure() { return comm ? comm->failure() : ""; }

void abortAll(int code) {
  if (comm) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

#endif

}  // namespace nnc::dist
