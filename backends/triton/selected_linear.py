"""``linear(x, by = s)`` on the Triton tensor-product kernels.

y = sum_k s_k (W_k x + b_k) is a tensor product of x with the K invariant scalars s (K x 0e), one
``uvw`` path per path (i -> o) of the linear map, with weights [mul_in, K, mul_out] = the K maps'
[mul_in, mul_out] matrices side by side (the product of l with 0e is the identity over 1/sqrt(2l+1),
which the path weight undoes).  So it runs the generated kernels of ``per_row``, forward and every
derivative (the selector's included), with the launch configuration's defaults; the biases, s @ B,
are one small matrix product.  MACE's first versions computed their element-dependent linear maps
the same way (e3nn's FullyConnectedTensorProduct with the one-hot attributes).
"""
from __future__ import annotations

import math

import torch

from eqdsl.reps.irreps import Irreps
from eqdsl.reps.tp import Path, TensorProductDescriptor

from . import per_row
from .autotune import DEFAULT_CONFIG


def descriptor(layer) -> TensorProductDescriptor:
    """The tensor product x (x) (K x 0e) -> out that `layer` (a SelectedLinearLayer of irreps maps) is."""
    desc = getattr(layer, "_triton_desc", None)
    if desc is None:
        first = layer.maps[0]
        k = len(layer.maps)
        paths = tuple(Path(i, 0, o, "uvw", True, pw * math.sqrt(first.irreps_in[i].ir.dim),
                           (first.irreps_in[i].mul, k, first.irreps_out[o].mul)) for i, o, _, pw in first.paths)
        desc = TensorProductDescriptor(first.irreps_in, Irreps.of([(k, layer.trivial)]), first.irreps_out, paths)
        layer._triton_desc = desc  # a plain attribute: nothing in the state dict
    return desc


def tp_weights(layer) -> torch.Tensor:
    """The maps' weights in the descriptor's layout: per path [mul_in, K, mul_out], flat."""
    first = layer.maps[0]
    parts = []
    for i, o, start, _ in first.paths:
        mi, mo = first.irreps_in[i].mul, first.irreps_out[o].mul
        per_map = torch.stack([m.weight[start:start + mi * mo].view(mi, mo) for m in layer.maps], dim=1)
        parts.append(per_map.reshape(-1))
    return torch.cat(parts)


def biases(layer) -> torch.Tensor | None:
    """[K, dim_out]: map k's biases in its output positions (zeros elsewhere), or None without biases."""
    first = layer.maps[0]
    if first.bias is None:
        return None
    slices = first.irreps_out.slices()
    rows = []
    for m in layer.maps:
        pieces, at = [], 0
        for o, start in sorted(first.bias_starts.items()):
            sl = slices[o]
            pieces += [m.bias.new_zeros(sl.start - at), m.bias[start:start + sl.stop - sl.start]]
            at = sl.stop
        pieces.append(m.bias.new_zeros(first.irreps_out.dim - at))
        rows.append(torch.cat(pieces))
    return torch.stack(rows)


def selected_linear(layer, x: torch.Tensor, selector: torch.Tensor) -> torch.Tensor:
    k = len(layer.maps)
    for t in (x, selector):
        per_row._check_device(t, "linear(x, by = s) on Triton", "backend='reference'")
    if selector.shape[-1] != k:
        raise ValueError(f"selector: expected {k} columns (one per map), got {selector.shape[-1]}")
    lead = torch.broadcast_shapes(x.shape[:-1], selector.shape[:-1])
    rows = x.expand(lead + x.shape[-1:]).reshape(-1, x.shape[-1])
    s = selector.expand(lead + (k,)).reshape(-1, k).to(x.dtype)
    c = DEFAULT_CONFIG
    y = per_row.tensor_product(descriptor(layer), rows, s, tp_weights(layer).to(x.dtype), True,
                               c.block_b, c.block_c, c.num_warps, c.num_stages)
    b = biases(layer)
    if b is not None:
        y = y + s @ b.to(x.dtype)
    return y.reshape(lead + (y.shape[-1],))
