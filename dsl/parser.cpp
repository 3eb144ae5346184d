// Recursive descent over tokens pulled one at a time from the lexer. Every
// recursion (parens, brackets, calls, blocks, unary minus, `**`) passes a depth
// guard, so hostile nesting ends in a diagnostic instead of a stack overflow.
#include "dsl/parser.h"

#include <algorithm>
#include <optional>

#include "dsl/lexer.h"

namespace nnc {
namespace {
using namespace ast;

// Parens add no tree nodes and operator chains add one per operator, so the
// nesting limit does not bound the tree. The compiler (and ~Expr) recurse
// over it, so its height gets a limit of its own.
constexpr int kMaxExprHeight = 1000;

struct Parsed {
  ExprPtr e;
  int height = 1;
};

class DepthGuard {
 public:
  explicit DepthGuard(int& depth) : depth_(depth) {}
  ~DepthGuard() { depth_ -= entered_; }
  DepthGuard(const DepthGuard&) = delete;
  DepthGuard& operator=(const DepthGuard&) = delete;
  Status enter(SourceLoc loc) {
    ++depth_, ++entered_;
    if (depth_ > kMaxNestingDepth) return error(loc, "nesting deeper than {} levels", kMaxNestingDepth);
    return ok();
  }

 private:
  int& depth_;
  int entered_ = 0;
};

ExprPtr node(ExprKind kind, SourceLoc loc) {
  auto e = std::make_unique<Expr>();
  e->kind = kind;
  e->loc = loc;
  return e;
}

Status fits(int height, SourceLoc loc) {
  if (height > kMaxExprHeight) return error(loc, "expression nested deeper than {} levels", kMaxExprHeight);
  return ok();
}

std::optional<BinOp> binOp(TokKind k, bool additive) {
  if (additive) {
    if (k == TokKind::Plus) return BinOp::Add;
    if (k == TokKind::Minus) return BinOp::Sub;
    return std::nullopt;
  }
  switch (k) {
    case TokKind::Star: return BinOp::Mul;
    case TokKind::Slash: return BinOp::Div;
    case TokKind::SlashSlash: return BinOp::FloorDiv;
    case TokKind::Percent: return BinOp::Mod;
    case TokKind::At: return BinOp::MatMul;
    default: return std::nullopt;
  }
}

class Parser {
 public:
  Parser(const SourceManager& sm, uint32_t file) : lexer_(sm, file), tok_(lexer_.next()) {}
  Expected<Program> program();

 private:
  const Token& peek() {
    if (!ahead_) ahead_ = lexer_.next();
    return *ahead_;
  }
  void advance() {
    prev_ = std::move(tok_);
    tok_ = ahead_ ? std::move(*ahead_) : lexer_.next();
    ahead_.reset();
  }
  bool at(TokKind k) const { return tok_.kind == k; }
  bool accept(TokKind k) {
    if (!at(k)) return false;
    advance();
    return true;
  }
  bool atDeclStart() const { return at(TokKind::KwDef) || at(TokKind::KwModel) || at(TokKind::KwTrain); }
  Diagnostic expected(std::string_view what);
  Diagnostic unexpected(std::string_view what);
  Diagnostic keywordAsName() const {
    return error(tok_.loc, "'{}' is a keyword and cannot be used as a name", tok_.text);
  }
  Expected<Token> name(std::string_view what);

  Expected<FuncDecl> func(bool isModel);
  Status params(FuncDecl& f, const std::string& owner);
  Expected<TrainDecl> train();
  Expected<std::vector<Stmt>> block(const std::string& owner);
  Expected<Stmt> stmt();
  Expected<Stmt> decl(StmtKind kind);
  Expected<Stmt> forLoop();
  Expected<TypeExpr> type(const std::string& name);
  Stmt startStmt(StmtKind kind) const {
    Stmt s{};
    s.kind = kind;
    s.loc = tok_.loc;
    return s;
  }

  Expected<Parsed> expr() { return binary(true); }
  Expected<Parsed> binary(bool additive);
  Expected<Parsed> unary();
  Expected<Parsed> power();
  Expected<Parsed> primary();
  Expected<Parsed> call(ExprPtr callee);
  Expected<Parsed> list();

