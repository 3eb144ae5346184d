// emit-cpp's main_example.cpp and CMakeLists.txt. The example picks one of
// three forms from the model's inputs:
//   examples  every input has an example value (`input x: f32[2] = [2, 3]`):
//             infer on them, print the outputs as `nnc eval` does;
//   classify  one batched input and a [batch, classes] output: samples from
//             an .npy file (or one batch of zeros), each sample's most likely
//             class printed as `nnc predict --top 1` prints it;
//   zeros     otherwise: infer on zeros, outputs printed as nnc eval does.
// Each also times infer (and train_step) with --bench N.
#include <algorithm>

#include <fmt/format.h>

#include "compiler/emit/emit_cpp.h"

namespace nnc {

namespace {

std::string floatLiteral(double d) {
  const float v = static_cast<float>(d);
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s + "f";
}

std::string shapeList(const TensorType& t) {
  std::string s;
  for (int64_t d : t.shape) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return s;
}

constexpr std::string_view kPrint = R"(
// A value as nnc eval prints it: the shortest digits that read back as the
// same float (i32 values as integers), long axes elided as NumPy does.
void put(std::string& s, float v, bool i32) {
  char b[48];
  if (i32) {
    std::snprintf(b, sizeof b, "%lld", static_cast<long long>(v));
  } else {
    for (int p = 1; p <= 9; ++p) {
      std::snprintf(b, sizeof b, "%.*g", p, static_cast<double>(v));
      if (std::strtof(b, nullptr) == v) break;
    }
  }
  s += b;
}

void format(std::string& s, const float* v, const std::vector<int64_t>& shape, size_t axis, bool i32) {
  if (axis == shape.size()) return put(s, *v, i32);
  int64_t stride = 1;
  for (size_t a = axis + 1; a < shape.size(); ++a) stride *= shape[a];
  s += '[';
  for (int64_t i = 0; i < shape[axis]; ++i) {
    if (shape[axis] > 8 && i == 3) {
      s += "..., ";
      i = shape[axis] - 3;
    }
    if (i && s.back() != ' ') s += axis + 1 == shape.size() ? ", " : ",\n" + std::string(axis + 1, ' ');
    format(s, v + i * stride, shape, axis + 1, i32);
  }
  s += ']';
}

void print(const char* name, const std::vector<float>& v, const std::vector<int64_t>& shape, bool i32) {
  std::string s;
  format(s, v.data(), shape, 0, i32);
  std::printf("%s = %s\n", name, s.c_str());
}
)";

constexpr std::string_view kNpy = R"(
// The values of an .npy file (little-endian f4 or f8; u1, i4 or i8 pixels
// are scaled by 1/255, as nnc predict reads them), appended to `out`.
bool readNpy(const char* path, std::vector<float>& out) {
  std::FILE* f = std::fopen(path, "rb");
  if (!f) return false;
  std::string d;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) d.append(buf, n);
  std::fclose(f);
  if (d.size() < 12 || d.compare(0, 6, "\x93NUMPY") != 0) return false;
  const unsigned char* u = reinterpret_cast<const unsigned char*>(d.data());
  const size_t len = u[6] == 1 ? u[8] | u[9] << 8 : u[8] | u[9] << 8 | u[10] << 16 | size_t(u[11]) << 24;
  const size_t start = (u[6] == 1 ? 10 : 12) + len;
  const std::string header = d.substr(0, start);
  const size_t at = header.find("'descr': '");
  if (start > d.size() || at == std::string::npos || header.find("'fortran_order': True") != std::string::npos)
    return false;
  const std::string type = header.substr(at + 10, 3);
  const size_t bytes = type == "|u1" ? 1 : type == "<f4" || type == "<i4" ? 4 : type == "<f8" || type == "<i8" ? 8 : 0;
  if (bytes == 0) return false;
  for (size_t i = start; i + bytes <= d.size(); i += bytes) {
    float f4;
    double f8;
    int32_t i4;
    int64_t i8;
    if (type == "<f4") std::memcpy(&f4, &d[i], 4), out.push_back(f4);
    if (type == "<f8") std::memcpy(&f8, &d[i], 8), out.push_back(static_cast<float>(f8));
    if (type == "|u1") out.push_back(static_cast<float>(u[i] / 255.0));
    if (type == "<i4") std::memcpy(&i4, &d[i], 4), out.push_back(static_cast<float>(i4 / 255.0));
    if (type == "<i8") std::memcpy(&i8, &d[i], 8), out.push_back(static_cast<float>(static_cast<double>(i8) / 255.0));
  }
  return true;
}
)";

