// The data-parallel step's collectives (docs/distributed.md), made by
// buildTrainStep when a run spans several processes:
//   t = allreduce_start(g1, ..., gk)   the bucket's gradients, laid out back
//                                      to back in one arena block by the
//                                      memory plan, start their in-place sum
//                                      across the processes (token t)
//   gi' = allreduce_wait(gi, t)         gi summed: the kernel waits for the
//                                      bucket and gi' is gi's slot, in place
// In one process (the interpreter, or the JIT with no collectives
// installed) they are the identity: the sum over one process.
#include "compiler/lower/lower.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

namespace {

constexpr DType F32 = DType::F32;

Expected<TensorType> startShape(const std::vector<TensorType>& in, const Attrs&) {
  for (const TensorType& t : in)
    if (t.dtype != F32) return error("allreduce_start: gradients are f32, got {}", typeString(t));
  return TensorType{F32, {1}};
}

Expected<TensorType> waitShape(const std::vector<TensorType>& in, const Attrs&) {
  if (in[0].dtype != F32 || in[1] != TensorType{F32, {1}})
    return error("allreduce_wait: takes an f32 gradient and allreduce_start's token, got {} and {}",
                 typeString(in[0]), typeString(in[1]));
  return in[0];
}

// The floats allreduce_start's call sums: its operands back to back, each
// but the last rounded up to its arena slot (lower.h's alignedFloats), so
// the padding between them is summed too, and read by no one.
int64_t bucketFloats(const std::vector<TensorType>& grads) {
  int64_t n = 0;
  for (size_t i = 0; i + 1 < grads.size(); ++i) n += alignedFloats(grads[i].numel());
  return n + grads.back().numel();
}

}  // namespace

void addCollectiveOps(std::vector<OpDef>& r) {
  const std::vector<AttrSpec> bucket = {{"bucket", AttrKind::Int, std::nullopt}};
  r.push_back({.name = "allreduce_start",
               .operands = {"grads"},
               .variadic = true,
               .attrs = bucket,
               .shape = startShape,
               .eval = [](const EvalArgs&) -> Status { return ok(); },
               .noGradient = true,
               .lower = [](LowerArgs& a) -> Status {
                 a.k.body.push_back(loop::call("nnc_allreduce_start", {{a.in[0], {}}},
                                               {bucketFloats(a.inTypes), a.attrs().i("bucket")}));
                 a.k.body.push_back(fill(a.k, a.out, 1, 0));
                 return ok();
               },
               .internal = true,
               .collective = true,
               .summary = "starts the sum across processes of a bucket of gradients (a data-parallel step's)"});
  r.push_back({.name = "allreduce_wait",
               .operands = {"grad", "token"},
               .attrs = bucket,
               .shape = waitShape,
               .eval = [](const EvalArgs& e) -> Status {
                 e.out.data = e.in[0]->data;
                 return ok();
               },
               .noGradient = true,
               .lower = [](LowerArgs& a) -> Status {
                 a.k.body.push_back(loop::call("nnc_allreduce_wait", {{a.out, {}}}, {a.attrs().i("bucket")}));
                 return ok();
               },
               .inPlace = true,
               .internal = true,
               .collective = true,
               .summary = "the gradient summed across processes, once its bucket's sum is done (in place)"});
}

}  // namespace nnc
