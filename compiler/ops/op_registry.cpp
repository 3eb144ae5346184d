#include "compiler/ops/op_registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>

namespace nnc {

namespace {

// Gives each op its handle (op_id.h). A handle naming no op would make every
// test of it false without a word: that is a bug in nnc, stopped here before
// any model is compiled.
void nameHandles(std::vector<OpDef>& r) {
  for (size_t i = 1; i < kOpIdCount; ++i) {
    auto it = std::find_if(r.begin(), r.end(), [&](const OpDef& d) { return d.name == kOpIdNames[i]; });
    if (it == r.end()) {
      std::fprintf(stderr, "nnc: internal error: op handle '%.*s' (compiler/ops/op_id.h) names no op\n",
                   static_cast<int>(kOpIdNames[i].size()), kOpIdNames[i].data());
      std::abort();
    }
    it->id = static_cast<OpId>(i);
  }
}

const std::vector<OpDef>& registry() {
  static const std::vector<OpDef> ops = [] {
    std::vector<OpDef> r;
    addSourceOps(r);
    addElementwiseOps(r);
    addReductionOps(r);
    addShapeOps(r);
    addMatmulOps(r);
    addNNOps(r);
    addSequenceOps(r);
    addLossOps(r);
    addFusedOps(r);
    addBatchnormOps(r);
    addPadOps(r);
    addGroupNormOps(r);
    addCollectiveOps(r);
    nameHandles(r);
    return r;
  }();
  return ops;
}

// The op of each handle (index: OpId); [0], OpId::Other, is null.
const std::vector<const OpDef*>& byId() {
  static const std::vector<const OpDef*> defs = [] {
    std::vector<const OpDef*> d(kOpIdCount, nullptr);
    for (const OpDef& op : registry())
      if (op.id != OpId::Other) d[static_cast<size_t>(op.id)] = &op;
    return d;
  }();
  return defs;
}
}  // namespace

const std::vector<const OpDef*>& allOps() {
  static const std::vector<const OpDef*> ptrs = [] {
    std::vector<const OpDef*> p;
    for (const OpDef& d : registry()) p.push_back(&d);
    return p;
  }();
  return ptrs;
}

const OpDef& findOp(OpId id) { return *byId()[static_cast<size_t>(id)]; }

const OpDef* findOp(std::string_view name) {
  for (const OpDef* d : allOps())
    if (d->name == name) return d;
  return nullptr;
}

namespace {
const char* kindName(AttrKind k) {
  switch (k) {
    case AttrKind::Int: return "an integer";
    case AttrKind::Float: return "a number";
    case AttrKind::Ints: return "an integer or a list of integers";
    case AttrKind::Floats: return "a list of numbers";
    case AttrKind::String: return "a string";
  }
  return "?";
}

// Converts a value to the attribute's kind where that loses nothing.
std::optional<Attr> coerce(const Attr& a, AttrKind k) {
  switch (k) {
    case AttrKind::Int:
      if (std::holds_alternative<int64_t>(a)) return a;
      return std::nullopt;
    case AttrKind::Float:
      if (auto* i = std::get_if<int64_t>(&a)) return static_cast<double>(*i);
      if (std::holds_alternative<double>(a)) return a;
      return std::nullopt;
    case AttrKind::Ints:
      if (auto* i = std::get_if<int64_t>(&a)) return std::vector<int64_t>{*i};
      if (std::holds_alternative<std::vector<int64_t>>(a)) return a;
      if (auto* v = std::get_if<std::vector<double>>(&a); v && v->empty()) return std::vector<int64_t>{};
      return std::nullopt;
    case AttrKind::Floats:
      if (auto* v = std::get_if<std::vector<int64_t>>(&a)) return std::vector<double>(v->begin(), v->end());
      if (auto* d = std::get_if<double>(&a)) return std::vector<double>{*d};
      if (auto* i = std::get_if<int64_t>(&a)) return std::vector<double>{static_cast<double>(*i)};
      if (std::holds_alternative<std::vector<double>>(a)) return a;
      return std::nullopt;
    case AttrKind::String:
      if (std::holds_alternative<std::string>(a)) return a;
      return std::nullopt;
  }
  return std::nullopt;
}
}  // namespace

Expected<Attrs> completeAttrs(const OpDef& op, size_t numOperands, Attrs given) {
  size_t lo = static_cast<size_t>(op.requiredOperands());
  size_t hi = op.variadic ? SIZE_MAX : op.operands.size();
  if (numOperands < lo || numOperands > hi) {
    if (lo == hi)
      return error("{} takes {} tensor operand{}, got {}", op.name, lo, lo == 1 ? "" : "s", numOperands);
    if (hi == SIZE_MAX) return error("{} takes at least {} tensor operands, got {}", op.name, lo, numOperands);
    return error("{} takes {} to {} tensor operands, got {}", op.name, lo, hi, numOperands);
  }
  Attrs out;
  for (const auto& [name, value] : given.items()) {
    const AttrSpec* spec = nullptr;
    for (const AttrSpec& s : op.attrs)
      if (s.name == name) spec = &s;
    if (!spec) {
      std::string known;
      for (const AttrSpec& s : op.attrs) known += (known.empty() ? "" : ", ") + std::string(s.name);
      return error("{} has no attribute '{}'{}", op.name, name,
                   known.empty() ? std::string(" (it takes none)") : " (it takes: " + known + ")");
    }
    auto v = coerce(value, spec->kind);
    if (!v) return error("{}: attribute '{}' must be {}, got {}", op.name, name, kindName(spec->kind), attrString(value));
    out.set(name, std::move(*v));
  }
  for (const AttrSpec& s : op.attrs) {
    if (out.has(s.name)) continue;
    if (!s.defaultValue) return error("{}: missing attribute '{}'", op.name, s.name);
    out.set(std::string(s.name), *s.defaultValue);
  }
  // Keep the registry's order so dumps are stable whatever the call's order.
  Attrs ordered;
  for (const AttrSpec& s : op.attrs) ordered.set(std::string(s.name), *out.find(s.name));
  for (const auto& [k, v] : out.items())
    if (!ordered.has(k)) ordered.set(k, v);
  return ordered;
}

}  // namespace nnc
