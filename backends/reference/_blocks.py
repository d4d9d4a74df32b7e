"""Splitting features [..., irreps.dim] into per-block views [..., mul, 2l+1] and back."""
from __future__ import annotations

import math

import torch


def split_blocks(x: torch.Tensor, irreps) -> list[torch.Tensor]:
    """One [..., mul, ir.dim] view per MulIr block (e3nn layout: copy-major, then m)."""
    lead = x.shape[:-1]
    return [x[..., s].reshape(lead + (b.mul, b.ir.dim)) for s, b in zip(irreps.slices(), irreps)]


def merge_blocks(blocks: list[torch.Tensor], lead, like: torch.Tensor) -> torch.Tensor:
    """Inverse of split_blocks; an empty list gives a [..., 0] tensor."""
    if not blocks:
        return like.new_zeros(tuple(lead) + (0,))
    lead = tuple(lead)  # sizes spelled out: no -1, which zero rows would leave ambiguous
    return torch.cat([b.reshape(lead + (math.prod(b.shape[len(lead):]),)) for b in blocks], dim=-1)


def safe_sqrt(sq: torch.Tensor) -> torch.Tensor:
    """sqrt with value 0 and gradient 0 at 0 (double-where, so higher derivatives stay finite too)."""
    pos = sq > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, sq, torch.ones_like(sq))), torch.zeros_like(sq))


def traced() -> bool:
    """Whether this call is being traced (torch.jit.trace, torch.compile, torch.export, make_fx as
    eqdsl.export traces): the graph then holds no Python control flow on sizes or values (chunk
    counts, which kinds a selector holds), so the layers take their one-piece paths, valid for every
    size."""
    from torch.fx.experimental.proxy_tensor import get_proxy_mode

    return (torch.jit.is_tracing() or torch.compiler.is_compiling() or torch.compiler.is_exporting()
            or get_proxy_mode() is not None)


def channels_of(x: torch.Tensor, ls, channels: int) -> torch.Tensor:
    """[rows, C * d] in irreps layout (for each degree: C copies of 2l+1 components) -> [rows, C, d]."""
    parts, i = [], 0
    for l in ls:
        m = 2 * l + 1
        parts.append(x[:, i:i + channels * m].reshape(x.shape[0], channels, m))
        i += channels * m
    return torch.cat(parts, dim=-1)


def irreps_layout(x: torch.Tensor, ls) -> torch.Tensor:
    """The inverse of channels_of: [rows, C, d] -> [rows, C * d] in irreps layout."""
    parts, i = [], 0
    for l in ls:
        m = 2 * l + 1
        parts.append(x[..., i:i + m].reshape(x.shape[0], -1))
        i += m
    return torch.cat(parts, dim=-1)
