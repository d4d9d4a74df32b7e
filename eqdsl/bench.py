"""The tensor-product benchmark suite (six NequIP/MACE/DiffDock-style problems) as data, and its runner (`eqc bench`).

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

``--conv`` runs the problems as message-passing convolutions instead (``bench_conv``).

Implementations: eqdsl's Triton kernels and reference, and the anchors e3nn, cuEquivariance and
OpenEquivariance when they import.  Every implementation is given the same random inputs in
eqdsl's layout (e3nn's ``mul_ir``); an adapter converts them once, outside the timed region, to
what the library expects (cuEquivariance: ``ir_mul`` and its own block order).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass(frozen=True)
class Problem:
    id: str
    mode: str     # "uvu" (channelwise) or "uvw" (fully connected)
    in1: str
    in2: str
    out: str      # uvw: the output irreps; uvu: the filter (every allowed path writes its own block)
    shared: bool  # one weight vector for the whole batch instead of one per edge


_NEQUIP = "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e"
_L6 = "16x0e+16x1o+16x2e+16x3o+16x4e+16x5o+16x6e"
_DIFFDOCK = "10x1o+10x1e+48x0e+48x0o"
_FC = "32x0e+32x1o+32x2e"

SUITE = (
    Problem("nequip-toluene", "uvu", _NEQUIP, "0e+1o+2e", _NEQUIP, False),
    Problem("mace-medium", "uvu", "128x0e+128x1o", "0e+1o+2e+3o", "128x0e+128x1o+128x2e", False),
    Problem("mace-large", "uvu", "128x0e+128x1o+128x2e", "0e+1o+2e+3o", "128x0e+128x1o+128x2e+128x3o", False),
    Problem("uvu-L6", "uvu", _L6, "0e+1o+2e+3o+4e+5o+6e", _L6, False),
    Problem("diffdock-L2", "uvw", _DIFFDOCK, "0e+1o+2e", _DIFFDOCK, False),
    Problem("fc-shared-L2", "uvw", _FC, "0e+1o+2e", _FC, True),
)
PROBLEMS = {p.id: p for p in SUITE}

IMPLS = ("eqdsl-triton", "eqdsl-reference", "e3nn", "cuequivariance", "openequivariance")
# the module each implementation needs (None: always there)
_MODULES = {"eqdsl-triton": "triton", "eqdsl-reference": None, "e3nn": "e3nn",
            "cuequivariance": "cuequivariance_torch", "openequivariance": "openequivariance"}
CUDA_ONLY = {"openequivariance"}  # its kernels are JIT-compiled CUDA; it has no CPU path
CHECK_ROWS = 64                   # rows of the verification slice (a multiple of Triton's 16-row blocks)
RTOL = 1e-4                       # float32 against the float64 reference, relative to the largest value


def descriptor(problem: Problem):
    """The eqdsl TensorProductDescriptor of a suite problem (paths, e3nn path weights)."""
    from eqdsl.groups import O3
    from eqdsl.reps import tp
    from eqdsl.reps.irreps import Irreps

    in1, in2, out = (Irreps.parse(s, O3) for s in (problem.in1, problem.in2, problem.out))
    if problem.mode == "uvu":  # one output block per path, kept where its irrep is in the filter
        return tp.describe(O3, in1, in2, "uvu", keep=[m.ir for m in out])
    return tp.describe(O3, in1, in2, "uvw", out=out)


# ---------------------------------------------------------------------------- memory floor

def floor_bytes(desc, batch: int, shared: bool, backward: bool = False) -> int:
    """float32 bytes that must move at least once.

    Forward: read x1, x2 and the weights, write the output.  The backward adds reading x1, x2,
    the weights and the output gradient and writing the three gradients.  Shared weights count
    once, per-edge weights once per row.
    """
    d1, d2, do = desc.irreps_in1.dim, desc.irreps_in2.dim, desc.irreps_out.dim
    w = desc.weight_numel if shared else batch * desc.weight_numel
    n = batch * (d1 + d2 + do) + w
    if backward:
        n += batch * (2 * d1 + 2 * d2 + do) + 2 * w
    return 4 * n


def floor_ms(nbytes: int, bandwidth: float) -> float:
    """Milliseconds to move ``nbytes`` at ``bandwidth`` bytes/s (reads and writes counted)."""
    return nbytes / bandwidth * 1e3


def copy_bandwidth(device: torch.device, nbytes: Optional[int] = None, repeat: int = 10) -> float:
    """Bytes/s of a large device-to-device copy, counting both the read and the write."""
    nbytes = nbytes or (1 << 30 if device.type == "cuda" else 1 << 28)
    src = torch.ones(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    ms = statistics.median(measure(lambda: dst.copy_(src), device, warmup=3, repeat=repeat))
    return 2 * src.numel() * 4 / (ms / 1e3)


# ---------------------------------------------------------------------------- timing

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable, device: torch.device, warmup: int, repeat: int) -> list[float]:
    """Milliseconds of each of ``repeat`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    _sync(device)
    out = []
    for _ in range(repeat):
        if device.type == "cuda":  # events: the GPU's own clock, no host-side launch noise
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def _wall_ms(fn: Callable, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return (time.perf_counter() - t0) * 1e3


# ---------------------------------------------------------------------------- implementations

def _identity3(x1, x2, w):
    return x1, x2, w


@dataclass
class Impl:
    """An implementation as the benchmark calls it.

    ``fn(x1, x2, w)`` is what is timed, on the library's own layout.  ``to_native`` (inputs in
    eqdsl's layout -> the library's) and ``from_native`` (its output -> eqdsl's layout) are
    differentiable torch code run once outside the timing, so that the verification compares
    values and gradients in one layout.  ``exact``: False where the library's convention may differ
    from e3nn's by a constant per output block (then that scale is fitted and reported).
    """
    fn: Callable
    to_native: Callable = _identity3
    from_native: Callable = lambda y: y
    exact: bool = True
    note: str = ""
    report: Optional[Callable] = None  # what the implementation chose for itself (eqdsl-triton: tuning)


def _build_eqdsl(backend: str):
    def build(desc, shared: bool, device: torch.device, tune_candidates: Optional[int] = None) -> Impl:
        if backend == "triton":  # the module that autotunes its launch configuration (on CUDA only)
            from eqdsl.backends.triton import TritonTensorProduct
            mod = TritonTensorProduct(desc, shared, **tuning_options(tune_candidates)).to(device)
            report = lambda: {k: v for k, v in mod.tune_report.items() if k in ("source", "config", "tune_s", "compile_s")}  # noqa: E731
        else:
            from eqdsl.backends.tensor_product import TensorProductLayer
            mod = TensorProductLayer(desc, shared, backend=backend).to(device)
            report = None
        if not shared:
            return Impl(mod, report=report)

        def fn(x1, x2, w):
            # the shared weights are the benchmark's tensor: put it in the parameter slot (a dict write)
            # rather than torch.func.functional_call, which costs ~35 us of Python per call
            mod._parameters["weight"] = w
            return mod(x1, x2)
        return Impl(fn, report=report)
    return build


def tuning_options(tune_candidates: Optional[int]) -> dict:
    """eqdsl-triton's tuning for ``--tune-candidates K``: None tunes over every candidate, 0 not at all."""
    from eqdsl.backends.triton import autotune

    return {"tune": "auto" if tune_candidates != 0 else False,
            "tune_candidates": autotune.CANDIDATES[:tune_candidates] if tune_candidates else None}


def e3nn_instructions(desc) -> list[tuple]:
    """e3nn instructions for the descriptor's paths, in its order (so the weights line up).

    No path weights are passed: e3nn derives them from its defaults (irrep_normalization
    'component', path_normalization 'element'), the convention the descriptor follows, so equal
    outputs check that the two agree.  A channelwise ('uvu') problem where every allowed path
    writes its own block is, in e3nn, an output irreps with one ``mul1 x ir_out`` entry per path
    and the instruction (i1, i2, k, 'uvu', True) writing entry k.
    """
    return [(p.i_in1, p.i_in2, p.i_out, p.mode, p.has_weight) for p in desc.paths]


def _build_e3nn(desc, shared, device):
    from e3nn import o3

    tp = o3.TensorProduct(str(desc.irreps_in1), str(desc.irreps_in2), str(desc.irreps_out),
                          e3nn_instructions(desc), shared_weights=shared, internal_weights=False)
    return Impl(tp.to(device))


def _transpose_blocks(x, blocks, to_ir_mul: bool):
    """mul_ir <-> ir_mul, block by block (``blocks``: eqdsl MulIr items in the order they lie in x)."""
    out, start = [], 0
    for b in blocks:
        shape = (b.mul, b.ir.dim) if to_ir_mul else (b.ir.dim, b.mul)
        out.append(x[:, start:start + b.dim].reshape(-1, *shape).transpose(1, 2).reshape(-1, b.dim))
        start += b.dim
    return torch.cat(out, dim=1)


def _build_cueq(desc, shared, device):
    import cuequivariance as cue
    import cuequivariance_torch as cuet

    # cue.O3's real basis and Clebsch-Gordan tensors equal e3nn's (verify reports "exact"); its
    # O3_e3nn variant differs only in how irreps sort, and takes its tables from e3nn in float32
    def irreps(x):
        return cue.Irreps(cue.O3, str(x))

    kw = dict(layout=cue.ir_mul, shared_weights=shared, internal_weights=False, device=device,
              dtype=torch.float32)
    if device.type != "cuda":
        kw["method"] = "naive"  # its kernels are CUDA; "naive" is its plain-torch path
    note = "ir_mul layout"
    order = list(range(len(desc.irreps_out)))  # order[i]: the eqdsl output block at cuEq's position i
    path_order = list(range(len(desc.paths)))  # the same for the weights' paths
    if all(p.mode == "uvu" for p in desc.paths):
        if any(p.i_out != k for k, p in enumerate(desc.paths)):
            raise ValueError("cuEquivariance's channelwise product writes one block per path")
        m = cuet.ChannelWiseTensorProduct(irreps(desc.irreps_in1), irreps(desc.irreps_in2),
                                          irreps(desc.irreps_out), **kw)
        # it sorts the per-path output blocks by irrep (stable) and permutes the weights with them
        order = path_order = list(irreps(desc.irreps_out).sort().inv)
        note += ", output blocks sorted by irrep"
    elif all(p.mode == "uvw" for p in desc.paths):
        m = cuet.FullyConnectedTensorProduct(irreps(desc.irreps_in1), irreps(desc.irreps_in2),
                                             irreps(desc.irreps_out), **kw)
    else:
        raise ValueError("mixed path modes")
    blocks = [desc.irreps_out[k] for k in order]
    if str(m.irreps_out) != str(irreps("+".join(str(b) for b in blocks))) or m.weight_numel != desc.weight_numel:
        raise ValueError(f"cuEquivariance built {m.irreps_out} ({m.weight_numel} weights), "
                         f"expected the descriptor's paths in order {order}")
    slices = desc.weight_slices()
    inv = [order.index(k) for k in range(len(order))]
    starts = [0]
    for b in blocks:
        starts.append(starts[-1] + b.dim)

    def to_native(x1, x2, w):
        w = torch.cat([w[..., slices[p]] for p in path_order], dim=-1)
        return (_transpose_blocks(x1, desc.irreps_in1, True), _transpose_blocks(x2, desc.irreps_in2, True),
                w.reshape(1, -1) if shared else w)

    def from_native(y):
        y = _transpose_blocks(y, blocks, False)
        return torch.cat([y[:, starts[inv[k]]:starts[inv[k] + 1]] for k in range(len(order))], dim=1)

    return Impl(m, to_native, from_native, exact=False, note=f"{note}, method {m.method if hasattr(m, 'method') else '?'}")


def _build_oeq(desc, shared, device):
    import numpy as np
    import openequivariance as oeq

    if device.type != "cuda":
        raise RuntimeError("OpenEquivariance runs on CUDA devices only")
    prob = oeq.TPProblem(str(desc.irreps_in1), str(desc.irreps_in2), str(desc.irreps_out), e3nn_instructions(desc),
                         shared_weights=shared, internal_weights=False, irrep_dtype=np.float32,
                         weight_dtype=np.float32)
    tp = oeq.TensorProduct(prob, torch_op=True)
    # same instructions and normalization as e3nn; for uvw the weights are laid out in its own order,
    # converted by its own function
    return Impl(tp, lambda x1, x2, w: (x1, x2, tp.reorder_weights_from_e3nn(w, not shared)), exact=False)


BUILDERS = {"eqdsl-triton": _build_eqdsl("triton"), "eqdsl-reference": _build_eqdsl("reference"),
            "e3nn": _build_e3nn, "cuequivariance": _build_cueq, "openequivariance": _build_oeq}


def probe(impls=IMPLS) -> tuple[dict, dict]:
    """(available: name -> version, missing: name -> reason) for the implementations' packages.

    eqdsl-triton is only looked up, not imported: on the CPU, TRITON_INTERPRET must be set before
    triton's first import, which `run` decides.
    """
    found, missing = {}, {}
    for name in impls:
        mod = _MODULES[name]
        if mod is None:
            from eqdsl import __version__
            found[name] = __version__
        elif name == "eqdsl-triton":
            if importlib.util.find_spec("triton") is None:
                missing[name] = "ImportError: No module named 'triton'"
            else:
                from importlib.metadata import version
                found[name] = "triton " + version("triton")
        else:
            try:
                m = importlib.import_module(mod)
                found[name] = getattr(m, "__version__", None) or _dist_version(mod)
            except Exception as err:  # an anchor that fails to import for any reason is "missing"
                missing[name] = f"{type(err).__name__}: {err}"
    return found, missing


def _dist_version(mod: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(mod.replace("_", "-"))
    except PackageNotFoundError:
        return "?"


# ---------------------------------------------------------------------------- verification

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
            second = _second(grads, leaves, [t.to(x.dtype) for t, x in zip(v, leaves)])
            ref_second = _second(ref_grads, ref_leaves, v)
            checks = [_close(a, b) for a, b in zip(second, ref_second)]
            result.update(double_verified=all(ok for ok, _ in checks), double_max_rel_err=max(e for _, e in checks))
        except Exception as err:  # an implementation without double backward still has its other rows
            result["double_error"] = f"{type(err).__name__}: {err}"[:300]
    return result


def _second(grads, leaves, v):
    """d<v, grads>/d(leaves): the second derivatives force training needs (the gradients of -dE/dpos)."""
    out = torch.autograd.grad(grads, leaves, v, allow_unused=True)
    return [torch.zeros_like(x) if d is None else d for d, x in zip(out, leaves)]


# ---------------------------------------------------------------------------- runner

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
        leaves = [t.detach().requires_grad_() for t in native]
        g = torch.randn(inputs[0].shape[0], desc.irreps_out.dim, device=device)
        v = [torch.randn_like(t) for t in leaves]  # where the second derivatives are taken

        def fwd():
            with torch.no_grad():
                impl.fn(*native)

        def fwd_bwd():
            torch.autograd.grad(impl.fn(*leaves), leaves, g)

        def fwd_bwd2():  # force training: the gradients with create_graph, then their gradients
            grads = torch.autograd.grad(impl.fn(*leaves), leaves, g, create_graph=True)
            _second(grads, leaves, v)

        # one-time costs: code generation and JIT compilation (eqdsl-triton, OpenEquivariance)
        r["first_fwd_ms"] = _wall_ms(fwd, device)
        r["first_fwd_bwd_ms"] = _wall_ms(fwd_bwd, device)
        if impl.report is not None:
            r["tuning"] = _jsonable(impl.report())
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


def peak_mb(fn: Callable, device: torch.device) -> Optional[float]:
    """Device memory one call of `fn` allocates at its peak beyond what was allocated before it, in MB
    (the inputs are not counted); None off CUDA, where torch does not track it."""
    if device.type != "cuda":
        return None
    _sync(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    _sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 1e6


def _jsonable(value):
    """Configs and other small objects as JSON-friendly data."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "_asdict"):
        return _jsonable(value._asdict())
    if hasattr(value, "__dict__"):
        return _jsonable(vars(value))
    return str(value)


# ---------------------------------------------------------------------------- command line (`eqc bench`)

def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor()
    try:  # platform.processor() is often empty or just the architecture on Linux
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name or platform.machine()} ({os.cpu_count()} cores, {platform.system()})"


def _select(text: Optional[str], known, what: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()] if text else list(known)
    unknown = [s for s in names if s not in known]
    if unknown:
        raise SystemExit(f"eqc bench: unknown {what} {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def _write(report: dict, args) -> None:
    """Print the report's tables and write what --json / --markdown / --plot ask for."""
    text = format_markdown(report)
    print("\n" + text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    if args.plot:
        print(plot(report, args.plot))


def merge_saved(args) -> int:
    """``eqc bench --merge A.json,B.json``: the parts of one run (e.g. one problem per call) as one report."""
    from . import bench_report

    given = [f"--{k.replace('_', '-')}" for k in ("problems", "impls", "batch", "device", "nodes", "check_rows",
                                                  "tune_candidates", "threads")
             if getattr(args, k, None) is not None]
    given += [f"--{k.replace('_', '-')}" for k in ("conv", "no_double", "cold_cache") if getattr(args, k, False)]
    if given:
        raise SystemExit(f"eqc bench: --merge renders saved reports and runs nothing; {', '.join(given)} "
                         "belong to a run")
    paths = [p.strip() for p in args.merge.split(",") if p.strip()]
    try:
        report = bench_report.merge([bench_report.load(p) for p in paths], paths, [p.id for p in SUITE])
    except bench_report.ReportError as err:
        raise SystemExit(f"eqc bench --merge: {err}") from None
    _write(report, args)
    return 0


def run(args) -> int:
    if getattr(args, "merge", None):
        return merge_saved(args)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("eqc bench: --device cuda, but torch sees no CUDA device")
    cpu = device.type == "cpu"
    batch = args.batch or (2000 if cpu else 50000)
    check_rows = getattr(args, "check_rows", None)
    check_rows = CHECK_ROWS if check_rows is None else check_rows
    if check_rows < 0:
        raise SystemExit("eqc bench: --check-rows must be >= 0 (0: the whole batch)")
    problems = [PROBLEMS[p] for p in _select(args.problems, PROBLEMS, "problem")]
    explicit = args.impls is not None
    wanted = _select(args.impls, IMPLS, "implementation")
    notes = []
    if cpu:
        notes.append(f"CPU run (batch {batch}): these are not the suite's numbers, which are CUDA at batch 50,000")
        if "eqdsl-triton" in wanted and not explicit:
            wanted.remove("eqdsl-triton")
            notes.append("eqdsl-triton left out: on the CPU it runs in Triton's interpreter, far too slow "
                         "(name it in --impls to run it anyway)")
        elif "eqdsl-triton" in wanted:
            # must be set before triton's first import in this process (see backends/triton/README.md)
            os.environ["TRITON_INTERPRET"] = "1"
            notes.append("eqdsl-triton runs in Triton's interpreter (TRITON_INTERPRET=1): its times are not speed")
    if args.cold_cache:  # first-call times then include code generation and compilation
        import tempfile
        root = tempfile.mkdtemp(prefix="eqdsl-bench-cache-")
        os.environ["EQDSL_CACHE"] = root
        os.environ["TRITON_CACHE_DIR"] = os.path.join(root, "triton-binaries")
        notes.append(f"cold caches: EQDSL_CACHE and TRITON_CACHE_DIR under {root}")
    if args.threads:
        torch.set_num_threads(args.threads)
    found, missing = probe(wanted)
    impls = [n for n in wanted if n in found]
    for name in [n for n in impls if cpu and n in CUDA_ONLY and not explicit]:
        impls.remove(name)
        notes.append(f"{name} left out: it runs on CUDA only")
    # TF32 would make e3nn's (and any matmul-based) float32 results both faster and less exact
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    bandwidth = copy_bandwidth(device)
    meta = {"device": _device_name(device), "device_type": device.type, "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "threads": torch.get_num_threads(), "batch": batch, "dtype": "float32", "tf32": False,
            "warmup": args.warmup, "repeat": args.repeat,
            "timer": "CUDA events" if device.type == "cuda" else "time.perf_counter",
            "copy_bandwidth_GBps": bandwidth / 1e9, "impls": impls, "versions": found, "missing": missing,
            "notes": notes, "check_rows": min(batch, check_rows or batch), "rtol": RTOL}
    print(f"eqc bench: {meta['device']}, batch {batch}, {', '.join(impls) or 'no implementation'}", flush=True)
    double = not getattr(args, "no_double", False)
    tune_candidates = getattr(args, "tune_candidates", None)
    if tune_candidates is not None and tune_candidates < 0:
        raise SystemExit("eqc bench: --tune-candidates must be >= 0")
    if tune_candidates is not None:
        notes.append("eqdsl-triton: " + ("launch configuration not tuned (defaults)" if tune_candidates == 0 else
                                         f"tuned over the first {tune_candidates} autotuning candidates only"))
    meta["double_backward"] = double
    conv = getattr(args, "conv", False)
    if conv:
        from . import bench_conv
        nodes = getattr(args, "nodes", None) or max(2, batch // bench_conv.DEGREE)
        if nodes < 2:
            raise SystemExit("eqc bench: --nodes must be at least 2")
        meta["conv"] = {"nodes": nodes, "edges": batch}
        if getattr(args, "check_rows", None) is not None:
            notes.append("--check-rows has no effect with --conv: convolutions are verified on their own small graph")
        entries = [bench_conv.run_problem(p, impls, device, batch, nodes, args.warmup, args.repeat, bandwidth,
                                          double=double, tune_candidates=tune_candidates) for p in problems]
    else:
        entries = [run_problem(p, impls, device, batch, args.warmup, args.repeat, bandwidth, double=double,
                               tune_candidates=tune_candidates, check_rows=check_rows) for p in problems]
    _write({"meta": meta, "problems": entries}, args)
    return 0


def _header(meta: dict) -> str:
    anchors = "; ".join([f"{k} {v}" for k, v in meta["versions"].items()] +
                        [f"{k} MISSING ({v})" for k, v in meta["missing"].items()])
    conv = meta.get("conv")
    size = (f"message-passing convolution over {conv['edges']} edges into {conv['nodes']} nodes (random "
            "symmetric graph, unsorted)" if conv else f"batch {meta['batch']}")
    checked = "a graph of 8 nodes and 48 edges" if conv else f"{meta['check_rows']} rows"
    lines = [
        f"- device: {meta['device']}; torch {meta['torch']}" + (f", CUDA {meta['cuda']}" if meta["cuda"] else "")
        + f"; {meta['threads']} torch threads",
        f"- implementations: {anchors or 'none'}",
        f"- {size}, float32, TF32 off, median of {meta['repeat']} after {meta['warmup']} warm-ups "
        f"({meta['timer']}); verified: values and x1/x2/weight gradients on {checked} against "
        f"the float64 eqdsl reference, max relative error <= {meta['rtol']}"
        + ("; 2nd: the second derivatives d<v, grad>/d(x1, x2, w) likewise; fwd+bwd+2nd times the forward, the "
           "gradients with create_graph and their gradients (force training)" if meta.get("double_backward") else ""),
        f"- copy bandwidth {meta['copy_bandwidth_GBps']:.0f} GB/s (read + write); floor = bytes that must move / "
        "bandwidth (fwd: inputs, weights, output" + ("; node features in and out, edge features, weights, both "
                                                     "indices; no per-edge messages" if conv else "")
        + "; fwd+bwd adds the backward's reads and writes)",
    ] + [f"- note: {n}" for n in meta["notes"]]
    return "\n".join(lines)


def _ms(v) -> str:
    return "" if v is None else f"{v:.3g}"


def format_markdown(report: dict) -> str:
    rows = ["| problem | impl | verified | fwd ms | fwd+bwd ms | fwd+bwd+2nd ms | first fwd ms | first fwd+bwd ms "
            "| fwd+bwd peak MB | note |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for e in report["problems"]:
        rows.append(f"| {e['id']} | floor | | {_ms(e['floor_ms'])} | {_ms(e['floor_fwd_bwd_ms'])} | | | | | "
                    f"{e['floor_bytes'] / 1e6:.1f} / {e['floor_fwd_bwd_bytes'] / 1e6:.1f} MB |")
        for r in e["results"]:
            if "verified" in r:
                ok = "yes" if r["verified"] else "NO"
                ver = f"{ok} ({r['check']}, {r['max_rel_err']:.1e})"
            else:
                ver = "NO"
            if "double_verified" in r:
                ver += f"; 2nd: {'yes' if r['double_verified'] else 'NO'} ({r['double_max_rel_err']:.1e})"
            note = r.get("error") or r.get("note", "")
            if "double_error" in r:
                note += f" 2nd derivatives: {r['double_error']}"
            if "scales" in r:
                note += f" scales {r['scales']}"
            if "tuning" in r:
                t = r["tuning"]
                note += f" launch config {t.get('config')} ({t.get('source')}"
                note += f", tuned in {t['tune_s']:.1f} s)" if isinstance(t.get("tune_s"), (int, float)) else ")"
            rows.append(f"| {e['id']} | {r['impl']} | {ver} | {_ms(r.get('fwd_ms'))} | {_ms(r.get('fwd_bwd_ms'))} | "
                        f"{_ms(r.get('fwd_bwd2_ms'))} | {_ms(r.get('first_fwd_ms'))} | {_ms(r.get('first_fwd_bwd_ms'))} | "
                        f"{_ms(r.get('fwd_bwd_peak_mb'))} | {note.replace('|', '/')} |")
    from .bench_report import format_summary

    title = "convolution" if report["meta"].get("conv") else "tensor-product"
    summary = format_summary(report)
    return (f"# eqdsl {title} benchmark\n\n" + _header(report["meta"]) + "\n\n" + "\n".join(rows) + "\n"
            + ("\n" + summary if summary else ""))


def plot(report: dict, path: str) -> str:
    """One log-scale bar chart per problem: fwd and fwd+bwd per implementation, floors as lines."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "note: matplotlib is not installed; no plot written"
    entries = report["problems"]
    cols = min(3, len(entries)) or 1
    rows = -(-len(entries) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, e in zip(axes.flat, entries):
        res = [r for r in e["results"] if r.get("fwd_ms") is not None]
        xs = range(len(res))
        ax.bar([x - 0.27 for x in xs], [r["fwd_ms"] for r in res], 0.27, label="fwd")
        ax.bar(list(xs), [r.get("fwd_bwd_ms") or 0 for r in res], 0.27, label="fwd+bwd")
        ax.bar([x + 0.27 for x in xs], [r.get("fwd_bwd2_ms") or 0 for r in res], 0.27, label="fwd+bwd+2nd")
        ax.axhline(e["floor_ms"], color="C0", ls="--", lw=1, label="floor fwd")
        ax.axhline(e["floor_fwd_bwd_ms"], color="C1", ls="--", lw=1, label="floor fwd+bwd")
        ax.set_xticks(list(xs), [r["impl"] + ("" if r.get("verified") else " (!)") for r in res],
                      rotation=30, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("ms")
        ax.set_title(e["id"])
    for ax in list(axes.flat)[len(entries):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", fontsize=7, ncols=4)
    m = report["meta"]
    size = f"conv, {m['conv']['edges']} edges, {m['conv']['nodes']} nodes" if m.get("conv") else f"batch {m['batch']}"
    fig.suptitle(f"{m['device']}, {size}, float32 (unverified results marked (!))", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot written to {path}"
