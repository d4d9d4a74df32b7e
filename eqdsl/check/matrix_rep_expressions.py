"""Representation expressions of matrix groups, evaluated to canonical ``matrix_reps.Rep`` values.

Representations of a matrix group are written with ``V`` (the defining rep),
``scalar``, ``det`` (the determinant: the sign of reflections), ``freq(k)`` (the
frequency-k irrep of the planar groups SO(2), O(2), Cn, Dn), ``regular`` (finite
groups), integers (that many scalars), ``+``
(direct sum), ``*`` (tensor product; ``3 * V`` is three copies of V), ``**k``
and ``.dual``.  This is the matrix-group side of ``rep_expressions.RepExpressions``;
it loads numpy and scipy, so the checker imports it only for specs over such groups.
"""
from __future__ import annotations

import math

from ..reps import matrix_reps, permutation_reps
from ..syntax import ast
from .values import RepValue

MAX_REP_SIZE = 1_000_000


class MatrixRepExpressions:
    """Representations built from V, scalar, det, freq(k), regular and integers (see the module docstring)."""
    predefined = ("V", "scalar", "regular", "det")  # representations by name, without a declaration
    attributes_are_reps = True  # `R.dual`
    power_binds_to_arrow = True  # `-> V**3` would read as (... -> V) ** 3
    images = True  # @grid values: which groups act on the plane is the conv2d rule's business

    def is_rep_form(self, expr) -> bool:
        return (isinstance(expr, ast.Attr) and expr.name == "dual") or (isinstance(expr, ast.Call) and expr.func == "freq")

    def support_tracker(self, group, ir):
        from .vanishing import SupportTracker
        return SupportTracker.for_group(group, ir)

    def term_span(self, checker, rep_expr, message, default):
        return default

    def evaluate(self, checker, expr, scope) -> matrix_reps.Rep:
        return _evaluate(checker, expr, scope)


def _evaluate(checker, expr, scope) -> matrix_reps.Rep:
    """A representation expression of a matrix group, as a canonical ``matrix_reps.Rep``."""
    G = checker.group
    if isinstance(expr, ast.Name):
        val = scope.lookup(expr.name)
        if isinstance(val, RepValue):
            return val.rep
        if val is None and expr.name in MatrixRepExpressions.predefined:
            if expr.name == "V":
                return matrix_reps.Vector(G)
            if expr.name == "scalar":
                return matrix_reps.Trivial(G)
            if expr.name == "det":
                return matrix_reps.Det(G)
            if not G.is_finite:
                checker.fail("E0209", f"`regular` needs a finite group; {G.name} is continuous", expr.span,
                        "no regular representation", hints=["regular representations exist for groups such as C8, D4, S5"])
            return permutation_reps.Regular(G)
    if isinstance(expr, (ast.Num, ast.Name)):
        n = checker.eval_static(expr, scope, "representation")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            checker.fail("E0207", f"`{n}` is not a representation", expr.span,
                    hints=["a positive integer n stands for n invariant scalars; V is the defining representation"])
        return _sized(checker, matrix_reps.scalars(G, n), expr.span)
    if isinstance(expr, ast.IrrepsLit):
        checker.fail("E0209", f"`{expr.text}` is an O(3) irrep; {G.name} has no such irreps", expr.span,
                "not a representation of this group",
                hints=[f"build representations of {G.name} from V, scalar, regular and integers: 16 + 8 * V + V**2"])
    if isinstance(expr, ast.Call) and expr.func == "freq":
        if len(expr.args) != 1 or expr.kwargs:
            checker.fail("E0209", "freq takes one integer frequency: freq(k)", expr.span, "wrong arguments")
        k = checker.eval_int(expr.args[0], scope)
        try:
            return matrix_reps.frequency(G, k)
        except ValueError as err:
            checker.fail("E0209", str(err), expr.span, "not a representation of this group",
                    hints=["freq(k), k >= 1, is the frequency-k irrep of SO(2), O(2), Cn and Dn"])
    if isinstance(expr, ast.Attr):
        if expr.name != "dual":
            checker.fail("E0209", f"representations have no attribute `.{expr.name}`", expr.span, "unknown attribute",
                    hints=["the dual (contragredient) representation is R.dual"])
        return matrix_reps.dual(_evaluate(checker, expr.value, scope))
    if isinstance(expr, ast.BinOp) and expr.op in "+*":
        a, b = _evaluate(checker, expr.left, scope), _evaluate(checker, expr.right, scope)
        if expr.op == "+":
            return _sized(checker, matrix_reps.direct_sum(a, b), expr.span)
        if a.size * b.size > MAX_REP_SIZE:
            _too_big(checker, a.size * b.size, expr.span)
        return matrix_reps.tensor(a, b)
    if isinstance(expr, ast.BinOp) and expr.op == "**":
        base, k = _evaluate(checker, expr.left, scope), checker.eval_int(expr.right, scope)
        if k < 1:
            checker.fail("E0108", "tensor powers need an exponent of at least 1", expr.right.span)
        if k * math.log(max(base.size, 1)) > math.log(MAX_REP_SIZE):
            _too_big(checker, float(base.size) ** k, expr.span)
        return matrix_reps.power(base, k)
    checker.fail("E0207", "expected a representation", expr.span, "not a representation",
            hints=["representations of matrix groups are built from V, scalar, det, freq(k), regular and "
                   "integers with +, *, ** and .dual, e.g. 16 + 8 * V + V**2"])


def _sized(checker, rep, span):
    if rep.size > MAX_REP_SIZE:
        _too_big(checker, rep.size, span)
    return rep


def _too_big(checker, size, span):
    checker.fail("E0108", f"this representation has dimension {int(size)}, more than {MAX_REP_SIZE}", span, "too large")