constexpr std::string_view kRandomize = R"(
// Pseudo-random values in [0, 1), for timing on data that is not all zeros.
void randomize(std::vector<float>& v) {
  uint32_t s = 12345;
  for (float& x : v) x = static_cast<float>((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f;
}
)";

constexpr std::string_view kBench = R"(
// Median and minimum wall time of n calls of fn, in ms.
template <typename Fn>
void bench(const char* what, int n, Fn fn) {
  for (int i = 0; i < 3; ++i) fn();  // warm up
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%-10s median %.4f ms, min %.4f ms (%d runs)\n", what, ms[ms.size() / 2], ms[0], n);
}
)";

// The example's form: `examples` when every input has an example value,
// else `scores` names the output to classify with (one batched input and
// the first [batch, classes] output), else neither (zeros).
struct Form {
  bool examples = true;
  const EmittedApi::Operand* scores = nullptr;
};

Form formOf(const EmittedApi& api) {
  bool examples = true;
  for (const auto& x : api.inputs) examples &= !x.example.empty();
  // classify: one batched input and the first [batch, classes] output.
  const EmittedApi::Operand* scores = nullptr;
  if (!examples && api.inputs.size() == 1 && api.inferLabels.empty() && api.inputs[0].type.rank() >= 2)
    for (const auto& y : api.outputs)
      if (y.type.rank() == 2 && y.type.shape[0] == api.inputs[0].type.shape[0]) {
        scores = &y;
        break;
      }
  return {examples, scores};
}

// The command line main_example takes.
std::string usageOf(const EmittedApi& api, const Form& f) {
  return fmt::format("main_example{}{} [--bench N]", f.scores ? " [x.npy]" : "",
                     api.weightsFile ? fmt::format(" [--weights {}.weights]", api.file) : "");
}

// The file's comment, includes, and the helpers its form needs.
std::string exampleIntro(const EmittedApi& api, const Form& f, const std::string& usage) {
  const bool examples = f.examples;
  const EmittedApi::Operand* scores = f.scores;
  std::string what;
  if (examples)
    what = "Runs infer on the model's example inputs and prints the outputs as\n// `nnc eval` prints them.";
  else if (scores)
    what = fmt::format(
        "Prints the most likely class of each sample of x.npy and its\n"
        "// probability, as `nnc predict --top 1` prints them (x.npy: [n, ...] samples\n"
        "// of {}, f4/f8, or u1/i4/i8 pixels scaled by 1/255; without it, one\n"
        "// batch of zeros).",
        typeString(TensorType{api.inputs[0].type.dtype,
                              Shape(api.inputs[0].type.shape.begin() + 1, api.inputs[0].type.shape.end())}));
  else
    what = "Runs infer on zeros and prints the outputs as `nnc eval` prints them.";
  std::string m = fmt::format(
      "// main_example.cpp: runs model {} (written by nnc emit-cpp).\n"
      "// {}\n"
      "//   {}\n"
      "// --bench N times N calls of infer{}, on one thread (inputs\n"
      "// pseudo-random{}).\n"
      "#include <algorithm>\n#include <chrono>\n#include <cmath>\n#include <cstdint>\n#include <cstdio>\n#include <cstdlib>\n"
      "#include <cstring>\n#include <exception>\n#include <string>\n#include <vector>\n\n#include \"{}.hpp\"\n\n"
      "namespace {{\n",
      api.model, what, usage, api.train ? " and of train_step at lr 0" : "", scores ? " unless samples are given" : "",
      api.file);
  m += scores ? kNpy : kPrint;
  if (!api.inputs.empty()) m += kRandomize;
  m += kBench;
  m += "\n}  // namespace\n\n";
  return m;
}

// main(): the options, then the model (from its weights file) and run().
std::string mainFunction(const EmittedApi& api, const Form& f, const std::string& usage) {
  const EmittedApi::Operand* scores = f.scores;
  const std::string model = api.ns + "::" + api.cls;
  std::string m;
  m += "int main(int argc, char** argv) {\n";
  m += "  int runs = 0;\n";
  if (api.weightsFile) m += fmt::format("  std::string weights = \"{}.weights\";\n", api.file);
  if (scores) m += "  const char* samples = nullptr;\n";
  m += "  for (int i = 1; i < argc; ++i) {\n";
  m += "    if (std::strcmp(argv[i], \"--bench\") == 0 && i + 1 < argc) {\n      runs = std::atoi(argv[++i]);\n";
  if (api.weightsFile) m += "    } else if (std::strcmp(argv[i], \"--weights\") == 0 && i + 1 < argc) {\n      weights = argv[++i];\n";
  if (scores) m += "    } else if (!samples && argv[i][0] != '-') {\n      samples = argv[i];\n";
  m += fmt::format("    }} else {{\n      std::fprintf(stderr, \"usage: {}\\n\");\n      return 2;\n    }}\n  }}\n", usage);
  if (api.weightsFile)
    m += fmt::format(
        "  try {{\n    {0} model(weights);\n    return run(model, runs{1});\n  }} catch (const std::exception& e) {{\n"
        "    std::fprintf(stderr, \"main_example: %s\\n\", e.what());\n    return 1;\n  }}\n}}\n",
        model, scores ? ", samples" : "");
  else
    m += fmt::format("  {} model;\n  return run(model, runs{});\n}}\n", model, scores ? ", samples" : "");
  return m;
}

