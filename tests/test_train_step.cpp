#include <catch2/catch.hpp>

#include <cmath>
#include <regex>

#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "io/npy.h"
#include "test_util.h"

using namespace nnc;

namespace {

// Runs `steps` training steps of `src`'s model through the interpreter in f64,
// carrying params and optimizer state and feeding the schedule's lr as
// `nnc run` does. Returns the params afterwards, by name.
TensorMap train(const std::string& src, TensorMap params, const TensorMap& data, int steps) {
  auto c = test::compile(src);
  if (!c.model) FAIL(c.diag);
  auto step = buildTrainStep(c.model->graph, c.model->train);
  if (!step) FAIL(step.error().message);
  const Graph& g = step->grads.graph;
  std::vector<ValueId> targets;
  for (auto [p, next] : step->updates) targets.push_back(next);
  for (auto [s, next] : step->state) targets.push_back(next);
  TensorMap state;
  for (auto [s, _] : step->state) state[g.node(s).name] = Tensor(g.type(s));
  for (int s = 0; s < steps; ++s) {
    TensorMap feeds = data;
    for (const auto& [k, v] : params) feeds[k] = v;
    for (const auto& [k, v] : state) feeds[k] = v;
    feeds["train.lr"] = Tensor(TensorType{DType::F32, {}}, {step->lrAt(s)});
    auto vals = interpret(g, feeds, EvalOptions{true, true, 1}, targets);
    if (!vals) FAIL(vals.error().message);
    for (auto [p, next] : step->updates) params[g.node(p).name] = (*vals)[static_cast<size_t>(next)];
    for (auto [st, next] : step->state) state[g.node(st).name].data = (*vals)[static_cast<size_t>(next)].data;
  }
  return params;
}

Tensor load(const std::string& name) {
  auto t = readNpy(test::sourcePath("tests/reference/optim/" + name + ".npy"));
  if (!t) FAIL(t.error().message);
  return t.take();
}

// f(w) = w², from w = 1, three steps: w after each step.
std::vector<double> minimizeSquare(const std::string& optimizer) {
  std::vector<double> ws;
  TensorMap params = {{"w", Tensor(TensorType{DType::F32, {1}}, {1.0})}};
  for (int n = 1; n <= 3; ++n)
    ws.push_back(train("model f { param w: f32[1] = zeros() loss = sum(square(w)) }\ntrain f { optimizer = " +
                           optimizer + " }",
                       params, {}, n)
                     .at("w")
                     .data[0]);
  return ws;
}

}  // namespace

TEST_CASE("one SGD step: W' = W - lr * dW, computed in the graph", "[train]") {
  auto c = test::compile(R"(
model lin { input x: f32[1, 2] label t: i32[1] param W: f32[2, 2] = zeros() param b: f32[2] = zeros()
            loss = softmax_cross_entropy(x @ W + b, t) }
train lin { optimizer = sgd(lr = 0.5) })");
  REQUIRE(c.model);
  auto step = buildTrainStep(c.model->graph, c.model->train);
  REQUIRE(step);
  REQUIRE(step->updates.size() == 2);
  TensorMap feeds = {{"x", Tensor(TensorType{DType::F32, {1, 2}}, {1, 2})},
                     {"t", Tensor(TensorType{DType::I32, {1}}, {1})}};
  std::vector<ValueId> targets;
  for (auto [p, next] : step->updates) targets.push_back(next);
  auto vals = interpret(step->grads.graph, feeds, EvalOptions{true, true, 1}, targets);
  REQUIRE(vals);
  // With W = 0, b = 0: p = [1/2, 1/2], dlogits = p - onehot(1) = [0.5, -0.5];
  // dW = x^T dlogits = [[0.5, -0.5], [1, -1]], db = [0.5, -0.5]; W' = -0.5 dW, b' = -0.5 db.
  CHECK((*vals)[static_cast<size_t>(step->updates[0].second)].data == std::vector<double>{-0.25, 0.25, -0.5, 0.5});
  CHECK((*vals)[static_cast<size_t>(step->updates[1].second)].data == std::vector<double>{-0.25, 0.25});
  CHECK(step->grads.graph.node(step->updates[0].second).name == "W.next");
}

