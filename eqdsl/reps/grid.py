"""Geometry of steerable kernels on the pixel grid, without torch (the type checker needs it).

Which groups map the grid to itself, the orbits of kernel offsets and of ring sample
points, and the solved kernel bases; ``eqdsl.backends.reference.conv2d`` runs the
convolutions and documents the construction.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from eqdsl.groups.matrix import MatrixGroup
from eqdsl.reps.matrix_reps import Frequency, Rep, Sum, Tensor, Trivial
from eqdsl.reps.permutation_reps import Permutation
from eqdsl.reps.solve import solve

_GRID_GROUPS = "C2, C4, D1, D2 or D4"


def _signed_permutation(h: np.ndarray, atol: float = 1e-6) -> np.ndarray | None:
    """h rounded to an integer matrix when it is (numerically) a signed permutation, else None.

    Built-in rotations carry rounding (cos(pi/2) = 6e-17), hence the tolerance.
    """
    h = np.asarray(h, dtype=np.float64)
    r = np.rint(h)
    if h.shape != (2, 2) or not np.allclose(h, r, atol=atol):
        return None
    if not (np.all(np.abs(r).sum(axis=0) == 1) and np.all(np.abs(r).sum(axis=1) == 1)):
        return None
    return r.astype(np.int64)


def _describe(h: np.ndarray) -> str:
    """'rotations by 45 degrees' / 'the reflection ...' for an orthogonal 2 x 2 matrix."""
    if np.allclose(h.T @ h, np.eye(2), atol=1e-8):
        angle = math.degrees(math.atan2(h[1, 0], h[0, 0]))
        if np.linalg.det(h) > 0:
            return f"rotations by {abs(angle):.4g} degrees"
        return f"the reflection across the line at {angle / 2:.4g} degrees"
    return f"the generator {np.round(h, 4).tolist()}"


def grid_group_ok(G: MatrixGroup) -> str | None:
    """None when G maps the square pixel grid to itself exactly, else a readable reason."""
    if not isinstance(G, MatrixGroup):
        return f"expected a matrix group, got {type(G).__name__}"
    if G.dim != 2:
        return (f"{G.name} acts on R^{G.dim}, but image convolutions need a group of the plane "
                f"(2 x 2 matrices); use {_GRID_GROUPS}")
    if G.lie_generators:
        return (f"{G.name} is continuous and its rotations do not map the pixel grid to itself; "
                f"exact steerable convolutions on a square grid need {_GRID_GROUPS}")
    for h in G.discrete_generators:
        if _signed_permutation(h) is None:
            return (f"{_describe(h)} in {G.name} do not map the pixel grid to itself; exact steerable "
                    f"convolutions on a square grid need {_GRID_GROUPS}")
    return None


def _check_grid_group(G: MatrixGroup) -> None:
    reason = grid_group_ok(G)
    if reason is not None:
        raise ValueError(reason)


def _orbits(perms: list[np.ndarray], n: int) -> list[list[int]]:
    """Orbits of n sites under the generators' index maps, each breadth-first from its smallest index."""
    seen = np.zeros(n, dtype=bool)
    orbits = []
    for start in range(n):
        if seen[start]:
            continue
        orbit, seen[start] = [start], True
        for idx in orbit:  # grows while iterating: breadth-first
            for p in perms:
                j = int(p[idx])
                if not seen[j]:
                    seen[j] = True
                    orbit.append(j)
        orbits.append(orbit)
    return orbits


def _offset_perms(G: MatrixGroup, kernel_size: int) -> list[np.ndarray]:
    """Per discrete generator h, the flat offset index of h d for every flat offset index of d."""
    k, r = kernel_size, kernel_size // 2
    d = np.stack(np.divmod(np.arange(k * k), k), axis=1) - r  # [k*k, 2]
    out = []
    for h in G.discrete_generators:
        e = d @ _signed_permutation(h).T + r
        out.append(e[:, 0] * k + e[:, 1])
    return out


