"""One problem, every implementation: built, timed on its first calls, verified, then timed in steady state.

For each problem and implementation this measures, in float32 with TF32 off:

* the first forward and the first forward+backward call at full batch (code generation and JIT
  compilation for eqdsl-triton and OpenEquivariance; the rest is one-time setup);
* steady state: median of ``repeat`` calls after ``warmup`` calls, forward alone (no autograd)
  forward+backward (gradients for x1, x2 and the weights) and, unless ``--no-double``,
  forward+backward+second derivatives (the gradients with ``create_graph``, then the gradients
  of <v, gradients>: what training on forces does), CUDA events on a GPU,
  ``time.perf_counter`` on the CPU (with the thread count torch has);
* before the steady-state timing, the values, the three gradients and the second derivatives
  on a small slice against the eqdsl reference in float64 ("verified"; an implementation
  without second derivatives keeps its other rows and says so);
* on CUDA, the memory a forward+backward allocates at its peak beyond its inputs;
* the memory floor: the bytes that must move (inputs, weights, outputs; for fwd+bwd also the
  backward's reads and writes) divided by the device's measured copy bandwidth.
"""
from __future__ import annotations

import statistics
from typing import Optional

import torch

from .registry import BUILDERS
from .suite import CHECK_ROWS, Problem, descriptor, floor_bytes, floor_ms
from .timing import measure, peak_mb, wall_ms
from .verify import second_derivatives, verify


def run_problem(problem: Problem, impls, device: torch.device, batch: int, warmup: int, repeat: int,
                bandwidth: float, log=print, double: bool = True, tune_candidates: Optional[int] = None,
                check_rows: int = CHECK_ROWS) -> dict:
    desc = descriptor(problem)
    gen = torch.Generator(device=device).manual_seed(0)
    x1 = torch.randn(batch, desc.irreps_in1.dim, device=device, generator=gen)
    x2 = torch.randn(batch, desc.irreps_in2.dim, device=device, generator=gen)
    w = torch.randn(*(() if problem.shared else (batch,)), desc.weight_numel, device=device, generator=gen)
    n = min(batch, check_rows or batch)
    sl = (x1[:n], x2[:n], w if problem.shared else w[:n])
    ref_fn = BUILDERS["eqdsl-reference"](desc, problem.shared, device).fn
    fwd_b, bwd_b = floor_bytes(desc, batch, problem.shared), floor_bytes(desc, batch, problem.shared, True)
    entry = {"id": problem.id, "mode": problem.mode, "in1": problem.in1, "in2": problem.in2, "out": problem.out,
             "shared_weights": problem.shared, "paths": len(desc.paths), "dims": [desc.irreps_in1.dim,
             desc.irreps_in2.dim, desc.irreps_out.dim], "weight_numel": desc.weight_numel,
             "floor_bytes": fwd_b, "floor_fwd_bwd_bytes": bwd_b, "floor_ms": floor_ms(fwd_b, bandwidth),
             "floor_fwd_bwd_ms": floor_ms(bwd_b, bandwidth), "results": []}
    for name in impls:
        opts = {"tune_candidates": tune_candidates} if name == "eqdsl-triton" else {}

        def build(name=name, opts=opts):
            impl = BUILDERS[name](desc, problem.shared, device, **opts)
            return impl, impl  # the same module is verified on a slice of the rows
        r = run_impl(name, build, desc, device, (x1, x2, w), (ref_fn, sl), warmup, repeat, double)
        entry["results"].append(r)
        log_result(log, problem.id, r)
        if device.type == "cuda":  # the library's buffers went with run_impl's frame
            torch.cuda.empty_cache()
    return entry


def log_result(log, problem_id: str, r: dict) -> None:
    log(f"  {problem_id} / {r['impl']}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                    for k, v in r.items() if k not in ("impl", "scales") and v != ""),
        flush=True)


def workloads(fn, native: list, out_dim: int) -> dict:
    """The three timed workloads of ``fn`` on its `native` inputs: "fwd" (no autograd), "fwd_bwd" (the
    gradients of all inputs for a random output gradient) and "fwd_bwd2" (those gradients with
    ``create_graph``, then the gradients of <v, gradients>: what training on forces does)."""
    leaves = [t.detach().requires_grad_() for t in native]
    g = torch.randn(native[0].shape[0], out_dim, device=native[0].device)
    v = [torch.randn_like(t) for t in leaves]  # where the second derivatives are taken

    def fwd():
        with torch.no_grad():
            fn(*native)

    def fwd_bwd():
        torch.autograd.grad(fn(*leaves), leaves, g)

    def fwd_bwd2():
        grads = torch.autograd.grad(fn(*leaves), leaves, g, create_graph=True)
        second_derivatives(grads, leaves, v)
    return {"fwd": fwd, "fwd_bwd": fwd_bwd, "fwd_bwd2": fwd_bwd2}


def run_impl(name, build, desc, device, inputs, check, warmup, repeat, double=True) -> dict:
    """Verify and time one implementation: ``build() -> (impl, check_impl)``, the first taking `inputs`
    (x1, x2, w), the second verified against ``check = (ref_fn, check_inputs)``; the output gradient has
    as many rows as ``inputs[0]``."""
    r = {"impl": name}
    ref_fn, check_slice = check
    try:
        impl, check_impl = build()
        r["note"] = impl.note
        native = [t.detach() for t in impl.to_native(*inputs)]
        fwd, fwd_bwd, fwd_bwd2 = workloads(impl.fn, native, desc.irreps_out.dim).values()

        # one-time costs: code generation and JIT compilation (eqdsl-triton, OpenEquivariance)
        r["first_fwd_ms"] = wall_ms(fwd, device)
        r["first_fwd_bwd_ms"] = wall_ms(fwd_bwd, device)
        if impl.report is not None:
            r["tuning"] = jsonable(impl.report())
        r.update(verify(check_impl, ref_fn, *check_slice, desc.irreps_out, double))
        r["fwd_ms"] = statistics.median(measure(fwd, device, warmup, repeat))
        r["fwd_bwd_ms"] = statistics.median(measure(fwd_bwd, device, warmup, repeat))
        r["fwd_bwd_peak_mb"] = peak_mb(fwd_bwd, device)
    except Exception as err:  # one failing implementation must not stop the suite
        r["error"] = f"{type(err).__name__}: {err}"[:500]
        return r
    if double and "double_error" not in r:
        try:
            r["fwd_bwd2_ms"] = statistics.median(measure(fwd_bwd2, device, warmup, repeat))
        except Exception as err:  # e.g. out of memory: the first-order rows stand
            r["double_error"] = f"{type(err).__name__}: {err}"[:300]
    return r


def jsonable(value):
    """Configs and other small objects as JSON-friendly data."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "_asdict"):
        return jsonable(value._asdict())
    if hasattr(value, "__dict__"):
        return jsonable(vars(value))
    return str(value)