// Must match CASES in tests/reference/gen_optim_refs.py.
const struct {
  const char* name;
  const char* settings;  // the train block's settings
} kOptimCases[] = {
    {"sgd", "optimizer = sgd(lr = 0.1)"},
    {"momentum", "optimizer = momentum(lr = 0.1, momentum = 0.8)"},
    {"nesterov", "optimizer = nesterov(lr = 0.1, momentum = 0.8)"},
    {"adagrad", "optimizer = adagrad(lr = 0.1)"},
    {"rmsprop", "optimizer = rmsprop(lr = 0.01, decay_rate = 0.9)"},
    {"adam", "optimizer = adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99)"},
    {"adam_defaults", "optimizer = adam()"},
    {"adam_step", "optimizer = adam(lr = 0.01) schedule = step(every = 2, gamma = 0.5)"},
    {"sgd_cosine", "optimizer = sgd(lr = 0.1) schedule = cosine(total = 4)"},
};

// The 3 → 2 linear softmax classifier of gen_optim_refs.py trained `steps`
// steps with `settings` from its W0, b0: W and b equal torch's `name`_W, _b.
static void checkLinearAgainstTorch(const char* name, const char* settings, const TensorMap& data, int steps) {
  auto p = train(std::string("model lin { input x: f32[4, 3] label t: i32[4] param W: f32[3, 2] = zeros()\n"
                             "param b: f32[2] = zeros() loss = softmax_cross_entropy(x @ W + b, t) }\n"
                             "train lin { ") + settings + " }",
                 {{"W", load("W0")}, {"b", load("b0")}}, data, steps);
  for (const char* n : {"W", "b"}) {
    const Tensor want = load(std::string(name) + "_" + n);
    REQUIRE(p.at(n).data.size() == want.data.size());
    for (size_t i = 0; i < want.data.size(); ++i) {
      INFO(n << "[" << i << "]");
      CHECK(p.at(n).data[i] == Approx(want.data[i]).epsilon(1e-5).margin(1e-9));
    }
  }
}

TEST_CASE("optimizers and schedules match torch.optim over 3 steps", "[train]") {
  const TensorMap data = {{"x", load("x")}, {"t", load("t")}};
  for (const auto& c : kOptimCases) {
    INFO(c.name);
    checkLinearAgainstTorch(c.name, c.settings, data, 3);
  }
}

// Must match TRAIN_CASES in tests/reference/gen_optim_refs.py: 6 steps, with
// torch.nn.utils.clip_grad_norm_ between backward and step where clipped.
const struct {
  const char* name;
  const char* settings;
} kTrainCases[] = {
    {"adamw", "optimizer = adamw(lr = 0.01, beta1 = 0.8, beta2 = 0.99, weight_decay = 0.1)"},
    {"adamw_defaults", "optimizer = adamw()"},
    {"sgd_clipped", "optimizer = sgd(lr = 0.5) clip_grad_norm = 0.05"},
    {"sgd_not_clipped", "optimizer = sgd(lr = 0.5) clip_grad_norm = 10"},
    {"adam_clipped", "optimizer = adam(lr = 0.01) clip_grad_norm = 0.05"},
    {"momentum_clipped", "optimizer = momentum(lr = 0.1, momentum = 0.8) clip_grad_norm = 0.05"},
    {"adamw_warmup_cosine_clipped",
     "optimizer = adamw(lr = 0.02, weight_decay = 0.05) warmup = 2 schedule = cosine(total = 5) clip_grad_norm = 0.1"},
    {"sgd_exponential", "optimizer = sgd(lr = 0.5) schedule = exponential(gamma = 0.7)"},
    {"sgd_cosine_min_lr", "optimizer = sgd(lr = 0.5) schedule = cosine(total = 6, min_lr = 0.1)"},
};

TEST_CASE("adamw, gradient clipping and warmup match torch over 6 steps", "[train]") {
  const TensorMap data = {{"x", load("x")}, {"t", load("t")}};
  for (const auto& c : kTrainCases) {
    INFO(c.name);
    checkLinearAgainstTorch(c.name, c.settings, data, 6);
  }
}

