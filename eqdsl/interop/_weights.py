"""Copying e3nn-style weights into eqdsl's runtime layers, channel by channel.

Two packages can lay out the same equivariant map differently: blocks sorted or not, merged or
not (e3nn's Gate sorts its input; a channelwise product's outputs are sorted before the linear map
that reads them).  So maps are compared as dense arrays over *channels* (one channel is one copy
of an irrep, numbered across the blocks of a representation), with every normalisation constant
multiplied in; a permutation per side says which source channel each eqdsl channel is.  Copying
then divides by eqdsl's own constants.  Anything the eqdsl layer cannot hold (a nonzero the
source has outside eqdsl's paths) is refused instead of dropped.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Sequence

import torch

from . import UnsupportedModel


def channel_offsets(irreps) -> list[int]:
    """First channel of each block: cumulative multiplicities (the same for e3nn's and eqdsl's Irreps)."""
    out, start = [], 0
    for mul_ir in irreps:
        out.append(start)
        start += mul_ir.mul
    return out


def num_channels(irreps) -> int:
    return sum(m.mul for m in irreps)


def channel_values(irreps, ids: Sequence[float]) -> torch.Tensor:
    """A vector of `irreps` whose every component of channel c holds ids[c]: fed through a map that
    only moves channels (e3nn's Extract, a sort), it shows where each channel went."""
    parts, start = [], 0
    for mul_ir in irreps:
        block = torch.as_tensor(ids[start:start + mul_ir.mul], dtype=torch.float64)
        parts.append(block.unsqueeze(-1).expand(mul_ir.mul, mul_ir.ir.dim).reshape(-1))
        start += mul_ir.mul
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.float64)


def channels_of(irreps, x: torch.Tensor) -> list[int]:
    """The channel ids a vector made by `channel_values` carries, one per channel of `irreps`."""
    out, start = [], 0
    for mul_ir in irreps:
        block = x[start:start + mul_ir.dim].reshape(mul_ir.mul, mul_ir.ir.dim)
        out += [int(round(v)) for v in block[:, 0].tolist()]
        start += mul_ir.dim
    return out


@functools.lru_cache(maxsize=None)
def cg_sign(l1: int, l2: int, l3: int) -> float:
    """+1 or -1: the installed e3nn's wigner_3j(l1, l2, l3) over eqdsl's.  e3nn changed the sign of some
    couplings between 0.4 and 0.5 (0.4.4, which mace-torch pins, has (1, 2, 2) negated); every path has
    its own weight, so the sign folds into the weights."""
    from e3nn import o3

    from ..reps.so3 import wigner_3j

    source = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
    overlap = float((source * torch.tensor(wigner_3j(l1, l2, l3), dtype=torch.float64)).sum())
    if abs(abs(overlap) - 1.0) > 1e-9:
        raise UnsupportedModel(f"e3nn's coupling ({l1}, {l2}, {l3}) differs from eqdsl's by more than a sign")
    return 1.0 if overlap > 0 else -1.0


def e3nn_linear_matrix(linear) -> torch.Tensor:
    """e3nn ``o3.Linear`` as [channels in, channels out], path weights included (no biases)."""
    bias = getattr(linear, "bias", None)
    if bias is not None and bias.numel():
        raise UnsupportedModel("an e3nn Linear with biases")
    off_in, off_out = channel_offsets(linear.irreps_in), channel_offsets(linear.irreps_out)
    m = torch.zeros(num_channels(linear.irreps_in), num_channels(linear.irreps_out), dtype=torch.float64)
    w, start = linear.weight.detach().cpu().to(torch.float64).reshape(-1), 0
    for ins in linear.instructions:
        mi, mo = ins.path_shape
        block = w[start:start + mi * mo].reshape(mi, mo) * ins.path_weight
        m[off_in[ins.i_in]:off_in[ins.i_in] + mi, off_out[ins.i_out]:off_out[ins.i_out] + mo] += block
        start += mi * mo
    return m


def copy_e3nn_linear(layer, source, what: str) -> None:
    """An e3nn ``o3.Linear``'s map into eqdsl's ``rt.Linear`` of the same irreps, channels in the same order."""
    m = e3nn_linear_matrix(source)
    set_linear(layer, m, range(m.shape[0]), range(m.shape[1]), what)


def set_linear(layer, matrix: torch.Tensor, in_perm: Sequence[int], out_perm: Sequence[int], what: str) -> None:
    """Give eqdsl's ``rt.Linear`` the map `matrix` [source channels in, source channels out];
    eqdsl channel c is source channel in_perm[c] (out_perm[c] on the output side)."""
    in_perm, out_perm = torch.as_tensor(list(in_perm)), torch.as_tensor(list(out_perm))
    off_in, off_out = channel_offsets(layer.irreps_in), channel_offsets(layer.irreps_out)
    weight = torch.zeros(layer.weight_numel, dtype=torch.float64)
    covered = torch.zeros_like(matrix, dtype=torch.bool)
    for i, o, start, pw in layer.paths:
        mi, mo = layer.irreps_in[i].mul, layer.irreps_out[o].mul
        rows, cols = in_perm[off_in[i]:off_in[i] + mi], out_perm[off_out[o]:off_out[o] + mo]
        weight[start:start + mi * mo] = (matrix[rows][:, cols] / pw).reshape(-1)
        covered[rows.unsqueeze(1), cols.unsqueeze(0)] = True
    _refuse_uncovered(matrix, covered, what)
    with torch.no_grad():
        layer.weight.copy_(weight.to(layer.weight.dtype))


