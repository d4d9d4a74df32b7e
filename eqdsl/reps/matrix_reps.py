"""Representations of matrix groups built from the defining one (EMLP-style rep algebra).

Leaves: ``Trivial(G)`` (``scalar``), ``Vector(G)`` (``V``, the defining rep),
``Det(G)``, ``Frequency(G, k)`` (planar groups), and in ``permutation_reps``
``Regular(G)`` and ``Permutation(G, perms)`` (finite groups only).  Composites:
``Dual(rep)`` (rho(g)^{-T}, drho(A) = -drho(A)^T), ``Sum(*reps)`` (block
diagonal), ``Tensor(a, b)`` (Kronecker product, ``a`` the outer factor) and
``Power(rep, k)`` (k-fold Kronecker power).

All are immutable value objects (equality and hash by structure and group) whose
``size`` is known without building a matrix.  Coordinates: ``Sum`` stacks its
terms in order; ``Tensor(a, b)`` uses index ``i * b.size + j`` (``np.kron``).

The operators build *canonical* forms, which is what specs and the parser
produce: ``V + V + 2``, ``3 * V`` (three copies of V), ``V * V`` (== ``V ** 2``),
``V.dual`` (duals are pushed to the leaves, so ``(V ** 2).dual == V.dual ** 2``),
``scalar * V == V``.  Every such rep round-trips through its string form:
``parse_rep(str(r), G) == r`` (``matrix_rep_syntax``).  The raw class constructors build exactly what
they are given (a raw rep still has the right matrices, its string may just
parse back to the canonical form of the same matrices).

Numpy and scipy only.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..groups.matrix import MatrixGroup
from .irreps import IrrepsSyntaxError

__all__ = [
    "Rep", "Trivial", "Vector", "Det", "Frequency", "Dual", "Sum", "Tensor", "Power",
    "RepSyntaxError", "frequency", "direct_sum", "tensor", "power", "dual", "scalars",
]


class RepSyntaxError(IrrepsSyntaxError):
    """A representation expression does not parse; carries ``hint`` and ``position``."""

    def __init__(self, message: str, hint: str | None = None, position: int | None = None):
        super().__init__(message, hint)
        self.position = position


def _as_group_matrix(group: MatrixGroup, g, what: str) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    if g.shape != (group.dim, group.dim):
        raise ValueError(f"{what} of {group.name} must be {group.dim} x {group.dim}, got {g.shape}")
    return g


def _csr(m) -> sp.csr_matrix:
    return sp.csr_matrix(m)


class Rep:
    """Base class: operators, dense/sparse matrices, constraints and string form."""

    __slots__ = ("_hash",)
    _dual_is_itself = False  # leaves whose matrices are orthogonal (rho(g)^{-T} = rho(g)): dual(rep) is rep

    def simplify(self) -> "Rep":
        """The form in which equal layouts compare equal: reps are built canonical, so the rep itself
        (the protocol Irreps.simplify answers for irreps)."""
        return self

    # -- value semantics --------------------------------------------------------
    def _key(self) -> tuple:
        raise NotImplementedError

    def __eq__(self, other) -> bool:
        if self is other:
            return True
        if type(self) is not type(other):
            return NotImplemented if not isinstance(other, Rep) else False
        return self._key() == other._key()

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            h = hash((type(self).__name__, self._key()))
            object.__setattr__(self, "_hash", h)
            return h

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self}; {self.group.name}>"

    # -- structure ----------------------------------------------------------------
    @property
    def group(self) -> MatrixGroup:
        raise NotImplementedError

    @property
    def dim(self) -> int:
        """Same as ``size`` (the name O3 irreps use), so layout code can treat both alike."""
        return self.size

    @property
    def size(self) -> int:
        raise NotImplementedError

    def structure(self) -> str:
        """Unambiguous structural description (used in cache keys), group not included."""
        raise NotImplementedError

    def blocks(self) -> list["Rep"]:
        """Reps whose block-diagonal sum has exactly this rep's matrices, in coordinate order."""
        return [self]

    # -- matrices --------------------------------------------------------------------
    def rho(self, g) -> np.ndarray:
        """rho(g) (size x size) for g given in the defining representation."""
        return self.rho_sparse(_as_group_matrix(self.group, g, "element")).toarray()

    def drho(self, A) -> np.ndarray:
        """The Lie-algebra action drho(A) for A a d x d element of the Lie algebra."""
        return self.drho_sparse(_as_group_matrix(self.group, A, "Lie algebra element")).toarray()

    def rho_inv(self, g) -> np.ndarray:
        """rho(g)^{-1}, built structurally (no inversion of the big matrix)."""
        return self.rho_inv_sparse(_as_group_matrix(self.group, g, "element")).toarray()

    def rho_sparse(self, g: np.ndarray) -> sp.csr_matrix:
        raise NotImplementedError

    def rho_inv_sparse(self, g: np.ndarray) -> sp.csr_matrix:
        raise NotImplementedError

    def drho_sparse(self, A: np.ndarray) -> sp.csr_matrix:
        raise NotImplementedError

    def character(self, g) -> float:
        """trace(rho(g)), computed structurally."""
        return float(self._character(_as_group_matrix(self.group, g, "element")))

    def _character(self, g: np.ndarray) -> float:
        return self.rho_sparse(g).diagonal().sum()

    def constraint_matrices(self, sparse: bool = False):
        """Stacked constraints: drho(A) per Lie generator, then rho(h) - I per discrete generator.

        A vector v is invariant under the group exactly when every constraint
        annihilates it.  Dense: array [n_constraints, size, size]; sparse: a list.
        """
        G = self.group
        eye = sp.identity(self.size, format="csr")
        mats = [self.drho_sparse(A) for A in G.lie_generators]
        mats += [(self.rho_sparse(h) - eye).tocsr() for h in G.discrete_generators]
        if sparse:
            return mats
        if not mats:
            return np.zeros((0, self.size, self.size))
        return np.stack([m.toarray() for m in mats])

    # -- algebra -----------------------------------------------------------------------
    def _coerce(self, other) -> "Rep | None":
        if isinstance(other, Rep):
            return other
        if isinstance(other, (int, np.integer)) and not isinstance(other, bool):
            return scalars(self.group, int(other))
        return None

    def __add__(self, other):
        o = self._coerce(other)
        return NotImplemented if o is None else direct_sum(self, o)

    def __radd__(self, other):
        o = self._coerce(other)
        return NotImplemented if o is None else direct_sum(o, self)

    def __mul__(self, other):
        o = self._coerce(other)
        return NotImplemented if o is None else tensor(self, o)

    def __rmul__(self, other):
        o = self._coerce(other)
        return NotImplemented if o is None else tensor(o, self)

    def __pow__(self, k):
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
            return NotImplemented
        return power(self, int(k))

    @property
    def dual(self) -> "Rep":
        return dual(self)

    @property
    def T(self) -> "Rep":
        """EMLP's spelling of the dual."""
        return dual(self)

    # -- printing ------------------------------------------------------------------------
    def _is_atom(self) -> bool:
        return False


