"""Splitting features [..., irreps.dim] into per-block views [..., mul, 2l+1] and back."""
from __future__ import annotations

import torch


def split_blocks(x: torch.Tensor, irreps) -> list[torch.Tensor]:
    """One [..., mul, ir.dim] view per MulIr block (e3nn layout: copy-major, then m)."""
    lead = x.shape[:-1]
    return [x[..., s].reshape(lead + (b.mul, b.ir.dim)) for s, b in zip(irreps.slices(), irreps)]


def merge_blocks(blocks: list[torch.Tensor], lead, like: torch.Tensor) -> torch.Tensor:
    """Inverse of split_blocks; an empty list gives a [..., 0] tensor."""
    if not blocks:
        return like.new_zeros(tuple(lead) + (0,))
    return torch.cat([b.reshape(tuple(lead) + (-1,)) for b in blocks], dim=-1)


def safe_sqrt(sq: torch.Tensor) -> torch.Tensor:
    """sqrt with value 0 and gradient 0 at 0 (double-where, so higher derivatives stay finite too)."""
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))