// Must match SCHEDULES in tests/reference/gen_optim_refs.py: the lr torch's
// scheduler (or HuggingFace's warmup lambda in a LambdaLR) gives each step.
const struct {
  const char* name;
  const char* settings;
  int steps;  // compared: a cosine stays at min_lr after `total`, where torch's rises again
} kScheduleCases[] = {
    {"exponential", "schedule = exponential(gamma = 0.9)", 12},
    {"exponential_every3", "schedule = exponential(0.9, every = 3)", 12},
    {"cosine_min_lr", "schedule = cosine(total = 8, min_lr = 0.01)", 9},
    {"warmup4_cosine10", "warmup = 4 schedule = cosine(total = 10)", 11},
    {"warmup3_constant", "warmup = 3", 12},
    {"warmup2_step", "warmup = 2 schedule = step(every = 3, gamma = 0.5)", 12},
    {"warmup3_exponential", "warmup = 3 schedule = exponential(gamma = 0.8)", 12},
};

TEST_CASE("schedules and warmup give torch's learning rates step by step", "[train]") {
  for (const auto& c : kScheduleCases) {
    INFO(c.name);
    auto m = test::compile("model m { input x: f32[1, 2] param W: f32[2, 1] = zeros() loss = sum(x @ W) }\n"
                           "train m { optimizer = sgd(lr = 0.1) " + std::string(c.settings) + " }");
    REQUIRE(m.model);
    auto st = buildTrainStep(m.model->graph, m.model->train);
    REQUIRE(st);
    const Tensor want = load(std::string("sched_") + c.name);
    for (int s = 0; s < c.steps; ++s) {
      INFO("step " << s);
      // readNpy rounds the f64 file to f32, as every f32 tensor is held.
      CHECK(st->lrAt(s) == Approx(want.data[static_cast<size_t>(s)]).epsilon(1e-7).margin(1e-12));
    }
  }
  // Held at min_lr after total.
  ScheduleSpec cosine{"cosine", 1, 0.1, 8, 0.01, 0};
  CHECK(cosine.lrAt(0.1, 100) == Approx(0.01));
}

TEST_CASE("clipping is graph nodes: the global norm and one scale before the update", "[train]") {
  auto c = test::compile("model m { input x: f32[1, 2] param W: f32[2, 1] = zeros() param b: f32[1] = zeros()\n"
                         "loss = sum(x @ W + b) }\ntrain m { optimizer = adamw() clip_grad_norm = 1 }");
  REQUIRE(c.model);
  auto step = buildTrainStep(c.model->graph, c.model->train);
  REQUIRE(step);
  const Graph& g = step->grads.graph;
  REQUIRE(step->gradScale != kNoValue);
  CHECK(step->clipGradNorm == 1);
  CHECK(g.node(step->gradScale).name == "train.grad_scale");
  CHECK(g.node(step->gradScale).op->name == "minimum");
  CHECK(g.findByName("train.grad_norm") != kNoValue);
  // x = [3, 4]: dW = xᵀ = [3, 4], db = [1], so ‖g‖ = √26 and the scale 1/(√26 + 1e-6).
  TensorMap feeds = {{"x", Tensor(TensorType{DType::F32, {1, 2}}, {3, 4})}};
  auto vals = interpret(g, feeds, EvalOptions{true, true, 1}, {step->gradScale});
  REQUIRE(vals);
  CHECK((*vals)[static_cast<size_t>(step->gradScale)].data[0] == Approx(1 / (std::sqrt(26.0) + 1e-6)));
  // The unclipped gradients stay what nnc grad prints.
  CHECK(g.node(step->grads.grads[0].second).op->name != "mul");
}

