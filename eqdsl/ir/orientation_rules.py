"""Typing of position-orientation space (PONITA: Bekkers et al., 2024, "Fast, Expressive SE(n) Equivariant
Networks through Weight-Sharing in Position-Orientation Space").

``O = orientations(n = N, approximate = true)`` is a fixed grid of N directions o_1..o_N: a Fibonacci grid on
the sphere for O(3) and SO(3), N equally spaced angles on the circle for SO(2) and O(2).  A feature field on
positions x orientations, f(x_i, o_k), is stored as one copy per grid direction, exactly as a value in a
frame is (copy-major, graph indices offset per copy, values from outside repeated per copy; see
frame_rules): the label of ``O`` travels with the type (``ValueType.frame``), and every copy carries
invariant scalars, since f(x, o) is a function of the pair.

- ``to_orientations(x, O)``: features as functions on the grid, Y_l(o_k) . x_u for every irrep copy u
  (unit-norm spherical harmonics; the defining vector: o_k . v), one scalar per copy of an irrep.
  Invariant under the joint action only when each irrep's parity is (-1)^l, that of Y_l.
- ``pair_invariants(r, O)``: PONITA's invariants of an edge vector and each direction,
  (o . r, |r - (o . r) o|).
- ``orientation_conv(h, O, basis = B)``: the orientation half of PONITA's separable convolution,
  h'_k = 1/N sum_j K(o_k . o_j) h_j, depthwise, the kernel an MLP of o_k . o_j (its weights do not
  depend on N).  The spatial half is written with the usual layers: a kernel on pair invariants times
  h[src], summed over edges.
- ``from_orientations(y, O) -> R``: the readouts, (2l+1)/N sum_k y_k Y_l(o_k) for every irrep copy of R
  (scalars: the mean; vectors: d/N sum_k y_k o_k), one scalar channel of y per irrep copy.

The grid is not a group: rotating the input only approximately permutes the directions, so the network is
equivariant up to the grid's resolution, by declaration (``approximate = true``), and `eqc check` reports
the error as N grows.  The weights are independent of N, so the same model runs on any grid size.
"""
from __future__ import annotations

from ..reps.family import family_of
from .type_rules import TypeRuleError
from .types import ValueType, same_rep, tensor

CODE = "E0803"          # a value used against the rules of orientation space
DECLARE_CODE = "E0804"  # a grid not declared approximate
GRID_GROUPS = "O(3), SO(3) (directions on the sphere), SO(2) and O(2) (angles on the circle)"


def grid_dim(g) -> int:
    """The dimension of the space whose unit vectors the grid samples (3: the sphere, 2: the circle)."""
    if g.rep_family == "irreps":
        return 3
    from ..reps.matrix_reps import _planar_orthogonal  # matrix groups only: O(3) specs compile without numpy
    if _planar_orthogonal(g) and not g.is_finite:
        return 2
    raise TypeRuleError(CODE, f"orientation grids are not available for {g.name}", None, "no orientation grid",
                        notes=[f"orientation grids are built for {GRID_GROUPS}"],
                        hints=["use the group's equivariant layers instead"])


def lift_blocks(g, rep, where: str) -> list[tuple[int, int]]:
    """(multiplicity, degree l) of each block of `rep` as functions on the grid; an error where a block's
    evaluation at the directions is not invariant (O(3): parity other than (-1)^l; the plane: only scalars
    and the defining vector)."""
    if g.rep_family == "irreps":
        blocks = []
        for m in rep:
            l, p = m.ir.l, getattr(m.ir, "p", 1)
            if g.has_reflections and p != (-1) ** l:
                raise TypeRuleError(CODE, f"`{m}` has no values on the orientation grid: its parity is not (-1)^l",
                                    where, f"`{m}`",
                                    notes=["Y_l(o) has parity (-1)^l, so Y_l(o) . x is invariant under reflections only "
                                           "for irreps of that parity (0e, 1o, 2e, ...)"],
                                    hints=["map the features to irreps of parity (-1)^l first, e.g. linear(x) -> ..."])
            blocks.append((m.mul, l))
        return blocks
    fam = family_of(g)
    if same_rep(rep, fam.scalars(g, rep.dim)):
        return [(rep.dim, 0)]
    if same_rep(rep, fam.vector(g)):
        return [(1, 1)]
    raise TypeRuleError(CODE, f"`{rep}` has no values on the orientation grid", where, f"`{rep}`",
                        notes=["in the plane, invariant scalars and the defining vector V have values on a grid of "
                               "directions (o . v)"],
                        hints=["pass scalars or one vector V"])


def need_grid(t: ValueType, where: str) -> None:
    if t.kind != "orientations":
        raise TypeRuleError(CODE, f"expected an orientation grid, got {t}", where, "not an orientation grid",
                            hints=["make one: O = orientations(n = 16, approximate = true)"])


