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
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from eqdsl.groups.matrix import MatrixGroup
from eqdsl.reps.general import Permutation, Rep, Sum, Tensor
from eqdsl.reps.solve import invariant_basis, solve

from .typed import ExactBuffers, TypedMap

__all__ = ["grid_group_ok", "transform_grid", "offset_orbits", "kernel_rep", "kernel_basis", "SteerableConv2d",
           "avg_pool2d", "max_pool2d", "global_mean"]

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


def offset_orbits(G: MatrixGroup, kernel_size: int) -> list[list[int]]:
    """Orbits of G on the kernel offsets, as flat offset indices (d_i + r) * k + (d_j + r).

    Each orbit lists its points in breadth-first order from its smallest index,
    applying the discrete generators in order.
    """
    _check_grid_group(G)
    k, r = kernel_size, kernel_size // 2
    gens = [_signed_permutation(h) for h in G.discrete_generators]
    seen = np.zeros(k * k, dtype=bool)
    orbits = []
    for start in range(k * k):
        if seen[start]:
            continue
        orbit, seen[start] = [start], True
        for idx in orbit:  # grows while iterating: breadth-first
            d = np.array(divmod(idx, k)) - r
            for h in gens:
                e = h @ d + r
                j = int(e[0] * k + e[1])
                if not seen[j]:
                    seen[j] = True
                    orbit.append(j)
        orbits.append(orbit)
    return orbits


def _orbit_rep(G: MatrixGroup, orbit: list[int], kernel_size: int) -> Permutation:
    k, r = kernel_size, kernel_size // 2
    pos = {j: n for n, j in enumerate(orbit)}
    perms = []
    for h in G.discrete_generators:
        h = _signed_permutation(h)
        perms.append([pos[int((h @ (np.array(divmod(j, k)) - r) + r) @ [k, 1])] for j in orbit])
    return Permutation(G, perms)


def _check_kernel_size(kernel_size) -> None:
    if not isinstance(kernel_size, (int, np.integer)) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer (so the kernel has a centre "
                         f"and padding keeps the grid symmetric), got {kernel_size!r}")


def _kernel_terms(G: MatrixGroup, kernel_size: int, rep_in: Rep):
    """Terms of Perm_offsets (x) rep_in, one per (offset orbit, block of rep_in), and where each
    term's coordinates sit in the flat (offset, input channel) grid: (terms, offset index, channel index).
    """
    _check_kernel_size(kernel_size)
    if rep_in.group != G:
        raise ValueError(f"representations of different groups: {G.name} and {rep_in.group.name}")
    k = kernel_size
    blocks, starts, s = rep_in.blocks(), [], 0
    for b in blocks:
        starts.append(s)
        s += b.size
    terms, off_idx, ch_idx = [], [], []
    for orbit in offset_orbits(G, k):
        # a fixed offset (the centre) carries the trivial action: its term is the block itself
        orep = _orbit_rep(G, orbit, k) if len(orbit) > 1 else None
        for b, s in zip(blocks, starts):
            terms.append(b if orep is None else Tensor(orep, b))
            # Tensor coordinate: position in orbit * b.size + channel
            off_idx.extend(np.repeat(orbit, b.size))
            ch_idx.extend(np.tile(np.arange(s, s + b.size), len(orbit)))
    return terms, np.asarray(off_idx), np.asarray(ch_idx)


def kernel_rep(G: MatrixGroup, kernel_size: int, rep_in: Rep) -> Rep:
    """The rep Perm_offsets (x) rep_in whose equivariant maps to rep_out are the k x k kernels.

    A direct sum over (offset orbit, block of rep_in): an orbit O of offsets paired with
    a block b gives Tensor(Perm_O, b), the fixed centre gives b itself.  Coordinates are
    ordered term by term (not as (offset, channel)); what it is for is which blocks of
    rep_out some kernel reaches (``eqdsl.reps.facts.unreachable_blocks``) and how many
    kernels there are, neither of which depends on the order.
    """
    terms, _, _ = _kernel_terms(G, kernel_size, rep_in)
    return terms[0] if len(terms) == 1 else Sum(*terms)


def kernel_basis(rep_in: Rep, rep_out: Rep, kernel_size: int) -> np.ndarray:
    """Orthonormal basis [n, k, k, out, in] of equivariant kernels: K[a, d_i + r, d_j + r] = K_a(d).

    Solved as equivariant maps Perm_offsets (x) rep_in -> rep_out (``kernel_rep``).  The
    offset permutation rep is the direct sum of its orbits, and each orbit is paired
    with each block of rep_in, so the solver gets small blocks (many identical,
    solved once) instead of one k*k*in x out problem; the coordinates are
    scattered back to (offset, channel) afterwards.  n may be 0.
    """
    _check_kernel_size(kernel_size)
    G = rep_in.group
    if rep_out.group != G:
        raise ValueError(f"representations of different groups: {G.name} and {rep_out.group.name}")
    k = kernel_size
    terms, off_idx, ch_idx = _kernel_terms(G, k, rep_in)
    rep = terms[0] if len(terms) == 1 else Sum(*terms)
    B = solve(rep, rep_out, allow_empty=True).basis  # [n, out, k*k*in]
    K = np.zeros((B.shape[0], rep_out.size, k * k, rep_in.size))
    K[:, :, off_idx, ch_idx] = B
    return K.reshape(B.shape[0], rep_out.size, k, k, rep_in.size).transpose(0, 2, 3, 1, 4).copy()


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
    """

    def __init__(self, rep_in: Rep, rep_out: Rep, kernel_size: int, bias: bool = False):
        super().__init__()
        _check_kernel_size(kernel_size)
        _check_grid_group(rep_in.group)
        if rep_out.group != rep_in.group:
            raise ValueError(f"representations of different groups: {rep_in.group.name} and "
                             f"{rep_out.group.name}")
        self.rep_in, self.rep_out, self.kernel_size = rep_in, rep_out, int(kernel_size)
        k = self.kernel_size

        def solve_types(types_in, t_out):
            # [n, k, k, out, in] -> [n, out, in, k, k]: the offsets are the map's trailing axes
            return kernel_basis(types_in[0], t_out, k).transpose(0, 3, 4, 1, 2)

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
        y = F.conv2d(x.permute(0, 3, 1, 2), self.kernel(), padding=self.kernel_size // 2)
        y = y.permute(0, 2, 3, 1)
        if self.bias is not None:
            y = y + self.bias @ self.bias_basis
        return y

    def extra_repr(self) -> str:
        return (f"{self.rep_in} -> {self.rep_out} ({self.rep_in.group.name}), kernel_size={self.kernel_size}, "
                f"weights={self.map.num_basis}, bias={self.bias is not None}")


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
