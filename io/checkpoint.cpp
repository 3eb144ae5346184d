#include "io/checkpoint.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "io/file_io.h"
#include "io/json.h"
#include "io/npy.h"

namespace nnc {
namespace {

constexpr const char* kFormat = "nnc-checkpoint";
constexpr int kVersion = 1;

bool isDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// nnc's own names in a checkpoint folder: PREFIX-DIGITS.npz.
bool isPairFile(const std::string& name) {
  for (const char* prefix : {"params-", "optimizer-"}) {
    const std::string p = prefix;
    if (name.size() <= p.size() + 4 || name.compare(0, p.size(), p) != 0 ||
        name.compare(name.size() - 4, 4, ".npz") != 0)
      continue;
    const std::string digits = name.substr(p.size(), name.size() - p.size() - 4);
    if (digits.find_first_not_of("0123456789") == std::string::npos) return true;
  }
  return false;
}

// A temporary file writeFileAtomic leaves when killed: one of nnc's names,
// ".tmp.", a pid. The pid, or 0 when `name` is not one.
pid_t staleTemporary(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos) return 0;
  const std::string base = name.substr(0, at), pid = name.substr(at + 5);
  if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) return 0;
  if (base != "checkpoint.json" && base != "vocab.json" && !isPairFile(base)) return 0;
  return static_cast<pid_t>(std::stol(pid));
}

// What a run killed mid-save leaves in `dir`: temporary files of processes
// no longer running (or of this one), and params/optimizer NPZs of epochs
// other than the current pair. Nothing else is touched.
void removeLeftovers(const std::string& dir, const std::string& paramsFile, const std::string& stateFile) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> doomed;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (isPairFile(name)) {
      if (name != paramsFile && name != stateFile) doomed.push_back(name);
    } else if (pid_t pid = staleTemporary(name)) {
      // Another live process may be writing it right now.
      if (pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH)) doomed.push_back(name);
    }
  }
  ::closedir(d);
  for (const std::string& name : doomed) {
    struct stat st;
    const std::string path = dir + "/" + name;
    if (::lstat(path.c_str(), &st) == 0 && (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))) ::unlink(path.c_str());
  }
}

std::string number(double v) { return std::isfinite(v) ? fmt::format("{}", v) : "null"; }

std::string toJson(const Checkpoint& c, const std::string& paramsFile, const std::string& stateFile) {
  std::string s = "{\n";
  s += fmt::format("  \"format\": {},\n  \"version\": {},\n", jsonQuote(kFormat), kVersion);
  s += fmt::format("  \"model\": {},\n  \"epoch\": {},\n  \"step\": {},\n", jsonQuote(c.model), c.epoch, c.step);
  // As a string: a JSON number is a double to most readers, and seeds are 64 bits.
  s += fmt::format("  \"seed\": \"{}\",\n  \"optimizer\": {},\n", c.seed, jsonQuote(c.optimizer));
  s += fmt::format("  \"params\": {},\n  \"optimizer_state\": {},\n", jsonQuote(paramsFile), jsonQuote(stateFile));
  s += "  \"rng\": {";
  bool first = true;
  for (const auto& [name, text] : c.rng) {
    s += fmt::format("{}{}: {}", first ? "" : ", ", jsonQuote(name), jsonQuote(text));
    first = false;
  }
  s += "},\n  \"metrics\": [";
  for (size_t i = 0; i < c.metrics.size(); ++i) {
    const MetricRow& r = c.metrics[i];
    s += fmt::format("{}\n    [{}, {}, {}, {}, {}, {}]", i ? "," : "", r.epoch, r.step, jsonQuote(r.split),
                     number(r.loss), number(r.accuracy), number(r.samplesPerSec));
  }
  s += c.metrics.empty() ? "]\n}\n" : "\n  ]\n}\n";
  return s;
}

std::map<std::string, Tensor> asF32(const std::map<std::string, Tensor>& m) {
  std::map<std::string, Tensor> out = m;
  for (auto& [_, t] : out) t.type.dtype = DType::F32;
  return out;
}

}  // namespace

