// nnc emit-cpp: the emitted C++ built with the system g++ (-O3 -march=native
// and plain -O2, -Wall -Wextra -Werror) and run: inference and three train
// steps against the JIT (jit::CompiledProgram) and the reference interpreter,
// main_example against nnc eval and nnc predict; the files also under
// clang++-19. The models are emitted and compiled once, for one test case
// whose sections are the checks (ctest runs a process per test case); the
// runtime, the same for every model, is compiled once per flag set, and
// several compiles run at a time.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "io/npy.h"
#include "runtime/random_calls.h"
#include "runtime/rng.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace nnc;
using nnc::test::readText;
using nnc::test::runCli;
using nnc::test::sourcePath;

namespace {

struct ModelCase {
  std::string name;          // the model's, and its files'
  int64_t batch;             // --batch, 0 for none
  bool train;                // --train, checked over three steps
  bool weightsFile;          // --weights W.npz --weights-file
  const char* source;        // the model's text; null: examples/NAME.nn
  bool everyVariant = true;  // else plain -O2 only
  bool dropout = false;      // train steps checked against the JIT alone (the same masks)
  bool randomBn = false;     // batchnorm's γ, β and running statistics off their init (needs weightsFile)
};

// Batchnorm (its running statistics committed like params; not after a
// biased layer, whose bias would get a gradient of rounding noise, which
// RMSprop amplifies; bn2 fused with its relu, and its input gradient),
// dropout (the runtime's random masks), a padded convolution, average
// pooling, tanh, RMSprop, and an i32 output.
constexpr const char* kBnNet = R"(
model bnnet(batch = 16) {
    input  x: f32[batch, 1, 8, 8]
    label  t: i32[batch]
    c = relu(conv2d(batchnorm(x, name = "bn1"), filters = 4, kernel = 3, stride = 1, pad = 1, name = "c1"))
    p = relu(batchnorm(avgpool2d(c, kernel = 2, stride = 2), name = "bn2"))
    h = dropout(tanh(dense(flatten(p), 12, name = "fc1")), rate = 0.25)
    logits = dense(h, 10, name = "fc2")
    loss = softmax_cross_entropy(logits, t)
    output probs = softmax(logits)
    output cls = argmax(logits, axis = 1)
}
train bnnet { optimizer = rmsprop(lr = 0.01) }
)";

// The pooling gradients' gathers (overlapping, padded and gapped windows)
// and a convolution's bias gradient summed in its weight gradient's call.
constexpr const char* kPoolNet = R"(
model poolnet(batch = 3) {
    input  x: f32[batch, 2, 11, 9]
    label  t: i32[batch]
    c = relu(conv2d(x, filters = 5, kernel = 3, pad = 1, name = "c1"))
    p = maxpool2d(c, kernel = 3, stride = 2, pad = 1)
    q = avgpool2d(p, kernel = 2, stride = 1)
    r = maxpool2d(q, kernel = 2, stride = 3)
    logits = dense(flatten(r), 10, name = "fc")
    loss = softmax_cross_entropy(logits, t)
    output probs = softmax(logits)
}
train poolnet { optimizer = sgd(lr = 0.1) }
)";

// Inference batchnorm folded into each convolution before it
// (fold-batchnorm): strided, depthwise and 1×1 without bias, on running
// statistics, γ and β the .npz sets off their init.
constexpr const char* kConvBnNet = R"(
model convbn(batch = 4) {
    input  x: f32[batch, 3, 10, 10]
    label  t: i32[batch]
    param  W: f32[8, 8, 1, 1] = he()
    a = relu(batchnorm(conv2d(x, filters = 8, kernel = 3, stride = 2, pad = 1, name = "c1"), name = "bn1"))
    b = relu(batchnorm(conv2d(a, filters = 8, kernel = 3, pad = 1, groups = 8, name = "dw"), name = "bn2"))
    c = batchnorm(conv2d(b, W), name = "bn3")
    logits = dense(flatten(c), 10, name = "fc")
    loss = softmax_cross_entropy(logits, t)
    output probs = softmax(logits)
}
train convbn { optimizer = sgd(lr = 0.1) }
)";

const ModelCase kModels[] = {
    {"mnist_mlp", 8, true, false, nullptr},
    {"simple_convnet", 4, true, true, nullptr},
    {"three_layer", 0, false, false, nullptr},
    {"bnnet", 0, true, false, kBnNet, false, true},
    {"poolnet", 0, true, false, kPoolNet, false},
    {"convbn", 0, true, true, kConvBnNet, false, false, true},
};

