"""Typing of frame averaging (Puny et al., 2022, "Frame Averaging for Invariant and Equivariant Network Design").

``f = frame(pos)`` gives each graph a small set of group elements F(X) that moves with the points:
F(gX + t) = g F(X).  ``to_frame(x, f)`` expresses a value in every element of its graph's frame,
rho(F_k)^-1 x (positions: rho(F_k)^-1 (p - centroid)); the copies are invariant as a set, so they are typed
as invariant scalars and any layer on scalars may follow, a plain MLP on coordinates included.
``from_frame(y, f) -> R`` maps each copy back, rho_R(F_k) y_k, and averages: the result is equivariant.

A value expressed in a frame carries the frame's label (``ValueType.frame``).  Every op passes it on
(``propagate``); combining values of two different frames is an error (their copies are not matched up
under the group), as is an output, or a gradient, that never left its frame.

The frames: for O(3) and SO(3) the PCA frames of each graph's centred points, the eight (O(3)) or four
proper (SO(3)) sign choices of the covariance's eigenvectors; for SO(2) and O(2) the same in the plane (two
or four); for the finite groups of the plane (Cn, Dn) the whole group.  PCA frames need distinct
eigenvalues: the generated module refuses degenerate point sets at run time.
"""
from __future__ import annotations

from dataclasses import replace
from typing import NamedTuple

from ..reps.family import family_of
from .type_rules import TypeRuleError
from .types import ValueType, same_rep, tensor

CODE = "E0701"        # a value used against the rules of its frame
GROUP_CODE = "E0702"  # a group without frames
# Ops whose rule decides the frame (or orientation grid, orientation_rules) of their result itself.
FRAME_OPS = ("frame", "to_frame", "from_frame",
             "orientations", "to_orientations", "pair_invariants", "orientation_conv", "from_orientations")
# Ops that may not read a value still in copies: the gradient of a value in copies would sum over them.
BARRIERS = ("grad",)


class CopiesKind(NamedTuple):
    """What a kind of copies is called in diagnostics, its code, how a value leaves it and why it must."""
    noun: str
    code: str
    leave: str
    differentiate: str
    why: str


# Labels name what made the copies and where: "frame made at FILE:LINE:COL", "orientation grid made at ...".
KINDS = {"frame": CopiesKind("a frame", CODE, "average it: from_frame(y, f) -> R",
                             "differentiate the average: grad(from_frame(y, f) -> 1x0e, pos)",
                             "each copy is the value seen from one element of the frame; only their average is "
                             "equivariant"),
         "orientation grid": CopiesKind("an orientation grid", "E0803", "read it out: from_orientations(y, O) -> R",
                                        "differentiate a readout: grad(from_orientations(y, O) -> 1x0e, pos)",
                                        "each copy is the value at one direction of the grid; only readouts over the "
                                        "grid are (approximately) equivariant")}


def label(kind: str, where: str) -> str:
    """The label of copies made by `kind` (a key of KINDS) at `where`."""
    return f"{kind} made at {where}"


def kind_of(label: str) -> CopiesKind:
    return KINDS[label.split(" made at ", 1)[0]]


FRAME_GROUPS = "O(3), SO(3) and the groups of the plane (SO(2), O(2), Cn, Dn)"


def frame_method(g) -> tuple[str, int]:
    """How `g`'s frames are made ("pca" or "group") and how many elements each graph's frame has."""
    if g.rep_family == "irreps":
        return "pca", 8 if g.has_reflections else 4
    from ..reps.matrix_reps import _planar_orthogonal  # matrix groups only: O(3) specs compile without numpy
    if _planar_orthogonal(g):
        import numpy as np
        if g.is_finite:
            return "group", g.order
        return "pca", 4 if any(np.linalg.det(h) < 0 for h in g.discrete_generators) else 2
    raise TypeRuleError(GROUP_CODE, f"frame averaging is not available for {g.name}", None, "no frames for this group",
                        notes=[f"frames are built for {FRAME_GROUPS}"],
                        hints=["use the group's equivariant layers instead"])


def _types(ins: dict):
    for port, t in ins.items():
        if isinstance(t, list):
            yield from ((f"{port}.{i}", x) for i, x in enumerate(t))
        elif t is not None:
            yield port, t


