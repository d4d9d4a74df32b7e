"""The string form of matrix-group representations, parsed back: ``parse_rep("V**2 + V.dual + 3", G)``.

The same forms that ``str()`` of a canonical ``matrix_reps.Rep`` writes (and that module metadata of
generated code stores), so ``parse_rep(str(r), G) == r``.  Errors are ``RepSyntaxError``s with a hint
and the character position at fault.
"""
from __future__ import annotations

import re

from ..groups.matrix import MatrixGroup
from .matrix_reps import (
    Det, Rep, RepSyntaxError, Trivial, Vector, direct_sum, dual, frequency, power, scalars, tensor,
)
from .permutation_reps import Regular

__all__ = ["parse_rep", "RepSyntaxError"]

_TOKEN = re.compile(r"\s*(?:(?P<int>\d+)|(?P<pow>\*\*)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
                    r"|(?P<op>[+*().-])|(?P<bad>\S))")

_GRAMMAR_HINT = ("representations are written with V, V.dual, scalar, integers (n scalars), "
                 "regular, +, *, **k and parentheses, e.g. `V**2 + V.dual + 3`")


class _Parser:
    def __init__(self, text: str, group: MatrixGroup):
        self.text, self.group = text, group
        self.toks = []
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind == "bad":
                raise RepSyntaxError(f"unexpected character `{m.group(kind)}` in `{text}`",
                                     _GRAMMAR_HINT, m.start(kind))
            self.toks.append((kind, m.group(kind), m.start(kind)))
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else ("end", "", len(self.text))

    def take(self):
        t = self.peek()
        self.i += 1
        return t

    def error(self, msg, tok=None, hint=_GRAMMAR_HINT):
        tok = tok or self.peek()
        where = "end of input" if tok[0] == "end" else f"`{tok[1]}`"
        raise RepSyntaxError(f"{msg} at {where} in `{self.text}`", hint, tok[2])

    def parse(self) -> Rep:
        if not self.toks:
            raise RepSyntaxError("empty representation", _GRAMMAR_HINT, 0)
        rep = self.sum()
        if self.peek()[0] != "end":
            self.error("unexpected token")
        return rep

    def sum(self):
        rep = self.product()
        while self.peek()[1] == "+":
            self.take()
            rep = direct_sum(rep, self.product())
        return rep

    def product(self):
        rep = self.power()
        while self.peek()[0] == "op" and self.peek()[1] == "*":
            self.take()
            rep = tensor(rep, self.power())
        return rep

    def power(self):
        rep = self.postfix()
        if self.peek()[0] == "pow":
            self.take()
            tok = self.take()
            if tok[0] != "int":
                self.error("expected an integer exponent after `**`", tok,
                           "tensor powers take a non-negative integer, e.g. V**2")
            rep = power(rep, int(tok[1]))
            if self.peek()[0] == "pow":
                self.error("chained `**` is ambiguous", None, "add parentheses, e.g. (V**2)**3")
        return rep

    def postfix(self):
        rep = self.atom()
        while self.peek()[1] == ".":
            self.take()
            tok = self.take()
            if tok[1] not in ("dual", "T"):
                self.error("expected `dual` after `.`", tok, "the dual representation is written V.dual")
            rep = dual(rep)
        return rep

    def atom(self):
        tok = self.take()
        kind, val = tok[0], tok[1]
        G = self.group
        if kind == "int":
            n = int(val)
            if n == 0:
                self.error("0 scalars is an empty representation", tok)
            return scalars(G, n)
        if kind == "name":
            if val == "V":
                return Vector(G)
            if val == "scalar":
                return Trivial(G)
            if val == "det":
                return Det(G)
            if val == "freq":
                if self.peek()[1] != "(":
                    self.error("expected `(` after freq", None, "frequencies are written freq(k), e.g. freq(2)")
                self.take()
                tok = self.take()
                if tok[0] != "int":
                    self.error("expected an integer frequency", tok, "e.g. freq(2)")
                if self.peek()[1] != ")":
                    self.error("expected `)`")
                self.take()
                try:
                    return frequency(G, int(tok[1]))
                except ValueError as err:
                    self.error(str(err), tok, "freq(k) with k >= 1, for SO(2), O(2), Cn or Dn")
            if val == "regular":
                if not G.is_finite:
                    self.error(f"`regular` needs a finite group; {G.name} is continuous", tok,
                               "regular representations exist for finite groups such as C8, D4, S5")
                return Regular(G)
            self.error(f"unknown representation `{val}`", tok)
        if val == "(":
            rep = self.sum()
            if self.peek()[1] != ")":
                self.error("expected `)`")
            self.take()
            return rep
        self.error("expected a representation", tok)


def parse_rep(text: str, group: MatrixGroup) -> Rep:
    """Parse ``"V**2 + V.dual + 3"`` for ``group`` into a canonical Rep (RepSyntaxError on failure)."""
    if not isinstance(group, MatrixGroup):
        raise TypeError("parse_rep needs a MatrixGroup")
    return _Parser(text, group).parse()
