#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "compiler/passes/pipeline.h"
#include "runtime/conv_geom.h"
#include "io/npy.h"
#include "runtime/parallel.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::runCli;
using nnc::test::tempDir;
using nnc::test::sourcePath;

TEST_CASE("nnc check simple_convnet reports 433,890 params", "[cli]") {
  auto r = runCli({"check", sourcePath("examples/simple_convnet.nn")});
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("total params: 433,890 (trainable: 433,890, non-trainable: 0)"));
  // Keras-style rows: one per layer call, with its params (30·5·5 + 30, 4320·100 + 100, 100·10 + 10).
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*  conv1 +conv2d +f32\\[100, 30, 24, 24\\] +780\n(.|\n)*"));
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*  fc1 +dense +f32\\[100, 100\\] +432,100\n(.|\n)*"));
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*  logits \\(fc2\\) +dense +f32\\[100, 10\\] +1,010\n(.|\n)*"));
}

TEST_CASE("nnc eval three_layer prints the course notes' output", "[cli]") {
  // The notes (NumPy, float64) print [0.32882937, 0.72300564]. In f32 nnc prints
  // what NumPy prints for the same network in float32; both are within 1e-6.
  auto r = runCli({"eval", sourcePath("examples/three_layer.nn")});
  REQUIRE(r.code == 0);
  CHECK(r.out == "y = [0.32882938, 0.72300565]\n");
  auto d = runCli({"eval", sourcePath("examples/three_layer.nn"), "--f64"});
  REQUIRE(d.code == 0);
  CHECK(d.out == "y = [0.3288293749181782, 0.7230056356841381]\n");
}

TEST_CASE("nnc eval reads inputs and writes outputs as .npy", "[cli]") {
  const std::string dir = tempDir("eval");
  REQUIRE(writeNpy(dir + "/x.npy", Tensor(TensorType{DType::F32, {2}}, {1.0, 0.5})));
  auto r = runCli({"eval", sourcePath("examples/three_layer.nn"), "--input", "x=" + dir + "/x.npy", "--output-dir",
                   dir + "/out"});
  REQUIRE(r.code == 0);
  auto y = readNpy(dir + "/out/y.npy");
  REQUIRE(y);
  REQUIRE(y->data.size() == 2);
  CHECK(y->data[0] == Approx(0.31682708).margin(1e-6));
  CHECK(y->data[1] == Approx(0.69627909).margin(1e-6));
  std::filesystem::remove_all(dir);
}

TEST_CASE("nnc eval with weights, inputs and labels computes the loss", "[cli]") {
  const std::string dir = tempDir("evalw");
  // A 2-class linear model whose loss is worked out by hand: logits = x @ W.
  const std::string model = dir + "/lin.nn";
  std::ofstream(model) << "model lin { input x: f32[1, 2] label t: i32[1] param W: f32[2, 2] = zeros()\n"
                          "logits = x @ W  loss = softmax_cross_entropy(logits, t) output p = softmax(logits) }\n";
  REQUIRE(writeNpz(dir + "/w.npz", {{"W", Tensor(TensorType{DType::F32, {2, 2}}, {1, 0, 0, 1})}}));
  REQUIRE(writeNpy(dir + "/x.npy", Tensor(TensorType{DType::F32, {1, 2}}, {2, 0})));
  REQUIRE(writeNpy(dir + "/t.npy", Tensor(TensorType{DType::I32, {1}}, {1})));
  auto r = runCli({"eval", model, "--weights", dir + "/w.npz", "--input", "x=" + dir + "/x.npy", "--input",
                   "t=" + dir + "/t.npy"});
  REQUIRE(r.code == 0);
  // logits [2, 0]: p = [e^2, 1] / (e^2 + 1) = [0.880797078, 0.119202922];
  // loss = -log p[1] = log(e^2 + 1) = 2.12692801 (printed as the nearest f32s).
  CHECK(r.out == "p = [[0.8807971, 0.11920292]]\nloss = 2.126928\n");
  std::filesystem::remove_all(dir);
}

TEST_CASE("nnc eval without an input value says which input", "[cli]") {
  auto r = runCli({"eval", sourcePath("examples/mnist_mlp.nn")});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("no value given for input 'x' (f32[100, 784])"));
}

TEST_CASE("nnc graph prints the IR, --dot prints Graphviz", "[cli][golden]") {
  auto r = runCli({"graph", sourcePath("examples/three_layer.nn")});
  REQUIRE(r.code == 0);
  CHECK(test::matchesGolden(r.out, "three_layer.graph"));
  auto d = runCli({"graph", sourcePath("examples/gates.nn"), "--dot"});
  REQUIRE(d.code == 0);
  CHECK_THAT(d.out, Catch::StartsWith("digraph \"gates\" {"));
  CHECK_THAT(d.out, Catch::Contains("label=\"XOR\""));
}