TEST_CASE("the course notes' optimizers on f(w) = w² from w = 1", "[train]") {
  auto close = [](const std::vector<double>& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-9));
  };
  // g = 2w. SGD: w −= 0.1·2w, so w = 0.8, 0.64, 0.512.
  close(minimizeSquare("sgd(lr = 0.1)"), {0.8, 0.64, 0.512});
  // Momentum: v = −0.2, w = 0.8; v = 0.9·−0.2 − 0.1·1.6 = −0.34, w = 0.46;
  // v = 0.9·−0.34 − 0.1·0.92 = −0.398, w = 0.062.
  close(minimizeSquare("momentum(lr = 0.1, momentum = 0.9)"), {0.8, 0.46, 0.062});
  // Nesterov: w += 0.81·v − 1.9·0.1·g: w = 1 − 0.38 = 0.62 (v = −0.2);
  // w = 0.62 − 0.162 − 0.2356 = 0.2224 (v = −0.304); w = 0.2224 − 0.24624 − 0.084512 = −0.108352.
  close(minimizeSquare("nesterov(lr = 0.1, momentum = 0.9)"), {0.62, 0.2224, -0.108352});
  // AdaGrad: h = 4, w = 1 − 0.1·2/(2 + 1e-7) ≈ 0.9; then h = 4 + 1.8², w −= 0.1·1.8/(√7.24 + 1e-7) …
  close(minimizeSquare("adagrad(lr = 0.1)"), {0.9000000049999998, 0.8331035341186127, 0.780456190054499});
  // RMSprop: h = 0.01·4 = 0.04, w = 1 − 0.01·2/(0.2 + 1e-7) ≈ 0.9; then h = 0.99·0.04 + 0.01·1.8² …
  close(minimizeSquare("rmsprop(lr = 0.01)"), {0.900000049999975, 0.8329180336252442, 0.779982351892079});
  // Adam: m = 0.2, v = 0.004, m̂ = 2, v̂ = 4: w = 1 − 0.1·2/(2 + 1e-8) ≈ 0.9;
  // step 2: m = 0.36, v = 0.007236, m̂ = 1.8947…, v̂ = 3.6198…, w = 0.9 − 0.1·0.9959… …
  close(minimizeSquare("adam(lr = 0.1)"), {0.9000000005, 0.8004122286917927, 0.70158627294603});
}

TEST_CASE("optimizer state is graph values carried by name", "[train]") {
  auto c = test::compile("model m { input x: f32[1, 2] param W: f32[2, 1] = zeros() param b: f32[1] = zeros()\n"
                         "loss = sum(x @ W + b) }\ntrain m { optimizer = adam() }");
  REQUIRE(c.model);
  auto step = buildTrainStep(c.model->graph, c.model->train);
  REQUIRE(step);
  const Graph& g = step->grads.graph;
  std::vector<std::string> names;
  for (auto [s, next] : step->state) {
    CHECK(g.node(s).op->name == "param");
    CHECK(g.node(s).attrs.i("trainable") == 0);
    CHECK(g.node(next).name == g.node(s).name + ".next");
    CHECK(g.type(next) == g.type(s));
    names.push_back(g.node(s).name);
  }
  CHECK(names == std::vector<std::string>{"train.step", "W.m", "W.v", "b.m", "b.v"});
  CHECK(g.node(step->lr).name == "train.lr");
  CHECK(g.node(step->lr).attrs.floats("example") == std::vector<double>{0.001});
  CHECK(step->optimizer.eps == 1e-8);

  auto s = test::compile("model m { input x: f32[1, 2] param W: f32[2, 1] = zeros() loss = sum(x @ W) }");
  auto sgd = buildTrainStep(s.model->graph, s.model->train);
  REQUIRE(sgd);
  CHECK(sgd->state.empty());
  CHECK(sgd->optimizer.lr == 0.01);
}