def e3nn_tp_tensor(tp) -> torch.Tensor:
    """A weighted e3nn ``TensorProduct`` with internal uvw weights as [channels 1, channels 2, channels out],
    path weights included; the Clebsch-Gordan tables are the same in both packages up to a sign per
    coupling (``cg_sign``, folded in), so the channel coefficients are all that differs."""
    if not tp.internal_weights:
        raise UnsupportedModel("a fully connected tensor product with external weights")
    off1, off2, offo = (channel_offsets(tp.irreps_in1), channel_offsets(tp.irreps_in2),
                        channel_offsets(tp.irreps_out))
    t = torch.zeros(num_channels(tp.irreps_in1), num_channels(tp.irreps_in2), num_channels(tp.irreps_out),
                    dtype=torch.float64)
    w, start = tp.weight.detach().cpu().to(torch.float64).reshape(-1), 0
    for ins in tp.instructions:
        if ins.connection_mode != "uvw" or not ins.has_weight:
            raise UnsupportedModel(f"a fully connected tensor product with a `{ins.connection_mode}` path")
        m1, m2, mo = ins.path_shape
        ls = (tp.irreps_in1[ins.i_in1].ir.l, tp.irreps_in2[ins.i_in2].ir.l, tp.irreps_out[ins.i_out].ir.l)
        block = w[start:start + m1 * m2 * mo].reshape(m1, m2, mo) * ins.path_weight * cg_sign(*ls)
        t[off1[ins.i_in1]:off1[ins.i_in1] + m1, off2[ins.i_in2]:off2[ins.i_in2] + m2,
          offo[ins.i_out]:offo[ins.i_out] + mo] += block
        start += m1 * m2 * mo
    return t


def set_uvw_tp(layer, tensor: torch.Tensor, perm1: Sequence[int], perm2: Sequence[int], perm_out: Sequence[int],
               what: str) -> None:
    """Give eqdsl's shared-weight uvw tensor product the coefficients `tensor` (see e3nn_tp_tensor)."""
    desc = layer.desc
    perms = [torch.as_tensor(list(p)) for p in (perm1, perm2, perm_out)]
    offs = [channel_offsets(r) for r in (desc.irreps_in1, desc.irreps_in2, desc.irreps_out)]
    weight = torch.zeros(layer.weight_numel, dtype=torch.float64)
    covered = torch.zeros_like(tensor, dtype=torch.bool)
    for p, sl in zip(desc.paths, desc.weight_slices()):
        if p.mode != "uvw":
            raise UnsupportedModel(f"{what}: eqdsl path of mode {p.mode}")
        m1, m2, mo = p.weight_shape
        idx = [perm[off[i]:off[i] + m] for perm, off, i, m in
               zip(perms, offs, (p.i_in1, p.i_in2, p.i_out), (m1, m2, mo))]
        grid = torch.meshgrid(*idx, indexing="ij")
        weight[sl] = (tensor[grid] / p.path_weight).reshape(-1)
        covered[grid] = True
    _refuse_uncovered(tensor, covered, what)
    with torch.no_grad():
        layer.weight.copy_(weight.to(layer.weight.dtype))


def _refuse_uncovered(source: torch.Tensor, covered: torch.Tensor, what: str) -> None:
    left = source[~covered]
    if left.numel() and left.abs().max() > 0:
        raise UnsupportedModel(f"{what}: the source couples channels the eqdsl layer has no path for")


