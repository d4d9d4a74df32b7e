"""The protocol every symmetry group implements.

The type checker only talks to groups through this interface, so a new group
family is one new file in this package plus an entry in ``GROUPS``.
"""
from __future__ import annotations

from typing import Protocol, Sequence


class IrrepsSyntaxError(ValueError):
    """Raised when an irrep or a representation does not parse; carries a hint for diagnostics.

    Defined with the groups because ``parse_irrep`` raises it; ``eqdsl.reps`` re-exports it.
    """

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class Group(Protocol):
    name: str
    has_reflections: bool
    rep_family: str  # "irreps" (reps are eqdsl.reps.Irreps) or "matrix" (eqdsl.reps.matrix_reps)

    def parse_irrep(self, text: str):
        """Parse one irrep (no multiplicity), raising IrrepsSyntaxError with a hint."""

    @property
    def trivial(self):
        """The trivial irrep (invariant scalars)."""

    @property
    def vector(self):
        """The irrep carried by differences of positions."""

    def product(self, a, b) -> Sequence:
        """Irreps appearing in a (x) b, each once, sorted."""

    def harmonic(self, l: int):
        """The irrep carried by the degree-l spherical harmonics (irreps families only)."""

    def pointwise(self, ir, parity: str):
        """Irrep of f(x) for x in ``ir`` and f with parity 'odd', 'even' or 'none'; None if not equivariant."""

    def selection_note(self, a, b) -> str:
        """Human explanation of the selection rule for a (x) b."""
