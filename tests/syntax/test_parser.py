"""Unit tests of the .eq parser: every construct of grammar/eq.lark, literal lexing, spans
(1-based lines and columns, end column exclusive) and syntax diagnostics (E0001-E0004)."""
from __future__ import annotations

from pathlib import Path

import pytest

from eqdsl.diagnostics import Span, render_all
from eqdsl.syntax import ast
from eqdsl.syntax.parser import parse

F = "t.eq"
SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").glob("*.eq"))


def S(line, col, end_line, end_col) -> Span:
    return Span(F, line, col, end_line, end_col)


def decls(text: str) -> list:
    spec, diags = parse(text, F)
    assert diags == [], render_all(diags, {F: text})
    assert spec is not None and spec.file == F
    return spec.decls


def one(text: str):
    (d,) = decls(text)
    return d


def expr(src: str):
    """Parse `src` as the value of a const declaration."""
    return one(f"const a = {src}\n").value


def error(text: str):
    spec, diags = parse(text, F)
    assert spec is None, "a spec with syntax errors gives no AST"
    assert len(diags) == 1, diags
    render_all(diags, {F: text})  # renders without error
    return diags[0]


def at(text: str, line: int, snippet: str, nth: int = 0) -> Span:
    """The span of the nth occurrence of `snippet` on a line of `text` (expected spans, computed from the source)."""
    src = text.split("\n")[line - 1]
    col = -1
    for _ in range(nth + 1):
        col = src.index(snippet, col + 1)
    return S(line, col + 1, line, col + 1 + len(snippet))


def text_at(text: str, span: Span) -> str:
    """The source text a one-line span covers."""
    assert span.line == span.end_line
    return text.split("\n")[span.line - 1][span.column - 1: span.end_column - 1]


# -- declarations ------------------------------------------------------------------------------
def test_import():
    d = one('import "lib/common.eq"\n')
    assert d == ast.Import("lib/common.eq", S(1, 1, 1, 23))


def test_group():
    assert one("group O3\n") == ast.GroupDecl("O3", None, S(1, 1, 1, 9))


def test_group_with_value():
    d = one("group G = SO3 * 2\n")
    assert d.name == "G" and isinstance(d.value, ast.BinOp) and d.value.op == "*"
    assert d.span == S(1, 1, 1, 18)


def test_const():
    d = one("const L = 2\n")
    assert d == ast.ConstDecl("L", S(1, 7, 1, 8), ast.Num(2, S(1, 11, 1, 12)), S(1, 1, 1, 12))


def test_rep():
    d = one("rep Hidden = 32x0e + 16x1o\n")
    assert d.name == "Hidden" and d.name_span == S(1, 5, 1, 11)
    assert d.value == ast.BinOp("+", ast.IrrepsLit("32x0e", S(1, 14, 1, 19)), ast.IrrepsLit("16x1o", S(1, 22, 1, 27)),
                                S(1, 14, 1, 27))
    assert d.span == S(1, 1, 1, 27)


def test_block():
    text = "block f(h, y : 1o @edge, z,) -> Out {\n    return linear(h) -> Out\n}\n"
    d = one(text)
    assert isinstance(d, ast.BlockDecl)
    assert d.name == "f" and d.name_span == S(1, 7, 1, 8)
    assert [p.name for p in d.params] == ["h", "y", "z"]
    h, y, z = d.params
    assert h == ast.BlockParam("h", S(1, 9, 1, 10), None, S(1, 9, 1, 10))
    assert y.type == ast.TypeExpr(ast.IrrepsLit("1o", S(1, 16, 1, 18)), "edge", S(1, 20, 1, 24), S(1, 16, 1, 24))
    assert y.span == S(1, 12, 1, 24)
    assert z.type is None
    assert d.returns == ast.Name("Out", S(1, 33, 1, 36))
    (ret,) = d.body
    assert isinstance(ret, ast.Return) and ret.span == S(2, 5, 2, 28)
    assert isinstance(ret.value, ast.Arrow) and ret.value.span == S(2, 12, 2, 28)
    assert d.span.line == 1 and d.span.column == 1


def test_block_without_params_or_return_type():
    d = one("block b() {\n    return 1\n}\n")
    assert d.params == [] and d.returns is None and len(d.body) == 1


def test_model_with_params():
    text = "model Net(cutoff = 5.0, layers = 3,) {\n    input x : 0e\n}\n"
    d = one(text)
    assert isinstance(d, ast.ModelDecl) and d.name == "Net" and d.name_span == S(1, 7, 1, 10)
    assert d.params == [ast.Param("cutoff", S(1, 11, 1, 17), ast.Num(5.0, S(1, 20, 1, 23)), S(1, 11, 1, 23)),
                        ast.Param("layers", S(1, 25, 1, 31), ast.Num(3, S(1, 34, 1, 35)), S(1, 25, 1, 35))]
    assert d.span.line == 1 and d.span.column == 1


