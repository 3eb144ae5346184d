// In-place updates: a param's next value (W', m', v' of the optimizer, the
// running statistics) is written over the param itself when the kernel
// computing it is the param's last reader and reads each element only
// before writing it. The commit copy after the step disappears, and so
// does the next value's slot (for simple_convnet with Adam, 5.2 MB).
#include <algorithm>
#include <functional>

#include "compiler/lower/lower.h"

namespace nnc {

namespace {

bool sameIndex(const loop::Affine& a, const loop::Affine& b) {
  if (a.c != b.c) return false;
  auto sorted = [](std::vector<std::pair<int, int64_t>> t) {
    std::sort(t.begin(), t.end());
    return t;
  };
  return sorted(a.terms) == sorted(b.terms);
}

// What a kernel does with buffers p (the param) and n (its next value), in
// program order.
struct Accesses {
  bool ok = true;                // nothing rules the rewrite out
  bool storedN = false;          // a store to n was seen
  bool wholeCall = false;        // n written by a runtime call that allows n == p
  const loop::Affine* index = nullptr;  // the one index every access uses
  std::vector<std::pair<int, int64_t>> loops;  // the loops around the first store to n
};

void note(Accesses& a, const loop::Affine& index) {
  if (!a.index)
    a.index = &index;
  else if (!sameIndex(*a.index, index))
    a.ok = false;
}

void visitExpr(const loop::Expr& e, int p, int n, Accesses& a) {
  if (e.op == loop::Op::Load && (e.buf == p || e.buf == n)) {
    note(a, e.index);
    if (e.buf == p && a.storedN) a.ok = false;  // would read the new value
  }
  for (const auto& x : e.args) visitExpr(*x, p, n, a);
}

void visit(const std::vector<loop::Stmt>& body, int p, int n, std::vector<std::pair<int, int64_t>>& loops,
           Accesses& a) {
  for (const loop::Stmt& s : body) {
    switch (s.kind) {
      case loop::Stmt::Kind::Loop:
        loops.emplace_back(s.var, s.extent);
        visit(s.body, p, n, loops, a);
        loops.pop_back();
        break;
      case loop::Stmt::Kind::Guard:
        if (!s.body.empty()) a.ok = false;  // a guarded access may skip elements: keep it simple
        break;
      case loop::Stmt::Kind::Call:
        if (s.callee == "nnc_sgemm_update" && loops.empty() && s.pointers.size() == 5 && s.pointers[2].buf == p &&
            s.pointers[4].buf == n && s.pointers[2].offset.terms.empty() && s.pointers[4].offset.terms.empty() &&
            s.pointers[2].offset.c == 0 && s.pointers[4].offset.c == 0) {
          // The GEMM update takes out == W (runtime/gemm.h): a whole-buffer step.
          for (size_t i : {0, 1, 3})
            if (s.pointers[i].buf == p || s.pointers[i].buf == n) a.ok = false;
          a.wholeCall = true;
          a.storedN = true;
          break;
        }
        for (const loop::CallArg& c : s.pointers)
          if (c.buf == p || c.buf == n) a.ok = false;
        break;
      case loop::Stmt::Kind::Store:
        visitExpr(*s.value, p, n, a);
        if (s.buf == p) a.ok = false;
        if (s.buf == n) {
          if (s.combine != loop::Combine::Assign) a.ok = false;
          note(a, s.index);
          if (!a.storedN) a.loops = loops;
          a.storedN = true;
        }
        break;
    }
  }
}

// Whether the index, in the loops around it, visits each of `size`
// elements once (row-major over those loops): then iteration i touches only
// element i of p and n, so no iteration reads an element another wrote.
bool oneToOne(const loop::Affine& index, const std::vector<std::pair<int, int64_t>>& loops, int64_t size) {
  if (index.c != 0 || index.terms.size() != loops.size()) return false;
  int64_t stride = 1;
  for (size_t i = loops.size(); i-- > 0;) {
    const auto [var, extent] = loops[i];
    auto it = std::find_if(index.terms.begin(), index.terms.end(), [&](const auto& t) { return t.first == var; });
    if (it == index.terms.end() || it->second != stride) return false;
    stride *= extent;
  }
  return stride == size;
}

// Buffer `from` becomes `to`, and buffers after `from` move down one.
void renumber(std::vector<loop::Stmt>& body, int from, int to) {
  auto fix = [&](int b) { return b == from ? to : b > from ? b - 1 : b; };
  std::function<loop::ExprP(const loop::ExprP&)> expr = [&](const loop::ExprP& e) -> loop::ExprP {
    if (e->op == loop::Op::Load) return loop::load(fix(e->buf), e->index);
    if (e->args.empty()) return e;
    std::vector<loop::ExprP> args;
    for (const auto& x : e->args) args.push_back(expr(x));
    return loop::apply(e->op, std::move(args));
  };
  for (loop::Stmt& s : body) {
    if (s.kind == loop::Stmt::Kind::Store) {
      s.buf = fix(s.buf);
      s.value = expr(s.value);
    }
    for (loop::CallArg& c : s.pointers) c.buf = fix(c.buf);
    renumber(s.body, from, to);
  }
}

}  // namespace

bool canUpdateInPlace(const loop::Kernel& k, int p, int n) {
  if (p == n || k.buffers[static_cast<size_t>(p)].size != k.buffers[static_cast<size_t>(n)].size) return false;
  Accesses a;
  std::vector<std::pair<int, int64_t>> loops;
  visit(k.body, p, n, loops, a);
  if (a.wholeCall) return a.ok && !a.index && k.body.size() == 1;
  return a.ok && a.storedN && oneToOne(*a.index, a.loops, k.buffers[static_cast<size_t>(n)].size);
}

void updateInPlace(Program& prog) {
  std::vector<std::pair<int, int>> kept;
  for (const auto& [dst, src] : prog.commits) {
    // The launch that writes src, and the last launch that uses dst.
    int writer = -1, lastUse = -1;
    for (size_t l = 0; l < prog.launches.size(); ++l)
      for (int s : prog.launches[l].slots) {
        if (s == src && writer < 0) writer = static_cast<int>(l);
        if (s == dst) lastUse = static_cast<int>(l);
      }
    bool done = false;
    if (writer >= 0 && lastUse == writer) {
      Launch& launch = prog.launches[static_cast<size_t>(writer)];
      loop::Kernel& k = prog.kernels[static_cast<size_t>(launch.kernel)];
      const auto pos = [&](int slot) {
        return static_cast<int>(std::find(launch.slots.begin(), launch.slots.end(), slot) - launch.slots.begin());
      };
      const int p = pos(dst), n = pos(src);
      const bool once = std::count(launch.slots.begin(), launch.slots.end(), dst) == 1 &&
                        std::count(launch.slots.begin(), launch.slots.end(), src) == 1;
      if (once && canUpdateInPlace(k, p, n)) {
        renumber(k.body, n, p);
        k.buffers.erase(k.buffers.begin() + n);
        launch.slots.erase(launch.slots.begin() + n);
        for (int& s : prog.valueSlot)
          if (s == src) s = dst;
        for (Launch& l : prog.launches)
          for (int& s : l.slots)
            if (s == src) s = dst;
        prog.slots[static_cast<size_t>(src)].size = 0;  // unused now
        done = true;
      }
    }
    if (!done) kept.emplace_back(dst, src);
  }
  prog.commits = std::move(kept);
}

}  // namespace nnc