Status writeCheckpoint(const std::string& dir, const Checkpoint& c) {
  if (!isDir(dir) && ::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
    return error("cannot create checkpoint folder '{}': {}", dir, std::strerror(errno));
  const std::string paramsFile = fmt::format("params-{:06}.npz", c.epoch);
  const std::string stateFile = fmt::format("optimizer-{:06}.npz", c.epoch);
  NNC_CHECK(writeNpz(dir + "/" + paramsFile, asF32(c.params)));
  NNC_CHECK(writeNpz(dir + "/" + stateFile, asF32(c.state)));
  // Before checkpoint.json, so that a checkpoint of a text model always has
  // its vocabulary; after it, a stale one (--overwrite of a text model's
  // checkpoint by another model's) is removed.
  const std::string vocab = dir + "/vocab.json";
  if (!c.vocab.empty()) NNC_CHECK(writeFileAtomic(vocab, c.vocab));
  NNC_CHECK(writeFileAtomic(dir + "/checkpoint.json", toJson(c, paramsFile, stateFile)));
  if (struct stat st; c.vocab.empty() && ::lstat(vocab.c_str(), &st) == 0 && S_ISREG(st.st_mode))
    ::unlink(vocab.c_str());
  // The previous pair, and whatever a run killed mid-save left behind.
  removeLeftovers(dir, paramsFile, stateFile);
  return ok();
}

bool holdsCheckpoint(const std::string& dir) {
  struct stat st;
  return ::lstat((dir + "/checkpoint.json").c_str(), &st) == 0;
}

Expected<CheckpointMeta> parseCheckpointJson(std::string_view text, const std::string& meta) {
  NNC_TRY(Json j, parseJson(text, meta));
  auto field = [&](const char* k, Json::Kind kind) -> Expected<const Json*> {
    const Json* f = j.find(k);
    if (!f || f->kind != kind) return error("{}: missing or malformed field '{}'", meta, k);
    return f;
  };
  NNC_TRY(const Json* format, field("format", Json::Kind::String));
  NNC_TRY(const Json* version, field("version", Json::Kind::Number));
  if (format->text != kFormat || version->text != std::to_string(kVersion))
    return error("{}: not an nnc checkpoint of version {} (format '{}', version {})", meta, kVersion, format->text,
                 version->text);
  Checkpoint c;
  // Integers within [lo, hi], as a double holds them exactly (2^53).
  constexpr double kMaxInt = 9007199254740992.0;
  auto whole = [&](const Json& v, double lo, const std::string& what) -> Expected<int64_t> {
    if (v.kind != Json::Kind::Number || !std::isfinite(v.number) || std::floor(v.number) != v.number ||
        v.number < lo || v.number > kMaxInt) {
      const std::string is = v.kind == Json::Kind::Number   ? v.text
                             : v.kind == Json::Kind::String ? jsonQuote(v.text)
                                                            : "not a number";
      return error("{}: {} is {}, not a whole number of at least {}", meta, what, is, lo);
    }
    return static_cast<int64_t>(v.number);
  };
  // The NPZs' names: plain names of files in this folder, nothing that
  // leads out of it.
  auto plainName = [&](const char* k) -> Expected<std::string> {
    NNC_TRY(const Json* f, field(k, Json::Kind::String));
    const std::string& n = f->text;
    if (n.empty() || n == "." || n == ".." || n.find('/') != std::string::npos || n.find('\\') != std::string::npos ||
        n.find('\0') != std::string::npos)
      return error("{}: field '{}' is {}, not the name of a file in the checkpoint folder", meta, k, jsonQuote(n));
    return n;
  };
  auto nonEmpty = [&](const char* k) -> Expected<std::string> {
    NNC_TRY(const Json* f, field(k, Json::Kind::String));
    if (f->text.empty()) return error("{}: field '{}' is empty", meta, k);
    return f->text;
  };
  NNC_TRY(c.model, nonEmpty("model"));
  NNC_TRY(const Json* epoch, field("epoch", Json::Kind::Number));
  NNC_TRY(const Json* step, field("step", Json::Kind::Number));
  NNC_TRY(const Json* seed, field("seed", Json::Kind::String));
  NNC_TRY(c.optimizer, nonEmpty("optimizer"));
  NNC_TRY(const std::string paramsFile, plainName("params"));
  NNC_TRY(const std::string stateFile, plainName("optimizer_state"));
  NNC_TRY(const Json* rng, field("rng", Json::Kind::Object));
  NNC_TRY(const Json* metrics, field("metrics", Json::Kind::Array));
  // A checkpoint is written after an epoch, and every epoch takes a step.
  NNC_TRY(c.epoch, whole(*epoch, 1, "field 'epoch' (the epochs completed)"));
  NNC_TRY(c.step, whole(*step, 0, "field 'step' (the optimizer steps taken)"));
  if (c.step < c.epoch)
    return error("{}: field 'step' is {}, fewer than the {} epochs completed (each takes at least one step)", meta,
                 c.step, c.epoch);
  // The seed is a string of decimal digits: 64 bits do not fit a double.
  {
    const std::string& t = seed->text;
    errno = 0;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(t.c_str(), &end, 10);
    if (t.empty() || t.size() > 20 || t.find_first_not_of("0123456789") != std::string::npos || errno == ERANGE ||
        end != t.c_str() + t.size())
      return error("{}: field 'seed' is {}, not a whole number from 0 to 18446744073709551615 in a string", meta,
                   jsonQuote(t));
    c.seed = v;
  }
  for (const auto& [name, v] : rng->fields) {
    if (v.kind != Json::Kind::String) return error("{}: rng '{}' is not a string", meta, name);
    c.rng[name] = v.text;
  }
  for (size_t i = 0; i < metrics->items.size(); ++i) {
    const Json& row = metrics->items[i];
    if (row.kind != Json::Kind::Array || row.items.size() != 6 || row.items[2].kind != Json::Kind::String)
      return error("{}: metrics row {} is not [epoch, step, split, loss, accuracy, samples_per_sec]", meta, i + 1);
    const std::string where = fmt::format("metrics row {}", i + 1);
    NNC_TRY(int64_t e, whole(row.items[0], 1, where + "'s epoch"));
    NNC_TRY(int64_t st, whole(row.items[1], 0, where + "'s step"));
    if (e > c.epoch || st > c.step)
      return error("{}: {} (epoch {}, step {}) is beyond the checkpoint's epoch {}, step {}", meta, where, e, st,
                   c.epoch, c.step);
    double v[3];
    static const char* const kNames[] = {"loss", "accuracy", "samples_per_sec"};
    for (int k = 0; k < 3; ++k) {
      const Json& x = row.items[static_cast<size_t>(3 + k)];
      if (x.kind != Json::Kind::Number && x.kind != Json::Kind::Null)
        return error("{}: {}'s {} is neither a number nor null", meta, where, kNames[k]);
      v[k] = x.kind == Json::Kind::Number ? x.number : kNoMetric;
    }
    c.metrics.push_back({e, st, row.items[2].text, v[0], v[1], v[2]});
  }
  return CheckpointMeta{std::move(c), paramsFile, stateFile};
}

Expected<Checkpoint> readCheckpoint(const std::string& dir) {
  if (!isDir(dir)) return error("checkpoint '{}' is not a folder (nnc run --save DIR writes one)", dir);
  const std::string meta = dir + "/checkpoint.json";
  // A checkpoint.json is a few hundred bytes; 16 MiB is far beyond any.
  auto text = readFile(meta, uint64_t{16} << 20, "a checkpoint's checkpoint.json");
  if (!text) return error("checkpoint '{}' has no checkpoint.json: {}", dir, text.error().message);
  NNC_TRY(CheckpointMeta m, parseCheckpointJson(*text, meta));
  Checkpoint c = std::move(m.meta);
  NNC_TRY(c.params, readNpz(dir + "/" + m.paramsFile));
  NNC_TRY(c.state, readNpz(dir + "/" + m.stateFile));
  struct stat st;
  if (::lstat((dir + "/vocab.json").c_str(), &st) == 0) {
    // A vocabulary lists at most every code point: a few MB.
    NNC_TRY(c.vocab, readFile(dir + "/vocab.json", uint64_t{64} << 20, "a checkpoint's vocab.json"));
  }
  return c;
}

Expected<std::map<std::string, Tensor>> readWeights(const std::string& path) {
  if (isDir(path)) {
    NNC_TRY(Checkpoint c, readCheckpoint(path));
    return std::move(c.params);
  }
  return readNpz(path);
}

}  // namespace nnc
