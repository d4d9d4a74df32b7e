"""`group` declarations and representation expressions for matrix groups.

    group O3                                  irreps groups: O3, SO3
    group D4                                  a built-in group by name: C8, D4, S5, Lorentz
    group C8 = cyclic(8)                      constructors: cyclic, dihedral, symmetric, SO, O,
    group L  = lorentz()                        lorentz, SL, GL, Sp, SU2
    group G  = matrix_group(lie = [...], discrete = [...])   any group by its generators

Representations of a matrix group are written with ``V`` (the defining rep),
``scalar``, ``det`` (the determinant: the sign of reflections), ``freq(k)`` (the
frequency-k irrep of the planar groups SO(2), O(2), Cn, Dn), ``regular`` (finite
groups), integers (that many scalars), ``+``
(direct sum), ``*`` (tensor product; ``3 * V`` is three copies of V), ``**k``
and ``.dual``.
"""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np

from ..groups import GROUPS
from ..groups import builtin
from ..groups.matrix import GroupTooLarge, MatrixGroup
from ..syntax import ast

if TYPE_CHECKING:
    from ..reps import general

REP_NAMES = ("V", "scalar", "regular", "det")
MAX_GROUP_DIM = 64
MAX_REP_SIZE = 1_000_000

_CONSTRUCTORS = {
    "cyclic": (1, builtin.cyclic), "dihedral": (1, builtin.dihedral), "symmetric": (1, builtin.symmetric),
    "SO": (1, builtin.SO), "O": (1, builtin.O), "SL": (1, builtin.SL), "GL": (1, builtin.GL),
    "Sp": (1, builtin.Sp), "lorentz": (0, lambda: builtin.lorentz("SO+")), "SU2": (0, builtin.SU2),
}
_KNOWN = "O3, SO3, Cn, Dn, Sn, Lorentz, or `= cyclic(n)`, dihedral(n), symmetric(n), SO(n), O(n), lorentz(), " \
         "SL(n), GL(n), Sp(n), SU2(), matrix_group(lie = [...], discrete = [...])"


def declared_group(decl: ast.GroupDecl, ck):
    """The group a declaration names; reports E0109 and raises the checker's failure otherwise."""
    if decl.value is None:
        if decl.name in GROUPS:
            return GROUPS[decl.name]
        try:
            return builtin.builtin_group(decl.name)
        except ValueError:
            m = re.match(r"^(SO|O|SL|GL|Sp)(\d+)$", decl.name)
            close = [f"write `group G = {m[1]}({m[2]})`"] if m else ck_suggest(decl.name)
            ck.fail("E0109", f"unknown group `{decl.name}`", decl.span, "not a known group",
                    hints=close + [f"known groups: {_KNOWN}"])
    e = decl.value
    if not isinstance(e, ast.Call):
        ck.fail("E0109", "a group is built by a call such as cyclic(8) or matrix_group(...)", e.span, "not a group",
                hints=[f"known groups: {_KNOWN}"])
    if e.func == "matrix_group":
        return _matrix_group(decl, e, ck)
    if e.func not in _CONSTRUCTORS:
        ck.fail("E0109", f"unknown group constructor `{e.func}`", e.func_span, "not a group constructor",
                hints=ck_suggest(e.func, _CONSTRUCTORS) + [f"known groups: {_KNOWN}"])
    arity, make = _CONSTRUCTORS[e.func]
    if e.kwargs or len(e.args) != arity:
        ck.fail("E0109", f"`{e.func}` takes {arity} integer argument{'s' if arity != 1 else ''}", e.span,
                "wrong arguments", hints=[f"e.g. {e.func}({'4' if arity else ''})"])
    args = [ck.eval_int(a, ck.globals) for a in e.args]
    try:
        return make(*args)
    except ValueError as err:
        ck.fail("E0109", str(err), e.args[0].span if e.args else e.span, "not a valid group")


