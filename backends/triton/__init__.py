"""Triton backend: fused tensor products generated per descriptor (see ``codegen`` and README.md).

``TritonTensorProduct(desc, shared_weights)`` is a drop-in for the reference
``TensorProduct``: same constructor, same ``forward(x1, x2, weight=None)``
semantics (e3nn ``mul_ir`` layout, leading dimensions broadcast, per-row or
shared weights), same ``state_dict`` (a single ``weight`` entry when shared),
so weights move between the two unchanged.

Gradients: forward, backward and all higher derivatives run the generated
kernels.  Every kernel is a partial derivative of the multilinear form
T(x1, x2, g, W) (see ``codegen``), so the backward of a kernel is again a kernel
of the same family; ``_TPOp.backward`` calls ``_TPOp.apply`` and double
backward (forces training: -dE/dpos, then dLoss/dparams) is exact, with no
fallback to the reference.

Devices: CUDA tensors, or CPU tensors when Triton's interpreter is on.
``TRITON_INTERPRET=1`` must be set before the process first imports triton
(Triton creates its own library functions at import, interpreted or not) and
stay set; a mismatch raises ``TritonModeError``.  CPU tensors without the
interpreter raise ``TritonUnavailable``; nothing falls back to the reference
silently.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

from ..reference.tensor_product import flat_call

from eqdsl.reps.tp import TensorProductDescriptor

from . import codegen
from .codegen import KernelKey, TritonModeError, TritonUnavailable, kernel_slots

__all__ = ["TritonTensorProduct", "TritonUnavailable", "TritonModeError", "triton_available", "tensor_product"]

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
        return True
    except ImportError:
        return False


def _check_device(t: torch.Tensor) -> None:
    if t.device.type == "cuda":
        return
    if t.device.type == "cpu" and codegen._interpret():
        return
    if t.device.type == "cpu":
        raise TritonUnavailable(
            "TritonTensorProduct got CPU tensors: Triton kernels run on CUDA devices, or on the CPU only "
            "under Triton's interpreter (TRITON_INTERPRET=1, set before the process imports triton; very slow, "
            "for testing). Use backends.reference.TensorProduct for CPU execution.")
    raise TritonUnavailable(f"TritonTensorProduct does not run on {t.device.type} tensors")


class _Plan:
    """One descriptor x dtype x weight mode: the loaded kernels and how to launch them."""

    def __init__(self, key: KernelKey, block_b: int, num_warps: int):
        self.key = key
        self.block_b = block_b
        self.num_warps = num_warps
        self.weighted = key.weights != "none"
        self.shared = key.weights == "shared"
        d = key.desc
        self.dims = {"x1": d.irreps_in1.dim, "x2": d.irreps_in2.dim, "g": d.irreps_out.dim, "w": d.weight_numel}
        self._mod = None

    @property
    def module(self):
        if self._mod is None:
            self._mod = codegen.load(self.key)
        return self._mod

    def slots(self, target: str) -> tuple[str, ...]:
        return kernel_slots(target, self.weighted)

    def launch(self, target: str, part: str, operands: tuple[torch.Tensor, ...]) -> torch.Tensor:
        slots = self.slots(target)
        ops = {s: t.contiguous() for s, t in zip(slots, operands)}
        like = next(ops[s] for s in slots if not (s == "w" and self.shared))  # a per-row operand
        n = like.shape[0]
        for s, t in ops.items():
            _check_device(t)
            if t.dtype != like.dtype or t.device != like.device:
                raise TypeError("tensor product operands must share dtype and device")
            want = (self.dims[s],) if s == "w" and self.shared else (n, self.dims[s])
            if tuple(t.shape) != want:  # the kernels index raw memory: never launch on a wrong shape
                raise ValueError(f"operand {s}: expected shape {want}, got {tuple(t.shape)}")
        shared_w_target = target == "w" and self.shared
        dim = self.dims[target]
        row_blocks = -(-n // self.block_b)
        if shared_w_target:
            if n == 0 or dim == 0:
                return like.new_zeros(dim)
            out = like.new_empty(row_blocks, dim)  # one partial sum per row block
        else:
            out = like.new_empty(n, dim)
            if n == 0 or dim == 0:
                return out
        name = f"tp_target_{target}" + ("_weighted" if part == "weighted" and target != "w" else "")
        args = [ops[s] for s in slots]
        with torch.cuda.device(like.device) if like.device.type == "cuda" else contextlib.nullcontext():
            for fname, blocks in self.module.KERNELS[name]:  # large descriptors: several kernels
                getattr(self.module, fname)[(row_blocks * blocks,)](*args, out, n, BLOCK_B=self.block_b,
                                                                    num_warps=self.num_warps)
        return out.sum(0) if shared_w_target else out


class _TPOp(torch.autograd.Function):
    """K_target(operands): the partial derivative of T by one slot, given the other slots.

    ``part`` is "all" (every path) or "weighted" (only the paths that carry weights).
    Backward: d<h, K_t>/d(slot s) = K_s(the other slots, with slot t := h), again a
    _TPOp, so every order of derivative runs the generated kernels.  T is linear in
    x1, x2 and g but only affine in W when some paths are unweighted, so the
    derivatives of K_w (whose W slot is the incoming gradient) use the
    weighted-only kernels.
    """

    @staticmethod
    def forward(ctx, plan: _Plan, target: str, part: str, *operands):
        ctx.plan, ctx.target, ctx.part = plan, target, part
        ctx.save_for_backward(*operands)
        return plan.launch(target, part, operands)

    @staticmethod
    def backward(ctx, grad):
        plan, target = ctx.plan, ctx.target
        part = "weighted" if target == "w" else ctx.part
        ops = ctx.saved_tensors
        slots = plan.slots(target)
        full = dict(zip(slots, ops))
        full[target] = grad
        grads = []
        for s, need in zip(slots, ctx.needs_input_grad[3:]):
            grads.append(_TPOp.apply(plan, s, part, *(full[x] for x in plan.slots(s))) if need else None)
        return (None, None, None, *grads)


_PLANS: dict = {}


def _plan(desc: TensorProductDescriptor, dtype: torch.dtype, weights: str, block_b: int, block_c: int,
          num_warps: int) -> _Plan:
    if dtype not in _DTYPES:
        raise TypeError(f"TritonTensorProduct supports float32 and float64, got {dtype}")
    k = (desc, _DTYPES[dtype], weights, block_b, block_c, num_warps)
    if k not in _PLANS:
        _PLANS[k] = _Plan(KernelKey(desc, _DTYPES[dtype], weights, block_c), block_b, num_warps)
    return _PLANS[k]


def tensor_product(desc: TensorProductDescriptor, x1: torch.Tensor, x2: torch.Tensor,
                   weight: Optional[torch.Tensor], shared: bool, block_b: int = 16,
                   block_c: int = 16, num_warps: int = 4) -> torch.Tensor:
    """Functional form on flat inputs: x1 [N, d1], x2 [N, d2], weight [N, W] / [W] (shared) / None."""
    weights = "none" if desc.weight_numel == 0 else ("shared" if shared else "row")
    plan = _plan(desc, x1.dtype, weights, block_b, block_c, num_warps)
    ops = (x1, x2) if weights == "none" else (x1, x2, weight)
    return _TPOp.apply(plan, "g", "all", *ops)


def run(tp, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None,
        block_b: int = 16, block_c: int = 16, num_warps: int = 4) -> torch.Tensor:
    """A tensor-product module's forward on the kernels: `tp` gives desc, shared_weights and the weights."""
    d = tp.desc
    lead, x1, x2, w = flat_call(tp, x1, x2, weight)
    for t in (x1, x2) if w is None else (x1, x2, w):
        _check_device(t)
    if x1.dtype != x2.dtype or (w is not None and w.dtype != x1.dtype):
        raise TypeError(f"x1, x2 and the weights must share a dtype (got {x1.dtype}, {x2.dtype}"
                        f"{'' if w is None else ', ' + str(w.dtype)})")
    out = tensor_product(d, x1, x2, w, tp.shared_weights, block_b, block_c, num_warps)
    return out.reshape(lead + (d.irreps_out.dim,))


