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

Message passing: ``conv`` (module ``fused``) computes
``scatter_sum(tp(x1_nodes[src], x2, w), dst)`` with one fused forward kernel (x1 gathered and
the output atomically added inside it); its backward uses the per-row kernels above.

Launch configuration: ``block_b``, ``block_c``, ``num_warps`` (and ``num_stages``) are
autotuned per problem on CUDA (``autotune``; ``tune="auto"``, the default), cached on disk;
explicit values, ``tune=False``, the CPU and the interpreter use fixed ones.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Callable, Optional, Sequence, Union

import torch

from ..reference.tensor_product import flat_call

from eqdsl.reps.tp import TensorProductDescriptor

from . import autotune, codegen, precompile
from .autotune import DEFAULT_CONFIG, Config
from .codegen import KernelKey, TritonModeError, TritonUnavailable, kernel_slots

__all__ = ["TritonTensorProduct", "TritonUnavailable", "TritonModeError", "triton_available", "tensor_product",
           "conv", "Config", "DEFAULT_CONFIG"]

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
            self._mod = codegen.load(self.key)
        return self._mod

    def slots(self, target: str) -> tuple[str, ...]:
        return kernel_slots(target, self.weighted)

    def compile_ahead(self, tag: str, like: torch.Tensor, rows: int, jobs: Callable[[], list]) -> None:
        """Before the first launch on a CUDA device: compile the kernels `jobs()` lists (``precompile``),
        in parallel; once per `tag` and device."""
        if like.device.type != "cuda" or codegen._interpret():
            return
        memo = (tag, like.device, rows >= 2 ** 31)  # a row count past int32 is another kernel signature
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
                                                                    **self.launch_opts)
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
          num_warps: int, num_stages: Optional[int] = None) -> _Plan:
    if dtype not in _DTYPES:
        raise TypeError(f"TritonTensorProduct supports float32 and float64, got {dtype}")
    k = (desc, _DTYPES[dtype], weights, block_b, block_c, num_warps, num_stages)
    if k not in _PLANS:
        _PLANS[k] = _Plan(KernelKey(desc, _DTYPES[dtype], weights, block_c), block_b, num_warps, num_stages)
    return _PLANS[k]


def _weight_mode(desc: TensorProductDescriptor, shared: bool) -> str:
    return "none" if desc.weight_numel == 0 else ("shared" if shared else "row")


def tensor_product(desc: TensorProductDescriptor, x1: torch.Tensor, x2: torch.Tensor,
                   weight: Optional[torch.Tensor], shared: bool, block_b: int = 16,
                   block_c: int = 16, num_warps: int = 4, num_stages: Optional[int] = None) -> torch.Tensor:
    """Functional form on flat inputs: x1 [N, d1], x2 [N, d2], weight [N, W] / [W] (shared) / None."""
    weights = _weight_mode(desc, shared)
    plan = _plan(desc, x1.dtype, weights, block_b, block_c, num_warps, num_stages)
    ops = (x1, x2) if weights == "none" else (x1, x2, weight)
    mode, n = workload(ops), x1.shape[0]
    plan.compile_ahead(mode, x1, n, lambda: precompile.plan_jobs(plan, mode, x1.dtype, n))
    return _TPOp.apply(plan, "g", "all", *ops)


def workload(operands) -> str:
    """"forward_backward" when autograd will differentiate through these operands, else "forward"."""
    grads = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in operands)
    return "forward_backward" if grads else "forward"


def run(tp, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None,
        block_b: int = 16, block_c: int = 16, num_warps: int = 4, num_stages: Optional[int] = None) -> torch.Tensor:
    """A tensor-product module's forward on the kernels: `tp` gives desc, shared_weights and the weights.

    Uses the launch configuration it is given (no tuning; ``TritonTensorProduct`` tunes)."""
    d = tp.desc
    lead, x1, x2, w = flat_call(tp, x1, x2, weight)
    for t in (x1, x2) if w is None else (x1, x2, w):
        _check_device(t)
    if x1.dtype != x2.dtype or (w is not None and w.dtype != x1.dtype):
        raise TypeError(f"x1, x2 and the weights must share a dtype (got {x1.dtype}, {x2.dtype}"
                        f"{'' if w is None else ', ' + str(w.dtype)})")
    out = tensor_product(d, x1, x2, w, tp.shared_weights, block_b, block_c, num_warps, num_stages)
    return out.reshape(lead + (d.irreps_out.dim,))


_TUNE_OFF_WARNED: set = set()


