// The conformance runner's driver: finding the tests, importing each model,
// running every test in a child process with a deadline, the JSON report.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstring>
#include <exception>
#include <filesystem>
#include <new>

#include "cli/onnx_conformance.h"
#include "io/file_io.h"
#include "io/json.h"
#include "runtime/parallel.h"

namespace nnc::cli {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const char* outcomeName(OnnxOutcome o) {
  switch (o) {
    case OnnxOutcome::Pass: return "pass";
    case OnnxOutcome::Fail: return "fail";
    case OnnxOutcome::Unsupported: return "unsupported";
    case OnnxOutcome::Skipped: return "skipped";
  }
  return "?";
}

namespace {

bool isTestDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p / "model.onnx", ec) || fs::is_regular_file(p / "data.json", ec);
}

// "node/test_relu" for .../node/test_relu/ (a trailing slash or "." aside).
void nameTest(OnnxTestResult& r) {
  fs::path p = fs::absolute(fs::path(r.dir)).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  r.folder = p.parent_path().filename().string();
  r.name = r.folder + "/" + p.filename().string();
}

// Everything up to the import: what the parent knows before a child starts.
struct Prepared {
  OnnxTestResult result;
  std::string bytes;        // model.onnx
  onnxio::ModelInfo info;
  bool done = false;        // the result is final (no model to run)
};

Prepared prepare(const std::string& dir) {
  Prepared p;
  p.result.dir = dir;
  nameTest(p.result);
  const fs::path model = fs::path(dir) / "model.onnx";
  std::error_code ec;
  if (!fs::is_regular_file(model, ec)) {
    p.done = true;
    const bool pointer = fs::is_regular_file(fs::path(dir) / "data.json", ec);
    p.result.outcome = pointer ? OnnxOutcome::Skipped : OnnxOutcome::Fail;
    p.result.message = pointer ? "no model.onnx: its data.json points to a model to download" : "no model.onnx";
    return p;
  }
  auto bytes = readFile(model.string(), uint64_t{1} << 31, "an ONNX model");
  auto info = bytes ? onnxio::modelInfo(*bytes, model.string()) : Expected<onnxio::ModelInfo>(bytes.error());
  if (!info) {
    p.done = true;
    p.result.message = info.error().message;
    return p;
  }
  p.bytes = bytes.take();
  p.info = info.take();
  p.result.ops = p.info.opTypes;
  return p;
}

// The inputs' sizes against the limit, and the batch the importer should
// give a symbolic first dim: data set 0's input 0's.
Status checkInputs(const std::string& dir, const OnnxTestOptions& opt, int64_t& batch, std::string& skip) {
  int64_t total = 0;
  for (int k = 0;; ++k) {
    const std::string f = fmt::format("{}/test_data_set_0/input_{}.pb", dir, k);
    std::error_code ec;
    const auto size = fs::file_size(f, ec);
    if (ec) break;
    // Every element takes a byte at least: a file past this is over the limit unread.
    if (static_cast<int64_t>(size) > opt.maxInputElements * 8) {
      skip = fmt::format("input_{}.pb is {} bytes, over the limit of {} input elements", k, size, opt.maxInputElements);
      return ok();
    }
    NNC_TRY(std::string bytes, readFile(f, uint64_t{1} << 31, "a TensorProto"));
    NNC_TRY(Tensor t, onnxio::readTensorProto(bytes, f));
    if (k == 0 && !t.type.shape.empty()) batch = std::max<int64_t>(1, t.type.shape[0]);
    // PyTorch's exported tests of f64 ops hold torch.empty's garbage
    // (1e198 beside denormals): values no f32 holds, so no f32 result can
    // match. Those tests say nothing about the op.
    for (double v : t.data)
      if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max())
        return error("input_{}.pb holds {:g}, beyond the range of f32, in which nnc computes", k, v);
    total += t.numel();
  }
  if (total > opt.maxInputElements)
    skip = fmt::format("its inputs hold {} elements, over the limit of {}", total, opt.maxInputElements);
  return ok();
}

