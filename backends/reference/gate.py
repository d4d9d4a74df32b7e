"""Gated and norm-based nonlinearities (e3nn ``nn.Gate`` / ``nn.NormActivation``).

Gate input layout is ``[scalars | gates | gated]`` concatenated as given.  Note:
e3nn's Gate instead expects its input *sorted* by irrep (``Irreps.sort()`` of
that concatenation); the values are the same up to that block permutation.
The output is ``[act(scalars) | act_gates(gates) * gated]`` in both.

As in e3nn, Gate's activations are rescaled by normalize2mom (see
activations.py; ``normalize=False`` turns that off) and NormActivation's are
not.  Output parities are the compiler's business; only values live here.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch

from ._blocks import merge_blocks, safe_sqrt, split_blocks
from .activations import Act, resolve


def _per_block(acts, irreps, what: str) -> list:
    if isinstance(acts, (list, tuple)):
        if len(acts) != len(irreps):
            raise ValueError(f"{what}: {len(irreps)} blocks but {len(acts)} activations")
        return list(acts)
    return [acts] * len(irreps)


class Gate(torch.nn.Module):
    def __init__(self, irreps_scalars, irreps_gates, irreps_gated,
                 act: Union[Act, Sequence[Act]], act_gates: Union[Act, Sequence[Act]],
                 normalize: bool = True):
        super().__init__()
        for name, irr in (("scalars", irreps_scalars), ("gates", irreps_gates)):
            if not irr.is_scalar():
                raise ValueError(f"Gate {name} must be scalars (l=0), got {irr}")
        if irreps_gates.num_irreps != irreps_gated.num_irreps:
            raise ValueError(f"Gate: {irreps_gates.num_irreps} gates for {irreps_gated.num_irreps} gated irreps")
        self.irreps_scalars, self.irreps_gates, self.irreps_gated = irreps_scalars, irreps_gates, irreps_gated
        self.irreps_in = irreps_scalars + irreps_gates + irreps_gated
        self.acts = torch.nn.ModuleList([resolve(a, normalize) for a in _per_block(act, irreps_scalars, "scalars")])
        self.act_gates = torch.nn.ModuleList(
            [resolve(a, normalize) for a in _per_block(act_gates, irreps_gates, "gates")])

    @staticmethod
    def _act_blocks(x: torch.Tensor, irreps, acts) -> torch.Tensor:
        # scalar blocks: the block's dim is its multiplicity
        outs = [act(x[..., s]) for s, act in zip(irreps.slices(), acts)]
        return torch.cat(outs, dim=-1) if outs else x[..., :0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ns, ng = self.irreps_scalars.dim, self.irreps_gates.dim
        scalars = self._act_blocks(x[..., :ns], self.irreps_scalars, self.acts)
        if self.irreps_gated.dim == 0:
            return scalars
        gates = self._act_blocks(x[..., ns:ns + ng], self.irreps_gates, self.act_gates)
        gated = split_blocks(x[..., ns + ng:], self.irreps_gated)
        outs, start = [], 0
        for blk, b in zip(gated, self.irreps_gated):
            outs.append(blk * gates[..., start:start + b.mul].unsqueeze(-1))  # gate j scales gated copy j
            start += b.mul
        return torch.cat([scalars, merge_blocks(outs, x.shape[:-1], x)], dim=-1)


def _sq_norms(blocks: list[torch.Tensor]) -> list[torch.Tensor]:
    return [(b * b).sum(-1) for b in blocks]


class NormActivation(torch.nn.Module):
    """Every irrep copy v -> act(|v|) v / |v| (``normalize=True``) or act(|v|) v.

    As in e3nn, |v| is clamped below at ``epsilon`` (1e-8) when normalizing, so
    the map is finite and differentiable at v = 0 (there it is v * act(eps)/eps).
    Scalars are treated like every other irrep.  The activation is not
    second-moment normalized (e3nn does not either).
    """

    def __init__(self, irreps, act: Act, normalize: bool = True, epsilon: float = 1e-8, bias: bool = False):
        super().__init__()
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        self.irreps_in = self.irreps_out = irreps
        self.act = resolve(act, False)
        self.normalize, self.eps2 = normalize, float(epsilon) ** 2
        self.biases = torch.nn.Parameter(torch.zeros(irreps.num_irreps)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = split_blocks(x, self.irreps_in)
        sq = _sq_norms(blocks)
        outs, start = [], 0
        for blk, s in zip(blocks, sq):
            n = torch.sqrt(torch.clamp(s, min=self.eps2)) if self.normalize else safe_sqrt(s)
            arg = n if self.biases is None else n + self.biases[start:start + blk.shape[-2]]
            scale = self.act(arg)
            if self.normalize:
                scale = scale / n
            outs.append(blk * scale.unsqueeze(-1))
            start += blk.shape[-2]
        return merge_blocks(outs, x.shape[:-1], x)
