"""Steerable 2D convolutions for finite groups acting on the pixel grid.

Feature fields are channels-last tensors [B, H, W, C] with C = rep.size, for a
rep of a group G whose defining rep is 2 x 2.  Pixel (i, j) of an H x W image
has coordinates p = (i - (H-1)/2, j - (W-1)/2) (row first), and an element g
acts on a field by

    (g.f)[p] = rho(g) f[g^{-1} p].

This maps a square grid to itself exactly only when g is a signed permutation
matrix, i.e. for C1, C2, C4, D1, D2, D4 as ``cyclic``/``dihedral`` build them
(``grid_group_ok``).  Both odd and even sizes work: the centre may lie between
pixels.

A correlation out[p] = sum_d K(d) in[p + d] over offsets d in {-r..r}^2 with
zero padding is equivariant iff K(g d) = rho_out(g) K(d) rho_in(g)^{-1}
(zero padding is compatible because g maps the image, hence its outside, to
itself).  Equivalently M(e_d (x) v) = K(d) v is an equivariant map from
Perm_offsets (x) rho_in to rho_out, which the project's solver finds
(``kernel_basis``).

Groups that do not map the grid to itself (C3, C6, C8, C16, D8, ...) get *approximately*
equivariant kernels when asked for explicitly (``approximate=True``), as in escnn:
the kernel lives on sample points on rings (the centre plus, per radius r = 1..k//2,
M_r points at angles phase + 2 pi j / M_r with M_r a multiple of the rotation order,
``ring_points``), which every element of G permutes.  It is solved exactly there, as an
equivariant map from the band-limited functions on the points (``ring_frequencies``)
(x) rep_in to rep_out, and the point values are spread onto the pixels by isotropic
Gaussians (``ring_interpolation``).  That is sampling a continuous kernel that is
exactly G-equivariant, so the only error is the grid's: the convolution is exactly
equivariant under the elements that map the grid *and* the points to themselves
(``grid_subgroup``: the C4/D4 part of C8/D8, only +-identity for C6) and
approximately under the rest (``approximate_equivariance_error``, measured with the
interpolating action ``rotate_image``).
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from eqdsl.groups.matrix import MatrixGroup
from eqdsl.reps.general import Frequency, Permutation, Rep, Sum, Tensor, Trivial
from eqdsl.reps.solve import invariant_basis, solve

from .typed import ExactBuffers, TypedMap

__all__ = ["grid_group_ok", "transform_grid", "offset_orbits", "kernel_rep", "kernel_basis", "SteerableConv2d",
           "avg_pool2d", "max_pool2d", "global_mean", "grid_subgroup", "ring_points", "ring_frequencies",
           "ring_interpolation", "rotate_image", "approximate_equivariance_error", "RING_SIGMA"]

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


def transform_grid(x: torch.Tensor, g: np.ndarray, rho) -> torch.Tensor:
    """(g.f)[p] = rho f[g^{-1} p] for a field x [B, H, W, C] on a square grid (H == W).

    ``g`` must be a signed 2 x 2 permutation matrix; ``rho`` (C x C, numpy or torch)
    acts on the channel axis.
    """
    if x.dim() != 4:
        raise ValueError(f"expected a field [B, H, W, C], got shape {tuple(x.shape)}")
    H, W = x.shape[1], x.shape[2]
    if H != W:
        raise ValueError(f"the grid symmetries need a square image, got {H} x {W}")
    gi = _signed_permutation(g)
    if gi is None:
        raise ValueError(f"{_describe(np.asarray(g, dtype=np.float64))} do not map the pixel grid to itself")
    # doubled centred coordinates 2p = 2i - (H-1) are integers for odd and even H alike
    idx = np.arange(H)
    P = np.stack(np.meshgrid(2 * idx - (H - 1), 2 * idx - (W - 1), indexing="ij"))  # [2, H, W]
    src = np.einsum("ba,bhw->ahw", gi, P)  # g^{-1} = g^T for a signed permutation
    si = torch.as_tensor((src[0] + H - 1) // 2, device=x.device)
    sj = torch.as_tensor((src[1] + W - 1) // 2, device=x.device)
    moved = x[:, si, sj, :]
    rho = torch.as_tensor(rho, dtype=x.dtype, device=x.device)
    if rho.shape != (x.shape[-1], x.shape[-1]):
        raise ValueError(f"rho must be {x.shape[-1]} x {x.shape[-1]}, got {tuple(rho.shape)}")
    return torch.einsum("bhwc,dc->bhwd", moved, rho)


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


def _approx_group_reason(G: MatrixGroup) -> str | None:
    """None when approximate (ring-sampled) kernels support G, else a readable reason."""
    if not isinstance(G, MatrixGroup):
        return f"expected a matrix group, got {type(G).__name__}"
    if G.dim != 2:
        return (f"{G.name} acts on R^{G.dim}, but image convolutions need a finite group of the plane "
                "(2 x 2 matrices) such as Cn or Dn")
    if G.lie_generators:
        return (f"{G.name} is continuous: continuous groups such as SO(2)/O(2) are not supported on images, "
                "not even approximately; use a finite group Cn or Dn (e.g. C8 or D8) with approximate=True")
    for h in G.discrete_generators:
        if not np.allclose(h @ h.T, np.eye(2), atol=1e-9):
            return (f"{_describe(h)} in {G.name} is not orthogonal; approximate steerable convolutions need "
                    "rotations and reflections of the plane")
    return None


def _check_approx_group(G: MatrixGroup) -> None:
    reason = _approx_group_reason(G)
    if reason is not None:
        raise ValueError(reason)


def grid_subgroup(G: MatrixGroup) -> np.ndarray:
    """The elements of finite G that map the pixel grid to itself (signed permutation matrices),
    [m, 2, 2] float64 with exact integer entries, identity first, then in ``G.elements()`` order.

    Approximate (ring-sampled) convolutions are exactly equivariant under these.
    """
    _check_approx_group(G)
    snapped = [_signed_permutation(g) for g in G.elements()]
    return np.stack([s for s in snapped if s is not None]).astype(np.float64)


def _rotation_order_and_axis(G: MatrixGroup) -> tuple[int, float | None]:
    """(n, b): G's rotations are the n multiples of 2 pi / n; b the angle of one reflection axis (or None)."""
    elems = G.elements()
    dets = np.linalg.det(elems)
    n = int(np.sum(dets > 0))
    refl = elems[dets < 0]
    axis = None if len(refl) == 0 else math.atan2(refl[0][1, 0], refl[0][0, 0]) / 2
    return n, axis


