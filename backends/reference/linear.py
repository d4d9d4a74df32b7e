"""Equivariant linear map (e3nn ``o3.Linear`` semantics).

Schur's lemma: output block ``o`` mixes, with a free [mul_in, mul_out] matrix,
every input block carrying the same irrep.  With e3nn's 'element' path
normalization every path into ``o`` is scaled by 1/sqrt(sum of those mul_in),
so outputs have unit variance for unit-variance inputs and N(0,1) weights.

The flat ``weight`` vector lists one row-major [mul_in, mul_out] matrix per path,
paths ordered by input block then output block — e3nn's default instruction
order, so ``e3nn.o3.Linear(...).weight`` can be copied in unchanged.  ``bias``
holds one vector per biased (trivial) output block, in output order, zero-init.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import torch

from ._blocks import merge_blocks, split_blocks, traced
from .selectors import KindOrder, one_hot_kinds


class Linear(torch.nn.Module):
    def __init__(self, irreps_in, irreps_out, bias: Union[bool, Sequence[bool]] = False):
        super().__init__()
        self.irreps_in, self.irreps_out = irreps_in, irreps_out

        pairs = [(i, o) for i, a in enumerate(irreps_in) for o, b in enumerate(irreps_out) if a.ir == b.ir]
        for o, b in enumerate(irreps_out):
            if b.mul > 0 and not any(p[1] == o and irreps_in[p[0]].mul > 0 for p in pairs):
                raise ValueError(f"Linear {irreps_in} -> {irreps_out}: output block {b} has no input with irrep {b.ir}")

        # (i_in, i_out, start, path_weight) for each path, weights laid out in `pairs` order
        self.paths: list[tuple[int, int, int, float]] = []
        start = 0
        for i, o in pairs:
            fan_in = sum(irreps_in[j].mul for j, k in pairs if k == o)
            self.paths.append((i, o, start, 1.0 / math.sqrt(fan_in) if fan_in > 0 else 1.0))
            start += irreps_in[i].mul * irreps_out[o].mul
        self.weight_numel = start
        self.weight = torch.nn.Parameter(torch.randn(self.weight_numel))

        if isinstance(bias, bool):
            biased = [bias and b.ir.is_trivial for b in irreps_out]
        else:
            biased = [bool(x) for x in bias]
            if len(biased) != len(irreps_out):
                raise ValueError(f"bias: expected {len(irreps_out)} flags, got {len(biased)}")
        for flag, b in zip(biased, irreps_out):
            if flag and not b.ir.is_trivial:
                raise ValueError(f"bias is only allowed on trivial (invariant scalar) blocks, not on {b}")
        # output block -> start of its bias in the flat bias vector
        self.bias_starts: dict[int, int] = {}
        start = 0
        for o, (flag, b) in enumerate(zip(biased, irreps_out)):
            if flag:
                self.bias_starts[o] = start
                start += b.dim
        self.bias_numel = start
        self.bias = torch.nn.Parameter(torch.zeros(self.bias_numel)) if start else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        xs = split_blocks(x, self.irreps_in)
        outs = []
        for o, b in enumerate(self.irreps_out):
            acc = x.new_zeros(lead + (b.mul, b.ir.dim))
            for i, k, start, pw in self.paths:
                mi = self.irreps_in[i].mul
                if k != o or mi * b.mul == 0:
                    continue
                w = self.weight[start:start + mi * b.mul].view(mi, b.mul)
                acc = acc + pw * torch.einsum("...ui,uw->...wi", xs[i], w)
            if o in self.bias_starts:
                s = self.bias_starts[o]
                acc = acc + self.bias[s:s + b.dim].view(b.mul, 1)
            outs.append(acc)
        return merge_blocks(outs, lead, x)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} -> {self.irreps_out}, {self.weight_numel} weights, {self.bias_numel} biases"


class SelectedLinear(torch.nn.Module):
    """``linear(x, by = s)``: one equivariant linear map per column of the invariant selector s,
    y = sum_k s[..., k] W_k x (and s @ biases).  With a one-hot species as s every element has its own
    weights (NequIP's self-connection, MACE's element-dependent linear maps); any invariant s keeps y
    equivariant, since the s_k are scalars (a constant one-hot s runs each map on its own rows only,
    the same sum without its zero terms).  `maps` are K maps of either family (``Linear`` for irreps,
    ``matrix_maps.EquivariantLinear`` for matrix groups), each initialised as that map alone is."""

    def __init__(self, maps: Sequence[torch.nn.Module]):
        super().__init__()
        if not maps:
            raise ValueError("SelectedLinear needs one map per selector column, got none")
        self.maps = torch.nn.ModuleList(maps)

    def forward(self, x: torch.Tensor, selector: torch.Tensor) -> torch.Tensor:
        if selector.shape[-1] != len(self.maps):
            raise ValueError(f"selector: expected {len(self.maps)} columns (one per map), got {selector.shape[-1]}")
        if x.dim() == 2 and selector.shape[:-1] == x.shape[:-1] and not traced():
            kinds = one_hot_kinds(selector)
            if kinds is not None:  # a constant one-hot: each map runs on its own rows only (maybe none:
                order = KindOrder(kinds, len(self.maps))  # every weight still gets its gradient, zero)
                rows = torch.split(x.index_select(0, order.rows), order.all_counts)
                return order.restore(torch.cat([m(r) for m, r in zip(self.maps, rows)]))
        y = selector[..., 0:1] * self.maps[0](x)
        for k in range(1, len(self.maps)):
            y = y + selector[..., k:k + 1] * self.maps[k](x)
        return y

    def extra_repr(self) -> str:
        return f"{len(self.maps)} maps selected per row"
