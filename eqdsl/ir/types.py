"""Types of values in a model: what they are, which representation they carry, where they live."""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..reps.irreps import Irreps

PLACEMENTS = ("node", "edge", "graph", "grid")


@dataclass(frozen=True)
class ValueType:
    """kind: 'tensor' (features in a representation), 'point' (positions), 'graph' (edge index).

    ``rep`` is None for a tensor whose size is still open: an invariant MLP output
    whose last size is taken from the tensor product it feeds as weights.
    """
    kind: str
    rep: Irreps | None
    placement: str | None

    def __str__(self) -> str:
        where = f" @{self.placement}" if self.placement else ""
        if self.kind == "tensor":
            return f"{self.rep if self.rep is not None else '?x0e'}{where}"
        return f"{self.kind}{where}"

    def at(self, placement: str | None) -> "ValueType":
        return replace(self, placement=placement)

    @property
    def is_open(self) -> bool:
        return self.kind == "tensor" and self.rep is None


def tensor(rep: Irreps, placement: str | None) -> ValueType:
    return ValueType("tensor", rep, placement)


def same_rep(a, b) -> bool:
    """Equal as data layouts: neighbouring equal blocks may be split differently (irreps);
    representations of matrix groups are compared in their canonical form."""
    if isinstance(a, Irreps) and isinstance(b, Irreps):
        return a.simplify() == b.simplify()
    return a == b
