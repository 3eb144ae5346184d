#include "cli/frontend.h"

#include <ostream>

#include "dsl/parser.h"
#include "io/file_io.h"
#include "io/npy.h"

namespace nnc::cli {

namespace {
constexpr uint64_t kMaxSourceBytes = uint64_t{16} << 20;
}  // namespace

Expected<Elaborated> compileSource(SourceManager& sm, const std::string& name, std::string text,
                                   const ElaborateOptions& opt) {
  const uint32_t file = sm.add(name, std::move(text));
  NNC_TRY(ast::Program prog, parse(sm, file));
  return elaborate(prog, opt);
}

std::optional<Loaded> load(const std::string& path, const ElaborateOptions& opt, std::ostream& err) {
  Loaded l;
  // Model sources are kilobytes; the cap keeps a wrong argument (a data
  // file, a disk image) from being read whole before the parser objects.
  auto text = readFile(path, kMaxSourceBytes, "a model source");
  if (!text) {
    err << l.sm->render(text.error());
    return std::nullopt;
  }
  const uint32_t file = l.sm->add(path, text.take());
  auto prog = parse(*l.sm, file);
  if (!prog) {
    err << l.sm->render(prog.error());
    return std::nullopt;
  }
  l.program = prog.take();
  auto model = elaborate(l.program, opt);
  if (!model) {
    Diagnostic& d = model.error();
    // Errors about the file as a whole point at its first line.
    if (!d.loc.valid()) d.loc = SourceLoc{file, 0, 0};
    err << (d.loc.line == 0 && !d.internal() ? fmt::format("{}: error: {}\n", path, d.message) : l.sm->render(d));
    return std::nullopt;
  }
  l.model = model.take();
  return l;
}

}  // namespace nnc::cli
