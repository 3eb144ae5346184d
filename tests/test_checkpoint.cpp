// Checkpoints, resuming, nnc eval/predict with a checkpoint, the JSON reader,
// the progress line, and a run stopped by a non-finite loss.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "io/checkpoint.h"
#include "io/file_io.h"
#include "io/idx.h"
#include "io/json.h"
#include "io/npy.h"
#include "io/progress.h"
#include "runtime/rng.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::runCli;
using nnc::test::tempDir;
using nnc::test::sourcePath;

namespace {

std::string lastLine(const std::string& out, const std::string& prefix) {
  std::string found;
  size_t at = 0;
  while ((at = out.find(prefix, at)) != std::string::npos) {
    found = out.substr(at, out.find('\n', at) - at);
    ++at;
  }
  return found;
}

// "test accuracy 0.1234" out of an epoch line.
std::string accuracyOf(const std::string& line) {
  std::smatch m;
  REQUIRE(std::regex_search(line, m, std::regex("test accuracy ([0-9.]+)")));
  return m[1];
}

Checkpoint sample() {
  Checkpoint c;
  c.model = "m";
  c.epoch = 3;
  c.step = 1800;
  c.seed = 18446744073709551615ULL;  // 2^64 − 1: not a double
  c.optimizer = "adam";
  c.params["W"] = Tensor(TensorType{DType::F32, {2, 2}}, {1, -2, 0.5, 3});
  c.state["W.m"] = Tensor(TensorType{DType::F32, {2, 2}}, {0.25, 0, 0, 1});
  Rng r(7);
  r.normal();  // leaves a spare value: it must survive too
  c.rng["shuffle"] = r.save();
  c.metrics.push_back({1, 600, "train", 0.5, kNoMetric, 1000});
  c.metrics.push_back({1, 600, "test", 0.25, 0.875, kNoMetric});
  return c;
}

}  // namespace

TEST_CASE("json: values, escapes and errors with line and column", "[checkpoint]") {
  auto j = parseJson(R"({"a": [1, -2.5e3, true, false, null], "s": "x\"\\\u00e9\ud83d\ude00", "o": {}})", "t");
  REQUIRE(j);
  CHECK(j->find("a")->items[1].number == -2500);
  CHECK(j->find("a")->items[2].boolean);
  CHECK_FALSE(j->find("a")->items[3].boolean);
  CHECK(j->find("a")->items[4].kind == Json::Kind::Null);
  CHECK(j->find("s")->text == "x\"\\\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(j->find("o")->fields.empty());
  auto bad = parseJson("{\"a\": 1,\n  \"b\" 2}", "meta.json");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("meta.json:2:7: invalid JSON: expected ':'"));
  CHECK_FALSE(parseJson("[1, 2", "t"));
  CHECK_FALSE(parseJson("01", "t"));
  CHECK_FALSE(parseJson("\"a\nb\"", "t"));
  CHECK_FALSE(parseJson(std::string(100, '['), "t"));  // nesting beyond 64
  CHECK(jsonQuote("a\"b\n\x01") == "\"a\\\"b\\n\\u0001\"");
}

TEST_CASE("rng: save and restore continue the very same stream", "[checkpoint]") {
  Rng a(3);
  a.normal();
  Rng b(99);
  REQUIRE(b.restore(a.save()));
  for (int i = 0; i < 5; ++i) CHECK(a.normal() == b.normal());
  CHECK_FALSE(b.restore("12 34"));
  CHECK_FALSE(b.restore("0000000000000000 0000000000000000 0000000000000000 0000000000000000 0000000000000000 0"));
}