// run()'s buffers for every operand (inputs with their example values,
// labels of class 0), and the arguments of infer and train_step.
struct RunOperands {
  std::string code;
  std::vector<std::string> inferArgs, trainArgs;
};

RunOperands runOperands(const EmittedApi& api, const Form& f) {
  const EmittedApi::Operand* scores = f.scores;
  std::string run;
  std::vector<std::string> inferArgs, trainArgs;
  for (const auto& x : api.inputs) {
    if (!x.example.empty() && !scores) {
      std::string vals;
      for (double v : x.example) vals += (vals.empty() ? "" : ", ") + floatLiteral(v);
      run += x.example.size() == 1
                 ? fmt::format("  std::vector<float> {}(model.{}_size, {});\n", x.id, x.id, vals)
                 : fmt::format("  std::vector<float> {} = {{{}}};\n", x.id, vals);
    } else {
      run += fmt::format("  std::vector<float> {}(model.{}_size);\n", x.id, x.id);
    }
    inferArgs.push_back(x.id + ".data()");
    trainArgs.push_back(x.id + ".data()");
  }
  for (const auto& t : api.inferLabels) {
    run += fmt::format("  std::vector<float> {}(model.{}_size);  // class 0\n", t.id, t.id);
    inferArgs.push_back(t.id + ".data()");
  }
  if (api.train)
    for (const auto& t : api.labels) {
      if (std::find_if(api.inferLabels.begin(), api.inferLabels.end(), [&](const auto& l) { return l.id == t.id; }) ==
          api.inferLabels.end())
        run += fmt::format("  std::vector<float> {}(model.{}_size);  // class 0\n", t.id, t.id);
      trainArgs.push_back(t.id + ".data()");
    }
  for (const auto& y : api.outputs) {
    run += fmt::format("  std::vector<float> {}(model.{}_size);\n", y.id, y.id);
    inferArgs.push_back(y.id + ".data()");
  }
  trainArgs.push_back("0.0f");
  return {std::move(run), std::move(inferArgs), std::move(trainArgs)};
}

// The classify form: infer batch by batch over the samples (the last one
// padded), each sample's best class and its probability printed.
std::string classifyLoop(const EmittedApi& api, const EmittedApi::Operand* scores, const std::string& inferCall) {
  std::string run;
  const auto& x = api.inputs[0];
  const int64_t batch = x.type.shape[0], sample = x.type.numel() / batch, classes = scores->type.shape[1];
  run += fmt::format(
      "  constexpr int64_t batch = {0}, sample = {1}, classes = {2};\n"
      "  std::vector<float> all;\n"
      "  if (samples && (!readNpy(samples, all) || all.empty() || all.size() % sample != 0)) {{\n"
      "    std::fprintf(stderr, \"main_example: %s is not an .npy file of samples of %lld values\\n\", samples,\n"
      "                 static_cast<long long>(sample));\n"
      "    return 1;\n"
      "  }}\n"
      "  const int64_t n = samples ? static_cast<int64_t>(all.size()) / sample : batch;\n"
      "  for (int64_t first = 0; first < n; first += batch) {{\n"
      "    const int64_t count = std::min(batch, n - first);  // the last batch padded with zeros\n"
      "    std::fill({3}.begin(), {3}.end(), 0.0f);\n"
      "    if (samples) std::copy_n(all.data() + first * sample, count * sample, {3}.data());\n"
      "    {4}\n"
      "    for (int64_t i = 0; i < count; ++i) {{\n"
      "      const float* row = {5}.data() + i * classes;\n"
      "      const int64_t best = std::max_element(row, row + classes) - row;\n",
      batch, sample, classes, x.id, inferCall, scores->id);
  if (scores->probabilities)
    run += "      std::printf(\"sample %lld: %lld %.4f\\n\", static_cast<long long>(first + i), static_cast<long long>(best),\n"
           "                  static_cast<double>(row[best]));\n";
  else
    run += "      // The probability, as nnc predict prints it: a softmax of the scores.\n"
           "      double sum = 0;\n"
           "      for (int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(row[c] - row[best]));\n"
           "      std::printf(\"sample %lld: %lld %.4f\\n\", static_cast<long long>(first + i), static_cast<long long>(best),\n"
           "                  1.0 / sum);\n";
  run += "    }\n  }\n";
  return run;
}

