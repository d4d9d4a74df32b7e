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

The continuous groups SO(2) and O(2) work the same way (as escnn's R2Conv): the kernel on
each ring is a band-limited function, which carries trivial + freq(1) + ... + freq(f_r)
(cos/sin pairs; for O(2) there is no sin(0 t), hence no det part); the equivariant maps from
it (x) rep_in to rep_out are solved with the Lie generator (and the reflection) and spread
onto the pixels from M_r points per ring, a multiple of 4 (so the rotations by 90 degrees and
the axis reflections, ``grid_subgroup``, permute them) about twice the circumference (so the
continuous kernel is equivariant under all of G to ~1e-7 and the pixel grid is the only
error).  Other continuous groups are rejected, and SO(2)/O(2) need ``approximate=True``.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from eqdsl.groups.matrix import MatrixGroup
from eqdsl.reps.matrix_reps import Rep
from eqdsl.reps.solve import invariant_basis
from eqdsl.reps.grid import (  # the geometry (torch-free, used by the type checker too)
    RING_SIGMA, _check_approx_group, _check_grid_group, _check_kernel_size, _describe, _signed_permutation,
    OFF_GRID_ANGLES, grid_group_ok, grid_subgroup, kernel_basis, kernel_rep, off_grid_elements, offset_orbits,
    ring_frequencies, ring_interpolation, ring_points,
)

from .exact import ExactBuffers
from .typed import TypedMap

__all__ = ["grid_group_ok", "transform_grid", "offset_orbits", "kernel_rep", "kernel_basis", "SteerableConv2d",
           "avg_pool2d", "max_pool2d", "global_mean", "grid_subgroup", "ring_points", "ring_frequencies",
           "ring_interpolation", "rotate_image", "approximate_equivariance_error", "RING_SIGMA",
           "off_grid_elements", "OFF_GRID_ANGLES"]

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
    for groups that do not map the grid to itself, finite (C3, C6, C8, D8, ...) or continuous
    (SO(2), O(2)): exactly equivariant under ``grid_subgroup(G)``, approximately under the other
    elements.  Without it such groups are rejected.
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
    For SO(2) and O(2) (no finite list of elements) "off_grid" means ``off_grid_elements(G)``: the
    rotations by ``OFF_GRID_ANGLES`` (15, 30, 45, 60, 75 degrees; with the exact rotations by 90
    degrees they reach every multiple of 15 degrees), for O(2) also composed with its reflection, and
    "all" the grid subgroup and those.
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
    _check_approx_group(G)
    if G.is_finite:
        els = [g for g in G.elements() if (elements == "all")
               or ((_signed_permutation(g) is not None) == (elements == "grid"))]
    else:  # SO(2), O(2): the grid's symmetries and a fixed set of other rotations (and reflections)
        els = [*(grid_subgroup(G) if elements != "off_grid" else []),
               *(off_grid_elements(G) if elements != "grid" else [])]
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
