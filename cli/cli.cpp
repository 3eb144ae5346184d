// `nnc COMMAND FILE [options]`: dispatch, option parsing and help.
#include "cli/cli.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>


#include "cli/commands.h"
#include "compiler/jit/jit.h"
#include "compiler/ops/conv_algo.h"
#include "compiler/ops/op_registry.h"

namespace nnc::cli {

namespace {

struct CommandInfo {
  const char* name;
  const char* usage;
  const char* help;
  std::vector<OptionSpec> options;
  int (*run)(const Options&, std::ostream&, std::ostream&);
  bool manyFiles = false;  // FILE... (onnx-test's folders)
};

const std::vector<OptionSpec> kModelOptions = {
    {"model", true, "NAME", "the model to build (default: the trained one, else the last)"},
    {"set", true, "NAME=INT", "override a model parameter, e.g. --set batch=1 (repeatable)"},
};

std::vector<OptionSpec> withModelOptions(std::vector<OptionSpec> v) {
  v.insert(v.end(), kModelOptions.begin(), kModelOptions.end());
  return v;
}

}  // namespace

std::vector<OptionSpec> withPassOptions(std::vector<OptionSpec> v) {
  // The names come from the pass table, so the help cannot fall behind it.
  auto joined = [](const std::vector<std::string>& names, const char* sep) {
    std::string s;
    for (const std::string& n : names) s += (s.empty() ? "" : sep) + n;
    return s;
  };
  static const std::string noFuse = "turn fusions or passes off: " + joined(fusionNames(), ",") +
                                    " (or all), " + joined(passNames(), ",");
  static const std::string dumpAfter =
      "print the graph after PASS (" + joined(passNames(), ", ") + "), the loop IR after lower, or all";
  static const std::string convAlgo = "the convolution algorithm of every convolution it fits (" + convAlgoNames() +
                                      "; default auto: the runtime's choice per layer; a layer it does not fit keeps "
                                      "that, said under -v)";
  const std::vector<OptionSpec> passes = {
      {"O", true, "", "-O0..-O3: optimization level (default -O3); -O0 also turns every graph pass and fusion off"},
      {"no-fuse", true, "LIST", noFuse.c_str()},
      {"dump-after", true, "PASS", dumpAfter.c_str()},
      {"conv-algo", true, "ALGO", convAlgo.c_str()}};
  v.insert(v.end(), passes.begin(), passes.end());
  return withModelOptions(std::move(v));
}

namespace {

const std::vector<CommandInfo>& commands() {
  static const std::vector<CommandInfo> cmds = {
      {"check", "nnc check FILE [options]",
       "Parse and shape-check a model; print a summary of its nodes, shapes and parameter counts.",
       withModelOptions({}), runCheck},
      {"graph", "nnc graph FILE [--dot] [options]",
       "Print the model's graph IR, one node per line (or as Graphviz with --dot).",
       withPassOptions({{"dot", false, "", "print Graphviz instead of text (the --dump-after graphs too)"},
                        {"train", false, "", "the whole train step (forward, backward, update)"},
                        {"ranks", true, "N", "with --train: the step of one of N data-parallel processes (mpirun -np N "
                         "nnc run), its gradients summed in buckets"},
                        {"bucket-mb", true, "MB", "with --ranks: the buckets' size cap (default 25)"},
                        {"optimized", false, "", "the graph after the optimizer's passes (see -O, --no-fuse)"},
                        {"verbose", false, "", "with --optimized: a line per pass", 'v'}}),
       runGraph},
      {"eval", "nnc eval FILE [--weights W.npz|CKPT] [--input NAME=F.npy ...] [--output-dir DIR] [options]",
       "Run the reference interpreter forward and print the outputs (and the loss when labels are given). With a "
       "checkpoint folder (nnc run --save) and no --input: score the trained model on its test data (JIT): accuracy "
       "and loss, per class.",
       withPassOptions({{"weights", true, "W.npz|DIR", "param values by name (missing ones are initialized), or a checkpoint folder"},
                         {"data", true, "PATH", "with a checkpoint: the data to score (default: the train block's)"},
                         {"limit", true, "N", "with a checkpoint: score the first N test samples"},
                         {"threads", true, "N", "threads (default 0: every core)"},
                         {"input", true, "NAME=F.npy", "value of an input or label (repeatable)"},
                         {"output-dir", true, "DIR", "write each output as DIR/NAME.npy instead of printing"},
                         {"seed", true, "N", "seed for initializers (default 42)"},
                         {"f64", false, "", "evaluate in double precision"},
                         {"grads", false, "", "also compute every param gradient (training mode; needs labels)"}}),
       runEval},
      {"predict", "nnc predict FILE --weights CKPT --input F [--input F ...] [--top K]",
       "Print the top K classes (default 3) and their probabilities for each sample of the inputs: .npy files "
       "([n, ...] or one sample; integer pixels scaled by 1/255) or images (PNG, PGM, PPM; resized to the model's input).",
       withPassOptions({{"weights", true, "DIR", "a checkpoint folder (nnc run --save) or an .npz of params"},
                         {"input", true, "F", "samples (repeatable)"},
                         {"top", true, "K", "classes shown per sample (default 3)"},
                         {"data", true, "PATH", "the data the model was trained on, for class names"},
                         {"threads", true, "N", "threads (default 0: every core)"}}),
       runPredict},
      {"sample", "nnc sample FILE --weights CKPT [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K] [--seed S]",
       "Generate text from a language model trained on text(...) data: the prompt, then N units drawn one at a time "
       "from the model's `logits` (or `probs`) output at the last position of the window, compiled at batch 1. The "
       "model must be causal (position i sees positions <= i only: an LSTM, a masked transformer); the text fills "
       "the window from position 0 (the rest id 0), and slides once it is longer than the context.",
       withPassOptions({{"weights", true, "DIR", "a checkpoint folder of nnc run --save on text data (its vocab.json)"},
                        {"prompt", true, "TEXT", "the text to continue (default: a line break, not printed)"},
                        {"tokens", true, "N", "units to generate (default 200)"},
                        {"temperature", true, "T", "softmax temperature (default 1; 0: always the most likely unit)"},
                        {"top-k", true, "K", "draw from the K most likely units only (default 0: all)"},
                        {"seed", true, "S", "random seed: the same seed gives the same text (default 42)"},
                        {"threads", true, "N", "threads (default 0: every core)"}}),
       runSample},
      {"grad", "nnc grad FILE [--dot] [options]",
       "Print the backward graph: the gradient of the loss with respect to every trainable param.",
       withModelOptions({{"dot", false, "", "print Graphviz (forward and backward) instead of text"}}), runGrad},
      {"gradcheck", "nnc gradcheck FILE [--samples N] [--eps E] [options]",
       "Compare the symbolic gradient (f64) with central finite differences on sampled entries of every param.",
       withModelOptions({{"samples", true, "N", "entries checked per param (default 10)"},
                         {"eps", true, "E", "finite-difference step h (default 1e-5)"},
                         {"rtol", true, "R", "relative tolerance (default 1e-6)"},
                         {"seed", true, "N", "seed for params, inputs and sampled entries (default 42)"},
                         {"weights", true, "W.npz", "param values (default: initialized)"},
                         {"input", true, "NAME=F.npy", "inputs and labels (default: random; batch 2)"}}),
       runGradcheck},
      {"run", "nnc run FILE [--epochs N] [--limit N] [--data PATH] [--save DIR] [--resume DIR] [options]",
       "Train the model with its train block (default data: Fashion-MNIST) and report loss and accuracy per epoch.",
       withPassOptions({{"epochs", true, "N", "epochs (default: the train block's, else 1)"},
                         {"iterations", true, "N", "stop after N steps in all (overrides --epochs)"},
                         {"limit", true, "N", "use only the first N training samples"},
                         {"test-limit", true, "N", "score only the first N test samples (default: all)"},
                         {"data", true, "PATH", "an IDX folder, .npz, folder of .npy, .csv, folder of class folders of images, or .txt (text; a text(...) source's --data is read as text with its arguments)"},
                         {"augment", true, "LIST", "training augmentations: shift=K, hflip, binarize[=T], comma-separated"},
                         {"warmup", true, "N", "linear learning-rate warmup over the first N steps (the train block's warmup)"},
                         {"clip-grad-norm", true, "C", "clip the gradients' global L2 norm to C (the train block's "
                                                       "clip_grad_norm)"},
                         {"eval-train", false, "", "also score the training samples in inference mode each epoch"},
                         {"save", true, "DIR", "write a checkpoint (params, optimizer state, RNG states) every epoch (into a "
                                               "folder without one, or --resume's; see --overwrite)"},
                         {"resume", true, "DIR", "continue from a checkpoint where it stopped (its seed too)"},
                         {"overwrite", false, "", "let --save DIR replace a checkpoint already in DIR (without "
                                                  "it: refused, unless DIR is --resume's)"},
                         {"quiet", false, "", "no progress bar or step lines: one line per epoch", 'q'},
                         {"seed", true, "N", "seed for initialization and shuffling (default 42)"},
                         {"log-every", true, "N", "print the loss every N steps (0: never; default 100)"},
                         {"metrics", true, "F.csv", "write a row per logged step and per epoch (.csv or .jsonl)"},
                         {"plot", true, "F.svg", "draw loss and accuracy curves as SVG, updated every epoch"},
                         {"backend", true, "jit|interp", "what runs the step: native code (default) or the reference interpreter"},
                         {"memory-limit", true, "SIZE|off",
                          "refuse to start if the run's memory (as nnc check prints it, plus the data) exceeds SIZE "
                          "(4G, 800M, bytes; default: the memory available, MemAvailable or the cgroup's limit); "
                          "off: no check"},
                         {"threads", true, "N", "threads (default 0: every core)"},
                         {"bucket-mb", true, "MB", "under mpirun: the size cap of the buckets gradients are summed "
                          "in across processes (default 25)"},
                         {"verbose", false, "", "print the time spent in each compilation stage and the resident memory", 'v'},
                         {"profile", false, "", "time 20 train steps and 20 inference runs kernel by kernel (JIT), print the costliest, exit"}}),
       runRun},
      {"emit-llvm", "nnc emit-llvm FILE [-o F.ll] [--infer] [options]",
       "Print the optimized LLVM IR of the model's train step (or, with --infer, of its inference).",
       withPassOptions({{"output", true, "F.ll", "write the IR (one module) to a file instead of printing it; - is standard output", 'o'},
                        {"infer", false, "", "the inference program instead of the train step"},
                        {"ranks", true, "N", "the train step of one of N data-parallel processes (its all-reduce calls)"},
                        {"bucket-mb", true, "MB", "with --ranks: the buckets' size cap (default 25)"}}),
       runEmitLlvm},
      {"import", "nnc import MODEL.onnx -o MODEL.nn [--weights-out W.npz] [--batch N] [--loss LOSS [--label T]]",
       "Translate an ONNX model (opsets 1-17) into a readable .nn file, one line per ONNX node with the ONNX names in "
       "comments, and its initializers into an .npz the file's load() calls read. Every command also takes an .onnx "
       "file directly, imported in memory.",
       {{"output", true, "MODEL.nn", "the .nn file to write", 'o'},
        {"weights-out", true, "W.npz", "where the weights go (default: MODEL.npz beside MODEL.nn)"},
        {"name", true, "NAME", "the model's name (default: the ONNX graph's)"},
        {"batch", true, "N", "the default of the model's batch parameter, where the leading axis is dynamic (default 1)"},
        {"loss", true, "LOSS", "add a label, this loss on the first output and a train block (e.g. "
                               "softmax_cross_entropy, mse), so that nnc run trains the model"},
        {"label", true, "NAME", "the label's name with --loss (default t)"}},
       runImport},
      {"emit-cpp",
       "nnc emit-cpp FILE -o OUTDIR [--weights DIR|W.npz] [--weights-file] [--train] [--batch N] [--namespace NS] "
       "[--force]",
       "Write the model as standalone C++17 with no dependency: a class with infer (and train_step) printed from the "
       "kernels the JIT compiles, the runtime it calls, main_example.cpp and a CMakeLists.txt.",
       withPassOptions({{"output", true, "OUTDIR", "the folder to write the files into", 'o'},
                        {"weights", true, "DIR|W.npz", "trained params: a checkpoint folder (nnc run --save; with "
                                                       "--train, its optimizer state too) or an .npz (default: the "
                                                       "model's initial values, --seed)"},
                        {"weights-file", false, "", "write the params to OUTDIR/NAME.weights, read at run time, "
                                                    "instead of embedding them"},
                        {"train", false, "", "also train_step: forward, backward and the train block's optimizer"},
                        {"batch", true, "N", "the batch size fixed in the code (--set batch=N)"},
                        {"namespace", true, "NS", "the C++ namespace of the class (default nnc_model)"},
                        {"force", false, "", "replace files in OUTDIR that nnc did not write or that were edited "
                                             "since (default: refused; OUTDIR/.nnc-emitted lists nnc's)"},
                        {"seed", true, "N", "seed for the params' initializers (default 42)"}}),
       runEmitCpp},
      {"export-onnx", "nnc export-onnx FILE -o MODEL.onnx [--weights CKPT|W.npz] [--opset N] [--static-batch] [options]",
       "Write the model's inference graph (its inputs and outputs; no labels or loss; dropout removed, batchnorm on "
       "its running statistics) and params as an ONNX model, checked by ONNX's checker; the batch axis is dynamic.",
       withModelOptions({{"output", true, "MODEL.onnx", "the file to write (atomically)", 'o'},
                         {"weights", true, "CKPT|W.npz", "trained params: a checkpoint folder (nnc run --save) or an "
                                                         ".npz (default: the model's initial values, seed 42)"},
                         {"opset", true, "N", "the ONNX opset, 11 to 17 (default 13)"},
                         {"static-batch", false, "", "fixed sizes throughout: the batch --set batch=N gives (default: "
                                                     "the batch axis is dynamic)"}}),
       runExportOnnx},
      {"bench", "nnc bench FILE [--threads N] [--json] [--conv-algos] [options]",
       "Compile the train step and inference fused and unfused and time them side by side; list each convolution "
       "with the algorithm chosen for it.",
       withPassOptions({{"threads", true, "N", "threads (default 0: every core)"},
                        {"json", false, "", "print JSON instead of a table"},
                        {"conv-algos", false, "", "also time the fused programs once per convolution algorithm forced "
                                                  "(auto, then each that fits some layer), side by side"},
                        {"min-time", true, "S", "seconds of timing per program (default 2)"}}),
       runBench},
      {"onnx-test", "nnc onnx-test DIR... [--json F] [-v] [options]",
       "Run ONNX's conformance tests: import each folder's model.onnx (DIR is a test folder or a folder of them, "
       "such as /usr/share/libonnx-testdata/data/node), compile it, feed every test_data_set_N and compare the "
       "outputs; a line per test (pass, fail, unsupported, skipped) and counts per ONNX op. Exit status 1 if any "
       "test failed.",
       {{"json", true, "F", "write every result as JSON to F (- is standard output)"},
        {"verbose", false, "", "whole messages, and run the reference interpreter too", 'v'},
        {"interp", false, "", "also run the reference interpreter and compare its outputs"},
        {"rtol", true, "R", "relative tolerance for float outputs (default 1e-4)"},
        {"atol", true, "A", "absolute tolerance for float outputs (default 1e-5); integers and bools compare exactly"},
        {"timeout", true, "S", "seconds per test before it is killed and failed (default 60)"},
        {"jobs", true, "N", "tests run at once, each in its own process (default 1)", 'j'},
        {"no-fork", false, "", "run the tests in this process (for a debugger; a crash ends the run)"}},
       runOnnxTest, true},
  };
  return cmds;
}

const CommandInfo* findCommand(std::string_view name) {
  for (const CommandInfo& c : commands())
    if (name == c.name) return &c;
  return nullptr;
}

void printUsage(std::ostream& out) {
  out << "nnc: a neural-network compiler\n\nusage: nnc COMMAND FILE [options]\n\ncommands:\n";
  for (const CommandInfo& c : commands()) out << fmt::format("  {:<11} {}\n", c.name, c.help);
  out << fmt::format("  {:<11} {}\n", "help", "nnc help COMMAND: a command's options; nnc help ops: every op");
  out << "\nnnc --version prints the version.\n";
}

void printCommandHelp(const CommandInfo& c, std::ostream& out) {
  out << "usage: " << c.usage << "\n\n" << c.help << "\n";
  if (c.options.empty()) return;
  out << "\noptions:\n";
  for (const OptionSpec& o : c.options) {
    std::string flag = std::string_view(o.name) == "O" ? "-O0..-O3"
                       : o.shortName ? fmt::format("-{}, --{}{}{}", o.shortName, o.name, o.takesValue ? " " : "", o.metavar)
                                     : fmt::format("--{}{}{}", o.name, o.takesValue ? " " : "", o.metavar);
    out << fmt::format("  {:<22} {}\n", flag, o.help);
  }
}

// `nnc help ops`: the registry, so the list can never go stale.
void printOps(std::ostream& out) {
  for (const OpDef* op : allOps()) {
    std::string sig;
    for (size_t i = 0; i < op->operands.size(); ++i) {
      if (i) sig += ", ";
      sig += op->operands[i];
      if (static_cast<int>(i) >= op->requiredOperands()) sig += "?";
      if (op->variadic && i + 1 == op->operands.size()) sig += "...";
    }
    for (const AttrSpec& a : op->attrs) {
      if (!sig.empty()) sig += ", ";
      sig += a.name;
      if (a.defaultValue) sig += fmt::format("={}", attrString(*a.defaultValue));
    }
    out << fmt::format("  {:<48} {}\n", fmt::format("{}({})", op->name, sig), op->summary);
  }
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    printUsage(args.empty() ? err : out);
    return args.empty() ? 1 : 0;
  }
  if (args[0] == "--version") {
    out << fmt::format("nnc {} (LLVM {})\n", NNC_VERSION, jit::llvmVersion());
    return 0;
  }
  if (args[0] == "help") {
    if (args.size() < 2) {
      printUsage(out);
      return 0;
    }
    if (args[1] == "ops") {
      printOps(out);
      return 0;
    }
    const CommandInfo* c = findCommand(args[1]);
    if (!c) {
      err << fmt::format("nnc: unknown command '{}' (see nnc --help)\n", args[1]);
      return 1;
    }
    printCommandHelp(*c, out);
    return 0;
  }
  const CommandInfo* c = findCommand(args[0]);
  if (!c) {
    err << fmt::format("nnc: unknown command '{}' (see nnc --help)\n", args[0]);
    return 1;
  }
  auto opts = parseOptions(c->name, c->options, {args.begin() + 1, args.end()}, c->manyFiles);
  if (!opts) {
    err << "nnc " << c->name << ": " << opts.error().message << "\n";
    return 1;
  }
  if (opts->flag("help")) {
    printCommandHelp(*c, out);
    return 0;
  }
  if (opts->file.empty()) {
    err << fmt::format("nnc {}: missing FILE\nusage: {}\n", c->name, c->usage);
    return 1;
  }
  return c->run(*opts, out, err);
}

int main(int argc, char** argv) {
  int code = 1;
  try {
    code = run(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
  } catch (const std::bad_alloc&) {
    std::cerr << "nnc: out of memory\n";
    return 1;
  }
  // Output that never arrived (a full disk, /dev/full, a closed pipe's
  // EPIPE where SIGPIPE is ignored) is a failure, not a success: the
  // stream's state covers what was written so far, the flush the rest.
  errno = 0;
  std::cout.flush();
  const bool lost = !std::cout || std::fflush(stdout) != 0 || std::ferror(stdout);
  if (lost) {
    const int e = errno;
    std::cerr << "nnc: error writing to standard output" << (e ? fmt::format(": {}", std::strerror(e)) : "") << "\n";
    return 1;
  }
  return code;
}

}  // namespace nnc::cli
