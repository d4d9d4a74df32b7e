"""Tensor product executing a ``TensorProductDescriptor`` (e3nn ``o3.TensorProduct`` semantics).

Each path couples block i1 of x1 with block i2 of x2 through the real
Clebsch-Gordan tensor C = wigner_3j(l1, l2, l_out) (a buffer), multiplies by
its ``path_weight`` and by learned weights, and adds into output block i_out:

  uvw   out[w,k] += pw * sum_{u,v,i,j} W[u,v,w] C[i,j,k] x1[u,i] x2[v,j]
  uvu   out[u,k] += pw * sum_{v,i,j}   W[u,v]   C[i,j,k] x1[u,i] x2[v,j]   (W = 1 if unweighted)
  uvuv  out[u*mul2+v, k] += pw * W[u,v] sum_{i,j} C[i,j,k] x1[u,i] x2[v,j] (W = 1 if unweighted)

Weights are flat: path p owns ``desc.weight_slices()[p]``, row-major in
``path.weight_shape`` — e3nn's layout, so e3nn weights copy over unchanged.
With ``shared_weights`` the module owns a N(0,1) parameter; otherwise the
caller passes ``weight`` [..., weight_numel] (one set per row, e.g. per edge).
Leading dimensions of x1, x2 (and weight) broadcast.
"""
from __future__ import annotations

from typing import Optional

import torch

from eqdsl.reps.so3 import wigner_3j
from eqdsl.reps.tp import MODES, TensorProductDescriptor

from . import channelwise, fully_connected
from ._blocks import split_blocks
from .exact import ExactBuffers


def _check_path(desc: TensorProductDescriptor, p) -> None:
    a, b, c = desc.irreps_in1[p.i_in1], desc.irreps_in2[p.i_in2], desc.irreps_out[p.i_out]
    if p.mode not in MODES:
        raise ValueError(f"unknown tensor-product mode `{p.mode}` (known: {', '.join(MODES)})")
    if p.mode == "uvw" and not p.has_weight:
        raise ValueError("uvw paths need weights (without them every output copy would be the same sum)")
    if not abs(a.ir.l - b.ir.l) <= c.ir.l <= a.ir.l + b.ir.l or a.ir.p * b.ir.p != c.ir.p:
        raise ValueError(f"path {a.ir} x {b.ir} -> {c.ir} violates the selection rule")
    need = {"uvw": c.mul, "uvu": a.mul, "uvuv": a.mul * b.mul}[p.mode]
    if c.mul != need:
        raise ValueError(f"{p.mode} path {a} x {b} -> {c}: output multiplicity must be {need}")


def flat_call(tp, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor]):
    """(leading batch shape, x1 [N, d1], x2 [N, d2], weights) of a forward call, broadcast and flattened.

    The weights are the shared parameter, None, or per-row [N, numel].  Shared by every
    tensor-product backend so that all of them accept the same calls.
    """
    d = tp.desc
    w = call_weights(tp, weight)
    if w is None or tp.shared_weights:
        lead = broadcast_leads(x1.shape[:-1], x2.shape[:-1])
    else:
        lead = broadcast_leads(x1.shape[:-1], x2.shape[:-1], weight.shape[:-1])
        w = _flat(weight, lead, tp.weight_numel)
    return lead, _flat(x1, lead, d.irreps_in1.dim), _flat(x2, lead, d.irreps_in2.dim), w


