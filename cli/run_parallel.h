// Data-parallel `nnc run` under mpirun (docs/distributed.md): which rows of
// each global batch a rank takes, what the ranks check they agree on, and
// what they sum between steps (losses, evaluation counts, batchnorm's
// running statistics). One process (no mpirun): a world of one, where
// every function here is the identity.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/run_data.h"
#include "cli/run_stepper.h"
#include "compiler/autodiff/train_step.h"
#include "dist/world.h"

namespace nnc::cli {

// Rank r of n takes rows [first, first + rows) of every global batch of
// `batch`: batch / n rows, and the first batch % n ranks one more.
struct Shard {
  int64_t batch = 0, first = 0, rows = 0;
  int rank = 0, ranks = 1;
  // Its share of the global batch's mean: the loss scale of its step.
  double share() const { return static_cast<double>(rows) / static_cast<double>(batch); }
};
Shard shardOf(int64_t batch, const dist::World& w);

// --bucket-mb: the all-reduce buckets' size cap (default 25 MB, as DDP's).
Expected<int64_t> bucketBytesOption(const Options& o);

// --ranks N (nnc graph, nnc emit-llvm): the train step as one of N
// data-parallel processes builds it (its reductions, --bucket-mb's
// buckets), at the batch the model is given; none without --ranks or N = 1.
Expected<std::optional<DataParallel>> ranksOption(const Options& o);

// Rank 0's output as given; the other ranks' dropped. Every rank's error
// lines start "rank r: " when there are several.
class RankStreams {
 public:
  RankStreams(const dist::World& w, std::ostream& out, std::ostream& err);
  ~RankStreams();
  std::ostream& out() { return *out_; }
  std::ostream& err() { return *err_; }

 private:
  std::unique_ptr<std::streambuf> nullBuf_, prefixBuf_;
  std::unique_ptr<std::ostream> nullOut_, prefixErr_;
  std::ostream *out_, *err_;
};

// A rank's own stream from a shared seed (dropout masks, augmentation):
// rank 0 keeps the seed, so one process is rank 0 of one.
uint64_t rankSeed(uint64_t seed, int rank);

// Hashes the ranks compare at start-up (dist::checkSame).
uint64_t dataHash(const DataSplits& d);
uint64_t paramsHash(const TensorMap& params);

// Score `s` (this rank's part of a split) summed with every rank's.
Status sumScores(Score& s, const DataFit& fit);
// The values `names` of the stepper (batchnorm's running statistics, which
// each rank updates from its own rows) replaced by their mean over the
// ranks, each weighted by its share.
Status averageAcross(Stepper& s, const std::vector<std::string>& names, double share);

}  // namespace nnc::cli
