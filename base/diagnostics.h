// Source locations, diagnostics and Expected<T>: errors travel as values.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <fmt/format.h>

namespace nnc {

struct SourceLoc {
  uint32_t file = 0;  // index in SourceManager; 0 = no file
  uint32_t line = 0;  // 1-based; 0 = unknown
  uint32_t col = 0;   // 1-based, in bytes
  bool valid() const { return file != 0 && line != 0; }
};

struct DiagNote {
  SourceLoc loc;
  std::string message;
};

// A diagnostic is a user error (the model, its options or its data are
// wrong: it points into the model's source where it can) or an internal
// error (nnc itself reached a state it should not: a pass broke an
// invariant). Internal errors are made only by internalError and
// NNC_INTERNAL_ASSERT and never point into the model, so a bug in nnc does
// not read as a mistake on the line the user wrote.
struct Diagnostic {
  enum class Kind { User, Internal };

  SourceLoc loc;
  std::string message;
  std::vector<DiagNote> notes;
  Kind kind = Kind::User;

  bool internal() const { return kind == Kind::Internal; }

  Diagnostic&& note(SourceLoc l, std::string m) && {
    notes.push_back({l, std::move(m)});
    return std::move(*this);
  }
};

template <class... Args>
Diagnostic error(SourceLoc loc, fmt::format_string<Args...> f, Args&&... args) {
  return Diagnostic{loc, fmt::format(f, std::forward<Args>(args)...), {}, Diagnostic::Kind::User};
}
template <class... Args>
Diagnostic error(fmt::format_string<Args...> f, Args&&... args) {
  return Diagnostic{SourceLoc{}, fmt::format(f, std::forward<Args>(args)...), {}, Diagnostic::Kind::User};
}

// An internal error: `where` names the stage and the node, e.g. "in pass
// fuse-epilogue at %12" or "in lower, kernel of %3"; the message says which
// invariant broke.
template <class... Args>
Diagnostic internalError(std::string_view where, fmt::format_string<Args...> f, Args&&... args) {
  return Diagnostic{SourceLoc{}, fmt::format("{}: {}", where, fmt::format(f, std::forward<Args>(args)...)), {},
                    Diagnostic::Kind::Internal};
}

// Holds the files a diagnostic may point into, and renders diagnostics as
//   file:line:col: error: message
//     source line
//     ^
// and internal errors, whatever their location, as
//   internal error in nnc (this is a bug in nnc, not in your model; please report it): where: message
extern const char* const kInternalErrorBanner;  // what an internal error's rendering starts with

class SourceManager {
 public:
  uint32_t add(std::string name, std::string text);
  const std::string& name(uint32_t file) const { return files_.at(file - 1).name; }
  std::string_view text(uint32_t file) const { return files_.at(file - 1).text; }
  std::string_view lineText(SourceLoc loc) const;
  std::string render(const Diagnostic& d) const;

 private:
  struct File {
    std::string name, text;
    std::vector<size_t> lineStarts;
  };
  std::string renderOne(std::string_view kind, SourceLoc loc, std::string_view msg) const;
  std::vector<File> files_;
};

struct Unit {};

// A value or a diagnostic, in the spirit of llvm::Expected.
template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T v) : v_(std::move(v)) {}
  Expected(Diagnostic d) : v_(std::move(d)) {}
  explicit operator bool() const { return v_.index() == 0; }
  bool ok() const { return v_.index() == 0; }
  T& operator*() { return std::get<0>(v_); }
  const T& operator*() const { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  Diagnostic& error() { return std::get<1>(v_); }
  const Diagnostic& error() const { return std::get<1>(v_); }
  T take() { return std::move(std::get<0>(v_)); }

 private:
  std::variant<T, Diagnostic> v_;
};

using Status = Expected<Unit>;
inline Status ok() { return Unit{}; }

}  // namespace nnc

#define NNC_CAT2(a, b) a##b
#define NNC_CAT(a, b) NNC_CAT2(a, b)
// NNC_TRY(auto x, f()): binds x to f()'s value or returns its diagnostic.
#define NNC_TRY(decl, expr)                                             \
  auto NNC_CAT(nnc_try_, __LINE__) = (expr);                            \
  if (!NNC_CAT(nnc_try_, __LINE__)) return std::move(NNC_CAT(nnc_try_, __LINE__).error()); \
  decl = std::move(*NNC_CAT(nnc_try_, __LINE__))
// NNC_INTERNAL_ASSERT(cond, where, fmt, args...): returns internalError(where,
// fmt, args...) unless cond holds. For states no input can cause, only a bug.
#define NNC_INTERNAL_ASSERT(cond, ...)                                  \
  do {                                                                  \
    if (!(cond)) return ::nnc::internalError(__VA_ARGS__);              \
  } while (0)
// NNC_CHECK(f()): returns f()'s diagnostic if it failed.
#define NNC_CHECK(expr)                                                 \
  do {                                                                  \
    auto nnc_chk_ = (expr);                                             \
    if (!nnc_chk_) return std::move(nnc_chk_.error());                  \
  } while (0)
