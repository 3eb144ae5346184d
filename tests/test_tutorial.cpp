// docs/tutorial.md, run: every command of the tutorial, in order, as a reader
// types it from the repository root, and a few facts its prose states.
//
// Commands are the lines of ```console blocks that start with "$ " (a line
// ending in '\' continues on the next; a heredoc, `<<'EOF'`, runs to its
// terminator line). The lines of a block up to the next command are the output
// the tutorial shows for it. Each command runs with /bin/sh in one fresh
// temporary folder, where build/nnc is a link to the nnc under test and
// examples/ a link to the source tree's; each must exit 0, and each output
// line the tutorial shows must appear in its output, in order, with every
// number read as "some number" (the tutorial's numbers are from one run) and
// runs of blanks as one. A shown line "..." stands for lines left out; a shown
// line ending in "..." was cut short there and matches any line it begins.
//
// Skipped, and only these: the install and build commands of section 1 (the
// build is what is under test), listed below by prefix; the test fails when
// it skips any other number of commands.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace {

namespace fs = std::filesystem;
using nnc::test::readText;
using nnc::test::sourcePath;

const std::vector<std::string> kSkipped = {"./scripts/install-deps.sh", "cmake -S . -B build",
                                           "cmake --build build"};
// The commands the tutorial has now, skipped ones included; fewer is a command
// lost (a broken fence, a missing "$ ").
constexpr size_t kMinCommands = 34;

struct Command {
  std::string text;                // what goes to /bin/sh
  std::vector<std::string> shown;  // the output lines the tutorial shows
  int line = 0;                    // of its "$ " in tutorial.md
  std::string output;              // stdout and stderr, once run
};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> v;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) v.push_back(l);
  return v;
}

std::vector<Command> extractCommands(const std::string& markdown) {
  static const std::regex heredoc(R"(<<-?\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?)");
  const auto md = lines(markdown);
  std::vector<Command> cmds;
  bool console = false, other = false;  // inside a ```console block, inside another fenced block
  bool open = false;                    // a command of this block is collecting its output
  for (size_t i = 0; i < md.size(); ++i) {
    const std::string& l = md[i];
    if (l.rfind("```", 0) == 0) {
      if (console || other) {
        console = other = false;
      } else {
        console = l == "```console";
        other = !console;
      }
      open = false;
      continue;
    }
    if (!console) continue;
    if (l.rfind("$ ", 0) != 0) {
      if (open) cmds.back().shown.push_back(l);
      continue;
    }
    open = true;
    Command c;
    c.line = static_cast<int>(i) + 1;
    c.text = l.substr(2);
    while (!c.text.empty() && c.text.back() == '\\' && i + 1 < md.size()) c.text += "\n" + md[++i];
    std::smatch m;
    if (std::regex_search(c.text, m, heredoc)) {
      const std::string end = m[1];
      while (i + 1 < md.size()) {
        c.text += "\n" + md[++i];
        if (md[i] == end) break;
      }
    }
    cmds.push_back(std::move(c));
  }
  return cmds;
}

bool skipped(const std::string& cmd) {
  for (const std::string& p : kSkipped)
    if (cmd == p || cmd.rfind(p + " ", 0) == 0) return true;
  return false;
}