# ---------------------------------------------------------------------------- leaves
class _GroupLeaf(Rep):
    """A representation fixed by its group alone (scalar, V): shared construction and identity."""
    __slots__ = ("_group",)

    def __init__(self, group: MatrixGroup):
        if not isinstance(group, MatrixGroup):
            raise TypeError(f"{type(self).__name__} needs a MatrixGroup")
        object.__setattr__(self, "_group", group)

    def _key(self):
        return (self._group,)

    @property
    def group(self):
        return self._group

    def _is_atom(self):
        return True


class Trivial(_GroupLeaf):
    """One invariant scalar (``scalar``)."""
    __slots__ = ()
    _dual_is_itself = True

    @property
    def size(self):
        return 1

    def structure(self):
        return "1"

    def rho_sparse(self, g):
        return sp.identity(1, format="csr")

    rho_inv_sparse = rho_sparse

    def drho_sparse(self, A):
        return sp.csr_matrix((1, 1))

    def _character(self, g):
        return 1.0

    def __str__(self):
        return "scalar"


class Vector(_GroupLeaf):
    """The defining representation V of the group."""
    __slots__ = ()

    @property
    def size(self):
        return self._group.dim

    def structure(self):
        return "V"

    def rho_sparse(self, g):
        return _csr(g)

    def rho_inv_sparse(self, g):
        return _csr(np.linalg.inv(g))

    def drho_sparse(self, A):
        return _csr(A)

    def _character(self, g):
        return float(np.trace(g))

    def __str__(self):
        return "V"


class Det(_GroupLeaf):
    """The determinant representation rho(g) = det V(g) (``det``): the sign of O(n) and D_n, det of GL(n)."""
    __slots__ = ()

    @property
    def size(self):
        return 1

    def structure(self):
        return "det"

    def rho_sparse(self, g):
        return sp.csr_matrix([[float(np.linalg.det(g))]])

    def rho_inv_sparse(self, g):
        return sp.csr_matrix([[1.0 / float(np.linalg.det(g))]])

    def drho_sparse(self, A):
        return sp.csr_matrix([[float(np.trace(A))]])

    def _character(self, g):
        return float(np.linalg.det(g))

    def __str__(self):
        return "det"