def offset_orbits(G: MatrixGroup, kernel_size: int) -> list[list[int]]:
    """Orbits of G on the kernel offsets, as flat offset indices (d_i + r) * k + (d_j + r).

    Each orbit lists its points in breadth-first order from its smallest index,
    applying the discrete generators in order.
    """
    _check_grid_group(G)
    return _orbits(_offset_perms(G, kernel_size), kernel_size * kernel_size)


# ------------------------------------------------------------------ groups that do not map the grid to itself
# Width of the Gaussians that spread ring-point values onto pixels (in pixels).  The kernel on the
# grid samples the continuous kernel sum_p exp(-|x - p|^2 / (2 sigma^2)) K(p), which is exactly
# G-equivariant; sampling it on the unit grid aliases the Gaussian's spectrum at the sampling
# frequency 2 pi, which is exp(-2 pi^2 sigma^2): 8e-4 at sigma = 0.6 (0.04 at 0.4, so smaller sigmas
# make grid sums such as the kernel's moments depend on its orientation), while a larger sigma
# blurs neighbouring rings (one pixel apart) and points together.  escnn uses 0.6 too.
RING_SIGMA = 0.6


def _planar_rotation_generators(G: MatrixGroup) -> bool:
    """Whether G's Lie generators span exactly so(2): all antisymmetric 2 x 2, at least one nonzero."""
    return bool(G.lie_generators) and all(np.allclose(A, -A.T, atol=1e-9) for A in G.lie_generators) \
        and any(np.abs(A).max() > 1e-9 for A in G.lie_generators)


def _is_continuous(G: MatrixGroup) -> bool:
    return bool(G.lie_generators)


def _has_reflections(G: MatrixGroup) -> bool:
    return any(np.linalg.det(h) < 0 for h in G.discrete_generators)


def _approx_group_reason(G: MatrixGroup) -> str | None:
    """None when approximate (ring-sampled) kernels support G, else a readable reason.

    Supported: groups of rotations and reflections of the plane, finite (Cn, Dn) or continuous
    (SO(2), O(2): Lie generators spanning so(2), discrete generators orthogonal).
    """
    if not isinstance(G, MatrixGroup):
        return f"expected a matrix group, got {type(G).__name__}"
    if G.dim != 2:
        return (f"{G.name} acts on R^{G.dim}, but image convolutions need a group of rotations and reflections "
                "of the plane (2 x 2 matrices) such as Cn, Dn, SO(2) or O(2)")
    if G.lie_generators and not _planar_rotation_generators(G):
        return (f"{G.name} is continuous but not a group of rotations and reflections of the plane: continuous "
                "groups other than SO(2)/O(2) are not supported on images, not even approximately; use SO(2), "
                "O(2) or a finite group Cn or Dn with approximate=True")
    for h in G.discrete_generators:
        if not np.allclose(h @ h.T, np.eye(2), atol=1e-9):
            return (f"{_describe(h)} in {G.name} is not orthogonal; approximate steerable convolutions need "
                    "rotations and reflections of the plane")
    return None


def _check_approx_group(G: MatrixGroup) -> None:
    reason = _approx_group_reason(G)
    if reason is not None:
        raise ValueError(reason)


# Rotations by 0, 90, 180 and 270 degrees, exact integer matrices.
_GRID_ROTATIONS = np.array([[[1, 0], [0, 1]], [[0, -1], [1, 0]], [[-1, 0], [0, -1]], [[0, 1], [-1, 0]]],
                           dtype=np.float64)


def _grid_reflection(G: MatrixGroup) -> np.ndarray:
    """A reflection of continuous G (with reflections) across an axis at a multiple of 45 degrees:
    G's own reflection generator when it is a signed permutation (O(2)'s diag(-1, 1)), else diag(1, -1)
    (G holds every rotation, so R(theta) h for its reflection h reaches every reflection)."""
    for h in G.discrete_generators:
        if np.linalg.det(h) < 0:
            snapped = _signed_permutation(h)
            if snapped is not None:
                return snapped.astype(np.float64)
    return np.diag([1.0, -1.0])


