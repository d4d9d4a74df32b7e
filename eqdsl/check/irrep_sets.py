"""Which irreducible pieces a representation of a matrix group contains, for the groups where that is exact.

Two kinds of groups decompose: finite groups up to ``matrix_properties.MAX_CHARACTER_ORDER`` elements, through
their numerically found real characters (``matrix_properties.finite_irreps``), and the continuous planar groups
SO(2) and O(2), through the Fourier series of the character on rotations (the analytic irreps
scalar, det, freq(k)).  Both only need characters, which reps compute structurally, so
decomposing `V**6` costs as little as decomposing `V`.  Other groups (SO(n), Lorentz, SL(n), large
finite groups) get None: the checker then tracks nothing for them.
"""
from __future__ import annotations

import functools

import numpy as np

from ..groups.matrix import GroupTooLarge
from ..reps import matrix_properties
from ..reps.matrix_reps import (Det, Dual, Frequency, Power, Rep, Sum, Tensor, Trivial, Vector, _planar_orthogonal,
                            frequency)


class Undecomposable(ValueError):
    """A representation whose irreps this module cannot list (the checker then stops tracking)."""


class _IrrepSets:
    """Irreps of one group as hashable labels; ``of(rep)`` is the exact set a rep contains."""
    order: tuple  # every label, in the order diagnostics list them
    scalar: object

    def counts(self, rep: Rep) -> dict:
        """Multiplicity of each irrep in rep (those that occur)."""
        raise NotImplementedError

    def of(self, rep: Rep) -> frozenset:
        return frozenset(self.counts(rep))

    def product(self, a, b) -> frozenset:
        raise NotImplementedError

    def symmetric_square(self, a) -> frozenset:
        """Irreps of Sym^2(a): what x (x) x holds for x in one copy of a."""
        raise NotImplementedError

    def products(self, xs, ys) -> frozenset:
        """Irreps of x (x) y over all pairs: what a bilinear map of values carrying xs and ys can carry."""
        return frozenset().union(*(self.product(x, y) for x in xs for y in ys))

    def text(self, labels) -> str:
        """Labels in the fixed order, by name: `scalar, freq(2)`."""
        names = [self.name(ir) for ir in self.order if ir in labels]
        return ", ".join(names) if names else "nothing"

    def name(self, label) -> str:
        return str(label)


class _FiniteSets(_IrrepSets):
    """Finite groups: multiplicities are inner products of characters over the elements."""

    def __init__(self, group, irreps: tuple):
        self.group = group
        self.scalar = irreps[0]
        self._elements = group.elements()
        chars = np.array([ir.character for ir in irreps])
        self._names, rank = _planar_names(group, irreps, chars)
        self.order = tuple(sorted(irreps, key=lambda ir: rank.get(ir, len(irreps))))  # Cn, Dn: by frequency
        self._chars = np.array([ir.character for ir in self.order])
        self._norms = (self._chars ** 2).sum(axis=1)

    def _decompose(self, chi: np.ndarray) -> dict:
        # distinct real irreps have orthogonal characters: <chi, chi_i> = multiplicity * <chi_i, chi_i>
        mult = np.rint(self._chars @ chi / self._norms).astype(int)
        return {ir: int(m) for ir, m in zip(self.order, mult) if m > 0}

    @functools.lru_cache(maxsize=4096)
    def counts(self, rep: Rep) -> dict:
        return self._decompose(np.array([rep.character(g) for g in self._elements]))

    @functools.lru_cache(maxsize=4096)
    def product(self, a, b) -> frozenset:
        return frozenset(self._decompose(np.array(a.character) * np.array(b.character)))

    @functools.lru_cache(maxsize=256)
    def symmetric_square(self, a) -> frozenset:
        chi = np.array(a.character)
        squares = [self.group.element_index(g @ g) for g in self._elements]
        return frozenset(self._decompose((chi ** 2 + chi[squares]) / 2))

    def name(self, label) -> str:
        return self._names.get(label, label.name)


