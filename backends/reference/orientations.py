"""Position-orientation space at run time (PONITA, Bekkers et al., 2024): features on a grid of directions.

A value on the grid has one copy per direction o_k, stored copy-major like a value in a frame
(``frames.Copies``): row k * rows + r is row r at direction o_k, so every layer that acts row by row runs
unchanged, graph indices are offset per copy and values from outside the grid are repeated per copy.

Each block of a representation is evaluated at the directions through ``harmonics(l)`` [N, m], whose rows
have unit norm and satisfy mean_k E_k E_k^T = I / m on a uniform grid (the continuum limit): unit-norm real
spherical harmonics Y_l(o) on the sphere (m = 2l + 1; l = 1 is o itself), and on the circle 1 (l = 0) and
o (l = 1).  Hence the readout m / N sum_k E_k y_k inverts the lift E_k . x in that limit.

The grids: a Fibonacci grid on the sphere (quasi-uniform for every N), N equally spaced angles on the
circle.  The weights of every layer are independent of N: ``OrientationGrid.resize`` runs the same model
on a finer grid (eqc check measures the equivariance error that way as the grid grows).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .exact import ExactBuffers
from .frames import Copies
from .mlp import MLP
from .sh import spherical_harmonics


def grid_points(dim: int, n: int) -> np.ndarray:
    """[n, dim] unit vectors: a Fibonacci grid on the sphere (dim 3) or equally spaced angles (dim 2)."""
    if dim == 2:
        theta = 2.0 * math.pi * np.arange(n) / n
        return np.stack([np.cos(theta), np.sin(theta)], axis=1)
    if dim != 3:
        raise ValueError(f"orientation grids live on the circle or the sphere, not in {dim} dimensions")
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = math.pi * (1.0 + math.sqrt(5.0)) * i  # the golden angle between consecutive points
    s = np.sqrt(1.0 - z * z)
    return np.stack([s * np.cos(phi), s * np.sin(phi), z], axis=1)


class Orientations(Copies):
    """The grid of one forward pass: ``points`` [N, dim]."""

    def __init__(self, points: torch.Tensor):
        super().__init__(points.shape[0])
        self.points = points
        self.dim = points.shape[1]

    def harmonics(self, l: int) -> torch.Tensor:
        """[N, m] the degree-l functions at the directions, unit norm per direction."""
        if l == 0:
            return self.points.new_ones(self.count, 1)
        if self.dim == 2:
            if l != 1:
                raise ValueError("on the circle only scalars and the vector have values on the grid")
            return self.points
        y = spherical_harmonics(l, self.points)[:, l * l:(l + 1) * (l + 1)]
        return y / math.sqrt(2 * l + 1)

    def copies(self, y: torch.Tensor) -> torch.Tensor:
        """[N * rows, C] -> [N, rows, C]."""
        return y.reshape(self.count, -1, y.shape[-1])


class OrientationGrid(ExactBuffers):
    """orientations(n = N): the grid of directions, a float64-exact buffer."""

    def __init__(self, dim: int, n: int, where: str = ""):
        super().__init__()
        self.dim, self.where = dim, where
        self.resize(n)

    def resize(self, n: int) -> None:
        """The same layers on a grid of n directions (their weights do not depend on it)."""
        if n < 2:
            raise ValueError(f"an orientation grid needs at least 2 directions, not {n}")
        self.n = n
        self._replace_exact_buffer("points", grid_points(self.dim, n))

    def forward(self) -> Orientations:
        return Orientations(self.points)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n={self.n}"


def _blocks(x: torch.Tensor, grid: Orientations, blocks):
    """(multiplicity, harmonics [N, m], x's columns of the block as [rows, mul, m]) of each block."""
    i = 0
    for mul, l in blocks:
        E = grid.harmonics(l).to(x.dtype)
        m = E.shape[1]
        yield mul, E, x[:, i:i + mul * m].reshape(x.shape[0], mul, m)
        i += mul * m


def to_orientations(x: torch.Tensor, grid: Orientations, blocks) -> torch.Tensor:
    """x [rows, dim] -> [N * rows, sum of multiplicities]: E_l(o_k) . x_u for every irrep copy u."""
    parts = [torch.einsum("km,rum->kru", E, xb) for _, E, xb in _blocks(x, grid, blocks)]
    return torch.cat(parts, dim=-1).reshape(grid.count * x.shape[0], -1)


def pair_invariants(r: torch.Tensor, grid: Orientations) -> torch.Tensor:
    """r [rows, d] -> [N * rows, 2]: (o_k . r, |r - (o_k . r) o_k|).  The orthogonal part's norm is
    sqrt(|r|^2 - (o . r)^2 + eps): smooth, with a finite gradient where r is parallel to a direction."""
    along = torch.einsum("km,rm->kr", grid.harmonics(1).to(r.dtype), r)
    across = torch.sqrt((r.pow(2).sum(-1)[None, :] - along * along).clamp(min=0.0) + torch.finfo(r.dtype).eps)
    return torch.stack([along, across], dim=-1).reshape(-1, 2)


def from_orientations(y: torch.Tensor, grid: Orientations, blocks) -> torch.Tensor:
    """y [N * rows, C] -> [rows, dim of R]: m / N sum_k y_k,u E_l(o_k) for every irrep copy u of R."""
    copies = grid.copies(y)
    parts, c = [], 0
    for mul, l in blocks:
        E = grid.harmonics(l).to(y.dtype)
        m = E.shape[1]
        out = torch.einsum("kru,km->rum", copies[..., c:c + mul], E) * (m / grid.count)
        parts.append(out.reshape(copies.shape[1], mul * m))
        c += mul
    return torch.cat(parts, dim=-1)


class OrientationConv(torch.nn.Module):
    """orientation_conv(h, O): h'_k = 1/N sum_j K(o_k . o_j) h_j, depthwise; K an MLP of (1, t, t^2, t^3) of the
    cosine t with `basis` hidden units and one output per channel (PONITA's fiber kernel)."""

    DEGREE = 3

    def __init__(self, channels: int, basis: int):
        super().__init__()
        self.kernel = MLP([self.DEGREE + 1, basis, channels], act="silu")

    def forward(self, h: torch.Tensor, grid: Orientations) -> torch.Tensor:
        p = grid.points.to(h.dtype)
        t = (p @ p.T).clamp(-1.0, 1.0)
        K = self.kernel(torch.stack([t ** d for d in range(self.DEGREE + 1)], dim=-1))  # [N, N, C]
        out = torch.einsum("kjc,jrc->krc", K, grid.copies(h)) / grid.count
        return out.reshape(h.shape)