// Import and check; `stage` hears where it is, for a crash's message.
OnnxTestResult runPrepared(const Prepared& p, const OnnxTestOptions& opt, const std::function<void(const char*)>& stage) {
  OnnxTestResult r = p.result;
  int64_t batch = 1;
  std::string skip;
  stage("reading the inputs");
  const Status data = checkInputs(p.result.dir, opt, batch, skip);
  if (!skip.empty()) {
    r.outcome = OnnxOutcome::Skipped;
    r.message = skip;
    return r;
  }
  stage("importing");
  if (opt.beforeImport) opt.beforeImport();
  onnxio::ImportOptions io;
  io.batch = batch;
  const std::string model = (fs::path(p.result.dir) / "model.onnx").string();
  auto imported = onnxio::importModel(p.bytes, model, io, p.result.dir);
  // The listing names the test already: "node/test_x: 1 problem ...", not the path again.
  if (!imported && imported.error().message.rfind(model + ": ", 0) == 0)
    imported.error().message.erase(0, model.size() + 2);
  // Data nnc cannot hold (strings, sequences, optionals: their .pb is no
  // TensorProto) make a test unsupported; the importer's refusal, which
  // names the ops, is the better reason where there is one.
  if (!imported || !data) {
    r.outcome = OnnxOutcome::Unsupported;
    r.message = !imported ? imported.error().message : "its test data: " + data.error().message;
    return r;
  }
  stage("compiling and running");
  OnnxTestResult c = checkImported(p.result.dir, *imported, p.info, opt);
  r.outcome = c.outcome;
  r.message = c.message;
  r.dataSets = c.dataSets;
  return r;
}

OnnxTestResult runGuarded(const Prepared& p, const OnnxTestOptions& opt, const std::function<void(const char*)>& stage) {
  try {
    return runPrepared(p, opt, stage);
  } catch (const std::bad_alloc&) {
    OnnxTestResult r = p.result;
    r.message = "out of memory";
    return r;
  } catch (const std::exception& e) {
    OnnxTestResult r = p.result;
    r.message = fmt::format("exception: {}", e.what());
    return r;
  }
}

void writeAll(int fd, const std::string& s) {
  for (size_t at = 0; at < s.size();) {
    const ssize_t n = ::write(fd, s.data() + at, s.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    at += static_cast<size_t>(n);
  }
}

// The child's report on its pipe: "S stage" lines as it goes, then
// "R outcome dataSets" and the message to the end.
[[noreturn]] void childMain(const Prepared& p, const OnnxTestOptions& opt, int fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a runner killed by ^C takes its tests along
  // A model that asks for a huge tensor fails in its own process instead of
  // pushing a shared machine into swap or the OOM killer. Sanitizers map
  // terabytes of shadow memory: no limit there.
  if (opt.maxMemoryBytes > 0 && !kAddressSanitizer) {
    const rlimit lim{static_cast<rlim_t>(opt.maxMemoryBytes), static_cast<rlim_t>(opt.maxMemoryBytes)};
    ::setrlimit(RLIMIT_AS, &lim);
  }
  restartThreadPoolAfterFork(1);       // small models; and -j2 children must not share two cores four ways
  // A test framework's crash handlers (Catch2's) would report the child's
  // crash as the parent's; the parent reads the signal from waitpid instead.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);
  const OnnxTestResult r = runGuarded(p, opt, [fd](const char* s) { writeAll(fd, fmt::format("S {}\n", s)); });
  writeAll(fd, fmt::format("R {} {}\n{}", static_cast<int>(r.outcome), r.dataSets, r.message));
  ::_exit(0);  // no atexit handlers or static destructors of the parent's state
}

struct Child {
  size_t index;
  pid_t pid = -1;
  int fd = -1;
  std::string report;
  Clock::time_point start, deadline;
  OnnxTestResult result;
};

// The child's end: its report, else how it died.
void finish(Child& c, bool timedOut, const OnnxTestOptions& opt) {
  if (timedOut) ::kill(c.pid, SIGKILL);
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::close(c.fd);
  std::string stage = "starting";
  size_t at = 0;
  while (at < c.report.size()) {
    const size_t nl = c.report.find('\n', at);
    if (nl == std::string::npos) break;
    const std::string line = c.report.substr(at, nl - at);
    if (line.rfind("S ", 0) == 0) stage = line.substr(2);
    if (line.rfind("R ", 0) == 0) {
      int outcome = 1, sets = 0;
      if (std::sscanf(line.c_str(), "R %d %d", &outcome, &sets) == 2 && outcome >= 0 && outcome <= 3 && !timedOut) {
        c.result.outcome = static_cast<OnnxOutcome>(outcome);
        c.result.dataSets = sets;
        c.result.message = c.report.substr(nl + 1);
        return;
      }
    }
    at = nl + 1;
  }
  c.result.outcome = OnnxOutcome::Fail;
  if (timedOut)
    c.result.message = fmt::format("timed out after {:g} s while {}", opt.timeoutSeconds, stage);
  else if (WIFSIGNALED(status))
    c.result.message = fmt::format("crashed ({}) while {}", strsignal(WTERMSIG(status)), stage);
  else
    c.result.message = fmt::format("its process exited with status {} while {}",
                                   WIFEXITED(status) ? WEXITSTATUS(status) : -1, stage);
}

Expected<Child> spawn(size_t index, Prepared& p, const OnnxTestOptions& opt) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return error("pipe: {}", std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return error("fork: {}", std::strerror(errno));
  }
  if (pid == 0) {
    ::close(fds[0]);
    childMain(p, opt, fds[1]);
  }
  ::close(fds[1]);
  Child c;
  c.index = index;
  c.pid = pid;
  c.fd = fds[0];
  c.start = Clock::now();
  c.deadline = c.start + std::chrono::milliseconds(static_cast<int64_t>(opt.timeoutSeconds * 1000));
  c.result = p.result;
  return c;
}

}  // namespace

