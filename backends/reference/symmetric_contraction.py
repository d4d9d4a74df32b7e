"""MACE's symmetric contraction, channel by channel: for each output irrep L,

    y_c,L = sum_{k=1..nu} sum_eta w_k,eta,c U^(k,L)_eta(a_c, ..., a_c)

where a_c is channel c of the input (one copy of every irrep of V), U^(k,L) the basis of equivariant
maps Sym^k(V) -> L (``eqdsl.reps.symmetric_power``) and w the learned weights, one set per column of
the selector s (w = s @ W: per element with a one-hot species) or shared.  Evaluated by MACE's nested
scheme, highest order first: c = U^nu w; c = c . a + U^(nu-1) w; ... ; y = c . a, so each step
contracts one slot and no power of a is formed.

The selector is folded into the contractions instead of into the weights: Q_k = U^(k,L) W_k is
shared by every row ([C, K, d^k, M]), and the step that introduces order k is one batched matrix
product per channel of (s (x) a_c) [rows, K d] with Q_k [K d, d^(k-1) M], exact for any invariant s
(y is linear in w).  So no per-row copy of the weights is ever made and the largest per-row tensor
is [C, rows, d^(nu-1) M], not [rows, C, d^nu M]; the cost grows with K d^nu M per channel, which
suits per-element weights of a few elements.  A constant one-hot selector (a species) goes further:
the rows are sorted by element and each element's rows meet only its own Q_k, so the per-row cost
no longer grows with K.  Everything runs channel-major ([C, rows, ...]), the layout of those
batched products.

Weights: one Parameter [K, n_k, C] per (output block, order k) with n_k > 0, N(0, 1) / sqrt(sum_k n_k):
about unit-variance outputs for unit-variance inputs.
"""
from __future__ import annotations

import math

import torch

from eqdsl.reps.symmetric_power import symmetric_basis

from ._blocks import merge_blocks, split_blocks, traced
from .exact import ExactBuffers
from .selectors import KindOrder, one_hot_kinds


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

    def _shared_terms(self, i: int, k: int) -> torch.Tensor:
        """Q_k = U^(k) W_k for output block i: [C, K, d, d^(k-1) M], one per selector column."""
        u = getattr(self, f"basis_{i}_{k}")  # [n, d, ..., d, M]
        w = getattr(self, f"weight_{i}_{k}")  # [K, n, C]
        q = w.permute(2, 0, 1).reshape(-1, u.shape[0]) @ u.reshape(u.shape[0], -1)  # [C K, d^k M]
        return q.view(self.channels, w.shape[0], u.shape[1], -1)

    def check_selector(self, selector) -> None:
        """A selector exactly when the weights are per column, with one column per weight set (every backend)."""
        if (selector is None) != (self.selectors == 0):
            raise ValueError("this contraction " + ("takes a selector (by = ...)" if self.selectors else "has shared weights"))
        if selector is not None and selector.shape[-1] != self.selectors:
            raise ValueError(f"selector: expected {self.selectors} columns, got {selector.shape[-1]}")

    def forward(self, x: torch.Tensor, selector=None) -> torch.Tensor:
        self.check_selector(selector)
        lead = x.shape[:-1]
        rows = x.reshape(-1, x.shape[-1])
        n = rows.shape[0]
        # [C, B, d]: each channel's copy of every irrep, in the order of irreps_in
        a = torch.cat(split_blocks(rows, self.irreps_in), dim=2).permute(1, 0, 2).contiguous()
        kinds = None if selector is None or traced() else one_hot_kinds(selector.reshape(-1, selector.shape[-1]))
        if kinds is not None:  # rows sorted by kind: each kind's rows take its own weights, nothing else
            order = KindOrder(kinds, self.selectors)
            a = a.index_select(1, order.rows)
            a_kinds = torch.split(a, order.counts, dim=1)

            def first_slot(q):  # [C, K, d, rest] -> [C, B, rest]
                parts = [torch.bmm(ak, q[:, e]) for e, ak in zip(order.kinds, a_kinds)]
                return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        else:
            if selector is None:
                sa = a  # one selector column, always 1
            else:  # (s (x) a)[c, b, k d] = s[b, k] a[c, b, d]
                s = selector.reshape(-1, selector.shape[-1]).to(a.dtype)
                sa = (s[None, :, :, None] * a[:, :, None, :]).reshape(self.channels, n, s.shape[1] * a.shape[2])

            def first_slot(q):
                return torch.bmm(sa, q.reshape(self.channels, -1, q.shape[-1]))
        outs = []
        for i, (mul, ir) in enumerate(self.irreps_out):
            c = None  # [C, B, d^j M]: the contraction so far, j slots still open
            for k in range(self.correlation, 0, -1):
                if c is not None:  # close one slot of what the higher orders left: [1, d] @ [d, rest] per (c, b)
                    d = a.shape[2]
                    c = torch.bmm(a.view(self.channels * n, 1, d), c.view(self.channels * n, d, c.shape[-1] // d))
                    c = c.view(self.channels, n, c.shape[-1])
                if k in self._orders[i]:  # order k enters with its first slot already contracted
                    term = first_slot(self._shared_terms(i, k))
                    c = term if c is None else c + term
            outs.append(c.permute(1, 0, 2))  # [B, C, M]: the block's e3nn layout [mul, 2L+1]
        out = merge_blocks(outs, (n,), rows)
        if kinds is not None:  # back to the callers' row order
            out = order.restore(out)
        return out.reshape(lead + (-1,))

    def extra_repr(self) -> str:
        sizes = [[getattr(self, f"weight_{i}_{k}").shape[1] for k in orders] for i, orders in enumerate(self._orders)]
        return (f"{self.irreps_in} -> {self.irreps_out}, correlation {self.correlation}, bases {sizes}, "
                f"{'per selector column' if self.selectors else 'shared weights'}")