def ck_suggest(name, known=None):
    from .ops import suggest
    return suggest(name, known if known is not None else list(_CONSTRUCTORS) + list(GROUPS) + ["matrix_group"])


def _matrix_group(decl, call: ast.Call, ck) -> MatrixGroup:
    if call.args:
        ck.fail("E0109", "matrix_group takes keyword arguments: lie = [...], discrete = [...]", call.args[0].span,
                "positional argument")
    given = {}
    for kw in call.kwargs:
        if kw.name not in ("lie", "discrete", "compact"):
            ck.fail("E0109", f"matrix_group has no argument `{kw.name}`", kw.name_span, "unknown argument",
                    hints=ck_suggest(kw.name, ["lie", "discrete", "compact"]))
        if kw.name in given:
            ck.fail("E0109", f"argument `{kw.name}` given twice", kw.name_span, "repeated")
        given[kw.name] = kw.value
    mats = {}
    dim = None
    for key in ("lie", "discrete"):
        mats[key] = []
        if key not in given:
            continue
        lst = given[key]
        if not isinstance(lst, ast.ListLit):
            ck.fail("E0109", f"`{key}` is a list of square matrices", lst.span, "not a list",
                    hints=[f"{key} = [[[0, -1], [1, 0]]] is one 2x2 matrix"])
        for item in lst.items:
            m = _matrix(item, ck)
            if dim is None:
                dim = m.shape[0]
            elif m.shape[0] != dim:
                ck.fail("E0109", f"this matrix is {m.shape[0]}x{m.shape[0]}, the others {dim}x{dim}", item.span,
                        "sizes differ", hints=["all generators act on the same defining representation"])
            if key == "discrete" and abs(np.linalg.det(m)) < 1e-9:
                ck.fail("E0109", "a discrete generator must be invertible", item.span, "singular matrix")
            mats[key].append(m)
    if dim is None:
        ck.fail("E0109", "matrix_group needs at least one generator", call.span, "no generators",
                hints=["give Lie-algebra generators (lie = [...]) and/or group elements (discrete = [...])"])
    orthogonal = all(np.allclose(a, -a.T) for a in mats["lie"]) and all(np.allclose(h @ h.T, np.eye(dim)) for h in mats["discrete"])
    compact = orthogonal
    if "compact" in given:
        c = ck.eval_static(given["compact"], ck.globals, "boolean")
        if not isinstance(c, bool):
            ck.fail("E0109", "`compact` is true or false", given["compact"].span, "not a boolean")
        compact = c
    group = MatrixGroup(decl.name, mats["lie"], mats["discrete"], compact=compact, dim=dim)
    if group.is_finite:
        try:
            group.elements()
        except GroupTooLarge as err:
            ck.fail("E0109", f"these discrete generators generate too many elements: {err}", given["discrete"].span,
                    "not a small finite group",
                    hints=["finite groups are enumerated; a generator of infinite order needs a Lie part instead"])
    return group


def _matrix(item, ck) -> np.ndarray:
    if not isinstance(item, ast.ListLit) or not item.items:
        ck.fail("E0109", "expected a matrix: a list of rows, e.g. [[0, -1], [1, 0]]", item.span, "not a matrix")
    rows = []
    for row in item.items:
        if not isinstance(row, ast.ListLit):
            ck.fail("E0109", "expected a row: a list of numbers, e.g. [0, -1]", row.span, "not a row")
        vals = []
        for x in row.items:
            v = ck.eval_static(x, ck.globals, "number")
            if isinstance(v, bool) or not math.isfinite(float(v)):
                ck.fail("E0109", "matrix entries are finite numbers", x.span, "not a number")
            vals.append(float(v))
        rows.append(vals)
    n = len(rows)
    if any(len(r) != n for r in rows):
        ck.fail("E0109", f"a generator must be a square matrix; this one has {n} rows of lengths "
                f"{sorted({len(r) for r in rows})}", item.span, "not square")
    if n > MAX_GROUP_DIM:
        ck.fail("E0109", f"{n}x{n} generators: the defining representation is limited to {MAX_GROUP_DIM} dimensions",
                item.span, "too large")
    return np.array(rows)


