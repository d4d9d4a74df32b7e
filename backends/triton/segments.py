"""The fused convolution's graph, sorted once: every edge of a node in one run, each run owned by one program.

A fused-convolution operation whose target lives on nodes (the forward writes the destination nodes, the
x1 gradients the source nodes) sums the contributions of a node's edges.  Instead of adding each edge
into its node with an atomic (non-deterministic in float32, and a read-modify-write per element), the
edges are sorted by that node once per graph (``perm``, stable: a node's edges in their original order),
and each program sums one *piece*, a run of at most ``piece`` consecutive sorted edges of one node, in a
fixed order and stores it once:

* a node with at most ``piece`` edges (zero included) is one piece, stored straight into its row;
* a node with more is several pieces, each stored into a partial row past the node rows, and
  ``tp_conv_fixup_*`` sums its partial rows into the node's row in order.

Sorting and counting are tensor operations on the index's device (nine when no node has more than
``piece`` edges, the usual case, and about fifty otherwise); one host synchronisation per graph side
reads the largest node's edge count (and, for split nodes, one more the sizes that fix the grids).  On
meta tensors (no values) the sizes are bounds: at most ``rows + edges // piece`` pieces (a node with c edges is
``max(1, ceil(c / piece)) <= 1 + c / piece`` pieces), padded with empty pieces that write a scratch row;
at most ``edges // (piece + 1)`` split nodes, with fewer than ``2 * edges / piece`` pieces.  The output
buffer is ``[rows + partial_rows, dim]`` (node rows, then partial rows; and the scratch row when padded);
its first ``rows`` rows are the result.
"""
from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from typing import Optional

import torch

# Row blocks (of BLOCK_B edges) one piece covers: a program sums up to this many blocks of one node's edges.
# Larger pieces mean fewer partial rows for high-degree nodes; smaller ones, shorter programs.  Molecular
# and materials graphs have 10-60 edges per node, so at BLOCK_B = 16 nearly every node is one piece.
SEGMENT_ROW_BLOCKS = 8


@dataclass(frozen=True)
class Segments:
    """One side of a graph (the nodes an index names), sorted into pieces (see the module docstring)."""

    rows: int  # node rows the index points into
    piece: int  # edges per piece at most
    perm: torch.Tensor  # [E] int64: edge ids sorted by node, stable
    pieces: torch.Tensor  # [programs, 3] int64: (first, end) positions in perm, and the output row
    fixups: torch.Tensor  # [slots, 3] int64: (node row, first partial row, partial rows) of each split node
    partial_rows: int  # rows past the node rows that split nodes' pieces write
    padded: bool = False  # sizes are bounds (meta): padding pieces and fixups write a scratch row

    @property
    def programs(self) -> int:
        return self.pieces.shape[0]

    @property
    def buffer_rows(self) -> int:
        """Rows of the output buffer: node rows, partial rows (and the scratch row when padded)."""
        return self.rows + self.partial_rows + int(self.padded)