Expected<std::vector<std::string>> onnxTestDirs(const std::vector<std::string>& paths) {
  std::vector<std::string> dirs;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) return error("{}: not a folder", path);
    if (isTestDir(path)) {
      dirs.push_back(path);
      continue;
    }
    std::vector<std::string> inside;
    for (const fs::directory_entry& e : fs::directory_iterator(path, ec))
      if (e.is_directory(ec) && isTestDir(e.path())) inside.push_back(e.path().string());
    if (ec) return error("{}: {}", path, ec.message());
    if (inside.empty()) return error("{}: neither a test folder (model.onnx) nor a folder of them", path);
    std::sort(inside.begin(), inside.end());
    dirs.insert(dirs.end(), inside.begin(), inside.end());
  }
  return dirs;
}

OnnxTestResult runOnnxTest(const std::string& dir, const OnnxTestOptions& opt) {
  return runOnnxTests({dir}, opt).at(0);
}

std::vector<OnnxTestResult> runOnnxTests(const std::vector<std::string>& dirs, const OnnxTestOptions& opt,
                                         const std::function<void(const OnnxTestResult&)>& done) {
  std::vector<OnnxTestResult> results(dirs.size());
  auto record = [&](size_t i, OnnxTestResult r, Clock::time_point start) {
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (done) done(r);
    results[i] = std::move(r);
  };
  std::vector<Child> running;
  size_t next = 0;
  while (next < dirs.size() || !running.empty()) {
    while (next < dirs.size() && static_cast<int>(running.size()) < std::max(1, opt.jobs)) {
      const size_t i = next++;
      const Clock::time_point start = Clock::now();
      Prepared p = prepare(dirs[i]);
      if (p.done || !opt.isolate) {
        record(i, p.done ? p.result : runGuarded(p, opt, [](const char*) {}), start);
        continue;
      }
      auto c = spawn(i, p, opt);
      if (!c) {
        p.result.message = c.error().message;
        record(i, p.result, start);
        continue;
      }
      running.push_back(c.take());
    }
    if (running.empty()) continue;
    std::vector<pollfd> fds;
    Clock::time_point first = running[0].deadline;
    for (const Child& c : running) {
      fds.push_back({c.fd, POLLIN, 0});
      first = std::min(first, c.deadline);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(first - Clock::now()).count();
    // poll cannot fail here but for EINTR; if it did, waiting on would
    // spin, so the running tests end as if timed out.
    const bool broken =
        ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<int64_t>(wait, 0, 60'000))) < 0 && errno != EINTR;
    for (size_t k = running.size(); k-- > 0;) {
      Child& c = running[k];
      bool ended = broken, timedOut = broken;
      if (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[4096];
        const ssize_t n = ::read(c.fd, buf, sizeof buf);
        if (n > 0) c.report.append(buf, static_cast<size_t>(n));
        else if (n == 0 || errno != EINTR) ended = true;
      }
      if (!ended && Clock::now() >= c.deadline) ended = timedOut = true;
      if (!ended) continue;
      finish(c, timedOut, opt);
      record(c.index, std::move(c.result), c.start);
      running.erase(running.begin() + static_cast<std::ptrdiff_t>(k));
    }
  }
  return results;
}

std::string resultsJson(const std::vector<OnnxTestResult>& results, const OnnxTestOptions& opt) {
  std::string s = fmt::format("{{\"rtol\": {:g}, \"atol\": {:g}, \"interpreter\": {}, \"tests\": [", opt.rtol, opt.atol,
                              opt.interpreter ? "true" : "false");
  for (size_t i = 0; i < results.size(); ++i) {
    const OnnxTestResult& r = results[i];
    std::string ops;
    for (const std::string& op : r.ops) ops += (ops.empty() ? "" : ", ") + jsonQuote(op);
    s += fmt::format("{}\n  {{\"name\": {}, \"folder\": {}, \"dir\": {}, \"outcome\": \"{}\", \"ops\": [{}], "
                     "\"data_sets\": {}, \"seconds\": {:.3f}, \"message\": {}}}",
                     i ? "," : "", jsonQuote(r.name), jsonQuote(r.folder), jsonQuote(r.dir), outcomeName(r.outcome), ops,
                     r.dataSets, r.seconds, jsonQuote(r.message));
  }
  return s + "\n]}\n";
}

}  // namespace nnc::cli
