"""The unconstrained paths of layers declared `approximate = true` (linear, tensor_product): added to the
equivariant layer, zero at initialisation, so a model starts exactly equivariant and training decides how
far it leaves the symmetry (pulled back by ``equivariance_penalty``, eqdsl/soft.py)."""
from __future__ import annotations

from typing import Optional

import torch


class WithResidual(torch.nn.Module):
    """y = equivariant(x) + W x, W an unconstrained [out, in] matrix, zero at initialisation.  `equivariant`
    is None where no equivariant map reaches the output: W alone, then initialised like a linear layer
    (normal, variance 1 / dim_in), or the output would start at zero."""

    def __init__(self, equivariant: Optional[torch.nn.Module], dim_in: int, dim_out: int):
        super().__init__()
        self.equivariant = equivariant
        start = torch.zeros(dim_out, dim_in) if equivariant is not None else torch.randn(dim_out, dim_in) / dim_in ** 0.5
        self.free = torch.nn.Parameter(start)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        free = x @ self.free.T
        return free if self.equivariant is None else self.equivariant(x) + free


class FreeBilinear(torch.nn.Module):
    """z_k = sum_ij W_kij a_i b_j, an unconstrained bilinear map (zero at initialisation), scaled like a
    normalised tensor product: 1 / sqrt(dim_a dim_b)."""

    def __init__(self, dim_a: int, dim_b: int, dim_out: int):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(dim_out, dim_a, dim_b))
        self.scale = (dim_a * dim_b) ** -0.5

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.einsum("zi,zj,kij->zk", a, b, self.weight) * self.scale
