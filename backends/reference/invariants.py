"""Per-copy invariants of irreps features: norms and inner products."""
from __future__ import annotations

import torch

from ._blocks import safe_sqrt, split_blocks


def _per_copy(x: torch.Tensor, y: torch.Tensor, irreps) -> torch.Tensor:
    outs = [(a * b).sum(-1) for a, b in zip(split_blocks(x, irreps), split_blocks(y, irreps))]
    return torch.cat(outs, dim=-1) if outs else x.new_zeros(x.shape[:-1] + (0,))


def dot(x: torch.Tensor, y: torch.Tensor, irreps) -> torch.Tensor:
    """sum_m x[c, m] y[c, m] for every irrep copy c: [..., irreps.dim] x2 -> [..., num_irreps] (no 1/sqrt(2l+1))."""
    return _per_copy(x, y, irreps)


def norm(x: torch.Tensor, irreps) -> torch.Tensor:
    """Euclidean norm of every irrep copy, [..., num_irreps]; value and gradient 0 at x = 0."""
    return safe_sqrt(_per_copy(x, x, irreps))