def test_model_without_params_and_empty_bodies():
    assert one("model Net {\n}\n").params == []
    assert one("model Net() {\n}\n").params == []
    assert one("model Net { }\n").body == []


def test_braced_spans_end_at_the_closing_brace():
    text = "block b() {\n    return 1\n}\n\nmodel M {\n    repeat 2 {\n        x = 1\n    }\n    y = 2\n}\n"
    b, m = decls(text)
    assert b.span == S(1, 1, 3, 2)
    assert m.span == S(5, 1, 10, 2)
    assert m.body[0].span == S(6, 5, 8, 6)


# -- statements ------------------------------------------------------------------------------------
STATEMENTS = """model M {
    input x : 16x0e + 8x1o @node
    input e : graph
    output y : 0e @graph = f(x)
    output z = x
    h = linear(x) -> 4x0e
    repeat n - 1 {
        h = h
    }
    return h
}
"""


def test_statements():
    T = STATEMENTS
    inp, graph, out_typed, out, assign, rep, ret = one(T).body
    assert isinstance(inp, ast.Input) and inp.name == "x" and inp.name_span == at(T, 2, "x")
    assert inp.type.placement == "node" and inp.type.placement_span == at(T, 2, "node")
    assert inp.type.span == S(2, 15, 2, 33) and inp.span == S(2, 5, 2, 33)
    assert inp.type.expr.span == at(T, 2, "16x0e + 8x1o")
    assert graph.type.expr == ast.Name("graph", at(T, 3, "graph")) and graph.type.placement is None
    assert isinstance(out_typed, ast.Output) and out_typed.name_span == at(T, 4, "y")
    assert out_typed.type.expr == ast.IrrepsLit("0e", at(T, 4, "0e")) and out_typed.type.placement == "graph"
    assert out_typed.type.span == at(T, 4, "0e @graph")
    assert isinstance(out_typed.value, ast.Call) and out_typed.value.span == at(T, 4, "f(x)")
    assert out_typed.span == at(T, 4, "output y : 0e @graph = f(x)")
    assert out.type is None and out.value == ast.Name("x", at(T, 5, "x")) and out.span == at(T, 5, "output z = x")
    assert isinstance(assign, ast.Assign) and assign.name_span == at(T, 6, "h")
    assert assign.span == at(T, 6, "h = linear(x) -> 4x0e")
    assert isinstance(rep, ast.Repeat) and rep.count.span == at(T, 7, "n - 1") and rep.span.line == 7
    assert rep.body == [ast.Assign("h", at(T, 8, "h"), ast.Name("h", at(T, 8, "h", 1)), at(T, 8, "h = h"))]
    assert isinstance(ret, ast.Return) and ret.span == at(T, 10, "return h")
    assert ret.value.span == at(T, 10, "h")


def test_statement_spans_cover_their_source():
    for stmt in one(STATEMENTS).body:
        if stmt.span.line == stmt.span.end_line:
            assert text_at(STATEMENTS, stmt.span) == STATEMENTS.split("\n")[stmt.span.line - 1].strip()


# -- expressions --------------------------------------------------------------------------------------
def test_precedence_of_arithmetic():
    e = expr("a + b * c - d / e")
    assert e.op == "-" and e.left.op == "+" and e.left.right.op == "*" and e.right.op == "/"
    assert e.span == S(1, 11, 1, 28)


def test_parentheses_group():
    e = expr("(a + b) * c")
    assert e.op == "*" and e.left.op == "+" and e.left.span == S(1, 12, 1, 17) and e.span == S(1, 11, 1, 22)


def test_power_is_right_associative_and_binds_tighter_than_negation():
    e = expr("a ** b ** c")
    assert e.op == "**" and isinstance(e.right, ast.BinOp) and e.right.op == "**"
    e = expr("-b ** 2")
    assert isinstance(e, ast.Neg) and e.operand.op == "**" and e.span == S(1, 11, 1, 18)
    e = expr("x ** -1")
    assert isinstance(e.right, ast.Neg) and e.right.operand == ast.Num(1, S(1, 17, 1, 18))