// Every number (digits, with inner '.' or ',') becomes '#'; blank runs become
// one space; leading and trailing blanks go.
std::string normalize(const std::string& s) {
  static const std::regex number("[0-9]+([.,][0-9]+)*");
  std::string r = std::regex_replace(s, number, "#"), out;
  for (char ch : r) {
    const bool blank = ch == ' ' || ch == '\t' || ch == '\r';
    if (blank && (out.empty() || out.back() == ' ')) continue;
    out += blank ? ' ' : ch;
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The shown lines that do not appear, in order, in the output.
std::vector<std::string> missingShown(const Command& c) {
  const auto out = lines(c.output);
  std::vector<std::string> missing;
  size_t k = 0;
  for (const std::string& s : c.shown) {
    const std::string n = normalize(s);
    if (n.empty() || n == "...") continue;
    const bool cut = n.size() > 3 && n.compare(n.size() - 3, 3, "...") == 0;
    const std::string want = cut ? n.substr(0, n.size() - 3) : n;
    size_t j = k;
    for (; j < out.size(); ++j) {
      const std::string o = normalize(out[j]);
      if (cut ? o.rfind(want, 0) == 0 : o == want) break;
    }
    if (j == out.size()) {
      missing.push_back(s);
    } else {
      k = j + 1;
    }
  }
  return missing;
}

// The command that is `key`, else the one command that starts with it.
const Command& command(const std::vector<Command>& cmds, const std::string& key) {
  for (const Command& c : cmds)
    if (c.text == key) return c;
  const Command* found = nullptr;
  int count = 0;
  for (const Command& c : cmds)
    if (c.text.rfind(key, 0) == 0) found = &c, ++count;
  INFO("commands of docs/tutorial.md starting with: " << key);
  REQUIRE(count == 1);
  return *found;
}

double number(const std::string& text, const std::string& pattern) {
  std::smatch m;
  INFO("looking for /" << pattern << "/ in:\n" << text);
  REQUIRE(std::regex_search(text, m, std::regex(pattern)));
  return std::stod(m[1]);
}

// "sample I: C ..." lines: the class C and the probability after it (nnc
// predict: "sample 0: 9 (Ankle boot) 0.7770, ..."; main_example: "sample 0: 9 0.7770").
std::vector<std::pair<int, double>> topClasses(const std::string& text) {
  static const std::regex sample(R"(^sample [0-9]+: ([0-9]+)(?: \([^)]*\))? ([0-9.]+))");
  std::vector<std::pair<int, double>> v;
  for (const std::string& l : lines(text)) {
    std::smatch m;
    if (std::regex_search(l, m, sample)) v.emplace_back(std::stoi(m[1]), std::stod(m[2]));
  }
  return v;
}

}  // namespace

TEST_CASE("extracting the tutorial's commands", "[tutorial]") {
  const auto cmds = extractCommands(
      "text\n```console\n$ a --x \\\n  --y\nout 1\nout 2\n$ cat > f <<'EOF'\n$ not a command\nEOF\n"
      "$ b\n```\n```sh\n$ not run\n```\n$ not in a block\n```console\nno command\n$ c\n```\n");
  REQUIRE(cmds.size() == 4);
  CHECK(cmds[2].shown.empty());  // "no command" precedes the next block's first command
  CHECK(cmds[0].text == "a --x \\\n  --y");
  CHECK(cmds[0].shown == std::vector<std::string>{"out 1", "out 2"});
  CHECK(cmds[1].text == "cat > f <<'EOF'\n$ not a command\nEOF");
  CHECK(cmds[1].shown.empty());
  CHECK(cmds[2].text == "b");
  CHECK(cmds[3].text == "c");
  CHECK(skipped("cmake --build build -j2"));
  CHECK(skipped("cmake -S . -B build"));
  CHECK_FALSE(skipped("cmake --build out/build"));
  CHECK_FALSE(skipped("cmake -S out -B out/build"));
  CHECK_FALSE(skipped("cmake --build builder"));
  CHECK(normalize("  loss 0.7480,  32,430 params\t(1.21x) ") == "loss #, # params (#x)");
  Command c;
  c.shown = {"a 1", "...", "c 3 ...", "", "f(x, ...", "d"};
  c.output = "a 2\nb\nc 4 and more\nf(x, y)\nd\n";
  CHECK(missingShown(c).empty());
  c.output = "d\na 2\nc 4 and more\nf(x, y)\n";  // out of order
  CHECK(missingShown(c) == std::vector<std::string>{"d"});
}

TEST_CASE("every command of docs/tutorial.md runs and prints what the tutorial shows", "[tutorial][cli]") {
  std::vector<Command> all = extractCommands(readText(sourcePath("docs/tutorial.md")));
  std::vector<Command> cmds;
  size_t nSkipped = 0;
  for (Command& c : all) {
    if (skipped(c.text)) {
      ++nSkipped;
    } else {
      cmds.push_back(std::move(c));
    }
  }
  REQUIRE(nSkipped == kSkipped.size());
  REQUIRE(cmds.size() + nSkipped >= kMinCommands);

  // The reader's repository root: build/nnc and examples/ as links.
  const fs::path dir = nnc::test::tempDir("tutorial");
  fs::create_directories(dir / "build");
  fs::create_symlink(NNC_BINARY, dir / "build" / "nnc");
  fs::create_directory_symlink(sourcePath("examples"), dir / "examples");

  for (size_t i = 0; i < cmds.size(); ++i) {
    Command& c = cmds[i];
    const std::string script = "tutorial_command_" + std::to_string(i) + ".sh";
    std::ofstream(dir / script) << c.text << "\n";
    const std::string run = "cd '" + dir.string() + "' && /bin/sh " + script + " > " + script + ".out 2>&1";
    const int code = std::system(run.c_str());
    c.output = readText((dir / (script + ".out")).string());
    INFO("docs/tutorial.md:" << c.line << ": $ " << c.text << "\n(run in " << dir.string() << ")\noutput:\n"
                             << c.output);
    REQUIRE(code == 0);
    const auto missing = missingShown(c);
    std::string list;
    for (const auto& m : missing) list += "  " + m + "\n";
    INFO("lines the tutorial shows that the output lacks (in order, numbers aside):\n" << list);
    CHECK(missing.empty());
  }

  // Facts the prose states.
  // Section 2: the model it explains line by line is examples/mnist_mlp.nn as
  // it is; its size; the typo's error.
  CHECK_THAT(readText(sourcePath("docs/tutorial.md")),
             Catch::Contains("```\n" + readText(sourcePath("examples/mnist_mlp.nn")) + "```\n"));
  CHECK_THAT(command(cmds, "build/nnc check examples/mnist_mlp.nn").output,
             Catch::Contains("total params: 32,430 (trainable: 32,430"));
  const std::string typo = command(cmds, "build/nnc check typo.nn").output;
  CHECK_THAT(typo, Catch::Contains("typo.nn:13:21: error: matmul: inner dimensions differ: f32[100, 784] @ f32[748, 40]"));
  CHECK_THAT(typo, Catch::Contains("exit status 1"));
  CHECK(fs::file_size(dir / "mlp.dot") > 0);
  // Section 3: one epoch reaches > 70 % test accuracy; eval of the saved
  // weights gives the same accuracy; a checkpoint was written.
  const std::string train = command(cmds, "build/nnc run examples/mnist_mlp.nn --epochs 1").output;
  const double acc = number(train, "epoch 1: .*test accuracy ([0-9.]+)");
  CHECK(acc > 0.7);
  CHECK(fs::exists(dir / "ckpt" / "checkpoint.json"));
  const std::string eval = command(cmds, "build/nnc eval examples/mnist_mlp.nn --weights ckpt").output;
  CHECK(number(eval, "accuracy ([0-9.]+) \\(10000 samples\\)") == acc);
  // Sections 3 and 5: nnc predict and the emitted program agree on the three
  // samples' classes (and, within rounding, probabilities).
  const auto predicted = topClasses(command(cmds, "build/nnc predict examples/mnist_mlp.nn").output);
  const auto emitted = topClasses(command(cmds, "out/build/main_example three.npy").output);
  REQUIRE(predicted.size() == 3);
  REQUIRE(emitted.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    INFO("sample " << i);
    CHECK(emitted[i].first == predicted[i].first);
    CHECK(std::abs(emitted[i].second - predicted[i].second) < 2e-3);
  }
  // Section 4: fusion leaves fewer kernels in the train step.
  const double fused = number(command(cmds, "build/nnc graph examples/mnist_mlp.nn --train --dump-after=lower |").output,
                              "([0-9]+)");
  const double unfused = number(
      command(cmds, "build/nnc graph examples/mnist_mlp.nn --train --dump-after=lower --no-fuse=all").output, "([0-9]+)");
  CHECK(fused < unfused);
  // Section 7: the reader's model trains and learns something in its one
  // short epoch.
  CHECK(number(command(cmds, "build/nnc run my.nn").output, "epoch 1: .*test accuracy ([0-9.]+)") > 0.5);

  fs::remove_all(dir);
}

namespace {

// The train step's kernels as nnc lowers it (docs quote the count).
int kernelsOf(const std::string& model, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"graph", sourcePath(model), "--train", "--dump-after=lower"};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto r = nnc::test::runCli(args);
  INFO(r.err);
  REQUIRE(r.code == 0);
  int n = 0;
  for (const std::string& l : lines(r.out)) n += l.rfind("kernel ", 0) == 0;
  return n;
}

}  // namespace

