// Golden tests of parse errors as the user sees them: location, message,
// source line and caret.
#include <catch2/catch.hpp>

#include "dsl/parser.h"

using namespace nnc;
using namespace std::string_literals;

namespace {

std::string render(std::string src) {
  SourceManager sm;
  auto r = parse(sm, sm.add("m.nn", std::move(src)));
  return r ? "OK" : sm.render(r.error());
}

std::string where(std::string src) {
  SourceManager sm;
  auto r = parse(sm, sm.add("m.nn", std::move(src)));
  if (r) return "OK";
  return fmt::format("{}:{}: {}", r.error().loc.line, r.error().loc.col, r.error().message);
}

}  // namespace

TEST_CASE("diagnostics: a missing ')' points after the last token", "[diagnostics]") {
  CHECK(render("model m {\n  x = 1\n    h = relu(x @ W\n}\n") ==
        "m.nn:3:19: error: expected ')' to close the call to 'relu', found '}'\n"
        "      h = relu(x @ W\n"
        "                    ^\n");
  CHECK(render("model m { x = (a + b }") ==
        "m.nn:1:22: error: expected ')' to close '(', found '}'\n"
        "  model m { x = (a + b }\n"
        "                       ^\n");
}

TEST_CASE("diagnostics: missing type", "[diagnostics]") {
  CHECK(render("model m {\n    input x f32[3]\n}\n") ==
        "m.nn:2:13: error: expected ':' and a type after 'x', found keyword 'f32'\n"
        "      input x f32[3]\n"
        "              ^\n");
  CHECK(render("model m {\n    input x:\n}\n") ==
        "m.nn:2:13: error: expected a type (f32[...] or i32[...]), found '}'\n"
        "      input x:\n"
        "              ^\n");
}

TEST_CASE("diagnostics: bad tokens", "[diagnostics]") {
  CHECK(render("model m {\n    @ x\n}\n") ==
        "m.nn:2:5: error: expected a statement (input, label, param, buffer, output, for, return or NAME = ...), "
        "found '@'\n"
        "      @ x\n"
        "      ^\n");
  CHECK(render("model m { x = $ }") ==
        "m.nn:1:15: error: unexpected character '$'\n"
        "  model m { x = $ }\n"
        "                ^\n");
  CHECK(render("foo") ==
        "m.nn:1:1: error: expected 'def', 'model' or 'train', found identifier 'foo'\n"
        "  foo\n"
        "  ^\n");
  CHECK(render("train m {\n  epochs 5\n}\n") ==
        "m.nn:2:10: error: expected '=' after 'epochs', found number 5\n"
        "    epochs 5\n"
        "           ^\n");
}

TEST_CASE("diagnostics: unterminated string", "[diagnostics]") {
  CHECK(render("model m {\n    s = \"abc\n}\n") ==
        "m.nn:2:9: error: unterminated string\n"
        "      s = \"abc\n"
        "          ^\n");
}

TEST_CASE("diagnostics: keywords are not names", "[diagnostics]") {
  CHECK(render("model m {\n    input model: f32[1]\n}\n") ==
        "m.nn:2:11: error: 'model' is a keyword and cannot be used as a name\n"
        "      input model: f32[1]\n"
        "            ^\n");
  CHECK(render("model m {\n    in = 3\n}\n") ==
        "m.nn:2:5: error: 'in' is a keyword and cannot be used as a name\n"
        "      in = 3\n"
        "      ^\n");
  // A call's argument name binds nothing: a keyword parses there.
  CHECK(render("model m {\n    x = f(label = 1, in = 2)\n}\n") == "OK");
}

