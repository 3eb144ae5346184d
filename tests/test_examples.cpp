// Every example under examples/ runs to completion at reduced size (a couple
// of steps, a few hundred test samples); the quick ones also run in full and
// must reach what examples/README.md reports they show.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "test_util.h"

using nnc::test::readText;
using nnc::test::runCli;
using nnc::test::sourcePath;

namespace {

bool endsWithNn(const std::string& name) { return name.size() >= 3 && name.compare(name.size() - 3, 3, ".nn") == 0; }

// Every file under examples/ whose name ends in ".nn" (".nn" itself included:
// path(".nn").extension() is empty, so a template saved without a name would
// slip past an extension test): the ones `git ls-files` lists, or, where git
// or the repository is absent, the ones a directory walk finds.
std::vector<std::string> exampleFiles() {
  std::vector<std::string> files;
  const std::string cmd = "git -C '" + sourcePath("") + "' ls-files -z -- examples 2>/dev/null";
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    std::string listed;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) listed.append(buf, n);
    const int status = ::pclose(p);
    if (status == 0)
      for (size_t at = 0; at < listed.size();) {
        const size_t end = std::min(listed.find('\0', at), listed.size());
        const std::string rel = listed.substr(at, end - at);
        if (endsWithNn(std::filesystem::path(rel).filename().string())) files.push_back(sourcePath(rel));
        at = end + 1;
      }
  }
  if (files.empty())
    for (const auto& e : std::filesystem::recursive_directory_iterator(sourcePath("examples")))
      if (e.is_regular_file() && endsWithNn(e.path().filename().string())) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

// The last number printed after `what` ("test accuracy 0.8512").
double last(const std::string& out, const std::string& what) {
  std::smatch m;
  std::string v;
  const std::regex re(what + " ([-0-9.e+]+)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it) v = (*it)[1];
  INFO(out);
  REQUIRE(!v.empty());
  return std::stod(v);
}

}  // namespace

TEST_CASE("every .nn file under examples/ is a model nnc check accepts", "[examples]") {
  const auto files = exampleFiles();
  REQUIRE(files.size() >= 30);
  for (const std::string& f : files) {
    INFO(f);
    CHECK(std::filesystem::path(f).filename() != ".nn");  // an unfilled template, committed by mistake
    auto r = runCli({"check", f});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
  }
}

TEST_CASE("every example runs at reduced size", "[examples]") {
  const auto files = exampleFiles();
  REQUIRE(files.size() >= 30);  // the gallery; a file that disappears is noticed
  for (const std::string& f : files) {
    INFO(f);
    const bool trains = readText(f).find("\ntrain ") != std::string::npos;
    // Two steps; at most 400 training samples (so a batch of 100 makes
    // steps), 300 scored. A model with no train block is evaluated.
    auto r = trains ? runCli({"run", f, "--iterations", "2", "--limit", "400", "--test-limit", "300", "--quiet"})
                    : runCli({"eval", f});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find("NaN") == std::string::npos);
    if (trains) CHECK(r.out.find("epoch 1: train loss") != std::string::npos);
    if (f.find("/overfitting/") != std::string::npos) CHECK(r.out.find("train-set accuracy") != std::string::npos);
  }
}

TEST_CASE("the binary-addition RNN adds every held-out pair right", "[examples]") {
  auto r = runCli({"run", sourcePath("examples/rnn/binary_addition.nn"), "--quiet"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(last(r.out, "accuracy") == 1.0);  // all 8 bits of all 2000 test sums
}

TEST_CASE("the spiral needs the hidden layer and gets it", "[examples]") {
  auto r = runCli({"run", sourcePath("examples/losses/multiclass_ce.nn"), "--quiet"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(last(r.out, "test accuracy") > 0.95);  // a linear classifier reaches about 0.5
}

TEST_CASE("the MSE regression gets near the noise floor", "[examples]") {
  auto r = runCli({"run", sourcePath("examples/losses/regression_mse.nn"), "--quiet"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // The noise's variance is 0.0025; predicting the mean costs about 0.2.
  CHECK(last(r.out, "test loss") < 0.01);
}

TEST_CASE("the anomaly autoencoder reconstructs its own class best", "[examples]") {
  auto r = runCli({"run", sourcePath("examples/autoencoder/conv_anomaly.nn"), "--epochs", "1", "--test-limit", "3000",
                   "--quiet"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // Rows "  7 Sneaker   0.0012   0.9%   300": the trained class has the
  // smallest mean error, and is flagged least.
  const std::regex row(R"(\n  (\d) [^\n]*? ([0-9.e-]+) +([0-9.]+)% +\d+)");
  std::map<int, std::pair<double, double>> byClass;
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), row); it != std::sregex_iterator(); ++it)
    byClass[std::stoi((*it)[1])] = {std::stod((*it)[2]), std::stod((*it)[3])};
  REQUIRE(byClass.size() == 10);
  for (const auto& [c, v] : byClass) {
    if (c == 7) continue;
    CHECK(byClass[7].first < v.first);
    CHECK(byClass[7].second < v.second);
  }
  CHECK(byClass[7].second < 5.0);  // about 1 % above the training's 0.99 quantile
}

TEST_CASE("class selection renumbers, train_classes filters the training split only", "[examples]") {
  auto bin = runCli({"run", sourcePath("examples/losses/binary_ce.nn"), "--iterations", "2", "--quiet"});
  INFO(bin.out << bin.err);
  REQUIRE(bin.code == 0);
  CHECK(bin.out.find("(12000 samples") != std::string::npos);  // 6000 T-shirts and 6000 shirts
  CHECK(bin.out.find("test accuracy") != std::string::npos);
  CHECK(bin.out.find("(2000 samples)") != std::string::npos);  // 1000 T-shirts and 1000 shirts
  auto ae = runCli({"run", sourcePath("examples/autoencoder/conv_anomaly.nn"), "--iterations", "1", "--quiet"});
  INFO(ae.out << ae.err);
  REQUIRE(ae.code == 0);
  CHECK(ae.out.find("6000 samples, batch 100, 60 steps per epoch") != std::string::npos);  // the sneakers
  CHECK(ae.out.find("(10000 samples)") != std::string::npos);                            // every class

  const std::string dir = nnc::test::tempDir("select");
  for (const auto& [list, message] : std::vector<std::pair<std::string, std::string>>{
           {"3,11", "has no class 11 (its classes are 0 to 9)"},
           {"3,3", "class id 3 is named twice"},
           {"3,x", "'x' is not one"}}) {
    std::ofstream(dir + "/m.nn") << "model m { input x: f32[10, 784] label t: i32[10] "
                                    "loss = softmax_cross_entropy(dense(x, 2), t) }\n"
                                    "train m { data = idx(\"/usr/share/datasets/fashion-mnist\", select = \""
                                 << list << "\") }\n";
    auto bad = runCli({"run", dir + "/m.nn", "--quiet"});
    INFO(bad.err);
    CHECK(bad.code != 0);
    CHECK(bad.err.find(message) != std::string::npos);
  }
}
