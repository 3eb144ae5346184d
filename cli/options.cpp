#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "compiler/ops/conv_algo.h"
#include "io/file_io.h"
#include "runtime/parallel.h"

namespace nnc::cli {

const std::vector<std::string>& Options::all(const std::string& n) const {
  static const std::vector<std::string> none;
  auto it = values.find(n);
  return it == values.end() ? none : it->second;
}

Expected<Options> parseOptions(std::string_view command, const std::vector<OptionSpec>& specs,
                               const std::vector<std::string>& args, bool manyFiles) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      o.values["help"].push_back("");
      continue;
    }
    if (a.size() == 3 && a[0] == '-' && a[1] == 'O' && a[2] >= '0' && a[2] <= '3') {
      bool known = false;
      for (const OptionSpec& s : specs) known |= std::string_view(s.name) == "O";
      if (!known) return error("unknown option '{}' (see nnc help {})", a, command);
      o.values["O"].push_back(a.substr(2));
      continue;
    }
    if (a.size() == 2 && a[0] == '-' && a[1] != '-') {
      const OptionSpec* spec = nullptr;
      for (const OptionSpec& s : specs)
        if (s.shortName == a[1]) spec = &s;
      if (!spec) return error("unknown option '{}' (see nnc help {})", a, command);
      std::string value;
      if (spec->takesValue) {
        if (i + 1 >= args.size()) return error("option '{}' needs a value ({})", a, spec->metavar);
        value = args[++i];
      }
      o.values[spec->name].push_back(value);
      continue;
    }
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string name = a.substr(2), value;
      const size_t eq = name.find('=');
      const bool inlineValue = eq != std::string::npos;
      if (inlineValue) {
        value = name.substr(eq + 1);
        name.resize(eq);
      }
      const OptionSpec* spec = nullptr;
      for (const OptionSpec& s : specs)
        if (name == s.name) spec = &s;
      if (!spec) return error("unknown option '--{}' (see nnc help {})", name, command);
      if (spec->takesValue && !inlineValue) {
        if (i + 1 >= args.size()) return error("option '--{}' needs a value ({})", name, spec->metavar);
        value = args[++i];
      }
      if (!spec->takesValue && inlineValue) return error("option '--{}' takes no value", name);
      o.values[name].push_back(value);
      continue;
    }
    if (!o.file.empty() && !manyFiles) return error("unexpected argument '{}' (FILE is already '{}')", a, o.file);
    if (o.file.empty()) o.file = a;
    o.files.push_back(a);
  }
  return o;
}

Expected<ElaborateOptions> elaborateOptions(const Options& o) {
  ElaborateOptions e;
  e.model = o.value("model");
  for (const std::string& kv : o.all("set")) {
    const size_t eq = kv.find('=');
    int64_t v = 0;
    if (eq == std::string::npos || eq == 0) return error("--set takes NAME=INT, got '{}'", kv);
    const char* end = kv.data() + kv.size();
    auto [p, ec] = std::from_chars(kv.data() + eq + 1, end, v);
    if (ec != std::errc() || p != end) return error("--set {}: '{}' is not an integer", kv.substr(0, eq), kv.substr(eq + 1));
    e.overrides[kv.substr(0, eq)] = v;
  }
  return e;
}

}  // namespace nnc::cli

namespace nnc::cli {

Expected<uint64_t> seedOption(const Options& o) {
  if (!o.flag("seed")) return uint64_t{42};
  const std::string s = o.value("seed");
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19)
    return error("--seed takes a non-negative integer, got '{}'", s);
  return static_cast<uint64_t>(std::stoull(s));
}

Expected<int64_t> countOption(const Options& o, const std::string& name, int64_t dflt, bool positive) {
  if (!o.flag(name)) return dflt;
  const std::string s = o.value(name);
  if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos)
    return error("--{} takes a {} integer, got '{}'", name, positive ? "positive" : "non-negative", s);
  const auto n = static_cast<int64_t>(std::stoll(s));
  if (positive && n == 0)
    return error("--{} 0: give a positive count (leave --{} out for the default)", name, name);
  return n;
}

Status writeOutput(const std::string& path, std::string_view text, std::ostream& out) {
  if (path.empty() || path == "-") {
    out << text;
    return ok();
  }
  return writeFileAtomic(path, text);
}

Status applyThreads(const Options& o) {
  if (!o.flag("threads")) return ok();
  const std::string v = o.value("threads");
  int n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || n < 0 || n > 1024)
    return error("--threads takes a thread count from 0 (every core) to 1024, got '{}'", v);
  setThreadCount(n);
  return ok();
}

Expected<int> optLevelOption(const Options& o) {
  if (!o.flag("O")) return 3;
  return o.value("O")[0] - '0';
}

Expected<PassOptions> passOptions(const Options& o, std::ostream* dump) {
  PassOptions p;
  NNC_TRY(const int level, optLevelOption(o));
  p.optimize = level > 0;
  p.dump = dump;
  p.log = o.flag("verbose");
  auto known = [](const std::string& n) {
    const auto& f = fusionNames();
    const auto& ps = passNames();
    return std::find(f.begin(), f.end(), n) != f.end() || std::find(ps.begin(), ps.end(), n) != ps.end();
  };
  for (const std::string& list : o.all("no-fuse")) {
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      const std::string name = list.substr(start, comma - start);
      start = comma + 1;
      if (name == "all") {
        p.disabled.insert(fusionNames().begin(), fusionNames().end());
      } else if (known(name)) {
        p.disabled.insert(name);
      } else {
        return error("--no-fuse: unknown fusion or pass '{}'; the fusions are {}, the passes {}", name,
                     fmt::join(fusionNames(), ", "), fmt::join(passNames(), ", "));
      }
    }
  }
  p.dumpAfter = o.value("dump-after");
  if (!p.dumpAfter.empty() && p.dumpAfter != "lower" && p.dumpAfter != "all" && !known(p.dumpAfter)) {
    return error("--dump-after: unknown pass '{}'; the passes are {}, then lower (the loop IR), or all", p.dumpAfter,
                 fmt::join(passNames(), ", "));
  }
  if (!p.dumpAfter.empty() && std::find(fusionNames().begin(), fusionNames().end(), p.dumpAfter) != fusionNames().end())
    p.dumpAfter = "fuse-" + p.dumpAfter;  // --dump-after=conv means the pass fuse-conv
  if (o.flag("conv-algo")) {
    p.convAlgo = o.value("conv-algo");
    NNC_CHECK(parseConvAlgo("--conv-algo", p.convAlgo));
  }
  return p;
}

}  // namespace nnc::cli