  Lexer lexer_;
  Token tok_, prev_;
  std::optional<Token> ahead_;
  int depth_ = 0;
};

// A missing token belongs right after the previous one: when the next token
// is on a later line, pointing at it would show the wrong line.
Diagnostic Parser::expected(std::string_view what) {
  if (at(TokKind::Error)) return lexer_.error();
  SourceLoc loc = tok_.loc;
  if (prev_.loc.valid() && loc.line > prev_.loc.line)
    loc = SourceLoc{prev_.loc.file, prev_.loc.line, prev_.loc.col + prev_.length};
  return error(loc, "{}, found {}", what, describe(tok_));
}

Diagnostic Parser::unexpected(std::string_view what) {
  if (at(TokKind::Error)) return lexer_.error();
  return error(tok_.loc, "{}, found {}", what, describe(tok_));
}

Expected<Token> Parser::name(std::string_view what) {
  if (isKeyword(tok_.kind)) return keywordAsName();
  if (!at(TokKind::Ident)) return expected(what);
  advance();
  return prev_;
}

Expected<Program> Parser::program() {
  Program p;
  for (;;) {
    switch (tok_.kind) {
      case TokKind::Eof: return p;
      case TokKind::Semicolon: advance(); break;
      case TokKind::KwDef: {
        NNC_TRY(FuncDecl f, func(false));
        p.defs.push_back(std::move(f));
        break;
      }
      case TokKind::KwModel: {
        NNC_TRY(FuncDecl f, func(true));
        p.models.push_back(std::move(f));
        break;
      }
      case TokKind::KwTrain: {
        NNC_TRY(TrainDecl t, train());
        p.trains.push_back(std::move(t));
        break;
      }
      default: return unexpected("expected 'def', 'model' or 'train'");
    }
  }
}

Expected<FuncDecl> Parser::func(bool isModel) {
  std::string kw = tok_.text;
  advance();
  NNC_TRY(Token n, name(fmt::format("expected a name after '{}'", kw)));
  FuncDecl f;
  f.name = n.text;
  f.loc = n.loc;
  std::string owner = fmt::format("{} '{}'", kw, clipped(f.name));
  if (at(TokKind::LParen)) {
    NNC_CHECK(params(f, owner));
  } else if (!isModel) {
    return expected(fmt::format("expected '(' and a parameter list after '{}'", clipped(f.name)));
  } else if (!at(TokKind::LBrace)) {
    return expected(fmt::format("expected '(' or '{{' after '{}'", clipped(f.name)));
  }
  NNC_TRY(f.body, block(owner));
  return f;
}

Status Parser::params(FuncDecl& f, const std::string& owner) {
  advance();
  if (accept(TokKind::RParen)) return ok();
  for (;;) {
    NNC_TRY(Token n, name("expected a parameter name"));
    ParamDecl d;
    d.name = n.text;
    d.loc = n.loc;
    if (accept(TokKind::Assign)) {
      NNC_TRY(Parsed v, expr());
      d.defaultValue = std::move(v.e);
    }
    f.params.push_back(std::move(d));
    if (accept(TokKind::RParen)) return ok();
    if (!accept(TokKind::Comma)) return expected(fmt::format("expected ')' to close the parameters of {}", owner));
  }
}

Expected<TrainDecl> Parser::train() {
  TrainDecl t;
  t.loc = tok_.loc;
  advance();
  NNC_TRY(Token m, name("expected a model name after 'train'"));
  t.model = m.text;
  t.modelLoc = m.loc;
  std::string owner = fmt::format("train '{}'", clipped(t.model));
  if (!at(TokKind::LBrace)) return expected(fmt::format("expected '{{' to start the settings of {}", owner));
  SourceLoc open = tok_.loc;
  advance();
  while (!accept(TokKind::RBrace)) {
    if (accept(TokKind::Semicolon)) continue;
    if (at(TokKind::Eof) || atDeclStart())
      return expected(fmt::format("expected '}}' to close the settings of {}", owner)).note(open, "to match this '{'");
    if (isKeyword(tok_.kind)) return keywordAsName();
    if (!at(TokKind::Ident)) return unexpected(fmt::format("expected a setting (NAME = value) or '}}' in {}", owner));
    TrainEntry e;
    e.key = tok_.text;
    e.loc = tok_.loc;
    advance();
    if (!accept(TokKind::Assign)) return expected(fmt::format("expected '=' after '{}'", clipped(e.key)));
    NNC_TRY(Parsed v, expr());
    e.value = std::move(v.e);
    t.entries.push_back(std::move(e));
  }
  return t;
}

Expected<std::vector<Stmt>> Parser::block(const std::string& owner) {
  if (!at(TokKind::LBrace)) return expected(fmt::format("expected '{{' to start the body of {}", owner));
  DepthGuard depth(depth_);
  NNC_CHECK(depth.enter(tok_.loc));
  SourceLoc open = tok_.loc;
  advance();
  std::vector<Stmt> body;
  while (!accept(TokKind::RBrace)) {
    if (accept(TokKind::Semicolon)) continue;
    // A def/model/train here most likely means this block was never closed.
    if (at(TokKind::Eof) || atDeclStart())
      return expected(fmt::format("expected '}}' to close the body of {}", owner)).note(open, "to match this '{'");
    NNC_TRY(Stmt s, stmt());
    body.push_back(std::move(s));
  }
  return body;
}

Expected<Stmt> Parser::stmt() {
  switch (tok_.kind) {
    case TokKind::KwInput: return decl(StmtKind::Input);
    case TokKind::KwLabel: return decl(StmtKind::Label);
    case TokKind::KwParam: return decl(StmtKind::Param);
    case TokKind::KwBuffer: {
      NNC_TRY(Stmt s, decl(StmtKind::Param));
      s.trainable = false;
      return s;
    }
    case TokKind::KwFor: return forLoop();
    case TokKind::KwOutput: {
      Stmt s = startStmt(StmtKind::Output);
      advance();
      NNC_TRY(Token n, name("expected a name after 'output'"));
      s.name = n.text;
      s.nameLoc = n.loc;
      if (accept(TokKind::Assign)) {
        NNC_TRY(Parsed v, expr());
        s.value = std::move(v.e);
      }
      return s;
    }
    case TokKind::KwReturn: {
      Stmt s = startStmt(StmtKind::Return);
      advance();
      NNC_TRY(Parsed v, expr());
      s.value = std::move(v.e);
      return s;
    }
    case TokKind::Ident: {
      Stmt s = startStmt(StmtKind::Assign);
      s.name = tok_.text;
      s.nameLoc = tok_.loc;
      advance();
      if (!accept(TokKind::Assign)) return expected(fmt::format("expected '=' after '{}'", clipped(s.name)));
      NNC_TRY(Parsed v, expr());
      s.value = std::move(v.e);
      return s;
    }
    default:
      if (isKeyword(tok_.kind) && peek().kind == TokKind::Assign) return keywordAsName();
      return unexpected("expected a statement (input, label, param, buffer, output, for, return or NAME = ...)");
  }
}

Expected<Stmt> Parser::decl(StmtKind kind) {
  Stmt s = startStmt(kind);
  std::string kw = tok_.text;
  advance();
  NNC_TRY(Token n, name(fmt::format("expected a name after '{}'", kw)));
  s.name = n.text;
  s.nameLoc = n.loc;
  if (!accept(TokKind::Colon)) return expected(fmt::format("expected ':' and a type after '{}'", clipped(s.name)));
  NNC_TRY(s.type, type(s.name));
  // An input may carry an example value. A label may too, syntactically, so
  // that the elaborator can say why it is not allowed.
  if (kind == StmtKind::Param && !at(TokKind::Assign))
    return expected(fmt::format("expected '=' and an initializer after the type of '{}'", clipped(s.name)));
  if (accept(TokKind::Assign)) {
    NNC_TRY(Parsed v, expr());
    s.value = std::move(v.e);
  }
  return s;
}

Expected<TypeExpr> Parser::type(const std::string& name) {
  if (!at(TokKind::KwF32) && !at(TokKind::KwI32)) return expected("expected a type (f32[...] or i32[...])");
  TypeExpr t;
  t.loc = tok_.loc;
  t.dtype = at(TokKind::KwF32) ? ScalarType::F32 : ScalarType::I32;
  std::string dtype = tok_.text;
  advance();
  if (!at(TokKind::LBracket)) return expected(fmt::format("expected '[' and a shape after '{}'", dtype));
  DepthGuard depth(depth_);
  NNC_CHECK(depth.enter(tok_.loc));
  advance();
  if (accept(TokKind::RBracket)) return t;
  for (;;) {
    NNC_TRY(Parsed d, expr());
    t.dims.push_back(std::move(d.e));
    if (accept(TokKind::RBracket)) return t;
    if (!accept(TokKind::Comma)) return expected(fmt::format("expected ']' to close the shape of '{}'", clipped(name)));
  }
}

Expected<Stmt> Parser::forLoop() {
  Stmt s = startStmt(StmtKind::For);
  advance();
  NNC_TRY(Token v, name("expected a loop variable after 'for'"));
  s.name = v.text;
  s.nameLoc = v.loc;
  if (!accept(TokKind::KwIn)) return expected(fmt::format("expected 'in' after '{}'", clipped(s.name)));
  NNC_TRY(Parsed lo, expr());
  if (!accept(TokKind::DotDot)) return expected("expected '..' between the bounds of the range");
  NNC_TRY(Parsed hi, expr());
  s.lo = std::move(lo.e);
  s.hi = std::move(hi.e);
  NNC_TRY(s.body, block(fmt::format("the loop over '{}'", clipped(s.name))));
  return s;
}

// Both levels are left-associative loops, so long chains use no stack.
Expected<Parsed> Parser::binary(bool additive) {
  NNC_TRY(Parsed lhs, additive ? binary(false) : unary());
  while (std::optional<BinOp> op = binOp(tok_.kind, additive)) {
    ExprPtr e = node(ExprKind::Binary, tok_.loc);
    e->binop = *op;
    advance();
    NNC_TRY(Parsed rhs, additive ? binary(false) : unary());
    int height = std::max(lhs.height, rhs.height) + 1;
    NNC_CHECK(fits(height, e->loc));
    e->elems.push_back(std::move(lhs.e));
    e->elems.push_back(std::move(rhs.e));
    lhs = Parsed{std::move(e), height};
  }
  return lhs;
}

Expected<Parsed> Parser::unary() {
  if (!at(TokKind::Minus)) return power();
  DepthGuard depth(depth_);
  NNC_CHECK(depth.enter(tok_.loc));
  ExprPtr e = node(ExprKind::Unary, tok_.loc);
  advance();
  NNC_TRY(Parsed x, unary());
  int height = x.height + 1;
  NNC_CHECK(fits(height, e->loc));
  e->elems.push_back(std::move(x.e));
  return Parsed{std::move(e), height};
}

// As Python: `**` binds tighter than a unary minus on its left (-2 ** 2 is
// -(2 ** 2)) and is right-associative, its right operand a unary (2 ** -1,
// 2 ** 3 ** 2 = 2 ** 9).
Expected<Parsed> Parser::power() {
  NNC_TRY(Parsed base, primary());
  if (!at(TokKind::StarStar)) return base;
  DepthGuard depth(depth_);
  NNC_CHECK(depth.enter(tok_.loc));
  ExprPtr e = node(ExprKind::Binary, tok_.loc);
  e->binop = BinOp::Pow;
  advance();
  NNC_TRY(Parsed exponent, unary());
  int height = std::max(base.height, exponent.height) + 1;
  NNC_CHECK(fits(height, e->loc));
  e->elems.push_back(std::move(base.e));
  e->elems.push_back(std::move(exponent.e));
  return Parsed{std::move(e), height};
}

Expected<Parsed> Parser::primary() {
  ExprPtr e;
  switch (tok_.kind) {
    case TokKind::Int:
      e = node(ExprKind::Int, tok_.loc);
      e->intValue = tok_.intValue;
      break;
    case TokKind::Float:
      e = node(ExprKind::Float, tok_.loc);
      e->floatValue = tok_.floatValue;
      break;
    case TokKind::String:
      e = node(ExprKind::String, tok_.loc);
      e->text = tok_.text;
      break;
    case TokKind::Ident:
      e = node(ExprKind::Ident, tok_.loc);
      e->text = tok_.text;
      advance();
      if (at(TokKind::LParen)) return call(std::move(e));
      return Parsed{std::move(e)};
    case TokKind::LParen: {
      DepthGuard depth(depth_);
      NNC_CHECK(depth.enter(tok_.loc));
      advance();
      NNC_TRY(Parsed inner, expr());
      if (!accept(TokKind::RParen)) return expected("expected ')' to close '('");
      return inner;
    }
    case TokKind::LBracket: return list();
    default: return expected(fmt::format("expected an expression after '{}'", clipped(prev_.text)));
  }
  advance();
  return Parsed{std::move(e)};
}

Expected<Parsed> Parser::call(ExprPtr e) {
  DepthGuard depth(depth_);
  NNC_CHECK(depth.enter(tok_.loc));
  advance();
  e->kind = ExprKind::Call;
  int height = 1;
  while (!accept(TokKind::RParen)) {
    Arg a;
    a.loc = tok_.loc;
    // An argument name binds nothing, so a keyword may be one: csv(..., label = "y").
    if ((at(TokKind::Ident) || isKeyword(tok_.kind)) && peek().kind == TokKind::Assign) {
      a.name = tok_.text;
      advance();
      advance();
    }
    NNC_TRY(Parsed v, expr());
    height = std::max(height, v.height + 1);
    a.value = std::move(v.e);
    e->args.push_back(std::move(a));
    if (!accept(TokKind::Comma) && !at(TokKind::RParen))
      return expected(fmt::format("expected ')' to close the call to '{}'", clipped(e->text)));
  }
  NNC_CHECK(fits(height, e->loc));
  return Parsed{std::move(e), height};
}

Expected<Parsed> Parser::list() {
  ExprPtr e = node(ExprKind::List, tok_.loc);
  DepthGuard depth(depth_);
  NNC_CHECK(depth.enter(tok_.loc));
  advance();
  int height = 1;
  while (!accept(TokKind::RBracket)) {
    NNC_TRY(Parsed v, expr());
    height = std::max(height, v.height + 1);
    e->elems.push_back(std::move(v.e));
    if (!accept(TokKind::Comma) && !at(TokKind::RBracket)) return expected("expected ']' to close the list");
  }
  NNC_CHECK(fits(height, e->loc));
  return Parsed{std::move(e), height};
}

}  // namespace

Expected<ast::Program> parse(const SourceManager& sm, uint32_t file) {
  return Parser(sm, file).program();
}

}  // namespace nnc