struct Variant {
  std::string name, flags;
};
const Variant kVariants[] = {{"o3", "-O3 -march=native"}, {"o2", "-O2"}};
constexpr int kSteps = 3;

bool builds(const ModelCase& m, const Variant& v) { return m.everyVariant || v.name == "o2"; }

// The folder of every file this test writes, removed at exit (Build).
fs::path workDir() { return fs::temp_directory_path() / ("nnc_emit_cpp_" + std::to_string(::getpid())); }

std::string modelPath(const ModelCase& m) {
  if (!m.source) return sourcePath("examples/" + m.name + ".nn");
  const fs::path p = workDir() / (m.name + ".nn");
  if (!fs::exists(p)) std::ofstream(p) << m.source;
  return p.string();
}

Elaborated loadModel(const ModelCase& m, SourceManager& sm) {
  const std::string path = modelPath(m);
  ElaborateOptions eo;
  if (m.batch) eo.overrides["batch"] = m.batch;
  auto e = cli::compileSource(sm, path, readText(path), eo);
  if (!e) FAIL(sm.render(e.error()));
  return e.take();
}

// Runs shell commands, a few at a time; their exit codes.
std::vector<int> runAll(const std::vector<std::string>& cmds) {
  std::vector<int> codes(cmds.size(), -1);
  std::atomic<size_t> next{0};
  const unsigned n = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < n; ++t)
    threads.emplace_back([&] {
      for (size_t i; (i = next++) < cmds.size();) codes[i] = std::system(cmds[i].c_str());
    });
  for (std::thread& t : threads) t.join();
  return codes;
}

void writeFloats(const fs::path& path, const std::vector<float>& v) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(v.data()),
                                              static_cast<std::streamsize>(v.size() * sizeof(float)));
}

std::vector<float> readFloats(const fs::path& path) {
  const std::string bytes = readText(path.string());
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// Inputs in [0, 1), labels class ids 0..9 (as floats), per step.
TensorMap randomFeeds(const Graph& g, uint64_t seed) {
  Rng rng(seed);
  TensorMap feeds;
  for (ValueId v : g.inputs) {
    Tensor t(g.type(v));
    for (double& x : t.data) x = static_cast<float>(rng.uniform());
    feeds[g.node(v).name] = std::move(t);
  }
  for (ValueId v : g.labels) {
    Tensor t(g.type(v));
    for (double& x : t.data) x = static_cast<double>(rng.below(10));
    feeds[g.node(v).name] = std::move(t);
  }
  return feeds;
}

std::vector<float> toFloats(const Tensor& t) {
  std::vector<float> f(t.data.size());
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(t.data[i]);
  return f;
}

// rtol 1e-4, atol 1e-5; the first element outside reported.
void requireClose(const std::string& what, const float* got, const float* want, size_t n, const char* whose) {
  size_t bad = n;
  for (size_t i = 0; i < n && bad == n; ++i)
    if (!(std::abs(got[i] - want[i]) <= 1e-5 + 1e-4 * std::abs(want[i]))) bad = i;
  INFO(what << "[" << bad << "] of " << n << ": emitted C++ " << (bad < n ? got[bad] : 0.0f) << ", " << whose << " "
            << (bad < n ? want[bad] : 0.0f));
  REQUIRE(bad == n);
}

// A program over the emitted class: infer on in/x.bin, then kSteps train
// steps on in/x<s>.bin, in/t<s>.bin at in/lr.bin's rates, writing
// out/<output>.bin and out/step<s>.bin (the loss, then every param).
std::string driverSource(const Graph& g, bool weightsFile) {
  std::string src = "#include <cstdio>\n#include <string>\n#include <vector>\n\n#include \"" + g.name + ".hpp\"\n\n";
  src += R"(static std::vector<float> load(const std::string& path, long n) {
  std::vector<float> v(static_cast<size_t>(n));
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f || std::fread(v.data(), sizeof(float), v.size(), f) != v.size()) std::perror(path.c_str());
  if (f) std::fclose(f);
  return v;
}

static void save(const std::string& path, const std::vector<float>& v) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f) std::fwrite(v.data(), sizeof(float), v.size(), f), std::fclose(f);
}

