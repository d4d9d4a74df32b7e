"""What every typing rule is made of: an op's signature (``Op``, ``Param``), the error a rule raises
(``TypeRuleError``), the checks that read only a value's kind and placement, and the questions a
rule asks of its group's family of representations (``FamilyRules``).

The registry of ops (``ops.py``) writes each op's rule once against ``FamilyRules``; the two
families answer in ``irreps_rules.py`` (O3, SO3: selection rules) and ``matrix_rules.py`` (matrix
groups: solved equivariance constraints).
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Callable

from .types import ValueType

REQUIRED = object()
FAMILIES = ("irreps", "matrix")


@dataclass
class TypeRuleError(Exception):
    code: str
    message: str
    where: str | None = None  # a parameter name, "out" for the `-> R` target, None for the call
    label: str = ""
    notes: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # value | values* | int | ints* | float | bool | rep | act | choice
    default: object = REQUIRED
    choices: tuple[str, ...] = ()
    keyword_only: bool = False
    families: tuple[str, ...] = FAMILIES  # the families of groups for which the parameter exists


@dataclass(frozen=True)
class Op:
    name: str
    params: tuple[Param, ...]
    infer: Callable  # (group, ins: dict[str, ValueType | list], attrs: dict) -> (ValueType, derived attrs)
    out: str = "check"  # "defines": `-> R` gives the output rep (attrs["out"]); "check": it is compared
    doc: str = ""
    families: tuple[str, ...] = FAMILIES  # the families of groups that have the op

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def for_family(self, family: str) -> "Op":
        """The op as a group of `family` sees it: only the parameters that family has."""
        params = tuple(p for p in self.params if family in p.families)
        return self if params == self.params else replace(self, params=params)


class FamilyRules:
    """The questions the rules of ``ops.py`` ask about representations, answered per family.  Each
    raises the family's ``TypeRuleError`` (with its own notes and hints) where the answer is no.

    Ops that only one family has (tensor products and harmonics for irreps; solved bilinear maps,
    steerable image convolutions and group pooling for matrix groups) keep their whole rule in their
    family's class, under the op's name."""

    def guard(self, rule, g, ins, attrs):
        """Run `rule`, turning the family's own failures (a constraint too large to solve) into errors."""
        return rule(g, ins, attrs)

    def selector(self, x: ValueType, by: ValueType, whose: str) -> tuple:
        """`by = s` of a layer with weights per column of s: s must be invariant scalars where x is.
        The placement of the result and the number of columns."""
        self.need_invariant(by, "by", f"the values that select {whose} weights")
        return same_placement("by", x, by), by.rep.dim

    def need_invariant(self, t: ValueType, where: str, what: str, code: str = "E0305") -> None:
        raise NotImplementedError

    def check_max(self, x: ValueType, what: str) -> None:
        """A componentwise maximum over `x` (aggregation or pooling) is equivariant."""
        raise NotImplementedError

    def linear_map(self, g, rep_in, rep_out) -> dict:
        """An equivariant linear map reaches every block of `rep_out`; its derived attributes."""
        raise NotImplementedError

    def check_bias(self, g, rep_out, attrs: dict) -> None:
        raise NotImplementedError

    def pointwise(self, g, rep, act: str, where: str):
        """The representation of act(x) applied componentwise."""
        raise NotImplementedError

    def gate(self, g, rep_in, rep_out, attrs: dict) -> dict:
        """`rep_in` is what gate -> `rep_out` takes; its derived attributes."""
        raise NotImplementedError

    def norm(self, g, rep) -> tuple:
        """The invariant scalars norm(x) gives, and derived attributes."""
        raise NotImplementedError

    def mlp_output(self, g, x: ValueType, out, attrs: dict) -> tuple:
        """An MLP's output type for `-> out` (None when not written), and derived attributes."""
        raise NotImplementedError

    def check_shiftable(self, x: ValueType) -> None:
        """A constant may be added to `x`."""
        raise NotImplementedError

    def product(self, g, a, b, sym: str, where: str):
        """The representation of the elementwise product (or quotient, `sym`) of `a` and `b`."""
        raise NotImplementedError

    def check_divisor(self, b: ValueType) -> None:
        raise NotImplementedError

    def power(self, g, x: ValueType, k: float) -> ValueType:
        raise NotImplementedError


# -- checks on kind and placement, the same for every family -------------------------------------------
POINT_HINT = "differences of positions are vectors: pos[dst] - pos[src]"


def need_tensor(t: ValueType, where: str, what: str = "features") -> None:
    if t.kind == "point":
        raise TypeRuleError("E0401", f"a position is used as {what}", where, "this is a point, not a vector",
                            notes=["positions move under translations; features built from them directly break translation equivariance"],
                            hints=["use differences of positions, e.g. pos[dst] - pos[src]"])
    if t.kind == "rotation":
        raise TypeRuleError("E0801", f"a rotation is used as {what}", where, "a rotation is an output",
                            hints=["its columns are vectors: use the vectors it was built from"])
    if t.kind == "frame":
        raise TypeRuleError("E0701", f"a frame is used as {what}", where, "a frame holds group elements, not features",
                            hints=["express values in it with to_frame(x, f) and average them with from_frame(y, f) -> R"])
    if t.kind == "orientations":
        raise TypeRuleError("E0803", f"an orientation grid is used as {what}", where, "a grid holds directions, not features",
                            hints=["put values on it with to_orientations(x, O) and read them out with "
                                   "from_orientations(y, O) -> R"])
    if t.kind == "graph":
        raise TypeRuleError("E0502", f"the graph is used as {what}", where, "a graph carries only the edge index",
                            hints=["index node features with [src] or [dst] instead"])
    if t.rep is None:
        raise TypeRuleError("E0205", "the size of this value is not known here", where,
                            "an MLP without a final size takes it from the tensor product it feeds",
                            hints=["give the MLP its output size as the last size, or use it only as `weights =`"])


def same_placement(where: str, *types: ValueType) -> str | None:
    places = {t.placement for t in types if t.placement is not None}
    if len(places) > 1:
        raise TypeRuleError("E0501", f"values live in different places: {', '.join('@' + p for p in sorted(places))}",
                            where, "placements differ",
                            hints=["move values with x[src] / x[dst] (node to edge), scatter_sum (edge to node) "
                                   "or sum_nodes (node to graph)"])
    return places.pop() if places else None


def suggest(name: str, known) -> list[str]:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return [f"did you mean `{close[0]}`?"] if close else []