class TritonTensorProduct(torch.nn.Module):
    """Drop-in for ``backends.reference.TensorProduct`` running generated Triton kernels.

    Launch configuration (``autotune.Config``): ``block_b`` (rows per program, a power of
    two), ``block_c`` (largest channel tile, a power of two), ``num_warps`` and ``num_stages``
    (None: Triton's default).  They do not change results beyond float rounding.

    ``tune``: "auto" (default) tunes them on CUDA the first time a problem (descriptor,
    dtype, weight mode, device, batch-size bucket, forward or forward+backward) is seen,
    and uses the result cached on disk after that (see ``autotune``); on the CPU and under
    ``TRITON_INTERPRET`` it never tunes (timings there mean nothing) and uses the defaults
    (16, 16, 4).  ``True``: the same, but warns once where it cannot tune.  ``False``: the
    defaults.  Passing any of ``block_b`` / ``block_c`` / ``num_warps`` / ``num_stages``
    fixes the configuration (the others take their defaults) and disables tuning.

    ``tune_candidates``: the configs to try (default ``autotune.CANDIDATES``, 17; each is
    compiled once per kernel, so a shorter list tunes faster).

    ``tune_mode``: what tuning times: "forward", "forward_backward", or "auto" (default):
    forward+backward when the first call of a problem records gradients, else forward.

    After a call, ``config`` is the configuration it used and ``tune_report`` a dict saying
    where it came from ("source": "explicit" / "default" / "tuned" / "disk" / "memory"), with,
    for tuned configs, every candidate's time, ``tune_s`` (seconds timing) and ``compile_s``
    (seconds of the candidates' first calls: generation + JIT compilation), as recorded when
    the problem was tuned.
    """

    def __init__(self, desc: TensorProductDescriptor, shared_weights: bool = True, *,
                 block_b: Optional[int] = None, block_c: Optional[int] = None, num_warps: Optional[int] = None,
                 num_stages: Optional[int] = None, tune: Union[bool, str] = "auto", tune_mode: str = "auto",
                 tune_candidates: Optional[Sequence[Config]] = None, tuner: Optional[autotune.Tuner] = None):
        super().__init__()
        # the reference's validation, so both backends accept exactly the same descriptors
        from ..reference.tensor_product import _check_path

        for p in desc.paths:
            _check_path(desc, p)
        self.desc = desc
        self.shared_weights = shared_weights
        self.weight_numel = desc.weight_numel
        if tune not in (True, False, "auto"):
            raise ValueError(f"tune must be True, False or 'auto', got {tune!r}")
        if tune_mode not in ("auto",) + autotune.MODES:
            raise ValueError(f"tune_mode must be 'auto', 'forward' or 'forward_backward', got {tune_mode!r}")
        explicit = any(v is not None for v in (block_b, block_c, num_warps, num_stages))
        if explicit and tune is True:
            raise ValueError("explicit block sizes fix the launch configuration: pass them or tune=True, not both")
        d = DEFAULT_CONFIG
        try:
            fixed = Config(d.block_b if block_b is None else block_b, d.block_c if block_c is None else block_c,
                           d.num_warps if num_warps is None else num_warps, num_stages)
        except ValueError as err:
            raise ValueError(f"TritonTensorProduct: {err}") from None
        self.tune = False if explicit else tune
        self.tune_mode = tune_mode
        self._tuner = tuner
        self.tune_candidates = tuple(autotune.CANDIDATES if tune_candidates is None else tune_candidates)
        if not self.tune_candidates or not all(isinstance(c, Config) for c in self.tune_candidates):
            raise ValueError("tune_candidates must be a non-empty sequence of autotune.Config")
        self._fixed = fixed
        self._fixed_report = {"source": "explicit" if explicit else "default", "config": fixed.as_dict()}
        self._resolved: dict = {}  # per problem: (config, report)
        self.config: Config = fixed
        self.tune_report: dict = dict(self._fixed_report, reason="not called yet")
        if shared_weights and self.weight_numel > 0:
            self.weight = torch.nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.weight = None

    # the configuration of the last call (before the first call: the fixed / default one)
    @property
    def block_b(self) -> int:
        return self.config.block_b

    @property
    def block_c(self) -> int:
        return self.config.block_c

    @property
    def num_warps(self) -> int:
        return self.config.num_warps

    @property
    def num_stages(self) -> Optional[int]:
        return self.config.num_stages

    def _no_tuning(self, reason: str) -> tuple[Config, dict]:
        if self.tune is True and reason not in _TUNE_OFF_WARNED:
            _TUNE_OFF_WARNED.add(reason)
            warnings.warn(f"TritonTensorProduct(tune=True): not tuning ({reason}); using {self._fixed}",
                          RuntimeWarning, stacklevel=4)
        return self._fixed, dict(self._fixed_report, reason=reason)

    @staticmethod
    def _tuning_unavailable(x1: torch.Tensor) -> Optional[str]:
        """Why this call cannot be tuned (None: it can): only compiled kernels on CUDA give timings."""
        if x1.device.type != "cuda":
            return f"{x1.device.type} tensors: timings there mean nothing"
        if codegen._interpret():
            return "TRITON_INTERPRET is on: timings there mean nothing"
        return None

    def _choose(self, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor]) -> tuple[Config, dict]:
        if self.tune is False:
            return self._fixed, self._fixed_report
        reason = self._tuning_unavailable(x1)
        if reason is not None:
            return self._no_tuning(reason)
        if x1.dtype not in _DTYPES or x2.dtype != x1.dtype:
            return self._fixed, self._fixed_report  # run() raises the proper error
        w = self.weight if self.shared_weights else weight
        if self.tune_mode == "auto":
            mode = workload((x1, x2, w))
        else:
            mode = self.tune_mode
        wlead = () if self.shared_weights or weight is None or self.weight_numel == 0 else weight.shape[:-1]
        try:
            rows = torch.Size(torch.broadcast_shapes(x1.shape[:-1], x2.shape[:-1], wlead)).numel()
        except RuntimeError:
            return self._fixed, self._fixed_report  # run() raises the proper error
        if rows == 0:
            return self._fixed, dict(self._fixed_report, reason="empty batch")
        bucket = autotune.rows_bucket(rows)
        memo = (x1.dtype, x1.device, bucket, mode)
        hit = self._resolved.get(memo)
        if hit is not None:
            return hit
        tuner = self._tuner or autotune.default_tuner()
        weights = _weight_mode(self.desc, self.shared_weights)
        key = autotune.make_key(self.desc, _DTYPES[x1.dtype], weights, autotune.device_name(x1.device), rows, mode,
                                self.tune_candidates)
        if x1.is_cuda and torch.cuda.is_current_stream_capturing():  # no timing inside a CUDA graph capture
            r = tuner.cached(key)
            if r is None:
                return self._no_tuning("CUDA graph capture in progress and no tuned config cached")
        else:
            r = tuner.tune(key, self._runner(x1, x2, weight, mode),
                           autotune.candidates_for(self.desc, rows, self.tune_candidates),
                           precompile=self._compiler(x1, weights, rows, mode))
        out = (r.config, r.report())
        self._resolved[memo] = out
        return out

    def _compiler(self, x1: torch.Tensor, weights: str, rows: int, mode: str):
        """compile(configs): every candidate's kernels for this workload, compiled in one parallel batch."""
        def compile_all(configs: Sequence[Config]) -> None:
            jobs = []
            for cfg in configs:
                plan = _plan(self.desc, x1.dtype, weights, cfg.block_b, cfg.block_c, cfg.num_warps, cfg.num_stages)
                jobs += precompile.plan_jobs(plan, mode, x1.dtype, rows)
                plan._compiled_ahead.add((mode, x1.device, rows >= 2 ** 31))
            precompile.compile_jobs(jobs, x1.device)
        return compile_all

    def _runner(self, x1, x2, weight, mode):
        """runner(config) -> a function running this call's workload (on detached copies) with config."""
        from ..reference.tensor_product import flat_call

        with torch.no_grad():
            _, f1, f2, fw = flat_call(self, x1, x2, weight)
        f1, f2 = f1.detach().contiguous(), f2.detach().contiguous()
        fw = None if fw is None else fw.detach().contiguous()
        d, shared = self.desc, self.shared_weights

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

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        cfg, report = self._choose(x1, x2, weight)
        self.config, self.tune_report = cfg, report
        return run(self, x1, x2, weight, cfg.block_b, cfg.block_c, cfg.num_warps, cfg.num_stages)

    def extra_repr(self) -> str:
        tune = "off" if self.tune is False else self.tune
        return f"{self.desc}, shared_weights={self.shared_weights}, backend=triton, tune={tune}, config=({self.config})"


# the fused message-passing convolution (gather of x1 by src, scatter-add by dst in the forward kernel)
from . import fused  # noqa: E402  (uses the names above)
from .fused import conv  # noqa: E402