def call_weights(tp, weight: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """The weights a call uses: the shared parameter, the passed per-row ones, or None when nothing is
    weighted (a passed [..., 0] weight is ignored); a ValueError for a missing or superfluous one."""
    if tp.shared_weights:
        if weight is not None:
            raise ValueError("this TensorProduct has shared (internal) weights; do not pass `weight`")
        return tp.weight
    if tp.weight_numel == 0:
        return None
    if weight is None:
        raise ValueError(f"per-row weights [..., {tp.weight_numel}] are required")
    return weight


def broadcast_leads(*shapes: torch.Size) -> torch.Size:
    # the usual call has one leading shape for all operands: skip torch's general (and slower) rule
    if all(s == shapes[0] for s in shapes[1:]):
        return shapes[0]
    return torch.broadcast_shapes(*shapes)


def _flat(x: torch.Tensor, lead: torch.Size, dim: int) -> torch.Tensor:
    """x broadcast to ``lead + (dim,)`` and flattened to ``[rows, dim]``."""
    if len(lead) == 1 and x.shape == lead + (dim,):
        return x  # already flat
    return x.expand(lead + (dim,)).reshape(-1, dim)


class TensorProduct(ExactBuffers):
    GROUPED = True  # whether descriptors with a grouped plan run as batched products (subclasses: path by path)

    def __init__(self, desc: TensorProductDescriptor, shared_weights: bool = True):
        super().__init__()
        self.desc = desc
        self.shared_weights = shared_weights
        self.weight_numel = desc.weight_numel
        for p in desc.paths:
            _check_path(desc, p)
        self.slices = desc.weight_slices()
        # one buffer per distinct (l1, l2, l3).  Kept in float64 (cast to the input dtype in forward) so that
        # building under a float32 default and calling .double() later loses nothing, and exact again
        # after .float().double() (ExactBuffers); not persistent because they are constants of the
        # descriptor, not state.
        self.cg_names: list[str] = []
        for p in desc.paths:
            ls = (desc.irreps_in1[p.i_in1].ir.l, desc.irreps_in2[p.i_in2].ir.l, desc.irreps_out[p.i_out].ir.l)
            name = "cg_{}_{}_{}".format(*ls)
            if not hasattr(self, name):
                self._exact_buffer(name, wigner_3j(*ls), dtype=torch.float64)
            self.cg_names.append(name)
        # NequIP's and MACE's convolutions (uvu, x2 of multiplicity 1) and fully connected products with
        # shared weights (uvw, x2 of multiplicity 1) run as a few batched products (None: path by path)
        self.grouped = (channelwise.plan(desc) or fully_connected.plan(desc, shared_weights)) if self.GROUPED else None
        if self.grouped is not None:
            for n, g in self.grouped.g.items():
                self._exact_buffer(f"grouped_g_{n}", g, dtype=torch.float64)
        if shared_weights and self.weight_numel > 0:
            self.weight = torch.nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.weight = None

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        lead, x1, x2, w_all = flat_call(self, x1, x2, weight)
        if self.grouped is not None:
            out = self.grouped.forward(x1, x2, w_all, self._grouped_g(x2.dtype))
        else:
            out = self.per_path(x1, x2, w_all)
        return out.reshape(lead + (self.desc.irreps_out.dim,))

    def conv(self, x1_nodes: torch.Tensor, src: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor],
             dst: torch.Tensor, num_nodes: int) -> torch.Tensor:
        """Message passing, ``scatter_sum(forward(x1_nodes[src], x2, weight), dst, num_nodes)``: x1_nodes
        [N1, d1], src and dst [E], x2 [E, d2], weight [E, weight_numel] or None; returns [num_nodes, d_out].
        The grouped plans gather and scatter chunk by chunk (never forming every edge's x1 row or
        message); other descriptors gather, multiply and scatter whole."""
        from .graph_ops import gather, scatter

        if self.grouped is None:
            return scatter(self.forward(gather(x1_nodes, src), x2, weight), dst, num_nodes, "sum")
        w = call_weights(self, weight)
        return self.grouped.conv(x1_nodes, src, x2, w, dst, num_nodes, self._grouped_g(x2.dtype))

    def _grouped_g(self, dtype: torch.dtype) -> dict:
        return {n: getattr(self, f"grouped_g_{n}").to(dtype) for n in self.grouped.g}

    def per_path(self, x1: torch.Tensor, x2: torch.Tensor, w_all: Optional[torch.Tensor]) -> torch.Tensor:
        """The tensor product of flat rows x1 [N, d1], x2 [N, d2], path by path (every descriptor)."""
        return self.sum_paths(x1, x2, w_all, self.cg_path)

    def sum_paths(self, x1: torch.Tensor, x2: torch.Tensor, w_all: Optional[torch.Tensor], path) -> torch.Tensor:
        """sum over the descriptor's paths of path_weight * path(i, p, a, b, w) into the output blocks, where
        `path` computes path i's [N, mul_out, 2l3+1] from its input blocks a [N, mul1, d1], b [N, mul2, d2] and
        its weights w (shaped as the path's, per row unless shared; None for unweighted paths)."""
        d = self.desc
        a_blocks, b_blocks = split_blocks(x1, d.irreps_in1), split_blocks(x2, d.irreps_in2)
        acc: list[Optional[torch.Tensor]] = [None] * len(d.irreps_out)
        for i, (p, sl) in enumerate(zip(d.paths, self.slices)):
            a, b, c = a_blocks[p.i_in1], b_blocks[p.i_in2], d.irreps_out[p.i_out]
            if a.shape[1] * b.shape[1] * c.mul == 0:
                continue
            w = w_all[..., sl].reshape(w_all.shape[:-1] + p.weight_shape) if p.has_weight else None
            y = path(i, p, a, b, w)
            y = p.path_weight * y.reshape(y.shape[0], c.dim)
            acc[p.i_out] = y if acc[p.i_out] is None else acc[p.i_out] + y

        outs = [y if y is not None else x1.new_zeros(x1.shape[0], c.dim) for y, c in zip(acc, d.irreps_out)]
        return torch.cat(outs, dim=-1) if outs else x1.new_zeros(x1.shape[0], 0)

    def cg_path(self, i: int, p, a: torch.Tensor, b: torch.Tensor, w: Optional[torch.Tensor]) -> torch.Tensor:
        """Path i through its Clebsch-Gordan table."""
        z = "" if self.shared_weights else "z"
        cg = getattr(self, self.cg_names[i]).to(a.dtype)
        # contract the second input with the CG table first: it is the small operand
        # (harmonics in convolutions), and a fixed order beats einsum's path search here
        bc = torch.einsum("ijk,zvj->zvik", cg, b)
        if w is not None:
            if p.mode == "uvw":
                return torch.einsum(f"{z}uvw,zuvk->zwk", w, torch.einsum("zui,zvik->zuvk", a, bc))
            if p.mode == "uvu":
                return torch.einsum(f"{z}uv,zuvk->zuk", w, torch.einsum("zui,zvik->zuvk", a, bc))
            return torch.einsum(f"{z}uv,zuvk->zuvk", w, torch.einsum("zui,zvik->zuvk", a, bc))  # uvuv
        if p.mode == "uvu":
            return torch.einsum("zui,zvik->zuk", a, bc)
        return torch.einsum("zui,zvik->zuvk", a, bc)  # uvuv

    def extra_repr(self) -> str:
        return f"{self.desc}, shared_weights={self.shared_weights}"
