// Loop-IR lowerings of the NN ops. Convolutions go through im2col and the
// runtime GEMM (nnc_sgemm); everything that maps windows back onto an image
// (col2im, conv_transpose2d, the pooling gradients) is written as a gather
// over the windows covering each image element, so every output element is
// written by one iteration and the batch loop can run in parallel.
#include <algorithm>
#include <functional>
#include <limits>

#include "compiler/ops/lower_rules.h"

namespace nnc {

namespace {

using namespace lx;
using loop::Combine;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void emit(LowerArgs& a, Stmt s) { a.k.body.push_back(std::move(s)); }

// Wraps `body` in the guards keeping (row, col) inside the image; a side
// without padding needs none, windows never leave the image there.
std::vector<Stmt> insideImage(const PatchGeom& g, const Affine& row, const Affine& col, std::vector<Stmt> body) {
  if (g.pw > 0) body = {loop::guard(col, 0, g.w, std::move(body))};
  if (g.ph > 0) body = {loop::guard(row, 0, g.h, std::move(body))};
  return body;
}

// The loop variables of a window element: image n, channel c, window
// (oy, ox), position (i, j) in the window.
struct WindowVars {
  int n, c, oy, ox, i, j;
  explicit WindowVars(loop::Kernel& k)
      : n(k.newVar()), c(k.newVar()), oy(k.newVar()), ox(k.newVar()), i(k.newVar()), j(k.newVar()) {}
  std::vector<std::pair<int, int64_t>> windows(const PatchGeom& g) const {
    return {{n, g.n}, {c, g.c}, {oy, g.oh()}, {ox, g.ow()}};
  }
  std::vector<std::pair<int, int64_t>> kernel(const PatchGeom& g) const { return {{i, g.kh}, {j, g.kw}}; }
  Affine row(const PatchGeom& g) const { return v(oy, g.sh) + v(i) + (-g.ph); }
  Affine col(const PatchGeom& g) const { return v(ox, g.sw) + v(j) + (-g.pw); }
  // x[n, c, row, col] of an [n, c, h, w] image.
  Affine pixel(const PatchGeom& g) const { return v(n, g.c * g.h * g.w) + v(c, g.h * g.w) + row(g) * g.w + col(g); }
  // The window's element of an [n, c, oh, ow] tensor.
  Affine window(const PatchGeom& g) const {
    return v(n, g.c * g.oh() * g.ow()) + v(c, g.oh() * g.ow()) + v(oy, g.ow()) + v(ox);
  }
  Affine position(const PatchGeom& g) const { return v(i, g.kw) + v(j); }
};

// col[(n·OH + oy)·OW + ox, (c·KH + i)·KW + j] = x[n, c, row, col], 0 on
// padding. Rows are disjoint per image: the image loop is parallel.
void im2colInto(LowerArgs& a, int x, int col, const PatchGeom& g) {
  const WindowVars w(a.k);
  const int64_t cols = g.colCols();
  const Affine dst = v(w.n, g.oh() * g.ow() * cols) + v(w.oy, g.ow() * cols) + v(w.ox, cols) +
                     v(w.c, g.kh * g.kw) + v(w.i, g.kw) + v(w.j);
  std::vector<Stmt> body;
  if (g.ph > 0 || g.pw > 0) body.push_back(loop::store(col, dst, num(0)));
  for (Stmt& s : insideImage(g, w.row(g), w.col(g), {loop::store(col, dst, ld(x, w.pixel(g)))}))
    body.push_back(std::move(s));
  emit(a, loops({{w.n, g.n}, {w.oy, g.oh()}, {w.ox, g.ow()}, {w.c, g.c}, {w.i, g.kh}, {w.j, g.kw}}, std::move(body),
                true));
}

// Everything a gather term may depend on: the image element's n and c, and
// the covering window (oy, ox) with the element's position (i, j) in it.
struct Hit {
  int n, c;
  Affine oy, ox, i, j;
};

// For every element (n, c, r, s) of the image of `g` (the result buffer
// `out`): out = init(n, c) + Σ term(hit) over the windows covering it, in
// kernel row then column order. Without integer division, r is split as
// sh·q + ρ with ρ fixed per loop nest; the kernel rows hitting r are then
// i = i0 + sh·t for t < T, with window row oy = q − t + dh (all affine).
// Each nest writes its own residue class of elements, each element once.
// Where every one of the T rows (and columns) is a window, the interior,
// the sum is one expression over the unrolled taps, a loop with no guard
// that vectorizes; only the border rows and columns take guarded tap
// loops. The image loop n is parallel, each plane is finished while hot.
void gatherWindows(LowerArgs& a, int out, const PatchGeom& g, const std::function<ExprP(int n, int c)>& init,
                   const std::function<ExprP(const Hit&)>& term) {
  struct Residue {
    int64_t rho, q, i0, t, d;  // r = stride·q + rho; kernel rows i0 + stride·t; window row q − t + d
  };
  auto residues = [](int64_t size, int64_t k, int64_t stride, int64_t pad) {
    std::vector<Residue> r;
    for (int64_t rho = 0; rho < std::min(stride, size); ++rho) {
      const int64_t i0 = (rho + pad) % stride;
      r.push_back({rho, (size - rho + stride - 1) / stride, i0, k > i0 ? (k - i0 + stride - 1) / stride : 0,
                   (rho + pad - i0) / stride});
    }
    return r;
  };
  // The q range split into pieces, each interior (every t hits a window:
  // 0 ≤ q − t + d < windows for all t < T) or not.
  struct Piece {
    int64_t lo, hi;
    bool interior;
  };
  auto pieces = [](const Residue& r, int64_t windows) {
    const int64_t lo = std::clamp<int64_t>(r.t - 1 - r.d, 0, r.q), hi = std::clamp<int64_t>(windows - r.d, lo, r.q);
    std::vector<Piece> p;
    for (const Piece& c : {Piece{0, lo, false}, Piece{lo, hi, true}, Piece{hi, r.q, false}})
      if (c.hi > c.lo) p.push_back(c);
    return p;
  };
  const int n = a.k.newVar(), c = a.k.newVar();
  std::vector<Stmt> planes;
  for (const Residue& rh : residues(g.h, g.kh, g.sh, g.ph))
    for (const Residue& rw : residues(g.w, g.kw, g.sw, g.pw))
      for (const Piece& pr : pieces(rh, g.oh()))
        for (const Piece& pc : pieces(rw, g.ow())) {
          const int q = a.k.newVar(), q2 = a.k.newVar();
          const Affine qa = v(q) + pr.lo, q2a = v(q2) + pc.lo;
          const Affine dst = v(n, g.c * g.h * g.w) + v(c, g.h * g.w) + (qa * g.sh + rh.rho) * g.w + q2a * g.sw + rw.rho;
          std::vector<Stmt> body;
          if (pr.interior && pc.interior) {
            ExprP sum = init(n, c);
            for (int64_t t = 0; t < rh.t; ++t)
              for (int64_t u = 0; u < rw.t; ++u)
                sum = add(sum, term(Hit{n, c, qa + (rh.d - t), q2a + (rw.d - u), Affine::constant(t * g.sh + rh.i0),
                                        Affine::constant(u * g.sw + rw.i0)}));
            body.push_back(loop::store(out, dst, sum));
          } else {
            body.push_back(loop::store(out, dst, init(n, c)));
            if (rh.t > 0 && rw.t > 0) {
              const int t = a.k.newVar(), u = a.k.newVar();
              const Hit hit{n, c, qa + v(t, -1) + rh.d, q2a + v(u, -1) + rw.d, v(t, g.sh) + rh.i0, v(u, g.sw) + rw.i0};
              Stmt acc = loop::guard(hit.oy, 0, g.oh(),
                                     {loop::guard(hit.ox, 0, g.ow(), {loop::store(out, dst, term(hit), Combine::Add)})});
              body.push_back(loops({{t, rh.t}, {u, rw.t}}, {std::move(acc)}));
            }
          }
          planes.push_back(loops({{q, pr.hi - pr.lo}, {q2, pc.hi - pc.lo}}, std::move(body)));
        }
  emit(a, loops({{n, g.n}, {c, g.c}}, std::move(planes), true));
}

// The flat index of a hit's window in an [N, C, OH, OW] tensor.
Affine windowOf(const PatchGeom& g, const Hit& h) {
  return v(h.n, g.c * g.oh() * g.ow()) + v(h.c, g.oh() * g.ow()) + h.oy * g.ow() + h.ox;
}

// Leading dimensions must be at least 1 even for empty matrices.
int64_t ld1(int64_t x) { return std::max<int64_t>(x, 1); }

Stmt sgemm(loop::CallArg A, loop::CallArg B, loop::CallArg C, int64_t m, int64_t n, int64_t k, int64_t lda,
           int64_t ldb, int64_t ldc, bool ta, bool tb) {
  return loop::call("nnc_sgemm", {std::move(A), std::move(B), std::move(C)},
                    {m, n, k, ld1(lda), ld1(ldb), ld1(ldc), int64_t{ta}, int64_t{tb}, 0});
}

loop::CallArg at(int buf, int64_t offset) { return {buf, Affine::constant(offset)}; }

// dst[(n·S + s)·C + c] = src[(n·C + c)·S + s]: NCHW to rows of channels.
void toRows(LowerArgs& a, int src, int dst, int64_t n, int64_t c, int64_t s) {
  const int in = a.k.newVar(), ic = a.k.newVar(), is = a.k.newVar();
  emit(a, loops({{in, n}, {ic, c}, {is, s}},
                {loop::store(dst, v(in, s * c) + v(is, c) + v(ic), ld(src, v(in, c * s) + v(ic, s) + v(is)))}, true));
}

}  // namespace

Status lowerIm2col(LowerArgs& a, const PatchGeom& g) {
  im2colInto(a, a.in[0], a.out, g);
  return ok();
}

Status lowerCol2im(LowerArgs& a, const PatchGeom& g) {
  const int col = a.in[0];
  const int64_t cols = g.colCols();
  gatherWindows(
      a, a.out, g, [](int, int) { return num(0); },
      [&](const Hit& h) {
        return ld(col, (v(h.n, g.oh()) + h.oy) * (g.ow() * cols) + h.ox * cols + v(h.c, g.kh * g.kw) + h.i * g.kw + h.j);
      });
  return ok();
}

// col = im2col(x) [P = N·OH·OW, C·KH·KW]; per group one GEMM
// prod[:, group's filters] = col[:, group's columns] · W_groupᵀ into
// prod [P, F]; then prod is permuted to NCHW with the bias added.
Status lowerConv2d(LowerArgs& a, const PatchGeom& g, int64_t groups) {
  const int64_t f = a.outType().shape[1], rows = g.colRows(), cols = g.colCols(), s = g.oh() * g.ow();
  const int64_t kg = cols / groups, fg = f / groups;
  const int col = a.temp(rows * cols, "col"), prod = a.temp(rows * f, "prod");
  im2colInto(a, a.in[0], col, g);
  for (int64_t gi = 0; gi < groups; ++gi)
    emit(a, sgemm(at(col, gi * kg), at(a.in[1], gi * fg * kg), at(prod, gi * fg), rows, fg, kg, cols, kg, f, false,
                  true));
  const int n = a.k.newVar(), fi = a.k.newVar(), si = a.k.newVar();
  ExprP value = ld(prod, v(n, s * f) + v(si, f) + v(fi));
  if (a.in.size() > 2) value = add(value, ld(a.in[2], v(fi)));
  emit(a, loops({{n, g.n}, {fi, f}, {si, s}}, {loop::store(a.out, v(n, f * s) + v(fi, s) + v(si), value)}, true));
  return ok();
}

// The adjoint of conv2d's input map: x (conv2d's output gradient) as rows
// xr [N·H·W, C]; per group col[:, group's columns] = xr[:, group's channels]
// · W_group (W is [C, F/groups·KH·KW] as a matrix); then col2im as a gather
// into the result, starting from the bias.
Status lowerConvTranspose2d(LowerArgs& a, const PatchGeom& g, int64_t groups) {
  const Shape& x = a.inTypes[0].shape;
  const int64_t c = x[1], hw = x[2] * x[3], rows = x[0] * hw, cols = g.colCols();
  const int64_t cg = c / groups, ng = cols / groups;
  const int xr = a.temp(rows * c, "x_rows"), col = a.temp(rows * cols, "col");
  toRows(a, a.in[0], xr, x[0], c, hw);
  for (int64_t gi = 0; gi < groups; ++gi)
    emit(a, sgemm(at(xr, gi * cg), at(a.in[1], gi * cg * ng), at(col, gi * ng), rows, ng, cg, c, ng, cols, false,
                  false));
  const int bias = a.in.size() > 2 ? a.in[2] : -1;
  gatherWindows(
      a, a.out, g, [&](int, int ch) { return bias >= 0 ? ld(bias, v(ch)) : num(0); },
      [&](const Hit& h) {
        return ld(col, (v(h.n, g.oh()) + h.oy) * (g.ow() * cols) + h.ox * cols + v(h.c, g.kh * g.kw) + h.i * g.kw + h.j);
      });
  return ok();
}

// dW [F, C/groups·KH·KW] per group = dy_rowsᵀ · col: col = im2col(x)
// [P, C·KH·KW], dy as rows [P, F]; one GEMM (transposed A) per group.
Status lowerConv2dGradWeight(LowerArgs& a, const PatchGeom& g, int64_t groups) {
  const int64_t f = a.inTypes[1].shape[1], rows = g.colRows(), cols = g.colCols(), s = g.oh() * g.ow();
  const int64_t kg = cols / groups, fg = f / groups;
  const int col = a.temp(rows * cols, "col"), dyr = a.temp(rows * f, "dy_rows");
  im2colInto(a, a.in[0], col, g);
  toRows(a, a.in[1], dyr, g.n, f, s);
  for (int64_t gi = 0; gi < groups; ++gi)
    emit(a, sgemm(at(dyr, gi * fg), at(col, gi * kg), at(a.out, gi * fg * kg), fg, kg, rows, f, cols, kg, true, false));
  return ok();
}

namespace {

int64_t floorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceilDiv(int64_t a, int64_t b) { return -floorDiv(-a, b); }

// One element of a pooling window as sweepWindows visits it.
struct Tap {
  Affine window;    // the window's flat index in [N, C, OH, OW]
  Affine pixel;     // the element's flat index in the [N, C, H, W] image
  ExprP position;   // i·KW + j, its place in the window, as a float
};

// Visits every window element inside the image: loops n (parallel), c, oy;
// `rowInit` over the row of windows; then each window row i and column j
// (unrolled), with the windows ox innermost, over just the range whose
// column j is inside the image: contiguous windows, pixels at stride sw, no
// guard in the inner loop. Each window still sees its elements in row-major
// window order, as the reference's scans do. Then `rowDone` over the row.
void sweepWindows(LowerArgs& a, const PatchGeom& g, const std::function<std::vector<Stmt>(const Affine&)>& rowInit,
                  const std::function<std::vector<Stmt>(const Tap&)>& update,
                  const std::function<std::vector<Stmt>(const Affine&)>& rowDone = nullptr) {
  const int n = a.k.newVar(), c = a.k.newVar(), oy = a.k.newVar();
  const Affine windowRow = v(n, g.c * g.oh() * g.ow()) + v(c, g.oh() * g.ow()) + v(oy, g.ow());
  auto overRow = [&](const std::function<std::vector<Stmt>(const Affine&)>& f) {
    const int ox = a.k.newVar();
    return loops({{ox, g.ow()}}, f(windowRow + v(ox)));
  };
  std::vector<Stmt> body;
  if (rowInit) body.push_back(overRow(rowInit));
  auto sweep = [&](const std::function<std::vector<Stmt>(const Tap&)>& f) {
    const int i = a.k.newVar();
    const Affine row = v(oy, g.sh) + v(i) + (-g.ph);
    std::vector<Stmt> taps;
    auto range = [&](int64_t j) {
      return std::pair{std::max<int64_t>(0, ceilDiv(g.pw - j, g.sw)),
                       std::min(g.ow() - 1, floorDiv(g.w - 1 + g.pw - j, g.sw))};
    };
    // When every column of the window spans the same windows (no padding
    // clipped), one loop over the windows visits all of them: its loads are
    // then an interleaved group, contiguous in memory, which vectorizes.
    bool shared = true;
    for (int64_t j = 1; j < g.kw; ++j) shared &= range(j) == range(0);
    int ox = a.k.newVar();
    std::vector<Stmt> group;
    for (int64_t j = 0; j < g.kw; ++j) {
      const auto [lo, hi] = range(j);
      if (hi < lo) continue;
      if (!shared) ox = a.k.newVar();
      const Affine col = (v(ox) + lo) * g.sw + (j - g.pw);
      const Tap tap{windowRow + v(ox) + lo, v(n, g.c * g.h * g.w) + v(c, g.h * g.w) + row * g.w + col,
                    valueOf(v(i, g.kw) + j)};
      for (Stmt& st : f(tap)) group.push_back(std::move(st));
      if (!shared) taps.push_back(loops({{ox, hi - lo + 1}}, std::move(group)));
      if (!shared) group.clear();
    }
    if (shared && !group.empty()) taps.push_back(loops({{ox, range(0).second - range(0).first + 1}}, std::move(group)));
    if (g.ph > 0) taps = {loop::guard(row, 0, g.h, std::move(taps))};
    body.push_back(loops({{i, g.kh}}, std::move(taps)));
  };
  sweep(update);
  if (rowDone) body.push_back(overRow(rowDone));
  emit(a, loops({{n, g.n}, {c, g.c}, {oy, g.oh()}}, std::move(body), true));
}

// The running maximum of each window in best[window], as the reference
// keeps it: an element replaces it only when strictly greater, or when it is
// the window's first NaN (the first maximum wins ties, a NaN sticks, −inf
// never beats the start). `init`
// and `record` add what else is kept per window; record's statements run
// before best moves, so `beats` compares with the old maximum.
void scanWindowMax(LowerArgs& a, const PatchGeom& g, int best, float floor,
                   const std::function<std::vector<Stmt>(const Affine& window)>& init,
                   const std::function<std::vector<Stmt>(const Tap&, const ExprP& beats)>& record) {
  const int x = a.in[0];
  sweepWindows(
      a, g,
      [&](const Affine& w) {
        std::vector<Stmt> s = init(w);
        s.insert(s.begin(), loop::store(best, w, num(floor)));
        return s;
      },
      [&](const Tap& t) {
        std::vector<Stmt> s = record(t, beats(ld(x, t.pixel), ld(best, t.window)));
        s.push_back(loop::store(best, t.window, ld(x, t.pixel), Combine::Max));
        return s;
      },
      nullptr);
}

// Windows that tile the image from its corner: kernel = stride, no padding
// (rows and columns past the last whole window are in no window). Max
// pooling then runs per channel as passes over a per-image scratch, each a
// loop LLVM vectorizes with whole-vector loads, instead of one loop over a
// row of ow windows (12 in simple_convnet, under the 16 lanes of a vector)
// whose stride-kw taps became gathers:
//   down:   for each window row oy and covered column s (contiguous), the
//           kh taps of that column, into scratch cell oy·wt + s;
//   across: for each of the channel's oh·ow windows, its kw column results,
//           which lie side by side in the scratch at q·kw + j: one long loop
//           (an interleaved group of kw loads).
// The scratch is indexed by image, so the image loop stays parallel. (The
// down pass's row loop is short; the JIT keeps it from being unrolled into
// a loop across rows, see hintRowLoop in compiler/jit/loop_codegen.cpp.)
struct Tiles {
  PatchGeom g;
  int n, c;        // image and channel loops
  int64_t wt;      // the columns windows cover: ow·kw
  int64_t span;    // scratch floats per image: oh·wt