def _outside(x: ValueType, where: str) -> None:
    if x.frame is not None:
        raise TypeRuleError(CODE, "this value is already expressed in copies", where, f"in the {x.frame}",
                            hints=["pass a value from outside the grid or frame"])


def _on_grid(y: ValueType, grid: ValueType, where: str) -> None:
    if y.frame is None:
        raise TypeRuleError(CODE, "this value is not on an orientation grid", where, "not on the grid",
                            hints=["put values on the grid first: to_orientations(x, O) or pair_invariants(r, O)"])
    if y.frame != grid.frame:
        raise TypeRuleError(CODE, f"this value is in the {y.frame}", where, f"in the {y.frame}",
                            notes=[f"the grid passed is the {grid.frame}"],
                            hints=["pass the grid the value lives on"])


def _scalars_per_copy(g, y: ValueType, where: str) -> None:
    if y.rep is None or not same_rep(y.rep, family_of(g).scalars(g, y.rep.dim)):
        raise TypeRuleError(CODE, f"values on the orientation grid are invariant scalars per direction, got `{y.rep}`",
                            where, f"this is `{y.rep}`",
                            hints=["read equivariant values out first: from_orientations(y, O) -> R"])


def orientations(g, ins, attrs):
    dim = grid_dim(g)
    if attrs["n"] < 2:
        raise TypeRuleError("E0108", "an orientation grid needs at least 2 directions", "n")
    if not attrs.get("approximate"):
        raise TypeRuleError(DECLARE_CODE, f"a grid of {attrs['n']} directions is only approximately equivariant", None,
                            "not declared approximate",
                            notes=["rotations move the grid's directions between its points: features on it are "
                                   "equivariant up to the grid's resolution, and eqc check reports the error"],
                            hints=[f"declare it: orientations(n = {attrs['n']}, approximate = true)"])
    return ValueType("orientations", None, None, frame=attrs["label"]), {"dim": dim}


def to_orientations(g, ins, attrs):
    x, grid = ins["x"], ins["O"]
    need_grid(grid, "O")
    _outside(x, "x")
    if x.kind == "point":
        raise TypeRuleError("E0401", "a position is put on the orientation grid", "x", "this is a point, not a vector",
                            hints=["use differences of positions: pair_invariants(pos[src] - pos[dst], O)"])
    if x.kind != "tensor" or x.rep is None or x.placement not in ("node", "edge", "graph"):
        raise TypeRuleError(CODE, f"to_orientations(...) puts features on the grid, got {x}", "x", "not features")
    blocks = lift_blocks(g, x.rep, "x")
    out = tensor(family_of(g).scalars(g, sum(mul for mul, _ in blocks)), x.placement)
    return ValueType(out.kind, out.rep, out.placement, frame=grid.frame), {"blocks": blocks}


def pair_invariants(g, ins, attrs):
    r, grid = ins["r"], ins["O"]
    need_grid(grid, "O")
    _outside(r, "r")
    vector = family_of(g).vector(g)
    if r.kind != "tensor" or r.rep is None or not same_rep(r.rep, vector):
        raise TypeRuleError(CODE, f"pair_invariants(r, O) takes one vector `{vector}`, got {r}", "r", "not one vector",
                            hints=["pass an edge vector: pos[src] - pos[dst]"])
    out = tensor(family_of(g).scalars(g, 2), r.placement)
    return ValueType(out.kind, out.rep, out.placement, frame=grid.frame), {}


def orientation_conv(g, ins, attrs):
    h, grid = ins["h"], ins["O"]
    need_grid(grid, "O")
    _on_grid(h, grid, "h")
    _scalars_per_copy(g, h, "h")
    if attrs["basis"] < 1:
        raise TypeRuleError("E0108", "the kernel basis needs at least one function", "basis")
    return h, {}


def from_orientations(g, ins, attrs):
    y, grid, out = ins["y"], ins["O"], attrs["out"]
    need_grid(grid, "O")
    _on_grid(y, grid, "y")
    _scalars_per_copy(g, y, "y")
    blocks = lift_blocks(g, out, "out")
    channels = sum(mul for mul, _ in blocks)
    if y.rep.dim != channels:
        raise TypeRuleError("E0202", f"from_orientations(...) -> {out} reads one scalar channel per irrep copy "
                                     f"({channels}), got {y.rep.dim}", "y", f"this is `{y.rep}`",
                            hints=[f"map the copies to {channels} scalars first, e.g. mlp(...) -> "
                                   f"{family_of(g).scalars(g, channels)}"])
    return tensor(out, y.placement), {"blocks": blocks}
