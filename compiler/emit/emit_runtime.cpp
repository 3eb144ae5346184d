// emit-cpp's runtime: the GEMM, the implicit-im2col convolutions, the dropout
// masks and normal samples the kernels call, assembled from the very runtime/
// sources the JIT links (embedded into nnc by CMakeLists.txt,
// emit_runtime_sources.h) into two standalone files, nnc_runtime.h and
// nnc_runtime.cpp. What changes on the way: #include "runtime/..." lines go
// (the files are concatenated in dependency order), the thread pool is
// replaced by a serial parallelFor, and the GEMM's run-time choice among
// AVX-512, AVX2 and generic tiles becomes a choice at compile time, by the
// compiler's target macros (the generic set, GCC/Clang vector extensions, on
// any target). The instruction sets' definitions, gemm_tiles.h (the blocking,
// packing and register tiles), the driver, the convolutions and the random
// generator are copied unchanged.
#include <string_view>

#include <fmt/format.h>

#include "compiler/emit/emit_cpp.h"
#include "emit_runtime_sources.h"

namespace nnc {

namespace {

Expected<std::string> source(std::string_view path) {
  for (const emit_sources::File& f : emit_sources::kFiles)
    if (path == f.path) return std::string(f.text);
  return internalError("in emit-cpp", "nnc was built without the runtime source {}", path);
}

// The file without `#pragma once` and without its #include "runtime/..."
// lines (their text comes earlier in the concatenation).
std::string standalone(const std::string& text) {
  std::string out;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    end = end == std::string::npos ? text.size() : end + 1;
    const std::string_view line(text.data() + at, end - at);
    if (!line.starts_with("#pragma once") && !line.starts_with("#include \"runtime/")) out += line;
    at = end;
  }
  return out;
}

// The `extern "C" { ... }` block of a header: the functions generated code calls.
Expected<std::string> externC(const std::string& text, std::string_view path) {
  const size_t begin = text.find("extern \"C\" {\n");
  const size_t end = begin == std::string::npos ? begin : text.find("\n}\n", begin);
  NNC_INTERNAL_ASSERT(end != std::string::npos, "in emit-cpp", "{} has no extern \"C\" block", path);
  return text.substr(begin, end + 3 - begin);
}

std::string banner(std::string_view path) { return fmt::format("\n// ---- {} ----\n\n", path); }

// gemm.cpp chooses among the instruction sets at run time with
// __builtin_cpu_supports; here there is one, chosen at compile time.
constexpr std::string_view kIsaChoiceBegin = "bool supported(const gemm::Isa& isa) {";
constexpr std::string_view kIsaChoiceEnd = "constexpr int kIsaCount = 3;\n";
constexpr std::string_view kIsaChoice =
    "// emit-cpp: the one instruction set above, chosen at compile time, instead\n"
    "// of the run-time choice among AVX-512, AVX2 and generic tiles.\n"
    "bool supported(const gemm::Isa&) { return true; }\n"
    "const gemm::Isa* isas() {\n"
    "  static const gemm::Isa table[] = {gemm::genericIsa()};\n"
    "  return table;\n"
    "}\n"
    "constexpr int kIsaCount = 1;\n";

constexpr std::string_view kHeaderTop = R"(// nnc_runtime.h: the runtime functions the kernels of models written by
// `nnc emit-cpp` call: nnc's GEMM, its implicit-im2col convolutions, dropout
// masks and normal samples (defined in nnc_runtime.cpp). Generated from nnc's
// runtime/ sources; standard C++17, no other dependency.
#pragma once
#include <cstdint>
)";

constexpr std::string_view kSourceTop = R"(// nnc_runtime.cpp: nnc's GEMM, implicit-im2col convolutions, dropout masks
// and normal samples, for the kernels of models written by `nnc emit-cpp`.
// Generated: the runtime/ sources nnc's JIT links, concatenated (section by
// section, each headed by its file's name), with two changes: everything runs
// on the calling thread (parallelFor below), and the GEMM's instruction set
// (AVX-512, AVX2 or generic: GCC/Clang vector extensions, any CPU) is chosen
// by the compiler's target flags, not at run time: compile with -march=native
// for the CPU's best; the default target gets the generic one.
#include "nnc_runtime.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// nnc builds these sources with -Wno-missing-field-initializers: aggregates
// such as gemm::Args leave trailing members at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#ifdef __clang__
// The masked packing of image patches (packRuns, fillRowTab) is for
// instruction sets with lane masks; the generic one packs run by run.
#pragma clang diagnostic ignored "-Wunneeded-internal-declaration"
#endif

