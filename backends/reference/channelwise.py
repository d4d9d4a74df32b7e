"""The channelwise ("uvu") tensor product of convolutions as a few batched matrix products.

In NequIP's and MACE's convolutions every path is uvu, x1 has the same U channels in every block
and x2 (the spherical harmonics) one copy of each irrep.  Then, for every output block o, row z
and channel u,

    out_o[z, k, u] = sum_{p into o} sum_i  pw_p sum_j C_p[i, j, k] x2[z, j]  *  w_p[z, u] a_p[z, i, u]
                   =                         M[z, k, (p, i)]                @     A[z, (p, i), u]

where a_p is the x1 block of path p.  M is x2 times a constant matrix (one small matmul), A the
weights times x1 (one broadcast product per x1 block), and their product one ``bmm`` instead of a
chain of small products per path.  Output blocks are taken together in bands (k runs over every
block of the band) while their components stay within U/2, so M, zero where a path does not reach
a block, stays at most half the size of A.  Unweighted paths from one x1 block into one output
block share their columns of A (x1 itself).

Two things make it fast on a CPU.  The channel u is the innermost (contiguous) axis of every
temporary, so the broadcast products vectorise over it.  And rows are taken in chunks whose
temporaries stay small (``CHUNK_BYTES``): large temporaries are fresh pages from the operating
system on every call, and filling those costs more than the arithmetic.

``plan`` says whether a descriptor has this form; ``ChannelwisePlan.forward`` computes it, equal to
the per-path evaluation of ``tensor_product.TensorProduct`` up to the order of the sums.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from eqdsl.reps.so3 import wigner_3j
from eqdsl.reps.tp import TensorProductDescriptor

from ._blocks import traced

CHUNK_BYTES = 1 << 21  # the largest temporary of one chunk of rows, about 2 MB (a few fit in cache)


@dataclass(frozen=True)
class Group:
    """The weighted, or the unweighted, paths from x1 block ``i1`` into one output block: ``count``
    slots of ``dim`` columns in A."""
    i1: int
    weighted: bool  # its paths have weights (one slot each); else they share x1's columns (one slot)
    count: int      # slots
    dim: int        # 2 l1 + 1


@dataclass
class Band:
    """Output blocks computed by one product: M [N, K, P] @ A [N, P, U], K their components, P the
    columns of their groups (in order)."""
    outputs: list     # output block indices
    dims: list        # their components
    groups: list
    columns: int = 0  # P

    @property
    def width(self) -> int:  # K
        return sum(self.dims)


class ChunkedPlan:
    """What the grouped plans share (this one and ``fully_connected.FullyConnectedPlan``): rows in chunks of
    about CHUNK_BYTES of temporaries, and message passing gathering and scattering chunk by chunk.  A plan
    has ``g`` (its float64 constant matrices, exact buffers of the owning module), ``row_entries`` (entries
    per row of its largest temporary), ``_channel_inner(x1)`` (the x1 blocks it reads, {key: [N, ...]}),
    ``_weights(w)`` ([rows or 1, ...] or another value shared by every chunk) and ``_rows(a, x2, w, g)``."""

    row_entries: int

    def chunk_rows(self, dtype: torch.dtype) -> int:
        return max(1, CHUNK_BYTES // (self.row_entries * (torch.finfo(dtype).bits // 8)))

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, w: Optional[torch.Tensor], g: dict) -> torch.Tensor:
        """x1 [N, d1], x2 [N, d2], w the shared [numel], per-row [N, numel] or None; g this plan's
        matrices in x2's dtype.  Returns [N, d_out]."""
        if traced():  # one piece: the traced graph then serves every number of rows
            return self._rows(self._channel_inner(x1), x2, self._weights(w), g)
        step = self.chunk_rows(x1.dtype)
        a = {i1: torch.split(t, step) for i1, t in self._channel_inner(x1).items()}
        x2s = torch.split(x2, step)
        ws = self._weight_chunks(w, step, len(x2s))
        outs = [self._rows({i1: t[c] for i1, t in a.items()}, x2s[c], ws[c], g) for c in range(len(x2s))]
        return outs[0] if len(outs) == 1 else torch.cat(outs)

    def conv(self, x1_nodes: torch.Tensor, src: torch.Tensor, x2: torch.Tensor, w: Optional[torch.Tensor],
             dst: torch.Tensor, num_nodes: int, g: dict) -> torch.Tensor:
        """sum over edges e into node n of the product of x1_nodes[src[e]] with x2[e] (weights w[e]):
        the rows of x1 are gathered, and the messages added into the nodes, chunk by chunk, so the
        gathered x1 and the messages of all edges are never formed."""
        a = self._channel_inner(x1_nodes)
        out = x1_nodes.new_zeros(num_nodes, self.desc.irreps_out.dim)
        if traced():
            x1 = {i1: v.index_select(0, src) for i1, v in a.items()}
            return out.index_add(0, dst, self._rows(x1, x2, self._weights(w), g))
        step = self.chunk_rows(x1_nodes.dtype)
        x2s = torch.split(x2, step)
        ws = self._weight_chunks(w, step, len(x2s))
        for c, (s, t) in enumerate(zip(torch.split(src, step), torch.split(dst, step))):
            out.index_add_(0, t, self._rows({i1: v.index_select(0, s) for i1, v in a.items()}, x2s[c], ws[c], g))
        return out

    def _weight_chunks(self, w: Optional[torch.Tensor], step: int, chunks: int) -> list:
        """Per chunk of rows, the weights as ``_weights`` arranges them.  torch.split, not slicing: the
        gradient of a slice is a zero-filled copy of the whole."""
        w = self._weights(w)
        if not isinstance(w, torch.Tensor) or w.shape[0] == 1:  # none, or shared by every row
            return [w] * chunks
        return torch.split(w, step)


