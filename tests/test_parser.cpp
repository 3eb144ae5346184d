#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "dsl/lexer.h"
#include "dsl/parser.h"

using namespace nnc;
using namespace nnc::ast;

namespace {

std::vector<Token> lexOk(std::string src) {
  SourceManager sm;
  uint32_t f = sm.add("t.nn", std::move(src));
  auto r = lex(sm, f);
  INFO((r ? "" : sm.render(r.error())));
  REQUIRE(r.ok());
  return r.take();
}

std::string lexError(std::string src) {
  SourceManager sm;
  auto r = lex(sm, sm.add("t.nn", std::move(src)));
  REQUIRE_FALSE(r.ok());
  return fmt::format("{}:{}: {}", r.error().loc.line, r.error().loc.col, r.error().message);
}

Program parseOk(std::string src) {
  SourceManager sm;
  uint32_t f = sm.add("t.nn", std::move(src));
  auto r = parse(sm, f);
  INFO((r ? "" : sm.render(r.error())));
  REQUIRE(r.ok());
  return r.take();
}

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

// The tree as an s-expression, so structure checks read like the source.
std::string sexpr(const Expr& e) {
  std::string out;
  switch (e.kind) {
    case ExprKind::Int: return std::to_string(e.intValue);
    case ExprKind::Float: return fmt::format("{}", e.floatValue);
    case ExprKind::String: return fmt::format("\"{}\"", e.text);
    case ExprKind::Ident: return e.text;
    case ExprKind::List:
      for (const ExprPtr& x : e.elems) out += fmt::format("{}{}", out.empty() ? "" : " ", sexpr(*x));
      return fmt::format("[{}]", out);
    case ExprKind::Unary: return fmt::format("(- {})", sexpr(*e.elems[0]));
    case ExprKind::Binary:
      return fmt::format("({} {} {})", opName(e.binop), sexpr(*e.elems[0]), sexpr(*e.elems[1]));
    case ExprKind::Call:
      out = "(call " + e.text;
      for (const Arg& a : e.args) out += fmt::format(" {}{}{}", a.name, a.name.empty() ? "" : "=", sexpr(*a.value));
      return out + ")";
  }
  return "?";
}

// Parses `x = <src>` inside a model and returns the right-hand side.
std::string exprOf(const std::string& src) {
  Program p = parseOk("model m { x = " + src + " }");
  return sexpr(*p.models.at(0).body.at(0).value);
}

}  // namespace

TEST_CASE("lexer: every token kind", "[parser]") {
  auto toks = lexOk("def model train input label param buffer output for in return f32 i32 "
                    "name _x9 42 0.5 1e-3 2.5E+2 \"s\\\"\\\\\\n\\t\" ( ) [ ] { } , : ; = + - * / // % @ ..");
  std::vector<TokKind> kinds;
  for (const Token& t : toks) kinds.push_back(t.kind);
  using K = TokKind;
  CHECK(kinds == std::vector<K>{K::KwDef,   K::KwModel,    K::KwTrain,  K::KwInput,  K::KwLabel,  K::KwParam,
                                K::KwBuffer, K::KwOutput, K::KwFor,     K::KwIn,     K::KwReturn, K::KwF32,    K::KwI32,
                                K::Ident,   K::Ident,      K::Int,      K::Float,    K::Float,    K::Float,
                                K::String,  K::LParen,     K::RParen,   K::LBracket, K::RBracket, K::LBrace,
                                K::RBrace,  K::Comma,      K::Colon,    K::Semicolon, K::Assign,  K::Plus,
                                K::Minus,   K::Star,       K::Slash,    K::SlashSlash, K::Percent, K::At,
                                K::DotDot,  K::Eof});
  CHECK(toks[13].text == "name");
  CHECK(toks[14].text == "_x9");
  CHECK(toks[15].intValue == 42);
  CHECK(toks[16].floatValue == 0.5);
  CHECK(toks[17].floatValue == 1e-3);
  CHECK(toks[18].floatValue == 250.0);
  CHECK(toks[19].text == "s\"\\\n\t");
  CHECK(toks[34].text == "//");
}