TEST_CASE("learning-rate schedules", "[train]") {
  ScheduleSpec constant;
  CHECK(constant.lrAt(0.1, 0) == 0.1);
  CHECK(constant.lrAt(0.1, 12345) == 0.1);
  ScheduleSpec step{"step", 3, 0.5, 1};
  CHECK(step.lrAt(0.1, 0) == 0.1);
  CHECK(step.lrAt(0.1, 2) == 0.1);
  CHECK(step.lrAt(0.1, 3) == 0.05);
  CHECK(step.lrAt(0.1, 8) == 0.025);
  CHECK(step.lrAt(0.1, 9) == Approx(0.0125));
  ScheduleSpec cosine{"cosine", 1, 0.1, 4};
  CHECK(cosine.lrAt(0.1, 0) == 0.1);
  CHECK(cosine.lrAt(0.1, 1) == Approx(0.1 * (1 + std::sqrt(0.5)) / 2));  // cos(π/4)
  CHECK(cosine.lrAt(0.1, 2) == Approx(0.05));
  CHECK(cosine.lrAt(0.1, 4) == Approx(0).margin(1e-15));
  CHECK(cosine.lrAt(0.1, 10) == Approx(0).margin(1e-15));  // stays at 0 after `total`

  auto c = test::compile("model m { input x: f32[1, 2] param W: f32[2, 1] = zeros() loss = sum(x @ W) }\n"
                         "train m { optimizer = sgd(0.2) schedule = step(every = 100, gamma = 0.1) }");
  REQUIRE(c.model);
  auto st = buildTrainStep(c.model->graph, c.model->train);
  REQUIRE(st);
  CHECK(st->lrAt(99) == 0.2);
  CHECK(st->lrAt(100) == Approx(0.02));
  CHECK(st->lrAt(250) == Approx(0.002));
}

TEST_CASE("unknown optimizers, schedules and arguments are errors in words", "[train]") {
  auto err = [](const std::string& settings) {
    auto c = test::compile("model m { input x: f32[1, 2] param W: f32[2, 1] = zeros() loss = sum(x @ W) }\n"
                           "train m { " + settings + " }");
    // The elaborator checks every setting (so nnc check refuses what nnc
    // run would), at the setting's line and column: the message alone.
    if (!c.model) {
      const size_t at = c.diag.find("error: "), nl = c.diag.find('\n');
      return c.diag.rfind("m.nn:2:", 0) == 0 && at < nl ? c.diag.substr(at + 7, nl - at - 7) : c.diag;
    }
    auto step = buildTrainStep(c.model->graph, c.model->train);
    if (step) return std::string("(no error)");
    return "(only at buildTrainStep) " + step.error().message;
  };
  CHECK(err("optimizer = adam(lr = 0.001, betas = 0.9)") ==
        "optimizer 'adam' has no argument 'betas' (its arguments: lr, beta1, beta2, eps)");
  CHECK(err("optimizer = momentum(lr = 0.1, decay_rate = 0.9)") ==
        "optimizer 'momentum' has no argument 'decay_rate' (its arguments: lr, momentum)");
  CHECK(err("optimizer = sgd(momentum = 0.9)") == "optimizer 'sgd' has no argument 'momentum' (its arguments: lr)");
  CHECK(err("optimizer = rmsprop(rho = 0.9)") ==
        "optimizer 'rmsprop' has no argument 'rho' (its arguments: lr, decay_rate, eps)");
  CHECK_THAT(err("optimizer = lbfgs()"),
             Catch::Contains("unknown optimizer 'lbfgs' (known: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw)"));
  CHECK(err("optimizer = adamw(weight_decay = -0.1)") == "adamw's weight_decay must be a non-negative number, got -0.1");
  CHECK(err("optimizer = adam(weight_decay = 0.1)") ==
        "optimizer 'adam' has no argument 'weight_decay' (its arguments: lr, beta1, beta2, eps)");
  CHECK(err("schedule = exponential(every = 2)") ==
        "exponential(gamma = g) needs gamma, the factor per `every` steps");
  CHECK(err("schedule = exponential(gamma = 0)") == "exponential's gamma must be positive, got 0");
  CHECK(err("schedule = exponential(gamma = 0.9, every = 0)") ==
        "exponential(every = N) takes a whole number of steps N >= 1");
  CHECK(err("schedule = cosine(total = 10, min_lr = -1)") == "cosine's min_lr must be a non-negative number, got -1");
  CHECK(err("warmup = 10 schedule = cosine(total = 10)") ==
        "cosine(total = 10) counts the warmup's 10 steps too: total must exceed warmup");
  CHECK(err("warmup = 1.5") == "warmup is a whole number of steps (0: none), got 1.5");
  CHECK(err("clip_grad_norm = 0") == "clip_grad_norm is the largest gradient norm, a positive number");
  CHECK(err("clip_grad_norm = -1") == "clip_grad_norm is the largest gradient norm, a positive number");
  CHECK(err("clip_grad_norm = \"big\"") == "clip_grad_norm is the largest gradient norm, a positive number");
  CHECK(err("optimizer = adam(beta1 = 1.5)") == "adam's beta1 must be in [0, 1), got 1.5");
  CHECK(err("optimizer = sgd(lr = 0)") == "the learning rate must be positive, got 0");
  CHECK(err("optimizer = adam(0.1, 0.2)") == "optimizer 'adam' takes named arguments (lr, beta1, beta2, eps)");
  CHECK(err("schedule = step(every = 10, rate = 0.5)") ==
        "schedule 'step' has no argument 'rate' (its arguments: every, gamma)");
  CHECK(err("schedule = step(gamma = 0.5)") == "step(every = N) takes a whole number of steps N >= 1");
  CHECK(err("schedule = cosine(total = 0)") == "cosine(total = T) takes a whole number of steps T >= 1");
  CHECK(err("schedule = linear(total = 10)") ==
        "unknown schedule 'linear' (known: constant(), step(every, gamma), exponential(gamma, every), "
        "cosine(total, min_lr))");
  CHECK(err("regularize = l3(0.1)") == "regularize is l1(lambda) or l2(lambda), not 'l3'");
  CHECK(err("regularize = l2(lambda = -1)") == "l2's lambda must be a non-negative number, got -1");
}

