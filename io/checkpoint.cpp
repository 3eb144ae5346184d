#include "io/checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <utility>

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

// A JSON number that converts to int64_t exactly: epochs and steps. (Casting
// 1e300 or NaN to an integer is undefined behaviour, found by fuzz_checkpoint.)
bool isCount(const Json& v) {
  return v.kind == Json::Kind::Number && v.number >= 0 && v.number <= 9007199254740992.0 &&
         v.number == std::floor(v.number);
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
  // What the current checkpoint.json names, removed once it no longer does.
  std::vector<std::string> old;
  if (auto text = readFile(dir + "/checkpoint.json", uint64_t{16} << 20, "a checkpoint's checkpoint.json"))
    if (auto j = parseJson(*text, dir))
      for (const char* k : {"params", "optimizer_state"})
        if (const Json* f = j->find(k); f && f->kind == Json::Kind::String) old.push_back(f->text);
  const std::string paramsFile = fmt::format("params-{:06}.npz", c.epoch);
  const std::string stateFile = fmt::format("optimizer-{:06}.npz", c.epoch);
  NNC_CHECK(writeNpz(dir + "/" + paramsFile, asF32(c.params)));
  NNC_CHECK(writeNpz(dir + "/" + stateFile, asF32(c.state)));
  NNC_CHECK(writeFileAtomic(dir + "/checkpoint.json", toJson(c, paramsFile, stateFile)));
  for (const std::string& f : old)
    if (f != paramsFile && f != stateFile && f.find('/') == std::string::npos) ::unlink((dir + "/" + f).c_str());
  return ok();
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
  if (format->text != kFormat || version->number != kVersion)
    return error("{}: not an nnc checkpoint of version {} (format '{}', version {})", meta, kVersion, format->text,
                 version->text);
  CheckpointMeta m;
  Checkpoint& c = m.meta;
  NNC_TRY(const Json* model, field("model", Json::Kind::String));
  NNC_TRY(const Json* epoch, field("epoch", Json::Kind::Number));
  NNC_TRY(const Json* step, field("step", Json::Kind::Number));
  NNC_TRY(const Json* seed, field("seed", Json::Kind::String));
  NNC_TRY(const Json* opt, field("optimizer", Json::Kind::String));
  NNC_TRY(const Json* params, field("params", Json::Kind::String));
  NNC_TRY(const Json* state, field("optimizer_state", Json::Kind::String));
  NNC_TRY(const Json* rng, field("rng", Json::Kind::Object));
  NNC_TRY(const Json* metrics, field("metrics", Json::Kind::Array));
  for (const auto& [k, v] : {std::pair{"epoch", epoch}, std::pair{"step", step}})
    if (!isCount(*v)) return error("{}: field '{}' is not a whole number from 0 to 2^53 (it is {})", meta, k, v->text);
  c.model = model->text;
  c.epoch = static_cast<int64_t>(epoch->number);
  c.step = static_cast<int64_t>(step->number);
  c.seed = std::strtoull(seed->text.c_str(), nullptr, 10);
  c.optimizer = opt->text;
  for (const auto& [name, v] : rng->fields) {
    if (v.kind != Json::Kind::String) return error("{}: rng '{}' is not a string", meta, name);
    c.rng[name] = v.text;
  }
  for (const Json& row : metrics->items) {
    auto num = [](const Json& v) { return v.kind == Json::Kind::Number ? v.number : kNoMetric; };
    if (row.kind != Json::Kind::Array || row.items.size() != 6 || !isCount(row.items[0]) ||
        !isCount(row.items[1]) || row.items[2].kind != Json::Kind::String)
      return error("{}: a metrics row is not [epoch, step, split, loss, accuracy, samples_per_sec] "
                   "(epoch and step whole numbers from 0 to 2^53, split a string)",
                   meta);
    c.metrics.push_back({static_cast<int64_t>(row.items[0].number), static_cast<int64_t>(row.items[1].number),
                         row.items[2].text, num(row.items[3]), num(row.items[4]), num(row.items[5])});
  }
  m.paramsFile = params->text;
  m.stateFile = state->text;
  return m;
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
