// Checks symbolic gradients against central finite differences
// ((f(x+h) − f(x−h)) / 2h, the course notes' numerical_gradient), evaluated
// by the reference interpreter in f64.
#pragma once
#include <string>
#include <vector>

#include "compiler/autodiff/autodiff.h"
#include "compiler/interpreter/interpreter.h"

namespace nnc {

struct GradCheckOptions {
  int samples = 10;        // entries per param (all if the param is smaller)
  double eps = 1e-5;       // h (about the cube root of f64's epsilon, where central differences are most exact)
  double rtol = 1e-6;      // pass: relative error below rtol, or an absolute error within
                           // the finite difference's own rounding noise, 16·ε·max(|f(x±h)|, 1)/h
                           // (so entries whose gradient is ~0 do not fail on noise)
  uint64_t seed = 42;      // params, inputs and sampled entries
  bool training = true;    // dropout masks and batch statistics as in training
};

struct ParamCheck {
  std::string name;
  int checked = 0;        // entries compared
  int kinks = 0;          // entries skipped: the difference window crosses a kink
  double maxAbs = 0, maxRel = 0;
  bool ok = true;
};

struct GradCheckReport {
  std::vector<ParamCheck> params;
  bool ok = true;
};

// Random values for every input and label of `g`: inputs ~ N(0, 1); f32
// labels uniform in [0, 1); i32 labels uniform class ids, the number of
// classes taken from the last dim of the op that reads them.
TensorMap randomFeeds(const Graph& g, uint64_t seed);

// `feeds` supplies inputs and labels (and params; missing ones are initialized).
Expected<GradCheckReport> gradCheck(const Graph& g, const TensorMap& feeds, const GradCheckOptions& opt = {});

}  // namespace nnc