TEST_CASE("lexer: locations, tabs and CRLF", "[parser]") {
  auto toks = lexOk("a\r\n\tbb # note\r\n  \"x\" c");
  REQUIRE(toks.size() == 5);
  CHECK((toks[0].loc.line == 1 && toks[0].loc.col == 1));
  CHECK((toks[1].loc.line == 2 && toks[1].loc.col == 2));  // a tab is one column
  CHECK(toks[1].length == 2);
  CHECK((toks[2].loc.line == 3 && toks[2].loc.col == 3));
  CHECK(toks[2].length == 3);
  CHECK((toks[3].loc.line == 3 && toks[3].loc.col == 7));
  CHECK((toks[4].kind == TokKind::Eof && toks[4].loc.col == 8));
}

TEST_CASE("lexer: ranges, numbers and their limits", "[parser]") {
  auto toks = lexOk("0..6");
  REQUIRE(toks.size() == 4);
  CHECK(toks[0].kind == TokKind::Int);
  CHECK(toks[1].kind == TokKind::DotDot);
  CHECK(toks[2].intValue == 6);
  CHECK(lexOk("9223372036854775807")[0].intValue == INT64_MAX);
  CHECK(lexOk("1e-400")[0].floatValue == 0.0);  // underflow is not an error
  CHECK(lexOk("1.5e3")[0].floatValue == 1500.0);
  CHECK(lexOk("1 e3")[1].kind == TokKind::Ident);
  CHECK(lexError("9223372036854775808") == "1:1: integer literal too large");
  CHECK(lexError("x = 1e999") == "1:5: floating-point literal too large");
  CHECK(lexError("x = 2.") == "1:6: expected a digit after '.' in a number (write 2.0)");
  CHECK(lexError("1e") == "1:1: invalid number '1e'");
  CHECK(lexError("0x1F") == "1:1: invalid number '0x1F'");
  CHECK(lexError("a . b") == "1:3: unexpected character '.'");
}

TEST_CASE("lexer: strings and UTF-8", "[parser]") {
  CHECK(lexOk("\"caf\xc3\xa9\"")[0].text == "caf\xc3\xa9");
  CHECK(lexOk("# \xe2\x82\xac comment\nx")[0].text == "x");
  CHECK(lexError("\"abc") == "1:1: unterminated string");
  CHECK(lexError("\"abc\\") == "1:1: unterminated string");
  CHECK(lexError("  \"a\nb\"") == "1:3: unterminated string");
  CHECK(lexError("\"a\\qb\"") == R"(1:3: unknown escape sequence '\q' in string (use \" \\ \n or \t))");
  CHECK(lexError("\"\xc0\xaf\"") == "1:2: invalid UTF-8");       // overlong '/'
  CHECK(lexError("\"\xed\xa0\x80\"") == "1:2: invalid UTF-8");   // surrogate
  CHECK(lexError("\"\xf4\x90\x80\x80\"") == "1:2: invalid UTF-8");  // past U+10FFFF
  CHECK(lexError("x\n\xf0\x9f\x98") == "2:1: invalid UTF-8");     // truncated at EOF
  CHECK(lexError("\xce\xbb") == "1:1: unexpected character U+03BB (only ASCII is allowed outside strings and comments)");
  CHECK(lexError(std::string("ab\0", 3)) == "1:3: NUL byte in source");
}

TEST_CASE("parser: precedence and associativity", "[parser]") {
  CHECK(exprOf("a + b * c") == "(+ a (* b c))");
  CHECK(exprOf("a * b + c") == "(+ (* a b) c)");
  CHECK(exprOf("a - b - c") == "(- (- a b) c)");
  CHECK(exprOf("a / b // c % d @ e") == "(@ (% (// (/ a b) c) d) e)");
  CHECK(exprOf("-a @ b") == "(@ (- a) b)");
  CHECK(exprOf("x @ W1 + b1") == "(+ (@ x W1) b1)");
  CHECK(exprOf("(a + b) * c") == "(* (+ a b) c)");
  CHECK(exprOf("- -a") == "(- (- a))");
  CHECK(exprOf("-h / 2.5 + 1e-3") == "(+ (/ (- h) 2.5) 0.001)");
  CHECK(exprOf("(batch + 1) // 2 % 3") == "(% (// (+ batch 1) 2) 3)");
  CHECK(exprOf("4*4*30") == "(* (* 4 4) 30)");
}