def test_arrow_binds_tighter_than_plus():
    # `linear(h) -> Hidden + rest` adds `rest` to the mapped value (see specs/nequip.eq)
    e = expr("f(x) -> R + y")
    assert isinstance(e, ast.BinOp) and e.op == "+"
    assert isinstance(e.left, ast.Arrow) and e.left.rep == ast.Name("R", S(1, 19, 1, 20))
    assert e.left.span == S(1, 11, 1, 20)
    e = expr("f(x) -> (A + B)")
    assert isinstance(e, ast.Arrow) and isinstance(e.rep, ast.BinOp)


def test_postfix_chain():
    e = expr("a.b[c] ** 2")
    assert e.op == "**"
    idx = e.left
    assert isinstance(idx, ast.Index) and idx.span == S(1, 11, 1, 17) and idx.index == ast.Name("c", S(1, 15, 1, 16))
    assert idx.value == ast.Attr(ast.Name("a", S(1, 11, 1, 12)), "b", S(1, 11, 1, 14))


def test_call_with_positional_and_keyword_arguments():
    e = expr("tensor_product(h[src], Y, weights = R, mode = uvu,)")
    assert isinstance(e, ast.Call) and e.func == "tensor_product" and e.func_span == S(1, 11, 1, 25)
    assert [type(a) for a in e.args] == [ast.Index, ast.Name]
    assert [(k.name, k.name_span) for k in e.kwargs] == [("weights", S(1, 37, 1, 44)), ("mode", S(1, 50, 1, 54))]
    assert e.kwargs[1].value == ast.Name("uvu", S(1, 57, 1, 60))
    assert e.span == S(1, 11, 1, 62)
    assert expr("f()").args == [] and expr("f()").kwargs == []


def test_literals_of_every_kind():
    assert expr("true") == ast.Bool(True, S(1, 11, 1, 15))
    assert expr("false") == ast.Bool(False, S(1, 11, 1, 16))
    assert expr('"s.eq"') == ast.Str("s.eq", S(1, 11, 1, 17))
    assert expr("7") == ast.Num(7, S(1, 11, 1, 12)) and expr("7").is_int
    assert expr("7.0") == ast.Num(7.0, S(1, 11, 1, 14)) and not expr("7.0").is_int


# -- lexing of numbers and irreps ----------------------------------------------------------------------
@pytest.mark.parametrize("src, kind, value", [
    ("32x0e", ast.IrrepsLit, "32x0e"),
    ("1o", ast.IrrepsLit, "1o"),
    ("0e", ast.IrrepsLit, "0e"),
    ("16x2", ast.IrrepsLit, "16x2"),      # SO3: no parity
    ("1x0", ast.IrrepsLit, "1x0"),
    ("7", ast.Num, 7),
    ("1e-3", ast.Num, 1e-3),              # a float, not `1e - 3`
    ("1.5e-2", ast.Num, 1.5e-2),
    ("1.0e+3", ast.Num, 1000.0),
    ("1.0e3", ast.Num, 1000.0),
    ("1E3", ast.Num, 1000.0),
    ("2E+4", ast.Num, 20000.0),
    ("2.", ast.Num, 2.0),
    (".5", ast.Num, 0.5),
    ("12.25", ast.Num, 12.25),
])
def test_literal_lexing(src, kind, value):
    e = expr(src)
    assert isinstance(e, kind)
    assert (e.text if kind is ast.IrrepsLit else e.value) == value
    assert e.span == S(1, 11, 1, 11 + len(src))


def test_irreps_sum_without_spaces():
    e = expr("0e+1o+2e")
    assert isinstance(e, ast.BinOp) and e.op == "+" and isinstance(e.left, ast.BinOp)
    assert [e.left.left.text, e.left.right.text, e.right.text] == ["0e", "1o", "2e"]
    assert [e.left.left.span, e.left.right.span, e.right.span] == [S(1, 11, 1, 13), S(1, 14, 1, 16), S(1, 17, 1, 19)]


def test_irreps_with_multiplicities_and_no_spaces():
    e = expr("32x0e+16x1o")
    assert (e.left.text, e.right.text) == ("32x0e", "16x1o")


def test_float_minus_and_irreps_minus():
    e = expr("-1e-3")
    assert isinstance(e, ast.Neg) and e.operand == ast.Num(1e-3, S(1, 12, 1, 16))
    e = expr("x-1")
    assert e.op == "-" and e.left == ast.Name("x", S(1, 11, 1, 12)) and e.right == ast.Num(1, S(1, 13, 1, 14))


def test_names_that_look_like_irreps_are_names():
    assert expr("e3") == ast.Name("e3", S(1, 11, 1, 13))
    assert expr("x1o") == ast.Name("x1o", S(1, 11, 1, 14))