def build(index: torch.Tensor, rows: int, piece: int, bounded: Optional[bool] = None) -> Segments:
    """The pieces of the edges `index` maps to `rows` node rows (entries in [0, rows), checked by the caller).

    Sizes are exact: one host synchronisation per graph side reads the largest node's edge count, and
    when that exceeds `piece` one more the number of pieces, of split nodes and of their partial rows.
    On meta tensors, which hold no values, they are the bounds of the module docstring, the padding
    pieces writing the scratch row and the padding fixups summing nothing into it (`bounded`: that layout
    on any device; by default on meta only)."""
    if piece < 1:
        raise ValueError(f"piece must be >= 1, got {piece}")
    idx = index.to(torch.int64)
    e, dev = idx.shape[0], idx.device
    padded = dev.type == "meta" if bounded is None else bounded
    ordered, perm = torch.sort(idx, stable=True)
    if rows == 0 or e == 0:
        empty = torch.zeros(0, 3, dtype=torch.int64, device=dev)
        pieces = torch.stack([torch.zeros(rows, dtype=torch.int64, device=dev)] * 2
                             + [torch.arange(rows, device=dev)], 1)  # every node one empty piece: zeros
        return Segments(rows, piece, perm, pieces, empty, 0)
    ptr = torch.searchsorted(ordered, torch.arange(rows + 1, device=dev))  # node n's edges: ptr[n]..ptr[n + 1]
    starts, ends = ptr[:-1], ptr[1:]
    counts = ends - starts
    if not padded and int(counts.max()) <= piece:  # the usual graph: every node one piece, nothing to fix up
        return Segments(rows, piece, perm, torch.stack([starts, ends, torch.arange(rows, device=dev)], 1),
                        torch.zeros(0, 3, dtype=torch.int64, device=dev), 0)
    k = torch.clamp((counts + piece - 1) // piece, min=1)  # pieces per node
    k_end = torch.cumsum(k, 0)
    split = torch.where(k > 1, k, 0)  # partial rows per node
    split_first = torch.cumsum(split, 0) - split
    if padded:
        programs, slots, partial_rows = rows + e // piece, e // (piece + 1), 2 * e // piece
    else:
        programs, slots, partial_rows = torch.stack([k_end[-1], (k > 1).sum(), split.sum()]).tolist()
    scratch = rows + partial_rows
    q = torch.arange(programs, device=dev)
    node = torch.searchsorted(k_end, q, right=True)  # the node whose pieces include piece q
    valid = node < rows
    node = node.clamp(max=rows - 1)
    j = q - (k_end - k)[node]  # which of its node's pieces
    first = starts[node] + j * piece
    end = torch.minimum(first + piece, ends[node])
    out = torch.where(k[node] > 1, rows + split_first[node] + j, node)
    pieces = torch.stack([torch.where(valid, first, 0), torch.where(valid, end, 0),
                          torch.where(valid, out, scratch)], 1)
    order = torch.sort((k == 1).to(torch.int8), stable=True).indices[:slots]  # split nodes first
    is_split = k[order] > 1
    fixups = torch.stack([torch.where(is_split, order, scratch), rows + split_first[order],
                          torch.where(is_split, k[order], 0)], 1)
    return Segments(rows, piece, perm, pieces.contiguous(), fixups.contiguous(), partial_rows, padded)


class Graph:
    """A convolution's graph as the kernels need it: the pieces of each side (``segments``), built on first use,
    once per graph, and shared by the forward, the backward and every layer given the same index tensors
    (``for_indices``).  It keeps no reference to the index tensors themselves (the callers pass them)."""

    def __init__(self, src_rows: int, dst_rows: int):
        self.rows = {"x1": src_rows, "g": dst_rows}
        self._built: dict = {}

    def segments(self, slot: str, index: torch.Tensor, piece: int) -> Segments:
        """The pieces of the side `slot` lives on ("x1": the source nodes, `index` = src; "g": the destination
        nodes, `index` = dst)."""
        key = (slot, piece)
        if key not in self._built:
            self._built[key] = build(index, self.rows[slot], piece)
        return self._built[key]

    def put(self, slot: str, segments: Segments) -> None:
        """Use `segments` for the side `slot` (the traffic model: pieces built from a graph's values, moved to
        the meta tensors it records on)."""
        if segments.rows != self.rows[slot]:
            raise ValueError(f"segments of {segments.rows} rows for a side of {self.rows[slot]}")
        self._built[(slot, segments.piece)] = segments


_GRAPHS: dict = {}  # (id(src), id(dst), rows) -> (weak src, weak dst, their versions, Graph, finalizers)


def for_indices(src: torch.Tensor, dst: torch.Tensor, src_rows: int, dst_rows: int) -> Graph:
    """The Graph of these index tensors: the same one while the same tensors (unmodified) come back, as they
    do for every layer of a model's forward; a new one for new or modified tensors (replacing the old one:
    an index buffer rewritten in place every step holds one Graph, not one per step).  An entry goes when
    either tensor does."""
    key = (id(src), id(dst), src_rows, dst_rows)
    hit = _GRAPHS.get(key)
    if hit is not None:
        wsrc, wdst, versions, graph, finalizers = hit
        if wsrc() is src and wdst() is dst and versions == (src._version, dst._version):
            return graph
        for f in finalizers:  # the old entry's tensors were modified (or are others at the same ids)
            f.detach()
    graph = Graph(src_rows, dst_rows)
    finalizers = tuple(weakref.finalize(t, _forget, key, graph) for t in (src, dst))
    _GRAPHS[key] = (weakref.ref(src), weakref.ref(dst), (src._version, dst._version), graph, finalizers)
    return graph


def _forget(key, graph: Graph) -> None:
    hit = _GRAPHS.get(key)
    if hit is not None and hit[3] is graph:
        del _GRAPHS[key]


def sides(src: torch.Tensor, dst: torch.Tensor, src_rows: int, dst_rows: int, piece: int) -> dict:
    """Both sides' pieces ("x1": the source nodes, "g": the destination nodes), as ``Graph.segments`` builds them."""
    return {"x1": build(src, src_rows, piece), "g": build(dst, dst_rows, piece)}


def placed(src: torch.Tensor, dst: torch.Tensor, built: dict, device) -> tuple[torch.Tensor, torch.Tensor]:
    """src and dst (with values, e.g. on the CPU) moved to `device`, with their Graph holding `built` (``sides``
    of these values) moved along: on meta tensors (the traffic model), which hold no values, the exact layout
    instead of the bounded one."""
    src, dst = src.to(device), dst.to(device)
    graph = for_indices(src, dst, built["x1"].rows, built["g"].rows)
    for slot, seg in built.items():
        graph.put(slot, dataclasses.replace(seg, perm=seg.perm.to(device), pieces=seg.pieces.to(device),
                                            fixups=seg.fixups.to(device)))
    return src, dst