def uvu_columns(e3nn_tp, desc) -> tuple[list[int], list[float], list[list[int]]]:
    """How the per-edge weights and outputs of e3nn's channelwise product map onto eqdsl's.

    Returns (source weight index of each eqdsl weight, the factor each eqdsl weight takes: the ratio
    of the two path weights times the coupling's sign, and per eqdsl output block the source output
    channels it holds).
    Paths are matched by (block of input 1, block of input 2, output irrep).
    """
    off_src = channel_offsets(e3nn_tp.irreps_out)
    source, start = {}, 0
    for ins in e3nn_tp.instructions:
        if ins.connection_mode != "uvu" or not ins.has_weight:
            raise UnsupportedModel(f"an edge tensor product with a `{ins.connection_mode}` path"
                                   f"{'' if ins.has_weight else ' without weights'}")
        key = (ins.i_in1, ins.i_in2, str(e3nn_tp.irreps_out[ins.i_out].ir))
        if key in source:
            raise UnsupportedModel("an edge tensor product with two paths between the same blocks")
        n = ins.path_shape[0] * (ins.path_shape[1] if len(ins.path_shape) > 1 else 1)
        ls = (e3nn_tp.irreps_in1[ins.i_in1].ir.l, e3nn_tp.irreps_in2[ins.i_in2].ir.l, e3nn_tp.irreps_out[ins.i_out].ir.l)
        source[key] = (start, ins.path_weight * cg_sign(*ls), off_src[ins.i_out], e3nn_tp.irreps_out[ins.i_out].mul)
        start += n
    columns, factors = [], []
    out_channels: list[list[int]] = [[] for _ in desc.irreps_out]
    for p, sl in zip(desc.paths, desc.weight_slices()):
        key = (p.i_in1, p.i_in2, str(desc.irreps_out[p.i_out].ir))
        if key not in source:
            raise UnsupportedModel(f"the eqdsl product has a path {key} the source model lacks")
        s, pw, off, mul = source.pop(key)
        n = sl.stop - sl.start
        columns += list(range(s, s + n))
        factors += [pw / p.path_weight] * n
        out_channels[p.i_out] += list(range(off, off + mul))
    if source:
        raise UnsupportedModel(f"the source's edge tensor product has paths eqdsl's lacks: {sorted(source)}")
    return columns, factors, out_channels


def set_mlp(layer, weights: list[torch.Tensor], in_scale: float = 1.0, columns=None, factors=None) -> None:
    """eqdsl's rt.MLP (W / sqrt(fan_in), normalize2mom-scaled activation) given the source's effective
    matrices (x @ weights[0], activation, x @ weights[1], ...; the source's gains folded in); `in_scale`
    multiplies the first, `columns`/`factors` pick and scale the last one's outputs (see uvu_columns)."""
    if len(weights) != len(layer.weights):
        raise UnsupportedModel(f"an MLP of {len(weights)} layers where eqdsl's has {len(layer.weights)}")
    with torch.no_grad():
        for i, (w, target) in enumerate(zip(weights, layer.weights)):
            w = w * math.sqrt(w.shape[0]) * (in_scale if i == 0 else 1.0 / layer.act.cst)
            if i == len(weights) - 1 and columns is not None:
                w = w[:, columns] * torch.as_tensor(factors, dtype=torch.float64)
            if tuple(w.shape) != tuple(target.shape):
                raise UnsupportedModel(f"an MLP layer of shape {tuple(w.shape)} where eqdsl's has {tuple(target.shape)}")
            target.copy_(w.to(target.dtype))


def set_symmetric_order(layer, block: int, order: int, coeffs: torch.Tensor, what: str, rtol: float = 1e-10) -> None:
    """Give eqdsl's ``SymmetricContraction`` the order-`order` map of output block `block` as the source
    has it: `coeffs` [selector columns, channels, d, ..., d (order slots), 2L+1], any tensor over the slots.

    Only the part symmetric in the slots acts on a_c x ... x a_c, so it is symmetrised and written in
    eqdsl's basis of equivariant symmetric maps; a residual above `rtol` (the source's rounding) means a map
    eqdsl's basis cannot hold, refused."""
    k_sel, channels = coeffs.shape[:2]
    slots = tuple(range(2, 2 + order))
    sym = torch.zeros_like(coeffs)
    perms = list(itertools.permutations(slots))
    for perm in perms:
        sym += coeffs.permute(0, 1, *perm, 2 + order)
    sym = (sym / len(perms)).reshape(k_sel * channels, -1)  # [K C, d^k (2L+1)]
    if order not in layer._orders[block]:
        if sym.abs().max() > rtol * max(1.0, coeffs.abs().max()):
            raise UnsupportedModel(f"{what}: an order-{order} term eqdsl's contraction has no basis for")
        return
    basis = getattr(layer, f"basis_{block}_{order}").detach().to(torch.float64).reshape(-1, sym.shape[1])
    w = torch.linalg.lstsq(basis.T, sym.T).solution  # [n, K C]
    if (w.T @ basis - sym).abs().max() > rtol * max(1.0, sym.abs().max()):
        raise UnsupportedModel(f"{what}: an order-{order} map outside the equivariant symmetric maps")
    target = getattr(layer, f"weight_{block}_{order}")
    with torch.no_grad():
        target.copy_(w.T.reshape(k_sel, channels, -1).transpose(1, 2).to(target.dtype))


class Modules:
    """The generated module's submodules in the order the spec creates them."""

    def __init__(self, module, what: str):
        self.what = what
        self.items = [m for _, m in module.named_children()]

    def take(self, kind: str):
        if not self.items:
            raise RuntimeError(f"the generated {self.what} module has no more submodules (expected {kind})")
        mod = self.items.pop(0)
        if type(mod).__name__ != kind:
            raise RuntimeError(f"the generated {self.what} module has a {type(mod).__name__} where {kind} was expected")
        return mod

    def done(self) -> None:
        if self.items:
            raise RuntimeError(f"the generated {self.what} module has submodules left: "
                               f"{[type(m).__name__ for m in self.items]}")