TEST_CASE("a malformed model gets file:line:col, the line and a caret", "[cli][diagnostics]") {
  const std::string dir = tempDir("bad");
  std::ofstream(dir + "/bad.nn") << "model m {\n  input x: f32[2, 3]\n  h = relu(x @ )\n}\n";
  auto r = runCli({"check", dir + "/bad.nn"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::StartsWith(dir + "/bad.nn:3:16: error: "));
  CHECK_THAT(r.err, Catch::Contains("\n    h = relu(x @ )\n                 ^\n"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("command line errors are reported in words", "[cli]") {
  CHECK(runCli({}).code == 1);
  auto v = runCli({"--version"});
  CHECK(v.code == 0);
  CHECK_THAT(v.out, Catch::StartsWith("nnc 0.1.0 (LLVM 19."));
  auto h = runCli({"help", "eval"});
  CHECK(h.code == 0);
  CHECK_THAT(h.out, Catch::Contains("--output-dir DIR"));
  auto u = runCli({"frobnicate", "x.nn"});
  CHECK(u.code == 1);
  CHECK_THAT(u.err, Catch::Contains("unknown command 'frobnicate'"));
  auto o = runCli({"check", sourcePath("examples/gates.nn"), "--bogus"});
  CHECK(o.code == 1);
  CHECK_THAT(o.err, Catch::Contains("unknown option '--bogus'"));
  auto m = runCli({"check", "/nonexistent/model.nn"});
  CHECK(m.code == 1);
  CHECK_THAT(m.err, Catch::Contains("cannot open '/nonexistent/model.nn'"));
  auto s = runCli({"check", sourcePath("examples/mnist_mlp.nn"), "--set", "batch=x"});
  CHECK(s.code == 1);
  CHECK_THAT(s.err, Catch::Contains("'x' is not an integer"));
}

TEST_CASE("every example checks", "[cli][examples]") {
  for (const auto& e : std::filesystem::directory_iterator(sourcePath("examples"))) {
    if (e.path().extension() != ".nn") continue;
    INFO(e.path());
    auto r = runCli({"check", e.path().string()});
    INFO(r.err);
    CHECK(r.code == 0);
  }
}

TEST_CASE("the nnc binary exits 1 on a bad model and 0 on a good one", "[cli]") {
  const std::string bin = NNC_BINARY;
  CHECK(std::system((bin + " check " + sourcePath("examples/gates.nn") + " > /dev/null").c_str()) == 0);
  CHECK(WEXITSTATUS(std::system((bin + " check /nonexistent.nn 2> /dev/null").c_str())) == 1);
}

TEST_CASE("the interpreter refuses in words what would not fit in memory", "[cli]") {
  const std::string dir = tempDir("huge");
  std::ofstream(dir + "/huge.nn") << "model m { input x: f32[30000, 30000] = 1.0 output y = relu(x) }\n";
  auto r = runCli({"eval", dir + "/huge.nn"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("the reference interpreter would need 13.4 GiB"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("nnc eval --grads writes every param gradient", "[cli][autodiff]") {
  const std::string dir = tempDir("grads");
  // loss = softmax_cross_entropy(x @ W, t) with W = 0: p = [1/2, 1/2], so
  // dW = x^T (p - onehot(t)) / N = [[1], [2]] . [0.5, -0.5] for x = [1, 2], t = 1.
  std::ofstream(dir + "/lin.nn") << "model lin { input x: f32[1, 2] label t: i32[1] param W: f32[2, 2] = zeros()\n"
                                    "loss = softmax_cross_entropy(x @ W, t) }\n";
  REQUIRE(writeNpy(dir + "/x.npy", Tensor(TensorType{DType::F32, {1, 2}}, {1, 2})));
  REQUIRE(writeNpy(dir + "/t.npy", Tensor(TensorType{DType::I32, {1}}, {1})));
  auto r = runCli({"eval", dir + "/lin.nn", "--grads", "--input", "x=" + dir + "/x.npy", "--input",
                   "t=" + dir + "/t.npy", "--output-dir", dir + "/out"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto g = readNpy(dir + "/out/grad_W.npy");
  REQUIRE(g);
  CHECK(g->shape() == Shape{2, 2});
  CHECK(g->data == std::vector<double>{0.5, -0.5, 1.0, -1.0});
  auto noLabels = runCli({"eval", dir + "/lin.nn", "--grads", "--input", "x=" + dir + "/x.npy"});
  CHECK(noLabels.code == 1);
  CHECK_THAT(noLabels.err, Catch::Contains("--grads needs the labels"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("nnc run --profile times the train step's and the inference's kernels, costliest first", "[cli][train]") {
  auto r = runCli({"run", sourcePath("examples/mnist_mlp.nn"), "--limit", "200", "--profile"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  for (const char* what : {"train step", "inference"}) {
    std::smatch m;
    REQUIRE(std::regex_search(r.out, m, std::regex(std::string(what) + R"( profile \(20 runs, ([0-9.]+) ms per run\):\n((  .*\n)+))")));
    CHECK(std::stod(m[1].str()) > 0);
    // Each line: ms, % of the run, the kernel; in falling order of ms.
    std::vector<double> ms;
    const std::string lines = m[2].str();
    const std::regex line(R"(  +([0-9.]+) ms +([0-9.]+)%  \S)");
    for (auto it = std::sregex_iterator(lines.begin(), lines.end(), line); it != std::sregex_iterator(); ++it)
      ms.push_back(std::stod((*it)[1].str()));
    CHECK(ms.size() >= 2);
    CHECK(std::is_sorted(ms.rbegin(), ms.rend()));
  }
  CHECK(r.out.find("train step profile") < r.out.find("inference profile"));
}

TEST_CASE("nnc run trains mnist_mlp on Fashion-MNIST (JIT)", "[cli][train]") {
  const std::string dir = tempDir("run");
  auto r = runCli({"run", sourcePath("examples/mnist_mlp.nn"), "--limit", "1000", "--epochs", "2", "--log-every", "0",
                   "--metrics", dir + "/m.csv", "--plot", dir + "/p.svg"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // The metrics: a train row per step (log-every 0) and a test row per epoch.
  const std::string csv = test::readText(dir + "/m.csv");
  CHECK_THAT(csv, Catch::StartsWith("epoch,step,split,loss,accuracy,samples_per_sec\n1,1,train,"));
  // The epoch rows: train accuracy and samples/s; test loss and accuracy.
  CHECK(std::regex_search(csv, std::regex("\n2,20,train,,0\\.[0-9]+,[0-9.e+]+\n")));
  CHECK(std::regex_search(csv, std::regex("\n2,20,test,[0-9.]+,0\\.[0-9]+,\n")));
  CHECK_THAT(test::readText(dir + "/p.svg"), Catch::StartsWith("<?xml") && Catch::Contains(">accuracy<") && Catch::Contains("</svg>"));
  std::filesystem::remove_all(dir);
  // Two epochs of 10 SGD steps: the training loss falls and the model beats chance (0.1).
  std::smatch m;
  std::vector<double> loss, acc;
  const std::regex line(
      "epoch [0-9]+: train loss ([0-9.]+), train accuracy [0-9.]+, test accuracy ([0-9.]+) \\(10000 samples\\)");
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), line); it != std::sregex_iterator(); ++it) {
    loss.push_back(std::stod((*it)[1]));
    acc.push_back(std::stod((*it)[2]));
  }
  REQUIRE(loss.size() == 2);
  CHECK(loss[1] < loss[0]);
  CHECK(acc[1] > 0.25);
}

namespace {
// The train rows' losses of a metrics CSV, in step order.
std::vector<double> trainLosses(const std::string& csv) {
  std::vector<double> v;
  const std::regex row("\n[0-9]+,[0-9]+,train,([-0-9.e]+),");
  for (auto it = std::sregex_iterator(csv.begin(), csv.end(), row); it != std::sregex_iterator(); ++it)
    v.push_back(std::stod((*it)[1]));
  return v;
}

std::vector<double> lossCurve(const std::vector<std::string>& args, const std::string& backend) {
  const std::string dir = tempDir("curve_" + backend);
  std::vector<std::string> a = args;
  for (const char* s : {"--log-every", "1", "--epochs", "1", "--backend"}) a.push_back(s);
  a.push_back(backend);
  a.push_back("--metrics");
  a.push_back(dir + "/m.csv");
  auto r = runCli(a);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  auto v = trainLosses(test::readText(dir + "/m.csv"));
  std::filesystem::remove_all(dir);
  return v;
}
}  // namespace

// The JIT's train step (forward, backward, SGD update, one native call) and
// the reference interpreter's walk the same loss curve, step by step.
TEST_CASE("nnc run: the JIT and the interpreter give the same loss curve", "[cli][train][jit]") {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"run", sourcePath("examples/mnist_mlp.nn"), "--limit", "2000"},
        std::vector<std::string>{"run", sourcePath("examples/simple_convnet.nn"), "--set", "batch=10", "--limit", "100",
                                 "--test-limit", "100"}}) {
    INFO(args[1]);
    const auto jit = lossCurve(args, "jit"), interp = lossCurve(args, "interp");
    REQUIRE(jit.size() == interp.size());
    REQUIRE(jit.size() >= 10);
    for (size_t i = 0; i < jit.size(); ++i) {
      INFO("step " << i + 1 << ": JIT " << jit[i] << ", interpreter " << interp[i]);
      CHECK(std::abs(jit[i] - interp[i]) <= 1e-4 * std::max(1.0, std::abs(interp[i])));
    }
  }
}

// -O0 turns every pass and fusion off (and LLVM's optimizations): the same
// model, computed op by op, walks the same first 20 losses.
TEST_CASE("nnc run: -O0 and the default give the same first 20 losses", "[cli][train][passes]") {
  const std::vector<std::string> args = {"run", sourcePath("examples/simple_convnet.nn"), "--limit", "2000",
                                         "--test-limit", "100"};
  std::vector<std::string> o0 = args;
  o0.push_back("-O0");
  const auto fused = lossCurve(args, "jit"), plain = lossCurve(o0, "jit");
  REQUIRE(fused.size() >= 20);
  REQUIRE(plain.size() == fused.size());
  for (size_t i = 0; i < 20; ++i) {
    INFO("step " << i + 1 << ": default " << fused[i] << ", -O0 " << plain[i]);
    CHECK(std::abs(fused[i] - plain[i]) <= 1e-4 * std::max(1.0, std::abs(plain[i])));
  }
}

TEST_CASE("nnc bench prints fused against unfused, --no-fuse and --dump-after are checked", "[cli][passes]") {
  auto r = runCli({"bench", sourcePath("examples/three_layer.nn"), "--min-time", "0.01", "--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"program\": \"infer\", \"variant\": \"fused\""));
  CHECK_THAT(r.out, Catch::Contains("\"variant\": \"unfused\""));
  CHECK_THAT(r.out, Catch::Contains("\"speedup\": {\"infer\": "));
  auto bad = runCli({"bench", sourcePath("examples/three_layer.nn"), "--no-fuse=conv,bogus"});
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains("--no-fuse: unknown fusion or pass 'bogus'"));
  auto dump = runCli({"graph", sourcePath("examples/simple_convnet.nn"), "--train", "--dump-after=fuse-pool"});
  REQUIRE(dump.code == 0);
  CHECK_THAT(dump.out, Catch::StartsWith("# after fuse-pool\n"));
  CHECK_THAT(dump.out, Catch::Contains("maxpool2d_relu_grad("));
  CHECK_THAT(dump.out, Catch::Contains("= conv2d_fused("));
  auto lowered = runCli({"graph", sourcePath("examples/mnist_mlp.nn"), "--train", "--dump-after=lower"});
  REQUIRE(lowered.code == 0);
  CHECK_THAT(lowered.out, Catch::Contains("_fused_softmax_ce(logits[1000], t[100], loss[1]"));
}

TEST_CASE("nnc bench lists each convolution's algorithm, --conv-algos times each forced one", "[cli][passes]") {
  // Small batch: the output's shape is under test, not the timings.
  const std::vector<std::string> base{"bench", sourcePath("examples/blocks/depthwise_separable.nn"), "--set", "batch=2",
                                      "--min-time", "0.001", "--threads", "1", "--conv-algos"};
  auto r = runCli(base);
  INFO(r.err);
  REQUIRE(r.code == 0);
  const size_t layers = r.out.find("\nconvolutions of the fused programs"), forced = r.out.find("\nconvolution algorithms forced");
  REQUIRE(layers != std::string::npos);
  REQUIRE(forced != std::string::npos);
  CHECK(r.out.find("train_step  speedup") < layers);  // after the fused-vs-unfused table
  CHECK(layers < forced);
  // One row per fused convolution: 3 forward, 2 input and 3 weight
  // gradients in the train step; inference's three forward, two pooled.
  const std::string table = r.out.substr(layers, forced - layers);
  std::map<std::string, int> rows;
  const std::regex row(R"(\n(train_step|infer) +(\S+( \w+)?) +(conv\w+) +(forward|input grad|weight grad) +(\d+x\d+x\d+x\d+ -> \d+, [^\n]*[^ ]) +(\w+)(?=\n))");
  for (auto it = std::sregex_iterator(table.begin(), table.end(), row); it != std::sregex_iterator(); ++it) {
    ++rows[(*it)[1].str() + " " + (*it)[5].str()];
    ConvAlgo a{};
    CHECK(convAlgoFromName((*it)[7].str().c_str(), &a));
    CHECK(a != ConvAlgo::Auto);  // the pass wrote a concrete one
  }
  CHECK(rows == std::map<std::string, int>{{"train_step forward", 3}, {"train_step input grad", 2},
                                           {"train_step weight grad", 3}, {"infer forward", 3}});
  CHECK_THAT(table, Catch::Contains("2x32x14x14 -> 32, 3x3 s1 p1 g32"));  // the depthwise layer
  CHECK_THAT(table, Catch::Contains("2x32x14x14 -> 64, 1x1 s1 p0 pool2"));
  // Per program, auto first, then the GEMM (it fits every layer), each
  // other algorithm only where it fits some layer.
  const std::string timed = r.out.substr(forced);
  const std::regex algoRow(R"(\n(train_step|infer) +(\w+) +(\d+)/(\d+) +[0-9.]+ +[0-9.]+ +\d+ +\d+ +[0-9.]+x)");
  std::vector<std::string> seen;
  for (auto it = std::sregex_iterator(timed.begin(), timed.end(), algoRow); it != std::sregex_iterator(); ++it) {
    seen.push_back((*it)[1].str() + " " + (*it)[2].str());
    CHECK(std::stoi((*it)[3]) >= 1);
    CHECK(std::stoi((*it)[4]) == ((*it)[1] == "infer" ? 3 : 8));
    if ((*it)[2] == "auto" || (*it)[2] == "gemm") CHECK((*it)[3] == (*it)[4]);
  }
  REQUIRE(seen.size() >= 4);
  CHECK(seen[0] == "train_step auto");
  CHECK(seen[1] == "train_step gemm");
  CHECK(std::count(seen.begin(), seen.end(), "infer auto") == 1);
  CHECK(std::count(seen.begin(), seen.end(), "infer gemm") == 1);
  // The same in JSON; without --conv-algos no forced timings.
  std::vector<std::string> json = base;
  json.back() = "--json";
  auto j = runCli(json);
  REQUIRE(j.code == 0);
  CHECK_THAT(j.out, Catch::Contains("\"conv_layers\": [\n  {\"program\": \"train_step\", \"node\": \"%4 conv1\", "
                                    "\"op\": \"conv2d_fused\", \"direction\": \"forward\", \"geometry\": \"2x1x28x28 -> 32, 3x3 s1 p1\""));
  CHECK(j.out.find("\"conv_algos\"") == std::string::npos);
  // A forced algorithm shows in the list.
  auto g = runCli({"bench", sourcePath("examples/simple_convnet.nn"), "--set", "batch=2", "--min-time", "0.001",
                   "--conv-algo=gemm"});
  REQUIRE(g.code == 0);
  CHECK_THAT(g.out, Catch::Matches("(.|\n)*\ninfer +p +conv2d_pool_fused +forward +2x1x28x28 -> 30, 5x5 s1 p0 pool2 +gemm\n(.|\n)*"));
}

TEST_CASE("lowering's fusions: -v logs what each grouped, and which are off", "[cli][passes]") {
  // compiler/lower/fusion_groups.cpp: one line per fusion, after the passes.
  auto on = runCli({"graph", sourcePath("examples/mnist_mlp.nn"), "--train", "--dump-after=lower", "-v"});
  REQUIRE(on.code == 0);
  CHECK_THAT(on.out, Catch::Contains("pass dce               139 ->  139 nodes\n"
                                     "pass conv-algo         139 ->  139 nodes\n"
                                     "pass overlap-allreduce  139 ->  139 nodes\n"
                                     "fuse elementwise      70 values computed in their reader's loop\n"
                                     "fuse multi-output      7 groups of 20 values in all, one loop each\n"
                                     "fuse softmax_ce        1 loss and gradient pairs, one kernel each\n"
                                     "# after lower\n"));
  auto off = runCli({"graph", sourcePath("examples/mnist_mlp.nn"), "--train", "--dump-after=lower", "-v",
                     "--no-fuse=elementwise,softmax_ce"});
  REQUIRE(off.code == 0);
  CHECK_THAT(off.out, Catch::Contains("fuse elementwise     off\nfuse multi-output    off\nfuse softmax_ce      off\n"));
  // Without -v, nothing but the dump.
  auto quiet = runCli({"graph", sourcePath("examples/mnist_mlp.nn"), "--train", "--dump-after=lower"});
  CHECK_THAT(quiet.out, Catch::StartsWith("# after lower\n"));
}

TEST_CASE("nnc run reports missing data and mismatched shapes in words", "[cli][train]") {
  auto d = runCli({"run", sourcePath("examples/mnist_mlp.nn"), "--data", "/nonexistent/dir"});
  CHECK(d.code == 1);
  CHECK_THAT(d.err, Catch::Contains("no train images in '/nonexistent/dir'"));
  const std::string dir = tempDir("runshape");
  std::ofstream(dir + "/m.nn") << "model m { input x: f32[10, 100] label t: i32[10] param W: f32[100, 10] = he()\n"
                                  "loss = softmax_cross_entropy(x @ W, t) }\n";
  auto s = runCli({"run", dir + "/m.nn", "--limit", "10"});
  CHECK(s.code == 1);
  CHECK_THAT(s.err, Catch::Contains("the data are 1×28×28 images per sample, but model 'm' takes input f32[10, 100] (expected [batch, 784]"));
  std::filesystem::remove_all(dir);
}

namespace {

std::string slurp(const std::string& path) { return nnc::test::readText(path); }

// A small classifier trained in a moment on a six-row CSV, for the commands
// that need a checkpoint.
const char* kSmallModel =
    "model m(batch = 2) {\n"
    "    input x: f32[batch, 4]\n"
    "    label t: i32[batch]\n"
    "    logits = dense(x, 3)\n"
    "    loss = softmax_cross_entropy(logits, t)\n"
    "    output probs = softmax(logits)\n"
    "}\n";

}  // namespace

// Issue 18, item 15.
TEST_CASE("emit-llvm -o - is standard output, not a file named '-'", "[cli]") {
  namespace fs = std::filesystem;
  REQUIRE_FALSE(fs::exists("-"));
  auto r = runCli({"emit-llvm", sourcePath("examples/mnist_mlp.nn"), "--infer", "-o", "-"});
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("define void @infer"));
  CHECK_FALSE(fs::exists("-"));
  fs::remove("-");
  auto l = runCli({"emit-llvm", sourcePath("examples/mnist_mlp.nn"), "--infer", "--output=-"});
  CHECK(l.out == r.out);
  CHECK_FALSE(fs::exists("-"));
  fs::remove("-");
  // emit-cpp writes a folder of files: refused in words, nothing written.
  auto c = runCli({"emit-cpp", sourcePath("examples/mnist_mlp.nn"), "-o", "-"});
  CHECK(c.code == 1);
  CHECK_THAT(c.err, Catch::Contains("-o -: emit-cpp writes several files"));
  CHECK_FALSE(fs::exists("-"));
  fs::remove_all("-");
}

// Issue 18, item 16: one module per thread was printed one after another.
TEST_CASE("nnc emit-llvm -o F.ll writes one module that llvm-as accepts", "[cli][jit]") {
  const std::string dir = tempDir("emit_llvm_one");
  const int threads = threadCount();
  setThreadCount(3);  // three modules to link, whatever the machine
  auto r = runCli({"emit-llvm", sourcePath("examples/mnist_mlp.nn"), "-o", dir + "/step.ll"});
  auto i = runCli({"emit-llvm", sourcePath("examples/simple_convnet.nn"), "--infer", "-o", dir + "/infer.ll"});
  setThreadCount(threads);
  INFO(r.err << i.err);
  REQUIRE(r.code == 0);
  REQUIRE(i.code == 0);
  for (const char* f : {"/step.ll", "/infer.ll"}) {
    const std::string ir = slurp(dir + f);
    INFO(f);
    CHECK(std::count(ir.begin(), ir.end(), '\n') > 100);
    size_t modules = 0;
    for (size_t at = ir.find("; ModuleID"); at != std::string::npos; at = ir.find("; ModuleID", at + 1)) ++modules;
    CHECK(modules == 1);
    CHECK(ir.find("source_filename = \"") != std::string::npos);
  }
  CHECK_THAT(slurp(dir + "/step.ll"), Catch::Contains("define void @train_step"));
  if (std::system("command -v llvm-as-19 > /dev/null 2>&1") != 0) {
    WARN("llvm-as-19 is not installed: the written IR was not assembled");
  } else {
    for (const char* f : {"/step.ll", "/infer.ll"}) {
      const std::string cmd = "llvm-as-19 '" + dir + f + "' -o /dev/null 2> '" + dir + "/as.err'";
      INFO(f << ": " << slurp(dir + "/as.err"));
      CHECK(std::system(cmd.c_str()) == 0);
    }
  }
  std::filesystem::remove_all(dir);
}

// Issue 18, item 17.
TEST_CASE("the nnc binary exits 1 when standard output cannot be written", "[cli]") {
  const std::string bin = NNC_BINARY, dir = tempDir("dev_full");
  const std::string gates = sourcePath("examples/gates.nn");
  for (const std::string& args : std::vector<std::string>{"check " + gates, "graph " + gates, "--help", "help ops"}) {
    INFO(args);
    const int st = std::system((bin + " " + args + " > /dev/full 2> '" + dir + "/err'").c_str());
    CHECK(WEXITSTATUS(st) == 1);
    CHECK_THAT(slurp(dir + "/err"), Catch::Contains("nnc: error writing to standard output"));
  }
  // A failure already reported keeps its own message and exit code.
  const int bad = std::system((bin + " check /nonexistent.nn > /dev/full 2> '" + dir + "/err'").c_str());
  CHECK(WEXITSTATUS(bad) == 1);
  CHECK_THAT(slurp(dir + "/err"), Catch::Contains("/nonexistent.nn"));
  CHECK(std::system((bin + " check " + gates + " > /dev/null").c_str()) == 0);
  std::filesystem::remove_all(dir);
}

// Issue 18, item 19.
TEST_CASE("nnc graph --dot --dump-after=PASS prints the dumps as Graphviz", "[cli][passes]") {
  const std::string mlp = sourcePath("examples/mnist_mlp.nn");
  auto one = runCli({"graph", mlp, "--dot", "--dump-after=fuse-epilogue"});
  INFO(one.err);
  REQUIRE(one.code == 0);
  CHECK(one.out.rfind("# after fuse-epilogue\ndigraph ", 0) == 0);
  CHECK(one.out.find("graph mnist_mlp {") == std::string::npos);  // the text form's header
  CHECK(one.out.find("matmul_fused") != std::string::npos);
  auto all = runCli({"graph", mlp, "--train", "--dot", "--dump-after=all"});
  REQUIRE(all.code == 0);
  size_t dumps = 0, digraphs = 0;
  for (size_t at = all.out.find("# after "); at != std::string::npos; at = all.out.find("# after ", at + 1)) ++dumps;
  for (size_t at = all.out.find("\ndigraph "); at != std::string::npos; at = all.out.find("\ndigraph ", at + 1)) ++digraphs;
  // One dump per pass run (dce runs twice), as -v logs them.
  auto log = runCli({"graph", mlp, "--train", "--optimized", "-v"});
  size_t runs = 0;
  for (size_t at = log.out.find("\npass "); at != std::string::npos; at = log.out.find("\npass ", at + 1)) ++runs;
  runs += log.out.rfind("pass ", 0) == 0;
  CHECK(runs > passNames().size() - 1);
  CHECK(dumps == runs);
  CHECK(digraphs == dumps);
  CHECK(all.out.find("# after lower") == std::string::npos);
  auto text = runCli({"graph", mlp, "--dump-after=fuse-epilogue"});
  CHECK(text.out.rfind("# after fuse-epilogue\ngraph mnist_mlp {", 0) == 0);
  auto lower = runCli({"graph", mlp, "--dot", "--dump-after=lower"});
  CHECK(lower.code == 1);
  CHECK_THAT(lower.err, Catch::Contains("the loop IR has no Graphviz form"));
}

// Issue 18, item 20: -O and --no-fuse, documented for every command that
// compiles, are taken by predict and eval with a checkpoint.
TEST_CASE("nnc predict and nnc eval --weights CKPT take -O and --no-fuse", "[cli][passes]") {
  const std::string dir = tempDir("predict_opts");
  std::ofstream(dir + "/m.nn") << kSmallModel;
  {
    std::ofstream csv(dir + "/d.csv");
    csv << "label,a,b,c,d\n";
    for (int i = 0; i < 40; ++i) csv << i % 3 << "," << i % 7 << ",1,0," << (5 * i) % 11 << "\n";
  }
  auto train = runCli({"run", dir + "/m.nn", "--data", dir + "/d.csv", "--save", dir + "/ck", "-q"});
  INFO(train.out << train.err);
  REQUIRE(train.code == 0);
  REQUIRE(writeNpy(dir + "/x.npy", Tensor(TensorType{DType::F32, {2, 4}}, {0, 1, 0, 5, 3, 1, 0, 2})));
  const std::vector<std::string> predict = {"predict", dir + "/m.nn", "--weights", dir + "/ck", "--input", dir + "/x.npy"};
  auto base = runCli(predict);
  INFO(base.err);
  REQUIRE(base.code == 0);
  for (const std::vector<std::string>& extra : std::vector<std::vector<std::string>>{
           {"-O0"}, {"-O1"}, {"--no-fuse=all"}, {"--no-fuse", "epilogue,softmax_ce"}}) {
    auto args = predict;
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = runCli(args);
    INFO(extra[0] << ": " << r.err);
    CHECK(r.code == 0);
    CHECK(r.out == base.out);
  }
  // Applied, not only accepted: the dump shows what was compiled.
  auto fused = runCli({"predict", dir + "/m.nn", "--weights", dir + "/ck", "--input", dir + "/x.npy", "--dump-after=lower"});
  auto unfused = runCli({"predict", dir + "/m.nn", "--weights", dir + "/ck", "--input", dir + "/x.npy", "--dump-after=lower",
                         "--no-fuse=epilogue"});
  REQUIRE(fused.code == 0);
  REQUIRE(unfused.code == 0);
  CHECK_THAT(fused.out, Catch::Contains("# after lower") && Catch::Contains("matmul_fused"));
  CHECK_THAT(unfused.out, Catch::Contains("# after lower") && !Catch::Contains("matmul_fused"));
  auto bad = runCli({"predict", dir + "/m.nn", "--weights", dir + "/ck", "--input", dir + "/x.npy", "--no-fuse=bogus"});
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains("--no-fuse: unknown fusion or pass 'bogus'"));
  const std::vector<std::string> eval = {"eval", dir + "/m.nn", "--weights", dir + "/ck", "--data", dir + "/d.csv"};
  auto e0 = runCli(eval);
  INFO(e0.err);
  REQUIRE(e0.code == 0);
  for (const char* extra : {"-O0", "-O2", "--no-fuse=all"}) {
    auto args = eval;
    args.push_back(extra);
    auto r = runCli(args);
    INFO(extra << ": " << r.err);
    CHECK(r.code == 0);
    CHECK(r.out == e0.out);
  }
  // The interpreter compiles nothing: refused in words rather than ignored.
  auto interp = runCli({"eval", dir + "/m.nn", "--input", "x=" + dir + "/x.npy", "-O1"});
  CHECK(interp.code == 1);
  CHECK_THAT(interp.err, Catch::Contains("-O1: nnc eval compiles (and so optimizes) only with --weights CKPT"));
  std::filesystem::remove_all(dir);
}

// Issue 18, item 20: nnc check accepted train settings nnc run refused.
TEST_CASE("nnc check refuses the train settings nnc run refuses, at file:line:col", "[cli][train]") {
  const std::string dir = tempDir("check_train");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"optimizer = sgd(lr = 0.1, momentum = 0.9)", "optimizer 'sgd' has no argument 'momentum' (its arguments: lr)"},
      {"schedule = linear(total = 3)",
       "unknown schedule 'linear' (known: constant(), step(every, gamma), exponential(gamma, every), cosine(total, "
       "min_lr))"},
      {"schedule = cosine(total = 3, warmup = 1)",
       "schedule 'cosine' has no argument 'warmup' (its arguments: total, min_lr)"},
      {"clip_grad_norm = -1", "clip_grad_norm is the largest gradient norm, a positive number"},
      {"augment = \"rotate=10\"",
       "augment 'rotate=10': expected shift=K (pixels), hflip or binarize[=THRESHOLD], separated by commas"},
      {"regularize = l2(lambda = \"big\")", "regularize 'l2': lambda takes a number"},
      {"epochs = 0", "epochs is a positive whole number (leave it out for the default)"},
      {"validation = 1.5", "validation is the fraction of training samples held out, in [0, 1)"},
  };
  for (const auto& [setting, message] : cases) {
    INFO(setting);
    std::ofstream(dir + "/m.nn") << kSmallModel << "train m {\n    data = csv(\"d.csv\")\n    " << setting << "\n}\n";
    auto check = runCli({"check", dir + "/m.nn"});
    CHECK(check.code == 1);
    CHECK_THAT(check.err, Catch::StartsWith(dir + "/m.nn:10:") && Catch::Contains("error: " + message + "\n"));
    // The same rules, the same message, from every command.
    for (const char* cmd : {"run", "graph", "emit-llvm"}) {
      auto r = runCli({cmd, dir + "/m.nn"});
      INFO(cmd);
      CHECK(r.code == 1);
      CHECK(r.err == check.err);
    }
  }
  std::filesystem::remove_all(dir);
}

// Issue 18, item 11: the outputs used to be tried only after the first epoch
// had trained, and that epoch was lost with its result line.
TEST_CASE("nnc run checks --save, --metrics and --plot paths before training", "[cli]") {
  const std::string dir = tempDir("out_paths");
  std::ofstream(dir + "/file") << "x";
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"run", sourcePath("examples/mnist_mlp.nn"), "--limit", "200", "--test-limit", "100",
                                  "--threads", "1", "-q"};
    a.insert(a.end(), extra.begin(), extra.end());
    return runCli(a);
  };
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--metrics", dir + "/no/such/m.csv"}, "--metrics " + dir + "/no/such/m.csv: the folder '" + dir + "/no/such' does not exist"},
      {{"--plot", dir + "/no/p.svg"}, "--plot " + dir + "/no/p.svg: the folder '" + dir + "/no' does not exist"},
      {{"--metrics", dir + "/file/m.jsonl"}, "'" + dir + "/file' is a file, not a folder"},
      {{"--plot", dir + "/file/sub/p.svg"}, "--plot " + dir + "/file/sub/p.svg: '" + dir + "/file/sub' is not a folder"},
      {{"--save", dir + "/no/ck"}, "--save " + dir + "/no/ck: cannot create it there: the folder '" + dir + "/no' does not exist"},
      {{"--save", dir + "/file"}, "--save " + dir + "/file: it is a file, not a folder"},
      {{"--save", dir + "/file/ck"}, "--save " + dir + "/file/ck: a part of the path is a file, not a folder"},
  };
  for (const Case& c : cases) {
    auto r = run(c.args);
    INFO(c.args[0] << " " << c.args[1] << "\n" << r.out << r.err);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains(c.says));
    CHECK_THAT(r.out, !Catch::Contains("training"));  // nothing read, nothing trained
  }
  std::filesystem::create_directories(dir + "/m.csv");
  CHECK_THAT(run({"--metrics", dir + "/m.csv"}).err, Catch::Contains("m.csv: it is a folder, not a file"));
  // A read-only folder (root may write anywhere, so only as another user).
  if (::geteuid() != 0) {
    std::filesystem::create_directories(dir + "/ro");
    std::filesystem::permissions(dir + "/ro", std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    for (const char* opt : {"--metrics", "--plot", "--save"}) {
      const std::string name = std::string(opt) == "--save" ? "/ro/ck" : std::string(opt) == "--plot" ? "/ro/p.svg" : "/ro/m.csv";
      auto r = run({opt, dir + name});
      CHECK(r.code == 1);
      CHECK_THAT(r.err, Catch::Contains("the folder '" + dir + "/ro' is not writable"));
      CHECK_THAT(r.out, !Catch::Contains("training"));
    }
    std::filesystem::permissions(dir + "/ro", std::filesystem::perms::owner_all);
  }
  // Writable places still work: a new --save folder, existing files replaced.
  std::ofstream(dir + "/m2.csv") << "old";
  auto good = run({"--save", dir + "/ck", "--metrics", dir + "/m2.csv", "--plot", dir + "/p.svg"});
  INFO(good.out << good.err);
  CHECK(good.code == 0);
  CHECK_THAT(test::readText(dir + "/m2.csv"), Catch::StartsWith("epoch,step"));
  std::filesystem::remove_all(dir);
}