class TritonTensorProduct(torch.nn.Module):
    """Drop-in for ``backends.reference.TensorProduct`` running generated Triton kernels.

    ``block_b`` (rows per program), ``block_c`` (largest channel tile, a power
    of two) and ``num_warps`` are launch / code-generation parameters; they do
    not change results beyond float rounding.  None is tuned on a GPU yet: the
    defaults (16, 16, 4) are the largest tiles for which the sm_90 compile of
    the benchmark suite's kernels showed (almost) no register spilling; see
    README.md and ``inspect_kernels``.
    """

    def __init__(self, desc: TensorProductDescriptor, shared_weights: bool = True, *,
                 block_b: int = 16, block_c: int = 16, num_warps: int = 4):
        super().__init__()
        # the reference's validation, so both backends accept exactly the same descriptors
        from ..reference.tensor_product import _check_path

        for p in desc.paths:
            _check_path(desc, p)
        self.desc = desc
        self.shared_weights = shared_weights
        self.weight_numel = desc.weight_numel
        if block_b < 1 or block_b & (block_b - 1):
            raise ValueError(f"block_b must be a power of two, got {block_b}")
        self.block_b, self.block_c, self.num_warps = block_b, block_c, num_warps
        if shared_weights and self.weight_numel > 0:
            self.weight = torch.nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.weight = None

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        return run(self, x1, x2, weight, self.block_b, self.block_c, self.num_warps)

    def extra_repr(self) -> str:
        return f"{self.desc}, shared_weights={self.shared_weights}, backend=triton"
