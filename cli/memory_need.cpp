#include "cli/memory_need.h"

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "compiler/lower/compile_program.h"

namespace nnc::cli {

namespace {

int64_t numelOf(const Graph& g, const std::vector<ValueId>& ids) {
  int64_t n = 0;
  for (ValueId v : ids) n += g.type(v).numel();
  return n;
}

// Whether the program computed from `lp` keeps v (of the given graph) in a slot.
bool held(const LoweredProgram& lp, ValueId v) {
  const ValueId m = lp.map[static_cast<size_t>(v)];
  return m != kNoValue && lp.program.valueSlot[static_cast<size_t>(m)] >= 0;
}

}  // namespace

Expected<MemoryNeed> memoryNeed(const Graph& g, const TrainStep* step, const PassOptions& passes, ValueId lossScores,
                                std::vector<ValueId> trainTargets, std::vector<ValueId> inferTargets) {
  MemoryNeed m;
  m.paramFloats = numelOf(g, g.params);
  m.batchFloats = numelOf(g, g.inputs) + numelOf(g, g.labels);
  PassOptions quiet = passes;  // sizing prints no dump and no pass log
  quiet.dumpAfter.clear();
  quiet.dump = nullptr;
  quiet.log = false;
  if (inferTargets.empty()) {
    for (const auto& [_, v] : g.outputs) inferTargets.push_back(v);
    if (g.loss != kNoValue) inferTargets.push_back(g.loss);
  }
  if (!inferTargets.empty()) {
    NNC_TRY(LoweredProgram infer, compileProgram(g, inferTargets, LowerOptions{}, quiet));
    m.inferArenaFloats = infer.program.arenaFloats;
  }
  if (step && g.loss != kNoValue) {
    const Graph& sg = step->grads.graph;
    m.training = true;
    m.optimizer = step->optimizer.kind;
    for (auto [node, _] : step->state) m.stateFloats += sg.type(node).numel();
    if (trainTargets.empty()) {
      trainTargets.push_back(sg.loss);
      if (lossScores != kNoValue) trainTargets.push_back(lossScores);
    }
    NNC_TRY(LoweredProgram train, compileProgram(sg, trainTargets, step->lowering(), quiet));
    m.trainArenaFloats = train.program.arenaFloats;
    for (const auto* pairs : {&step->updates, &step->state})
      for (auto [node, _] : *pairs)
        if (held(train, node)) m.hostCopyFloats += sg.type(node).numel();
    int64_t values = 0;
    for (const Node& n : sg.nodes) values += n.type.numel();
    m.interpBytes = 8 * (values + 3 * (m.paramFloats + m.stateFloats) + 2 * m.batchFloats);
  }
  return m;
}

std::string humanBytes(int64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  if (u == 0) return fmt::format("{} bytes", bytes);
  return v < 10 ? fmt::format("{:.2f} {}", v, units[u]) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string memoryLines(const MemoryNeed& m, const std::string& indent) {
  std::string s = indent + "memory (f32 floats; the arenas as the compiler plans them):\n";
  auto line = [&](const std::string& what, int64_t floats, const std::string& note) {
    s += fmt::format("{}  {:<28} {:>15} {:>11}{}\n", indent, what, groupThousands(floats), humanBytes(4 * floats),
                     note.empty() ? "" : "  " + note);
  };
  line("params", m.paramFloats, "");
  if (m.training) {
    line(fmt::format("optimizer state ({})", m.optimizer), m.stateFloats, "");
    line("train-step arena", m.trainArenaFloats, "holds the params, the state, a batch and the step's values");
  }
  line("inference arena", m.inferArenaFloats, "holds a copy of the params and a batch");
  if (m.training) {
    line("host copy of params, state", m.hostCopyFloats, "nnc run's, to replay a non-finite step");
    line("host batches (2)", 2 * m.batchFloats, "as read from the data");
    s += fmt::format("{}  a train run (JIT) needs {} ({} bytes), inference {} ({} bytes),\n", indent,
                     humanBytes(m.trainBytes()), groupThousands(m.trainBytes()), humanBytes(m.inferBytes()),
                     groupThousands(m.inferBytes()));
    s += fmt::format("{}  plus the data set and the JIT's code; --backend interp needs about {}\n", indent,
                     humanBytes(m.interpBytes));
  } else {
    line("host batch", m.batchFloats, "as read from the data");
    s += fmt::format("{}  inference (JIT) needs {} ({} bytes), plus the data and the JIT's code\n", indent,
                     humanBytes(m.inferBytes()), groupThousands(m.inferBytes()));
  }
  return s;
}

namespace {

// The first number after `key` on a line of `path` that starts with it; -1 if none.
int64_t readKey(const std::string& path, const std::string& key) {
  std::ifstream f(path);
  std::string l;
  while (std::getline(f, l))
    if (l.compare(0, key.size(), key) == 0) {
      std::istringstream in(l.substr(key.size()));
      int64_t v = -1;
      if (in >> v) return v;
    }
  return -1;
}

// The whole of a one-number file such as memory.max; -1 if absent or "max".
int64_t readNumber(const std::string& path) {
  std::ifstream f(path);
  int64_t v = -1;
  if (!(f >> v)) return -1;
  return v;
}

// The cgroup (v2) this process is in, from /proc/self/cgroup's "0::/path".
std::string cgroupDir() {
  std::ifstream f("/proc/self/cgroup");
  std::string l;
  while (std::getline(f, l))
    if (l.compare(0, 3, "0::") == 0) return "/sys/fs/cgroup" + (l.size() > 3 && l.substr(3) != "/" ? l.substr(3) : "");
  return "/sys/fs/cgroup";
}

}  // namespace

std::optional<MemoryLimit> availableMemory() {
  std::optional<MemoryLimit> best;
  if (const int64_t kb = readKey("/proc/meminfo", "MemAvailable:"); kb >= 0)
    best = MemoryLimit{kb * 1024, "MemAvailable in /proc/meminfo"};
  // A cgroup's limit counts its page cache too; what it can reclaim of that
  // (inactive files) is still available.
  for (std::string dir = cgroupDir(); dir.size() >= std::string("/sys/fs/cgroup").size();) {
    const int64_t max = readNumber(dir + "/memory.max"), cur = readNumber(dir + "/memory.current");
    if (max > 0 && cur >= 0) {
      const int64_t inactive = std::max<int64_t>(readKey(dir + "/memory.stat", "inactive_file "), 0);
      const int64_t left = std::max<int64_t>(max - cur + std::min(inactive, cur), 0);
      if (!best || left < best->bytes) best = MemoryLimit{left, fmt::format("the cgroup limit {}/memory.max", dir)};
    }
    const size_t slash = dir.rfind('/');
    if (slash == std::string::npos || dir == "/sys/fs/cgroup") break;
    dir = dir.substr(0, slash);
  }
  return best;
}

Resident residentMemory() {
  return {std::max<int64_t>(readKey("/proc/self/status", "VmRSS:"), 0) * 1024,
          std::max<int64_t>(readKey("/proc/self/status", "VmHWM:"), 0) * 1024};
}

Expected<std::optional<int64_t>> parseMemorySize(const std::string& text) {
  if (text == "off") return std::optional<int64_t>{};
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(text, &used);
  } catch (...) {
    used = 0;
  }
  double scale = 1;
  if (used > 0 && used < text.size()) {
    std::string unit = text.substr(used);
    if (unit.size() > 1 && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
    if (unit.size() > 1 && (unit.back() == 'i')) unit.pop_back();
    const std::string units = "KMGT";
    const size_t k = unit.size() == 1 ? units.find(static_cast<char>(std::toupper(unit[0]))) : std::string::npos;
    if (k == std::string::npos) used = 0;
    else scale = std::pow(1024.0, static_cast<double>(k + 1));
  }
  if (used == 0 || !(v >= 0) || !std::isfinite(v * scale) || v * scale > 9e18)
    return error("--memory-limit: expected a size such as 4G, 1.5G, 800M or 1000000 (bytes), or 'off', got '{}'", text);
  return std::optional<int64_t>{static_cast<int64_t>(v * scale)};
}

}  // namespace nnc::cli
