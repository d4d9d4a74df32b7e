"""MACE's symmetric contraction, channel by channel: for each output irrep L,

    y_c,L = sum_{k=1..nu} sum_eta w_k,eta,c U^(k,L)_eta(a_c, ..., a_c)

where a_c is channel c of the input (one copy of every irrep of V), U^(k,L) the basis of equivariant
maps Sym^k(V) -> L (``eqdsl.reps.symmetric_power``) and w the learned weights, one set per column of
the selector s (w = s @ W: per element with a one-hot species) or shared.  Evaluated by MACE's nested
scheme, highest order first: c = U^nu w; c = c . a + U^(nu-1) w; ... ; y = c . a, so each step
contracts one slot and no power of a is formed.

Weights: one Parameter [K, n_k, C] per (output block, order k) with n_k > 0, N(0, 1) / sqrt(sum_k n_k):
about unit-variance outputs for unit-variance inputs.
"""
from __future__ import annotations

import math

import torch

from eqdsl.reps.symmetric_power import symmetric_basis

from ._blocks import merge_blocks, split_blocks
from .exact import ExactBuffers


class SymmetricContraction(ExactBuffers):
    def __init__(self, group, irreps_in, irreps_out, correlation: int, selectors: int = 0):
        super().__init__()
        self.irreps_in, self.irreps_out, self.correlation = irreps_in, irreps_out, correlation
        self.channels = irreps_in[0].mul
        self.irs = tuple(m.ir for m in irreps_in)
        if len({m.mul for m in irreps_in}) != 1 or len(set(self.irs)) != len(self.irs):
            raise ValueError(f"SymmetricContraction takes C channels of distinct irreps, got {irreps_in}")
        if any(m.mul != self.channels for m in irreps_out):
            raise ValueError(f"SymmetricContraction keeps the {self.channels} channels: output {irreps_out}")
        self.selectors = selectors
        self._orders: list[list[int]] = []  # per output block: the orders k with a nonempty basis
        for i, (mul, ir) in enumerate(irreps_out):
            orders = []
            sizes = []
            for k in range(1, correlation + 1):
                basis = symmetric_basis(group, self.irs, ir, k)
                if basis.shape[0] == 0:
                    continue
                orders.append(k)
                sizes.append(basis.shape[0])
                self._exact_buffer(f"basis_{i}_{k}", basis)
            if not orders:
                raise ValueError(f"no symmetric contraction of order <= {correlation} reaches {ir} from {irreps_in}")
            scale = 1.0 / math.sqrt(sum(sizes))
            for k, n in zip(orders, sizes):
                self.register_parameter(f"weight_{i}_{k}", torch.nn.Parameter(
                    torch.randn(max(selectors, 1), n, self.channels) * scale))
            self._orders.append(orders)

    def _weights(self, i: int, k: int, selector):
        w = getattr(self, f"weight_{i}_{k}")  # [K, n, C]
        if selector is None:
            return w[0].unsqueeze(0)  # [1, n, C]: shared by every row
        return torch.einsum("bk,knc->bnc", selector, w)

    def forward(self, x: torch.Tensor, selector=None) -> torch.Tensor:
        if (selector is None) != (self.selectors == 0):
            raise ValueError("this contraction " + ("takes a selector (by = ...)" if self.selectors else "has shared weights"))
        if selector is not None and selector.shape[-1] != self.selectors:
            raise ValueError(f"selector: expected {self.selectors} columns, got {selector.shape[-1]}")
        lead = x.shape[:-1]
        rows = x.reshape(-1, x.shape[-1])
        sel = selector.reshape(-1, selector.shape[-1]) if selector is not None else None
        # [B, C, d]: each channel's copy of every irrep, in the order of irreps_in
        a = torch.cat([blk.transpose(1, 2) for blk in split_blocks(rows, self.irreps_in)], dim=1).transpose(1, 2)
        outs = []
        for i, (mul, ir) in enumerate(self.irreps_out):
            c = None
            for k in range(self.correlation, 0, -1):
                if k in self._orders[i]:
                    u = getattr(self, f"basis_{i}_{k}")  # [n, d, ..., d, M]
                    term = torch.einsum("n...,bnc->bc...", u, self._weights(i, k, sel))  # [B or 1, C, d^k, M]
                    c = term if c is None else c + term
                if c is not None:
                    c = torch.einsum("bc...dm,bcd->bc...m", c, a)  # contract one slot with the channel's a
            outs.append(c.expand(rows.shape[0], -1, -1))  # [B, C, M]: the block's e3nn layout [mul, 2L+1]
        return merge_blocks(outs, (rows.shape[0],), rows).reshape(lead + (-1,))

    def extra_repr(self) -> str:
        sizes = [[getattr(self, f"weight_{i}_{k}").shape[1] for k in orders] for i, orders in enumerate(self._orders)]
        return (f"{self.irreps_in} -> {self.irreps_out}, correlation {self.correlation}, bases {sizes}, "
                f"{'per selector column' if self.selectors else 'shared weights'}")