TEST_CASE("checkpoint: written and read back, the old pair removed", "[checkpoint]") {
  const std::string dir = tempDir("rw");
  Checkpoint c = sample();
  REQUIRE(writeCheckpoint(dir, c));
  c.epoch = 4;
  c.params["W"].data[0] = 9;
  REQUIRE(writeCheckpoint(dir, c));
  CHECK_FALSE(std::filesystem::exists(dir + "/params-000003.npz"));
  CHECK(std::filesystem::exists(dir + "/params-000004.npz"));
  auto back = readCheckpoint(dir);
  REQUIRE(back);
  CHECK(back->model == "m");
  CHECK(back->epoch == 4);
  CHECK(back->step == 1800);
  CHECK(back->seed == 18446744073709551615ULL);
  CHECK(back->optimizer == "adam");
  CHECK(back->params.at("W").data == std::vector<double>{9, -2, 0.5, 3});
  CHECK(back->state.at("W.m").data == std::vector<double>{0.25, 0, 0, 1});
  CHECK(back->rng.at("shuffle") == c.rng.at("shuffle"));
  REQUIRE(back->metrics.size() == 2);
  CHECK(back->metrics[1].split == "test");
  CHECK(back->metrics[1].accuracy == 0.875);
  CHECK(std::isnan(back->metrics[0].accuracy));
  // --weights reads a folder's params or an .npz.
  auto w = readWeights(dir);
  REQUIRE(w);
  CHECK(w->at("W").data[0] == 9);
  std::filesystem::remove_all(dir);
}

TEST_CASE("checkpoint: a write cut short leaves the last good one", "[checkpoint]") {
  const std::string dir = tempDir("cut");
  REQUIRE(writeCheckpoint(dir, sample()));
  // What a kill in the middle of the next write leaves: a temporary file and
  // even a complete NPZ that checkpoint.json does not name yet.
  std::ofstream(dir + "/checkpoint.json.tmp.12345") << "{\"format\": \"nnc-chec";
  std::filesystem::copy_file(dir + "/params-000003.npz", dir + "/params-000004.npz");
  auto back = readCheckpoint(dir);
  REQUIRE(back);
  CHECK(back->epoch == 3);
  std::filesystem::remove_all(dir);
}

