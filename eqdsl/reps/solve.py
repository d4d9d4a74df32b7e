"""Equivariant linear and bilinear maps between representations, solved numerically.

A linear map W: rep_in -> rep_out (an ``out.size x in.size`` matrix) is
equivariant when ``rho_out(g) W = W rho_in(g)`` for all g.  It suffices to ask
this for the generators of the group:

* for each Lie generator A:  ``drho_out(A) W - W drho_in(A) = 0``
* for each discrete generator h:  ``rho_out(h) W - W rho_in(h) = 0``
  (equivalent to ``rho_out(h) W rho_in(h)^{-1} = W``, without an inverse).

With ``w = vec(W)`` (row-major) each condition is ``C_k w = 0`` with
``C_k = kron(P_k, I_in) - kron(I_out, Q_k^T)``, and the solutions are the common
null space of the C_k, i.e. the null space of ``M = sum_k C_k^T C_k``.

Pipeline (``solve``):

1. **Split** both reps into their block-diagonal pieces (``Rep.blocks()``: sums,
   tensors whose left factor is a sum, duals of sums).  Hom(sum a_i, sum b_j)
   is the direct sum of the Hom(a_i, b_j), so each pair is solved on its own;
   identical pairs are solved once, and each distinct pair is cached.
2. **Candidates** for the null space of a block (constraints normalized so each
   has singular values of order one):

   * ``dense`` (N = out*in <= ``DENSE_MAX`` = 1024): M built from Kronecker
     identities in O(K N^2) (``C^T C = kron(P^T P, I) - kron(P^T, Q^T) -
     kron(P, Q) + kron(I, Q Q^T)``), then a full symmetric eigendecomposition
     (LAPACK divide and conquer; this is the SVD of the stacked C),
     eigenvalues below 1e-8 kept.  (LAPACK's subset solver ``evr`` is not
     used: it returned non-orthogonal, even repeated, vectors for the exactly
     degenerate zero cluster.)
   * ``iterative`` (larger N): M as a sparse matrix (the P_k, Q_k of tensor
     reps are sparse Kronecker sums / products), one factorization of
     ``M + delta I`` (delta = 1e-9 ||M||; sparse LU, or dense Cholesky when M
     is more than 10% full, as for rotations by 2 pi / n in tensor powers),
     then shift-invert block subspace iteration with Rayleigh-Ritz.  A block
     whose Ritz values are all ~0 is locked and a fresh block, deflated
     against the locked vectors, is iterated, until a block holds a Ritz value
     that is clearly not zero.  The first block is 16 wide, or the exact
     dimension + 8 from characters for finite groups of order <= 2000.
     Shift-invert maps the null space to the eigenvalue 1/delta and the rest
     below 1/lambda_min, a ratio of 1e5 or more, so two iterations reach
     machine precision whatever the multiplicity of the null space.
     Lanczos/ARPACK (``eigsh``) finds eigenvectors of an exactly degenerate
     cluster one restart at a time and these null spaces are large (91 for
     SO(3) V**4 -> V**4) and exactly degenerate; LOBPCG without a
     preconditioner needs many iterations on the ill-conditioned M.

   Measured on 2 busy cores, the iterative solver beats the dense one from
   N of a few hundred (N = 4096: 0.3 s against 13-18 s), so ``DENSE_MAX`` is
   1024 rather than 4096; dense stays the default for small blocks (no
   factorization fill to worry about) and is the reference in the tests.
   BLAS is limited to one thread during a solve (see ``_blas_threads``).

3. **Refine and certify** in the candidate subspace X: the Gram matrix of the
   *unsquared* residuals ``C_k X`` (computed from P, Q without forming C) is
   diagonalized and directions with residual above ``tol`` are dropped.
4. **Canonicalize**: the basis of the solution subspace is made independent of
   the solver: greedy pivoted Cholesky of the projector (pivot = largest
   leverage, ties to the lowest index) followed by QR with positive diagonal.
   Dense and iterative solves therefore return the same arrays up to rounding
   (~1e-12), and repeated solves identical arrays.

Results are orthonormal (``sum_ij B[a,i,j] B[b,i,j] = delta_ab``).  An empty
result raises :class:`NoEquivariantMap` (unless ``allow_empty=True``).

Cache: each distinct block problem is stored with ``np.save`` under
``$EQDSL_CACHE`` (default ``$XDG_CACHE_HOME/eqdsl/bases`` or
``~/.cache/eqdsl/bases``), keyed by a SHA-256 of the solver version, the group
fingerprint (name + generator bytes), both rep structures and the tolerance.
Writes are atomic (temporary file + ``os.replace``).  ``EQDSL_CACHE=off`` (or
``0``, ``none``, ``false``) or ``cache=False`` disables it; a ``BasisCache``
also keeps an in-memory copy and counts hits/misses (``cache.stats``).

Numpy and scipy only.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .matrix_reps import Dual, Rep, Tensor, Trivial

__all__ = [
    "NoEquivariantMap", "SolverError", "BasisCache", "Solution", "SOLVER_VERSION", "DENSE_MAX",
    "equivariant_basis", "bilinear_basis", "invariant_basis", "solve", "default_cache",
    "count_equivariant_finite", "canonicalize_basis",
]

log = logging.getLogger(__name__)

SOLVER_VERSION = "1"
DENSE_MAX = 1024            # N = out*in up to which the dense eigensolver is used (see module doc)
DEFAULT_TOL = 1e-6          # residual (normalized constraints) below which a direction is a solution
_CANDIDATE = 1e-8           # eigenvalue of M (= residual^2) below which a direction is a candidate
_SHIFT = 1e-9               # delta / ||M|| for the shift-invert iteration
_ITERATIONS = 2
_MEMORY_ITEMS = 512
_DENSE_FILL = 0.1           # iterative: factor M densely (Cholesky) above this fill ratio
_DENSE_FACTOR_MAX = 20000


class NoEquivariantMap(ValueError):
    """The only equivariant map between the two representations is zero."""

    def __init__(self, rep_in: Rep, rep_out: Rep):
        self.rep_in, self.rep_out = rep_in, rep_out
        super().__init__(f"no nonzero {rep_in.group.name}-equivariant linear map from `{rep_in}` "
                         f"to `{rep_out}`")


class SolverError(RuntimeError):
    """The numerical solve failed to certify its result (should not happen for sane groups)."""


# ------------------------------------------------------------------------------ cache
_DISABLED = {"", "0", "off", "false", "no", "none", "disable", "disabled"}


def _cache_dir_from_env() -> Path | None:
    env = os.environ.get("EQDSL_CACHE")
    if env is not None:
        return None if env.strip().lower() in _DISABLED else Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base).expanduser() if base else Path.home() / ".cache"
    return root / "eqdsl" / "bases"


@dataclass
class CacheStats:
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    writes: int = 0

    @property
    def hits(self) -> int:
        return self.memory_hits + self.disk_hits


class BasisCache:
    """Disk (``np.save``, atomic) plus in-memory cache of solved block bases.

    ``directory=None`` keeps the memory layer only; ``memory=False`` the disk only.
    """

    def __init__(self, directory: str | os.PathLike | None, memory: bool = True):
        self.directory = Path(directory) if directory is not None else None
        self.memory = memory
        self._mem: dict[str, np.ndarray] = {}
        self.stats = CacheStats()

    def path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{key}.npy"

    def get(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        if self.memory and key in self._mem:
            self.stats.memory_hits += 1
            log.debug("basis cache hit (memory) %s", key[:12])
            return self._mem[key].copy()
        p = self.path(key)
        if p is not None and p.exists():
            try:
                arr = np.load(p, allow_pickle=False)
                if arr.ndim == 3 and arr.shape[1:] == tuple(shape) and arr.dtype == np.float64 \
                        and np.all(np.isfinite(arr)):
                    self.stats.disk_hits += 1
                    log.debug("basis cache hit (disk) %s", p)
                    self._remember(key, arr)
                    return arr.copy()
                log.warning("ignoring malformed cached basis %s", p)
            except (OSError, ValueError) as err:
                log.warning("ignoring unreadable cached basis %s: %s", p, err)
        self.stats.misses += 1
        return None

    def put(self, key: str, arr: np.ndarray) -> None:
        self._remember(key, arr)
        p = self.path(key)
        if p is None:
            return
        tmp = None
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{key[:16]}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(arr, dtype=np.float64), allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
            tmp = None
            self.stats.writes += 1
        except OSError as err:
            warnings.warn(f"could not write basis cache {p}: {err}", RuntimeWarning, stacklevel=3)
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def _remember(self, key: str, arr: np.ndarray) -> None:
        if not self.memory:
            return
        if len(self._mem) >= _MEMORY_ITEMS:
            self._mem.pop(next(iter(self._mem)))
        self._mem[key] = np.array(arr, copy=True)

    def clear_memory(self) -> None:
        self._mem.clear()


_DEFAULT_CACHES: dict[str | None, BasisCache] = {}


def default_cache() -> BasisCache | None:
    """The cache ``$EQDSL_CACHE`` names now (one object per directory), or None if disabled."""
    d = _cache_dir_from_env()
    if d is None:
        return None
    k = str(d)
    if k not in _DEFAULT_CACHES:
        _DEFAULT_CACHES[k] = BasisCache(d)
    return _DEFAULT_CACHES[k]


def _resolve_cache(cache) -> BasisCache | None:
    if cache is None or cache is True:
        return default_cache()
    if cache is False:
        return None
    if isinstance(cache, BasisCache):
        return cache
    raise TypeError("cache must be None, True, False or a BasisCache")


def problem_key(rep_in: Rep, rep_out: Rep, tol: float) -> str:
    h = hashlib.sha256()
    for part in (f"eqdsl-basis-v{SOLVER_VERSION}", rep_in.group.fingerprint,
                 rep_in.structure(), rep_out.structure(), repr(float(tol))):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


# ------------------------------------------------------------------------ BLAS threads
_BLAS_SETTERS = None


def _blas_setters():
    """``openblas_set_num_threads_local`` of every OpenBLAS loaded in this process (Linux only)."""
    global _BLAS_SETTERS
    if _BLAS_SETTERS is None:
        import ctypes
        setters, seen = [], set()
        try:
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
        except OSError:
            paths = set()
        for path in sorted(paths):
            if path in seen:
                continue
            seen.add(path)
            try:
                fn = ctypes.CDLL(path).openblas_set_num_threads_local
            except (OSError, AttributeError):
                continue
            fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int
            setters.append(fn)
        _BLAS_SETTERS = setters
    return _BLAS_SETTERS


class _blas_threads:
    """Limit OpenBLAS to ``EQDSL_SOLVER_THREADS`` threads (default 1) for the calling thread.

    The solver's BLAS calls are many small or tall-skinny ones (QR of N x b blocks,
    supernodal triangular solves); on a busy machine threaded OpenBLAS spends
    most of its time synchronizing (10-20x slower measured here, 2 cores under
    load).  One thread is also bitwise reproducible.  ``EQDSL_SOLVER_THREADS=0``
    leaves BLAS alone.  Best effort: a no-op where OpenBLAS is not found.
    """

    def __enter__(self):
        self.saved = []
        try:
            n = int(os.environ.get("EQDSL_SOLVER_THREADS", "1"))
        except ValueError:
            n = 1
        if n > 0:
            for fn in _blas_setters():
                self.saved.append((fn, fn(n)))
        return self

    def __exit__(self, *exc):
        for fn, old in reversed(self.saved):
            fn(max(int(old), 0))
        return False


# ------------------------------------------------------------------------ constraints
def _constraints(rep_in: Rep, rep_out: Rep):
    """(P_k, Q_k, scale_k): P_k W - W Q_k = 0 for each generator, scale normalizing C_k."""
    G = rep_in.group
    pairs = [(rep_out.drho_sparse(A), rep_in.drho_sparse(A)) for A in G.lie_generators]
    pairs += [(rep_out.rho_sparse(h), rep_in.rho_sparse(h)) for h in G.discrete_generators]
    no, ni = rep_out.size, rep_in.size
    out = []
    for P, Q in pairs:
        P, Q = sp.csr_matrix(P), sp.csr_matrix(Q)
        P.eliminate_zeros()
        Q.eliminate_zeros()
        norm = spla.norm(P) / np.sqrt(no) + spla.norm(Q) / np.sqrt(ni)
        if norm > 0:
            out.append((P, Q, 1.0 / norm))
    return out


def _apply(P, Q, s, X, no: int, ni: int) -> np.ndarray:
    """s * vec(P W - W Q) for each column w = vec(W) of X (N x c)."""
    c = X.shape[1]
    Xm = X.T.reshape(c, no, ni)
    PW = (P @ Xm.transpose(1, 0, 2).reshape(no, c * ni)).reshape(no, c, ni).transpose(1, 0, 2)
    WQ = (Q.T @ Xm.reshape(c * no, ni).T).T.reshape(c, no, ni)
    return (s * (PW - WQ)).reshape(c, no * ni).T


def _residual_gram(cons, X, no, ni) -> np.ndarray:
    G = np.zeros((X.shape[1], X.shape[1]))
    for P, Q, s in cons:
        Y = _apply(P, Q, s, X, no, ni)
        G += Y.T @ Y
    return G


def _dense_candidates(cons, no: int, ni: int) -> np.ndarray:
    N = no * ni
    M = np.zeros((N, N))
    Ii, Io = np.eye(ni), np.eye(no)
    for P, Q, s in cons:
        Pd, Qd = P.toarray() * s, Q.toarray() * s
        M += np.kron(Pd.T @ Pd, Ii)
        M += np.kron(Io, Qd @ Qd.T)
        K = np.kron(Pd, Qd)
        M -= K
        M -= K.T
    M = 0.5 * (M + M.T)
    # full divide-and-conquer eigh: LAPACK's evr (MRRR) subset solver was seen to return
    # non-orthogonal, even identical, vectors for the exactly degenerate null cluster
    w, v = np.linalg.eigh(M)
    return v[:, w <= _CANDIDATE]


def _sparse_M(cons, no: int, ni: int) -> sp.csc_matrix:
    Ii, Io = sp.identity(ni, format="csr"), sp.identity(no, format="csr")
    M = None
    for P, Q, s in cons:
        C = (sp.kron(P, Ii, format="csr") - sp.kron(Io, Q.T, format="csr")) * s
        CtC = (C.T @ C).tocsc()
        M = CtC if M is None else M + CtC
    return M.tocsc()


def _iterative_candidates(cons, no: int, ni: int, block: int | None = None) -> np.ndarray:
    N = no * ni
    M = _sparse_M(cons, no, ni)
    bound = float(abs(M).sum(axis=1).max())  # Gershgorin bound on ||M||
    shift = _SHIFT * max(bound, 1e-300)
    if M.nnz > _DENSE_FILL * N * N:
        # e.g. rotations by 2 pi / n in tensor powers: Kronecker products of dense blocks
        if N > _DENSE_FACTOR_MAX:
            raise SolverError(f"constraint matrix of size {N} is too dense to factor")
        M = M.toarray()
        cho = scipy.linalg.cho_factor(M + shift * np.eye(N), lower=True, check_finite=False)

        def inverse(X):
            return scipy.linalg.cho_solve(cho, X, check_finite=False)
    else:
        lu = spla.splu((M + shift * sp.identity(N, format="csc")).tocsc(), permc_spec="MMD_AT_PLUS_A")
        inverse = lu.solve
    rng = np.random.default_rng(0x5EED)
    locked = np.zeros((N, 0))
    b = min(N, block or 16)
    while True:
        # a fresh block orthogonal to the null vectors found so far (deflation)
        X = rng.standard_normal((N, b))
        for _ in range(_ITERATIONS):
            X -= locked @ (locked.T @ X)
            X = np.linalg.qr(X)[0]
            X = inverse(X)
        X -= locked @ (locked.T @ X)
        X = np.linalg.qr(X)[0]
        H = X.T @ (M @ X)
        theta, U = np.linalg.eigh(0.5 * (H + H.T))
        small = theta <= _CANDIDATE * max(bound, 1.0)
        locked = np.hstack([locked, X @ U[:, small]])
        if not small.all() or locked.shape[1] >= N:
            return locked
        b = min(N - locked.shape[1], max(b, locked.shape[1]))


def canonicalize_basis(B: np.ndarray, tie: float = 1e-8) -> np.ndarray:
    """A basis of span(B) (N x r, orthonormal columns) that depends only on the span.

    Greedy pivoted Cholesky of the projector B B^T (pivot: largest remaining
    leverage, ties within ``tie`` to the lowest index), then QR of the Cholesky
    factor with a positive diagonal.
    """
    N, r = B.shape
    if r == 0:
        return B.copy()
    d = np.einsum("ij,ij->i", B, B)
    L = np.zeros((N, r))
    for k in range(r):
        m = d.max()
        j = int(np.flatnonzero(d >= m * (1 - tie))[0])
        col = B @ B[j] - L[:, :k] @ L[j, :k]
        L[:, k] = col / np.sqrt(col[j])
        d = d - L[:, k] ** 2
        d[j] = 0.0
    Q, R = np.linalg.qr(L)
    sign = np.where(np.diag(R) < 0, -1.0, 1.0)
    return Q * sign


def _block_hint(rep_in: Rep, rep_out: Rep) -> int | None:
    """Exact null-space dimension (+ margin) for small finite groups, from characters."""
    G = rep_in.group
    try:
        if G.is_finite and G.order <= 2000 and rep_in.size * rep_out.size * G.order <= 5e7:
            return count_equivariant_finite(rep_in, rep_out) + 8
    except (SolverError, ValueError):  # GroupTooLarge is a ValueError
        pass
    return None


def _solve_block(rep_in: Rep, rep_out: Rep, method: str, tol: float, dense_max: int) -> tuple[np.ndarray, str]:
    no, ni = rep_out.size, rep_in.size
    N = no * ni
    cons = _constraints(rep_in, rep_out)
    if not cons:
        B = np.eye(N)
        return B.T.reshape(N, no, ni), "trivial"
    used = method if method != "auto" else ("dense" if N <= dense_max else "iterative")
    if used == "dense":
        X = _dense_candidates(cons, no, ni)
    elif used == "iterative":
        X = _iterative_candidates(cons, no, ni, _block_hint(rep_in, rep_out))
    else:
        raise ValueError(f"unknown method {method!r}; use 'auto', 'dense' or 'iterative'")
    if X.shape[1]:
        X = np.linalg.qr(X)[0]
        G = _residual_gram(cons, X, no, ni)
        w, U = np.linalg.eigh(0.5 * (G + G.T))
        B = X @ U[:, w <= tol * tol]
        B = canonicalize_basis(np.linalg.qr(B)[0] if B.shape[1] else B)
    else:
        B = X
    if B.shape[1]:
        res = np.sqrt(max(0.0, float(np.abs(np.diag(_residual_gram(cons, B, no, ni))).max())))
        if res > tol:
            raise SolverError(f"equivariance residual {res:.2e} above {tol:.0e} for {rep_in} -> {rep_out}")
    return B.T.reshape(B.shape[1], no, ni), used


# ---------------------------------------------------------------------------- public API
@dataclass
class Solution:
    """A solved basis with what it took: method per distinct block, cache use, wall time."""
    basis: np.ndarray
    rep_in: Rep
    rep_out: Rep
    methods: dict = field(default_factory=dict)  # "dense"/"iterative"/"trivial"/"cache" -> count
    blocks: int = 0
    distinct_blocks: int = 0
    cache_hits: int = 0
    seconds: float = 0.0


def _offsets(blocks):
    offs, o = [], 0
    for b in blocks:
        offs.append(o)
        o += b.size
    return offs


def solve(rep_in: Rep, rep_out: Rep, *, method: str = "auto", cache=None,
          tol: float = DEFAULT_TOL, dense_max: int = DENSE_MAX, allow_empty: bool = False) -> Solution:
    """Orthonormal basis [n, out.size, in.size] of the equivariant maps rep_in -> rep_out.

    ``method``: "auto" (dense up to ``dense_max`` = out*in per block, iterative above),
    "dense" or "iterative".  ``cache``: None/True (``$EQDSL_CACHE``), False, or a BasisCache.
    """
    if not (isinstance(rep_in, Rep) and isinstance(rep_out, Rep)):
        raise TypeError("solve needs two Reps")
    if rep_in.group != rep_out.group:
        raise ValueError(f"representations of different groups: {rep_in.group.name} and {rep_out.group.name}")
    t0 = time.perf_counter()
    store = _resolve_cache(cache)
    bin_, bout = rep_in.blocks(), rep_out.blocks()
    oin, oout = _offsets(bin_), _offsets(bout)
    solved: dict[tuple[Rep, Rep], np.ndarray] = {}
    sol = Solution(np.zeros(0), rep_in, rep_out, blocks=len(bin_) * len(bout))
    pieces = []
    for bo, oo in zip(bout, oout):
        for bi, oi in zip(bin_, oin):
            pair = (bi, bo)
            if pair not in solved:
                key = problem_key(bi, bo, tol)
                basis = store.get(key, (bo.size, bi.size)) if store is not None else None
                if basis is None:
                    with _blas_threads():
                        basis, used = _solve_block(bi, bo, method, tol, dense_max)
                    if store is not None:
                        store.put(key, basis)
                else:
                    used = "cache"
                    sol.cache_hits += 1
                sol.methods[used] = sol.methods.get(used, 0) + 1
                solved[pair] = basis
            pieces.append((oo, oi, solved[pair]))
    sol.distinct_blocks = len(solved)
    n = sum(p[2].shape[0] for p in pieces)
    out = np.zeros((n, rep_out.size, rep_in.size))
    k = 0
    for oo, oi, basis in pieces:
        m, so, si = basis.shape
        out[k:k + m, oo:oo + so, oi:oi + si] = basis
        k += m
    sol.basis = out
    sol.seconds = time.perf_counter() - t0
    if n == 0 and not allow_empty:
        raise NoEquivariantMap(rep_in, rep_out)
    return sol


def equivariant_basis(rep_in: Rep, rep_out: Rep, **kwargs) -> np.ndarray:
    """Orthonormal basis [n_basis, out.size, in.size] of equivariant linear maps (see ``solve``)."""
    return solve(rep_in, rep_out, **kwargs).basis


def bilinear_basis(rep_a: Rep, rep_b: Rep, rep_out: Rep, **kwargs) -> np.ndarray:
    """Basis [n, out.size, a.size, b.size] of equivariant bilinear maps: y_o = sum W[o,i,j] a_i b_j.

    Solved as linear maps from ``Tensor(rep_a, rep_b)`` (coordinate i * b.size + j).
    """
    B = solve(Tensor(rep_a, rep_b), rep_out, **kwargs).basis
    return B.reshape(B.shape[0], rep_out.size, rep_a.size, rep_b.size)


def invariant_basis(rep: Rep, **kwargs) -> np.ndarray:
    """Orthonormal basis [n, size] of the vectors v with rho(g) v = v."""
    B = solve(Trivial(rep.group), rep, **kwargs).basis
    return B[:, :, 0]


def count_equivariant_finite(rep_in: Rep, rep_out: Rep) -> int:
    """dim Hom_G(in, out) for a finite group by characters: mean of chi_out(g) chi_in(g^-1)."""
    G = rep_in.group
    if not G.is_finite:
        raise ValueError("character counting needs a finite group")
    d_in = Dual(rep_in)
    total = sum(rep_out._character(g) * d_in._character(g) for g in G.elements())
    value = total / G.order
    n = int(round(value))
    if abs(value - n) > 1e-6:
        raise SolverError(f"character average {value} is not an integer")
    return n
