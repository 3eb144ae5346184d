// The `**` operator: lexing, Python's precedence and associativity (the AST
// as a golden s-expression dump), compile-time arithmetic and the `pow` op
// on tensors.
#include <catch2/catch.hpp>

#include "dsl/lexer.h"
#include "dsl/parser.h"
#include "compiler/interpreter/interpreter.h"
#include "test_util.h"

using namespace nnc;
using namespace nnc::ast;
using nnc::test::compile;

namespace {

const char* opName(BinOp op) {
  switch (op) {
    case BinOp::Add: return "+";
    case BinOp::Sub: return "-";
    case BinOp::Mul: return "*";
    case BinOp::Div: return "/";
    case BinOp::FloorDiv: return "//";
    case BinOp::Mod: return "%";
    case BinOp::MatMul: return "@";
    case BinOp::Pow: return "**";
  }
  return "?";
}

// The tree as an s-expression, with each operator's column.
std::string sexpr(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Int: return std::to_string(e.intValue);
    case ExprKind::Float: return fmt::format("{}", e.floatValue);
    case ExprKind::Ident: return e.text;
    case ExprKind::Unary: return fmt::format("(-@{} {})", e.loc.col, sexpr(*e.elems[0]));
    case ExprKind::Binary:
      return fmt::format("({}@{} {} {})", opName(e.binop), e.loc.col, sexpr(*e.elems[0]), sexpr(*e.elems[1]));
    case ExprKind::Call: {
      std::string out = "(call " + e.text;
      for (const Arg& a : e.args) out += fmt::format(" {}", sexpr(*a.value));
      return out + ")";
    }
    default: return "?";
  }
}

// `x = <src>` inside a model: its right-hand side, or the parse error.
std::string parsed(const std::string& src) {
  SourceManager sm;
  auto r = parse(sm, sm.add("t.nn", "model m { x = " + src + " }"));
  if (!r) return fmt::format("error {}:{}: {}", r.error().loc.line, r.error().loc.col, r.error().message);
  return sexpr(*r->models.at(0).body.at(0).value);
}

std::vector<double> output(const std::string& src, const std::string& name) {
  auto c = compile(src);
  if (!c.model) FAIL(c.diag);
  auto vals = interpret(c.model->graph, {});
  if (!vals) FAIL(vals.error().message);
  for (const auto& [n, v] : c.model->graph.outputs)
    if (n == name) return (*vals)[static_cast<size_t>(v)].data;
  FAIL("no output " << name);
  return {};
}

}  // namespace

TEST_CASE("lexer: '**' is one token, '* *' two", "[parser]") {
  SourceManager sm;
  auto toks = lex(sm, sm.add("t.nn", "a ** b * * c *** d"));
  REQUIRE(toks.ok());
  std::vector<TokKind> kinds;
  for (const Token& t : *toks) kinds.push_back(t.kind);
  using K = TokKind;
  CHECK(kinds == std::vector<K>{K::Ident, K::StarStar, K::Ident, K::Star, K::Star, K::Ident, K::StarStar, K::Star,
                                K::Ident, K::Eof});
  CHECK((*toks)[1].text == "**");
}

TEST_CASE("parser: '**' has Python's precedence and associativity", "[parser]") {
  // The exact trees, operator columns included, are in the golden file:
  // right-associative, above unary minus on its left, below it on its right,
  // above * and @, below calls and parentheses.
  const std::vector<std::string> exprs = {
      "2 ** 3 ** 2", "-2 ** 2",       "2 ** -1",     "- -a ** -b ** c", "a * b ** 2",   "a ** 2 * b",
      "x @ W ** 2",  "a ** b @ c",    "(a ** b) ** c", "f(x) ** 2",     "a + b ** c - d", "a // b ** c % d",
      "a**b**c**d",  "-(a ** b)",     "2 ** f(x, 3 ** y)"};
  std::string dump;
  for (const std::string& e : exprs) dump += e + "  =>  " + parsed(e) + "\n";
  CHECK(test::matchesGolden(dump, "power.ast"));
  // The same facts in the tests themselves:
  CHECK(parsed("2 ** 3 ** 2") == "(**@17 2 (**@22 3 2))");
  CHECK(parsed("-2 ** 2") == "(-@15 (**@18 2 2))");
  CHECK(parsed("2 ** -1") == "(**@17 2 (-@20 1))");
  CHECK(parsed("a * b ** 2") == "(*@17 a (**@21 b 2))");
}

TEST_CASE("parser: '**' errors", "[parser]") {
  CHECK(parsed("a **") == "error 1:20: expected an expression after '**', found '}'");
  CHECK(parsed("** a") == "error 1:15: expected an expression after '=', found '**'");
  CHECK(parsed("a ** * b") == "error 1:20: expected an expression after '**', found '*'");
}

TEST_CASE("'**' at compile time: int stays int, else float, overflow is an error", "[elaborate]") {
  auto c = compile("model m { input x: f32[2 ** 3, 2 ** 3 ** 2 // 128, -2 ** 2 + 5, 10 ** 0] output y = relu(x) }");
  REQUIRE(c.model);
  CHECK(c.model->graph.type(c.model->graph.inputs[0]).shape == Shape{8, 4, 1, 1});
  // Floats: 2 ** -1, 4 ** 0.5, 1.5 ** 2 (a float shape would be an error, so read them as constants).
  CHECK(output("model m { output y = relu([2 ** -1, 4 ** 0.5, 1.5 ** 2, (-2) ** 3]) }", "y") ==
        std::vector<double>{0.5, 2.0, 2.25, 0.0});
  auto shapeFloat = compile("model m { input x: f32[2 ** -1] output y = relu(x) }");
  CHECK_FALSE(shapeFloat.model);
  auto big = compile("model m {\n  input x: f32[2 ** 4, 2]\n  y = 3 ** 40\n}");
  REQUIRE_FALSE(big.model);
  CHECK_THAT(big.diag, Catch::Contains("m.nn:3:9: error: integer overflow in compile-time arithmetic"));
  CHECK_THAT(big.diag, Catch::Contains("^"));
  auto zero = compile("model m {\n  y = 0 ** -2\n}");
  CHECK_THAT(zero.diag, Catch::Contains("m.nn:2:9: error: 0 cannot be raised to a negative power"));
  auto root = compile("model m {\n  y = (-8) ** 0.5\n}");
  CHECK_THAT(root.diag, Catch::Contains("m.nn:2:12: error: -8 ** 0.5 is not a finite real number"));
  CHECK(compile("model m { y = (-2) ** 63 output z = relu([1]) }").model);  // INT64_MIN fits
  CHECK_FALSE(compile("model m { y = 2 ** 63 output z = relu([1]) }").model);
}

TEST_CASE("'**' on tensors is the pow op", "[elaborate]") {
  auto c = compile("model m {\n  input x: f32[3] = [1, 2, 3]\n  output y = x ** 2 + 2 ** x\n}");
  REQUIRE(c.model);
  int pows = 0;
  for (const Node& n : c.model->graph.nodes) pows += n.op->name == "pow";
  CHECK(pows == 2);
  CHECK(output("model m {\n  input x: f32[3] = [1, 2, 3]\n  output y = x ** 2 + 2 ** x\n}", "y") ==
        std::vector<double>{3, 8, 17});
  CHECK(output("model m {\n  input x: f32[2] = [3, 2]\n  output y = -x ** 2\n}", "y") == std::vector<double>{-9, -4});
}