int main(int, char** argv) {
  const std::string in = argv[1], out = argv[2];
)";
  const std::string cls = "nnc_model::" + g.name;
  src += weightsFile ? "  " + cls + " m(argv[3]);\n" : "  " + cls + " m;\n";
  std::string inferArgs, trainArgs;
  for (ValueId v : g.inputs) {
    const std::string& n = g.node(v).name;
    src += "  std::vector<float> " + n + " = load(in + \"/" + n + ".bin\", m." + n + "_size);\n";
    inferArgs += n + ".data(), ";
  }
  for (const auto& [n, _] : g.outputs) {
    src += "  std::vector<float> " + n + "(m." + n + "_size);\n";
    inferArgs += n + ".data(), ";
  }
  src += "  m.infer(" + inferArgs.substr(0, inferArgs.size() - 2) + ");\n";
  for (const auto& [n, _] : g.outputs) src += "  save(out + \"/" + n + ".bin\", " + n + ");\n";
  if (g.loss == kNoValue) return src + "}\n";
  src += "  const std::vector<float> lr = load(in + \"/lr.bin\", " + std::to_string(kSteps) + ");\n";
  src += "  for (int s = 0; s < " + std::to_string(kSteps) + "; ++s) {\n";
  for (ValueId v : g.inputs) {
    const std::string& n = g.node(v).name;
    src += "    const std::vector<float> " + n + "s = load(in + \"/" + n + "\" + std::to_string(s) + \".bin\", m." + n +
           "_size);\n";
    trainArgs += n + "s.data(), ";
  }
  for (ValueId v : g.labels) {
    const std::string& n = g.node(v).name;
    src += "    const std::vector<float> " + n + "s = load(in + \"/" + n + "\" + std::to_string(s) + \".bin\", m." + n +
           "_size);\n";
    trainArgs += n + "s.data(), ";
  }
  src += "    std::vector<float> r = {m.train_step(" + trainArgs + "lr[static_cast<size_t>(s)])};\n";
  src += "    for (int i = 0; i < m.num_params; ++i) r.insert(r.end(), m.param(i), m.param(i) + m.param_size(i));\n";
  src += "    save(out + \"/step\" + std::to_string(s) + \".bin\", r);\n  }\n}\n";
  return src;
}

// Everything emitted, compiled and linked once.
struct Build {
  fs::path dir;
  std::string error;  // empty when every step succeeded
  ~Build() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};

fs::path modelDir(const Build& b, const ModelCase& m) { return b.dir / m.name; }
fs::path variantDir(const Build& b, const ModelCase& m, const Variant& v) { return b.dir / (m.name + "-" + v.name); }

// Param values: simple_convnet's come from an .npz (--weights), initialized.
// γ, β and the running statistics of every batchnorm set to values of both
// signs (variances positive), the same for the same names, so that the
// .npz and the interpreter's and JIT's params and train state agree.
void randomizeBatchnorm(TensorMap& params) {
  for (auto& [name, t] : params) {
    const bool var = name.find(".running_var") != std::string::npos;
    if (!var && name.find(".gamma") == std::string::npos && name.find(".beta") == std::string::npos &&
        name.find(".running_mean") == std::string::npos)
      continue;
    Rng rng(std::hash<std::string>()(name));
    for (double& v : t.data) v = static_cast<float>(var ? 0.2 + 1.5 * rng.uniform() : rng.normal());
  }
}

TensorMap paramsOf(const Graph& g, const ModelCase& m) {
  auto p = initParams(g, 42);
  REQUIRE(p);
  if (m.randomBn) randomizeBatchnorm(*p);
  return p.take();
}

