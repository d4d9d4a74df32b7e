"""Message-passing primitives on flat graphs: index gather, segment reductions, graph pooling.

Indices are int64 tensors; ``dim_size`` is a Python int, so every output
shape is static (no .item(), no bincount) and everything traces under
torch.compile(fullgraph=True).
"""
from __future__ import annotations

import torch

REDUCTIONS = ("sum", "mean", "max")


def gather(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x [N, ...] -> x[index] [E, ...]."""
    return x.index_select(0, index)


def scatter(x: torch.Tensor, index: torch.Tensor, dim_size: int, reduce: str = "sum") -> torch.Tensor:
    """Reduce rows of x [E, ...] into dim_size segments by index [E] -> [dim_size, ...].

    Empty segments give 0 for every reduction (for max too, not -inf).  max's
    gradient goes to the arg-max rows (split evenly between exact ties).
    """
    shape = (dim_size,) + tuple(x.shape[1:])
    if reduce == "sum":
        return x.new_zeros(shape).index_add(0, index, x)
    if reduce == "mean":
        total = x.new_zeros(shape).index_add(0, index, x)
        count = x.new_zeros(dim_size).index_add(0, index, x.new_ones(index.shape[0]))
        return total / count.clamp(min=1).view((dim_size,) + (1,) * (x.dim() - 1))
    if reduce == "max":
        idx = index.view((-1,) + (1,) * (x.dim() - 1)).expand_as(x)
        # include_self=False: the zeros only show through where a segment is empty
        return x.new_zeros(shape).scatter_reduce(0, idx, x, reduce="amax", include_self=False)
    raise ValueError(f"unknown reduction `{reduce}` (use one of {', '.join(REDUCTIONS)})")


def pool(x: torch.Tensor, batch: torch.Tensor, num_graphs: int, reduce: str = "sum") -> torch.Tensor:
    """Per-graph reduction of node rows: x [N, ...], batch [N] graph ids -> [num_graphs, ...]."""
    return scatter(x, batch, num_graphs, reduce)
