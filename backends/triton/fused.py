"""Fused message-passing convolution on the generated kernels.

    out[n] = sum_{e : dst[e] == n} TP(x1_nodes[src[e]], x2[e], w[e])        out: [num_nodes, d_out]

**Forward: one fused operation.**  ``codegen.generate`` with ``KernelKey(..., fused=True)``
emits ``tp_conv_g``: the forward kernel of the descriptor (the same unrolled Clebsch-Gordan
code as ``tp_target_g``) whose rows are edges, where x1 row e is loaded from
``X1[SRC[e]]`` (the gather of node features happens in the kernel) and each output row is
added with ``tl.atomic_add`` into ``T[DST[e]]`` of a zero-initialised ``[num_nodes, d_out]``
output.  The per-edge messages ``[E, d_out]`` and the gathered ``[E, d1]`` never exist in
memory.  (A descriptor too large for one kernel is split into several kernels over
disjoint output blocks, launched in turn, as for the per-row family.)

**Backward: not fused.**  ``_ConvOp.backward`` is made of differentiable operations:
``grad_edges = grad_out[dst]`` and ``x1_edges = x1_nodes[src]`` (PyTorch ``index_select``),
the per-row kernels ``_TPOp`` for the x2 / weight gradients and for the per-edge x1
gradient, which ``index_add`` sums into the nodes through ``src``.  Because every piece is
differentiable (``_TPOp`` is, to every order), double backward (forces training) works and
runs the generated per-row kernels.

Indices are arbitrary integer tensors (int32 or int64, any order, repeats allowed): the
names src/dst are only the usual use; x1 may be gathered by either index.  Out-of-range
indices raise on the CPU (checked before the launch) and trip a device-side assert on CUDA
(``torch._assert_async``, as ``index_select`` does), since the kernel indexes raw memory.

Summation order: edges sharing a destination add through atomics in whatever order the
programs run, so float32 results are not bitwise reproducible run to run on a GPU (the
reference ``index_add`` sums in another order too; both are exact up to rounding).
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Optional

import torch

from . import _DTYPES, _TPOp, _check_device, _Plan, _plan, _weight_mode, codegen, precompile, workload

__all__ = ["conv", "conv_tensor_product"]


class _ConvPlan:
    """The fused forward kernel module for one per-row plan (same descriptor, dtype, weights, config)."""

    def __init__(self, plan: _Plan):
        self.plan = plan
        self.key = dataclasses.replace(plan.key, fused=True)
        self._mod = None

    @property
    def module(self):
        if self._mod is None:
            self._mod = codegen.load(self.key)
        return self._mod

    def launch(self, operands: tuple[torch.Tensor, ...], src: torch.Tensor, dst: torch.Tensor,
               num_nodes: int) -> torch.Tensor:
        plan = self.plan
        ops = [t.contiguous() for t in operands]
        x1n, x2 = ops[0], ops[1]
        n = x2.shape[0]  # edges
        out = x1n.new_zeros(num_nodes, plan.dims["g"])  # atomics add into it
        if n == 0 or num_nodes == 0 or plan.dims["g"] == 0:
            return out
        src, dst = src.contiguous(), dst.contiguous()
        row_blocks = -(-n // plan.block_b)
        with torch.cuda.device(x1n.device) if x1n.device.type == "cuda" else contextlib.nullcontext():
            for fname, blocks in self.module.KERNELS["tp_conv_g"]:
                getattr(self.module, fname)[(row_blocks * blocks,)](*ops, src, dst, out, n, BLOCK_B=plan.block_b,
                                                                    **plan.launch_opts)
        return out


_CONV_PLANS: dict = {}


def _conv_plan(plan: _Plan) -> _ConvPlan:
    cp = _CONV_PLANS.get(id(plan))
    if cp is None or cp.plan is not plan:
        cp = _CONV_PLANS[id(plan)] = _ConvPlan(plan)
    return cp


class _ConvOp(torch.autograd.Function):
    """out = scatter_sum(K_g(x1_nodes[src], x2, w), dst): fused forward, per-edge differentiable backward."""

    @staticmethod
    def forward(ctx, cplan: _ConvPlan, num_nodes: int, src: torch.Tensor, dst: torch.Tensor, *operands):
        ctx.cplan = cplan
        ctx.save_for_backward(src, dst, *operands)
        return cplan.launch(operands, src, dst, num_nodes)

    @staticmethod
    def backward(ctx, grad):
        plan = ctx.cplan.plan
        src, dst, *ops = ctx.saved_tensors
        slots = plan.slots("g")  # (x1, x2[, w])
        x1n = ops[0]
        ge = grad.index_select(0, dst)  # the per-edge incoming gradient
        full = {"x1": None, "x2": ops[1], "g": ge, "w": ops[2] if len(ops) > 2 else None}
        grads = []
        for s, need in zip(slots, ctx.needs_input_grad[4:]):
            if not need:
                grads.append(None)
                continue
            if s != "x1" and full["x1"] is None:
                full["x1"] = x1n.index_select(0, src)  # the x2 / w gradients need x1 per edge
            gs = _TPOp.apply(plan, s, "all", *(full[x] for x in plan.slots(s)))
            if s == "x1":  # per-edge x1 gradient summed into the nodes it was gathered from
                gs = x1n.new_zeros(x1n.shape).index_add(0, src, gs)
            grads.append(gs)
        return (None, None, None, None, *grads)


def _check_index(name: str, index: torch.Tensor, bound: int, device: torch.device) -> None:
    if index.dim() != 1 or index.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{name} must be a 1-D int32/int64 tensor, got {index.dtype} of shape {tuple(index.shape)}")
    if index.device != device:
        raise TypeError(f"{name} is on {index.device}, the features on {device}")
    if index.numel() == 0:
        return
    ok = ((index >= 0) & (index < bound)).all()
    if index.device.type == "cuda":  # no host sync; a bad index trips a device-side assert like index_select's
        torch._assert_async(ok, f"{name}: index out of range [0, {bound})")
    elif not bool(ok):
        raise IndexError(f"{name}: index out of range [0, {bound}) (min {int(index.min())}, max {int(index.max())})")


def conv_tensor_product(desc, x1_nodes: torch.Tensor, src: torch.Tensor, x2: torch.Tensor,
                        weight: Optional[torch.Tensor], dst: torch.Tensor, num_nodes: int, shared: bool,
                        block_b: int = 16, block_c: int = 16, num_warps: int = 4,
                        num_stages: Optional[int] = None) -> torch.Tensor:
    """Functional form on flat inputs: x1_nodes [N1, d1], src [E], x2 [E, d2], weight [E, W] / [W] (shared) /
    None, dst [E] -> [num_nodes, d_out]."""
    weights = _weight_mode(desc, shared)
    plan = _plan(desc, x1_nodes.dtype, weights, block_b, block_c, num_warps, num_stages)
    ops = (x1_nodes, x2) if weights == "none" else (x1_nodes, x2, weight)
    cplan = _conv_plan(plan)
    # the fused forward, and the per-edge gradient kernels its backward launches, compiled together
    e = src.shape[0]
    mode = "backward" if workload(ops) == "forward_backward" else "forward"
    plan.compile_ahead(f"conv_{mode}", x1_nodes, e,
                       lambda: precompile.conv_jobs(cplan, x1_nodes.dtype, src.dtype, e)
                       + (precompile.plan_jobs(plan, "backward", x1_nodes.dtype, e) if mode == "backward" else []))
    return _ConvOp.apply(cplan, num_nodes, src, dst, *ops)


def conv(tp, x1_nodes: torch.Tensor, src: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor],
         dst: torch.Tensor, num_nodes: int, block_b: int = 16, block_c: int = 16, num_warps: int = 4,
         num_stages: Optional[int] = None) -> torch.Tensor:
    """A tensor-product module's message-passing convolution on the fused kernel.

    ``out[n] = sum_{e: dst[e] == n} tp(x1_nodes[src[e]], x2[e], weight[e])``, i.e. exactly
    ``scatter(tp(gather(x1_nodes, src), x2, weight), dst, num_nodes, "sum")``.  ``tp`` gives
    desc, shared_weights and (when shared) the weights; ``weight`` is per edge ``[E, W]``
    (leading dimensions broadcasting to ``[E]``), or None for shared / unweighted descriptors.
    """
    d = tp.desc
    if x1_nodes.dim() != 2 or x1_nodes.shape[1] != d.irreps_in1.dim:
        raise ValueError(f"x1_nodes must be [num_rows, {d.irreps_in1.dim}], got {tuple(x1_nodes.shape)}")
    if x2.dim() < 1 or x2.shape[-1] != d.irreps_in2.dim:
        raise ValueError(f"x2 must be [E, {d.irreps_in2.dim}], got {tuple(x2.shape)}")
    num_nodes = int(num_nodes)
    if num_nodes < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
    if x1_nodes.dtype not in _DTYPES:
        raise TypeError(f"the Triton backend supports float32 and float64, got {x1_nodes.dtype}")
    for t in (x1_nodes, x2):
        _check_device(t)
    _check_index("src", src, x1_nodes.shape[0], x1_nodes.device)
    _check_index("dst", dst, num_nodes, x1_nodes.device)
    e = src.shape[0]
    if dst.shape[0] != e:
        raise ValueError(f"src and dst must have the same length, got {e} and {dst.shape[0]}")
    if tp.shared_weights:
        if weight is not None:
            raise ValueError("this TensorProduct has shared (internal) weights; do not pass `weight`")
        w, wlead = tp.weight, ()
    elif tp.weight_numel == 0:
        w, wlead = None, ()
    else:
        if weight is None:
            raise ValueError(f"per-edge weights [E, {tp.weight_numel}] are required")
        if weight.shape[-1] != tp.weight_numel:
            raise ValueError(f"weight must be [E, {tp.weight_numel}], got {tuple(weight.shape)}")
        w, wlead = weight, weight.shape[:-1]
    try:
        lead = torch.broadcast_shapes((e,), x2.shape[:-1], wlead)
    except RuntimeError:
        lead = None
    if lead != (e,):
        raise ValueError(f"x2 {tuple(x2.shape)} and weight {None if w is None else tuple(w.shape)} must have "
                         f"(or broadcast to) one row per edge ({e})")
    x2 = x2.expand(e, d.irreps_in2.dim)
    if w is not None:
        _check_device(w)
        if not tp.shared_weights:
            w = w.expand(e, tp.weight_numel)
    if x2.dtype != x1_nodes.dtype or (w is not None and w.dtype != x1_nodes.dtype):
        raise TypeError(f"x1_nodes, x2 and the weights must share a dtype (got {x1_nodes.dtype}, {x2.dtype}"
                        f"{'' if w is None else ', ' + str(w.dtype)})")
    if x2.device != x1_nodes.device or (w is not None and w.device != x1_nodes.device):
        raise TypeError("x1_nodes, x2 and the weights must be on one device")
    return conv_tensor_product(d, x1_nodes, src, x2, w, dst, num_nodes, tp.shared_weights, block_b, block_c,
                               num_warps, num_stages)
