"""Permutation representations of finite groups: ``Regular(G)`` (rho(g) e_h = e_{g h}) and
``Permutation(G, perms)`` (given by the permutation each generator makes, or ``from_orbit`` of a point).

They are leaves of the rep algebra of ``matrix_reps`` (sums, tensor products, powers, duals of them
are built there); rho(g) permutes coordinates, so the matrices are sparse and orthogonal.

Numpy and scipy only.
"""
from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp

from ..groups.matrix import MatrixGroup
from .matrix_reps import Rep, _GroupLeaf

__all__ = ["Regular", "Permutation"]


class _FiniteRep(Rep):
    """Permutation representations of finite groups (rho(g) permutes coordinates)."""
    __slots__ = ()

    def _check_finite(self, group):
        if not isinstance(group, MatrixGroup):
            raise TypeError(f"{type(self).__name__} needs a MatrixGroup")
        if not group.is_finite:
            raise ValueError(f"{type(self).__name__} reps need a finite group; {group.name} is continuous")

    def _perm_of(self, g) -> np.ndarray:
        """Target index of each coordinate under g: rho(g) e_i = e_perm[i]."""
        raise NotImplementedError

    def rho_sparse(self, g):
        p = self._perm_of(g)
        n = len(p)
        return sp.csr_matrix((np.ones(n), (p, np.arange(n))), shape=(n, n))

    def rho_inv_sparse(self, g):
        return self.rho_sparse(g).T.tocsr()

    def drho_sparse(self, A):
        return sp.csr_matrix((self.size, self.size))  # the Lie algebra of a finite group is 0

    def _character(self, g):
        p = self._perm_of(g)
        return float(np.count_nonzero(p == np.arange(len(p))))

    _dual_is_itself = True  # permutation matrices are orthogonal

    def _is_atom(self):
        return True


class Regular(_GroupLeaf, _FiniteRep):
    """The left regular representation of a finite group: rho(g) e_h = e_{g h}.  Fixed by its group
    alone, so built and compared as the other such leaves are (``_GroupLeaf``)."""
    __slots__ = ()

    def __init__(self, group: MatrixGroup):
        self._check_finite(group)
        super().__init__(group)

    @property
    def size(self):
        return self._group.order

    def structure(self):
        return "R"

    def _perm_of(self, g):
        G = self._group
        elems = G.elements()
        prods = np.einsum("ij,njk->nik", g, elems)
        return np.array([G.element_index(m) for m in prods], dtype=np.int64)

    def __str__(self):
        return "regular"


class Permutation(_FiniteRep):
    """A permutation representation given by how each discrete generator permutes n points.

    ``perms[k][i]`` is the image of point i under discrete generator k.  The
    images of all group elements are found by closure; a ValueError is raised
    if the data is not a homomorphism.  ``Permutation.from_orbit(G, x)`` builds
    the action on the orbit of a point x of R^d.
    """
    __slots__ = ("_group", "_perms", "_table")

    def __init__(self, group: MatrixGroup, perms):
        self._check_finite(group)
        perms = tuple(tuple(int(i) for i in p) for p in perms)
        if len(perms) != len(group.discrete_generators):
            raise ValueError(f"{group.name} has {len(group.discrete_generators)} discrete generators, "
                             f"got {len(perms)} permutations")
        n = len(perms[0]) if perms else None
        for p in perms:
            if sorted(p) != list(range(len(p))) or len(p) != n:
                raise ValueError("each entry of perms must be a permutation of range(n), all of one n")
        if n is None:
            raise ValueError("a permutation rep of the trivial group needs at least one point; use scalars")
        object.__setattr__(self, "_group", group)
        object.__setattr__(self, "_perms", perms)
        object.__setattr__(self, "_table", None)

    @classmethod
    def from_orbit(cls, group: MatrixGroup, point) -> "Permutation":
        x = np.asarray(point, dtype=np.float64)
        if x.shape != (group.dim,):
            raise ValueError(f"orbit point must have shape ({group.dim},)")

        def key(y):
            return np.rint(y * 1e6).astype(np.int64).tobytes()

        pts, index = [x], {key(x): 0}
        i = 0
        while i < len(pts):
            for h in group.discrete_generators:
                y = h @ pts[i]
                if key(y) not in index:
                    if len(pts) >= 100_000:
                        raise ValueError("orbit too large")
                    index[key(y)] = len(pts)
                    pts.append(y)
            i += 1
        perms = [[index[key(h @ p)] for p in pts] for h in group.discrete_generators]
        return cls(group, perms)

    def _key(self):
        return (self._group, self._perms)

    @property
    def group(self):
        return self._group

    @property
    def perms(self) -> tuple:
        return self._perms

    @property
    def size(self):
        return len(self._perms[0])

    def structure(self):
        digest = hashlib.sha256(repr(self._perms).encode()).hexdigest()[:16]
        return f"Perm{self.size}#{digest}"

    def _element_table(self) -> np.ndarray:
        if self._table is None:
            G = self._group
            elems = G.elements()
            n = self.size
            table = np.full((len(elems), n), -1, dtype=np.int64)
            table[0] = np.arange(n)
            gens = [np.asarray(p) for p in self._perms]
            for i in range(len(elems)):  # BFS order: every element after its parent
                if table[i, 0] < 0:
                    raise AssertionError("element enumeration is not in closure order")
                for h, p in zip(G.discrete_generators, gens):
                    j = G.element_index(h @ elems[i])
                    img = p[table[i]]
                    if table[j, 0] < 0:
                        table[j] = img
                    elif not np.array_equal(table[j], img):
                        raise ValueError(f"these permutations do not define a representation of {G.name}")
            object.__setattr__(self, "_table", table)
        return self._table

    def _perm_of(self, g):
        return self._element_table()[self._group.element_index(g)]

    def __str__(self):
        return f"perm{self.size}"
