"""Irreps: a direct sum of irreducible representations with multiplicities.

Value objects, immutable, and round-tripping through their string form:
``Irreps.parse(str(x), group) == x``.  The string form follows e3nn
(``"32x0e+16x1o"``).  The irreps themselves come from a group (see
``eqdsl.groups``); this module only knows that an irrep has a dimension,
a string form and an order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from ..groups.base import IrrepsSyntaxError


@dataclass(frozen=True)
class MulIr:
    mul: int
    ir: object  # an irrep of some group: has .dim, str() and ordering

    @property
    def dim(self) -> int:
        return self.mul * self.ir.dim

    def __str__(self) -> str:
        return f"{self.mul}x{self.ir}"

    def __iter__(self):  # allows ``for mul, ir in irreps``
        yield self.mul
        yield self.ir


_TERM = re.compile(r"^\s*(?:(\d+)\s*x\s*)?(\S+?)\s*$")


@dataclass(frozen=True)
class Irreps:
    items: tuple[MulIr, ...] = ()

    # -- construction -------------------------------------------------------
    @staticmethod
    def parse(text: str, group) -> "Irreps":
        """Parse ``"32x0e + 1o"``-style text for ``group``; ``""`` is the empty rep."""
        text = text.strip()
        if not text:
            return Irreps(())
        items = []
        for term in text.split("+"):
            m = _TERM.match(term)
            if not m:
                raise IrrepsSyntaxError(f"`{term.strip()}` is not an irreps term",
                                        "write terms as MULxIRREP, e.g. 32x1o")
            mul = int(m.group(1)) if m.group(1) is not None else 1
            items.append(MulIr(mul, group.parse_irrep(m.group(2))))
        return Irreps(tuple(items))

    @staticmethod
    def of(pairs: Iterable[tuple[int, object]]) -> "Irreps":
        return Irreps(tuple(MulIr(int(mul), ir) for mul, ir in pairs))

    @staticmethod
    def harmonics(group, lmax: int) -> "Irreps":
        """The irreps of the spherical harmonics of degree 0..lmax: ``1x0e+1x1o+1x2e`` for O(3), lmax 2."""
        return Irreps.of((1, group.harmonic(l)) for l in range(lmax + 1))

    # -- basic properties ---------------------------------------------------
    def __str__(self) -> str:
        return "+".join(str(x) for x in self.items)

    def __repr__(self) -> str:
        return f"Irreps('{self}')"

    def __iter__(self) -> Iterator[MulIr]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return Irreps(self.items[i])
        return self.items[i]

    def __add__(self, other: "Irreps") -> "Irreps":
        return Irreps(self.items + tuple(other.items))

    def __mul__(self, n: int) -> "Irreps":
        """Scale every multiplicity by ``n`` (the tensor product with n trivial irreps)."""
        return Irreps(tuple(MulIr(x.mul * n, x.ir) for x in self.items))

    def __post_init__(self):
        # read on every tensor-product call; computed once (a plain attribute, which torch.compile
        # traces, unlike functools.cached_property's lock)
        object.__setattr__(self, "_dim", sum(x.dim for x in self.items))

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def num_irreps(self) -> int:
        return sum(x.mul for x in self.items)

    @property
    def lmax(self) -> int:
        if not self.items:
            raise ValueError("empty irreps have no lmax")
        return max(x.ir.l for x in self.items)

    def slices(self) -> list[slice]:
        out, start = [], 0
        for x in self.items:
            out.append(slice(start, start + x.dim))
            start += x.dim
        return out

    def count(self, ir) -> int:
        return sum(x.mul for x in self.items if x.ir == ir)

    def irreps_set(self) -> list:
        """Distinct irreps, in order of first appearance."""
        seen = []
        for x in self.items:
            if x.ir not in seen:
                seen.append(x.ir)
        return seen

    def is_scalar(self) -> bool:
        return all(x.ir.is_scalar for x in self.items)

    def is_invariant(self) -> bool:
        return all(x.ir.is_trivial for x in self.items)

    # -- transforms (all return new objects) --------------------------------
    def simplify(self) -> "Irreps":
        """Merge neighbouring equal irreps and drop zero multiplicities (e3nn semantics)."""
        out: list[MulIr] = []
        for x in self.items:
            if x.mul == 0:
                continue
            if out and out[-1].ir == x.ir:
                out[-1] = MulIr(out[-1].mul + x.mul, x.ir)
            else:
                out.append(x)
        return Irreps(tuple(out))

    def sort(self) -> tuple["Irreps", tuple[int, ...], tuple[int, ...]]:
        """Stable sort by irrep; returns (sorted, p, inv) with sorted[i] = self[inv[i]], p = inverse of inv."""
        inv = tuple(sorted(range(len(self.items)), key=lambda i: self.items[i].ir))
        p = [0] * len(inv)
        for i, j in enumerate(inv):
            p[j] = i
        return Irreps(tuple(self.items[i] for i in inv)), tuple(p), inv

    def regroup(self) -> "Irreps":
        """Sort then simplify: one block per distinct irrep."""
        return self.sort()[0].simplify()

    def filter(self, keep: Callable[[object], bool] | Iterable | None = None) -> "Irreps":
        if keep is None:
            return self
        if not callable(keep):
            allowed = list(keep)
            keep_fn = lambda ir: ir in allowed  # noqa: E731
        else:
            keep_fn = keep
        return Irreps(tuple(x for x in self.items if keep_fn(x.ir)))
