// Source ops: values the interpreter (or the runtime) supplies rather than
// computes. Their type is given when the node is created.
#include "compiler/ops/op_registry.h"

namespace nnc {

void addSourceOps(std::vector<OpDef>& r) {
  r.push_back({.name = "input",
               .attrs = {{"example", AttrKind::Floats, Attr{std::vector<double>{}}}},
               .kind = OpKind::Source,
               .summary = "a model input, fed per batch (example: a value used when none is fed)"});
  r.push_back({.name = "label", .kind = OpKind::Source, .summary = "training targets, fed per batch"});
  r.push_back({.name = "param",
               .attrs = {{"init", AttrKind::String, Attr{std::string("zeros")}},
                         {"args", AttrKind::Floats, Attr{std::vector<double>{}}},
                         {"trainable", AttrKind::Int, Attr{int64_t{1}}},
                         {"file", AttrKind::String, Attr{std::string()}},
                         {"key", AttrKind::String, Attr{std::string()}}},
               .kind = OpKind::Source,
               .summary = "a learned parameter (or, trainable 0, a buffer) with its initializer; load(): file and key"});
  r.push_back({.name = "const",
               .attrs = {{"value", AttrKind::Floats, std::nullopt}},
               .kind = OpKind::Source,
               .summary = "a constant tensor (one value, or one per element)"});
}

}  // namespace nnc
