"""Equivariant maps assembled type by type from small solved bases.

A representation is grouped into block types with multiplicities
(``eqdsl.reps.matrix_properties.type_groups``: 16 + 8*V is 16 copies of `scalar` and 8 of
`V`).  An equivariant map between copies of types (t_1, ..., t_k) -> t_out is
any combination of the basis solved once for those types, with independent
weights per copy: weights [m_out, m_1, ..., m_k, n_basis], as in a fully
connected (uvw) tensor product.  The dense map is assembled from these pieces
on each call, so wide layers never hold a dense basis of the whole map (which
for 106 x 106 -> 106 channels would have ten thousand dense basis elements).

Initialisation: every solved basis is orthonormal, so with weights ~ N(0, s^2)
an output coordinate of type t collects on average s^2 * (sum over pieces of
m_1...m_k * n_basis / t.size) from unit-variance inputs; s is chosen per output
type to make that 1.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from eqdsl.reps import matrix_properties

from .exact import ExactBuffers


class TypedMap(ExactBuffers):
    """Learned equivariant multilinear map, dense form [out, *in_sizes, *extra] assembled by ``dense()``.

    ``solve(types_in, type_out)`` returns the orthonormal basis [n, type_out.size, *type sizes, *extra]
    (``extra`` are trailing axes such as a convolution kernel's k x k offsets, placed last).
    """

    def __init__(self, reps_in: list, rep_out, solve: Callable, extra: tuple = ()):
        super().__init__()
        self.in_sizes = tuple(r.size for r in reps_in)
        self.out_size = rep_out.size
        self.extra = tuple(extra)
        groups_in = [matrix_properties.type_groups(r) for r in reps_in]
        dtype = torch.get_default_dtype()
        pieces = []
        for t_out, idx_out in matrix_properties.type_groups(rep_out):
            found = []
            for combo in _product(groups_in):
                basis = solve(tuple(t for t, _ in combo), t_out)
                if basis.shape[0]:
                    found.append((combo, basis))
            fan = sum(math.prod(len(idx) for _, idx in combo) * b.shape[0] for combo, b in found) / t_out.size
            for combo, basis in found:
                pieces.append((idx_out, combo, basis, 1.0 / math.sqrt(fan)))
        self.num_pieces = len(pieces)
        self.weights = torch.nn.ParameterList()
        # The dense map is built in a type-sorted coordinate order, where every piece is one
        # contiguous box (a slice assignment), then permuted back per axis with one gather.
        orders = [_Order(rep_out)] + [_Order(r) for r in reps_in]
        self._boxes = []
        for i, (idx_out, combo, basis, scale) in enumerate(pieces):
            mults = [len(idx_out)] + [len(idx) for _, idx in combo]
            self.weights.append(torch.nn.Parameter(torch.randn(*mults, basis.shape[0], dtype=dtype) * scale))
            self._exact_buffer(f"basis_{i}", basis)
            idxs = [idx_out] + [idx for _, idx in combo]
            self._boxes.append(tuple(slice(int(order.start[ix[0, 0]]), int(order.start[ix[0, 0]]) + ix.size)
                                     for order, ix in zip(orders, idxs)))
        for j, order in enumerate(orders):
            # sort_j: sorted position -> original coordinate; unsort_j: original coordinate -> sorted position
            self.register_buffer(f"sort_{j}", torch.as_tensor(order.perm), persistent=False)
            self.register_buffer(f"unsort_{j}", torch.as_tensor(np.argsort(order.perm)), persistent=False)
        self.num_basis = sum(int(np.prod(p.shape)) for p in self.weights)

    def dense(self) -> torch.Tensor:
        """The map in the representations' own coordinates [out, *in_sizes, *extra]."""
        out = self.dense_sorted()
        for j in range(len(self.in_sizes) + 1):
            out = out.index_select(j, getattr(self, f"unsort_{j}"))
        return out

    def sort(self, x: torch.Tensor, j: int) -> torch.Tensor:
        """Features [..., size] of operand j (0: the output, 1...: the inputs) in the type-sorted order."""
        return x.index_select(-1, getattr(self, f"sort_{j}"))

    def unsort(self, y: torch.Tensor, j: int = 0) -> torch.Tensor:
        """Type-sorted features back to the representation's own order."""
        return y.index_select(-1, getattr(self, f"unsort_{j}"))

    def dense_sorted(self) -> torch.Tensor:
        """The map in type-sorted coordinates (``sort``/``unsort`` convert features): cheaper than
        ``dense()``, which permutes the whole map, where the features are much smaller than the map."""
        k = len(self.in_sizes)
        ref = self.weights[0] if self.num_pieces else torch.zeros(())
        out = torch.zeros((self.out_size, *self.in_sizes, *self.extra), dtype=ref.dtype, device=ref.device)
        letters_m = "uvwxyz"[:k + 1]      # copy indices: out, in_1, ...
        letters_c = "abcdef"[:k + 1]      # component indices
        extra = "pqrs"[:len(self.extra)]
        spec = f"{letters_m}n,n{letters_c}{extra}->" + "".join(m + c for m, c in zip(letters_m, letters_c)) + extra
        for i in range(self.num_pieces):
            w = self.weights[i]
            basis = getattr(self, f"basis_{i}")
            # [m_out, m_1.., n] x [n, o, i_1.., extra] -> [m_out, o, m_1, i_1, ..., extra]
            piece = torch.einsum(spec, w, basis)
            box = self._boxes[i]
            out[box] = piece.reshape([b.stop - b.start for b in box] + list(self.extra))
        return out


class _Order:
    """Coordinates of a rep sorted by block type (types in order of first appearance, copies in order)."""

    def __init__(self, rep):
        perm = np.concatenate([idx.reshape(-1) for _, idx in matrix_properties.type_groups(rep)])
        self.perm = perm                      # sorted position -> original coordinate
        self.start = np.empty(len(perm), dtype=np.int64)
        self.start[perm] = np.arange(len(perm))  # original coordinate -> sorted position


def _product(groups):
    if not groups:
        yield ()
        return
    for first in groups[0]:
        for rest in _product(groups[1:]):
            yield (first,) + rest