_J = np.array([[0.0, -1.0], [1.0, 0.0]])


def _planar_orthogonal(group: MatrixGroup) -> bool:
    return group.dim == 2 and all(np.allclose(A, -A.T, atol=1e-9) for A in group.lie_generators) \
        and all(np.allclose(h @ h.T, np.eye(2), atol=1e-9) for h in group.discrete_generators)


class Frequency(Rep):
    """``freq(k)``: the analytic 2-dim irrep of frequency k >= 1 of the planar groups SO(2), O(2), C_n, D_n.

    A rotation by theta acts as the rotation by k theta; a reflection R(theta) F
    (F = diag(1, -1)) as R(k theta) F.  freq(1) is V itself.  For C_n (D_n) it is
    irreducible for 1 <= k < n/2, and freq(k) ~ freq(n - k).
    """
    __slots__ = ("_group", "k")
    _dual_is_itself = True

    def __init__(self, group: MatrixGroup, k: int):
        if not isinstance(group, MatrixGroup):
            raise TypeError("Frequency needs a MatrixGroup")
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
            raise ValueError(f"frequencies are integers k >= 1 (k = 0 is `scalar` and `det`), got {k!r}")
        if not _planar_orthogonal(group):
            raise ValueError(f"freq(k) needs a group of rotations and reflections of the plane "
                             f"(SO(2), O(2), Cn, Dn); {group.name} acts on R^{group.dim}")
        object.__setattr__(self, "_group", group)
        object.__setattr__(self, "k", int(k))

    def _key(self):
        return (self._group, self.k)

    @property
    def group(self):
        return self._group

    @property
    def size(self):
        return 2

    def structure(self):
        return f"F{self.k}"

    def _matrix(self, g: np.ndarray) -> np.ndarray:
        theta = float(np.arctan2(g[1, 0], g[0, 0]))
        c, s = np.cos(self.k * theta), np.sin(self.k * theta)
        m = np.array([[c, -s], [s, c]])
        return m if np.linalg.det(g) > 0 else m @ np.diag([1.0, -1.0])

    def rho_sparse(self, g):
        return _csr(self._matrix(g))

    def rho_inv_sparse(self, g):
        return _csr(self._matrix(g).T)

    def drho_sparse(self, A):
        return _csr(self.k * A[1, 0] * _J)

    def _character(self, g):
        return float(np.trace(self._matrix(g)))

    def _is_atom(self):
        return True

    def __str__(self):
        return f"freq({self.k})"


# ------------------------------------------------------------------------- composites
def _same_group(reps) -> MatrixGroup:
    groups = {r.group for r in reps}
    if len(groups) != 1:
        names = sorted(g.name for g in groups)
        raise ValueError(f"cannot combine representations of different groups: {', '.join(names)}")
    return reps[0].group


class Dual(Rep):
    """The dual (contragredient) rep: rho*(g) = rho(g)^{-T}, drho*(A) = -drho(A)^T."""
    __slots__ = ("rep",)

    def __init__(self, rep: Rep):
        if not isinstance(rep, Rep):
            raise TypeError("Dual needs a Rep")
        object.__setattr__(self, "rep", rep)

    def _key(self):
        return (self.rep,)

    @property
    def group(self):
        return self.rep.group

    @property
    def size(self):
        return self.rep.size

    def structure(self):
        return f"D({self.rep.structure()})"

    def blocks(self):
        inner = self.rep.blocks()
        return [self] if len(inner) == 1 else [Dual(b) for b in inner]

    def rho_sparse(self, g):
        return self.rep.rho_inv_sparse(g).T.tocsr()

    def rho_inv_sparse(self, g):
        return self.rep.rho_sparse(g).T.tocsr()

    def drho_sparse(self, A):
        return (-self.rep.drho_sparse(A).T).tocsr()

    def _character(self, g):
        return self.rep.rho_inv_sparse(g).diagonal().sum()

    def _is_atom(self):
        return self.rep._is_atom()

    def __str__(self):
        inner = str(self.rep)
        return f"{inner}.dual" if self.rep._is_atom() else f"({inner}).dual"