def _ring_sizes(n: int, kernel_size: int) -> list[int]:
    """Points per ring r = 1..k//2: the multiple of n nearest the circumference 2 pi r (at least n)."""
    return [n * max(1, round(2 * math.pi * r / n)) for r in range(1, kernel_size // 2 + 1)]


def ring_points(G: MatrixGroup, kernel_size: int) -> np.ndarray:
    """Sample points [N, 2] of approximate kernels, (row, col) offsets: the centre, then per radius
    r = 1..k//2 the M_r points r (cos t, sin t), t = phase + 2 pi j / M_r (j = 0..M_r-1).

    M_r is a multiple of G's rotation order n, so rotations by 2 pi / n permute each ring; the
    phase is 0 for rotation groups and, with reflections, lines the points up with a reflection
    axis b (phase = b mod pi / M_r), so every reflection (axes at b + pi m / n) permutes them too.
    For the built-in ``dihedral(n)`` b = 0.  Checked when a basis is built (``_point_perms``).
    """
    _check_kernel_size(kernel_size)
    _check_approx_group(G)
    n, axis = _rotation_order_and_axis(G)
    pts = [np.zeros((1, 2))]
    for r, M in enumerate(_ring_sizes(n, kernel_size), start=1):
        phase = 0.0 if axis is None else axis % (math.pi / M)
        if phase > math.pi / M - 1e-12:  # an axis at -1e-17 is the axis at 0
            phase = 0.0
        t = phase + 2 * math.pi * np.arange(M) / M
        pts.append(r * np.stack([np.cos(t), np.sin(t)], axis=1))
    return np.concatenate(pts)


def _point_perms(G: MatrixGroup, points: np.ndarray) -> list[np.ndarray]:
    """Per discrete generator h, the index of h p for every point p; ValueError when some h does
    not map the point set to itself (then no element-wise check is needed: generators suffice)."""
    out = []
    for h in G.discrete_generators:
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
    n, _ = _rotation_order_and_axis(G)
    R = kernel_size // 2
    out = []
    for r, M in enumerate(_ring_sizes(n, kernel_size), start=1):
        f = 2 if r == R else (2 * r if r % 2 else 2 * r - 1)
        out.append(min(f, (M - 1) // 2))
    return out


def _ring_harmonics(G: MatrixGroup, kernel_size: int) -> list[tuple[Rep, np.ndarray]]:
    """The band-limited functions on ``ring_points`` as reps of G: (rep, S [N, rep.size]) with S the
    values at the points, S rho(g) = Perm_points(g) S.  The centre and each ring's constant are
    trivial; u = a cos(f t) + b sin(f t) on ring r is freq(f) acting on (a, b), t = atan2(p_1, p_0).
    """
    points = ring_points(G, kernel_size)
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
    rep_out some kernel reaches (``eqdsl.reps.facts.unreachable_blocks``) and how many
    kernels there are, neither of which depends on the order.

    ``approximate=True`` (any finite group of planar rotations and reflections): H (x) rep_in,
    H the band-limited functions on ``ring_points`` (the centre; per ring its constant and
    freq(f) for f = 1..``ring_frequencies``), as a sum over (harmonic, block of rep_in).  Its maps
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

    Through the n x n Gram matrix (eigh, then one Cholesky pass to restore orthonormality to
    round-off), much cheaper than an SVD of the wide A of kernel bases; the kernel bases here
    are well conditioned (condition number < 40 up to k = 15), so nothing is lost squaring it.
    """
    if A.shape[0] == 0:
        return A.copy()
    lam, W = np.linalg.eigh(A @ A.T)
    lam, W = lam[::-1], W[:, ::-1]  # descending
    if lam[0] <= 0:
        return A[:0].copy()
    keep = lam > _GRAM_RANK_TOL ** 2 * lam[0]
    V = (W[:, keep] / np.sqrt(lam[keep])).T @ A
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

    ``approximate=True`` (any finite group of planar rotations and reflections, e.g. C8, D8, C6):
    the kernels are solved exactly on ``ring_points``, which G permutes, as equivariant maps
    from the band-limited point functions (x) rep_in (``kernel_rep(..., approximate=True)``),
    mapped to pixels by ``ring_interpolation`` and orthonormalised over the flattened kernels
    (numerically dependent ones dropped; none are for these bases).  Exactly equivariant under
    ``grid_subgroup(G)``, approximately under the rest of G.
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
        X[:, :, first[i]:first[i] + c, s:s + size] = B[:, :, off:off + c * size].reshape(n, -1, c, size)
        off += c * size
    # the pixel kernels are C X, C = P S [k*k, dim H] = U diag(sv) W^T; U has orthonormal columns, so
    # orthonormalising the small diag(sv) W^T X orthonormalises the kernels (and is much cheaper)
    # (over the pixels of the disk only, so the corners stay exactly zero)
    P = ring_interpolation(G, k)
    disk = np.flatnonzero(P.any(axis=1))
    U, sv, Wt = np.linalg.svd(P[disk] @ S, full_matrices=False)
    keep = sv > _RANK_TOL * sv[0]
    U, Rm = U[:, keep], sv[keep, None] * Wt[keep]
    Y = _orthonormal_rows(np.tensordot(X, Rm, axes=([2], [1])).reshape(n, -1))  # [m, out * in * rank]
    K = np.zeros((len(Y), rep_out.size, rep_in.size, k * k))
    K[..., disk] = np.tensordot(Y.reshape(len(Y), rep_out.size, rep_in.size, -1), U, axes=([3], [1]))
    return K.reshape(len(Y), rep_out.size, rep_in.size, k, k).transpose(0, 3, 4, 1, 2).copy()


class SteerableConv2d(ExactBuffers):
    """Equivariant "same" correlation of channels-last fields: [B, H, W, in] -> [B, H, W, out].

    The kernel is a ``TypedMap`` (``map``): rep_in and rep_out are grouped into block
    types with multiplicities, and per pair of types (t_in, t_out) one kernel basis
    [n, t_out, t_in, k, k] is solved (``kernel_basis``) and weighted by independent
    weights [m_out, m_in, n] (``map.weights``), so wide layers never hold a dense basis
    of the whole kernel.  ``kernel()`` assembles it in conv2d layout [out, in, k, k].
    ``bias`` (optional) [m] over an orthonormal basis ``bias_basis`` [m, out] of the
    invariant vectors of rep_out, initialised to zero.  Bases are float64-exact after
    ``.double()`` (see ``ExactBuffers``).

    ``approximate=True`` opts into ring-sampled kernels (``kernel_basis(..., approximate=True)``)
    for finite groups that do not map the grid to itself (C3, C6, C8, D8, ...): exactly
    equivariant under ``grid_subgroup(G)``, approximately under the other elements.  Without
    it such groups are rejected.
    """

    def __init__(self, rep_in: Rep, rep_out: Rep, kernel_size: int, bias: bool = False,
                 approximate: bool = False):
        super().__init__()
        _check_kernel_size(kernel_size)
        if approximate:
            _check_approx_group(rep_in.group)
        else:
            _check_grid_group(rep_in.group)
        if rep_out.group != rep_in.group:
            raise ValueError(f"representations of different groups: {rep_in.group.name} and "
                             f"{rep_out.group.name}")
        self.rep_in, self.rep_out, self.kernel_size = rep_in, rep_out, int(kernel_size)
        self.approximate = bool(approximate)
        k = self.kernel_size

        def solve_types(types_in, t_out):
            # [n, k, k, out, in] -> [n, out, in, k, k]: the offsets are the map's trailing axes
            return kernel_basis(types_in[0], t_out, k, approximate=self.approximate).transpose(0, 3, 4, 1, 2)

        # TypedMap's initialisation gives unit output variance on average for unit-variance
        # inputs (away from the border): each basis is orthonormal over (out, in, offsets).
        self.map = TypedMap([rep_in], rep_out, solve_types, extra=(k, k))
        if self.map.num_pieces == 0:
            raise ValueError(f"no nonzero {rep_in.group.name}-equivariant {k}x{k} kernel "
                             f"maps `{rep_in}` to `{rep_out}`")
        if bias:
            inv = invariant_basis(rep_out, allow_empty=True)
            if inv.shape[0] == 0:
                raise ValueError(f"`{rep_out}` has no {rep_in.group.name}-invariant vectors, "
                                 "so an equivariant bias would be zero; use bias=False")
            self._exact_buffer("bias_basis", inv)
            self.bias = torch.nn.Parameter(torch.zeros(inv.shape[0], dtype=torch.get_default_dtype()))
        else:
            self.register_buffer("bias_basis", None)
            self.register_parameter("bias", None)

    def kernel(self) -> torch.Tensor:
        """The current kernel in conv2d layout [out, in, k, k]."""
        return self.map.dense()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] != self.rep_in.size:
            raise ValueError(f"expected a field [B, H, W, {self.rep_in.size}], got shape {tuple(x.shape)}")
        # conv2d is a correlation: out[p] = sum_d w[:, :, d + r] in[p + d], our kernel index exactly
        # channels in the kernel's type-sorted order (cheaper than permuting the kernel itself)
        y = F.conv2d(self.map.sort(x, 1).permute(0, 3, 1, 2), self.map.dense_sorted(), padding=self.kernel_size // 2)
        y = self.map.unsort(y.permute(0, 2, 3, 1))
        if self.bias is not None:
            y = y + self.bias @ self.bias_basis
        return y

    def extra_repr(self) -> str:
        return (f"{self.rep_in} -> {self.rep_out} ({self.rep_in.group.name}), kernel_size={self.kernel_size}, "
                f"weights={self.map.num_basis}, bias={self.bias is not None}"
                + (", approximate=True" if self.approximate else ""))


def _pool_view(x: torch.Tensor, k: int) -> torch.Tensor:
    if x.dim() != 4:
        raise ValueError(f"expected a field [B, H, W, C], got shape {tuple(x.shape)}")
    B, H, W, C = x.shape
    if k < 1 or H % k or W % k:
        # otherwise the windows would not tile the grid symmetrically about its centre
        raise ValueError(f"pooling by {k} needs H and W divisible by {k} (so windows map to windows "
                         f"under the grid symmetries), got {H} x {W}")
    return x.reshape(B, H // k, k, W // k, k, C)


def avg_pool2d(x: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over k x k windows, stride k, channels-last.  Equivariant for any rep (it is linear)."""
    return _pool_view(x, k).mean(dim=(2, 4))


def max_pool2d(x: torch.Tensor, k: int) -> torch.Tensor:
    """Channelwise max over k x k windows, stride k, channels-last.

    Equivariant only when rho(g) permutes channels (trivial, regular and
    permutation reps); the compiler checks that, not this function.
    """
    return _pool_view(x, k).amax(dim=(2, 4))


def global_mean(x: torch.Tensor) -> torch.Tensor:
    """[B, H, W, C] -> [B, C]: mean over pixels (invariant to the grid action's pixel part)."""
    return x.mean(dim=(1, 2))


# ------------------------------------------------------------------ the action of any planar element
def rotate_image(x: torch.Tensor, g, rho) -> torch.Tensor:
    """(g.f)[p] = rho f[g^{-1} p] for a field x [B, H, W, C] and any invertible 2 x 2 g (rotations,
    reflections), by bilinear interpolation (``grid_sample``), zero outside the image.

    Same pixel coordinates as ``transform_grid``: p = (i - (H-1)/2, j - (W-1)/2).  A g that is
    numerically a signed permutation is snapped to it, so the sampling positions are exactly
    pixel centres and the result agrees with ``transform_grid`` to round-off.  Differentiable in x.
    """
    if x.dim() != 4:
        raise ValueError(f"expected a field [B, H, W, C], got shape {tuple(x.shape)}")
    B, H, W, C = x.shape
    g = np.asarray(g, dtype=np.float64)
    if g.shape != (2, 2):
        raise ValueError(f"g must be a 2 x 2 matrix, got shape {g.shape}")
    snapped = _signed_permutation(g)
    if snapped is not None:
        g = snapped.astype(np.float64)
    ginv = torch.as_tensor(np.linalg.inv(g), dtype=x.dtype, device=x.device)
    rho = torch.as_tensor(rho, dtype=x.dtype, device=x.device)
    if rho.shape != (C, C):
        raise ValueError(f"rho must be {C} x {C}, got {tuple(rho.shape)}")
    ii = torch.arange(H, dtype=x.dtype, device=x.device) - (H - 1) / 2
    jj = torch.arange(W, dtype=x.dtype, device=x.device) - (W - 1) / 2
    p = torch.stack(torch.meshgrid(ii, jj, indexing="ij"), dim=-1)  # [H, W, 2]
    q = p @ ginv.T                                                  # source points g^-1 p
    row, col = q[..., 0] + (H - 1) / 2, q[..., 1] + (W - 1) / 2
    # align_corners=False: pixel index u sits at the normalised coordinate (2u + 1) / size - 1
    grid = torch.stack([(2 * col + 1) / W - 1, (2 * row + 1) / H - 1], dim=-1)
    moved = F.grid_sample(x.permute(0, 3, 1, 2), grid.expand(B, H, W, 2), mode="bilinear",
                          padding_mode="zeros", align_corners=False).permute(0, 2, 3, 1)
    return torch.einsum("bhwc,dc->bhwd", moved, rho)


def _smooth_fields(rng: np.random.Generator, batch: int, size: int, channels: int, max_freq: int) -> np.ndarray:
    """Random sums of plane waves cos(2 pi (a p_0 + b p_1) / size + phase), |a|, |b| <= max_freq."""
    modes = np.array([(a, b) for a in range(max_freq + 1) for b in range(-max_freq, max_freq + 1)
                      if a > 0 or b >= 0], dtype=np.float64)
    c = np.arange(size) - (size - 1) / 2
    p = np.stack(np.meshgrid(c, c, indexing="ij"), axis=-1)           # [H, W, 2]
    arg = 2 * np.pi * (p @ modes.T) / size                             # [H, W, m]
    amp = rng.normal(size=(batch, channels, len(modes))) / math.sqrt(len(modes))
    phase = rng.uniform(0, 2 * np.pi, size=amp.shape)
    return (np.einsum("hwm,bcm->bhwc", np.cos(arg), amp * np.cos(phase))
            - np.einsum("hwm,bcm->bhwc", np.sin(arg), amp * np.sin(phase)))


def approximate_equivariance_error(conv_or_fn, G: MatrixGroup, rep_in: Rep, rep_out: Rep, size: int = 33,
                                   rng: np.random.Generator | int | None = None, *, kernel_size: int | None = None,
                                   elements: str = "off_grid", batch: int = 2, max_freq: int = 3) -> float:
    """max over g of |f(g.x) - g.f(x)| / |f(x)| (2-norms over a central disk), both actions by ``rotate_image``.

    ``elements``: "off_grid" (default) the elements of G not in ``grid_subgroup(G)`` (0.0 when there
    are none), "grid" those in it (where ring-sampled convolutions are exact), "all" every element.
    x: ``batch`` smooth random fields (plane waves up to ``max_freq`` periods across the image, so the
    image's own interpolation error stays small) times a disk mask of radius R = size/2 - k whose last
    k pixels taper smoothly to zero (so g.x has no jagged edge and never meets the image border or
    the convolution's zero padding); compared inside the disk of radius R - k//2 - 1, where both
    sides are free of the mask edge's interpolation.  k is ``conv_or_fn.kernel_size`` unless given.
    Runs in the dtype of the module's parameters (float64 for plain functions).
    """
    k = kernel_size if kernel_size is not None else getattr(conv_or_fn, "kernel_size", None)
    if k is None:
        raise ValueError("pass kernel_size= for a function without a kernel_size attribute")
    if elements not in ("off_grid", "grid", "all"):
        raise ValueError(f"elements must be 'off_grid', 'grid' or 'all', got {elements!r}")
    radius = size / 2 - k
    compare = radius - k // 2 - 1
    if compare < 2:
        raise ValueError(f"size {size} is too small for a {k} x {k} kernel (the compared disk would be empty)")
    rng = np.random.default_rng(0 if rng is None else rng)
    els = [g for g in G.elements() if (elements == "all")
           or ((_signed_permutation(g) is not None) == (elements == "grid"))]
    if not els:
        return 0.0
    dtype = torch.float64
    if isinstance(conv_or_fn, torch.nn.Module):
        dtype = next((p.dtype for p in conv_or_fn.parameters()), torch.float64)
    c = np.arange(size) - (size - 1) / 2
    rad = np.hypot(*np.meshgrid(c, c, indexing="ij"))
    taper = np.clip((rad - (radius - k)) / k, 0.0, 1.0)
    mask = np.where(rad < radius, 0.5 * (1 + np.cos(np.pi * taper)), 0.0)
    x = torch.as_tensor(_smooth_fields(rng, batch, size, rep_in.size, max_freq) * mask[None, :, :, None],
                        dtype=dtype)
    inside = torch.as_tensor(rad <= compare, dtype=dtype)[None, :, :, None]
    with torch.no_grad():
        y = conv_or_fn(x)
        ref = float((y * inside).norm())
        err = 0.0
        for g in els:
            lhs = conv_or_fn(rotate_image(x, g, rep_in.rho(g)))
            rhs = rotate_image(y, g, rep_out.rho(g))
            err = max(err, float(((lhs - rhs) * inside).norm()))
    return err / max(ref, 1e-300)
