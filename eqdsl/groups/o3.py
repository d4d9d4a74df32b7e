"""O(3) (rotations and reflections) and SO(3) (rotations only).

O(3) irreps are ``le``/``lo``: degree l and parity under inversion.
SO(3) irreps are written ``l`` inside irreps (``1x1``, ``16x2``) and carry no parity.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .base import IrrepsSyntaxError


class _Degree:
    """What O(3) and SO(3) irreps share: a degree l, dimension 2l+1."""
    l: int

    @property
    def dim(self) -> int:
        return 2 * self.l + 1

    @property
    def is_scalar(self) -> bool:
        return self.l == 0


@dataclass(frozen=True, order=True)
class O3Irrep(_Degree):
    l: int
    p: int  # +1 even, -1 odd under inversion; field order gives e3nn's sort (odd first)

    def __post_init__(self):
        if self.l < 0 or self.p not in (1, -1):
            raise ValueError(f"invalid O3 irrep l={self.l} p={self.p}")

    @property
    def is_trivial(self) -> bool:
        return self.l == 0 and self.p == 1

    def __str__(self) -> str:
        return f"{self.l}{'e' if self.p == 1 else 'o'}"


@dataclass(frozen=True, order=True)
class SO3Irrep(_Degree):
    l: int

    def __post_init__(self):
        if self.l < 0:
            raise ValueError(f"invalid SO3 irrep l={self.l}")

    @property
    def is_trivial(self) -> bool:
        return self.l == 0

    @property
    def p(self) -> int:
        return 1

    def __str__(self) -> str:
        return str(self.l)


_O3_IRREP = re.compile(r"^(\d+)([eo])$")
_SO3_IRREP = re.compile(r"^(\d+)$")


class O3Group:
    rep_family = "irreps"
    name = "O3"
    has_reflections = True

    def parse_irrep(self, text: str) -> O3Irrep:
        text = text.strip()
        m = _O3_IRREP.match(text)
        if m:
            return O3Irrep(int(m.group(1)), 1 if m.group(2) == "e" else -1)
        if _SO3_IRREP.match(text):
            raise IrrepsSyntaxError(f"O3 irrep `{text}` has no parity",
                                    f"write `{text}e` (even) or `{text}o` (odd)")
        raise IrrepsSyntaxError(f"`{text}` is not an O3 irrep", "O3 irreps are written like 0e, 1o, 2e")

    @property
    def trivial(self) -> O3Irrep:
        return O3Irrep(0, 1)

    @property
    def vector(self) -> O3Irrep:
        return O3Irrep(1, -1)

    def product(self, a: O3Irrep, b: O3Irrep) -> list[O3Irrep]:
        p = a.p * b.p
        return [O3Irrep(l, p) for l in range(abs(a.l - b.l), a.l + b.l + 1)]

    def harmonic(self, l: int) -> O3Irrep:
        return O3Irrep(l, (-1) ** l)

    def pointwise(self, ir: O3Irrep, parity: str):
        if ir.l != 0:
            return None
        if ir.p == 1:
            return ir
        return {"odd": ir, "even": O3Irrep(0, 1)}.get(parity)

    def selection_note(self, a: O3Irrep, b: O3Irrep) -> str:
        par = "even" if a.p * b.p == 1 else "odd"
        return f"{a} (x) {b} gives l in [{abs(a.l - b.l)}, {a.l + b.l}] with {par} parity"


class SO3Group:
    rep_family = "irreps"
    name = "SO3"
    has_reflections = False

    def parse_irrep(self, text: str) -> SO3Irrep:
        text = text.strip()
        if _SO3_IRREP.match(text):
            return SO3Irrep(int(text))
        m = _O3_IRREP.match(text)
        if m:
            raise IrrepsSyntaxError(f"SO3 irreps have no parity: `{text}`",
                                    f"write `{m.group(1)}` (as in 1x{m.group(1)}), or declare `group O3`")
        raise IrrepsSyntaxError(f"`{text}` is not an SO3 irrep", "SO3 irreps are written by degree: 1x0, 16x1, 1x2")

    @property
    def trivial(self) -> SO3Irrep:
        return SO3Irrep(0)

    @property
    def vector(self) -> SO3Irrep:
        return SO3Irrep(1)

    def product(self, a: SO3Irrep, b: SO3Irrep) -> list[SO3Irrep]:
        return [SO3Irrep(l) for l in range(abs(a.l - b.l), a.l + b.l + 1)]

    def harmonic(self, l: int) -> SO3Irrep:
        return SO3Irrep(l)

    def pointwise(self, ir: SO3Irrep, parity: str):
        return ir if ir.l == 0 else None

    def selection_note(self, a: SO3Irrep, b: SO3Irrep) -> str:
        return f"{a} (x) {b} gives l in [{abs(a.l - b.l)}, {a.l + b.l}]"


O3 = O3Group()
SO3 = SO3Group()
