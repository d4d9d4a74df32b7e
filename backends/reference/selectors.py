"""Selectors of per-element weights (``by = s``): recognising a constant one-hot s, and the row
order that groups rows of one kind together."""
from __future__ import annotations

from typing import Optional

import torch


def one_hot_kinds(selector: torch.Tensor) -> Optional[torch.Tensor]:
    """The column of the 1 in each row when the selector [B, K] is a constant one-hot (a species),
    else None: any other invariant selector, or one that needs its own gradient, takes the general
    path of the layer."""
    if selector.requires_grad or selector.shape[0] == 0:
        return None
    kinds = selector.argmax(dim=1)
    one_hot = torch.zeros_like(selector).scatter_(1, kinds.unsqueeze(1), 1)
    return kinds if torch.equal(one_hot, selector) else None


class KindOrder:
    """Rows sorted by kind: ``rows`` (sorted row -> original row), ``kinds``/``counts`` of the kinds
    present, in column order (``all_counts`` for every kind), and ``restore(y)`` putting results back
    in the callers' order."""

    def __init__(self, kinds: torch.Tensor, columns: int):
        self.rows = torch.argsort(kinds, stable=True)
        counts = torch.bincount(kinds, minlength=columns).tolist()
        self.all_counts = counts  # rows of every kind, in column order (zeros included)
        self.kinds = [k for k, n in enumerate(counts) if n]
        self.counts = [counts[k] for k in self.kinds]

    def restore(self, y: torch.Tensor, dim: int = 0) -> torch.Tensor:
        return y.index_select(dim, torch.argsort(self.rows))