Build makeBuild() {
  Build b;
  b.dir = workDir();
  fs::remove_all(b.dir);
  fs::create_directories(b.dir);
  std::vector<std::string> compiles, links;
  for (const ModelCase& m : kModels) {
    SourceManager sm;
    const Elaborated e = loadModel(m, sm);
    std::vector<std::string> args = {"emit-cpp", modelPath(m), "-o", modelDir(b, m).string()};
    if (m.batch) args.insert(args.end(), {"--batch", std::to_string(m.batch)});
    if (m.train) args.push_back("--train");
    if (m.weightsFile) {
      const std::string npz = (b.dir / (m.name + ".npz")).string();
      if (auto st = writeNpz(npz, paramsOf(e.graph, m)); !st) FAIL(st.error().message);
      args.insert(args.end(), {"--weights", npz, "--weights-file"});
    }
    auto r = runCli(args);
    if (r.code != 0) {
      b.error = "nnc emit-cpp " + m.name + ": " + r.err;
      return b;
    }
    if (m.train) std::ofstream(b.dir / (m.name + "-driver.cpp")) << driverSource(e.graph, m.weightsFile);
    for (const Variant& v : kVariants) {
      if (!builds(m, v)) continue;
      const fs::path vd = variantDir(b, m, v);
      fs::create_directories(vd);
      const std::string cc = "cd " + vd.string() + " && g++ " + v.flags + " -Wall -Wextra -Werror -I" +
                             modelDir(b, m).string() + " -c ";
      std::vector<std::string> sources = {modelDir(b, m) / (m.name + ".cpp"), modelDir(b, m) / "main_example.cpp"};
      if (m.train) sources.push_back(b.dir / (m.name + "-driver.cpp"));
      for (const std::string& s : sources) {
        const std::string obj = fs::path(s).stem().string();
        compiles.push_back(cc + s + " -o " + obj + ".o > " + obj + ".log 2>&1");
      }
      const std::string rt = (b.dir / ("runtime-" + v.name) / "nnc_runtime.o").string();
      const std::string link = "cd " + vd.string() + " && g++ " + v.flags + " -o ";
      links.push_back(link + "main_example main_example.o " + m.name + ".o " + rt + " > link.log 2>&1");
      if (m.train)
        links.push_back(link + "driver " + m.name + "-driver.o " + m.name + ".o " + rt + " > link-driver.log 2>&1");
    }
  }
  // The runtime is the same for every model: compiled once per flag set.
  const std::string runtime = readText((modelDir(b, kModels[0]) / "nnc_runtime.cpp").string());
  for (const ModelCase& m : kModels)
    if (readText((modelDir(b, m) / "nnc_runtime.cpp").string()) != runtime) {
      b.error = "nnc_runtime.cpp differs between models";
      return b;
    }
  for (const Variant& v : kVariants) {
    const fs::path rd = b.dir / ("runtime-" + v.name);
    fs::create_directories(rd);
    // First: it takes longest.
    compiles.insert(compiles.begin(), "cd " + rd.string() + " && g++ " + v.flags + " -Wall -Wextra -Werror -c " +
                                          (modelDir(b, kModels[0]) / "nnc_runtime.cpp").string() +
                                          " -o nnc_runtime.o > nnc_runtime.log 2>&1");
  }
  // The issue's check: `g++ out3/*.cpp` alone builds the example.
  const fs::path plain = modelDir(b, kModels[2]);
  compiles.push_back("cd " + plain.string() + " && g++ *.cpp -o a.out > plain.log 2>&1");
  for (const auto* stage : {&compiles, &links}) {
    const std::vector<int> codes = runAll(*stage);
    for (size_t i = 0; i < codes.size(); ++i)
      if (codes[i] != 0) {
        b.error += "failed: " + (*stage)[i] + "\n";
        const std::string cmd = (*stage)[i];
        const size_t cd = cmd.find("cd ") + 3, end = cmd.find(" &&"), log = cmd.rfind("> ") + 2;
        b.error += readText((fs::path(cmd.substr(cd, end - cd)) / cmd.substr(log, cmd.find(' ', log) - log)).string());
      }
    if (!b.error.empty()) return b;
  }
  return b;
}

const Build& build() {
  static const Build b = makeBuild();
  return b;
}

std::string run(const std::string& cmd) {
  const std::string out = (build().dir / "run.out").string();
  const int code = std::system((cmd + " > " + out + " 2>&1").c_str());
  INFO(cmd << ": " << readText(out));
  REQUIRE(code == 0);
  return readText(out);
}

// "name = [a, b, ...]" lines of main_example (or nnc eval): every number.
std::vector<float> numbers(const std::string& text) {
  std::vector<float> v;
  static const std::regex number(R"([-+]?[0-9]*\.?[0-9]+(e[-+]?[0-9]+)?)");
  for (std::sregex_iterator it(text.begin() + static_cast<long>(text.find('=')), text.end(), number), end; it != end; ++it)
    v.push_back(std::stof(it->str()));
  return v;
}