def _check_member(G: MatrixGroup, g: np.ndarray) -> np.ndarray:
    if not G.is_element(g):  # by construction they are; this guards the construction
        raise AssertionError(f"{np.round(g, 6).tolist()} is not an element of {G.name}")
    return g


def grid_subgroup(G: MatrixGroup) -> np.ndarray:
    """The elements of G that map the pixel grid to itself (signed permutation matrices),
    [m, 2, 2] float64 with exact integer entries, identity first.

    Finite G: in ``G.elements()`` order.  SO(2): the rotations by 0, 90, 180, 270 degrees (in that
    order); O(2): those, then the 4 reflections R h across the axes at multiples of 45 degrees (h
    G's reflection generator when it is a signed permutation, R the 4 rotations in order).
    Approximate (ring-sampled) convolutions are exactly equivariant under these.
    """
    _check_approx_group(G)
    if _is_continuous(G):
        els = list(_GRID_ROTATIONS)
        if _has_reflections(G):
            h = _grid_reflection(G)
            els += [r @ h for r in _GRID_ROTATIONS]
        return np.stack([_check_member(G, g) for g in els])
    snapped = [_signed_permutation(g) for g in G.elements()]
    return np.stack([s for s in snapped if s is not None]).astype(np.float64)


# Angles (degrees) of the rotations at which approximate equivariance under continuous groups is
# measured: with the exact rotations by 90 degrees they reach every multiple of 15 degrees.
OFF_GRID_ANGLES = (15.0, 30.0, 45.0, 60.0, 75.0)


def off_grid_elements(G: MatrixGroup) -> np.ndarray:
    """Elements of G that move the pixel grid [m, 2, 2] (m may be 0), where approximate kernels are
    only approximately equivariant.

    Finite G: every element not in ``grid_subgroup(G)``, in ``G.elements()`` order.  SO(2): the
    rotations R(a) by a in ``OFF_GRID_ANGLES``; O(2): those, then R(a) h (h as in ``grid_subgroup``:
    the reflections across the axes at a/2 + 90 degrees for O(2)'s diag(-1, 1)).
    """
    _check_approx_group(G)
    if _is_continuous(G):
        rots = []
        for a in OFF_GRID_ANGLES:
            c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
            rots.append(np.array([[c, -s], [s, c]]))
        els = rots + ([r @ _grid_reflection(G) for r in rots] if _has_reflections(G) else [])
        return np.stack([_check_member(G, g) for g in els])
    els = [g for g in G.elements() if _signed_permutation(g) is None]
    return np.stack(els) if els else np.zeros((0, 2, 2))


def _rotation_order_and_axis(G: MatrixGroup) -> tuple[int, float | None]:
    """(n, b): G's rotations are the n multiples of 2 pi / n; b the angle of one reflection axis (or None).

    Continuous G (SO(2), O(2)): n = 4 and b = 0 (or None), the rotations and reflection axes its
    grid subgroup has: ring points at angles 2 pi j / M with 4 | M are permuted by them.
    """
    if _is_continuous(G):
        return 4, (0.0 if _has_reflections(G) else None)
    elems = G.elements()
    dets = np.linalg.det(elems)
    n = int(np.sum(dets > 0))
    refl = elems[dets < 0]
    axis = None if len(refl) == 0 else math.atan2(refl[0][1, 0], refl[0][0, 0]) / 2
    return n, axis


def _band_limit(r: int, R: int) -> int:
    """escnn's default highest angular frequency on ring r of a kernel with outer radius R
    (``ring_frequencies``), before the cap by the ring's number of points."""
    return 2 if r == R else (2 * r if r % 2 else 2 * r - 1)


