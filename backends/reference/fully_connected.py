"""Fully connected ("uvw") tensor products with shared weights as two matrix products per chunk of rows.

When every path is uvw with shared weights, x1 has the same U channels in every block and x2 one copy
of each irrep, then for every path p (x1 block a_p into output block o) and row z

    t_p[z, k, u] = sum_i sum_j pw_p C_p[i, j, k] x2[z, j] a_p[z, i, u]  =  M[z, (p, k), i] @ A[z, i, u]
    out_o[z, w, k] = sum_{p into o} sum_u t_p[z, k, u] W_p[u, w]

so one ``bmm`` of M (x2 times a constant matrix, rows for every (path, k)) with x1 channel-innermost
gives every t_p, and one matrix product per output block, of the t_p of its paths side by side with
their weights stacked, applies the weights: a few large products instead of a chain of small ones per
path.  M's columns are all of x1's components, zero outside a path's own block.  Rows go in chunks
(``channelwise.ChunkedPlan``); ``plan`` says whether a descriptor has this form.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from eqdsl.reps.so3 import wigner_3j
from eqdsl.reps.tp import TensorProductDescriptor

from .channelwise import ChunkedPlan


class FullyConnectedPlan(ChunkedPlan):
    """Constants of the evaluation; ``g[0]`` ([d2, K * d1], float64) becomes an exact buffer of the owning
    module."""

    def __init__(self, desc: TensorProductDescriptor, channels: int):
        self.desc, self.channels = desc, channels
        self.slices1 = desc.irreps_in1.slices()
        self.weight_slices = desc.weight_slices()
        starts = np.cumsum([0] + [b.ir.dim for b in desc.irreps_in1])  # each x1 block's first component in A
        d1 = int(starts[-1])
        # rows of M: per reached output block o, per component k, per path into o: (o, paths, first row)
        self.outputs: list[tuple[int, list[int], int]] = []
        rows = 0
        for o, c in enumerate(desc.irreps_out):
            into = [i for i, p in enumerate(desc.paths) if p.i_out == o]
            if into:
                self.outputs.append((o, into, rows))
                rows += c.ir.dim * len(into)
        g = np.zeros((desc.irreps_in2.dim, rows, d1))
        slices2 = desc.irreps_in2.slices()
        for o, into, first in self.outputs:
            for t, i in enumerate(into):
                p = desc.paths[i]
                a, b, c = desc.irreps_in1[p.i_in1], desc.irreps_in2[p.i_in2], desc.irreps_out[o]
                cg = np.asarray(wigner_3j(a.ir.l, b.ir.l, c.ir.l), dtype=np.float64)  # [i, j, k]
                for k in range(c.ir.dim):
                    g[slices2[p.i_in2], first + k * len(into) + t, starts[p.i_in1]:starts[p.i_in1 + 1]] += \
                        p.path_weight * cg[:, :, k].T
        self.rows, self.d1 = rows, d1
        self.g = {0: g.reshape(desc.irreps_in2.dim, -1)}
        self.row_entries = rows * max(channels, d1)  # M or the products t, per row

    def _channel_inner(self, x1: torch.Tensor) -> dict:
        """x1 as A [N, d1, U]: every block's components, channel-innermost."""
        n, u = x1.shape[0], self.channels
        blocks = [x1[:, s].view(n, u, b.ir.dim).transpose(1, 2) for s, b in zip(self.slices1, self.desc.irreps_in1)]
        return {0: blocks[0].contiguous() if len(blocks) == 1 else torch.cat(blocks, dim=1)}

    def _weights(self, w: torch.Tensor) -> dict:
        """Per output block, its paths' [U, W_o] weights stacked: [paths * U, W_o] (shared by every row)."""
        return {o: torch.cat([w[self.weight_slices[i]].view(self.channels, -1) for i in into])
                for o, into, _ in self.outputs}

    def _rows(self, a: dict, x2: torch.Tensor, w: dict, g: dict) -> torch.Tensor:
        n, u = x2.shape[0], self.channels
        t = torch.bmm((x2 @ g[0]).view(n, self.rows, self.d1), a[0])  # [N, (o, k, p), U]
        outs = {}
        for o, into, first in self.outputs:
            dim = self.desc.irreps_out[o].ir.dim
            y = t[:, first:first + dim * len(into)].reshape(n * dim, len(into) * u) @ w[o]  # [N k, W_o]
            outs[o] = y.view(n, dim, w[o].shape[1]).transpose(1, 2).reshape(n, dim * w[o].shape[1])  # e3nn's layout
        return torch.cat([outs[o] if o in outs else x2.new_zeros(n, b.dim)
                          for o, b in enumerate(self.desc.irreps_out)], dim=1)


def plan(desc: TensorProductDescriptor, shared_weights: bool) -> Optional[FullyConnectedPlan]:
    """The plan when every path is weighted uvw with shared weights, on x1 blocks of one multiplicity U,
    and x2 has multiplicity 1 in every block (else None)."""
    paths = desc.paths
    if not shared_weights or not paths or any(p.mode != "uvw" or not p.has_weight for p in paths):
        return None
    muls = {b.mul for b in desc.irreps_in1}
    if len(muls) != 1 or 0 in muls or any(b.mul != 1 for b in desc.irreps_in2):
        return None
    return FullyConnectedPlan(desc, muls.pop())