// ---- runtime/parallel.h, serial ----

namespace nnc {

// Every parallel region runs on the calling thread, in one chunk: the
// results are the same as on any number of threads (runtime/parallel.h).
inline int threadCount() { return 1; }
template <typename Fn>
void parallelFor(int64_t n, int64_t /*grain*/, const Fn& fn) {
  if (n > 0) fn(0, n);
}

}  // namespace nnc
)";

// The register tiles' instruction set, chosen when the file is compiled, by
// the compiler's target macros, where gemm.cpp chooses at run time: V and
// Cfg of runtime/gemm_avx512.cpp, gemm_avx2.cpp or gemm_generic.cpp (GCC
// and Clang vector extensions, any target), copied unchanged.
constexpr std::string_view kIsaTop = R"(
// ---- the instruction set: runtime/gemm_avx512.cpp, gemm_avx2.cpp or
// gemm_generic.cpp, as the compiler's target allows (-march=native: the
// CPU's best), then runtime/gemm_tiles.h, conv_direct_tiles.h and conv_depthwise_tiles.h ----

#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512DQ__) && defined(__AVX512BW__) && \
    defined(__FMA__)
#define NNC_GEMM_ISA 512
#include <immintrin.h>
#ifndef __clang__
// GCC 12's shuffle intrinsics pass _mm512_undefined_ps(), a self-initialized
// variable that -Wmaybe-uninitialized (at -O2, -Wuninitialized) flags once
// inlined (as gemm_avx512.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#elif defined(__AVX2__) && defined(__FMA__)
#define NNC_GEMM_ISA 256
#include <immintrin.h>
#else
#define NNC_GEMM_ISA 128
#endif

namespace nnc::gemm {
namespace {

#if NNC_GEMM_ISA == 512
)";

constexpr std::string_view kIsaEnd = R"(
}  // namespace

Isa genericIsa() {
  return {NNC_GEMM_ISA == 512 ? "avx512" : NNC_GEMM_ISA == 256 ? "avx2" : "generic", Cfg::MR, int(NR), &block,
          &scatterPatches, &directConv, &directConvGrad, V::W, &dirRows, kDirNvMax, &dirGradRows, &dirTranspose,
          &dirInterleave, &depthwiseRowsTile, &depthwiseGradTile, &depthwisePadTile};
}

}  // namespace nnc::gemm
)";

// V and Cfg of one instruction set's file: from `struct V {` to its
// #include of gemm_tiles.h.
Expected<std::string> isaDefinitions(const std::string& text, std::string_view path) {
  const size_t begin = text.find("struct V {");
  const size_t end = begin == std::string::npos ? begin : text.find("#include \"runtime/gemm_tiles.h\"", begin);
  NNC_INTERNAL_ASSERT(end != std::string::npos, "in emit-cpp",
                      "{} no longer defines struct V and Cfg before including gemm_tiles.h", path);
  return fmt::format("// From {}:\n{}", path, text.substr(begin, end - begin));
}

}  // namespace

