"""How a spec writes representations: one protocol, implemented once per family of groups.

The checker evaluates `rep R = ...`, input and output types and `-> R` through the
``RepExpressions`` its group's family supplies (``for_group``), so no stage of the checker
asks which kind of group it has.  Two families exist: irreps (O3, SO3; here) and
representations of matrix groups (``matrix_rep_expressions``, which loads numpy and scipy
and so is imported only for specs over such groups).
"""
from __future__ import annotations

import importlib
from typing import Protocol

from ..diagnostics import Span
from ..reps.irreps import Irreps, IrrepsSyntaxError
from ..syntax import ast
from .values import RepValue

MAX_REP_DIM = 1_000_000


class RepExpressions(Protocol):
    predefined: tuple[str, ...]  # names that are representations without a declaration (V, scalar, ...)
    attributes_are_reps: bool  # whether `R.name` is a representation expression (`R.dual`)
    power_binds_to_arrow: bool  # whether `-> R ** k` needs parentheses
    images: bool  # whether values may be images (@grid) at all

    def evaluate(self, checker, expr, scope):
        """The representation `expr` denotes, or the located error (through ``checker.fail``)."""

    def is_rep_form(self, expr) -> bool:
        """Whether an attribute or call is a representation by its form alone (`R.dual`, `freq(2)`)."""

    def support_tracker(self, group, ir):
        """What follows the irreps each value carries (E0210), or None where types already say it."""

    def term_span(self, checker, rep_expr, message: str, default: Span) -> Span:
        """The span of the term of `rep_expr` that an error message names, else `default`."""


class IrrepsExpressions:
    """Irreps sums (`32x0e + 16x1o`), integers (that many scalars), declared reps, sh(L), `*` and `**`."""
    predefined: tuple[str, ...] = ()
    attributes_are_reps = False
    power_binds_to_arrow = False
    images = False

    def is_rep_form(self, expr) -> bool:
        return False

    def support_tracker(self, group, ir):
        return None  # an irreps type already lists every irrep a value carries

    def evaluate(self, checker, expr, scope) -> Irreps:
        g = checker.group
        if isinstance(expr, ast.IrrepsLit):
            try:
                return Irreps.parse(expr.text, g)
            except IrrepsSyntaxError as err:
                checker.fail("E0209", str(err), expr.span, f"not an irrep of {g.name}", hints=[err.hint] if err.hint else [])
            except ValueError as err:
                checker.fail("E0209", str(err), expr.span)
        if isinstance(expr, (ast.Num, ast.Name)) and not (isinstance(expr, ast.Name)
                                                          and isinstance(scope.lookup(expr.name), RepValue)):
            n = checker.eval_static(expr, scope, "representation")
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                checker.fail("E0207", f"`{n}` is not a representation", expr.span,
                             hints=["an integer n stands for n invariant scalars; write irreps like 16x1o"])
            return Irreps.of([(n, g.trivial)]) if n else Irreps(())
        if isinstance(expr, ast.Name):
            return scope.lookup(expr.name).rep
        if isinstance(expr, ast.BinOp) and expr.op in "+*":
            a, b = self.evaluate(checker, expr.left, scope), self.evaluate(checker, expr.right, scope)
            return a + b if expr.op == "+" else self._product(checker, a, b, expr.span)
        if isinstance(expr, ast.BinOp) and expr.op == "**":
            base, k = self.evaluate(checker, expr.left, scope), checker.eval_int(expr.right, scope)
            if k < 1:
                checker.fail("E0108", "tensor powers need an exponent of at least 1", expr.right.span)
            out = base
            for _ in range(k - 1):
                out = self._product(checker, out, base, expr.span)
            return out
        if isinstance(expr, ast.Call) and expr.func == "sh" and len(expr.args) == 1 and not expr.kwargs:
            lmax = checker.eval_int(expr.args[0], scope)
            if not 0 <= lmax <= 12:
                checker.fail("E0108", f"sh({lmax}): lmax must be in 0..12", expr.span)
            return Irreps.harmonics(g, lmax)
        checker.fail("E0207", "expected a representation", expr.span, "not a representation",
                     hints=["representations are irreps sums like 32x0e + 16x1o, declared reps, sh(L), A * B or A ** 2"])

    @staticmethod
    def _product(checker, a: Irreps, b: Irreps, span: Span) -> Irreps:
        """Tensor product of representations; an integer factor (n trivial irreps) keeps the block order."""
        if a.dim * b.dim > MAX_REP_DIM:
            checker.fail("E0108", f"this representation has dimension {a.dim * b.dim}, more than {MAX_REP_DIM}", span,
                         "too large")
        for scale, other in ((a, b), (b, a)):
            if len(scale) <= 1 and scale.is_invariant():
                return (other * scale.dim).simplify()
        # general products are regrouped (one block per irrep) so that powers stay small
        return Irreps.of([(x.mul * y.mul, ir) for x in a for y in b for ir in checker.group.product(x.ir, y.ir)]).regroup()

    def term_span(self, checker, rep_expr, message: str, default: Span) -> Span:
        """Point at the irreps literal a message names (`8x3e`) inside a longer `-> (...)` sum."""
        stack = [rep_expr]
        while stack:
            e = stack.pop()
            if isinstance(e, ast.BinOp):
                stack += [e.right, e.left]
            elif isinstance(e, ast.IrrepsLit):
                try:
                    shown = str(Irreps.parse(e.text, checker.group))
                except ValueError:
                    continue
                if f"`{shown}`" in message:
                    return e.span
        return default


# the family a group names (``group.rep_family``) -> where its expressions are implemented
_FAMILIES = {"irreps": (__name__, "IrrepsExpressions"),
             "matrix": ("eqdsl.check.matrix_rep_expressions", "MatrixRepExpressions")}
_LOADED: dict = {}


def for_group(group) -> RepExpressions:
    family = group.rep_family
    if family not in _LOADED:
        module, name = _FAMILIES[family]
        _LOADED[family] = getattr(importlib.import_module(module), name)()
    return _LOADED[family]