void checkThreeLayer() {
  const Build& b = build();
  INFO(b.error);
  REQUIRE(b.error.empty());
  const std::string plain = run((modelDir(b, kModels[2]) / "a.out").string());
  auto eval = runCli({"eval", sourcePath("examples/three_layer.nn")});
  REQUIRE(eval.code == 0);
  // The notes' f64 values are [0.32882937, 0.72300564]; computed in f32, as
  // nnc eval (and NumPy in float32) computes them:
  CHECK(plain == "y = [0.32882938, 0.72300565]\n");
  CHECK(plain == eval.out);
  // Built with -O3 -march=native (FMA) and -O2: the same values within the tolerance.
  const std::vector<float> want = numbers(eval.out);
  REQUIRE(want.size() == 2);
  for (const Variant& v : kVariants) {
    INFO(v.flags);
    const std::vector<float> got = numbers(run((variantDir(b, kModels[2], v) / "main_example").string()));
    REQUIRE(got.size() == want.size());
    requireClose("y", got.data(), want.data(), got.size(), "nnc eval");
  }
}

void checkIncludes() {
  const Build& b = build();
  REQUIRE(b.error.empty());
  for (const ModelCase& m : kModels) {
    std::set<std::string> emitted;
    for (const auto& e : fs::directory_iterator(modelDir(b, m))) emitted.insert(e.path().filename().string());
    for (const std::string& f : emitted) {
      if (!f.ends_with(".cpp") && !f.ends_with(".hpp") && !f.ends_with(".h")) continue;
      std::istringstream text(readText((modelDir(b, m) / f).string()));
      for (std::string line; std::getline(text, line);) {
        if (!line.starts_with("#include")) continue;
        INFO(m.name << "/" << f << ": " << line);
        const size_t q = line.find('"');
        if (q != std::string::npos) {
          CHECK(emitted.count(line.substr(q + 1, line.rfind('"') - q - 1)) == 1);  // a file of the folder
        } else {
          CHECK(line.find("llvm") == std::string::npos);
          CHECK(line.find("fmt") == std::string::npos);
          CHECK(line.find("nnc") == std::string::npos);
        }
      }
    }
  }
}