class Sum(Rep):
    """Direct sum: block-diagonal matrices, terms in order."""
    __slots__ = ("terms",)

    def __init__(self, *terms: Rep):
        if len(terms) == 1 and isinstance(terms[0], (list, tuple)):
            terms = tuple(terms[0])
        if not terms:
            raise ValueError("a direct sum needs at least one term")
        if not all(isinstance(t, Rep) for t in terms):
            raise TypeError("Sum terms must be Reps")
        _same_group(terms)
        object.__setattr__(self, "terms", tuple(terms))

    def _key(self):
        return self.terms

    @property
    def group(self):
        return self.terms[0].group

    @property
    def size(self):
        return sum(t.size for t in self.terms)

    def structure(self):
        return "S(" + ",".join(t.structure() for t in self.terms) + ")"

    def blocks(self):
        return [b for t in self.terms for b in t.blocks()]

    def rho_sparse(self, g):
        return sp.block_diag([t.rho_sparse(g) for t in self.terms], format="csr")

    def rho_inv_sparse(self, g):
        return sp.block_diag([t.rho_inv_sparse(g) for t in self.terms], format="csr")

    def drho_sparse(self, A):
        return sp.block_diag([t.drho_sparse(A) for t in self.terms], format="csr")

    def _character(self, g):
        return sum(t._character(g) for t in self.terms)

    def __str__(self):
        parts = []
        i, terms = 0, self.terms
        while i < len(terms):
            j = i
            while j < len(terms) and terms[j] == terms[i]:
                j += 1
            t, c = terms[i], j - i
            if isinstance(t, Trivial):
                parts.append(str(c) if c > 1 else "scalar")
            elif c > 1:
                s = str(t)
                parts.append(f"{c}*({s})" if isinstance(t, (Tensor, Sum)) else f"{c}*{s}")
            else:
                parts.append(f"({t})" if isinstance(t, Sum) else str(t))
            i = j
        return " + ".join(parts)


def _kron_sum(da: sp.spmatrix, na: int, db: sp.spmatrix, nb: int) -> sp.csr_matrix:
    """drho of a tensor product: da (x) I + I (x) db."""
    return (sp.kron(da, sp.identity(nb), format="csr") + sp.kron(sp.identity(na), db, format="csr")).tocsr()


class Tensor(Rep):
    """Tensor (Kronecker) product a (x) b; coordinate i * b.size + j."""
    __slots__ = ("a", "b")

    def __init__(self, a: Rep, b: Rep):
        if not (isinstance(a, Rep) and isinstance(b, Rep)):
            raise TypeError("Tensor needs two Reps")
        _same_group([a, b])
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    def _key(self):
        return (self.a, self.b)

    @property
    def group(self):
        return self.a.group

    @property
    def size(self):
        return self.a.size * self.b.size

    def structure(self):
        return f"T({self.a.structure()},{self.b.structure()})"

    def blocks(self):
        left = self.a.blocks()
        return [self] if len(left) == 1 else [Tensor(x, self.b) for x in left]

    def rho_sparse(self, g):
        return sp.kron(self.a.rho_sparse(g), self.b.rho_sparse(g), format="csr")

    def rho_inv_sparse(self, g):
        return sp.kron(self.a.rho_inv_sparse(g), self.b.rho_inv_sparse(g), format="csr")

    def drho_sparse(self, A):
        return _kron_sum(self.a.drho_sparse(A), self.a.size, self.b.drho_sparse(A), self.b.size)

    def _character(self, g):
        return self.a._character(g) * self.b._character(g)

    def __str__(self):
        left = f"({self.a})" if isinstance(self.a, Sum) else str(self.a)
        right = f"({self.b})" if isinstance(self.b, (Sum, Tensor)) else str(self.b)
        return f"{left} * {right}"


