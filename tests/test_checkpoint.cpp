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
             Catch::Contains("field 'epoch' (the epochs completed) is 1e300, not a whole number of at least 1"));
  CHECK_THAT(err("regress-step-negative.json"), Catch::Contains("field 'step' (the optimizer steps taken) is -"));
  CHECK_THAT(err("regress-metrics-step-null.json"), Catch::Contains("metrics row 2's step is not a number, not a whole number of at least 0"));
  auto ok = parseCheckpointJson(*readFile(sourcePath("tests/fuzz/seeds/checkpoint/checkpoint.json")), "seed");
  REQUIRE(ok);
  CHECK(ok->meta.epoch == 2);
  CHECK(ok->meta.step == 120);
  CHECK(ok->meta.seed == 18446744073709551615ull);
  CHECK(ok->meta.metrics.size() == 3);
  CHECK(ok->paramsFile == "params-000002.npz");
}

namespace {

// A small nnc run of mnist_mlp (batch 100) with `extra` options.
test::CliResult smallRun(std::vector<std::string> extra) {
  std::vector<std::string> a = {"run",          sourcePath("examples/mnist_mlp.nn"), "--test-limit", "100",
                                "--log-every", "0",                                  "--threads",    "1",
                                "--quiet"};
  a.insert(a.end(), extra.begin(), extra.end());
  return runCli(a);
}

// checkpoint.json of `dir` with `from` replaced by `to` (once).
void editMeta(const std::string& dir, const std::string& from, const std::string& to) {
  std::string text = test::readText(dir + "/checkpoint.json");
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  std::ofstream(dir + "/checkpoint.json", std::ios::binary | std::ios::trunc) << text;
}

}  // namespace

// Issue 18, item 9.
TEST_CASE("nnc run --save refuses to replace a checkpoint unless --resume DIR or --overwrite", "[checkpoint][cli]") {
  const std::string dir = tempDir("save_over");
  const std::string ck = dir + "/ck";
  REQUIRE(smallRun({"--limit", "200", "--epochs", "2", "--save", ck}).code == 0);
  const std::string meta = test::readText(ck + "/checkpoint.json");
  // Another run into the same folder, even of another model, would delete it.
  for (const char* model : {"examples/mnist_mlp.nn", "examples/optimizers/mnist_adam.nn"}) {
    auto r = runCli({"run", sourcePath(model), "--limit", "200", "--test-limit", "100", "--save", ck, "-q"});
    INFO(r.out << r.err);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("--save " + ck + ": the folder holds a checkpoint of 'mnist_mlp' after epoch 2") &&
                          Catch::Contains("--resume " + ck) && Catch::Contains("--overwrite"));
    CHECK_THAT(r.out, !Catch::Contains("training"));  // refused before any data are read
  }
  CHECK(test::readText(ck + "/checkpoint.json") == meta);
  CHECK(std::filesystem::exists(ck + "/params-000002.npz"));
  // Resuming from another checkpoint does not make this one replaceable.
  REQUIRE(smallRun({"--limit", "200", "--save", dir + "/other"}).code == 0);
  CHECK(smallRun({"--limit", "200", "--epochs", "3", "--resume", dir + "/other", "--save", ck}).code == 1);
  // Continuing it is fine, and so is --overwrite.
  auto cont = smallRun({"--limit", "200", "--epochs", "3", "--resume", ck, "--save", ck});
  INFO(cont.out << cont.err);
  CHECK(cont.code == 0);
  CHECK_THAT(cont.out, Catch::Contains("epoch 3:"));
  auto over = smallRun({"--limit", "200", "--epochs", "1", "--save", ck, "--overwrite"});
  CHECK(over.code == 0);
  auto back = readCheckpoint(ck);
  REQUIRE(back);
  CHECK(back->epoch == 1);
  CHECK_FALSE(std::filesystem::exists(ck + "/params-000003.npz"));
  // --overwrite means nothing without --save.
  CHECK_THAT(smallRun({"--limit", "200", "--overwrite"}).err, Catch::Contains("--overwrite is for --save DIR"));
  std::filesystem::remove_all(dir);
}