def propagate(name: str, ins: dict, out: ValueType) -> ValueType:
    """The result of op `name` is in the frame its inputs are in (none, or one)."""
    if name in FRAME_OPS:
        return out
    first = None
    for port, t in _types(ins):
        if t.frame is None:
            continue
        if first is None:
            first = (port, t.frame)
            if name in BARRIERS:
                kind = kind_of(t.frame)
                raise TypeRuleError(kind.code, f"`{name}` cannot read a value expressed in {kind.noun}", port,
                                    f"in the {t.frame}", hints=[kind.differentiate])
        elif t.frame != first[1]:
            frames = kind_of(t.frame) is kind_of(first[1]) is KINDS["frame"]
            raise TypeRuleError(CODE if frames else "E0803",
                                f"values expressed in two different {'frames' if frames else 'frames or grids'} "
                                      "are combined", port, f"in the {t.frame}",
                                notes=[f"another input is in the {first[1]}; the copies of two frames "
                                       "are not matched up under the group" if frames else
                                       f"another input is in the {first[1]}; their copies are not matched up"],
                                hints=["express both values in one frame: to_frame(x, f) with the same f" if frames else
                                       "put both values on one grid, or in one frame"])
    return out if first is None else replace(out, frame=first[1])


def need_frame(t: ValueType, where: str) -> None:
    if t.kind != "frame":
        raise TypeRuleError(CODE, f"expected a frame, got {t}", where, "not a frame",
                            hints=["make one from the positions: f = frame(pos)"])


def frame(g, ins, attrs):
    pos = ins["pos"]
    method, count = frame_method(g)
    if pos.kind != "point":
        raise TypeRuleError(CODE, f"frame(...) is built from positions, got {pos}", "pos", "not a position",
                            hints=["pass a position input: frame(pos)"])
    return ValueType("frame", None, "graph", frame=attrs["label"]), {"method": method, "frames": count}


def to_frame(g, ins, attrs):
    x, f = ins["x"], ins["f"]
    need_frame(f, "f")
    if x.frame is not None:
        raise TypeRuleError(CODE, "this value is already expressed in a frame", "x", f"in the {x.frame}")
    if x.kind == "point":
        dim = family_of(g).point_dim(g)
    elif x.kind == "tensor" and x.rep is not None and x.placement in ("node", "edge", "graph"):
        dim = x.rep.dim
    else:
        raise TypeRuleError(CODE, f"to_frame(...) expresses positions or features in a frame, got {x}", "x",
                            "cannot be expressed in a frame")
    return replace(tensor(family_of(g).scalars(g, dim), x.placement), frame=f.frame), {"point": x.kind == "point"}


def from_frame(g, ins, attrs):
    y, f, out = ins["y"], ins["f"], attrs["out"]
    need_frame(f, "f")
    if y.kind != "tensor" or y.rep is None:
        raise TypeRuleError(CODE, f"from_frame(...) averages features, got {y}", "y", "not features")
    if y.frame is None:
        raise TypeRuleError(CODE, "this value is not expressed in a frame", "y", "not in a frame",
                            hints=["express values in the frame first: to_frame(x, f)"])
    if y.frame != f.frame:
        raise TypeRuleError(CODE, "this value is expressed in another frame", "y", f"in the {y.frame}",
                            notes=[f"`f` is the {f.frame}"], hints=["pass the frame the value was expressed in"])
    if same_rep(y.rep, family_of(g).scalars(g, y.rep.dim)) and y.rep.dim == out.dim:
        rotate = True   # the coordinates of R in each copy's frame: map them back
    elif same_rep(y.rep, out):
        rotate = False  # already R in every copy: only the average
    else:
        raise TypeRuleError("E0202", f"from_frame(...) -> {out} takes {out.dim} invariant scalars per copy, or values "
                                     f"carrying `{out}`; got `{y.rep}`", "y", f"this is `{y.rep}`",
                            hints=[f"map the copies to {out.dim} scalars first, e.g. mlp(...) -> "
                                   f"{family_of(g).scalars(g, out.dim)}"])
    return tensor(out, y.placement), {"rotate": rotate}