def _ring_sizes(G: MatrixGroup, kernel_size: int) -> list[int]:
    """Points per ring r = 1..k//2.

    Finite G of rotation order n: the multiple of n nearest the circumference 2 pi r (at least n).
    Continuous G (SO(2), O(2)): only the rotations by 90 degrees (and the axis reflections) permute
    the points, so the continuous kernel sum_p exp(-|x - p|^2 / (2 sigma^2)) u(p) is equivariant only
    as far as the points sample the ring finely: M_r is the multiple of 4 at or above 4 pi r (two
    points per pixel of arc).  Measured on the plane (not the grid), the relative change of that
    kernel under rotations by 7.5..82.5 degrees for one harmonic cos(f t) is 3e-10..7e-7 for (r, f) =
    (1, 2), (2, 2), (2, 3), (3, 2), (3, 6), (4, 2) (with the multiple of 4 nearest 2 pi r, as for finite
    groups: 6e-3..0.1), far below the pixel grid's own error (~0.02 relative, see ``kernel_basis``).
    4 pi r > 2 f_r, so the band limit is never capped.
    """
    R = kernel_size // 2
    if _is_continuous(G):
        return [4 * math.ceil(math.pi * r) for r in range(1, R + 1)]
    n, _ = _rotation_order_and_axis(G)
    return [n * max(1, round(2 * math.pi * r / n)) for r in range(1, R + 1)]


def ring_points(G: MatrixGroup, kernel_size: int) -> np.ndarray:
    """Sample points [N, 2] of approximate kernels, (row, col) offsets: the centre, then per radius
    r = 1..k//2 the M_r points r (cos t, sin t), t = phase + 2 pi j / M_r (j = 0..M_r-1).

    M_r is a multiple of G's rotation order n, so rotations by 2 pi / n permute each ring; the
    phase is 0 for rotation groups and, with reflections, lines the points up with a reflection
    axis b (phase = b mod pi / M_r), so every reflection (axes at b + pi m / n) permutes them too.
    For the built-in ``dihedral(n)`` b = 0.  Checked when a basis is built (``_point_perms``).
    SO(2) and O(2): n = 4, phase 0, so the rotations by 90 degrees and the reflections across the
    axes at multiples of 45 degrees (``grid_subgroup``) permute the points; M_r (a multiple of 4,
    ``_ring_sizes``) is about twice the circumference, so other rotations nearly do.
    """
    _check_kernel_size(kernel_size)
    _check_approx_group(G)
    _, axis = _rotation_order_and_axis(G)
    pts = [np.zeros((1, 2))]
    for r, M in enumerate(_ring_sizes(G, kernel_size), start=1):
        phase = 0.0 if axis is None else axis % (math.pi / M)
        if phase > math.pi / M - 1e-12:  # an axis at -1e-17 is the axis at 0
            phase = 0.0
        t = phase + 2 * math.pi * np.arange(M) / M
        pts.append(r * np.stack([np.cos(t), np.sin(t)], axis=1))
    return np.concatenate(pts)


def _point_perms(G: MatrixGroup, points: np.ndarray, elements=None) -> list[np.ndarray]:
    """Per discrete generator h (or per given element), the index of h p for every point p;
    ValueError when some h does not map the point set to itself (then no element-wise check is
    needed: generators suffice)."""
    out = []
    for h in (G.discrete_generators if elements is None else elements):
        img = points @ np.asarray(h, dtype=np.float64).T
        dist = np.linalg.norm(img[:, None, :] - points[None, :, :], axis=2)
        j = np.argmin(dist, axis=1)
        if dist[np.arange(len(points)), j].max() > 1e-8 or len(set(j.tolist())) != len(points):
            raise ValueError(f"{_describe(np.asarray(h))} in {G.name} does not permute the ring sample points")
        out.append(j)
    return out


