#include "base/diagnostics.h"

namespace nnc {

const char* const kInternalErrorBanner =
    "internal error in nnc (this is a bug in nnc, not in your model; please report it)";

uint32_t SourceManager::add(std::string name, std::string text) {
  File f{std::move(name), std::move(text), {0}};
  for (size_t i = 0; i < f.text.size(); ++i)
    if (f.text[i] == '\n') f.lineStarts.push_back(i + 1);
  files_.push_back(std::move(f));
  return static_cast<uint32_t>(files_.size());
}

// The UTF-8 byte-order mark the lexer skips at the start of a file (as
// dsl/lexer.cpp): line 1 is shown without it, so carets match its columns.
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

std::string_view SourceManager::lineText(SourceLoc loc) const {
  if (!loc.valid() || loc.file > files_.size()) return {};
  const File& f = files_[loc.file - 1];
  if (loc.line > f.lineStarts.size()) return {};
  size_t b = f.lineStarts[loc.line - 1];
  size_t e = f.text.find('\n', b);
  if (e == std::string::npos) e = f.text.size();
  if (e > b && f.text[e - 1] == '\r') --e;
  if (loc.line == 1 && std::string_view(f.text).substr(b, e - b).starts_with(kUtf8Bom)) b += kUtf8Bom.size();
  return std::string_view(f.text).substr(b, e - b);
}

std::string SourceManager::renderOne(std::string_view kind, SourceLoc loc,
                                     std::string_view msg) const {
  if (!loc.valid() || loc.file > files_.size()) return fmt::format("{}: {}\n", kind, msg);
  std::string out = fmt::format("{}:{}:{}: {}: {}\n", name(loc.file), loc.line, loc.col, kind, msg);
  std::string_view line = lineText(loc);
  // Control bytes would garble a terminal; show them as spaces.
  std::string shown(line);
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = ' ';
  out += "  " + shown + "\n  ";
  for (uint32_t i = 1; i < loc.col && i <= line.size(); ++i)
    out += line[i - 1] == '\t' ? '\t' : ' ';
  out += "^\n";
  return out;
}

std::string SourceManager::render(const Diagnostic& d) const {
  if (d.internal()) {
    std::string out = fmt::format("{}: {}\n", kInternalErrorBanner, d.message);
    for (const DiagNote& n : d.notes) out += fmt::format("note: {}\n", n.message);
    return out;
  }
  std::string out = renderOne("error", d.loc, d.message);
  for (const DiagNote& n : d.notes) out += renderOne("note", n.loc, n.message);
  return out;
}

}  // namespace nnc
