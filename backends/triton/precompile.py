"""Compile the kernels a tensor product will launch, all at once on a thread pool, before they run.

Triton compiles a kernel at its first launch, one kernel after another.  A layer needs
several (forward, the three gradients, and more when a large descriptor is split), and the
autotuner needs them for every candidate configuration: done serially, that is minutes for
the large suite problems (uvu-L6's 178 kernels take 188 s of compiler time for one configuration,
sm_90, offline).

Triton's ``AsyncCompileMode(executor)``: inside it, ``kernel.warmup(args, grid=...)`` submits
the compilation to the executor and returns at once; leaving the context waits for every
submission and stores each compiled kernel in the kernel's own cache under the key a launch
with arguments of the same types computes.  Passing a ``torch.dtype`` in place of a tensor is
Triton's ``MockTensor`` (a 16-byte-aligned pointer of that type, as torch allocates), and the
row count ``N`` is not specialized on (``do_not_specialize``), so the warmed-up kernels are the
ones the launches use.  Triton's compiler spends most of its time in native code that releases
the GIL (MLIR passes, LLVM, ptxas), so threads compile in parallel: the four mace-large kernels,
compiled offline for sm_90 on a 2-core machine, took 17.1 s one after another and 9.5 s on two
threads.

Compile errors are not raised here: the launch that needs the kernel compiles it again and
raises there, where the caller (or the autotuner, which skips a failing candidate) handles it.
Under ``TRITON_INTERPRET`` there is nothing to compile and ``warmup`` does nothing.
"""
from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Optional

import torch

from .codegen import positive_int_env
from .emit import CONV_ROWS

# the operations a workload launches: the forward, and for training the three gradients (and the fused
# backward, ``backward_codegen``, where the descriptor has one: a first-order backward runs it, second
# derivatives the per-slot operations); "weighted":
# the weighted-paths-only kernels that second derivatives through the weight gradient launch
# (distinct kernels only when some paths carry no weights; otherwise these names alias the others, and
# "weighted" lists nothing)
TARGETS = {"forward": ("g",), "forward_backward": ("g", "x1", "x2", "w"),
           "weighted": ("g_weighted", "x1_weighted", "x2_weighted")}


@dataclass(frozen=True)
class Job:
    """One kernel to compile: the ``@triton.jit`` function and warmup arguments of the launch's types."""

    name: str
    fn: object
    args: tuple
    kwargs: dict = field(default_factory=dict)


def _check_arity(name: str, fn, args: tuple, kwargs: dict) -> None:
    names = list(getattr(fn, "arg_names", ()))
    if len(args) + len(kwargs) != len(names) or any(k not in names[len(args):] for k in kwargs):
        raise AssertionError(f"{name}: warmup arguments {len(args)} + {sorted(kwargs)} do not match "
                             f"the kernel's parameters {names}")


def _jobs(plan, module, family: str, mode: str, args_of) -> list[Job]:
    """One job per kernel of each operation `mode` launches (``TARGETS``): ``module.KERNELS[tp_<family>_<t>]``,
    with the warmup arguments ``args_of(target)`` and the plan's launch options."""
    if mode not in TARGETS:
        raise ValueError(f"mode must be one of {tuple(TARGETS)}, got {mode!r}")
    jobs = []
    for name in TARGETS[mode]:
        target = name.removesuffix("_weighted")
        if plan.dims[target] == 0:
            continue  # nothing is launched for an empty target
        kernels = module.KERNELS[f"tp_{family}_{name}"]
        if name != target and kernels == module.KERNELS[f"tp_{family}_{target}"]:
            continue  # every path weighted: the operation's own kernels, compiled with it
        args = args_of(target)
        for fname, _ in kernels:
            fn = getattr(module, fname)
            _check_arity(fname, fn, args, {"BLOCK_B": None})
            jobs.append(Job(fname, fn, args, dict(BLOCK_B=plan.block_b, **plan.launch_opts)))
    backward = f"tp_{family}_backward"
    if mode == "forward_backward" and backward in module.KERNELS:  # the fused backward and its dx2 sum
        args = args_of("backward")
        for fname, a in [(f, args) for f, _ in module.KERNELS[backward]] + \
                [(f, (args[0], args[0], args[-1])) for f, _ in module.KERNELS[f"{backward}_dx2"]]:
            fn = getattr(module, fname)
            _check_arity(fname, fn, a, {"BLOCK_B": None})
            jobs.append(Job(fname, fn, a, dict(BLOCK_B=plan.block_b, **plan.launch_opts)))
    return jobs


def plan_jobs(plan, mode: str, dtype: torch.dtype, rows: int) -> list[Job]:
    """The kernels `plan` (a ``_Plan``) launches for `rows` rows: operands and output pointers, then N."""
    def args_of(t):  # the fused backward: x1, x2, g, w, then dx1, the dx2 partials, dw
        return (dtype,) * (7 if t == "backward" else len(plan.slots(t)) + 1) + (rows,)
    return _jobs(plan, plan.module, "target", mode, args_of)


