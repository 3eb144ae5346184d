// The syntax tree of a .nn file, as the parser produces it. No meaning is
// attached here: names, shapes and calls are resolved by compiler/elaborate.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/diagnostics.h"

namespace nnc::ast {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

enum class ExprKind { Int, Float, String, Ident, List, Unary, Binary, Call };
enum class BinOp { Add, Sub, Mul, Div, FloorDiv, Mod, MatMul, Pow };

struct Arg {
  std::string name;  // empty for a positional argument
  SourceLoc loc;     // of the name, or of the value when positional
  ExprPtr value;
};

struct Expr {
  ExprKind kind;
  SourceLoc loc;              // first token; for Binary, the operator
  int64_t intValue = 0;       // Int
  double floatValue = 0;      // Float
  std::string text;           // Ident name, String contents, Call callee
  BinOp binop = BinOp::Add;   // Binary
  std::vector<ExprPtr> elems; // List items; Unary: {operand}; Binary: {lhs, rhs}
  std::vector<Arg> args;      // Call
};

enum class ScalarType { F32, I32 };

// f32[batch, 4*4*30]
struct TypeExpr {
  SourceLoc loc;
  ScalarType dtype = ScalarType::F32;
  std::vector<ExprPtr> dims;
};

enum class StmtKind {
  Input,   // input x: f32[...]
  Label,   // label t: i32[...]
  Param,   // param W: f32[...] = init          (value = init expression); buffer W: ... likewise
  Output,  // output probs = expr   |  output probs   (value null: existing name)
  Assign,  // name = expr
  For,     // for var in lo..hi { body }
  Return,  // return expr
};

struct Stmt {
  StmtKind kind;
  SourceLoc loc;      // the keyword, or the name of an assignment
  std::string name;   // declared / assigned name; loop variable for For
  SourceLoc nameLoc;
  TypeExpr type;      // Input, Label, Param
  ExprPtr value;      // Param init, Output/Assign rhs, Return value
  ExprPtr lo, hi;     // For range, hi exclusive
  bool trainable = true;  // Param: false for a `buffer` (state the optimizer leaves alone)
  std::vector<Stmt> body;  // For
};

// A compile-time parameter of a def or model: `n` or `batch = 100`.
struct ParamDecl {
  std::string name;
  SourceLoc loc;
  ExprPtr defaultValue;  // may be null
};

struct FuncDecl {  // def NAME(params) { body }   and   model NAME(params) { body }
  std::string name;
  SourceLoc loc;
  std::vector<ParamDecl> params;
  std::vector<Stmt> body;
};

struct TrainEntry {
  std::string key;
  SourceLoc loc;
  ExprPtr value;
};

struct TrainDecl {  // train MODEL { key = expr ... }
  std::string model;
  SourceLoc loc, modelLoc;
  std::vector<TrainEntry> entries;
};

struct Program {
  std::vector<FuncDecl> defs;
  std::vector<FuncDecl> models;
  std::vector<TrainDecl> trains;
};

}  // namespace nnc::ast