TEST_CASE("checkpoint: damaged or missing parts are errors in words", "[checkpoint]") {
  const std::string dir = tempDir("bad");
  auto err = [&] {
    auto c = readCheckpoint(dir);
    REQUIRE_FALSE(c);
    return c.error().message;
  };
  CHECK_THAT(err(), Catch::Contains("has no checkpoint.json"));
  REQUIRE(writeCheckpoint(dir, sample()));
  std::filesystem::remove(dir + "/optimizer-000003.npz");
  CHECK_THAT(err(), Catch::Contains("optimizer-000003.npz"));
  std::ofstream(dir + "/checkpoint.json") << "{\"format\": \"nnc-checkpoint\", \"version\": 1}";
  CHECK_THAT(err(), Catch::Contains("missing or malformed field 'model'"));
  std::ofstream(dir + "/checkpoint.json") << "{\"format\": \"other\", \"version\": 1}";
  CHECK_THAT(err(), Catch::Contains("not an nnc checkpoint"));
  std::ofstream(dir + "/checkpoint.json") << "{\"format\": ";
  CHECK_THAT(err(), Catch::Contains("invalid JSON"));
  CHECK_THAT(readCheckpoint(dir + "/nope").error().message, Catch::Contains("is not a folder"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("progress line: bar, counts, loss and ETA from the mean step time", "[checkpoint]") {
  CHECK(progressLine(2, 5, 150, 600, 0.52134, 1.5, 8) ==
        "epoch 2/5 [##------] 150/600  loss 0.5213  1.50 s  ETA 4.50 s");
  CHECK(progressLine(1, 1, 0, 10, 2.0, 0.0, 4) == "epoch 1/1 [----] 0/10  loss 2.0000  0.00 s  ETA 0.00 s");
  std::ostringstream s;
  Progress quiet(s, false);
  quiet.update(1, 1, 1, 2, 1.0, 0.1);
  CHECK(s.str().empty());
  Progress live(s, true);
  live.update(1, 1, 1, 2, 1.0, 0.1);
  live.clear();
  CHECK_THAT(s.str(), Catch::StartsWith("\repoch 1/1 [##########----------] 1/2") && Catch::EndsWith("\r"));
}

TEST_CASE("nnc run --save then --resume equals one uninterrupted run", "[checkpoint][cli]") {
  const std::string dir = tempDir("resume");
  const std::vector<std::string> base = {"run",           sourcePath("examples/optimizers/mnist_adam.nn"),
                                         "--limit",       "1000",
                                         "--test-limit",  "1000",
                                         "--log-every",   "0",
                                         "--threads",     "1"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return runCli(a);
  };
  auto whole = with({"--epochs", "3", "--save", dir + "/whole", "--metrics", dir + "/whole.csv"});
  auto first = with({"--epochs", "1", "--save", dir + "/part"});
  auto rest = with({"--epochs", "3", "--resume", dir + "/part", "--save", dir + "/part", "--metrics", dir + "/part.csv"});
  INFO(whole.out << whole.err << first.err << rest.out << rest.err);
  REQUIRE(whole.code == 0);
  REQUIRE(first.code == 0);
  REQUIRE(rest.code == 0);
  CHECK_THAT(rest.out, Catch::Contains("resuming from"));
  CHECK_THAT(rest.out, !Catch::Contains("epoch 1:"));
  CHECK(accuracyOf(lastLine(rest.out, "epoch 3:")) == accuracyOf(lastLine(whole.out, "epoch 3:")));
  // Params and Adam's state agree bit for bit; so do the metrics (the resumed
  // run's log carries the first epoch's rows from the checkpoint).
  auto a = readCheckpoint(dir + "/whole"), b = readCheckpoint(dir + "/part");
  REQUIRE(a);
  REQUIRE(b);
  for (const auto& [name, t] : a->params) CHECK(b->params.at(name).data == t.data);
  for (const auto& [name, t] : a->state) CHECK(b->state.at(name).data == t.data);
  CHECK(a->state.count("train.step") == 1);
  auto rows = [](const std::string& csv) {  // without samples/s, which is timing
    return std::regex_replace(csv, std::regex(",[0-9.e+]*\n"), "\n");
  };
  CHECK(rows(test::readText(dir + "/part.csv")) == rows(test::readText(dir + "/whole.csv")));
  // The wrong model or optimizer is refused.
  auto wrong = runCli({"run", sourcePath("examples/mnist_mlp.nn"), "--resume", dir + "/part", "--limit", "100"});
  CHECK(wrong.code == 1);
  CHECK_THAT(wrong.err, Catch::Contains("is of model 'mnist_adam' trained with adam, not 'mnist_mlp' with adam"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("nnc run killed with SIGKILL resumes to the same result", "[checkpoint][cli]") {
  const std::string dir = tempDir("kill");
  const std::string model = sourcePath("examples/mnist_mlp.nn");
  const std::vector<std::string> common = {"--limit", "6000", "--test-limit", "2000", "--log-every", "0",
                                           "--threads", "1", "--quiet"};
  auto args = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"run", model};
    a.insert(a.end(), common.begin(), common.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  // The uninterrupted run.
  auto whole = runCli(args({"--epochs", "30", "--save", dir + "/whole"}));
  REQUIRE(whole.code == 0);
  // The same run as a process, killed once its first checkpoint is on disk.
  std::vector<std::string> argv = args({"--epochs", "30", "--save", dir + "/killed"});
  argv.insert(argv.begin(), NNC_BINARY);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::vector<char*> cargs;
    for (auto& s : argv) cargs.push_back(s.data());
    cargs.push_back(nullptr);
    std::freopen("/dev/null", "w", stdout);
    ::execv(NNC_BINARY, cargs.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(dir + "/killed/checkpoint.json") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFSIGNALED(status));  // killed, not finished
  auto at = readCheckpoint(dir + "/killed");
  REQUIRE(at);
  INFO("killed after epoch " << at->epoch);
  CHECK(at->epoch < 30);
  auto resumed = runCli(args({"--epochs", "30", "--resume", dir + "/killed", "--save", dir + "/killed"}));
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.code == 0);
  CHECK(accuracyOf(lastLine(resumed.out, "epoch 30:")) == accuracyOf(lastLine(whole.out, "epoch 30:")));
  auto a = readCheckpoint(dir + "/whole"), b = readCheckpoint(dir + "/killed");
  REQUIRE(a);
  REQUIRE(b);
  for (const auto& [name, t] : a->params) CHECK(b->params.at(name).data == t.data);
  std::filesystem::remove_all(dir);
}

TEST_CASE("nnc eval and nnc predict with a checkpoint", "[checkpoint][cli]") {
  const std::string dir = tempDir("predict");
  auto r = runCli({"run", sourcePath("examples/mnist_mlp.nn"), "--epochs", "1", "--limit", "3000", "--save", dir + "/ck",
                   "--quiet"});
  REQUIRE(r.code == 0);
  auto e = runCli({"eval", sourcePath("examples/mnist_mlp.nn"), "--weights", dir + "/ck"});
  INFO(e.out << e.err);
  REQUIRE(e.code == 0);
  // The same accuracy as the run's own test pass, and a row per class.
  CHECK_THAT(e.out, Catch::Contains(fmt::format("accuracy {} (10000 samples)", accuracyOf(r.out))));
  CHECK_THAT(e.out, Catch::Contains("9 Ankle boot"));
  // predict: three test images as u8 .npy, and the argmax of the JIT's probabilities.
  auto images = readIdx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  REQUIRE(images);
  Tensor x(TensorType{DType::I32, {3, 28, 28}});
  for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = images->values[i];
  REQUIRE(writeNpy(dir + "/x.npy", x));
  auto p = runCli({"predict", sourcePath("examples/mnist_mlp.nn"), "--weights", dir + "/ck", "--input", dir + "/x.npy",
                   "--top", "2"});
  INFO(p.out << p.err);
  REQUIRE(p.code == 0);
  CHECK(std::regex_search(p.out, std::regex("sample 0: [0-9] \\([^)]+\\) 0\\.[0-9]{4}, [0-9] \\([^)]+\\) 0\\.[0-9]{4}\n"
                                            "sample 1: .*\nsample 2: .*\n$")));
  // The interpreter with the same weights agrees on each sample's top class.
  auto ev = runCli({"eval", sourcePath("examples/mnist_mlp.nn"), "--weights", dir + "/ck", "--input",
                    "x=" + dir + "/x.npy"});
  CHECK(ev.code == 1);  // [3, 28, 28] is not the model's [100, 784]: refused in words
  auto bad = runCli({"predict", sourcePath("examples/mnist_mlp.nn"), "--weights", dir + "/nothing", "--input",
                     dir + "/x.npy"});
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains("nothing"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("a non-finite loss stops the run and names the first op producing it", "[checkpoint][cli]") {
  const std::string dir = tempDir("nan");
  const std::string file = dir + "/m.nn";
  std::ofstream(file) << "model m(batch = 100) {\n"
                         "    input x: f32[batch, 784]\n"
                         "    label t: i32[batch]\n"
                         "    param W: f32[784, 10] = normal(std = 1)\n"
                         "    z = log(x @ W)\n"
                         "    loss = softmax_cross_entropy(z, t)\n"
                         "    output p = softmax(z)\n"
                         "}\n";
  auto r = runCli({"run", file, "--limit", "200", "--test-limit", "100"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("m.nn:5:") && Catch::Contains("the loss became NaN at epoch 1, step 1") &&
                        Catch::Contains("the first non-finite value (NaN) comes from log 'z': f32[100, 10]"));
  std::filesystem::remove_all(dir);
}

// Inputs of tests/fuzz/seeds/checkpoint/regress-*.json: numbers that do not
// convert to int64_t (1e300, -5e19, a null step) were cast regardless,
// undefined behaviour (UBSan: "outside the range of representable values").
TEST_CASE("checkpoint.json: epochs and steps that are no whole count are errors in words", "[checkpoint][fuzz]") {
  auto err = [](const std::string& file) {
    auto text = readFile(sourcePath("tests/fuzz/seeds/checkpoint/" + file));
    REQUIRE(text);
    auto c = parseCheckpointJson(*text, file);
    REQUIRE_FALSE(c);
    return c.error().message;
  };
  CHECK_THAT(err("regress-epoch-1e300.json"),
             Catch::Contains("field 'epoch' is not a whole number from 0 to 2^53 (it is 1e300)"));
  CHECK_THAT(err("regress-step-negative.json"), Catch::Contains("field 'step' is not a whole number"));
  CHECK_THAT(err("regress-metrics-step-null.json"), Catch::Contains("a metrics row is not [epoch, step"));
  auto ok = parseCheckpointJson(*readFile(sourcePath("tests/fuzz/seeds/checkpoint/checkpoint.json")), "seed");
  REQUIRE(ok);
  CHECK(ok->meta.epoch == 2);
  CHECK(ok->meta.step == 120);
  CHECK(ok->meta.seed == 18446744073709551615ull);
  CHECK(ok->meta.metrics.size() == 3);
  CHECK(ok->paramsFile == "params-000002.npz");
}