def eval_general_rep(ck, expr, scope) -> general.Rep:
    """A representation expression of a matrix group, as a canonical ``general.Rep``."""
    from ..reps import general  # scipy-backed: imported only for specs over matrix groups
    from .values import Rep
    G = ck.group
    if isinstance(expr, ast.Name):
        val = scope.lookup(expr.name)
        if isinstance(val, Rep):
            return val.irreps
        if val is None and expr.name in REP_NAMES:
            if expr.name == "V":
                return general.Vector(G)
            if expr.name == "scalar":
                return general.Trivial(G)
            if expr.name == "det":
                return general.Det(G)
            if not G.is_finite:
                ck.fail("E0209", f"`regular` needs a finite group; {G.name} is continuous", expr.span,
                        "no regular representation", hints=["regular representations exist for groups such as C8, D4, S5"])
            return general.Regular(G)
    if isinstance(expr, (ast.Num, ast.Name)):
        n = ck.eval_static(expr, scope, "representation")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            ck.fail("E0207", f"`{n}` is not a representation", expr.span,
                    hints=["a positive integer n stands for n invariant scalars; V is the defining representation"])
        return _sized(ck, general.scalars(G, n), expr.span)
    if isinstance(expr, ast.IrrepsLit):
        ck.fail("E0209", f"`{expr.text}` is an O(3) irrep; {G.name} has no such irreps", expr.span,
                "not a representation of this group",
                hints=[f"build representations of {G.name} from V, scalar, regular and integers: 16 + 8 * V + V**2"])
    if isinstance(expr, ast.Call) and expr.func == "freq":
        if len(expr.args) != 1 or expr.kwargs:
            ck.fail("E0209", "freq takes one integer frequency: freq(k)", expr.span, "wrong arguments")
        k = ck.eval_int(expr.args[0], scope)
        try:
            return general.frequency(G, k)
        except ValueError as err:
            ck.fail("E0209", str(err), expr.span, "not a representation of this group",
                    hints=["freq(k), k >= 1, is the frequency-k irrep of SO(2), O(2), Cn and Dn"])
    if isinstance(expr, ast.Attr):
        if expr.name != "dual":
            ck.fail("E0209", f"representations have no attribute `.{expr.name}`", expr.span, "unknown attribute",
                    hints=["the dual (contragredient) representation is R.dual"])
        return general.dual(eval_general_rep(ck, expr.value, scope))
    if isinstance(expr, ast.BinOp) and expr.op in "+*":
        a, b = eval_general_rep(ck, expr.left, scope), eval_general_rep(ck, expr.right, scope)
        if expr.op == "+":
            return _sized(ck, general.direct_sum(a, b), expr.span)
        if a.size * b.size > MAX_REP_SIZE:
            _too_big(ck, a.size * b.size, expr.span)
        return general.tensor(a, b)
    if isinstance(expr, ast.BinOp) and expr.op == "**":
        base, k = eval_general_rep(ck, expr.left, scope), ck.eval_int(expr.right, scope)
        if k < 1:
            ck.fail("E0108", "tensor powers need an exponent of at least 1", expr.right.span)
        if k * math.log(max(base.size, 1)) > math.log(MAX_REP_SIZE):
            _too_big(ck, float(base.size) ** k, expr.span)
        return general.power(base, k)
    ck.fail("E0207", "expected a representation", expr.span, "not a representation",
            hints=["representations of matrix groups are built from V, scalar, det, freq(k), regular and "
                   "integers with +, *, ** and .dual, e.g. 16 + 8 * V + V**2"])


def _sized(ck, rep, span):
    if rep.size > MAX_REP_SIZE:
        _too_big(ck, rep.size, span)
    return rep


def _too_big(ck, size, span):
    ck.fail("E0108", f"this representation has dimension {int(size)}, more than {MAX_REP_SIZE}", span, "too large")