void checkAgainstJit() {
  const Build& b = build();
  INFO(b.error);
  REQUIRE(b.error.empty());
  for (const ModelCase& m : kModels) {
    if (!m.train) continue;
    SourceManager sm;
    const Elaborated e = loadModel(m, sm);
    const Graph& g = e.graph;
    const TensorMap params = paramsOf(g, m);
    const fs::path in = b.dir / (m.name + "-in");
    fs::create_directories(in);

    // Inference: the interpreter and the JIT on the same params and input.
    TensorMap feeds = randomFeeds(g, 7);
    for (const auto& [name, t] : params) feeds[name] = t;
    for (ValueId v : g.inputs) writeFloats(in / (g.node(v).name + ".bin"), toFloats(feeds.at(g.node(v).name)));
    std::vector<ValueId> outputs;
    for (const auto& [_, v] : g.outputs) outputs.push_back(v);
    auto want = interpret(g, feeds, EvalOptions{}, outputs);
    REQUIRE(want);
    auto jit = jit::CompiledProgram::create(g, outputs, LowerOptions{});
    if (!jit) FAIL(jit.error().message);
    if (m.randomBn)  // the emitted infer is the same program: every batchnorm folded
      for (const Node& n : (*jit)->optimizedGraph().nodes) CHECK(std::string(n.op->name).find("batchnorm") == std::string::npos);
    for (const auto& [name, t] : feeds)
      if (float* d = (*jit)->data(g.findByName(name))) std::copy_n(toFloats(t).data(), t.data.size(), d);
    (*jit)->run();

    // Train steps: the interpreter's params follow its own updates.
    auto step = buildTrainStep(g, e.train);
    REQUIRE(step);
    const Graph& sg = step->grads.graph;
    setRandomSeed(0);  // the JIT's dropout masks from the start of the stream, as a new process draws them
    auto trainJit = jit::CompiledProgram::create(sg, {sg.loss}, step->lowering());
    if (!trainJit) FAIL(trainJit.error().message);
    auto state = initParams(sg, 42);  // params and optimizer state
    REQUIRE(state);
    if (m.randomBn) randomizeBatchnorm(*state);
    for (const auto& [name, t] : *state)
      if (float* d = (*trainJit)->data(sg.findByName(name))) std::copy_n(toFloats(t).data(), t.data.size(), d);
    std::vector<float> lrs;
    std::vector<std::vector<float>> wantSteps, jitSteps;
    for (int s = 0; s < kSteps; ++s) {
      TensorMap f = randomFeeds(sg, 100 + static_cast<uint64_t>(s));
      for (ValueId v : sg.inputs)
        if (v != step->lr) writeFloats(in / (sg.node(v).name + std::to_string(s) + ".bin"), toFloats(f.at(sg.node(v).name)));
      for (ValueId v : sg.labels) writeFloats(in / (sg.node(v).name + std::to_string(s) + ".bin"), toFloats(f.at(sg.node(v).name)));
      lrs.push_back(static_cast<float>(step->lrAt(s)));
      f[sg.node(step->lr).name] = Tensor(sg.type(step->lr), {lrs.back()});
      for (const auto& [name, t] : *state) f[name] = t;
      std::vector<ValueId> targets = {sg.loss};
      for (const auto& pairs : {step->updates, step->state})
        for (auto [_, next] : pairs) targets.push_back(next);
      auto vals = interpret(sg, f, EvalOptions{false, true, 42}, targets);
      REQUIRE(vals);
      // The JIT, like the emitted class, keeps its own params and state.
      for (const auto& [name, t] : f)
        if (!state->count(name))
          if (float* d = (*trainJit)->data(sg.findByName(name))) std::copy_n(toFloats(t).data(), t.data.size(), d);
      (*trainJit)->run();
      std::vector<float> w = {static_cast<float>((*vals)[static_cast<size_t>(sg.loss)].data[0])};
      std::vector<float> j = {(*trainJit)->data(sg.loss)[0]};
      for (ValueId p : g.params) {
        const ValueId sp = sg.findByName(g.node(p).name);
        const auto next = std::find_if(step->updates.begin(), step->updates.end(), [&](auto u) { return u.first == sp; });
        REQUIRE(next != step->updates.end());
        const std::vector<float> nv = toFloats((*vals)[static_cast<size_t>(next->second)]);
        w.insert(w.end(), nv.begin(), nv.end());
        j.insert(j.end(), (*trainJit)->data(sp), (*trainJit)->data(sp) + (*trainJit)->size(sp));
      }
      for (auto& [name, t] : *state)  // the next step starts from the interpreter's updates
        for (const auto& pairs : {step->updates, step->state})
          for (auto [node, next] : pairs)
            if (sg.node(node).name == name) t = (*vals)[static_cast<size_t>(next)];
      wantSteps.push_back(std::move(w));
      jitSteps.push_back(std::move(j));
    }
    writeFloats(in / "lr.bin", lrs);

    for (const Variant& v : kVariants) {
      if (!builds(m, v)) continue;
      DYNAMIC_SECTION(m.name << " " << v.flags) {
        const fs::path out = variantDir(b, m, v) / "out";
        fs::create_directories(out);
        run((variantDir(b, m, v) / "driver").string() + " " + in.string() + " " + out.string() + " " +
            (modelDir(b, m) / (m.name + ".weights")).string());
        for (ValueId y : outputs) {
          const std::string& name = g.node(y).name;
          const std::vector<float> got = readFloats(out / (name + ".bin"));
          const std::vector<float> ref = toFloats((*want)[static_cast<size_t>(y)]);
          REQUIRE(got.size() == ref.size());
          requireClose(name, got.data(), ref.data(), got.size(), "interpreter");
          requireClose(name, got.data(), (*jit)->data(y), got.size(), "JIT");
        }
        for (int s = 0; s < kSteps; ++s) {
          INFO("train step " << s << ": the loss, then the params, in order");
          const std::vector<float> got = readFloats(out / ("step" + std::to_string(s) + ".bin"));
          REQUIRE(got.size() == wantSteps[static_cast<size_t>(s)].size());
          if (!m.dropout)  // the interpreter draws its own masks
            requireClose("step", got.data(), wantSteps[static_cast<size_t>(s)].data(), got.size(), "interpreter");
          requireClose("step", got.data(), jitSteps[static_cast<size_t>(s)].data(), got.size(), "JIT");
        }
      }
    }
  }
}