TEST_CASE("parser: expression locations", "[parser]") {
  Program p = parseOk("model m {\n  x = -a + f(b)\n}");
  const Expr& e = *p.models[0].body[0].value;
  CHECK((e.loc.line == 2 && e.loc.col == 10));  // the '+'
  CHECK(e.elems[0]->loc.col == 7);               // the '-'
  CHECK(e.elems[0]->elems[0]->loc.col == 8);
  CHECK(e.elems[1]->loc.col == 12);              // the callee
  CHECK(e.elems[1]->args[0].loc.col == 14);
}

TEST_CASE("parser: calls, named arguments and lists", "[parser]") {
  CHECK(exprOf("he()") == "(call he)");
  CHECK(exprOf("relu(x @ W1 + b1)") == "(call relu (+ (@ x W1) b1))");
  CHECK(exprOf("conv2d(x, filters=30, kernel=5, stride=1, pad=0,)") ==
        "(call conv2d x filters=30 kernel=5 stride=1 pad=0)");
  CHECK(exprOf("adam(lr = 0.001)") == "(call adam lr=0.001)");
  CHECK(exprOf("f(g(x), n = -1)") == "(call f (call g x) n=(- 1))");
  CHECK(exprOf("[[0.1, 0.3], [0.2, 0.4],]") == "[[0.1 0.3] [0.2 0.4]]");
  CHECK(exprOf("[]") == "[]");
  CHECK(exprOf("idx(\"/data\")") == "(call idx \"/data\")");
  Program p = parseOk("model m { y = conv2d(x, filters=30) }");
  const Arg& named = p.models[0].body[0].value->args[1];
  CHECK(named.name == "filters");
  CHECK(named.loc.col == 25);
}

TEST_CASE("parser: statements of a model", "[parser]") {
  Program p = parseOk(R"(# comment
model mnist_mlp(batch = 100) {
    input  x: f32[batch, 784]
    input  e: f32[2] = [2.0, 3.0]
    label  t: i32[batch]
    param  W1: f32[784, 40] = he()
    param  s: f32[] = 1.0
    h1     = relu(x @ W1)
    output probs = softmax(h1)
    output h1
}
)");
  REQUIRE(p.models.size() == 1);
  const FuncDecl& m = p.models[0];
  CHECK(m.name == "mnist_mlp");
  CHECK((m.loc.line == 2 && m.loc.col == 7));
  REQUIRE(m.params.size() == 1);
  CHECK(m.params[0].name == "batch");
  CHECK(sexpr(*m.params[0].defaultValue) == "100");
  REQUIRE(m.body.size() == 8);
  const Stmt& in = m.body[0];
  CHECK(in.kind == StmtKind::Input);
  CHECK(in.name == "x");
  CHECK((in.loc.col == 5 && in.nameLoc.col == 12));
  CHECK(in.type.dtype == ScalarType::F32);
  CHECK(in.type.loc.col == 15);
  REQUIRE(in.type.dims.size() == 2);
  CHECK(sexpr(*in.type.dims[1]) == "784");
  CHECK(!in.value);
  CHECK(sexpr(*m.body[1].value) == "[2 3]");  // an input's example value
  CHECK((m.body[2].kind == StmtKind::Label && m.body[2].type.dtype == ScalarType::I32));
  CHECK(m.body[3].kind == StmtKind::Param);
  CHECK(sexpr(*m.body[3].value) == "(call he)");
  CHECK(m.body[4].type.dims.empty());  // f32[] is a scalar
  const Stmt& assign = m.body[5];
  CHECK(assign.kind == StmtKind::Assign);
  CHECK((assign.loc.col == 5 && assign.nameLoc.col == 5));
  CHECK((m.body[6].kind == StmtKind::Output && m.body[6].value));
  CHECK((m.body[7].kind == StmtKind::Output && m.body[7].name == "h1" && !m.body[7].value));
}