# -- layout: newlines, comments, continuation -------------------------------------------------------------
def test_newlines_inside_parentheses_and_brackets_are_ignored():
    e = expr("f(1,\n    2,\n)")
    assert isinstance(e, ast.Call) and [a.value for a in e.args] == [1, 2]
    assert e.args[1].span == S(2, 5, 2, 6) and e.span == S(1, 11, 3, 2)
    e = expr("x[\n src\n]")
    assert isinstance(e, ast.Index) and e.index.span == S(2, 2, 2, 5)


def test_multiline_call_in_a_model():
    text = ("model M {\n    m = tensor_product(\n        a,\n        b,   # comment inside\n"
            "        mode = uvu\n    ) -> R\n    output y = m\n}\n")
    assign, out = one(text).body
    assert isinstance(assign.value, ast.Arrow) and assign.value.rep == ast.Name("R", S(6, 10, 6, 11))
    assert assign.span == S(2, 5, 6, 11)
    assert out.span == S(7, 5, 7, 17)


def test_backslash_continues_a_line():
    e = expr("1 + \\\n    2")
    assert e.op == "+" and e.right.span == S(2, 5, 2, 6)


def test_comments():
    text = ("# a spec\ngroup O3   # trailing\n\n# ( [ { in a comment are not brackets\n"
            "const a = 1 # last line, no newline")
    g, c = decls(text)
    assert g.span == S(2, 1, 2, 9) and c.span == S(5, 1, 5, 12)


def test_hash_and_brackets_inside_a_string():
    assert one('import "a#(b.eq"\n').path == "a#(b.eq"


def test_crlf_line_endings():
    g, c = decls("group O3\r\nconst a = 1\r\n")
    assert g.span == S(1, 1, 1, 9) and c.span == S(2, 1, 2, 12)


def test_blank_lines_tabs_and_empty_files():
    assert decls("") == []
    assert decls("\n\n   \n\t\n") == []
    assert decls("# nothing but a comment") == []
    g, c = decls("\n\n\tgroup O3\n   const a = 1\n")
    assert g.span == S(3, 2, 3, 10) and c.span == S(4, 4, 4, 15)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_specs_parse(path):
    text = path.read_text(encoding="utf-8")
    spec, diags = parse(text, path.name)
    assert diags == []
    assert any(isinstance(d, ast.ModelDecl) for d in spec.decls)


# -- syntax errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stmt, keyword", [
    ("repeat = 3", "repeat"),
    ("return = 3", "return"),
    ("input = x", "input"),
    ("output = x", "output"),
])
def test_keyword_used_as_a_name_in_a_body(stmt, keyword):
    text = f"model M {{\n    input x : 0e\n    {stmt}\n}}\n"
    d = error(text)
    assert d.code == "E0001" and d.message == "unexpected `=`"
    assert d.span == S(3, 5 + len(keyword) + 1, 3, 5 + len(keyword) + 2)
    assert any(f"`{keyword}` is a keyword" in h for h in d.hints)


@pytest.mark.parametrize("keyword", ["model", "block", "const", "rep", "group"])
def test_keyword_used_as_a_name_at_top_level(keyword):
    d = error(f"{keyword} = 3\n")
    assert d.code == "E0001" and d.span == S(1, len(keyword) + 2, 1, len(keyword) + 3)
    assert any(f"`{keyword}` is a keyword" in h for h in d.hints)


@pytest.mark.parametrize("text", ["model input {\n}\n", "const true = 1\n",
                                  "model M {\n    input model : 0e\n}\n", "block f(return) {\n    return 1\n}\n"])
def test_keywords_are_reserved_everywhere(text):
    spec, diags = parse(text, F)
    assert [d.code for d in diags] == ["E0001"]


def test_type_annotation_on_assignment():
    d = error("model M {\n    h : 4x0e = x\n}\n")
    assert d.code == "E0001" and d.span == S(2, 7, 2, 8) and d.label == "expected `=`"
    assert any("types are declared on inputs and outputs only" in h for h in d.hints)


def test_input_without_type():
    d = error("model M {\n    input x = 1\n}\n")
    assert d.code == "E0001" and d.span == S(2, 13, 2, 14) and d.label == "expected `:`"


def test_statement_continued_on_the_next_line():
    d = error("model M {\n    h = x +\n        y\n}\n")
    assert d.code == "E0001" and d.message == "unexpected end of line" and d.span == S(2, 12, 2, 13)
    assert d.label == "expected an expression"
    assert any("(...)" in h for h in d.hints)
    d = error("model M {\n    h = f(x)\n        -> R\n}\n")
    assert d.code == "E0001" and d.span == S(3, 9, 3, 11) and any("(...)" in h for h in d.hints)