// Issue 18, item 23: the tutorial's command test reads every number as "some
// number", so counts the docs quote went stale unnoticed (38 and 114 kernels,
// a pass list without fuse-update). These are compared exactly.
TEST_CASE("the kernel counts and the pass list the docs quote are nnc's", "[tutorial][passes]") {
  const std::string tutorial = readText(sourcePath("docs/tutorial.md"));
  const int fused = kernelsOf("examples/mnist_mlp.nn"), unfused = kernelsOf("examples/mnist_mlp.nn", {"--no-fuse=all"});
  const auto cmds = extractCommands(tutorial);
  // The two grep -c commands show the counts themselves.
  CHECK(command(cmds, "build/nnc graph examples/mnist_mlp.nn --train --dump-after=lower |").shown ==
        std::vector<std::string>{std::to_string(fused)});
  CHECK(command(cmds, "build/nnc graph examples/mnist_mlp.nn --train --dump-after=lower --no-fuse=all").shown ==
        std::vector<std::string>{std::to_string(unfused)});
  // The prose before them.
  std::smatch m;
  REQUIRE(std::regex_search(tutorial, m,
                            std::regex(R"(The training step of the same model is ([0-9]+) kernels;\s+with every fusion turned off \(`--no-fuse=all`\) it is ([0-9]+))")));
  CHECK(std::stoi(m[1]) == fused);
  CHECK(std::stoi(m[2]) == unfused);
  // nnc bench's table: the kernels column of the train step's two rows.
  const Command& bench = command(cmds, "build/nnc bench examples/mnist_mlp.nn");
  int rows = 0;
  for (const std::string& l : bench.shown) {
    std::smatch b;
    if (!std::regex_search(l, b, std::regex(R"(^train_step\s+(fused|unfused)\s+(\S+\s+){5}([0-9]+)\s)"))) continue;
    ++rows;
    CHECK(std::stoi(b[3]) == (b[1] == "fused" ? fused : unfused));
  }
  CHECK(rows == 2);
  // The pass log, line for line (the node counts are deterministic): every
  // pass nnc runs, none it does not.
  const Command& passes = command(cmds, "build/nnc graph examples/mnist_mlp.nn --train --optimized -v");
  const auto r = nnc::test::runCli({"graph", sourcePath("examples/mnist_mlp.nn"), "--train", "--optimized", "-v"});
  REQUIRE(r.code == 0);
  std::vector<std::string> log;
  for (const std::string& l : lines(r.out))
    if (l.rfind("pass ", 0) == 0) log.push_back(l);
  CHECK(passes.shown == log);
  REQUIRE(std::regex_search(tutorial, m, std::regex(R"(backward and the Adam update together \(([0-9]+) nodes\))")));
  REQUIRE_FALSE(log.empty());
  CHECK(log[0].find(" " + std::string(m[1]) + " -> ") != std::string::npos);
  // docs/performance.md's compile-time rows name the train steps' kernel counts.
  const std::string perf = readText(sourcePath("docs/performance.md"));
  for (const char* model : {"mnist_mlp", "simple_convnet"}) {
    INFO(model);
    REQUIRE(std::regex_search(perf, m, std::regex(std::string(R"(\| compile the train step, `)") + model +
                                                   R"(` \(([0-9]+) kernels)")));
    CHECK(std::stoi(m[1]) == kernelsOf(std::string("examples/") + model + ".nn"));
  }
}
