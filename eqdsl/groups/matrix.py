"""Matrix groups declared by generators (the construction of EMLP, Finzi et al. 2021).

A group G is given through its *defining representation* on R^d by

* Lie-algebra generators ``A_1..A_m`` (d x d): the identity component is generated
  by ``expm(sum_i c_i A_i)``;
* discrete generators ``h_1..h_k`` (d x d, invertible): one representative of each
  extra component (reflections, time reversal) or, with no Lie generators, the
  generators of a finite group.

That is all an equivariance solver needs: a linear map is equivariant under G
exactly when it commutes with ``drho(A_i)`` for every Lie generator and with
``rho(h_j)`` for every discrete one (see ``eqdsl.reps.solve``).

Membership (``is_element``) uses "facts" when the constructor knows them
(invariant bilinear forms, allowed determinants, an extra predicate; see
``eqdsl.groups.builtin``).  Finite groups without facts are checked against their
enumerated elements.  A continuous group declared without facts falls back to
necessary conditions derived from its generators (it must preserve every
invariant bilinear form and commute with every equivariant map V -> V, and
have an allowed determinant); see :meth:`MatrixGroup.is_element`.

Numpy and scipy only.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Iterable, Sequence

import numpy as np

__all__ = ["MatrixGroup", "GroupTooLarge", "expm"]

# Cap on closure enumeration of finite groups (elements are d x d float matrices).
DEFAULT_MAX_ORDER = 50_000

_KEY_SCALE = 1e6  # entries are snapped to multiples of 1e-6 to key elements


class GroupTooLarge(ValueError):
    """Raised when a finite group would have to be enumerated past ``max_order`` elements."""


def expm(A) -> np.ndarray:
    """Matrix exponential by scaling and squaring of a degree-18 Taylor polynomial.

    Plain numpy on purpose: for the small matrices of defining representations
    ``scipy.linalg.expm`` was measured 500x slower on a loaded 2-core machine
    (threaded OpenBLAS); this is accurate to ~1e-15 relative for any norm.
    """
    A = np.asarray(A, dtype=np.float64)
    norm = float(np.abs(A).sum(axis=0).max()) if A.size else 0.0
    s = max(0, int(np.ceil(np.log2(norm / 0.5))) if norm > 0.5 else 0)
    X = A / (2.0 ** s)
    term = np.eye(A.shape[0])
    out = term.copy()
    for k in range(1, 19):
        term = term @ X / k
        out += term
    for _ in range(s):
        out = out @ out
    return out


def _as_matrix_list(mats: Iterable, d: int | None, what: str) -> tuple[np.ndarray, ...]:
    out = []
    for m in mats:
        a = np.array(m, dtype=np.float64, copy=True)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"{what} must be square matrices, got shape {a.shape}")
        if d is not None and a.shape[0] != d:
            raise ValueError(f"{what} must all be {d} x {d}, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what} contain non-finite entries")
        d = a.shape[0]
        a.setflags(write=False)
        out.append(a)
    return tuple(out)


def _element_key(m: np.ndarray) -> bytes:
    return np.rint(m * _KEY_SCALE).astype(np.int64).tobytes()


class MatrixGroup:
    """A matrix group given by Lie-algebra and discrete generators of its defining rep.

    Parameters
    ----------
    name: how specs and messages spell the group ("SO(3)", "C8", "SO+(1,3)").
    lie_generators: d x d real matrices spanning the Lie algebra (may be empty).
    discrete_generators: d x d invertible real matrices (may be empty).
    compact: whether the group is compact (affects sampling only).
    dim: d, required only when both generator lists are empty (the trivial group).
    invariant_forms: matrices B with M^T B M = B for every element M (facts, optional).
    det_values: allowed determinants (``None``: any nonzero; facts, optional).
    predicate: extra membership test M -> bool (facts, optional).
    order: the order of a finite group when known analytically (optional).
    sampler: rng -> element, replacing the generic sampler (optional).

    Equality and hash use the name, ``compact`` and the generator matrices only.
    """

    rep_family = "matrix"  # reps are eqdsl.reps.matrix_reps.Rep (O3Group / SO3Group: "irreps")

    def __init__(self, name: str, lie_generators: Sequence, discrete_generators: Sequence,
                 compact: bool, *, dim: int | None = None,
                 invariant_forms: Sequence | None = None,
                 det_values: Sequence[float] | None = None,
                 predicate: Callable[[np.ndarray], bool] | None = None,
                 order: int | None = None,
                 sampler: Callable[[np.random.Generator], np.ndarray] | None = None):
        if not isinstance(name, str) or not name:
            raise ValueError("a matrix group needs a name")
        self.name = name
        self.compact = bool(compact)
        lie = _as_matrix_list(lie_generators, dim, "Lie generators")
        d = lie[0].shape[0] if lie else dim
        disc = _as_matrix_list(discrete_generators, d, "discrete generators")
        if d is None:
            d = disc[0].shape[0] if disc else None
        if d is None or d < 1:
            raise ValueError("a group with no generators needs dim=")
        self.lie_generators: tuple[np.ndarray, ...] = lie
        self.discrete_generators: tuple[np.ndarray, ...] = disc
        self._dim = int(d)
        for h in disc:
            if abs(np.linalg.det(h)) < 1e-12:
                raise ValueError(f"discrete generator of {name} is singular")
        self._forms = None if invariant_forms is None else _as_matrix_list(invariant_forms, d, "invariant forms")
        self._det_values = None if det_values is None else tuple(float(x) for x in det_values)
        self._has_facts = det_values is not None or invariant_forms is not None or predicate is not None
        self._predicate = predicate
        self._order = order
        self._sampler = sampler
        self._elements: np.ndarray | None = None
        self._element_index: dict[bytes, int] | None = None
        self._derived = None
        self._too_large = False
        self._fingerprint: str | None = None

    # -- basic facts ----------------------------------------------------------
    @property
    def dim(self) -> int:
        """Dimension d of the defining representation."""
        return self._dim

    @property
    def lie_dim(self) -> int:
        return len(self.lie_generators)

    @property
    def is_finite(self) -> bool:
        """True when there is no continuous part (the group is then assumed finite)."""
        return not self.lie_generators

    @property
    def order(self) -> int:
        """Number of elements of a finite group (enumerates unless known analytically)."""
        if not self.is_finite:
            raise ValueError(f"{self.name} is a continuous group and has no finite order")
        if self._order is not None:
            return self._order
        return len(self.elements())

    def identity(self) -> np.ndarray:
        return np.eye(self._dim)

    @property
    def fingerprint(self) -> str:
        """Hex digest of name, compactness and generator bytes (used by caches and hash)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(self.name.encode())
            h.update(b"compact" if self.compact else b"noncompact")
            h.update(str(self._dim).encode())
            for tag, mats in ((b"L", self.lie_generators), (b"D", self.discrete_generators)):
                h.update(tag + str(len(mats)).encode())
                for m in mats:
                    h.update(np.ascontiguousarray(m, dtype="<f8").tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def __eq__(self, other) -> bool:
        if not isinstance(other, MatrixGroup):
            return NotImplemented
        return self is other or self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return (f"MatrixGroup({self.name!r}, d={self._dim}, lie={len(self.lie_generators)}, "
                f"discrete={len(self.discrete_generators)}, compact={self.compact})")

    # -- Lie algebra ----------------------------------------------------------
    def lie_element(self, coefficients) -> np.ndarray:
        c = np.asarray(coefficients, dtype=np.float64)
        if c.shape != (len(self.lie_generators),):
            raise ValueError(f"{self.name} needs {len(self.lie_generators)} coefficients")
        if not self.lie_generators:
            return np.zeros((self._dim, self._dim))
        return np.tensordot(c, np.stack(self.lie_generators), axes=1)

    def in_lie_algebra(self, A, atol: float = 1e-9) -> bool:
        """Whether A lies in the span of the Lie generators (least squares residual)."""
        A = np.asarray(A, dtype=np.float64)
        if not self.lie_generators:
            return bool(np.allclose(A, 0, atol=atol))
        G = np.stack([g.ravel() for g in self.lie_generators], axis=1)
        coef, *_ = np.linalg.lstsq(G, A.ravel(), rcond=None)
        return bool(np.linalg.norm(G @ coef - A.ravel()) <= atol * max(1.0, np.linalg.norm(A)))

    # -- sampling -------------------------------------------------------------
    def sample(self, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """A group element in the defining representation.

        Finite groups: uniform over the enumerated elements (or the sampler
        given to the constructor).  Otherwise a random word in the discrete
        generators (and their inverses) times a product of exponentials of
        random Lie-algebra elements: three steps with unit-variance
        coefficients for compact groups (covers the group), one step with
        coefficients of standard deviation 0.3 for non-compact ones (keeps the
        element well conditioned).  Deterministic for a given seed.
        """
        rng = np.random.default_rng(rng)
        if self._sampler is not None:
            return np.array(self._sampler(rng), dtype=np.float64)
        g = np.eye(self._dim)
        if self.lie_generators:
            steps, scale = (3, 1.0) if self.compact else (1, 0.3)
            for _ in range(steps):
                c = rng.normal(scale=scale, size=len(self.lie_generators))
                g = g @ expm(self.lie_element(c))
        if self.discrete_generators:
            if self.is_finite and not self._too_large:
                try:  # uniform over the elements (enumerated once)
                    elems = self.elements()
                    return elems[rng.integers(len(elems))].copy()
                except GroupTooLarge:
                    self._too_large = True
            n = len(self.discrete_generators)
            length = int(rng.integers(0, 4 * n + 8))
            word = np.eye(self._dim)
            for _ in range(length):
                k = int(rng.integers(n))
                h = self.discrete_generators[k]
                # inverses are needed for generators of infinite order
                word = word @ (h if rng.random() < 0.5 else np.linalg.inv(h))
            g = word @ g
        return g

    # -- finite groups ----------------------------------------------------------
    def elements(self, max_order: int = DEFAULT_MAX_ORDER) -> np.ndarray:
        """All elements of a finite group, [order, d, d], identity first, BFS order (deterministic)."""
        if not self.is_finite:
            raise ValueError(f"{self.name} is continuous; it has no finite list of elements")
        if self._elements is None:
            elems = [np.eye(self._dim)]
            index = {_element_key(elems[0]): 0}
            frontier = [0]
            gens = self.discrete_generators
            while frontier:
                nxt = []
                for i in frontier:
                    for h in gens:
                        m = h @ elems[i]
                        k = _element_key(m)
                        if k not in index:
                            if len(elems) >= max_order:
                                raise GroupTooLarge(
                                    f"{self.name} has more than {max_order} elements "
                                    "(or a generator of infinite order)")
                            index[k] = len(elems)
                            elems.append(m)
                            nxt.append(len(elems) - 1)
                frontier = nxt
            arr = np.stack(elems)
            arr.setflags(write=False)
            if self._order is not None and len(arr) != self._order:
                raise AssertionError(f"{self.name}: enumerated {len(arr)} elements, expected {self._order}")
            self._elements, self._element_index = arr, index
        return self._elements

    def element_index(self, m, atol: float = 1e-6) -> int:
        """Index of ``m`` in :meth:`elements`; raises ValueError if it is not an element."""
        elems = self.elements()
        m = np.asarray(m, dtype=np.float64)
        i = self._element_index.get(_element_key(m))
        if i is not None and np.allclose(elems[i], m, atol=atol):
            return i
        # rounding straddled a key boundary: nearest element
        dist = np.abs(elems - m).reshape(len(elems), -1).max(axis=1)
        i = int(np.argmin(dist))
        if dist[i] <= atol:
            return i
        raise ValueError(f"matrix is not an element of {self.name}")

    # -- membership -----------------------------------------------------------
    def is_element(self, M, atol: float = 1e-8) -> bool:
        """Whether M (d x d) is (numerically) an element of the group.

        Exact for the built-in groups (they carry facts) and for finite groups
        (compared with the enumerated elements).  For a continuous group declared
        without facts the test is the necessary condition described in the module
        docstring.  Tolerances scale with the size of M.
        """
        M = np.asarray(M, dtype=np.float64)
        if M.shape != (self._dim, self._dim) or not np.all(np.isfinite(M)):
            return False
        scale = max(1.0, float(np.linalg.norm(M, 2)))
        tol = atol * scale * scale
        if self._predicate is not None and not self._predicate(M):
            return False
        if self._forms is not None:
            for B in self._forms:
                if not np.allclose(M.T @ B @ M, B, atol=tol):
                    return False
        if self._det_values is not None:
            det = np.linalg.det(M)
            if not any(abs(det - v) <= atol * scale ** self._dim for v in self._det_values):
                return False
        elif abs(np.linalg.det(M)) < 1e-300:
            return False
        if self._has_facts:
            return True
        if self.is_finite:
            try:
                self.element_index(M, atol=max(atol, 1e-9) * 1e2)
                return True
            except ValueError:
                return False
        return self._derived_check(M, tol)

    def _derived_check(self, M: np.ndarray, tol: float) -> bool:
        if self._derived is None:
            d, eye = self._dim, np.eye(self._dim)
            # invariant bilinear forms B (B(gx, gy) = B(x, y)) and the commutant C (gC = Cg), as the null
            # spaces of the generators' constraints on the row-major vec of B and C
            form_rows = [np.kron(A.T, eye) + np.kron(eye, A.T) for A in self.lie_generators]  # A^T B + B A = 0
            form_rows += [np.kron(h.T, h.T) - np.eye(d * d) for h in self.discrete_generators]  # h^T B h = B
            comm_rows = [np.kron(A, eye) - np.kron(eye, A.T) for A in self.lie_generators]  # A C - C A = 0
            comm_rows += [np.kron(h, eye) - np.kron(eye, h.T) for h in self.discrete_generators]
            self._derived = (_null_space(form_rows, d), _null_space(comm_rows, d), self._derived_dets())
        forms, comm, dets = self._derived
        for B in forms:
            if not np.allclose(M.T @ B @ M, B, atol=tol):
                return False
        for C in comm:
            if not np.allclose(M @ C, C @ M, atol=tol):
                return False
        if dets is not None:
            det = np.linalg.det(M)
            if not any(abs(det - v) <= 1e-6 * max(1.0, abs(det)) for v in dets):
                return False
        return True

    def _derived_dets(self):
        """Allowed determinants implied by the generators, or None when unconstrained."""
        if any(abs(np.trace(A)) > 1e-12 for A in self.lie_generators):
            return None  # det(expm(A)) = exp(tr A) ranges over (0, inf)
        dets = {1.0}
        base = [float(np.linalg.det(h)) for h in self.discrete_generators]
        if any(abs(abs(b) - 1) > 1e-9 for b in base):
            return None
        frontier = set(dets)
        while frontier:
            new = {round(a * b, 9) for a in frontier for b in base} - dets
            dets |= new
            frontier = new
        return tuple(sorted(dets))


def _null_space(rows: list, d: int) -> np.ndarray:
    """The d x d matrices X with R vec(X) = 0 for every R in `rows` (an orthonormal basis, [n, d, d])."""
    if not rows:
        return np.eye(d * d).reshape(-1, d, d)
    stacked = np.concatenate(rows, axis=0)
    _, sv, vt = np.linalg.svd(stacked)
    rank = int(np.sum(sv > 1e-9 * max(1.0, sv[0] if sv.size else 1.0)))
    return vt[rank:].reshape(-1, d, d)
