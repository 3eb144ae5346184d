// Lowering: graph nodes to loop-IR kernels. Each op's registry entry gives its
// rule: `pointwise` (a scalar formula; broadcasting and the loops are
// generic) or `lower` (statements written against the node's buffers).
// lowerGraph turns a graph into a Program: one kernel per node (or per group
// of fused nodes), in graph order, over slots of one arena.
#pragma once
#include <algorithm>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "compiler/graph/graph.h"
#include "compiler/lower/loop_ir.h"

namespace nnc {

// What an op's `lower` rule gets. The result buffer is not zeroed: a rule
// writes every element (or zeroes first). i32 values (labels, argmax) are
// held as floats in buffers; they are exact below 2^24.
struct LowerArgs {
  const Node& node;
  const std::vector<TensorType>& inTypes;
  loop::Kernel& k;
  std::vector<int> in;  // the kernel buffer of each operand
  int out;              // the kernel buffer of the result
  bool training;

  const Attrs& attrs() const { return node.attrs; }
  const TensorType& outType() const { return node.type; }
  // A scratch buffer private to this kernel, uninitialized.
  int temp(int64_t elements, const std::string& name);
};

// ---- helpers for rules ----

// `rank` fresh loop variables.
std::vector<int> newVars(loop::Kernel& k, size_t rank);
// Row-major offset of the element at `vars` in `shape`.
loop::Affine rowMajor(const Shape& shape, const std::vector<int>& vars);
// Offset in an operand of shape `in` broadcast (NumPy rules) to the element at
// `vars` of `out`.
loop::Affine broadcastIndex(const Shape& in, const Shape& out, const std::vector<int>& vars);
// Loops over `shape` with `vars` (outermost first) around `body`; the
// outermost loop is marked parallel when `parallel`. A rank-0 shape gives the
// body alone.
std::vector<loop::Stmt> nest(const std::vector<int>& vars, const Shape& shape, std::vector<loop::Stmt> body,
                             bool parallel = true);
// buf[0..n) = v.
loop::Stmt fill(loop::Kernel& k, int buf, int64_t n, float v);
// dst[0..n) = src[0..n).
loop::Stmt copy(loop::Kernel& k, int dst, int src, int64_t n);
// The generic rule for ops with a `pointwise` formula.
Status lowerPointwise(LowerArgs& a);

// One node of `g` as a kernel whose buffers are its operands, its result,
// then its temporaries. Fails for ops without a lowering rule.
Expected<loop::Kernel> lowerNode(const Graph& g, ValueId id, bool training);

// ---- whole graphs ----

// The floats an arena slot (or a block of emit-cpp's) of `floats` occupies:
// rounded up to 16 floats, 64 bytes (a cache line, an AVX-512 vector), so
// every slot starts 64-byte aligned; an empty one still takes 16.
inline int64_t alignedFloats(int64_t floats) { return (std::max<int64_t>(floats, 1) + 15) / 16 * 16; }

struct Slot {
  std::string name;      // the value's name, or "%id"
  ValueId value = kNoValue;  // kNoValue for a kernel's temporary
  int64_t size = 0;      // floats
  int64_t offset = 0;    // floats from the arena's start, 16-float aligned
};

struct Launch {
  int kernel;              // index into Program::kernels
  std::vector<int> slots;  // the slot of each kernel buffer
};

struct Program {
  std::vector<loop::Kernel> kernels;
  std::vector<Launch> launches;       // in execution order
  std::vector<Slot> slots;
  std::vector<int> valueSlot;         // per graph value; -1 if not computed
  std::vector<std::pair<int, int>> commits;  // after the step: copy slot .second into slot .first
  // Slots laid out back to back, each rounded to alignedFloats, as one
  // block: a data-parallel step's gradient buckets (allreduce_start sums a
  // block with one call, so no gradient is copied into a buffer of its own).
  std::vector<std::vector<int>> groups;
  int64_t arenaFloats = 0;
};

struct LowerOptions {
  bool training = false;
  // Slots with disjoint lifetimes share memory (compiler/lower/memory_plan.cpp);
  // off, every value keeps its own slot (for debugging a kernel's output).
  bool planMemory = true;
  // Chains of pointwise ops run as one loop: a pointwise value used once, by
  // a pointwise op of its shape, is computed where it is used.
  bool fuseElementwise = true;
  // With fuseElementwise: a pointwise kernel whose values feed another
  // pointwise kernel of the same shape is computed in that kernel's loop,
  // which stores both (multi-output fusion: Adam's m', v' and W' in one
  // loop). The legality rule is at multiOutputGroups in
  // compiler/lower/fusion_groups.cpp, with the other two fusions.
  bool fuseMultiOutput = true;
  // softmax_cross_entropy and its gradient on the same operands run as one
  // kernel (one exp sweep per row instead of three).
  bool fuseSoftmaxCe = true;
  // With planMemory: a view (reshape, flatten) of a computed value shares its
  // operand's slot instead of copying it. Views of sources, and views the
  // caller reads (targets, commits), keep a slot and a copy of their own.
  bool aliasViews = true;
  // With planMemory: a commit's next value is written over its param by the
  // kernel computing it, where that kernel is the param's last reader and
  // reads each element before writing it (compiler/lower/update_in_place.cpp).
  bool updateInPlace = true;
  // (param, next value): after the step the next value is copied into the
  // param's slot, so that a train step is one call.
  std::vector<std::pair<ValueId, ValueId>> commits;
  // Where -v's lines go: what each fusion grouped (fusionLog); none if null.
  std::ostream* log = nullptr;
};

// What a program's caller reads: its targets and each commit pair.
std::vector<ValueId> rootsOf(const std::vector<ValueId>& targets, const LowerOptions& lo);

// The kernels computing `targets` (and what they depend on). Sources (inputs,
// labels, params, consts) get slots but no kernel: the caller fills them.
// With planMemory, only sources, targets and commit pairs keep their values
// after a run; other values' slots are reused.
Expected<Program> lowerGraph(const Graph& g, const std::vector<ValueId>& targets, const LowerOptions& opt);

// Whether kernel k may write its buffer n over its buffer p: every access
// of either uses one index that visits each element once, p is never
// written, and no read of p follows the first write of n.
bool canUpdateInPlace(const loop::Kernel& k, int p, int n);
// Commits whose next value can be computed in place (canUpdateInPlace, in
// the param's last reading launch) become that: the kernel's two buffers
// one, the next value's slot the param's, the commit gone.
void updateInPlace(Program& p);

// Reassigns slot offsets so that slots live at disjoint times share space;
// `pinned` slots keep theirs for the whole program. Values not pinned are
// only valid while the program runs.
// Program::groups are placed as blocks, living from their first slot's
// first launch to their last slot's last.
void planMemory(Program& p, const std::vector<bool>& pinned);
// Without planning: every slot its own place, in slot order, each group's
// members where its first member is.
void placeInOrder(Program& p);

// The loop IR of every kernel, in order, with the slot map.
std::string printProgram(const Program& p);

}  // namespace nnc