TEST_CASE("diagnostics: deep nesting is an error, not a crash", "[diagnostics]") {
  std::string line = "  x = " + std::string(10000, '(');
  CHECK(render("model m {\n" + line + "\n}\n") ==
        "m.nn:2:206: error: nesting deeper than 200 levels\n"
        "  " + line + "\n" +
        "  " + std::string(205, ' ') + "^\n");
  CHECK(where("model m { x = " + std::string(10000, '[') + " }") == "1:214: nesting deeper than 200 levels");
  CHECK(where("model m { x = " + std::string(10000, '-') + "a }") == "1:214: nesting deeper than 200 levels");
  std::string calls;
  for (int i = 0; i < 10000; ++i) calls += "f(";
  CHECK(where("model m { x = " + calls + " }") == "1:414: nesting deeper than 200 levels");
  std::string loops;
  for (int i = 0; i < 10000; ++i) loops += "for i in 0..1 {";
  CHECK(where("model m {" + loops) == "1:3009: nesting deeper than 200 levels");
  std::string sum = "a";
  for (int i = 0; i < 100000; ++i) sum += " + a";
  CHECK(where("model m { x = " + sum + " }") == "1:4013: expression nested deeper than 1000 levels");
}

TEST_CASE("diagnostics: NUL bytes and invalid UTF-8", "[diagnostics]") {
  CHECK(render("model m {\n    x = 1\0\n}\n"s) ==
        "m.nn:2:10: error: NUL byte in source\n"
        "      x = 1 \n"
        "           ^\n");
  CHECK(render("# caf\xc3\xa9 \xff\nmodel m {}\n") ==
        "m.nn:1:9: error: invalid UTF-8\n"
        "  # caf\xc3\xa9 \xff\n"
        "          ^\n");
  CHECK(render("model m { x = \"\xe2\x82\" }") ==
        "m.nn:1:16: error: invalid UTF-8\n"
        "  model m { x = \"\xe2\x82\" }\n"
        "                 ^\n");
  CHECK(render("model m { caf\xc3\xa9 = 1 }") ==
        "m.nn:1:14: error: unexpected character U+00E9 (only ASCII is allowed outside strings and comments)\n"
        "  model m { caf\xc3\xa9 = 1 }\n"
        "               ^\n");
}

TEST_CASE("diagnostics: a UTF-8 byte-order mark opens a file, and only there", "[diagnostics]") {
  const std::string bom = "\xEF\xBB\xBF";
  CHECK(render(bom + "model m { input x: f32[2] output y = relu(x) }\n") == "OK");
  CHECK(render(bom + "# saved by Notepad\r\nmodel m {}\r\n") == "OK");
  // Columns count from the first character after it, and the line shown
  // leaves it out, so the caret sits under the culprit.
  CHECK(render(bom + "model m { x = (a + b }") ==
        "m.nn:1:22: error: expected ')' to close '(', found '}'\n"
        "  model m { x = (a + b }\n"
        "                       ^\n");
  CHECK(render(bom + "model m {\n  x = 1 $\n}\n").find("m.nn:2:9: error: ") == 0);
  // Anywhere else it is a character like any other outside ASCII.
  CHECK(render("model m { x = 1" + bom + " }") ==
        "m.nn:1:16: error: unexpected character U+FEFF (only ASCII is allowed outside strings and comments)\n"
        "  model m { x = 1" + bom + " }\n"
        "                 ^\n");
  CHECK(where("\n" + bom + "model m {}") == "2:1: unexpected character U+FEFF (only ASCII is allowed outside strings and comments)");
  CHECK(where(bom + bom + "model m {}") == "1:1: unexpected character U+FEFF (only ASCII is allowed outside strings and comments)");
}

TEST_CASE("diagnostics: number literals out of range", "[diagnostics]") {
  CHECK(render("model m { x = 99999999999999999999 }") ==
        "m.nn:1:15: error: integer literal too large\n"
        "  model m { x = 99999999999999999999 }\n"
        "                ^\n");
  CHECK(where("model m { x = 1e400 }") == "1:15: floating-point literal too large");
}

TEST_CASE("diagnostics: unclosed blocks point at the end", "[diagnostics]") {
  CHECK(render("model m {\n  x = 1\n") ==
        "m.nn:2:8: error: expected '}' to close the body of model 'm', found end of file\n"
        "    x = 1\n"
        "         ^\n"
        "m.nn:1:9: note: to match this '{'\n"
        "  model m {\n"
        "          ^\n");
  CHECK(render("model m { x = 1 }\nmodel n {\n  y = 2\ndef f() {}\n") ==
        "m.nn:3:8: error: expected '}' to close the body of model 'n', found keyword 'def'\n"
        "    y = 2\n"
        "         ^\n"
        "m.nn:2:9: note: to match this '{'\n"
        "  model n {\n"
        "          ^\n");
}

