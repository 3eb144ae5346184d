// nnc run end to end on every data source: small learnable problems written
// here, trained to a result that only learning reaches.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>

#include "io/checkpoint.h"
#include "io/npy.h"
#include "runtime/rng.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::runCli;
using nnc::test::tempDir;

namespace {

double lastMetric(const std::string& out, const std::string& what) {
  std::smatch m;
  std::string last;
  const std::regex re(what + " ([-0-9.e+]+)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it) last = (*it)[1];
  REQUIRE(!last.empty());
  return std::stod(last);
}

// Two classes on either side of the line x1 + x2 = 1, with a margin.
void writeBlobs(const std::string& path, int rows, uint64_t seed) {
  std::ofstream f(path);
  f << "x1,x2,cls\n";
  Rng r(seed);
  for (int i = 0; i < rows; ++i) {
    const int c = i % 2;
    const double a = r.uniform(), b = r.uniform() * 0.4 + (c ? 0.6 : 0.0);
    f << a << "," << (c ? b + 1 - a : b - a) << "," << c << "\n";
  }
}

const char* kTwoClassModel =
    "model blobs(batch = 20) {\n"
    "    input x: f32[batch, 2]\n"
    "    label t: i32[batch]\n"
    "    logits = dense(relu(dense(x, 16, name = \"fc1\")), 2, name = \"fc2\")\n"
    "    loss = softmax_cross_entropy(logits, t)\n"
    "    output probs = softmax(logits)\n"
    "}\n";

}  // namespace

TEST_CASE("nnc run: CSV classification with a held-out test fraction, paths beside the model", "[run][data]") {
  const std::string dir = tempDir("csv");
  writeBlobs(dir + "/blobs.csv", 400, 1);
  std::ofstream(dir + "/m.nn") << kTwoClassModel
                               << "train blobs { data = csv(\"blobs.csv\", label = \"cls\", test_fraction = 0.25)\n"
                                  "               optimizer = adam(lr = 0.01) epochs = 30 seed = 3 }\n";
  auto r = runCli({"run", dir + "/m.nn", "--quiet"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("(300 samples, batch 20, 15 steps per epoch"));
  CHECK(lastMetric(r.out, "test accuracy") >= 0.95);  // chance is 0.5
  std::filesystem::remove_all(dir);
}

TEST_CASE("nnc run: CSV regression scored by the loss, with a validation split", "[run][data]") {
  const std::string dir = tempDir("reg");
  for (const char* name : {"train.csv", "test.csv"}) {
    std::ofstream f(dir + "/" + name);
    f << "a,b,y\n";
    Rng r(name[1]);
    for (int i = 0; i < 200; ++i) {
      const double a = r.uniform(-1, 1), b = r.uniform(-1, 1);
      f << a << "," << b << "," << 2 * a - b + 0.5 << "\n";
    }
  }
  std::ofstream(dir + "/m.nn") << "model lin(batch = 10) {\n"
                                  "    input x: f32[batch, 2]\n"
                                  "    label t: f32[batch, 1]\n"
                                  "    loss = mse(dense(x, 1, name = \"fc\"), t)\n"
                                  "}\n"
                                  "train lin { data = csv(\"train.csv\", label = \"y\", test = \"test.csv\", regression = 1)\n"
                                  "            optimizer = sgd(lr = 0.1) epochs = 40 validation = 0.1 }\n";
  auto r = runCli({"run", dir + "/m.nn", "--quiet"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("(180 samples"));  // 20 of 200 held out for validation
  CHECK(lastMetric(r.out, "validation loss") < 1e-4);
  CHECK(lastMetric(r.out, "test loss") < 1e-4);  // y = 2a − b + 0.5 exactly: the loss goes to 0
  // A regression label must be f32: an i32 one is refused, naming both.
  std::ofstream(dir + "/bad.nn") << "model lin(batch = 10) { input x: f32[batch, 2] label t: i32[batch]\n"
                                    "  loss = softmax_cross_entropy(dense(x, 3), t) }\n"
                                    "train lin { data = csv(\"train.csv\", label = \"y\", regression = 1) }\n";
  r = runCli({"run", dir + "/bad.nn", "--quiet"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("the data have 1 regression target per sample, but model 'lin' takes label i32[10]"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("nnc run: NPZ arrays and an image folder, unflattened for a convolution", "[run][data]") {
  const std::string dir = tempDir("img");
  // 8×8 images: class 0 bright in the top half, class 1 in the bottom half, with noise.
  Rng rng(5);
  auto pixels = [&](int c) {
    std::vector<int> p(64);
    for (int i = 0; i < 64; ++i) p[static_cast<size_t>(i)] = ((i < 32) == (c == 0) ? 180 : 40) + static_cast<int>(rng.below(60));
    return p;
  };
  Tensor xtr(TensorType{DType::I32, {60, 8, 8}}), ytr(TensorType{DType::I32, {60}});
  Tensor xte(TensorType{DType::I32, {20, 8, 8}}), yte(TensorType{DType::I32, {20}});
  for (auto xy : {std::pair{&xtr, &ytr}, std::pair{&xte, &yte}})
    for (int64_t i = 0; i < xy.second->numel(); ++i) {
      const int c = static_cast<int>(i % 2);
      const auto p = pixels(c);
      for (int k = 0; k < 64; ++k) xy.first->data[static_cast<size_t>(i * 64 + k)] = p[static_cast<size_t>(k)] / 255.0;
      xy.second->data[static_cast<size_t>(i)] = c;
    }
  xtr.type.dtype = xte.type.dtype = DType::F32;
  REQUIRE(writeNpz(dir + "/d.npz", {{"x_train", xtr}, {"y_train", ytr}, {"x_test", xte}, {"y_test", yte}}));
  for (const char* split : {"train", "test"})
    for (int c = 0; c < 2; ++c) {
      const std::string folder = dir + "/img/" + split + "/" + (c ? "bottom" : "top");
      std::filesystem::create_directories(folder);
      for (int i = 0; i < (split[1] == 'r' ? 30 : 10); ++i) {
        std::ofstream f(folder + "/" + std::to_string(i) + ".pgm", std::ios::binary);
        f << "P5\n8 8\n255\n";
        for (int v : pixels(c)) f.put(static_cast<char>(v));
      }
    }
  std::ofstream(dir + "/m.nn")
      << "model tb(batch = 10) {\n"
         "    input x: f32[batch, 1, 8, 8]\n"
         "    label t: i32[batch]\n"
         "    c = relu(conv2d(x, filters = 4, kernel = 3, pad = 1, name = \"conv\"))\n"
         "    logits = dense(flatten(maxpool2d(c, kernel = 2, stride = 2)), 2, name = \"fc\")\n"
         "    loss = softmax_cross_entropy(logits, t)\n"
         "    output probs = softmax(logits)\n"
         "}\n"
         "train tb { data = npz(\"d.npz\") optimizer = adam(lr = 0.01) epochs = 15 augment = \"shift=1\" }\n";
  auto r = runCli({"run", dir + "/m.nn", "--quiet"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(lastMetric(r.out, "test accuracy") == 1.0);
  r = runCli({"run", dir + "/m.nn", "--quiet", "--data", dir + "/img/train"});
  INFO(r.out << r.err);
  // No test folder given: 20% of the 60 images are held out.
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("(40 samples"));
  CHECK(lastMetric(r.out, "test accuracy") == 1.0);
  // shift and hflip need images.
  writeBlobs(dir + "/blobs.csv", 40, 2);
  std::ofstream(dir + "/b.nn") << kTwoClassModel << "train blobs { data = csv(\"blobs.csv\", label = \"cls\") }\n";
  r = runCli({"run", dir + "/b.nn", "--quiet", "--augment", "hflip"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("shift and hflip move pixels, but the data are 2 features per sample"));
  r = runCli({"run", dir + "/b.nn", "--quiet", "--augment", "rotate=5"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("augment 'rotate=5': expected shift=K"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("nnc run and eval score every test sample: a short last batch padded and its padding not counted",
          "[run][data]") {
  const std::string dir = tempDir("partial");
  writeBlobs(dir + "/train.csv", 437, 1);
  writeBlobs(dir + "/test.csv", 103, 2);
  std::ofstream(dir + "/m.nn") << kTwoClassModel
                               << "train blobs { data = csv(\"train.csv\", label = \"cls\", test = \"test.csv\")\n"
                                  "               optimizer = adam(lr = 0.01) epochs = 3 seed = 3 }\n";
  auto r = runCli({"run", dir + "/m.nn", "--quiet", "--save", dir + "/ckpt"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // Training keeps whole batches (drop_last) and says what that leaves out.
  CHECK_THAT(r.out, Catch::Contains("(420 samples of 437: 17 left out of each epoch, a partial batch (other samples "
                                    "each epoch: shuffled), batch 20, 21 steps per epoch"));
  // Testing scores all 103, not 100.
  CHECK_THAT(r.out, Catch::Contains("test accuracy"));
  CHECK_THAT(r.out, Catch::Contains("(103 samples)"));
  // eval --weights on the test split: every sample, and the loss and
  // accuracy of the padded batch 20 equal those of batch 1 (no padding).
  auto e20 = runCli({"eval", dir + "/m.nn", "--weights", dir + "/ckpt"});
  auto e1 = runCli({"eval", dir + "/m.nn", "--weights", dir + "/ckpt", "--set", "batch=1"});
  INFO(e20.out << e20.err << e1.out << e1.err);
  REQUIRE(e20.code == 0);
  REQUIRE(e1.code == 0);
  CHECK_THAT(e20.out, Catch::Contains("(103 samples)"));
  CHECK(lastMetric(e20.out, "accuracy") == lastMetric(e1.out, "accuracy"));
  CHECK(lastMetric(e20.out, "loss") == Approx(lastMetric(e1.out, "loss")).epsilon(1e-3));
  std::filesystem::remove_all(dir);
}

TEST_CASE("NaN or inf in loaded params and inputs is refused, naming the tensor and the first bad index",
          "[run][data]") {
  const std::string dir = tempDir("nonfinite");
  writeBlobs(dir + "/train.csv", 100, 1);
  std::ofstream(dir + "/m.nn") << kTwoClassModel
                               << "train blobs { data = csv(\"train.csv\", label = \"cls\", test_fraction = 0.2)\n"
                                  "               optimizer = adam(lr = 0.01) epochs = 1 seed = 3 }\n";
  auto r = runCli({"run", dir + "/m.nn", "--quiet", "--save", dir + "/ckpt"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  auto c = readCheckpoint(dir + "/ckpt");
  REQUIRE(c);
  REQUIRE(!c->params.empty());
  auto& [name, t] = *c->params.begin();
  REQUIRE(t.data.size() > 5);
  t.data[5] = std::nan("");
  t.data[7] = INFINITY;
  REQUIRE(writeCheckpoint(dir + "/bad", *c));
  const std::string want = fmt::format("param '{}' in '{}' holds NaN at index 5", name, dir + "/bad");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"eval", dir + "/m.nn", "--weights", dir + "/bad"},
        std::vector<std::string>{"run", dir + "/m.nn", "--quiet", "--resume", dir + "/bad", "--epochs", "2"}}) {
    auto e = runCli(args);
    INFO(args[0] << ": " << e.out << e.err);
    CHECK(e.code == 1);
    CHECK_THAT(e.err, Catch::Contains(args[0] == "run" ? fmt::format("param '{}' in checkpoint '{}' holds NaN at index 5",
                                                                     name, dir + "/bad")
                                                       : want));
    CHECK_THAT(e.err, Catch::Contains("2 non-finite values"));
  }
  // predict's samples: the first bad value by sample and feature.
  Tensor x(TensorType{DType::F32, {3, 2}}, {0.1, 0.2, 0.3, 0.4, -INFINITY, 0.6});
  REQUIRE(writeNpy(dir + "/x.npy", x));
  auto p = runCli({"predict", dir + "/m.nn", "--weights", dir + "/ckpt", "--input", dir + "/x.npy"});
  INFO(p.out << p.err);
  CHECK(p.code == 1);
  CHECK_THAT(p.err, Catch::Contains(fmt::format("--input '{}' holds -inf at index 4 ([2, 0])", dir + "/x.npy")));
  // eval --input: the interpreter's inputs too.
  Tensor xi(TensorType{DType::F32, {20, 2}});
  xi.data[3] = std::nan("");
  REQUIRE(writeNpy(dir + "/xi.npy", xi));
  auto ei = runCli({"eval", dir + "/m.nn", "--input", "x=" + dir + "/xi.npy"});
  INFO(ei.out << ei.err);
  CHECK(ei.code == 1);
  CHECK_THAT(ei.err, Catch::Contains(fmt::format("--input x ('{}') holds NaN at index 3 ([1, 1])", dir + "/xi.npy")));
  std::filesystem::remove_all(dir);
}