// Issue 18, item 12.
TEST_CASE("checkpoint: the next save removes what a save killed midway left, and only that", "[checkpoint]") {
  const std::string dir = tempDir("leftovers");
  REQUIRE(writeCheckpoint(dir, sample()));  // epoch 3
  // A pid no process has any more.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  ::waitpid(child, nullptr, 0);
  const std::string dead = std::to_string(child);
  const std::vector<std::string> leftovers = {"checkpoint.json.tmp." + dead, "params-000004.npz.tmp." + dead,
                                              "optimizer-000004.npz.tmp." + dead, "params-000002.npz",
                                              "optimizer-000001.npz"};
  // Not nnc's names, or a temporary file of a live process (pid 1): kept.
  const std::vector<std::string> kept = {"notes.txt", "params-best.npz", "params-000002.npz.bak", "data.tmp." + dead,
                                         "checkpoint.json.tmp.1", "params-000002.npz.tmp.x"};
  for (const auto& f : leftovers) std::ofstream(dir + "/" + f) << "x";
  for (const auto& f : kept) std::ofstream(dir + "/" + f) << "x";
  Checkpoint c = sample();
  c.epoch = 4;
  REQUIRE(writeCheckpoint(dir, c));
  for (const auto& f : leftovers) CHECK_FALSE(std::filesystem::exists(dir + "/" + f));
  for (const auto& f : kept) CHECK(std::filesystem::exists(dir + "/" + f));
  CHECK_FALSE(std::filesystem::exists(dir + "/params-000003.npz"));
  CHECK(std::filesystem::exists(dir + "/params-000004.npz"));
  CHECK(std::filesystem::exists(dir + "/optimizer-000004.npz"));
  auto back = readCheckpoint(dir);
  REQUIRE(back);
  CHECK(back->epoch == 4);
  std::filesystem::remove_all(dir);
}

// Issue 18, item 13.
TEST_CASE("checkpoint: every field of checkpoint.json is checked, and no name leads out of the folder",
          "[checkpoint]") {
  const std::string dir = tempDir("fields");
  const std::string ck = dir + "/ck";
  REQUIRE(writeCheckpoint(ck, sample()));
  const std::string good = test::readText(ck + "/checkpoint.json");
  // A complete, valid NPZ outside the checkpoint folder.
  std::filesystem::copy_file(ck + "/params-000003.npz", dir + "/outside.npz");
  auto refused = [&](const std::string& from, const std::string& to) {
    std::ofstream(ck + "/checkpoint.json", std::ios::binary | std::ios::trunc) << good;
    editMeta(ck, from, to);
    auto c = readCheckpoint(ck);
    INFO(from << " → " << to);
    REQUIRE_FALSE(c);
    return c.error().message;
  };
  const auto contains = [](const std::string& s) { return Catch::Contains(s); };
  CHECK_THAT(refused("\"epoch\": 3", "\"epoch\": -1"), contains("field 'epoch' (the epochs completed) is -1"));
  CHECK_THAT(refused("\"epoch\": 3", "\"epoch\": 0"), contains("field 'epoch'"));
  CHECK_THAT(refused("\"epoch\": 3", "\"epoch\": 2.5"), contains("is 2.5, not a whole number"));
  CHECK_THAT(refused("\"epoch\": 3", "\"epoch\": 1e300"), contains("field 'epoch'"));
  CHECK_THAT(refused("\"epoch\": 3", "\"epoch\": \"3\""), contains("malformed field 'epoch'"));
  CHECK_THAT(refused("\"step\": 1800", "\"step\": -5"), contains("field 'step' (the optimizer steps taken) is -5"));
  CHECK_THAT(refused("\"step\": 1800", "\"step\": 2"), contains("field 'step' is 2, fewer than the 3 epochs"));
  CHECK_THAT(refused("\"step\": 1800", "\"step\": 0.5"), contains("field 'step'"));
  CHECK_THAT(refused("\"seed\": \"18446744073709551615\"", "\"seed\": \"abc\""), contains("field 'seed' is \"abc\""));
  CHECK_THAT(refused("\"seed\": \"18446744073709551615\"", "\"seed\": \"-1\""), contains("field 'seed'"));
  CHECK_THAT(refused("\"seed\": \"18446744073709551615\"", "\"seed\": \"18446744073709551616\""),
             contains("field 'seed'"));
  CHECK_THAT(refused("\"seed\": \"18446744073709551615\"", "\"seed\": \"\""), contains("field 'seed'"));
  CHECK_THAT(refused("\"seed\": \"18446744073709551615\"", "\"seed\": 7"), contains("malformed field 'seed'"));
  CHECK_THAT(refused("\"params-000003.npz\"", "\"../outside.npz\""),
             contains("field 'params' is \"../outside.npz\", not the name of a file in the checkpoint folder"));
  CHECK_THAT(refused("\"params-000003.npz\"", "\"" + dir + "/outside.npz\""), contains("field 'params'"));
  CHECK_THAT(refused("\"params-000003.npz\"", "\"..\""), contains("field 'params'"));
  CHECK_THAT(refused("\"optimizer-000003.npz\"", "\"../../x.npz\""), contains("field 'optimizer_state'"));
  CHECK_THAT(refused("\"optimizer-000003.npz\"", "\"\""), contains("field 'optimizer_state'"));
  CHECK_THAT(refused("\"model\": \"m\"", "\"model\": \"\""), contains("field 'model' is empty"));
  CHECK_THAT(refused("\"optimizer\": \"adam\"", "\"optimizer\": 1"), contains("malformed field 'optimizer'"));
  CHECK_THAT(refused("\"version\": 1", "\"version\": 1.5"), contains("not an nnc checkpoint of version 1"));
  CHECK_THAT(refused("[1, 600, \"train\"", "[-1, 600, \"train\""), contains("metrics row 1's epoch is -1"));
  CHECK_THAT(refused("[1, 600, \"train\"", "[1, 0.5, \"train\""), contains("metrics row 1's step is 0.5"));
  CHECK_THAT(refused("[1, 600, \"train\"", "[9, 600, \"train\""), contains("metrics row 1 (epoch 9, step 600) is beyond"));
  CHECK_THAT(refused("[1, 600, \"test\", 0.25", "[1, 600, \"test\", \"low\""),
             contains("metrics row 2's loss is neither a number nor null"));
  CHECK_THAT(refused("\"rng\": {", "\"rng\": {\"x\": 1, "), contains("rng 'x' is not a string"));
  std::ofstream(ck + "/checkpoint.json", std::ios::binary | std::ios::trunc) << good;
  REQUIRE(readCheckpoint(ck));
  // Through nnc run: "epoch": -1 used to train and write params-000000.npz.
  const std::string run = dir + "/run";
  REQUIRE(smallRun({"--limit", "200", "--epochs", "1", "--save", run}).code == 0);
  editMeta(run, "\"epoch\": 1", "\"epoch\": -1");
  auto r = smallRun({"--limit", "200", "--epochs", "2", "--resume", run, "--save", run});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("checkpoint.json: field 'epoch' (the epochs completed) is -1"));
  CHECK_THAT(r.out, !Catch::Contains("training"));
  CHECK_FALSE(std::filesystem::exists(run + "/params-000000.npz"));
  std::filesystem::remove_all(dir);
}