  Tiles(LowerArgs& a, const PatchGeom& geom)
      : g(geom), n(a.k.newVar()), c(a.k.newVar()), wt(geom.ow() * geom.kw), span(geom.oh() * geom.ow() * geom.kw) {}

  static bool fit(const PatchGeom& g) { return g.kh == g.sh && g.kw == g.sw && g.ph == 0 && g.pw == 0; }

  Affine plane() const { return v(n, g.c * g.h * g.w) + v(c, g.h * g.w); }             // x[n, c, 0, 0]
  Affine windows() const { return v(n, g.c * g.oh() * g.ow()) + v(c, g.oh() * g.ow()); }  // y[n, c, 0, 0]
  Affine scratch() const { return v(n, span); }

  // for oy, s < wt: body(cell, pixel) with pixel(i) = x[n, c, oy·kh + i, s].
  Stmt down(loop::Kernel& k, const std::function<std::vector<Stmt>(const Affine& cell,
                                                                   const std::function<Affine(int64_t)>& pixel)>& body) const {
    const int oy = k.newVar(), s = k.newVar();
    const Affine cell = scratch() + v(oy, wt) + v(s);
    const Affine row = plane() + v(oy, g.kh * g.w) + v(s);
    return loops({{oy, g.oh()}, {s, wt}}, body(cell, [&](int64_t i) { return row + i * g.w; }));
  }

