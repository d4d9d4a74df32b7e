"""Verification: an implementation's values and derivatives against the eqdsl reference in float64."""
from __future__ import annotations

from typing import Callable

import torch

from .impl import Impl

RTOL = 1e-4  # float32 against the float64 reference, relative to the largest value


def _close(a, b) -> tuple[bool, float]:
    scale = b.abs().max().item() or 1.0
    err = (a.double() - b).abs().max().item() / scale
    return err <= RTOL, err


def _block_scales(out, ref, irreps_out):
    """Least-squares s_b with out_b ~ s_b * ref_b per output block, expanded to [1, dim]."""
    scales, start = [], 0
    for b in irreps_out:
        o, r = out[:, start:start + b.dim].double(), ref[:, start:start + b.dim]
        s = ((o * r).sum() / (r * r).sum()).item() if (r * r).sum() > 0 else 1.0
        scales.append(s)
        start += b.dim
    full = torch.cat([torch.full((b.dim,), s, dtype=ref.dtype, device=ref.device)
                      for b, s in zip(irreps_out, scales)]) if scales else ref.new_ones(0)
    return scales, full[None]


def verify(impl: Impl, ref_fn: Callable, x1, x2, w, irreps_out, double: bool = False) -> dict:
    """Values and the gradients of x1, x2, w against the reference in float64, in eqdsl's layout; with
    `double`, also the second derivatives d<v, grad>/d(x1, x2, w) ("double_verified", or "double_error")."""
    leaves = [t.detach().requires_grad_() for t in (x1, x2, w)]
    ref_leaves = [t.detach().double().requires_grad_() for t in (x1, x2, w)]
    out = impl.from_native(impl.fn(*impl.to_native(*leaves)))
    ref = ref_fn(*ref_leaves)
    result = {"check": "exact"}
    scale = torch.ones_like(ref[:1])
    if not impl.exact and not _close(out, ref)[0]:
        scales, scale = _block_scales(out, ref, irreps_out)
        result = {"check": "per-block scale", "scales": [round(s, 6) for s in scales]}
    g = torch.randn_like(ref)
    grads = torch.autograd.grad(out, leaves, g.to(out.dtype), create_graph=double)
    # d<g, out>/dx with out = s*ref per block is d<g*s, ref>/dx
    ref_grads = torch.autograd.grad(ref, ref_leaves, g * scale, create_graph=double)
    checks = [_close(a, b) for a, b in zip((out, *grads), (ref * scale, *ref_grads))]
    result.update(verified=all(ok for ok, _ in checks), max_rel_err=max(e for _, e in checks))
    if double:
        try:
            v = [torch.randn_like(t) for t in ref_grads]
            second = second_derivatives(grads, leaves, [t.to(x.dtype) for t, x in zip(v, leaves)])
            ref_second = second_derivatives(ref_grads, ref_leaves, v)
            checks = [_close(a, b) for a, b in zip(second, ref_second)]
            result.update(double_verified=all(ok for ok, _ in checks), double_max_rel_err=max(e for _, e in checks))
        except Exception as err:  # an implementation without double backward still has its other rows
            result["double_error"] = f"{type(err).__name__}: {err}"[:300]
    return result


def second_derivatives(grads, leaves, v):
    """d<v, grads>/d(leaves): the second derivatives force training needs (the gradients of -dE/dpos)."""
    out = torch.autograd.grad(grads, leaves, v, allow_unused=True)
    return [torch.zeros_like(x) if d is None else d for d, x in zip(out, leaves)]