// run(): operands, infer, print, bench.
std::string runFunction(const EmittedApi& api, const Form& f) {
  const EmittedApi::Operand* scores = f.scores;
  const std::string model = api.ns + "::" + api.cls;
  std::string run = fmt::format("namespace {{\n\nint run({}& model, int runs{}) {{\n", model, scores ? ", const char* samples" : "");
  const RunOperands ops = runOperands(api, f);
  run += ops.code;
  const std::string inferCall = fmt::format("model.infer({});", fmt::join(ops.inferArgs, ", "));
  if (scores) {
    run += classifyLoop(api, scores, inferCall);
  } else {
    run += "  " + inferCall + "\n";
    for (const auto& y : api.outputs)
      run += fmt::format("  print(\"{}\", {}, {{{}}}, {});\n", y.name, y.id, shapeList(y.type),
                         y.type.dtype == DType::I32 ? "true" : "false");
  }
  run += "  if (runs > 0) {\n";
  for (const auto& x : api.inputs)
    run += scores ? fmt::format("    if (!samples) randomize({});\n", x.id) : fmt::format("    randomize({});\n", x.id);
  run += fmt::format("    bench(\"infer\", runs, [&] {{ {} }});\n", inferCall);
  if (api.train)
    run += fmt::format("    bench(\"train_step\", runs, [&] {{ model.train_step({}); }});\n", fmt::join(ops.trainArgs, ", "));
  run += "  }\n  return 0;\n}\n\n}  // namespace\n\n";
  return run;
}

// CMakeLists.txt: the model as a library, main_example linked to it.
std::string cmakeLists(const EmittedApi& api) {
  std::string cmake = fmt::format(
      "# Builds main_example from the model {} written by nnc emit-cpp.\n"
      "#   cmake -S . -B build && cmake --build build && build/main_example\n"
      "# -DNNC_NATIVE=ON compiles for this machine's CPU (-march=native): the GEMM's\n"
      "# vectors are then as wide as its registers (AVX2, AVX-512), not SSE's.\n"
      "cmake_minimum_required(VERSION 3.13)\n"
      "project({} CXX)\n\n"
      "set(CMAKE_CXX_STANDARD 17)\n"
      "set(CMAKE_CXX_STANDARD_REQUIRED ON)\n"
      "if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)\n"
      "  set(CMAKE_BUILD_TYPE Release CACHE STRING \"\" FORCE)\n"
      "endif()\n"
      "option(NNC_NATIVE \"compile for this machine's CPU (-march=native)\" OFF)\n\n"
      "add_library({} STATIC {}.cpp nnc_runtime.cpp)\n"
      "target_include_directories({} PUBLIC ${{CMAKE_CURRENT_SOURCE_DIR}})\n"
      "if(NNC_NATIVE)\n  target_compile_options({} PUBLIC -march=native)\nendif()\n"
      "# std::sqrt need not set errno: GCC then vectorizes the loops that call it.\n"
      "if(CMAKE_CXX_COMPILER_ID MATCHES \"GNU|Clang\")\n"
      "  target_compile_options({} PRIVATE -fno-math-errno)\n"
      "endif()\n\n"
      "add_executable(main_example main_example.cpp)\n"
      "target_link_libraries(main_example PRIVATE {})\n",
      api.model, api.file, api.file, api.file, api.file, api.file, api.file, api.file);
  if (api.weightsFile)
    cmake += fmt::format("# main_example reads {0}.weights from the folder it runs in.\n"
                         "configure_file({0}.weights ${{CMAKE_CURRENT_BINARY_DIR}}/{0}.weights COPYONLY)\n",
                         api.file);
  return cmake;
}

}  // namespace

std::vector<EmittedFile> emitExample(const EmittedApi& api) {
  const Form form = formOf(api);
  const std::string usage = usageOf(api, form);
  // run() goes before main().
  const std::string m = exampleIntro(api, form, usage) + runFunction(api, form) + mainFunction(api, form, usage);
  return {{"main_example.cpp", m}, {"CMakeLists.txt", cmakeLists(api)}};
}

}  // namespace nnc
