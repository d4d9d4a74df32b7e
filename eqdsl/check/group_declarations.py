"""`group` declarations: the group a spec names, built or reported with E0109.

    group O3                                  irreps groups: O3, SO3
    group D4                                  a built-in group by name: C8, D4, S5, Lorentz
    group C8 = cyclic(8)                      constructors: cyclic, dihedral, symmetric, SO, O,
    group L  = lorentz()                        lorentz, SL, GL, Sp, SU2
    group G  = matrix_group(lie = [...], discrete = [...])   any group by its generators
"""
from __future__ import annotations

import math
import re

import numpy as np

from ..groups import GROUPS
from ..groups import builtin
from ..groups.matrix import GroupTooLarge, MatrixGroup
from ..ir.type_rules import suggest
from ..syntax import ast

MAX_GROUP_DIM = 64

_CONSTRUCTORS = {
    "cyclic": (1, builtin.cyclic), "dihedral": (1, builtin.dihedral), "symmetric": (1, builtin.symmetric),
    "SO": (1, builtin.SO), "O": (1, builtin.O), "SL": (1, builtin.SL), "GL": (1, builtin.GL),
    "Sp": (1, builtin.Sp), "lorentz": (0, lambda: builtin.lorentz("SO+")), "SU2": (0, builtin.SU2),
}
_KNOWN = "O3, SO3, Cn, Dn, Sn, Lorentz, or `= cyclic(n)`, dihedral(n), symmetric(n), SO(n), O(n), lorentz(), " \
         "SL(n), GL(n), Sp(n), SU2(), matrix_group(lie = [...], discrete = [...])"


def declared_group(decl: ast.GroupDecl, checker):
    """The group a declaration names; reports E0109 and raises the checker's failure otherwise."""
    if decl.value is None:
        if decl.name in GROUPS:
            return GROUPS[decl.name]
        try:
            return builtin.builtin_group(decl.name)
        except ValueError:
            m = re.match(r"^(SO|O|SL|GL|Sp)(\d+)$", decl.name)
            close = [f"write `group G = {m[1]}({m[2]})`"] if m else _suggest(decl.name)
            checker.fail("E0109", f"unknown group `{decl.name}`", decl.span, "not a known group",
                    hints=close + [f"known groups: {_KNOWN}"])
    e = decl.value
    if not isinstance(e, ast.Call):
        checker.fail("E0109", "a group is built by a call such as cyclic(8) or matrix_group(...)", e.span, "not a group",
                hints=[f"known groups: {_KNOWN}"])
    if e.func == "matrix_group":
        return _matrix_group(decl, e, checker)
    if e.func not in _CONSTRUCTORS:
        checker.fail("E0109", f"unknown group constructor `{e.func}`", e.func_span, "not a group constructor",
                hints=_suggest(e.func, _CONSTRUCTORS) + [f"known groups: {_KNOWN}"])
    arity, make = _CONSTRUCTORS[e.func]
    if e.kwargs or len(e.args) != arity:
        checker.fail("E0109", f"`{e.func}` takes {arity} integer argument{'s' if arity != 1 else ''}", e.span,
                "wrong arguments", hints=[f"e.g. {e.func}({'4' if arity else ''})"])
    args = [checker.eval_int(a, checker.globals) for a in e.args]
    try:
        return make(*args)
    except ValueError as err:
        checker.fail("E0109", str(err), e.args[0].span if e.args else e.span, "not a valid group")


def _suggest(name, known=None):
    return suggest(name, known if known is not None else list(_CONSTRUCTORS) + list(GROUPS) + ["matrix_group"])


def _matrix_group(decl, call: ast.Call, checker) -> MatrixGroup:
    if call.args:
        checker.fail("E0109", "matrix_group takes keyword arguments: lie = [...], discrete = [...]", call.args[0].span,
                "positional argument")
    given = {}
    for kw in call.kwargs:
        if kw.name not in ("lie", "discrete", "compact"):
            checker.fail("E0109", f"matrix_group has no argument `{kw.name}`", kw.name_span, "unknown argument",
                    hints=_suggest(kw.name, ["lie", "discrete", "compact"]))
        if kw.name in given:
            checker.fail("E0109", f"argument `{kw.name}` given twice", kw.name_span, "repeated")
        given[kw.name] = kw.value
    mats = {}
    dim = None
    for key in ("lie", "discrete"):
        mats[key] = []
        if key not in given:
            continue
        lst = given[key]
        if not isinstance(lst, ast.ListLit):
            checker.fail("E0109", f"`{key}` is a list of square matrices", lst.span, "not a list",
                    hints=[f"{key} = [[[0, -1], [1, 0]]] is one 2x2 matrix"])
        for item in lst.items:
            m = _matrix(item, checker)
            if dim is None:
                dim = m.shape[0]
            elif m.shape[0] != dim:
                checker.fail("E0109", f"this matrix is {m.shape[0]}x{m.shape[0]}, the others {dim}x{dim}", item.span,
                        "sizes differ", hints=["all generators act on the same defining representation"])
            if key == "discrete" and abs(np.linalg.det(m)) < 1e-9:
                checker.fail("E0109", "a discrete generator must be invertible", item.span, "singular matrix")
            mats[key].append(m)
    if dim is None:
        checker.fail("E0109", "matrix_group needs at least one generator", call.span, "no generators",
                hints=["give Lie-algebra generators (lie = [...]) and/or group elements (discrete = [...])"])
    orthogonal = all(np.allclose(a, -a.T) for a in mats["lie"]) and all(np.allclose(h @ h.T, np.eye(dim)) for h in mats["discrete"])
    compact = orthogonal
    if "compact" in given:
        c = checker.eval_static(given["compact"], checker.globals, "boolean")
        if not isinstance(c, bool):
            checker.fail("E0109", "`compact` is true or false", given["compact"].span, "not a boolean")
        compact = c
    group = MatrixGroup(decl.name, mats["lie"], mats["discrete"], compact=compact, dim=dim)
    if group.is_finite:
        try:
            group.elements()
        except GroupTooLarge as err:
            checker.fail("E0109", f"these discrete generators generate too many elements: {err}", given["discrete"].span,
                    "not a small finite group",
                    hints=["finite groups are enumerated; a generator of infinite order needs a Lie part instead"])
    return group


def _matrix(item, checker) -> np.ndarray:
    if not isinstance(item, ast.ListLit) or not item.items:
        checker.fail("E0109", "expected a matrix: a list of rows, e.g. [[0, -1], [1, 0]]", item.span, "not a matrix")
    rows = []
    for row in item.items:
        if not isinstance(row, ast.ListLit):
            checker.fail("E0109", "expected a row: a list of numbers, e.g. [0, -1]", row.span, "not a row")
        vals = []
        for x in row.items:
            v = checker.eval_static(x, checker.globals, "number")
            if isinstance(v, bool) or not math.isfinite(float(v)):
                checker.fail("E0109", "matrix entries are finite numbers", x.span, "not a number")
            vals.append(float(v))
        rows.append(vals)
    n = len(rows)
    if any(len(r) != n for r in rows):
        checker.fail("E0109", f"a generator must be a square matrix; this one has {n} rows of lengths "
                f"{sorted({len(r) for r in rows})}", item.span, "not square")
    if n > MAX_GROUP_DIM:
        checker.fail("E0109", f"{n}x{n} generators: the defining representation is limited to {MAX_GROUP_DIM} dimensions",
                item.span, "too large")
    return np.array(rows)
