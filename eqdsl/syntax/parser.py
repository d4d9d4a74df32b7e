"""Parse .eq text into the AST, reporting syntax errors as diagnostics."""
from __future__ import annotations

from lark import Token, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from ..diagnostics import Diagnostic, Span
from . import ast
from .errors import check_brackets, from_lark
from .grammar import lark_parser


class _ToAst(Transformer):
    def __init__(self, file: str):
        super().__init__()
        self.file = file
        self.issues: list[Diagnostic] = []  # well-formed by the grammar, but not a valid spec

    def _span(self, meta) -> Span:
        return Span.of_meta(self.file, meta)

    def _tok(self, tok: Token) -> Span:
        return Span.of_token(self.file, tok)

    def _stmt_span(self, meta, children) -> Span:
        """A statement's span without the newline that ends it."""
        start = self._span(meta)
        for child in reversed(children):
            if isinstance(child, list) and child:
                child = child[-1]
            end = child if isinstance(child, Span) else getattr(child, "span", None)
            if end is None and isinstance(child, Token):
                end = self._tok(child)
            if end is not None:
                return start.to(end)
        return start

    # -- atoms ----------------------------------------------------------------
    @v_args(meta=True)
    def name(self, meta, children):
        return ast.Name(str(children[0]), self._span(meta))

    @v_args(meta=True)
    def irreps_lit(self, meta, children):
        return ast.IrrepsLit(str(children[0]), self._span(meta))

    @v_args(meta=True)
    def int_lit(self, meta, children):
        return ast.Num(int(children[0]), self._span(meta))

    @v_args(meta=True)
    def float_lit(self, meta, children):
        return ast.Num(float(children[0]), self._span(meta))

    @v_args(meta=True)
    def string_lit(self, meta, children):
        return ast.Str(str(children[0])[1:-1], self._span(meta))

    @v_args(meta=True)
    def true_lit(self, meta, children):
        return ast.Bool(True, self._span(meta))

    @v_args(meta=True)
    def false_lit(self, meta, children):
        return ast.Bool(False, self._span(meta))

    @v_args(meta=True)
    def call(self, meta, children):
        func, args = children[0], children[1] or []
        positional = [a for a in args if not isinstance(a, ast.KwArg)]
        kwargs = [a for a in args if isinstance(a, ast.KwArg)]
        first_kw = next((i for i, a in enumerate(args) if isinstance(a, ast.KwArg)), len(args))
        late = [a for a in args[first_kw:] if not isinstance(a, ast.KwArg)]
        if late:
            self.issues.append(Diagnostic("E0001", "positional argument after a keyword argument", late[0].span,
                                          "positional", hints=[f"move it before `{args[first_kw].name} = ...`, "
                                                               "or give it by name"]))
        return ast.Call(str(func), self._tok(func), positional, kwargs, self._span(meta))

    @v_args(meta=True)
    def list_lit(self, meta, children):
        return ast.ListLit([c for c in children if c is not None], self._span(meta))

    def args(self, children):
        return list(children)

    def kwarg(self, children):
        return ast.KwArg(str(children[0]), self._tok(children[0]), children[1])

    # -- operators --------------------------------------------------------------
    def _bin(op):
        @v_args(meta=True)
        def build(self, meta, children):
            return ast.BinOp(op, children[0], children[1], self._span(meta))
        return build

    add, sub, mul, div, pow = _bin("+"), _bin("-"), _bin("*"), _bin("/"), _bin("**")

    @v_args(meta=True)
    def neg(self, meta, children):
        return ast.Neg(children[0], self._span(meta))

    @v_args(meta=True)
    def index(self, meta, children):
        return ast.Index(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def arrow(self, meta, children):
        return ast.Arrow(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def attr(self, meta, children):
        return ast.Attr(children[0], str(children[1]), self._span(meta))

    # -- types and statements ---------------------------------------------------------
    @v_args(meta=True)
    def type_expr(self, meta, children):
        expr, placement = children
        if placement is None:
            return ast.TypeExpr(expr, None, None, self._span(meta))
        return ast.TypeExpr(expr, str(placement), self._tok(placement), self._span(meta))

    def placement(self, children):
        return children[0]

    @v_args(meta=True)
    def input_stmt(self, meta, children):
        return ast.Input(str(children[0]), self._tok(children[0]), children[1], self._stmt_span(meta, children))

    @v_args(meta=True)
    def output_stmt(self, meta, children):
        name, typ, value = children
        return ast.Output(str(name), self._tok(name), typ, value, self._stmt_span(meta, children))

    @v_args(meta=True)
    def assign_stmt(self, meta, children):
        return ast.Assign(str(children[0]), self._tok(children[0]), children[1], self._stmt_span(meta, children))

    @v_args(meta=True)
    def repeat_stmt(self, meta, children):
        return ast.Repeat(children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def return_stmt(self, meta, children):
        return ast.Return(children[0], self._stmt_span(meta, children))

    def body(self, children):
        return list(children)

    # -- declarations ----------------------------------------------------------------
    @v_args(meta=True)
    def import_decl(self, meta, children):
        return ast.Import(str(children[0])[1:-1], self._stmt_span(meta, children))

    @v_args(meta=True)
    def group_decl(self, meta, children):
        return ast.GroupDecl(str(children[0]), children[1], self._stmt_span(meta, children))

    @v_args(meta=True)
    def soft_group_decl(self, meta, children):
        return ast.GroupDecl(str(children[0]), children[1], self._stmt_span(meta, children), soft=True)

    @v_args(meta=True)
    def const_decl(self, meta, children):
        return ast.ConstDecl(str(children[0]), self._tok(children[0]), children[1], self._stmt_span(meta, children))

    @v_args(meta=True)
    def rep_decl(self, meta, children):
        return ast.RepDecl(str(children[0]), self._tok(children[0]), children[1], self._stmt_span(meta, children))

    @v_args(meta=True)
    def model_decl(self, meta, children):
        name, params, body = children
        return ast.ModelDecl(str(name), self._tok(name), params or [], body, self._span(meta))

    def model_params(self, children):
        return [c for c in children if c is not None]

    @v_args(meta=True)
    def model_param(self, meta, children):
        return ast.Param(str(children[0]), self._tok(children[0]), children[1], self._span(meta))

    @v_args(meta=True)
    def block_decl(self, meta, children):
        name, *rest = children
        body = rest[-1]
        returns = rest[-2]
        params = [p for p in rest[:-2] if p is not None]
        return ast.BlockDecl(str(name), self._tok(name), params, returns, body, self._span(meta))

    @v_args(meta=True)
    def block_param(self, meta, children):
        return ast.BlockParam(str(children[0]), self._tok(children[0]), children[1], self._span(meta))

    def start(self, children):
        return list(children)


def parse(text: str, file: str = "<input>") -> tuple[ast.Spec | None, list[Diagnostic]]:
    """Parse a spec; returns (spec, []) or (None, diagnostics)."""
    bracket_errors = check_brackets(file, text)
    if bracket_errors:
        return None, bracket_errors
    try:
        tree = lark_parser().parse(text + "\n")
    except UnexpectedInput as err:
        return None, [from_lark(file, text, err)]
    to_ast = _ToAst(file)
    try:
        decls = to_ast.transform(tree)
    except VisitError as err:  # a bug in the transformer, not in the spec
        raise err.orig_exc from err
    if to_ast.issues:
        return None, to_ast.issues
    return ast.Spec(file, decls), []