def _planar_names(group, irreps, chars) -> tuple[dict, dict]:
    """For Cn and Dn, name an irrep by the analytic one with its character (`V`, `freq(2)`), or
    as a part of one (`irrep1_1 (in freq(2))`: for even n freq(n/2) splits); rank them by frequency."""
    planar = matrix_properties.planar_irreps(group)
    if planar is None:
        return {}, {}
    elements = group.elements()
    names, rank = {}, {}
    for i, p in enumerate(planar):
        chi_p = np.array([p.character(g) for g in elements])
        inside = [ir for ir, chi in zip(irreps, chars) if chi @ chi_p > 0.5 * (chi @ chi)]
        for ir in inside:
            names.setdefault(ir, str(p) if len(inside) == 1 and ir.dim == p.size else f"{ir.name} (in {p})")
            rank.setdefault(ir, i)
    return names, rank


class _CirclesSets(_IrrepSets):
    """SO(2) and O(2): the character on the rotation by t is m_0 + sum_k 2 m_k cos(k t) (m_0 split into
    scalar and det by the character of a reflection), read off by a discrete Fourier transform on
    enough angles that no frequency up to the rep's largest aliases."""

    def __init__(self, group):
        self.group = group
        self.reflections = any(np.linalg.det(h) < 0 for h in group.discrete_generators)
        self.scalar = Trivial(group)
        self._det = Det(group)
        self._known = [self.scalar] + ([self._det] if self.reflections else [])

    @property
    def order(self) -> tuple:
        top = max((ir.k for ir in self._known if isinstance(ir, Frequency)), default=1)
        return tuple(self._known[:2 if self.reflections else 1]) + tuple(frequency(self.group, k) for k in range(1, top + 1))

    @functools.lru_cache(maxsize=4096)
    def counts(self, rep: Rep) -> dict:
        top = _max_frequency(rep)
        n = 2 * top + 2
        angles = 2 * np.pi * np.arange(n) / n
        chi = np.array([rep.character(_rotation(t)) for t in angles])
        mult = [float(chi.mean())] + [float((chi * np.cos(k * angles)).mean()) for k in range(1, top + 1)]
        if self.reflections:
            flip = rep.character(np.diag([1.0, -1.0]))
            found = [(self.scalar, (mult[0] + flip) / 2), (self._det, (mult[0] - flip) / 2)]
        else:
            found = [(self.scalar, mult[0])]
        found += [(frequency(self.group, k), mult[k]) for k in range(1, top + 1)]
        found = {ir: int(round(m)) for ir, m in found if m > 0.5}
        self._known.extend(ir for ir in found if ir not in self._known)
        return found

    @functools.lru_cache(maxsize=4096)
    def product(self, a, b) -> frozenset:
        return self.of(Tensor(a, b))

    def symmetric_square(self, a) -> frozenset:
        # Sym^2 of scalar or det is scalar; of freq(k) (rotations by k t, reflections flip) scalar + freq(2k)
        if a in (self.scalar, self._det):
            return frozenset([self.scalar])
        return frozenset([self.scalar]) | self.of(frequency(self.group, 2 * _max_frequency(a)))


def _rotation(t: float) -> np.ndarray:
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, -s], [s, c]])


def _max_frequency(rep: Rep) -> int:
    """An upper bound on the frequencies in a rep of SO(2) or O(2), from its structure."""
    if isinstance(rep, (Trivial, Det)):
        return 0
    if isinstance(rep, Vector):
        return 1
    if isinstance(rep, Frequency):
        return rep.k
    if isinstance(rep, Dual):
        return _max_frequency(rep.rep)
    if isinstance(rep, Sum):
        return max(_max_frequency(t) for t in rep.terms)
    if isinstance(rep, Tensor):
        return _max_frequency(rep.a) + _max_frequency(rep.b)
    if isinstance(rep, Power):
        return rep.k * _max_frequency(rep.rep)
    raise Undecomposable(f"no frequency bound for `{rep}`")


@functools.lru_cache(maxsize=32)
def irrep_sets(group) -> _IrrepSets | None:
    """The decomposition for this group, or None where the checker cannot list irreps."""
    if group.is_finite:
        try:
            irreps = matrix_properties.finite_irreps(group)
        except (GroupTooLarge, ValueError):
            return None
        return _FiniteSets(group, irreps) if irreps else None
    if _planar_orthogonal(group):
        return _CirclesSets(group)
    return None
