"""AST of a .eq spec: plain dataclasses, each carrying the Span it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..diagnostics import Span


# -- expressions ---------------------------------------------------------------
@dataclass
class Name:
    name: str
    span: Span


@dataclass
class IrrepsLit:
    text: str
    span: Span


@dataclass
class Num:
    value: Union[int, float]
    span: Span

    @property
    def is_int(self) -> bool:
        return isinstance(self.value, int) and not isinstance(self.value, bool)


@dataclass
class Str:
    value: str
    span: Span


@dataclass
class Bool:
    value: bool
    span: Span


@dataclass
class KwArg:
    name: str
    name_span: Span
    value: "Expr"


@dataclass
class Call:
    func: str
    func_span: Span
    args: list["Expr"]
    kwargs: list[KwArg]
    span: Span


@dataclass
class BinOp:
    op: str  # + - * / **
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass
class Neg:
    operand: "Expr"
    span: Span


@dataclass
class Index:
    value: "Expr"
    index: "Expr"
    span: Span


@dataclass
class Arrow:
    """``layer(...) -> Rep``: the declared output representation of a layer call."""
    value: "Expr"
    rep: "Expr"
    span: Span


@dataclass
class Attr:
    value: "Expr"
    name: str
    span: Span


@dataclass
class ListLit:
    """`[a, b, ...]`: matrices of a group declared by its generators (nested lists of numbers)."""
    items: list
    span: Span


Expr = Union[Name, IrrepsLit, Num, Str, Bool, Call, BinOp, Neg, Index, Arrow, Attr, ListLit]


@dataclass
class TypeExpr:
    expr: Expr
    placement: str | None
    placement_span: Span | None
    span: Span


# -- statements ----------------------------------------------------------------
@dataclass
class Input:
    name: str
    name_span: Span
    type: TypeExpr
    span: Span


@dataclass
class Output:
    name: str
    name_span: Span
    type: TypeExpr | None
    value: Expr
    span: Span


@dataclass
class Assign:
    name: str
    name_span: Span
    value: Expr
    span: Span


@dataclass
class Repeat:
    count: Expr
    body: list["Stmt"]
    span: Span


@dataclass
class Return:
    value: Expr
    span: Span


Stmt = Union[Input, Output, Assign, Repeat, Return]


# -- declarations ----------------------------------------------------------------
@dataclass
class Import:
    path: str
    span: Span


@dataclass
class GroupDecl:
    name: str
    value: Expr | None
    span: Span
    soft: bool = False  # `soft group G`: a symmetry the model is pulled toward, not built with


@dataclass
class ConstDecl:
    name: str
    name_span: Span
    value: Expr
    span: Span


@dataclass
class RepDecl:
    name: str
    name_span: Span
    value: Expr
    span: Span


@dataclass
class Param:
    name: str
    name_span: Span
    default: Expr
    span: Span


@dataclass
class ModelDecl:
    name: str
    name_span: Span
    params: list[Param]
    body: list[Stmt]
    span: Span


@dataclass
class BlockParam:
    name: str
    name_span: Span
    type: TypeExpr | None
    span: Span


@dataclass
class BlockDecl:
    name: str
    name_span: Span
    params: list[BlockParam]
    returns: Expr | None
    body: list[Stmt]
    span: Span


Decl = Union[Import, GroupDecl, ConstDecl, RepDecl, ModelDecl, BlockDecl]


@dataclass
class Spec:
    file: str
    decls: list[Decl] = field(default_factory=list)