Expected<std::vector<EmittedFile>> emitRuntime() {
  NNC_TRY(const std::string activationH, source("runtime/activation.h"));
  NNC_TRY(const std::string gemmH, source("runtime/gemm.h"));
  NNC_TRY(const std::string convH, source("runtime/conv.h"));
  NNC_TRY(const std::string randomH, source("runtime/random_calls.h"));
  NNC_TRY(const std::string gemmCpp, source("runtime/gemm.cpp"));
  NNC_TRY(const std::string kernelH, source("runtime/gemm_kernel.h"));
  NNC_TRY(const std::string tilesH, source("runtime/gemm_tiles.h"));
  NNC_TRY(const std::string dirTilesH, source("runtime/conv_direct_tiles.h"));
  NNC_TRY(const std::string depthwiseTilesH, source("runtime/conv_depthwise_tiles.h"));
  NNC_TRY(const std::string avx512, source("runtime/gemm_avx512.cpp"));
  NNC_TRY(const std::string avx2, source("runtime/gemm_avx2.cpp"));
  NNC_TRY(const std::string generic, source("runtime/gemm_generic.cpp"));
  NNC_TRY(const std::string isa512, isaDefinitions(avx512, "runtime/gemm_avx512.cpp"));
  NNC_TRY(const std::string isa256, isaDefinitions(avx2, "runtime/gemm_avx2.cpp"));
  NNC_TRY(const std::string isa128, isaDefinitions(generic, "runtime/gemm_generic.cpp"));
  NNC_TRY(const std::string rngH, source("runtime/rng.h"));
  NNC_TRY(const std::string randomCpp, source("runtime/random_calls.cpp"));
  NNC_TRY(const std::string sequenceH, source("runtime/sequence.h"));
  NNC_TRY(const std::string sequenceCpp, source("runtime/sequence.cpp"));

  std::string header(kHeaderTop);
  NNC_TRY(const std::string gemmC, externC(gemmH, "runtime/gemm.h"));
  NNC_TRY(const std::string convC, externC(convH, "runtime/conv.h"));
  header += banner("from runtime/gemm.h") + gemmC;
  header += banner("from runtime/conv.h") + convC;
  header += banner("runtime/random_calls.h") + standalone(randomH);
  header += banner("runtime/sequence.h") + standalone(sequenceH);

  const size_t begin = gemmCpp.find(kIsaChoiceBegin);
  const size_t end = begin == std::string::npos ? begin : gemmCpp.find(kIsaChoiceEnd, begin);
  NNC_INTERNAL_ASSERT(end != std::string::npos, "in emit-cpp",
                      "runtime/gemm.cpp no longer chooses its instruction set as emit-cpp expects "
                      "(from '{}' to '{}'): update compiler/emit/emit_runtime.cpp",
                      kIsaChoiceBegin, kIsaChoiceEnd.substr(0, kIsaChoiceEnd.size() - 1));
  const std::string gemmPortable =
      gemmCpp.substr(0, begin) + std::string(kIsaChoice) + gemmCpp.substr(end + kIsaChoiceEnd.size());

  std::string src(kSourceTop);
  src += banner("runtime/activation.h") + standalone(activationH);
  src += banner("runtime/gemm.h") + standalone(gemmH);
  src += banner("runtime/gemm_kernel.h") + standalone(kernelH);
  src += std::string(kIsaTop) + isa512 + "#elif NNC_GEMM_ISA == 256\n\n" + isa256 + "#else\n\n" + isa128 + "#endif\n\n";
  src += standalone(tilesH) + standalone(dirTilesH) + standalone(depthwiseTilesH) + std::string(kIsaEnd);
  src += banner("runtime/gemm.cpp") + standalone(gemmPortable);
  // The convolutions: the shared geometry, each algorithm's header, the
  // dispatching conv.h, then the algorithms and the dispatch.
  for (std::string_view path : {"runtime/conv_geom.h", "runtime/conv_direct.h", "runtime/conv_winograd.h",
                                "runtime/conv_depthwise.h", "runtime/conv.h", "runtime/conv_direct.cpp",
                                "runtime/conv_winograd.cpp", "runtime/conv_depthwise.cpp", "runtime/conv.cpp"}) {
    NNC_TRY(const std::string text, source(path));
    src += banner(path) + standalone(text);
  }
  src += banner("runtime/rng.h") + standalone(rngH);
  src += banner("runtime/random_calls.cpp") + standalone(randomCpp);
  src += banner("runtime/sequence.cpp") + standalone(sequenceCpp);
  return std::vector<EmittedFile>{{"nnc_runtime.h", header}, {"nnc_runtime.cpp", src}};
}

}  // namespace nnc