void checkPredict() {
  const Build& b = build();
  INFO(b.error);
  REQUIRE(b.error.empty());
  const ModelCase& m = kModels[1];  // simple_convnet, batch 4, params from an .npz
  SourceManager sm;
  const Elaborated e = loadModel(m, sm);
  Tensor x(TensorType{DType::F32, {6, 1, 28, 28}});  // two batches, the second padded
  Rng rng(11);
  for (double& v : x.data) v = static_cast<float>(rng.uniform());
  const std::string samples = (b.dir / "samples.npy").string();
  REQUIRE(writeNpy(samples, x));
  auto predict = runCli({"predict", sourcePath("examples/simple_convnet.nn"), "--set", "batch=4", "--weights",
                         (b.dir / "simple_convnet.npz").string(), "--input", samples, "--top", "1"});
  REQUIRE(predict.code == 0);
  static const std::regex line(R"(sample (\d+): (\d+)(?: \([^)]*\))? ([0-9.]+))");
  auto parse = [&](const std::string& text) {
    std::vector<std::pair<int, double>> r;
    for (std::sregex_iterator it(text.begin(), text.end(), line), end; it != end; ++it)
      r.emplace_back(std::stoi((*it)[2]), std::stod((*it)[3]));
    return r;
  };
  const auto want = parse(predict.out);
  REQUIRE(want.size() == 6);
  for (const Variant& v : kVariants) {
    INFO(v.flags);
    const fs::path vd = variantDir(b, m, v);
    const auto got = parse(run("cd " + vd.string() + " && ./main_example --weights " +
                               (modelDir(b, m) / "simple_convnet.weights").string() + " " + samples));
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].first == want[i].first);
      CHECK(std::abs(got[i].second - want[i].second) <= 2e-4);
    }
    CHECK_THAT(run("cd " + vd.string() + " && ./main_example --weights " +
                   (modelDir(b, m) / "simple_convnet.weights").string() + " --bench 2"),
               Catch::Contains("train_step median"));
  }
}

void checkClang() {
  const Build& b = build();
  REQUIRE(b.error.empty());
  if (std::system("command -v clang++-19 > /dev/null 2>&1") != 0) {
    WARN("clang++-19 not found: skipped");
    return;
  }
  std::vector<std::string> cmds;
  for (const ModelCase& m : kModels)
    for (const std::string& file : {m.name + ".cpp", std::string("main_example.cpp")})
      cmds.push_back("cd " + modelDir(b, m).string() + " && clang++-19 -fsyntax-only -Wall -Wextra -Werror " + file +
                     " > clang-" + file + ".log 2>&1");
  // clang 19 warns about -march=native itself on some hosts (Sapphire Rapids
  // VMs: "invalid feature combination: +avx10.1-256") whatever the file; that
  // warning says nothing of the emitted code, so it is switched off only when
  // an empty file shows it.
  std::string native = "-march=native";
  if (std::system("echo 'int main() {}' | clang++-19 -x c++ -fsyntax-only -Werror -march=native - > /dev/null 2>&1") != 0) {
    WARN("clang++-19 -march=native warns on an empty file on this host: -Wno-invalid-feature-combination added");
    native += " -Wno-invalid-feature-combination";
  }
  for (const std::string& flags : {std::string(), native})
    cmds.push_back("cd " + modelDir(b, kModels[0]).string() + " && clang++-19 -fsyntax-only -Wall -Wextra -Werror " +
                   flags + " nnc_runtime.cpp > clang-runtime" + flags.substr(0, flags.find(' ')) + ".log 2>&1");
  const std::vector<int> codes = runAll(cmds);
  for (size_t i = 0; i < cmds.size(); ++i) {
    const size_t log = cmds[i].rfind("> ") + 2, cd = 3, end = cmds[i].find(" &&");
    INFO(cmds[i] << "\n" << readText((fs::path(cmds[i].substr(cd, end - cd)) / cmds[i].substr(log, cmds[i].find(' ', log) - log)).string()));
    CHECK(codes[i] == 0);
  }
}

}  // namespace

// One test case, so that ctest (one process per test case) builds the emitted
// code once: each check is a section of it.
TEST_CASE("emit-cpp: the emitted C++ builds without warnings and computes what the JIT and the interpreter do",
          "[emit][cpp]") {
  SECTION("three_layer builds with plain g++ and prints what nnc eval prints") { checkThreeLayer(); }
  SECTION("the emitted files include no nnc, LLVM or fmt header") { checkIncludes(); }
  SECTION("inference and three train steps match the JIT and the interpreter") { checkAgainstJit(); }
  SECTION("main_example classifies samples as nnc predict does") { checkPredict(); }
  SECTION("the emitted files compile without warnings under clang++-19 too") { checkClang(); }
}

