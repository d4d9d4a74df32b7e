"""Rotation outputs from equivariant vectors by Gram-Schmidt (Zhou et al., 2019: the continuous 6D
representation of rotations): rows of [d, d] matrices whose columns are the orthonormalised vectors.

In 3D: c1 = a / |a|, c2 = (b - (b.c1) c1) / |...|, c3 = c1 x c2.  In the plane: c1 = a / |a|, c2 = J c1.
Parallel (or vanishing) vectors determine no rotation: forward() raises ValueError on the CPU, as the input
checks do (an assertion on CUDA and in traced graphs).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch._subclasses.fake_tensor import is_fake


def _tolerance(dtype: torch.dtype) -> float:
    """Below this relative length a direction is lost to rounding (the rotation's error is eps / length, so
    at most about 1% here)."""
    return 100.0 * torch.finfo(dtype).eps


def _require(ok: torch.Tensor, message: str, detail) -> None:
    if ok.device.type == "cpu" and not torch.compiler.is_compiling() and not is_fake(ok):
        if not bool(ok.all()):
            raise ValueError(f"{message}; {detail()}")
    else:
        torch._assert_async(ok.all(), message)


def orthonormalize(a: torch.Tensor, b: Optional[torch.Tensor] = None) -> torch.Tensor:
    """a, b [rows, 3] -> [rows, 3, 3] rotations (columns c1, c2, c3); a [rows, 2] -> [rows, 2, 2]."""
    tol = _tolerance(a.dtype)
    scale = a.norm(dim=-1)
    _require(scale > tol * scale.amax().clamp(min=torch.finfo(a.dtype).tiny),
             "orthonormalize: the first vector vanishes for some rows, so it determines no rotation",
             lambda: f"rows {(scale <= tol * scale.amax()).nonzero().flatten()[:5].tolist()}")
    c1 = a / scale.unsqueeze(-1)
    if b is None:
        c2 = torch.stack([-c1[..., 1], c1[..., 0]], dim=-1)  # J c1: turned by 90 degrees
        return torch.stack([c1, c2], dim=-1)
    perp = b - (b * c1).sum(-1, keepdim=True) * c1
    length = perp.norm(dim=-1)
    bad = length <= tol * b.norm(dim=-1)
    _require(~bad, "orthonormalize: the two vectors are parallel for some rows, so they determine no rotation",
             lambda: f"rows {bad.nonzero().flatten()[:5].tolist()}")
    c2 = perp / length.unsqueeze(-1)
    c3 = torch.linalg.cross(c1, c2, dim=-1)
    return torch.stack([c1, c2, c3], dim=-1)
