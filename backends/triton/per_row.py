"""Tensor products on rows of operands (one row per edge or node, e3nn ``mul_ir`` layout): the loaded
kernels of a descriptor (``_Plan``), their launches, and the autograd function whose every derivative is
again a kernel (``_TPOp``).  ``module.TritonTensorProduct`` is the module built on them; see the package
docstring and README.md.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Optional

import torch

from eqdsl.reps.tp import TensorProductDescriptor

from ..reference.tensor_product import broadcast_leads, flat_call
from . import kernel_cache, precompile
from .autotune import Config
from .codegen import KernelKey, kernel_slots
from .kernel_cache import TritonUnavailable
from .launch import LaunchChooser, weight_mode, workload

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
        return True
    except ImportError:
        return False


# Every generated kernel (the per-row, fused and contraction families) is launched by launch_kernel, so that
# the traffic model (``traffic.recorded``) can record a workload's launches instead of running them; while
# it does, operands on any device (CPU tensors for a small traced run, meta tensors at a model's scale) pass
# the device check, since nothing runs.
_RECORDER: Optional[Callable] = None


def launch_kernel(kernel, grid: tuple, *args, **meta) -> None:
    """``kernel[grid](*args, **meta)``, or handed to the active recorder."""
    if _RECORDER is not None:
        _RECORDER(kernel, grid, args, meta)
    else:
        kernel[grid](*args, **meta)


def _check_device(t: torch.Tensor, what: str = "TritonTensorProduct",
                  instead: str = "backends.reference.TensorProduct") -> None:
    """CUDA tensors, or CPU tensors under Triton's interpreter; anything else is TritonUnavailable naming
    `instead`, what runs on the CPU."""
    if t.device.type == "cuda" or _RECORDER is not None:
        return
    if t.device.type == "cpu" and kernel_cache.interpreting():
        return
    if t.device.type == "cpu":
        raise TritonUnavailable(
            f"{what} got CPU tensors: Triton kernels run on CUDA devices, or on the CPU only "
            "under Triton's interpreter (TRITON_INTERPRET=1, set before the process imports triton; very slow, "
            f"for testing). Use {instead} for CPU execution.")
    raise TritonUnavailable(f"{what} does not run on {t.device.type} tensors")


def _ahead_key(tag: str, like: torch.Tensor, rows: int) -> tuple:
    """What one compilation ahead covers: a workload on a device (a row count past int32 is another kernel
    signature)."""
    return tag, like.device, rows >= 2 ** 31


def _compiles_ahead(like: torch.Tensor) -> bool:
    """Whether launches on `like`'s device compile kernels (CUDA; the interpreter compiles nothing)."""
    return like.device.type == "cuda" and not kernel_cache.interpreting()


def compile_candidates(tp, like: torch.Tensor, rows: int, tag: str, configs, jobs: Callable) -> None:
    """The autotuner's batch: every candidate config's kernels (``jobs(plan)``) for one workload, compiled
    together in parallel; each plan then counts as compiled ahead for `tag`."""
    weights = weight_mode(tp.desc, tp.shared_weights)
    plans = [_plan(tp.desc, like.dtype, weights, c.block_b, c.block_c, c.num_warps, c.num_stages) for c in configs]
    for plan in plans:
        plan._compiled_ahead.add(_ahead_key(tag, like, rows))
    precompile.compile_jobs([j for plan in plans for j in jobs(plan)], like.device)