def conv_jobs(conv_plan, mode: str, dtype: torch.dtype, index_dtype: torch.dtype, edges: int) -> list[Job]:
    """The fused message-passing kernels (``tp_conv_*``: operands, SRC, DST, for a target on nodes PERM and
    PIECES, output, N) `mode` launches, and the fixups that sum split nodes' partial rows."""
    plan, module = conv_plan.plan, conv_plan.module
    pieces = (torch.int64, torch.int64)  # segments.Segments: perm, pieces

    def args_of(t):  # the fused backward: x1, x2, g, w, SRC, DST, PERM, PIECES, then dx1, the dx2 partials, dw
        if t == "backward":
            return (dtype,) * 4 + (index_dtype, index_dtype) + pieces + (dtype,) * 3 + (edges,)
        return ((dtype,) * len(plan.slots(t)) + (index_dtype, index_dtype)
                + (pieces if t in CONV_ROWS else ()) + (dtype, edges))
    jobs = _jobs(plan, module, "conv", mode, args_of)
    for slot in CONV_ROWS:  # the node targets this mode writes: the forward's g, the gradients' x1
        name = f"tp_conv_fixup_{slot}"
        if name in module.KERNELS and any(t.removesuffix("_weighted") == slot for t in TARGETS[mode]):
            fn = getattr(module, name)
            args = (dtype, torch.int64, edges)
            _check_arity(name, fn, args, {"BLOCK_B": None})
            jobs.append(Job(name, fn, args, dict(BLOCK_B=plan.block_b, **plan.launch_opts)))
    return jobs


def workers(n_jobs: int) -> int:
    """Threads to compile on: ``EQDSL_COMPILE_WORKERS`` if set, else one per CPU, at most one per job."""
    return max(1, min(positive_int_env("EQDSL_COMPILE_WORKERS", os.cpu_count() or 1), n_jobs))


def compile_jobs(jobs: Iterable[Job], device: torch.device, n_workers: Optional[int] = None) -> float:
    """Compile `jobs` in parallel for `device`; returns the wall seconds.  Never raises for a kernel
    that fails to compile (its launch will)."""
    import triton
    from triton.runtime import _async_compile

    jobs = list(jobs)
    if not jobs:
        return 0.0
    t0 = time.perf_counter()
    on_cuda = torch.device(device).type == "cuda"
    with torch.cuda.device(device) if on_cuda else contextlib.nullcontext():
        if _async_compile.active_mode.get() is not None:  # the caller's own async mode collects them
            _warm(jobs)
        else:
            with ThreadPoolExecutor(n_workers or workers(len(jobs)), thread_name_prefix="eqdsl-compile") as ex:
                with triton.AsyncCompileMode(ex, ignore_errors=True):
                    _warm(jobs)
    return time.perf_counter() - t0


def _warm(jobs: list[Job]) -> None:
    for j in jobs:
        try:
            j.fn.warmup(*j.args, grid=(1,), **j.kwargs)
        except Exception:  # noqa: BLE001 -- the launch recompiles and raises where it is handled
            continue


# -----------------------------------------------------------------------------
# offline: the same jobs compiled for a GPU target on a machine without one
# -----------------------------------------------------------------------------

_POINTER = {torch.float32: "*fp32", torch.float64: "*fp64", torch.int32: "*i32", torch.int64: "*i64"}


def compile_offline(jobs: Iterable[Job], arch: int = 90, n_workers: Optional[int] = None) -> list:
    """Compile `jobs` for CUDA compute capability `arch` without a GPU (Triton lowers to PTX in-process
    and runs the ptxas its wheel ships), on a thread pool; returns ``(job, seconds, CompiledKernel)``
    per job, in order.  Used by ``eqdsl.benchmarks.inspect_kernels`` and by the tests of the job lists."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    def one(job: Job):
        sig, constexprs = {}, {}
        for name, arg in zip(job.fn.arg_names, job.args):
            sig[name] = _POINTER[arg] if isinstance(arg, torch.dtype) else ("i64" if arg >= 2 ** 31 else "i32")
        options = {}
        for name, value in job.kwargs.items():
            if name in job.fn.arg_names:
                sig[name], constexprs[name] = "constexpr", value
            else:
                options[name] = value
        t0 = time.perf_counter()
        k = triton.compile(ASTSource(job.fn, sig, constexprs=constexprs), target=GPUTarget("cuda", arch, 32),
                           options=options)
        return job, time.perf_counter() - t0, k

    jobs = list(jobs)
    with ThreadPoolExecutor(n_workers or workers(len(jobs)), thread_name_prefix="eqdsl-compile") as ex:
        return list(ex.map(one, jobs))
