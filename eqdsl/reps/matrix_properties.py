"""What the type checker asks of a representation of a matrix group, answered numerically.

Each answer only needs the generators: a property that holds for every generator
(and Lie-algebra generator) holds for the whole group they generate.  Answers
are memoized per representation, and solved bases per (input, output) pair, so
the checker and the IR verifier can ask repeatedly.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import solve as _solve
from .matrix_reps import Rep, Sum, Tensor, Trivial
from .permutation_reps import Permutation, Regular

_TOL = 1e-9

# Largest constraint (out.size * in.size of one pair of block types) solved at compile time.
# Measured on 2 cores: SO(5) V**3 -> V**3 (15,625 unknowns) takes 1.5 s, V**4 -> V**3 (78,125) 111 s.
MAX_BLOCK_ENTRIES = 20_000


class TooLargeToSolve(ValueError):
    def __init__(self, rep_in: Rep, rep_out: Rep):
        super().__init__(f"an equivariant map `{rep_in}` -> `{rep_out}` has {rep_in.size * rep_out.size} unknowns, "
                         f"more than the {MAX_BLOCK_ENTRIES} solved at compile time")
        self.rep_in, self.rep_out = rep_in, rep_out


def blocks(rep: Rep) -> list[Rep]:
    """The terms a feature vector is split into: channels of a Sum, else the rep itself."""
    return list(rep.terms) if isinstance(rep, Sum) else [rep]


def is_scalars(rep: Rep) -> bool:
    return all(isinstance(t, Trivial) for t in blocks(rep))


@functools.lru_cache(maxsize=4096)
def is_permutation_rep(rep: Rep) -> bool:
    """rho(g) permutes coordinates for every g: then pointwise functions and max commute with the group."""
    if all(isinstance(t, (Trivial, Regular, Permutation)) for t in blocks(rep)):
        return True
    G = rep.group
    if G.lie_generators:
        return False
    for h in G.discrete_generators:
        m = sp.csr_matrix(rep.rho_sparse(h))
        m.eliminate_zeros()
        if m.nnz != rep.size or not np.allclose(m.data, 1.0, atol=_TOL):
            return False
        if len(set(m.indices.tolist())) != rep.size:
            return False
    return True


@functools.lru_cache(maxsize=4096)
def is_orthogonal_rep(rep: Rep) -> bool:
    """rho(g) is orthogonal for every g: Euclidean norms and dot products of blocks are then invariant."""
    G = rep.group
    for A in G.lie_generators:
        d = sp.csr_matrix(rep.drho_sparse(A))
        if abs(d + d.T).max() > _TOL * max(1.0, abs(d).max()):
            return False
    for h in G.discrete_generators:
        r = sp.csr_matrix(rep.rho_sparse(h))
        if abs(r @ r.T - sp.identity(rep.size)).max() > _TOL:
            return False
    return True


def type_groups(rep: Rep) -> list[tuple[Rep, np.ndarray]]:
    """Blocks grouped by type, in order of first appearance: (type, coordinates [multiplicity, type.size]).

    Equivariant maps between copies of the same types share one solved basis; the
    weights form a [m_out, m_in, n_basis] array (like a uvw tensor product), so wide
    layers never need a dense basis of the whole map.
    """
    where: dict = {}
    offset = 0
    for t in blocks(rep):
        where.setdefault(t, []).append(np.arange(offset, offset + t.size))
        offset += t.size
    return [(t, np.stack(idx)) for t, idx in where.items()]


@functools.lru_cache(maxsize=4096)
def type_count(rep_in: Rep, rep_out: Rep) -> int:
    """dim Hom_G(rep_in, rep_out) for two single blocks, solved (and cached on disk) by eqdsl.reps.solve."""
    if rep_in.size * rep_out.size > MAX_BLOCK_ENTRIES:
        raise TooLargeToSolve(rep_in, rep_out)
    return int(_solve.solve(rep_in, rep_out, allow_empty=True).basis.shape[0])


def basis_count(rep_in: Rep, rep_out: Rep) -> int:
    """dim Hom_G(rep_in, rep_out): sum over block types of m_out * m_in * (basis size for the two types)."""
    return sum(len(io) * len(ii) * type_count(ti, to) for to, io in type_groups(rep_out) for ti, ii in type_groups(rep_in))


def bilinear_count(rep_a: Rep, rep_b: Rep, rep_out: Rep) -> int:
    return sum(len(io) * len(ia) * len(ib) * type_count(Tensor(ta, tb), to)
               for to, io in type_groups(rep_out) for ta, ia in type_groups(rep_a) for tb, ib in type_groups(rep_b))


def unreachable_blocks(rep_in: Rep, rep_out: Rep) -> list[int]:
    """Indices of output blocks no equivariant linear map from rep_in reaches (Schur's lemma, numerically)."""
    ins = [t for t, _ in type_groups(rep_in)]
    return [i for i, t in enumerate(blocks(rep_out)) if not any(type_count(s, t) for s in ins)]


def bilinear_unreachable(rep_a: Rep, rep_b: Rep, rep_out: Rep) -> list[int]:
    """Output blocks that no equivariant bilinear map from (a, b) reaches."""
    ins = [Tensor(x, y) for x, _ in type_groups(rep_a) for y, _ in type_groups(rep_b)]
    return [i for i, t in enumerate(blocks(rep_out)) if not any(type_count(s, t) for s in ins)]


@functools.lru_cache(maxsize=4096)
def invariant_form_count(rep: Rep) -> int:
    """Number of independent invariant bilinear forms on one block (1 for V of SO(n) or the Lorentz group)."""
    return type_count(Tensor(rep, rep), Trivial(rep.group))


MAX_LISTED_FREQUENCY = 12


def planar_irreps(group) -> list[Rep] | None:
    """The analytic irreps listed in diagnostics for SO(2), O(2), Cn, Dn (scalar, det, freq(k)); None otherwise."""
    from .matrix_reps import Det, _planar_orthogonal, frequency
    if not _planar_orthogonal(group):
        return None
    out = [Trivial(group)]
    if any(np.linalg.det(h) < 0 for h in group.discrete_generators):
        out.append(Det(group))
    top = MAX_LISTED_FREQUENCY
    if group.is_finite:
        top = min(top, group.order // (2 if len(out) > 1 else 1) // 2)
    out += [frequency(group, k) for k in range(1, top + 1)]
    return out


def contained_irreps(rep: Rep) -> list | None:
    """Which irreps occur in ``rep``: the analytic ones of the planar groups, or the numerically found
    characters of other finite groups (``finite_irreps``); None when the group has no such list."""
    irreps = planar_irreps(rep.group)
    if irreps is not None:
        if rep.size * 2 > MAX_BLOCK_ENTRIES:
            return None
        return [ir for ir in irreps if any(type_count(t, ir) for t, _ in type_groups(rep))]
    finite = finite_irreps(rep.group)
    if finite is None:
        return None
    chi = np.array([rep.character(g) for g in rep.group.elements()])
    # characters of distinct real irreps are orthogonal: <chi, chi_i> = multiplicity * <chi_i, chi_i>
    return [ir for ir in finite if chi @ np.array(ir.character) > 0.5 * np.dot(ir.character, ir.character)]


# Finite groups up to this order get their real irreducible characters computed for diagnostics.
MAX_CHARACTER_ORDER = 240


@dataclass(frozen=True)
class FiniteIrrep:
    """A real irreducible character of a finite group, found numerically; ``name`` is how diagnostics show it."""
    name: str
    dim: int
    character: tuple  # over group.elements(), rounded

    def __str__(self) -> str:
        return self.name


@functools.lru_cache(maxsize=32)
def finite_irreps(group) -> tuple | None:
    """The real irreducible characters of a finite group (order <= MAX_CHARACTER_ORDER), or None.

    The regular representation splits into irreducible pieces along the eigenspaces of a random
    symmetric element of its commutant (right multiplications, which commute with the left
    regular action); pieces with equal characters are copies of one irrep. Names: `scalar`,
    `det` where the group has reflections, then `irrep<dim>_<i>` in a fixed order (dimension,
    then character).
    """
    if not group.is_finite or group.order > MAX_CHARACTER_ORDER:
        return None
    elems = group.elements()
    n = len(elems)
    inv = [group.element_index(np.linalg.inv(g)) for g in elems]
    table = np.array([[group.element_index(a @ b) for b in elems] for a in elems])  # index of a b
    rng = np.random.default_rng(0)
    coeff = rng.normal(size=n)
    H = np.zeros((n, n))
    for h in range(n):  # right multiplication by h^-1: e_g -> e_{g h^-1}
        H[table[:, inv[h]], np.arange(n)] += coeff[h]
    H = H + H.T
    w, V = np.linalg.eigh(H)
    groups_, start = [], 0
    scale = max(1.0, float(np.abs(w).max()))
    for i in range(1, n + 1):
        if i == n or w[i] - w[i - 1] > 1e-7 * scale:
            groups_.append(V[:, start:i])
            start = i
    chars = {}
    for Q in groups_:
        # the left regular action: e_g -> e_{a g}
        chi = tuple(round(float(np.trace(Q.T @ Q[table[a]])), 6) + 0.0 for a in range(n))
        chars.setdefault(chi, Q.shape[1])
    det = tuple(round(float(np.linalg.det(g)), 6) + 0.0 for g in elems)
    ones = tuple(1.0 for _ in elems)
    found = []
    rest = sorted((c for c in chars if c not in (ones, det)), key=lambda c: (c[0], c))
    found.append(FiniteIrrep("scalar", 1, ones))
    if det in chars and det != ones:
        found.append(FiniteIrrep("det", 1, det))
    counters: dict = {}
    for c in rest:
        d = int(round(c[0]))
        counters[d] = counters.get(d, 0) + 1
        found.append(FiniteIrrep(f"irrep{d}_{counters[d]}", d, c))
    return tuple(found)
