"""The two families of representations behind one protocol, chosen by the group (``group.rep_family``).

* ``irreps``: O(3) and SO(3); a representation is an ``Irreps`` (``32x0e+16x1o``), pure algebra;
  its matrices are Wigner D blocks (``so3.irreps_D``).
* ``matrix``: groups given by generators; a representation is an ``eqdsl.reps.matrix_reps.Rep``
  (``V ** 2 + 3``) whose matrices come from the generators.

Both kinds of value answer ``dim`` and ``str()``, and parse back from their string form;
what differs (how to parse, the scalars, the vector, the matrix of an element, a random
element, the direct sum) is asked of the family here, so no caller branches on the kind of group.  The
matrix family loads numpy and scipy, so it is imported only when such a group is used.
"""
from __future__ import annotations

from typing import Protocol

from .irreps import Irreps


class RepFamily(Protocol):
    name: str
    # generated code: the call that rebuilds a rep from its string (with the module's group G), the
    # prefix of constants the spec does not name, and whether the string itself can name them (IRREPS_1x1o)
    source_parse: str
    constant_prefix: str
    names_constants_by_text: bool

    def parse(self, text: str, group):
        """The representation `text` writes (its ``str()`` form), raising IrrepsSyntaxError."""

    def scalars(self, group, n: int):
        """n invariant scalars."""

    def vector(self, group):
        """The representation carried by differences of positions."""

    def point_dim(self, group) -> int:
        """The dimension of the space positions live in."""

    def direct_sum(self, reps):
        """The representation of the concatenation of values carrying `reps`, in order."""

    def action(self, rep, element):
        """The matrix (numpy, [rep.dim, rep.dim]) by which `element` (of the defining representation) acts."""

    def sample(self, group, rng):
        """A random element of `group` in its defining representation (numpy)."""


class IrrepsFamily:
    name = "irreps"
    source_parse, constant_prefix, names_constants_by_text = "Irreps.parse", "IRREPS", True

    def parse(self, text: str, group) -> Irreps:
        return Irreps.parse(text, group)

    def scalars(self, group, n: int) -> Irreps:
        return Irreps.of([(n, group.trivial)])

    def vector(self, group) -> Irreps:
        return Irreps.of([(1, group.vector)])

    def point_dim(self, group) -> int:
        return 3

    def direct_sum(self, reps) -> Irreps:
        total = Irreps(())
        for rep in reps:
            total = total + rep
        return total

    def action(self, rep: Irreps, element):
        from . import so3  # numpy: only when numbers are asked for, not when a spec compiles
        return so3.irreps_D(rep, element)

    def sample(self, group, rng):
        from . import so3
        return so3.random_orthogonal(rng) if group.has_reflections else so3.random_rotation(rng)


class MatrixFamily:
    name = "matrix"
    source_parse, constant_prefix, names_constants_by_text = "parse_rep", "REP", False

    def parse(self, text: str, group):
        from .matrix_rep_syntax import parse_rep
        return parse_rep(text, group)

    def scalars(self, group, n: int):
        from .matrix_reps import scalars
        return scalars(group, n)

    def vector(self, group):
        from .matrix_reps import Vector
        return Vector(group)

    def point_dim(self, group) -> int:
        return group.dim

    def direct_sum(self, reps):
        from .matrix_reps import direct_sum
        return direct_sum(*reps)

    def action(self, rep, element):
        return rep.rho(element)

    def sample(self, group, rng):
        return group.sample(rng)


_FAMILIES = {"irreps": IrrepsFamily(), "matrix": MatrixFamily()}


def family_of(group) -> RepFamily:
    """The family of `group`'s representations."""
    return _FAMILIES[group.rep_family]
