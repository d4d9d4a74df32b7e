"""The protocol every symmetry group implements.

The type checker only talks to groups through this interface, so a new group
family is one new file in this package plus an entry in ``GROUPS``.
"""
from __future__ import annotations

from typing import Protocol, Sequence

from ..reps.irreps import Irreps


class Group(Protocol):
    name: str
    has_reflections: bool

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

    def sh_irreps(self, lmax: int) -> Irreps:
        """Irreps of spherical harmonics up to lmax."""

    def pointwise(self, ir, parity: str):
        """Irrep of f(x) for x in ``ir`` and f with parity 'odd', 'even' or 'none'; None if not equivariant."""

    def selection_note(self, a, b) -> str:
        """Human explanation of the selection rule for a (x) b."""