def test_brace_on_its_own_line():
    d = error("model M\n{\n}\n")
    assert d.code == "E0001" and d.span == S(1, 8, 1, 9) and any("same line" in h for h in d.hints)


def test_exponent_with_lowercase_e_and_no_dot():
    d = error("const a = 1e3\n")
    assert d.code == "E0001" and d.span == S(1, 12, 1, 14)
    assert any("1.0e3 or 1E3" in h for h in d.hints)


def test_space_inside_an_irreps_literal():
    d = error("rep R = 32x 0e\n")
    assert d.code == "E0001" and d.span == S(1, 11, 1, 12) and any("32x0e" in h for h in d.hints)


@pytest.mark.parametrize("text, char, col", [
    ("const a = 1 $ 2\n", "$", 13),
    ("import 'a.eq'\n", "'", 8),
    ("const a = 2 × 3\n", "×", 13),
    ("const a = \x01\n", "\\x01", 11),
    ('const a = "open\n', '"', 11),
])
def test_unexpected_character(text, char, col):
    d = error(text)
    assert d.code == "E0002" and d.message == f"unexpected character `{char}`" and d.span == S(1, col, 1, col + 1)


def test_unexpected_character_column_after_tab():
    d = error("model M {\n\th = ?\n}\n")
    assert d.code == "E0002" and d.span == S(2, 6, 2, 7)


# -- unbalanced brackets: E0004 points at the bracket at fault -----------------------------------------------
def test_unclosed_brace_points_at_the_opener():
    d = error("group O3\nmodel M {\n    input x : 0e\n")
    assert d.code == "E0004" and d.message == "unclosed `{`" and d.span == S(2, 9, 2, 10)


def test_unclosed_paren_closed_by_the_outer_brace_points_at_the_paren():
    d = error("model M {\n    h = f(x -> R\n    output y = h\n}\n")
    assert d.code == "E0004" and d.message == "unclosed `(`" and d.span == S(2, 10, 2, 11)
    assert any("4:1" in n for n in d.notes)


def test_innermost_unclosed_bracket_at_end_of_file():
    d = error("model M {\n    h = f(g[x\n")
    assert d.code == "E0004" and d.message == "unclosed `[`" and d.span == S(2, 12, 2, 13)
    assert any("`(`" in n for n in d.notes) and any("`{`" in n for n in d.notes)


def test_stray_closer_points_at_itself():
    d = error("model M {\n    h = f(x))\n}\n")
    assert d.code == "E0004" and d.message == "unmatched closing `)`" and d.span == S(2, 13, 2, 14)
    d = error("const a = 1\n}\n")
    assert d.code == "E0004" and d.span == S(2, 1, 2, 2)


def test_wrong_closer_on_the_same_line():
    d = error("const a = f(x, y]\n")
    assert d.code == "E0004" and d.span == S(1, 17, 1, 18) and "did you mean `)`?" in d.hints


def test_brackets_in_comments_and_strings_are_ignored():
    decls('# (\nimport "x(.eq"  # {\n')


# -- truncated files: E0003 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, end", [
    ("const L =", S(1, 10, 1, 11)),
    ("const L =\n", S(1, 10, 1, 11)),
    ("const L =   # to do\n\n", S(1, 10, 1, 11)),
    ("group O3\nrep R = 32x0e +", S(2, 16, 2, 17)),
    ("group", S(1, 6, 1, 7)),
    ("group O3\nmodel", S(2, 6, 2, 7)),
    ("import", S(1, 7, 1, 8)),
    ("group O3\nblock f(x) ->", S(2, 14, 2, 15)),
])
def test_truncated_file(text, end):
    d = error(text)
    assert d.code == "E0003" and d.message == "unexpected end of file"
    assert d.span == end


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_truncation_of_a_shipped_spec(path):
    """Cut a shipped spec at every line end and mid-line: a parse never raises, and the error is
    a bracket error (E0004, at an opener) when the cut leaves one open, else E0001/E0003."""
    text = path.read_text(encoding="utf-8")
    cuts = sorted({i for i, c in enumerate(text) if c == "\n"} | set(range(0, len(text), 7)))
    for cut in cuts:
        part = text[:cut]
        spec, diags = parse(part, F)
        if spec is not None:
            assert diags == []
            continue
        assert len(diags) == 1
        d = diags[0]
        assert d.code in ("E0001", "E0003", "E0004"), (cut, d)
        assert 1 <= d.span.line <= part.count("\n") + 1 and d.span.column >= 1
        if d.code == "E0004":
            assert d.message.startswith("unclosed")
            assert text_at(part, d.span) in "([{"
        render_all(diags, {F: part})