class _Plan:
    """One descriptor x dtype x weight mode: the loaded kernels and how to launch them."""

    def __init__(self, key: KernelKey, block_b: int, num_warps: int, num_stages: Optional[int] = None):
        self.key = key
        self.block_b = block_b
        self.num_warps = num_warps
        # fused multiply-adds stated, not left to Triton's default (which changes in Triton 3.10)
        self.launch_opts = {"num_warps": num_warps, "enable_fp_fusion": True}
        if num_stages is not None:
            self.launch_opts["num_stages"] = num_stages
        self.weighted = key.weights != "none"
        self.shared = key.weights == "shared"
        d = key.desc
        self.dims = {"x1": d.irreps_in1.dim, "x2": d.irreps_in2.dim, "g": d.irreps_out.dim, "w": d.weight_numel}
        self._mod = None
        self._compiled_ahead: set = set()

    @property
    def module(self):
        if self._mod is None:
            self._mod = kernel_cache.load(self.key)
        return self._mod

    def slots(self, target: str) -> tuple[str, ...]:
        return kernel_slots(target, self.weighted)

    def compile_ahead(self, tag: str, like: torch.Tensor, rows: int, jobs: Callable[[], list]) -> None:
        """Before the first launch on a CUDA device: compile the kernels `jobs()` lists (``precompile``),
        in parallel; once per `tag` and device."""
        if not _compiles_ahead(like):
            return
        memo = _ahead_key(tag, like, rows)
        if memo in self._compiled_ahead:
            return
        self._compiled_ahead.add(memo)
        precompile.compile_jobs(jobs(), like.device)

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
            row_blocks = -(-row_blocks // self.module.SHARED_W_ROW_BLOCKS)  # programs loop over row blocks
            out = like.new_empty(row_blocks, dim)  # one partial sum per group of row blocks
        else:
            out = like.new_empty(n, dim)
            if n == 0 or dim == 0:
                return out
        weighted_only = part == "weighted" and target != "w"
        if weighted_only:  # a second derivative through the weight gradient: its kernels, all at once
            self.compile_ahead("weighted", like, n, lambda: precompile.plan_jobs(self, "weighted", like.dtype, n))
        name = f"tp_target_{target}" + ("_weighted" if weighted_only else "")
        args = [ops[s] for s in slots]
        with torch.cuda.device(like.device) if like.device.type == "cuda" else contextlib.nullcontext():
            for fname, blocks in self.module.KERNELS[name]:  # large descriptors: several kernels
                launch_kernel(getattr(self.module, fname), (row_blocks * blocks,), *args, out, n,
                              BLOCK_B=self.block_b, **self.launch_opts)
        return out.sum(0) if shared_w_target else out

    @property
    def fused_backward(self) -> bool:
        """Whether the descriptor has the fused backward (``backward_codegen``)."""
        return "tp_target_backward" in self.module.KERNELS

    def backward_all(self, x1: torch.Tensor, x2: torch.Tensor, g: torch.Tensor, w: torch.Tensor) -> tuple:
        """(dx1, dx2, dW) of the forward's output gradient `g`, in one pass (the fused backward)."""
        x1, x2, g, w = (t.contiguous() for t in (x1, x2, g, w))
        n = x1.shape[0]
        check_operands(x1, [(s, t, (self.dims[s],) if s == "w" and self.shared else (n, self.dims[s]))
                            for s, t in (("x1", x1), ("x2", x2), ("g", g), ("w", w))])
        dx1, dx2 = (x1.new_empty(n, self.dims[s]) for s in ("x1", "x2"))
        partial = x1.new_empty(n, len(self.module.BACKWARD_COLUMNS))
        row_blocks = -(-n // self.block_b)
        programs = row_blocks
        if self.shared:  # programs sum SHARED_W_ROW_BLOCKS row blocks of dW each, into their own zeroed partial
            programs = -(-row_blocks // self.module.SHARED_W_ROW_BLOCKS)
            dw = x1.new_zeros(max(programs, 1), self.dims["w"])
        else:
            dw = x1.new_empty(n, self.dims["w"])
        if n:
            with torch.cuda.device(x1.device) if x1.device.type == "cuda" else contextlib.nullcontext():
                for fname, blocks in self.module.KERNELS["tp_target_backward"]:
                    launch_kernel(getattr(self.module, fname), (programs * blocks,), x1, x2, g, w, dx1, partial,
                                  dw, n, BLOCK_B=self.block_b, **self.launch_opts)
                launch_kernel(self.module.tp_target_backward_dx2, (row_blocks,), partial, dx2, n,
                              BLOCK_B=self.block_b, **self.launch_opts)
        return dx1, dx2, dw.sum(0) if self.shared else dw


def check_operands(like: torch.Tensor, operands: list) -> None:
    """Each (name, tensor, shape) on a device the kernels run on, with `like`'s dtype and device and that shape:
    the kernels index raw memory, so nothing is launched on a wrong one."""
    for s, t, shape in operands:
        _check_device(t)
        if tuple(t.shape) != shape or t.dtype != like.dtype or t.device != like.device:
            raise ValueError(f"operand {s}: expected shape {shape}, {like.dtype} on {like.device}, "
                             f"got {tuple(t.shape)}, {t.dtype} on {t.device}")


def fused_backward_applies(plan, ctx, needs) -> bool:
    """The fused backward serves a first-order backward of the forward (target g, every path) through at
    least two inputs that require gradients (`needs`: autograd's needs_input_grad); with ``create_graph``
    (grad mode on inside backward) the per-slot operations run instead, since their autograd graph gives
    the second derivatives."""
    return (ctx.target == "g" and ctx.part == "all" and not torch.is_grad_enabled() and sum(map(bool, needs)) >= 2
            and plan.fused_backward)


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
        if fused_backward_applies(plan, ctx, ctx.needs_input_grad[3:]):
            grads = plan.backward_all(full["x1"], full["x2"], grad, full["w"])
            return (None, None, None, *(d if need else None for d, need in zip(grads, ctx.needs_input_grad[3:])))
        grads = []
        for s, need in zip(slots, ctx.needs_input_grad[3:]):
            grads.append(_TPOp.apply(plan, s, part, *(full[x] for x in plan.slots(s))) if need else None)
        return (None, None, None, *grads)


_PLANS: dict = {}


def _plan(desc: TensorProductDescriptor, dtype: torch.dtype, weights: str, block_b: int, block_c: int,
          num_warps: int, num_stages: Optional[int] = None) -> _Plan:
    if dtype not in _DTYPES:
        raise TypeError(f"TritonTensorProduct supports float32 and float64, got {dtype}")
    k = (desc, _DTYPES[dtype], weights, block_b, block_c, num_warps, num_stages)
    plan = _PLANS.get(k)
    if plan is None:
        plan = _PLANS[k] = _Plan(KernelKey(desc, _DTYPES[dtype], weights, block_c), block_b, num_warps, num_stages)
    return plan



def tensor_product(desc: TensorProductDescriptor, x1: torch.Tensor, x2: torch.Tensor,
                   weight: Optional[torch.Tensor], shared: bool, block_b: int = 16,
                   block_c: int = 16, num_warps: int = 4, num_stages: Optional[int] = None) -> torch.Tensor:
    """Functional form on flat inputs: x1 [N, d1], x2 [N, d2], weight [N, W] / [W] (shared) / None."""
    weights = weight_mode(desc, shared)
    plan = _plan(desc, x1.dtype, weights, block_b, block_c, num_warps, num_stages)
    ops = (x1, x2) if weights == "none" else (x1, x2, weight)
    mode, n = workload(ops), x1.shape[0]
    plan.compile_ahead(mode, x1, n, lambda: precompile.plan_jobs(plan, mode, x1.dtype, n))
    if mode == "forward":  # nothing to differentiate: no autograd node (its cost is host time before the launch)
        return plan.launch("g", "all", ops)
    return _TPOp.apply(plan, "g", "all", *ops)


def run(tp, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None,
        block_b: int = 16, block_c: int = 16, num_warps: int = 4, num_stages: Optional[int] = None) -> torch.Tensor:
    """A tensor-product module's forward on the kernels: `tp` gives desc, shared_weights and the weights.

    Uses the launch configuration it is given (no tuning; ``tuned_forward`` tunes)."""
    d = tp.desc
    lead, x1, x2, w = flat_call(tp, x1, x2, weight)
    for t in (x1, x2) if w is None else (x1, x2, w):
        _check_device(t)
    if x1.dtype != x2.dtype or (w is not None and w.dtype != x1.dtype):
        raise TypeError(f"x1, x2 and the weights must share a dtype (got {x1.dtype}, {x2.dtype}"
                        f"{'' if w is None else ', ' + str(w.dtype)})")
    out = tensor_product(d, x1, x2, w, tp.shared_weights, block_b, block_c, num_warps, num_stages)
    return out.reshape(lead + (d.irreps_out.dim,))


def _flat_rows(tp, x1, x2, weight) -> Optional[int]:
    """Rows of the call after broadcasting (None: shapes that ``run`` will reject with its own error)."""
    shapes = [x1.shape[:-1], x2.shape[:-1]]
    if not (tp.shared_weights or weight is None or tp.weight_numel == 0):
        shapes.append(weight.shape[:-1])
    try:
        return torch.Size(broadcast_leads(*shapes)).numel()
    except RuntimeError:
        return None


def tuned_forward(tp, chooser: LaunchChooser, x1: torch.Tensor, x2: torch.Tensor,
                  weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``tp``'s forward on the kernels with the configuration `chooser` picks (tuning it on CUDA)."""
    rows = _flat_rows(tp, x1, x2, weight)
    if chooser.tune is not False and rows is not None and x1.dtype in _DTYPES and x2.dtype == x1.dtype:
        w = tp.weight if tp.shared_weights else weight
        grads = workload((x1, x2, w)) == "forward_backward"
        chooser.choose(x1, rows, grads, False, lambda mode: _runner(tp, x1, x2, weight, mode),
                       lambda mode: lambda configs: compile_candidates(
                           tp, x1, rows, mode, configs, lambda plan: precompile.plan_jobs(plan, mode, x1.dtype, rows)))
    else:  # fixed, or shapes / dtypes that run() rejects with its own error
        chooser.use_fixed()
    c = chooser.config
    return run(tp, x1, x2, weight, c.block_b, c.block_c, c.num_warps, c.num_stages)


def _runner(tp, x1, x2, weight, mode):
    """runner(config) -> a function running this call's workload (on detached copies) with config."""
    with torch.no_grad():
        _, f1, f2, fw = flat_call(tp, x1, x2, weight)
    f1, f2 = f1.detach().contiguous(), f2.detach().contiguous()
    fw = None if fw is None else fw.detach().contiguous()
    d, shared = tp.desc, tp.shared_weights

    def runner(cfg: Config):
        args = (cfg.block_b, cfg.block_c, cfg.num_warps, cfg.num_stages)
        if mode == "forward":
            def fn():
                with torch.no_grad():
                    return tensor_product(d, f1, f2, fw, shared, *args)
            return fn
        l1, l2 = f1.clone().requires_grad_(), f2.clone().requires_grad_()
        lw = None if fw is None else fw.clone().requires_grad_()
        leaves = [t for t in (l1, l2, lw) if t is not None]
        # the incoming gradient: any values time the same (no data-dependent control flow); ones leave
        # the caller's random number stream alone
        g = torch.ones(f1.shape[0], d.irreps_out.dim, dtype=f1.dtype, device=f1.device)

        def fn():
            with torch.enable_grad():
                y = tensor_product(d, l1, l2, lw, shared, *args)
                return torch.autograd.grad(y, leaves, g)
        return fn
    return runner