TEST_CASE("nnc run trains with adam, a cosine schedule and optimizer state", "[train][cli]") {
  auto r = test::runCli({"run", test::sourcePath("examples/optimizers/mnist_adam.nn"), "--limit", "500", "--epochs",
                         "1", "--log-every", "1"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("optimizer adam"));
  CHECK_THAT(r.out, Catch::Contains("epoch 1 step 1/5: loss "));
  CHECK_THAT(r.out, Catch::Contains(", lr 0.001\n"));  // cosine(total = 3000) at step 0
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex("train loss ([0-9.]+), train accuracy [0-9.]+, test accuracy ([0-9.]+)")));
  CHECK(std::stod(m[2]) > 0.3);  // well above chance (0.1) after 5 Adam steps
}

// Running statistics move toward the batch's, as torch.nn.BatchNorm1d's do in
// training mode: r ← 0.9·r + 0.1·batch, with the unbiased variance.
TEST_CASE("batchnorm running statistics are updated by the train step", "[train]") {
  const std::string src =
      "model m(batch = 4) { input x: f32[batch, 3] y = batchnorm(x, name = \"bn\") loss = sum(square(y)) }\n"
      "train m { optimizer = sgd(lr = 0.1) }";
  const TensorType c3{DType::F32, {3}};
  TensorMap params = {{"bn.gamma", Tensor(c3, {1, 1, 1})},
                      {"bn.beta", Tensor(c3, {0, 0, 0})},
                      {"bn.running_mean", Tensor(c3, {0, 0, 0})},
                      {"bn.running_var", Tensor(c3, {1, 1, 1})}};
  // Columns: mean 2.5, var 5/3; mean 1, var 4; mean 0, var 4/3.
  TensorMap data = {{"x", Tensor(TensorType{DType::F32, {4, 3}}, {1, 0, -1, 2, 0, -1, 3, 0, 1, 4, 4, 1})}};
  TensorMap after = train(src, params, data, 1);
  const std::vector<double> mean = after.at("bn.running_mean").data, var = after.at("bn.running_var").data;
  CHECK_THAT(mean, Catch::Approx(std::vector<double>{0.25, 0.1, 0.0}).margin(1e-6));
  CHECK_THAT(var, Catch::Approx(std::vector<double>{0.9 + 0.5 / 3, 1.3, 0.9 + 0.4 / 3}).margin(1e-6));
  // Twice: the second step starts from the first's statistics.
  after = train(src, params, data, 2);
  CHECK(after.at("bn.running_mean").data[0] == Approx(0.9 * 0.25 + 0.25).margin(1e-6));
}