class ChannelwisePlan(ChunkedPlan):
    """Constants of the grouped evaluation of one descriptor; the float64 matrices ``g[band]`` become
    exact buffers of the owning module."""

    def __init__(self, desc: TensorProductDescriptor, channels: int):
        self.desc, self.channels = desc, channels
        self.slices1 = desc.irreps_in1.slices()
        slices2 = desc.irreps_in2.slices()
        weighted = [i for i, p in enumerate(desc.paths) if p.has_weight]
        rank = {p: r for r, p in enumerate(weighted)}  # path -> its row of the [weighted paths, U] weights
        self.weighted = len(weighted)
        reached = [o for o in range(len(desc.irreps_out)) if any(p.i_out == o for p in desc.paths)]
        # Output blocks share one product (a band) while their components K stay within U/2: M is then
        # at most half the size of A, and one larger product beats several tiny ones.
        self.bands: list[Band] = []
        for o in reached:
            dim = desc.irreps_out[o].ir.dim
            if self.bands and self.bands[-1].width + dim <= channels // 2:
                self.bands[-1].outputs.append(o)
                self.bands[-1].dims.append(dim)
            else:
                self.bands.append(Band([o], [dim], []))
        order: list[int] = []  # the weights' rows (paths) in group order, each group's rows together
        self.g: dict[int, np.ndarray] = {}  # band -> [d2, K * P]
        for n, band in enumerate(self.bands):
            rows, columns, column = {}, {}, 0  # path -> first row (k) and first column of M
            k = 0
            for o in band.outputs:
                into = [i for i, p in enumerate(desc.paths) if p.i_out == o]
                for i in into:
                    rows[i] = k
                k += desc.irreps_out[o].ir.dim
                for i1 in sorted({desc.paths[i].i_in1 for i in into}):
                    dim = desc.irreps_in1[i1].ir.dim
                    mine = [i for i in into if desc.paths[i].i_in1 == i1]
                    slots = [i for i in mine if desc.paths[i].has_weight]
                    if slots:
                        order += [rank[i] for i in slots]
                        band.groups.append(Group(i1, True, len(slots), dim))
                        for t, i in enumerate(slots):
                            columns[i] = column + t * dim
                        column += len(slots) * dim
                    free = [i for i in mine if not desc.paths[i].has_weight]
                    if free:
                        band.groups.append(Group(i1, False, 1, dim))
                        for i in free:
                            columns[i] = column
                        column += dim
            g = np.zeros((desc.irreps_in2.dim, k, column))
            for i in rows:
                p = desc.paths[i]
                a, b, c = desc.irreps_in1[p.i_in1], desc.irreps_in2[p.i_in2], desc.irreps_out[p.i_out]
                cg = np.asarray(wigner_3j(a.ir.l, b.ir.l, c.ir.l), dtype=np.float64)  # [i, j, k]
                j0, k0, c0 = slices2[p.i_in2].start, rows[i], columns[i]
                g[j0:j0 + b.ir.dim, k0:k0 + c.ir.dim, c0:c0 + a.ir.dim] += p.path_weight * cg.transpose(1, 2, 0)
            band.columns = column
            self.g[n] = g.reshape(desc.irreps_in2.dim, -1)
        groups = [gr for band in self.bands for gr in band.groups]
        self.inputs = sorted({gr.i1 for gr in groups})
        self.group_sizes = [gr.count for gr in groups if gr.weighted]
        # the weights' rows in group order (None: already in it, no copy)
        self.order = None if order == list(range(len(order))) else torch.tensor(order)
        # entries per row of the largest temporary (an A or an M), so that a chunk of rows stays near CHUNK_BYTES
        self.row_entries = max(band.columns * max(channels, band.width) for band in self.bands)

    def _channel_inner(self, x1: torch.Tensor) -> dict:
        """The x1 blocks the paths read, channel-innermost: {i1: [N, 2l+1, U]} (the products below
        vectorise over U)."""
        n, u = x1.shape[0], self.channels
        dims = self.desc.irreps_in1
        return {i1: x1[:, self.slices1[i1]].view(n, u, dims[i1].ir.dim).transpose(1, 2).contiguous()
                for i1 in self.inputs}

    def _weights(self, w: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        """The weights as [1 or rows, weighted paths, 1, U] in group order (or None)."""
        if w is None:
            return None
        w = w.view(-1, self.weighted, 1, self.channels)
        return w if self.order is None else w.index_select(1, self.order.to(w.device))

    def _rows(self, a: dict, x2: torch.Tensor, w: Optional[torch.Tensor], g: dict) -> torch.Tensor:
        n, u = x2.shape[0], self.channels
        weights = iter(torch.split(w, self.group_sizes, dim=1)) if w is not None else None
        outs = {}
        for i, band in enumerate(self.bands):
            parts = [a[gr.i1] if not gr.weighted
                     else (next(weights) * a[gr.i1].unsqueeze(1)).view(n, gr.count * gr.dim, u)
                     for gr in band.groups]
            big_a = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # [N, P, U]
            m = (x2 @ g[i]).view(n, band.width, band.columns)  # [N, K, P]
            y = torch.bmm(m, big_a)  # [N, K, U]: U innermost suits the product best
            pieces = torch.split(y, band.dims, dim=1) if len(band.outputs) > 1 else (y,)
            for o, piece in zip(band.outputs, pieces):
                outs[o] = piece.transpose(1, 2).reshape(n, u * piece.shape[1])  # [N, U d_o]: e3nn's layout
        return torch.cat([outs[o] if o in outs else x2.new_zeros(n, b.dim)
                          for o, b in enumerate(self.desc.irreps_out)], dim=1)


def plan(desc: TensorProductDescriptor) -> Optional[ChannelwisePlan]:
    """The grouped plan when every path is uvu on x1 blocks of one multiplicity U and x2 has
    multiplicity 1 in every block (else None: the per-path evaluation runs)."""
    paths = desc.paths
    if not paths or any(p.mode != "uvu" for p in paths):
        return None
    muls = {desc.irreps_in1[p.i_in1].mul for p in paths}
    if len(muls) != 1 or 0 in muls or any(b.mul != 1 for b in desc.irreps_in2):
        return None
    return ChannelwisePlan(desc, muls.pop())