TEST_CASE("parser: for loops, defs and return", "[parser]") {
  Program p = parseOk(R"(
def block(x, n) { return relu(dense(x, n)) }
model multilayer {
    h = x
    for i in 0..6 { h = block(h, 100); for j in i..2*i { } }
}
)");
  REQUIRE(p.defs.size() == 1);
  const FuncDecl& d = p.defs[0];
  CHECK(d.name == "block");
  REQUIRE(d.params.size() == 2);
  CHECK((d.params[1].name == "n" && !d.params[1].defaultValue));
  REQUIRE(d.body.size() == 1);
  CHECK(d.body[0].kind == StmtKind::Return);
  CHECK(sexpr(*d.body[0].value) == "(call relu (call dense x n))");
  const FuncDecl& m = p.models.at(0);
  CHECK(m.params.empty());
  const Stmt& loop = m.body.at(1);
  CHECK(loop.kind == StmtKind::For);
  CHECK((loop.name == "i" && loop.nameLoc.col == 9));
  CHECK((sexpr(*loop.lo) == "0" && sexpr(*loop.hi) == "6"));
  REQUIRE(loop.body.size() == 2);
  CHECK(loop.body[1].kind == StmtKind::For);
  CHECK(sexpr(*loop.body[1].hi) == "(* 2 i)");
}

TEST_CASE("parser: train blocks", "[parser]") {
  Program p = parseOk(R"(train mnist_mlp {
    data      = idx("/usr/share/datasets/fashion-mnist")
    optimizer = adam(lr = 0.001); epochs = 5
    seed      = 42
})");
  REQUIRE(p.trains.size() == 1);
  const TrainDecl& t = p.trains[0];
  CHECK(t.model == "mnist_mlp");
  CHECK((t.loc.col == 1 && t.modelLoc.col == 7));
  REQUIRE(t.entries.size() == 4);
  CHECK(t.entries[0].key == "data");
  CHECK(sexpr(*t.entries[0].value) == "(call idx \"/usr/share/datasets/fashion-mnist\")");
  CHECK((t.entries[2].key == "epochs" && t.entries[2].loc.line == 3));
  CHECK(sexpr(*t.entries[3].value) == "42");
}

TEST_CASE("parser: empty input, semicolons and CRLF", "[parser]") {
  Program empty = parseOk("");
  CHECK((empty.defs.empty() && empty.models.empty() && empty.trains.empty()));
  CHECK(parseOk("  # only a comment\n\n").models.empty());
  Program p = parseOk("model a {};\r\nmodel b(n) {\r\n  x = 1;;\r\n  y = 2\r\n}\r\n");
  REQUIRE(p.models.size() == 2);
  CHECK(p.models[1].body.size() == 2);
  CHECK((p.models[1].body[1].loc.line == 4 && p.models[1].body[1].loc.col == 3));
}

TEST_CASE("parser: nesting up to the limit is accepted", "[parser]") {
  int parens = kMaxNestingDepth - 1;  // the model body is one level
  Program p = parseOk("model m { x = " + std::string(parens, '(') + "1" + std::string(parens, ')') + " }");
  CHECK(sexpr(*p.models[0].body[0].value) == "1");
  std::string sum = "a";
  for (int i = 0; i < 999; ++i) sum += " + a";
  CHECK(parseOk("model m { x = " + sum + " }").models.size() == 1);
}

TEST_CASE("parser: every example program parses", "[parser]") {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(NNC_SOURCE_DIR "/examples")) {
    if (entry.path().extension() != ".nn") continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    INFO(entry.path().string());
    parseOk(text.str());
    ++count;
  }
  CHECK(count > 0);
}
