#include "cli/run_parallel.h"

#include <cmath>
#include <cstring>
#include <streambuf>

#include "base/hash.h"
#include "cli/commands.h"

namespace nnc::cli {

Shard shardOf(int64_t batch, const dist::World& w) {
  Shard s;
  s.batch = batch, s.rank = w.rank, s.ranks = w.size;
  const int64_t n = w.size, r = w.rank, each = batch / n, extra = batch % n;
  s.rows = each + (r < extra ? 1 : 0);
  s.first = r * each + std::min(r, extra);
  return s;
}

Expected<int64_t> bucketBytesOption(const Options& o) {
  if (!o.flag("bucket-mb")) return int64_t{25} << 20;
  const std::string v = o.value("bucket-mb");
  char* end = nullptr;
  const double mb = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(mb > 0) || !(mb <= 1 << 20))
    return error("--bucket-mb takes the all-reduce buckets' size in MB, a positive number up to 1048576, got '{}'", v);
  return std::max<int64_t>(4, static_cast<int64_t>(mb * (1 << 20)));
}

Expected<std::optional<DataParallel>> ranksOption(const Options& o) {
  if (!o.flag("ranks")) {
    if (o.flag("bucket-mb")) return error("--bucket-mb sizes a data-parallel step's buckets: give --ranks N too");
    return std::optional<DataParallel>();
  }
  NNC_TRY(const int64_t n, countOption(o, "ranks", 1, true));
  if (n > 1 << 20) return error("--ranks {}: at most 1048576 processes", n);
  if (n == 1) return std::optional<DataParallel>();
  NNC_TRY(const int64_t bytes, bucketBytesOption(o));
  return std::optional<DataParallel>(DataParallel{static_cast<int>(n), 1.0 / static_cast<double>(n), bytes});
}

namespace {

class NullBuf : public std::streambuf {
 protected:
  int overflow(int c) override { return traits_type::not_eof(c); }
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

// Each line written through it starts with `prefix`, and goes out whole,
// in one write: the ranks' lines arrive at mpirun's terminal interleaved,
// never mixed within a line.
class PrefixBuf : public std::streambuf {
 public:
  PrefixBuf(std::streambuf* to, std::string prefix) : to_(to), prefix_(std::move(prefix)), line_(prefix_) {}
  ~PrefixBuf() override { sync(); }

 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    line_ += static_cast<char>(c);
    if (c == '\n') flushLine();
    return c;
  }
  int sync() override {
    if (line_.size() > prefix_.size()) flushLine();
    return to_->pubsync();
  }

 private:
  void flushLine() {
    to_->sputn(line_.data(), static_cast<std::streamsize>(line_.size()));
    to_->pubsync();
    line_ = prefix_;
  }

  std::streambuf* to_;
  std::string prefix_, line_;
};

}  // namespace

RankStreams::RankStreams(const dist::World& w, std::ostream& out, std::ostream& err) : out_(&out), err_(&err) {
  if (!w.distributed()) return;
  if (w.rank != 0) {
    nullBuf_ = std::make_unique<NullBuf>();
    nullOut_ = std::make_unique<std::ostream>(nullBuf_.get());
    out_ = nullOut_.get();
  }
  prefixBuf_ = std::make_unique<PrefixBuf>(err.rdbuf(), fmt::format("rank {}: ", w.rank));
  prefixErr_ = std::make_unique<std::ostream>(prefixBuf_.get());
  err_ = prefixErr_.get();
}

RankStreams::~RankStreams() {
  if (prefixErr_) prefixErr_->flush();
}

uint64_t rankSeed(uint64_t seed, int rank) {
  if (rank == 0) return seed;
  uint64_t z = seed ^ (0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(rank));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

namespace {

template <class T>
uint64_t hashOf(const std::vector<T>& v, uint64_t h) {
  return fnv1a(std::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T)), h);
}

uint64_t hashOf(const Dataset& d, uint64_t h) {
  h = fnv1a(fmt::format("{} {} {} {} {} {}|", d.count, d.channels, d.rows, d.cols, d.targetSize, d.classes), h);
  h = hashOf(d.images, h);
  h = hashOf(d.labels, h);
  return hashOf(d.targets, h);
}

}  // namespace

uint64_t dataHash(const DataSplits& d) {
  return hashOf(d.vocab, hashOf(d.test, hashOf(d.train, kFnvOffset)));
}

uint64_t paramsHash(const TensorMap& params) {
  uint64_t h = kFnvOffset;
  for (const auto& [name, t] : params) {
    h = fnv1a(name + "|" + shapeString(t.type.shape), h);
    h = hashOf(t.data, h);
  }
  return h;
}

Status sumScores(Score& s, const DataFit& fit) {
  if (!dist::world().distributed()) return ok();
  std::vector<double> v = {s.lossSum, s.metricSum, static_cast<double>(s.samples), static_cast<double>(s.seen)};
  for (int64_t x : s.right) v.push_back(static_cast<double>(x));
  for (int64_t x : s.total) v.push_back(static_cast<double>(x));
  NNC_CHECK(dist::sumAcross(v));
  s.lossSum = v[0], s.metricSum = v[1];
  s.samples = static_cast<int64_t>(v[2]), s.seen = static_cast<int64_t>(v[3]);
  const size_t k = s.right.size();
  for (size_t i = 0; i < k; ++i) {
    s.right[i] = static_cast<int64_t>(v[4 + i]);
    s.total[i] = static_cast<int64_t>(v[4 + k + i]);
  }
  finishScore(s, fit);
  return ok();
}

Status averageAcross(Stepper& s, const std::vector<std::string>& names, double share) {
  if (!dist::world().distributed() || names.empty()) return ok();
  TensorMap all = s.params(), some;
  std::vector<double> v;
  for (const std::string& n : names)
    for (double x : all.at(n).data) v.push_back(x * share);
  NNC_CHECK(dist::sumAcross(v));
  size_t at = 0;
  for (const std::string& n : names) {
    Tensor t = all.at(n);
    for (double& x : t.data) x = v[at++];
    some[n] = std::move(t);
  }
  s.set(some);
  return ok();
}

}  // namespace nnc::cli