  // for q < oh·ow: body(window, at, cell): the window's element of an
  // [n, c, oh, ow] tensor, its element of a per-image [n, oh·ow] scratch,
  // and cell(j) = scratch + q·kw + j.
  Stmt across(loop::Kernel& k, const std::function<std::vector<Stmt>(const Affine& window, const Affine& at,
                                                                     const std::function<Affine(int64_t)>& cell)>& body) const {
    const int q = k.newVar();
    const Affine first = scratch() + v(q, g.kw);
    return loops({{q, g.oh() * g.ow()}},
                 body(windows() + v(q), v(n, g.oh() * g.ow()) + v(q), [&](int64_t j) { return first + j; }));
  }

  // Zeroes the pixels of x's shape no window covers (an image-sized result).
  void zeroUncovered(loop::Kernel& k, int buf, std::vector<Stmt>& body) const {
    const int64_t ht = g.oh() * g.kh;
    if (wt < g.w) {
      const int r = k.newVar(), s = k.newVar();
      body.push_back(loops({{r, ht}, {s, g.w - wt}}, {loop::store(buf, plane() + v(r, g.w) + v(s) + wt, num(0))}));
    }
    if (ht < g.h) {
      const int t = k.newVar();
      body.push_back(loops({{t, (g.h - ht) * g.w}}, {loop::store(buf, plane() + v(t) + ht * g.w, num(0))}));
    }
  }