// Issue 18, item 13: the seed a checkpoint names is the one its resumed run uses.
TEST_CASE("nnc run --resume continues with the checkpoint's seed, and refuses another --seed", "[checkpoint][cli]") {
  const std::string dir = tempDir("resume_seed");
  auto whole = smallRun({"--limit", "200", "--epochs", "2", "--seed", "7", "--save", dir + "/whole"});
  REQUIRE(whole.code == 0);
  REQUIRE(smallRun({"--limit", "200", "--epochs", "1", "--seed", "7", "--save", dir + "/part"}).code == 0);
  auto other = smallRun({"--limit", "200", "--epochs", "2", "--seed", "8", "--resume", dir + "/part"});
  CHECK(other.code == 1);
  CHECK_THAT(other.err, Catch::Contains("--seed 8: checkpoint '" + dir + "/part' was trained with seed 7"));
  // Without --seed: the checkpoint's 7, not the default 42.
  auto rest = smallRun({"--limit", "200", "--epochs", "2", "--resume", dir + "/part", "--save", dir + "/part"});
  INFO(rest.out << rest.err);
  REQUIRE(rest.code == 0);
  auto a = readCheckpoint(dir + "/whole"), b = readCheckpoint(dir + "/part");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(b->seed == 7);
  for (const auto& [name, t] : a->params) CHECK(b->params.at(name).data == t.data);
  std::filesystem::remove_all(dir);
}

// Issue 18, item 14: the step cap was epochs × this run's steps per epoch,
// counted from step 0, so a checkpoint of a run with a larger --limit was
// already past it: "resuming ... after epoch 1", nothing trained, exit 0.
TEST_CASE("nnc run --resume --epochs N trains the epochs left whatever --limit the checkpoint had",
          "[checkpoint][cli]") {
  const std::string dir = tempDir("resume_limit");
  const std::string ck = dir + "/ck";
  REQUIRE(smallRun({"--limit", "400", "--epochs", "1", "--save", ck}).code == 0);  // 4 steps
  auto r = smallRun({"--limit", "200", "--epochs", "2", "--resume", ck, "--save", ck});  // 2 steps per epoch
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("resuming from '" + ck + "' after epoch 1 (step 4)"));
  CHECK_THAT(r.out, Catch::Contains("epoch 2: train loss"));
  auto c = readCheckpoint(ck);
  REQUIRE(c);
  CHECK(c->epoch == 2);
  CHECK(c->step == 6);
  // Nothing left: said so, in words that say how to train more.
  auto done = smallRun({"--limit", "200", "--epochs", "2", "--resume", ck});
  CHECK(done.code == 0);
  CHECK_THAT(done.out, Catch::Contains("is at epoch 2: nothing left to train (--epochs N counts the checkpoint's"));
  // --iterations counts the steps of the whole run, the checkpoint's included.
  auto it = smallRun({"--limit", "200", "--iterations", "6", "--resume", ck});
  CHECK_THAT(it.out, Catch::Contains("is at step 6: nothing left to train (--iterations 6"));
  auto more = smallRun({"--limit", "200", "--iterations", "9", "--resume", ck, "--save", ck});
  INFO(more.out << more.err);
  REQUIRE(more.code == 0);
  CHECK_THAT(more.out, Catch::Contains("epoch 3:") && Catch::Contains("epoch 4:") && !Catch::Contains("epoch 5:"));
  c = readCheckpoint(ck);
  REQUIRE(c);
  CHECK(c->epoch == 4);
  CHECK(c->step == 9);
  std::filesystem::remove_all(dir);
}