TEST_CASE("emit-cpp: errors in words", "[emit][cpp]") {
  const std::string dir = (fs::temp_directory_path() / ("nnc_emit_cpp_err_" + std::to_string(::getpid()))).string();
  auto noOut = runCli({"emit-cpp", sourcePath("examples/three_layer.nn")});
  CHECK(noOut.code == 1);
  CHECK_THAT(noOut.err, Catch::Contains("-o OUTDIR is required"));
  auto noLoss = runCli({"emit-cpp", sourcePath("examples/three_layer.nn"), "-o", dir, "--train"});
  CHECK(noLoss.code == 1);
  CHECK_THAT(noLoss.err, Catch::Contains("has no loss"));
  auto badNs = runCli({"emit-cpp", sourcePath("examples/three_layer.nn"), "-o", dir, "--namespace", "a-b"});
  CHECK(badNs.code == 1);
  CHECK_THAT(badNs.err, Catch::Contains("not a C++ namespace"));
  auto badBatch = runCli({"emit-cpp", sourcePath("examples/mnist_mlp.nn"), "-o", dir, "--batch", "0"});
  CHECK(badBatch.code == 1);
  auto ns = runCli({"emit-cpp", sourcePath("examples/three_layer.nn"), "-o", dir, "--namespace", "acme::models"});
  REQUIRE(ns.code == 0);
  CHECK_THAT(readText(dir + "/three_layer.hpp"), Catch::Contains("namespace acme::models {"));
  fs::remove_all(dir);
}

// Issue 18, item 10: emit-cpp used to overwrite a user's CMakeLists.txt and
// main_example.cpp in the -o folder.
TEST_CASE("emit-cpp replaces only its own unchanged files unless --force", "[emit][cpp]") {
  const std::string dir = nnc::test::tempDir("emit_over");
  const std::string model = sourcePath("examples/three_layer.nn");
  auto emit = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"emit-cpp", model, "-o", dir};
    a.insert(a.end(), extra.begin(), extra.end());
    return runCli(a);
  };
  // A project of the user's own, with a CMakeLists.txt and a main_example.cpp.
  std::ofstream(dir + "/CMakeLists.txt") << "project(mine)\n";
  std::ofstream(dir + "/main_example.cpp") << "int main() { return 0; }\n";
  std::ofstream(dir + "/notes.txt") << "mine\n";
  auto refused = emit({});
  INFO(refused.out << refused.err);
  CHECK(refused.code == 1);
  CHECK_THAT(refused.err, Catch::Contains("-o " + dir + ": 'main_example.cpp', 'CMakeLists.txt' are already there and "
                                          "were not written by nnc emit-cpp") &&
                              Catch::Contains("nothing was written") && Catch::Contains("--force"));
  CHECK(readText(dir + "/CMakeLists.txt") == "project(mine)\n");
  CHECK(readText(dir + "/main_example.cpp") == "int main() { return 0; }\n");
  CHECK_FALSE(fs::exists(dir + "/three_layer.cpp"));  // all or nothing
  // An empty folder: written, with the list of what was written.
  fs::remove(dir + "/CMakeLists.txt");
  fs::remove(dir + "/main_example.cpp");
  REQUIRE(emit({}).code == 0);
  const std::string manifest = readText(dir + "/.nnc-emitted");
  CHECK_THAT(manifest, Catch::Contains("  CMakeLists.txt\n") && Catch::Contains("  three_layer.hpp\n") &&
                           !Catch::Contains("notes.txt"));
  CHECK(readText(dir + "/notes.txt") == "mine\n");
  // Its own unchanged output is replaced (here with other code: -O0).
  const std::string before = readText(dir + "/three_layer.cpp");
  auto again = emit({"-O0"});
  INFO(again.err);
  CHECK(again.code == 0);
  CHECK(readText(dir + "/three_layer.cpp") != before);
  // A file the user edited since is not.
  std::ofstream(dir + "/main_example.cpp", std::ios::app) << "// my change\n";
  auto edited = emit({});
  CHECK(edited.code == 1);
  CHECK_THAT(edited.err, Catch::Contains("'main_example.cpp' is already there and was not written by nnc emit-cpp "
                                         "(or was changed since)") && Catch::Contains("--force to replace it"));
  CHECK_THAT(readText(dir + "/main_example.cpp"), Catch::EndsWith("// my change\n"));
  // --force replaces it, and the manifest vouches for the new file.
  REQUIRE(emit({"--force"}).code == 0);
  CHECK_THAT(readText(dir + "/main_example.cpp"), !Catch::Contains("// my change"));
  CHECK(emit({"-O0"}).code == 0);
  // A damaged manifest vouches for nothing.
  std::ofstream(dir + "/.nnc-emitted", std::ios::trunc) << "garbage\n";
  CHECK(emit({}).code == 1);
  CHECK(readText(dir + "/notes.txt") == "mine\n");
  fs::remove_all(dir);
}