TEST_CASE("diagnostics: empty input is an empty program", "[diagnostics]") {
  CHECK(render("") == "OK");
  CHECK(render("\n  # nothing here\n\n") == "OK");
}

TEST_CASE("diagnostics: CRLF and tabs", "[diagnostics]") {
  CHECK(render("model m {\r\n  x = (1 + \r\n}\r\n") ==
        "m.nn:2:11: error: expected an expression after '+', found '}'\n"
        "    x = (1 + \n"
        "            ^\n");
  CHECK(render("model m {\n\tx = y z\n}\n") ==
        "m.nn:2:9: error: expected '=' after 'z', found '}'\n"
        "  \tx = y z\n"
        "  \t       ^\n");
}

TEST_CASE("diagnostics: oversized source", "[diagnostics]") {
  std::string big(kMaxSourceBytes + 1, ' ');
  CHECK(where(big) == fmt::format("1:1: source is too large ({} bytes; the limit is {} bytes)", kMaxSourceBytes + 1,
                                  kMaxSourceBytes));
}

// Internal errors (a bug in nnc) against user errors (a mistake in the model).

TEST_CASE("diagnostics: an internal error names nnc and the stage, never the model's line", "[diagnostics]") {
  SourceManager sm;
  const uint32_t file = sm.add("m.nn", "model m {\n  y = relu(x)\n}\n");
  Diagnostic d = internalError("in pass fuse-epilogue at %12", "value %{} lost its producer", 7);
  CHECK(d.internal());
  CHECK(d.message == "in pass fuse-epilogue at %12: value %7 lost its producer");
  const std::string want =
      "internal error in nnc (this is a bug in nnc, not in your model; please report it): "
      "in pass fuse-epilogue at %12: value %7 lost its producer\n";
  CHECK(sm.render(d) == want);
  // Lowering and the interpreter give a failing node's location to a
  // diagnostic that has none; an internal one still shows no file:line:col or caret.
  d.loc = SourceLoc{file, 2, 7};
  CHECK(sm.render(d) == want);
  // Its notes lose their locations too.
  const Diagnostic noted = std::move(d).note(SourceLoc{file, 2, 3}, "the pass was rewriting relu");
  CHECK(sm.render(noted) == want + "note: the pass was rewriting relu\n");
}

namespace {

Status checkArity(size_t operands) {
  NNC_INTERNAL_ASSERT(operands == 2, fmt::format("in lower, kernel of %{}", 3), "add has {} operands", operands);
  return ok();
}

}  // namespace

TEST_CASE("diagnostics: NNC_INTERNAL_ASSERT returns an internal error only when its condition fails", "[diagnostics]") {
  CHECK(checkArity(2).ok());
  const Status st = checkArity(3);
  REQUIRE_FALSE(st);
  CHECK(st.error().internal());
  CHECK(SourceManager().render(st.error()) ==
        "internal error in nnc (this is a bug in nnc, not in your model; please report it): "
        "in lower, kernel of %3: add has 3 operands\n");
}

TEST_CASE("diagnostics: a user error keeps file:line:col and the caret", "[diagnostics]") {
  SourceManager sm;
  const uint32_t file = sm.add("m.nn", "model m {\n  y = relu(x)\n}\n");
  const Diagnostic d = error(SourceLoc{file, 2, 7}, "'{}' takes one operand", "relu");
  CHECK_FALSE(d.internal());
  CHECK(sm.render(d) ==
        "m.nn:2:7: error: 'relu' takes one operand\n"
        "    y = relu(x)\n"
        "        ^\n");
  // Without a location: just the message.
  CHECK(sm.render(error("model '{}' has no loss", "m")) == "error: model 'm' has no loss\n");
  // A parse error is a user error.
  auto r = parse(sm, sm.add("n.nn", "model m { x = $ }"));
  REQUIRE_FALSE(r);
  CHECK_FALSE(r.error().internal());
}
