"""sphere_mlp at run time (Facet, 2025): features as functions on the sphere, an MLP at every grid point.

Each channel u of x is f_u(s) = sum_l x_{u,l} . Y_l(s) (component-normalised harmonics).  On a product grid of
N Gauss-Legendre rings times 2N azimuths (``gaunt.product_grid``) the C values at each point go through one MLP
to C' values, which are projected back onto the output degrees with the grid's quadrature weights.  The
projection is exact for band limit 2N - 1; the MLP's output is not band-limited, so the layer is equivariant
only in the limit of the grid (the grid is symmetric under s -> -s, so reflections through the origin are
exact).  No weight depends on N: ``resize`` runs the same layer on another grid.
"""
from __future__ import annotations

import torch

from .exact import ExactBuffers
from ._blocks import channels_of, irreps_layout
from .gaunt import _harmonics, product_grid
from .mlp import MLP


class SphereMLP(ExactBuffers):
    def __init__(self, la, lo, channels: int, out_channels: int, hidden, act: str, n: int):
        super().__init__()
        self.la, self.lo, self.channels = tuple(la), tuple(lo), channels
        self.mlp = MLP([channels, *hidden, out_channels], act=act)
        self.resize(n)

    def resize(self, n: int) -> None:
        """The same layer on a grid of n rings (2 n^2 points)."""
        if n < 2:
            raise ValueError(f"a sphere grid needs at least 2 rings, not {n}")
        self.n = n
        pts, q = product_grid(n, 2 * n)
        self._replace_exact_buffer("y_in", _harmonics(self.la, pts))
        self._replace_exact_buffer("y_out", _harmonics(self.lo, pts) * q[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = channels_of(x, self.la, self.channels) @ self.y_in.to(x.dtype).T  # [rows, C, S]
        mixed = self.mlp(values.transpose(1, 2))                                      # [rows, S, C']
        out = mixed.transpose(1, 2) @ self.y_out.to(x.dtype)                          # [rows, C', do]
        return irreps_layout(out, self.lo).reshape(x.shape[0], -1)

    def extra_repr(self) -> str:
        return f"la={self.la}, lo={self.lo}, n={self.n}"
