"""MACE's symmetric contraction on generated Triton kernels: the plan of one contraction (its form,
dtype and channel tile: the kernels of each operation, loaded on first use) and the autograd function whose every
derivative is again an operation of the family (``contraction_codegen`` explains the form).

``symmetric_contraction(layer, x, selector)`` is the entry point: `layer` is a
``reference.SymmetricContraction`` (its bases and weights), x [..., C d] in mul_ir order, selector
[..., K] or None; same result as ``layer(x, selector)``.  Any invariant selector works (its columns
weigh the per-column weights row by row), and it is differentiated when it requires a gradient.
On CUDA the first call of a workload compiles all of its kernels ahead, in parallel (``WORKLOADS``,
``precompile``); block sizes are fixed (16 rows, 16 channels, 4 warps), not tuned.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

from . import kernel_cache, per_row, precompile
from .contraction_codegen import ContractionForm, ContractionKey, slots

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}
BLOCK_B, BLOCK_C, NUM_WARPS = 16, 16, 4
# the operations a workload launches: a forward; training on forces (energy, forces = its gradient by A,
# a loss's gradient through both); with "s" ones too when the selector is differentiated
WORKLOADS = {"forward": (("y", 0),),
             "forces_training": (("y", 0), ("x", 0), ("w", 0), ("y", 1), ("x", 1), ("w", 1)),
             "selector": (("s", 0), ("s", 1))}


class _Plan:
    """One contraction form x dtype: its operations' kernels, loaded on first use."""

    def __init__(self, form: ContractionForm, dtype: str):
        self.form, self.dtype = form, dtype
        self._kernels: dict = {}
        self._compiled_ahead: set = set()

    def kernels(self, target: str, p: int) -> list:
        """(name, kernel) of each kernel of the operation, each writing its own part of the output
        (``contraction_codegen.parts``)."""
        key = (target, p)
        if key not in self._kernels:
            mod = kernel_cache.load(ContractionKey(self.form, self.dtype, target, p, BLOCK_C))
            self._kernels[key] = [(name, getattr(mod, name)) for name in mod.KERNELS]
        return self._kernels[key]

    def jobs(self, workload: str, dtype: torch.dtype, rows: int) -> list:
        """The kernels `workload` launches (``WORKLOADS``), as ``precompile`` jobs: operand and output
        pointers, then N."""
        out = []
        for target, p in WORKLOADS[workload]:
            if (target == "s" and not self.form.selectors) or p + (target == "x") > self.form.max_order:
                continue  # nothing to differentiate, or past the degree: launch() runs no kernel
            args = (dtype,) * (len(slots(target, p, self.form.selectors)) + 1) + (rows,)
            for name, fn in self.kernels(target, p):
                out.append(precompile.Job(name, fn, args, dict(BLOCK_B=BLOCK_B, num_warps=NUM_WARPS)))
        return out

    def compile_ahead(self, workload: str, like: torch.Tensor, rows: int) -> None:
        """Before the first launch on a CUDA device: every kernel of the workload, compiled in parallel
        (Triton would compile them one by one at their launches); once per workload and device."""
        memo = (workload, like.device, rows >= 2 ** 31)
        if not per_row._compiles_ahead(like) or memo in self._compiled_ahead:
            return
        self._compiled_ahead.add(memo)
        precompile.compile_jobs(self.jobs(workload, like.dtype, rows), like.device)

    def shape(self, target: str, n: int) -> tuple[int, ...]:
        f = self.form
        return {"y": (n, f.channels * sum(f.out_dims)), "x": (n, f.channels * f.d),
                "w": (max(f.selectors, 1), f.ntot, f.channels), "s": (n, f.selectors)}[target]

    def launch(self, target: str, p: int, operands: tuple[torch.Tensor, ...]) -> torch.Tensor:
        f = self.form
        names = slots(target, p, f.selectors)
        ops = dict(zip(names, (t.contiguous() for t in operands)))
        like = ops["A"]
        n = like.shape[0]
        want = {"A": (n, f.channels * f.d), "G": (n, f.channels * sum(f.out_dims)),
                "W": (max(f.selectors, 1), f.ntot, f.channels), "S": (n, f.selectors)}
        for s, t in ops.items():
            per_row._check_device(t, "the Triton symmetric contraction", "backend='reference'")
            if t.dtype != like.dtype or t.device != like.device:
                raise TypeError("symmetric contraction operands must share dtype and device")
            if tuple(t.shape) != want.get(s, want["A"]):  # the kernels index raw memory
                raise ValueError(f"operand {s}: expected shape {want.get(s, want['A'])}, got {tuple(t.shape)}")
        lead = p + (target == "x")
        if n == 0 or lead > f.max_order:  # no rows, or a derivative past the polynomial's degree
            return like.new_zeros(self.shape(target, n))
        blocks = -(-n // BLOCK_B)
        kernels = self.kernels(target, p)
        if target == "w":  # one partial sum per program
            out = like.new_empty((blocks,) + self.shape(target, n))
        elif target == "s":  # one partial sum per kernel
            out = like.new_empty((len(kernels),) + self.shape(target, n))
        else:
            out = like.new_empty(self.shape(target, n))
        with torch.cuda.device(like.device) if like.device.type == "cuda" else contextlib.nullcontext():
            for _, kernel in kernels:
                per_row.launch_kernel(kernel, (blocks,), *(ops[s] for s in names), out, n, BLOCK_B=BLOCK_B,
                                      num_warps=NUM_WARPS)
        return out.sum(0) if target in ("w", "s") else out


class _SCOp(torch.autograd.Function):
    """Operation (target, p) of the form: the gradient of Phi by one slot from the others.

    Backward: the incoming gradient fills the target slot (as one more direction V_p when the target is
    "x"), and the gradient by each input is again an operation: by G / W / S that slot as target, by A
    one more open direction, by a direction V_q the open direction in its place."""

    @staticmethod
    def forward(ctx, plan: _Plan, target: str, p: int, *operands):
        ctx.plan, ctx.target, ctx.p = plan, target, p
        ctx.save_for_backward(*operands)
        return plan.launch(target, p, operands)

    @staticmethod
    def backward(ctx, grad):
        plan, target, p = ctx.plan, ctx.target, ctx.p
        k = plan.form.selectors
        bound = dict(zip(slots(target, p, k), ctx.saved_tensors))
        if target == "x":
            bound[f"V{p}"] = grad
            q = p + 1
        else:
            bound[{"y": "G", "w": "W", "s": "S"}[target]] = grad
            q = p
        directions = [bound[f"V{i}"] for i in range(q)]

        def op(t, vs):
            named = {**bound, **{f"V{i}": v for i, v in enumerate(vs)}}
            return _SCOp.apply(plan, t, len(vs), *(named[s] for s in slots(t, len(vs), k)))

        grads = []
        for s, need in zip(slots(target, p, k), ctx.needs_input_grad[3:]):
            if not need:
                grads.append(None)
            elif s == "A":
                grads.append(op("x", directions))
            elif s.startswith("V"):
                i = int(s[1:])
                grads.append(op("x", directions[:i] + directions[i + 1:]))
            else:
                grads.append(op({"G": "y", "W": "w", "S": "s"}[s], directions))
        return (None, None, None, *grads)


def _plan(layer, dtype: torch.dtype) -> _Plan:
    """The layer's plan for `dtype`, kept on the layer (a plain attribute: nothing in the state dict), so a
    call neither rebuilds nor hashes the form (whose entries run into the thousands)."""
    plans = layer.__dict__.setdefault("_triton_plans", {})
    if dtype not in plans:
        plans[dtype] = _Plan(_form(layer), _DTYPES[dtype])
    return plans[dtype]


def _form(layer) -> ContractionForm:
    """The kernels' form of `layer`: its channels, dims, selector columns and basis entries."""
    bases = [[(k, layer._exact[f"basis_{i}_{k}"]) for k in orders] for i, orders in enumerate(layer._orders)]
    return ContractionForm.from_bases(layer.channels, [ir.dim for ir in layer.irs],
                                      [b.ir.dim for b in layer.irreps_out], layer.selectors, bases)


def weights(layer) -> torch.Tensor:
    """Every (output block, order) weight of `layer`, concatenated: [K, NTOT, C]."""
    return torch.cat([getattr(layer, f"weight_{i}_{k}") for i, orders in enumerate(layer._orders) for k in orders],
                     dim=1)


def symmetric_contraction(layer, x: torch.Tensor, selector: Optional[torch.Tensor] = None) -> torch.Tensor:
    layer.check_selector(selector)
    if x.dtype not in _DTYPES:
        raise TypeError(f"the Triton symmetric contraction supports float32 and float64, got {x.dtype}")
    plan = _plan(layer, x.dtype)
    lead = x.shape[:-1]
    rows = x.reshape(-1, x.shape[-1])
    w = weights(layer).to(x.dtype)
    operands = [rows, w]
    if selector is not None:
        operands.append(selector.reshape(-1, selector.shape[-1]).to(x.dtype))
    if torch.is_grad_enabled() and any(t.requires_grad for t in operands):
        plan.compile_ahead("forces_training", rows, rows.shape[0])
        if selector is not None and selector.requires_grad:
            plan.compile_ahead("selector", rows, rows.shape[0])
        out = _SCOp.apply(plan, "y", 0, *operands)
    else:  # nothing to differentiate: no autograd node
        plan.compile_ahead("forward", rows, rows.shape[0])
        out = plan.launch("y", 0, tuple(operands))
    return out.reshape(lead + (out.shape[-1],))
