"""Types of values in a model: what they are, which representation they carry, where they live."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..reps.irreps import Irreps

if TYPE_CHECKING:  # matrix-group reps load scipy: named for the annotation only
    from ..reps.matrix_reps import Rep as MatrixRep

PLACEMENTS = ("node", "edge", "graph", "grid")


@dataclass(frozen=True)
class ValueType:
    """kind: 'tensor' (features in a representation), 'point' (positions), 'graph' (edge index), 'frame'
    (the frames of frame averaging, one set per graph).

    ``rep`` is the value's representation in its group's family (``Irreps`` for O(3)/SO(3), a
    ``matrix_reps.Rep`` for matrix groups), or None for a tensor whose size is still open: an
    invariant MLP output whose last size is taken from the tensor product it feeds as weights.

    ``frame`` names the frame (the label of a ``frame(pos)`` value, "frame made at FILE:LINE:COL") a value is
    expressed in: such a value exists once per element of its graph's frame, and ``rep`` is what each copy
    carries.  Only ``from_frame`` takes a value out of its frame (averaging over the copies).  Values on an
    orientation grid (kind 'orientations', label "orientation grid made at ...") are copies the same way,
    one per direction of the grid, and leave it through ``from_orientations``.
    """
    kind: str
    rep: Irreps | MatrixRep | None
    placement: str | None
    frame: str | None = None

    def __str__(self) -> str:
        where = (f" @{self.placement}" if self.placement else "") + (f" in the {self.frame}" if self.frame else "")
        if self.kind == "tensor":
            return f"{self.rep if self.rep is not None else '?x0e'}{where}"
        return f"{self.kind}{where}"

    def at(self, placement: str | None) -> "ValueType":
        return replace(self, placement=placement)

    @property
    def is_open(self) -> bool:
        return self.kind == "tensor" and self.rep is None


def tensor(rep: Irreps | MatrixRep, placement: str | None) -> ValueType:
    return ValueType("tensor", rep, placement)


def same_rep(a, b) -> bool:
    """Equal as data layouts: neighbouring equal blocks may be split differently (irreps); both
    families' ``simplify()`` gives the form in which equal layouts are equal values."""
    if a is None or b is None:
        return a is b
    return a.simplify() == b.simplify()