class Power(Rep):
    """k-fold tensor power rep (x) ... (x) rep (k >= 0; k = 0 is one scalar)."""
    __slots__ = ("rep", "k")

    def __init__(self, rep: Rep, k: int):
        if not isinstance(rep, Rep):
            raise TypeError("Power needs a Rep")
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
            raise ValueError(f"tensor power needs an integer k >= 0, got {k!r}")
        object.__setattr__(self, "rep", rep)
        object.__setattr__(self, "k", int(k))

    def _key(self):
        return (self.rep, self.k)

    @property
    def group(self):
        return self.rep.group

    @property
    def size(self):
        return self.rep.size ** self.k

    def structure(self):
        return f"P({self.rep.structure()},{self.k})"

    def _as_tensor(self) -> Rep:
        """rep^k == Tensor(rep^(k-1), rep) exactly (Kronecker associativity)."""
        if self.k == 0:
            return Trivial(self.group)
        if self.k == 1:
            return self.rep
        return Tensor(Power(self.rep, self.k - 1), self.rep)

    def blocks(self):
        if self.k <= 1 or len(self.rep.blocks()) == 1:
            return [self] if self.k != 1 else self.rep.blocks()
        return self._as_tensor().blocks()

    def _fold(self, one, f):
        if self.k == 0:
            return sp.identity(1, format="csr")
        m = one
        for _ in range(self.k - 1):
            m = f(m, one)
        return m.tocsr()

    def rho_sparse(self, g):
        return self._fold(self.rep.rho_sparse(g), lambda x, y: sp.kron(x, y, format="csr"))

    def rho_inv_sparse(self, g):
        return self._fold(self.rep.rho_inv_sparse(g), lambda x, y: sp.kron(x, y, format="csr"))

    def drho_sparse(self, A):
        if self.k == 0:
            return sp.csr_matrix((1, 1))
        d, n = self.rep.drho_sparse(A), self.rep.size
        m, size = d, n
        for _ in range(self.k - 1):
            m = _kron_sum(m, size, d, n)
            size *= n
        return m.tocsr()

    def _character(self, g):
        return self.rep._character(g) ** self.k

    def __str__(self):
        base = str(self.rep)
        if not self.rep._is_atom():
            base = f"({base})"
        return f"{base}**{self.k}"


# ------------------------------------------------------------------ canonical builders
def scalars(group: MatrixGroup, n: int) -> Rep:
    """n invariant scalars (n >= 1): ``Trivial`` or a Sum of them."""
    if n < 1:
        raise ValueError(f"{n} scalars is an empty representation")
    t = Trivial(group)
    return t if n == 1 else Sum(*([t] * n))


def _scalar_count(rep: Rep) -> int | None:
    if isinstance(rep, Trivial):
        return 1
    if isinstance(rep, Sum) and all(isinstance(t, Trivial) for t in rep.terms):
        return len(rep.terms)
    return None


def direct_sum(*reps: Rep) -> Rep:
    """Canonical direct sum: nested sums flattened, a single term returned as is."""
    terms = []
    for r in reps:
        terms.extend(r.terms if isinstance(r, Sum) else [r])
    if not terms:
        raise ValueError("a direct sum needs at least one term")
    return terms[0] if len(terms) == 1 else Sum(*terms)


def _power_parts(rep: Rep) -> tuple[Rep, int]:
    return (rep.rep, rep.k) if isinstance(rep, Power) else (rep, 1)


def tensor(a: Rep, b: Rep) -> Rep:
    """Canonical tensor product: n scalars (x) X is n copies of X, X (x) X is X**2."""
    _same_group([a, b])
    na, nb = _scalar_count(a), _scalar_count(b)
    if na is not None and nb is not None:
        return scalars(a.group, na * nb)
    if na is not None:
        return direct_sum(*([b] * na))
    if nb is not None:
        return direct_sum(*([a] * nb))
    (ba, ka), (bb, kb) = _power_parts(a), _power_parts(b)
    if ba == bb:
        return Power(ba, ka + kb)
    return Tensor(a, b)


def power(rep: Rep, k: int) -> Rep:
    """Canonical k-th tensor power (k >= 0)."""
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
        raise ValueError(f"tensor power needs an integer k >= 0, got {k!r}")
    k = int(k)
    if k == 0:
        return Trivial(rep.group)
    n = _scalar_count(rep)
    if n is not None:
        return scalars(rep.group, n ** k)
    if k == 1:
        return rep
    base, j = _power_parts(rep)
    return Power(base, j * k)


def dual(rep: Rep) -> Rep:
    """Canonical dual, pushed to the leaves (all these identities hold exactly)."""
    if rep._dual_is_itself:
        return rep  # permutation and planar rotation matrices are orthogonal
    if isinstance(rep, Dual):
        return rep.rep
    if isinstance(rep, Sum):
        return direct_sum(*(dual(t) for t in rep.terms))
    if isinstance(rep, Tensor):
        return tensor(dual(rep.a), dual(rep.b))
    if isinstance(rep, Power):
        return power(dual(rep.rep), rep.k)
    return Dual(rep)


def frequency(group: MatrixGroup, k: int) -> Rep:
    """Canonical freq(k): freq(1) has exactly V's matrices, so it is V."""
    rep = Frequency(group, k)
    return Vector(group) if rep.k == 1 else rep