  Stmt nest(std::vector<Stmt> body) const { return loops({{n, g.n}, {c, g.c}}, std::move(body), true); }
};

// The window maximum from `floor`: Op::Max propagates NaN, as the
// reference's scan takes the first NaN.
void tiledMax(LowerArgs& a, const PatchGeom& geom, float floor) {
  const Tiles t(a, geom);
  const PatchGeom& g = t.g;
  const int x = a.in[0], out = a.out, col = a.temp(g.n * t.span, "colmax");
  std::vector<Stmt> body;
  body.push_back(t.down(a.k, [&](const Affine& cell, const std::function<Affine(int64_t)>& pixel) {
    ExprP m = num(floor);
    for (int64_t i = 0; i < g.kh; ++i) m = bin(Op::Max, m, ld(x, pixel(i)));
    return std::vector<Stmt>{loop::store(col, cell, m)};
  }));
  body.push_back(t.across(a.k, [&](const Affine& window, const Affine&, const std::function<Affine(int64_t)>& cell) {
    ExprP m = ld(col, cell(0));
    for (int64_t j = 1; j < g.kw; ++j) m = bin(Op::Max, m, ld(col, cell(j)));
    return std::vector<Stmt>{loop::store(out, window, m)};
  }));
  emit(a, t.nest(std::move(body)));
}

// The gradient in three passes per channel, every dx element written once:
//   down:   per column of a window row, its maximum from `floor` (cm) and
//           i·kw for the first row i reaching it (ci; kh·kw when nothing
//           beats the floor);
//   across: per window, the first arg-max in row-major order: the largest
//           column maximum, ties to the smallest position ci + j (≥ kh·kw
//           when there is none); then per column j the position less j
//           (sel) and the window's dy (dyx), side by side as the columns;
//   down:   dx[oy·kh + i, s] = dyx if sel = i·kw, else 0.
// This is the reference's scan (an element wins only when strictly greater
// than the running maximum) regrouped: its winner is the first element equal
// to the window maximum, when that maximum beats the floor. A select, not a
// product, routes dy: a NaN or inf dy must not leak in as 0·inf.
void tiledMaxGrad(LowerArgs& a, const PatchGeom& geom, float floor) {
  const Tiles t(a, geom);
  const PatchGeom& g = t.g;
  const int x = a.in[0], dy = a.in[1], dx = a.out;
  const int64_t scratch = g.n * t.span, windows = g.n * g.oh() * g.ow();
  const int cm = a.temp(scratch, "colmax"), ci = a.temp(scratch, "colarg"), sel = a.temp(scratch, "sel"),
            dyx = a.temp(scratch, "dyx"), best = a.temp(windows, "best"), arg = a.temp(windows, "arg");
  const auto kw = static_cast<double>(g.kw);
  std::vector<Stmt> body;
  body.push_back(t.down(a.k, [&](const Affine& cell, const std::function<Affine(int64_t)>& pixel) {
    std::vector<Stmt> s{loop::store(cm, cell, num(floor)), loop::store(ci, cell, num(static_cast<double>(g.kh) * kw))};
    for (int64_t i = 0; i < g.kh; ++i) {
      const ExprP xi = ld(x, pixel(i));
      s.push_back(
          loop::store(ci, cell, select(beats(xi, ld(cm, cell)), num(static_cast<double>(i) * kw), ld(ci, cell))));
      s.push_back(loop::store(cm, cell, bin(Op::Max, ld(cm, cell), xi)));
    }
    return s;
  }));
  body.push_back(t.across(a.k, [&](const Affine& window, const Affine& at, const std::function<Affine(int64_t)>& cell) {
    std::vector<Stmt> s{loop::store(best, at, ld(cm, cell(0))), loop::store(arg, at, ld(ci, cell(0)))};
    for (int64_t j = 1; j < g.kw; ++j) {
      const ExprP cand = ld(cm, cell(j)), pos = add(ld(ci, cell(j)), num(static_cast<double>(j)));
      // Two NaN column maxima tie too: the first NaN in row-major order wins.
      const ExprP b = ld(best, at), same = add(eq(cand, b), mul(isNaN(cand), isNaN(b)));
      const ExprP old = ld(arg, at), tie = select(same, select(gt(old, pos), pos, old), old);
      s.push_back(loop::store(arg, at, select(beats(cand, b), pos, tie)));
      s.push_back(loop::store(best, at, cand, Combine::Max));
    }
    // From 0 (relu), a window whose maximum is NaN routes nothing: its
    // winner, the first NaN, has step(x) = 0.
    const ExprP routed = floor == 0.0f ? select(eq(ld(best, at), ld(best, at)), ld(dy, window), num(0)) : ld(dy, window);
    for (int64_t j = 0; j < g.kw; ++j) {
      s.push_back(loop::store(sel, cell(j), j == 0 ? ld(arg, at) : sub(ld(arg, at), num(static_cast<double>(j)))));
      s.push_back(loop::store(dyx, cell(j), routed));
    }
    return s;
  }));
  body.push_back(t.down(a.k, [&](const Affine& cell, const std::function<Affine(int64_t)>& pixel) {
    std::vector<Stmt> s;
    for (int64_t i = 0; i < g.kh; ++i)
      s.push_back(loop::store(dx, pixel(i),
                              select(eq(ld(sel, cell), num(static_cast<double>(i) * kw)), ld(dyx, cell), num(0))));
    return s;
  }));
  t.zeroUncovered(a.k, dx, body);
  emit(a, t.nest(std::move(body)));
}

// Each window's share dy/(kh·kw), laid across its kw columns of the scratch,
// then down each column into the kh rows: every dx element written once,
// the uncovered ones with 0.
void tiledAvgGrad(LowerArgs& a, const PatchGeom& geom) {
  const Tiles t(a, geom);
  const PatchGeom& g = t.g;
  const int dy = a.in[0], dx = a.out, share = a.temp(g.n * t.span, "share");
  const double part = 1.0 / static_cast<double>(g.kh * g.kw);
  std::vector<Stmt> body;
  body.push_back(t.across(a.k, [&](const Affine& window, const Affine&, const std::function<Affine(int64_t)>& cell) {
    std::vector<Stmt> s;
    for (int64_t j = 0; j < g.kw; ++j) s.push_back(loop::store(share, cell(j), mul(ld(dy, window), num(part))));
    return s;
  }));
  body.push_back(t.down(a.k, [&](const Affine& cell, const std::function<Affine(int64_t)>& pixel) {
    std::vector<Stmt> s;
    for (int64_t i = 0; i < g.kh; ++i) s.push_back(loop::store(dx, pixel(i), ld(share, cell)));
    return s;
  }));
  t.zeroUncovered(a.k, dx, body);
  emit(a, t.nest(std::move(body)));
}

}  // namespace

// Padding is −inf: max= propagates NaN, as the reference's scan takes the
// first NaN (PyTorch's max_pool2d propagates it too).
// With `relu`, relu(maxpool(x)) = maxpool(x) from 0 instead of −inf.
// Windows that tile the image (kernel = stride, no padding) take tiledMax.
Status lowerMaxpool2d(LowerArgs& a, const PatchGeom& g, bool relu) {
  const int x = a.in[0], out = a.out;
  const float floor = relu ? 0.0f : kNegInf;
  if (Tiles::fit(g)) {
    tiledMax(a, g, floor);
    return ok();
  }
  sweepWindows(
      a, g, [&](const Affine& w) { return std::vector<Stmt>{loop::store(out, w, num(floor))}; },
      [&](const Tap& t) { return std::vector<Stmt>{loop::store(out, t.window, ld(x, t.pixel), Combine::Max)}; });
  return ok();
}

// Pass 1: each window's first arg-max position (i·KW + j; −1 for none) in a
// temp. Pass 2, a gather (gatherWindows): each dx element is the sum, over
// the windows covering it, of the dy of those whose arg-max it is, so every
// element is written by one iteration, in a fixed order, and nothing is
// zero-filled first; where windows do not overlap that is one window's dy
// or 0. A select, not a product: a NaN or inf dy must not leak in as 0·inf.
// With `relu`, the scan starts from 0: a window whose maximum is not
// positive has no arg-max, which is step(x)·maxpool2d_grad(relu(x), dy).
// Windows that tile the image (kernel = stride, no padding) take
// tiledMaxGrad's passes instead, which vectorize better.
Status lowerMaxpool2dGrad(LowerArgs& a, const PatchGeom& g, bool relu) {
  const float floor = relu ? 0.0f : kNegInf;
  if (Tiles::fit(g)) {
    tiledMaxGrad(a, g, floor);
    return ok();
  }
  const int64_t windows = g.n * g.c * g.oh() * g.ow();
  const int best = a.temp(windows, "best"), arg = a.temp(windows, "arg"), dy = a.in[1], dx = a.out;
  auto init = [&](const Affine& w) { return std::vector<Stmt>{loop::store(arg, w, num(-1))}; };
  auto record = [&](const Tap& t, const ExprP& beats) {
    return std::vector<Stmt>{loop::store(arg, t.window, select(beats, t.position, ld(arg, t.window)))};
  };
  scanWindowMax(a, g, best, floor, init, record);
  gatherWindows(
      a, dx, g, [](int, int) { return num(0); },
      [&](const Hit& h) {
        const Affine w = windowOf(g, h);
        // From 0 (relu), a window whose maximum is NaN routes nothing (step(NaN) = 0).
        const ExprP d = relu ? select(eq(ld(best, w), ld(best, w)), ld(dy, w), num(0)) : ld(dy, w);
        return select(eq(ld(arg, w), valueOf(h.i * g.kw + h.j)), d, num(0));
      });
  return ok();
}

// g read at each window's first arg-max (0 where none): taken along in the
// scan whenever the maximum moves.
Status lowerMaxpool2dGather(LowerArgs& a, const PatchGeom& g) {
  const int best = a.temp(g.n * g.c * g.oh() * g.ow(), "best"), src = a.in[1], out = a.out;
  scanWindowMax(
      a, g, best, kNegInf, [&](const Affine& w) { return std::vector<Stmt>{loop::store(out, w, num(0))}; },
      [&](const Tap& t, const ExprP& beats) {
        return std::vector<Stmt>{loop::store(out, t.window, select(beats, ld(src, t.pixel), ld(out, t.window)))};
      });
  return ok();
}

// The window sum, then divided by the whole window (padding counted).
Status lowerAvgpool2d(LowerArgs& a, const PatchGeom& g) {
  const int x = a.in[0], out = a.out;
  const double size = static_cast<double>(g.kh * g.kw);
  sweepWindows(
      a, g, [&](const Affine& w) { return std::vector<Stmt>{loop::store(out, w, num(0))}; },
      [&](const Tap& t) { return std::vector<Stmt>{loop::store(out, t.window, ld(x, t.pixel), Combine::Add)}; },
      [&](const Affine& w) { return std::vector<Stmt>{loop::store(out, w, div(ld(out, w), num(size)))}; });
  return ok();
}

// Each dx element gathers the shares of the windows covering it
// (gatherWindows): written once, nothing zero-filled first. Windows that
// tile the image take tiledAvgGrad.
Status lowerAvgpool2dGrad(LowerArgs& a, const PatchGeom& g) {
  if (Tiles::fit(g)) {
    tiledAvgGrad(a, g);
    return ok();
  }
  const int dy = a.in[0], dx = a.out;
  const double share = 1.0 / static_cast<double>(g.kh * g.kw);
  gatherWindows(
      a, dx, g, [](int, int) { return num(0); },
      [&](const Hit& h) { return mul(ld(dy, windowOf(g, h)), num(share)); });
  return ok();
}

// Training draws the mask in the runtime (runtime/random_calls.h) from the
// process-wide generator; the scale is passed rounded from the double
// attribute, as the reference computes it.
Status lowerDropoutMask(LowerArgs& a) {
  const int64_t n = a.outType().numel();
  if (!a.training) {
    emit(a, fill(a.k, a.out, n, 1.0f));
    return ok();
  }
  const double rate = a.attrs().f("rate");
  emit(a, loop::call("nnc_dropout_mask", {{a.out, {}}}, {n}, {static_cast<float>(rate), static_cast<float>(1 / (1 - rate))}));
  return ok();
}

// Training draws the samples in the runtime (nnc_normal), from the same
// generator as the dropout masks; inference is the constant mean.
Status lowerNormal(LowerArgs& a) {
  const int64_t n = a.outType().numel();
  const float mean = static_cast<float>(a.attrs().f("mean"));
  if (!a.training) {
    emit(a, fill(a.k, a.out, n, mean));
    return ok();
  }
  emit(a, loop::call("nnc_normal", {{a.out, {}}}, {n}, {mean, static_cast<float>(a.attrs().f("std"))}));
  return ok();
}

// x viewed as [N, C, S]. Per channel (a parallel loop over C) the mean and
// the scale γ/√(var + eps) go to temps: batch statistics in training (two
// passes, the biased variance, as the reference), the running ones in
// inference. Then y = (x − mean)·scale + β, parallel over N.
Status lowerBatchnorm(LowerArgs& a) {
  const Shape& x = a.inTypes[0].shape;
  const int64_t n = x[0], c = x[1], s = x.size() == 4 ? x[2] * x[3] : 1;
  const double count = static_cast<double>(n * s);
  const int xb = a.in[0], gamma = a.in[1], beta = a.in[2];
  const int mean = a.temp(c, "mean"), var = a.temp(c, "var"), scale = a.temp(c, "scale");
  const int ch = a.k.newVar();
  const Affine at = v(ch);
  std::vector<Stmt> stats;
  if (a.training) {
    auto sum = [&](int dst, ExprP (*term)(ExprP x, ExprP mean), int meanBuf) {
      const int in = a.k.newVar(), is = a.k.newVar();
      const ExprP xv = ld(xb, v(in, c * s) + v(ch, s) + v(is));
      stats.push_back(loop::store(dst, at, num(0)));
      stats.push_back(loops({{in, n}, {is, s}}, {loop::store(dst, at, term(xv, ld(meanBuf, at)), Combine::Add)}));
      stats.push_back(loop::store(dst, at, div(ld(dst, at), num(count))));
    };
    sum(mean, [](ExprP xv, ExprP) { return xv; }, mean);
    sum(var, [](ExprP xv, ExprP m) { ExprP d = sub(std::move(xv), std::move(m)); return mul(d, d); }, mean);
  } else {
    stats.push_back(loop::store(mean, at, ld(a.in[3], at)));
    stats.push_back(loop::store(var, at, ld(a.in[4], at)));
  }
  stats.push_back(loop::store(
      scale, at, div(ld(gamma, at), un(Op::Sqrt, add(ld(var, at), num(a.attrs().f("eps")))))));
  emit(a, loops({{ch, c}}, std::move(stats), true));

  const int in = a.k.newVar(), ic = a.k.newVar(), is = a.k.newVar();
  const Affine el = v(in, c * s) + v(ic, s) + v(is);
  const ExprP y = add(mul(sub(ld(xb, el), ld(mean, v(ic))), ld(scale, v(ic))), ld(beta, v(ic)));
  emit(a, loops({{in, n}, {ic, c}, {is, s}}, {loop::store(a.out, el, y)}, true));
  return ok();
}

}  // namespace nnc
