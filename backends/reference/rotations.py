"""Rotation outputs from equivariant vectors by Gram-Schmidt (Zhou et al., 2019: the continuous 6D
representation of rotations, and its SO(n) form): rows of [n, n] matrices whose columns are n - 1
orthonormalised vectors and, last, their generalised cross product (the cofactors of the first n - 1
columns: in 3D c1 x c2, in the plane c1 turned by 90 degrees), so that every matrix has determinant 1.

Parallel (or vanishing) vectors determine no rotation: forward() raises ValueError on the CPU, as the input
checks do (an assertion on CUDA and in traced graphs).
"""
from __future__ import annotations

from typing import Sequence

import torch

from .inputs import require


def _tolerance(dtype: torch.dtype) -> float:
    """Below this relative length a direction is lost to rounding (the rotation's error is eps / length, so
    at most about 1% here)."""
    return 100.0 * torch.finfo(dtype).eps


def _last_column(columns: torch.Tensor) -> torch.Tensor:
    """The generalised cross product of n - 1 orthonormal columns [rows, n, n - 1]: the unit vector completing
    them to determinant +1 (entry i: (-1)^(n-1+i) times the minor without row i)."""
    n = columns.shape[-2]
    if n == 2:
        return torch.stack([-columns[..., 1, 0], columns[..., 0, 0]], dim=-1)
    if n == 3:
        return torch.linalg.cross(columns[..., 0], columns[..., 1], dim=-1)
    rows = [torch.linalg.det(torch.cat([columns[..., :i, :], columns[..., i + 1:, :]], dim=-2)) * (-1) ** (n - 1 + i)
            for i in range(n)]
    return torch.stack(rows, dim=-1)


def orthonormalize(vectors: Sequence[torch.Tensor]) -> torch.Tensor:
    """n - 1 vectors [rows, n] -> [rows, n, n] rotations."""
    tol = _tolerance(vectors[0].dtype)
    columns = []
    for k, v in enumerate(vectors):
        perp = v
        for c in columns:
            perp = perp - (perp * c).sum(-1, keepdim=True) * c
        length, size = perp.norm(dim=-1), v.norm(dim=-1)
        if k == 0:
            reference = size.amax().clamp(min=torch.finfo(v.dtype).tiny)
            bad = length <= tol * reference
            what = "the first vector vanishes"
        else:
            bad = length <= tol * size
            what = f"vector {k + 1} is parallel to (a combination of) the ones before it"
        require((~bad).all(), f"orthonormalize: {what} for some rows, so they determine no rotation",
                 lambda bad=bad: f"rows {bad.nonzero().flatten()[:5].tolist()}")
        columns.append(perp / length.unsqueeze(-1))
    first = torch.stack(columns, dim=-1)  # [rows, n, n - 1]
    return torch.cat([first, _last_column(first).unsqueeze(-1)], dim=-1)