def ring_interpolation(G: MatrixGroup, kernel_size: int, sigma: float = RING_SIGMA) -> np.ndarray:
    """P [k*k, N]: kernel value at flat offset d = sum_p P[d, p] * value at ``ring_points`` p.

    P[d, p] = exp(-|d - p|^2 / (2 sigma^2)) for pixels inside the disk |d| <= k//2 + 0.5, zero
    outside (so square kernels have no corner bias).  Any rotation or reflection h that maps the
    pixel grid and the points to themselves maps this disk to itself and keeps distances:
    P[h d, h p] = P[d, p], which makes the sampled kernels exactly equivariant under ``grid_subgroup``.
    """
    k, r = kernel_size, kernel_size // 2
    points = ring_points(G, k)
    d = (np.stack(np.divmod(np.arange(k * k), k), axis=1) - r).astype(np.float64)
    sq = ((d[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
    P = np.exp(-sq / (2 * sigma ** 2))
    P[(d ** 2).sum(axis=1) > (r + 0.5) ** 2] = 0.0
    return P


def ring_frequencies(G: MatrixGroup, kernel_size: int) -> list[int]:
    """Highest angular frequency kept on each ring r = 1..k//2 (the centre keeps frequency 0).

    Without a band limit the point kernels include angular patterns that Gaussians of width
    RING_SIGMA blur away (e.g. 16 points on the unit circle for C16); orthonormalising their faint
    pixel images gives them full weight, and they are aliasing, not equivariant (C16 regular -> regular,
    k = 5: relative error 1.36, no better than a random kernel; 0.02 with this limit).  The limit is
    escnn's default: 2 on the outermost ring, which the disk truncates, else 2r (odd r) or 2r - 1
    (even r); and below M_r / 2, so that the ring's M_r points carry each kept frequency.
    """
    _check_kernel_size(kernel_size)
    _check_approx_group(G)
    R = kernel_size // 2
    return [min(_band_limit(r, R), (M - 1) // 2) for r, M in enumerate(_ring_sizes(G, kernel_size), start=1)]


def _ring_harmonics(G: MatrixGroup, kernel_size: int) -> list[tuple[Rep, np.ndarray]]:
    """The band-limited functions on ``ring_points`` as reps of G: (rep, S [N, rep.size]) with S the
    values at the points, S rho(g) = Perm_points(g) S.  The centre and each ring's constant are
    trivial; u = a cos(f t) + b sin(f t) on ring r is freq(f) acting on (a, b), t = atan2(p_1, p_0).

    Continuous G (SO(2), O(2)): the same functions; they carry trivial + freq(1) + ... + freq(f_r)
    per ring as functions on the circle, (g.u)(p) = u(g^-1 p) for every g (a rotation by a shifts
    t by a, the reflection diag(1, -1) sends t to -t; there is no sin(0 t), so no det part), and
    S rho(g) = Perm_points(g) S holds on the points for the elements that permute them, ``grid_subgroup``.
    """
    points = ring_points(G, kernel_size)
    if _is_continuous(G):
        _point_perms(G, points, grid_subgroup(G))  # the grid's symmetries permute the points (raises otherwise)
    else:
        _point_perms(G, points)  # every generator permutes the points (raises otherwise)
    t = np.arctan2(points[:, 1], points[:, 0])
    radius = np.rint(np.hypot(points[:, 0], points[:, 1])).astype(int)
    one = Trivial(G)
    out = [(one, (radius == 0).astype(np.float64)[:, None])]
    for r, fmax in enumerate(ring_frequencies(G, kernel_size), start=1):
        on = (radius == r).astype(np.float64)
        out.append((one, on[:, None]))
        for f in range(1, fmax + 1):
            out.append((Frequency(G, f), np.stack([on * np.cos(f * t), on * np.sin(f * t)], axis=1)))
    return out


def _orbit_rep(G: MatrixGroup, orbit: list[int], perms: list[np.ndarray]) -> Permutation:
    pos = {j: n for n, j in enumerate(orbit)}
    return Permutation(G, [[pos[int(p[j])] for j in orbit] for p in perms])


def _check_kernel_size(kernel_size) -> None:
    if not isinstance(kernel_size, (int, np.integer)) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer (so the kernel has a centre "
                         f"and padding keeps the grid symmetric), got {kernel_size!r}")


def _blocks_and_starts(G: MatrixGroup, kernel_size: int, rep_in: Rep):
    _check_kernel_size(kernel_size)
    if rep_in.group != G:
        raise ValueError(f"representations of different groups: {G.name} and {rep_in.group.name}")
    blocks, starts, s = rep_in.blocks(), [], 0
    for b in blocks:
        starts.append(s)
        s += b.size
    return blocks, starts


def _kernel_terms(G: MatrixGroup, kernel_size: int, rep_in: Rep):
    """Terms of Perm_offsets (x) rep_in, one per (offset orbit, block of rep_in), and where each
    term's coordinates sit in the flat (offset, input channel) grid: (terms, offset index, channel index).
    """
    blocks, starts = _blocks_and_starts(G, kernel_size, rep_in)
    _check_grid_group(G)
    perms = _offset_perms(G, kernel_size)
    terms, off_idx, ch_idx = [], [], []
    for orbit in _orbits(perms, kernel_size * kernel_size):
        # a fixed offset (the centre) carries the trivial action: its term is the block itself
        orep = _orbit_rep(G, orbit, perms) if len(orbit) > 1 else None
        for b, s in zip(blocks, starts):
            terms.append(b if orep is None else Tensor(orep, b))
            # Tensor coordinate: position in orbit * b.size + channel
            off_idx.extend(np.repeat(orbit, b.size))
            ch_idx.extend(np.tile(np.arange(s, s + b.size), len(orbit)))
    return terms, np.asarray(off_idx), np.asarray(ch_idx)


def _ring_terms(G: MatrixGroup, kernel_size: int, rep_in: Rep):
    """Terms of H (x) rep_in, H the band-limited ring functions (``_ring_harmonics``), one per
    (harmonic, block of rep_in): (terms, harmonics, [(harmonic index, first channel, block size)] per term)."""
    blocks, starts = _blocks_and_starts(G, kernel_size, rep_in)
    _check_approx_group(G)
    harmonics = _ring_harmonics(G, kernel_size)
    terms, where = [], []
    for i, (h, _) in enumerate(harmonics):
        for b, s in zip(blocks, starts):
            # Tensor coordinate: harmonic component * b.size + channel; a trivial h: the block itself
            terms.append(b if isinstance(h, Trivial) else Tensor(h, b))
            where.append((i, s, b.size))
    return terms, harmonics, where


def kernel_rep(G: MatrixGroup, kernel_size: int, rep_in: Rep, approximate: bool = False) -> Rep:
    """The rep Perm_offsets (x) rep_in whose equivariant maps to rep_out are the k x k kernels.

    A direct sum over (offset orbit, block of rep_in): an orbit O of offsets paired with
    a block b gives Tensor(Perm_O, b), the fixed centre gives b itself.  Coordinates are
    ordered term by term (not as (offset, channel)); what it is for is which blocks of
    rep_out some kernel reaches (``eqdsl.reps.matrix_properties.unreachable_blocks``) and how many
    kernels there are, neither of which depends on the order.

    ``approximate=True`` (any group of planar rotations and reflections: Cn, Dn, SO(2), O(2)):
    H (x) rep_in, H the band-limited functions on ``ring_points`` (the centre; per ring its
    constant and freq(f) for f = 1..``ring_frequencies``), as a sum over (harmonic, block of rep_in).
    For SO(2) and O(2), H is exactly the rep carried by these functions on the rings (trivial +
    freq(1) + ... + freq(f_r) per ring; for O(2) no det part, as sin(0 t) = 0).  Its maps
    to rep_out are the approximate kernels one for one: ``kernel_basis(..., approximate=True)``
    has exactly as many elements (the interpolation to pixels loses none; tested).
    """
    if approximate:
        terms, _, _ = _ring_terms(G, kernel_size, rep_in)
    else:
        terms, _, _ = _kernel_terms(G, kernel_size, rep_in)
    return terms[0] if len(terms) == 1 else Sum(*terms)


# Relative singular value below which a direction counts as numerically dependent: of the small
# interpolation matrix P S (an SVD, exact), and of the kernels (through their Gram matrix, which
# resolves singular values down to ~1e-8 of the largest only).
_RANK_TOL = 1e-9
_GRAM_RANK_TOL = 1e-6


def _orthonormal_rows(A: np.ndarray) -> np.ndarray:
    """Orthonormal basis [m, D] of the row space of A [n, D], numerically dependent directions
    dropped; each row's largest entry made positive (a deterministic sign).

    Gram-Schmidt in the order of A's rows, through the n x n Gram matrix (its Cholesky factor, then one
    more Cholesky pass to restore orthonormality to round-off): much cheaper than an SVD of the wide A
    of kernel bases, and the kernel bases here are well conditioned (condition number < 40 up to
    k = 15), so nothing is lost squaring it.  The result depends on A alone: an eigendecomposition of
    the Gram matrix would pick its own vectors inside degenerate eigenspaces (C8's kernels have many),
    which differ between LAPACK builds, and with them a model's parameterization and its numbers.
    The eigenvalues only decide the rank: when some rows are dependent, each row is kept or dropped
    in order by what it adds to the rows kept before it.
    """
    if A.shape[0] == 0:
        return A.copy()
    gram = A @ A.T
    lam = np.linalg.eigvalsh(gram)
    if lam[-1] <= 0:
        return A[:0].copy()
    floor = _GRAM_RANK_TOL ** 2 * lam[-1]
    if lam[0] > floor:  # full rank: the Cholesky factor of the whole Gram matrix
        kept = np.arange(len(A))
        L = np.linalg.cholesky(gram)
    else:  # a pivoted pass in row order: a row is kept when its residual is above the floor
        kept, L = [], np.zeros((len(A), len(A)))
        for i in range(len(A)):
            k = len(kept)
            l = scipy.linalg.solve_triangular(L[:k, :k], gram[kept, i], lower=True) if k else np.zeros(0)
            r = gram[i, i] - l @ l
            if r > floor:
                L[k, :k], L[k, k] = l, np.sqrt(r)
                kept.append(i)
        L = L[:len(kept), :len(kept)]
    V = scipy.linalg.solve_triangular(L, A[kept], lower=True)
    L = np.linalg.cholesky(V @ V.T)  # I + O(eps cond^2)
    V = scipy.linalg.solve_triangular(L, V, lower=True)
    sign = np.sign(V[np.arange(len(V)), np.argmax(np.abs(V), axis=1)])
    return V * sign[:, None]


def kernel_basis(rep_in: Rep, rep_out: Rep, kernel_size: int, approximate: bool = False) -> np.ndarray:
    """Orthonormal basis [n, k, k, out, in] of equivariant kernels: K[a, d_i + r, d_j + r] = K_a(d).

    Solved as equivariant maps Perm_offsets (x) rep_in -> rep_out (``kernel_rep``).  The
    offset permutation rep is the direct sum of its orbits, and each orbit is paired
    with each block of rep_in, so the solver gets small blocks (many identical,
    solved once) instead of one k*k*in x out problem; the coordinates are
    scattered back to (offset, channel) afterwards.  n may be 0.

    ``approximate=True`` (any group of planar rotations and reflections, e.g. C8, D8, C6, SO(2), O(2)):
    the kernels are solved exactly on ``ring_points``, which G permutes, as equivariant maps
    from the band-limited point functions (x) rep_in (``kernel_rep(..., approximate=True)``),
    mapped to pixels by ``ring_interpolation`` and orthonormalised over the flattened kernels
    (numerically dependent ones dropped; none are for these bases).  Exactly equivariant under
    ``grid_subgroup(G)``, approximately under the rest of G.

    SO(2) and O(2) (as escnn's R2Conv): the same construction, solved with the Lie generator (and
    the reflection); only the grid's symmetries permute the points, the rings are sampled densely
    enough (``_ring_sizes``) that the continuous kernel is equivariant to ~1e-7, and what remains is
    the pixel grid's error: ~0.02-0.07 relative under rotations by 15..75 degrees for k = 3..7
    (``approximate_equivariance_error``; an unconstrained kernel scores ~1.0-1.7).
    """
    _check_kernel_size(kernel_size)
    G = rep_in.group
    if rep_out.group != G:
        raise ValueError(f"representations of different groups: {G.name} and {rep_out.group.name}")
    k = kernel_size
    if not approximate:
        terms, off_idx, ch_idx = _kernel_terms(G, k, rep_in)
        rep = terms[0] if len(terms) == 1 else Sum(*terms)
        B = solve(rep, rep_out, allow_empty=True).basis  # [n, out, k*k*in]
        K = np.zeros((B.shape[0], rep_out.size, k * k, rep_in.size))
        K[:, :, off_idx, ch_idx] = B
        return K.reshape(B.shape[0], rep_out.size, k, k, rep_in.size).transpose(0, 2, 3, 1, 4).copy()
    terms, harmonics, where = _ring_terms(G, k, rep_in)
    rep = terms[0] if len(terms) == 1 else Sum(*terms)
    B = solve(rep, rep_out, allow_empty=True).basis  # [n, out, dim H * in], term by term
    n = B.shape[0]
    # the harmonics' values at the points side by side, S [N, dim H]; the coefficients [c, block size]
    # of a term fill rows (its harmonic's) x columns (its block's) of X [n, out, dim H, in]
    S = np.concatenate([Sh for _, Sh in harmonics], axis=1)
    first = np.cumsum([0] + [Sh.shape[1] for _, Sh in harmonics])
    X = np.zeros((n, rep_out.size, S.shape[1], rep_in.size))
    off = 0
    for i, s, size in where:
        c = harmonics[i][1].shape[1]
        X[:, :, first[i]:first[i] + c, s:s + size] = B[:, :, off:off + c * size].reshape(n, rep_out.size, c, size)
        off += c * size
    # the pixel kernels are C X, C = P S [k*k, dim H] = U diag(sv) W^T; U has orthonormal columns, so
    # orthonormalising the small diag(sv) W^T X orthonormalises the kernels (and is much cheaper)
    # (over the pixels of the disk only, so the corners stay exactly zero)
    P = ring_interpolation(G, k)
    disk = np.flatnonzero(P.any(axis=1))
    U, sv, Wt = np.linalg.svd(P[disk] @ S, full_matrices=False)
    keep = sv > _RANK_TOL * sv[0]
    U, Rm = U[:, keep], sv[keep, None] * Wt[keep]
    Y = _orthonormal_rows(np.tensordot(X, Rm, axes=([2], [1])).reshape(n, rep_out.size * rep_in.size * len(Rm)))
    # Y [m, out * in * rank]; n = 0 (no equivariant kernel) gives m = 0
    K = np.zeros((len(Y), rep_out.size, rep_in.size, k * k))
    K[..., disk] = np.tensordot(Y.reshape(len(Y), rep_out.size, rep_in.size, len(Rm)), U, axes=([3], [1]))
    return K.reshape(len(Y), rep_out.size, rep_in.size, k, k).transpose(0, 3, 4, 1, 2).copy()
