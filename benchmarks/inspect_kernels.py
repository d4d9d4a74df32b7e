"""Compile the generated kernels for a GPU target without a GPU, and report their static resources.

    python -m eqdsl.benchmarks.inspect_kernels [--arch 90] [--dtype float32] [--block-b 32] [--workers 8] [problem ...]
    python -m eqdsl.benchmarks.inspect_kernels --contraction [--selectors 3] [--dtype float32]

Triton lowers a kernel to PTX in-process and its wheel ships ``ptxas``, so the
whole pipeline up to the cubin runs on a machine without a GPU.  For each
problem of the benchmark suite (``benchmarks/suite.py``; or the ones named) this prints
the generated source size, the compile time of each kernel and the cubin's
resource usage from ``cuobjdump -res-usage`` (registers per thread, stack bytes: a nonzero
stack is usually register spilling), and the theoretical occupancy those resources allow on sm_90
(resident warps per SM over 64).  The kernels are the runtime's own job lists
(``precompile.plan_jobs``), compiled on a thread pool as the runtime compiles them ahead, so
the per-kernel seconds overlap; the batch's wall time is printed last.  It measures nothing
about speed: that needs the GPU.

``--contraction`` does the same for the symmetric contraction of specs/mace.eq's first layer
(16x0e+16x1o+16x2e+16x3o -> 16x0e+16x1o+16x2e, correlation 3, one weight set per element of
``--selectors``): every kernel a training step on forces launches (``contraction.WORKLOADS``).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time

def descriptor(problem: str):
    """The suite problem's descriptor, exactly as `eqc bench` runs it (uvu: one output block per path)."""
    from . import suite

    p = suite.PROBLEMS[problem]
    return suite.descriptor(p), "shared" if p.shared else "row"


def _tool(name: str) -> str:
    """A CUDA binary shipped in Triton's wheel (cuobjdump, nvdisasm, ptxas)."""
    import triton
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)


# sm_90 (H100, H200) per-SM limits, for the theoretical occupancy of a kernel from its static resources
SM90 = {"regs": 65536, "warps": 64, "blocks": 32, "shared": 228 * 1024, "reg_unit": 256}


def occupancy(regs: int, warps: int, shared: int = 0, sm: dict = SM90) -> float:
    """Resident warps per SM over the maximum, as registers, shared memory and the block limit allow
    (registers are allocated per warp in units of ``reg_unit``)."""
    per_warp = -(-max(regs, 1) * 32 // sm["reg_unit"]) * sm["reg_unit"]
    blocks = min(sm["blocks"], sm["regs"] // (per_warp * warps), sm["warps"] // warps,
                 sm["shared"] // shared if shared else sm["blocks"])
    return blocks * warps / sm["warps"]


def inspect(problem: str, arch: int = 90, dtype: str = "float32", block_b: int = 16, block_c: int = 16,
            num_warps: int = 4, num_stages: int = 3, targets=("g", "x1", "x2", "w"), n_workers=None):
    """Compile the problem's kernels (the runtime's own job lists, ``precompile.plan_jobs``) for `arch`,
    in parallel; returns (descriptor, source lines, per-kernel rows, wall seconds of the batch, threads)."""
    os.environ.pop("TRITON_INTERPRET", None)  # compiled kernels, not interpreted ones
    import torch

    from ..backends.triton import kernel_cache, precompile
    from ..backends.triton.per_row import _plan

    desc, weights = descriptor(problem)
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    plan = _plan(desc, torch_dtype, weights, block_b, block_c, num_warps, num_stages)
    plan.module  # generates (or loads) the source
    src_lines = kernel_cache.source_path(plan.key).read_text().count("\n")
    all_jobs = precompile.plan_jobs(plan, "forward_backward", torch_dtype, 1)
    jobs = [j for t in targets for j in all_jobs if j.name.startswith(f"tp_target_{t}__")]
    n_workers = n_workers or precompile.workers(len(jobs))
    t0 = time.perf_counter()
    compiled = precompile.compile_offline(jobs, arch, n_workers)
    wall = time.perf_counter() - t0
    rows = [_resources(job.name.replace("tp_target_", ""), dt, k) for job, dt, k in compiled]
    return desc, src_lines, rows, wall, n_workers


MACE_CONTRACTION = ("16x0e+16x1o+16x2e+16x3o", "16x0e+16x1o+16x2e", 3)


def inspect_contraction(selectors: int = 3, arch: int = 90, dtype: str = "float32", n_workers=None):
    """Compile the MACE-sized contraction's forces-training kernels for `arch`; returns (rows as in
    ``inspect``, wall seconds, threads)."""
    os.environ.pop("TRITON_INTERPRET", None)
    import torch

    from ..backends.layers import SymmetricContractionLayer
    from ..backends.triton import contraction, precompile
    from ..groups.o3 import O3
    from ..reps.irreps import Irreps

    irreps_in, irreps_out, correlation = MACE_CONTRACTION
    layer = SymmetricContractionLayer(O3, Irreps.parse(irreps_in, O3), Irreps.parse(irreps_out, O3), correlation,
                                      selectors)
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    plan = contraction._Plan(contraction._form(layer), dtype)
    jobs = plan.jobs("forces_training", torch_dtype, 1) + (plan.jobs("selector", torch_dtype, 1) if selectors else [])
    n_workers = n_workers or precompile.workers(len(jobs))
    t0 = time.perf_counter()
    compiled = precompile.compile_offline(jobs, arch, n_workers)
    return [_resources(job.name, dt, k) for job, dt, k in compiled], time.perf_counter() - t0, n_workers


def _resources(name: str, seconds: float, k) -> tuple:
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        with open(cubin, "wb") as f:
            f.write(k.asm["cubin"])
        r = subprocess.run([_tool("cuobjdump"), "-res-usage", cubin], capture_output=True, text=True)
    use = dict(re.findall(r"(REG|STACK|LOCAL|SHARED):(\d+)", r.stdout))
    regs, smem = int(use.get("REG", 0)), int(use.get("SHARED", 0))
    return (name, seconds, use.get("REG"), use.get("STACK"), use.get("LOCAL"), k.metadata.num_warps,
            occupancy(regs, k.metadata.num_warps, smem))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from . import suite
    ap.add_argument("problems", nargs="*", default=list(suite.PROBLEMS))
    ap.add_argument("--arch", type=int, default=90)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--block-b", type=int, default=16)
    ap.add_argument("--block-c", type=int, default=16)
    ap.add_argument("--num-warps", type=int, default=4)
    ap.add_argument("--num-stages", type=int, default=3)
    ap.add_argument("--targets", default="g,x1,x2,w", help="comma-separated kernels: g (forward), x1, x2, w")
    ap.add_argument("--workers", type=int, default=None,
                    help="compile threads (default: EQDSL_COMPILE_WORKERS, else one per CPU)")
    ap.add_argument("--contraction", action="store_true",
                    help="the symmetric contraction of specs/mace.eq's first layer instead of the suite's problems")
    ap.add_argument("--selectors", type=int, default=3, help="--contraction: weight sets (elements)")
    args = ap.parse_args(argv)
    if args.contraction:
        rows, wall, threads = inspect_contraction(args.selectors, args.arch, args.dtype, args.workers)
        print(f"{'kernel':14} {'compile_s':>9} {'regs':>5} {'stack':>6} {'local':>6} {'warps':>5} {'occupancy':>9}")
        for name, dt, regs, stack, local, warps, occ in rows:
            print(f"{name:14} {dt:9.1f} {regs!s:>5} {stack!s:>6} {local!s:>6} {warps:5d} {occ:9.0%}", flush=True)
        print(f"all {len(rows)} kernels compiled in {wall:.1f} s wall on {threads} threads")
        return
    print(f"{'problem':16} {'paths':>5} {'lines':>6} {'kernel':>8} {'compile_s':>9} {'regs':>5} "
          f"{'stack':>6} {'local':>6} {'warps':>5} {'occupancy':>9}")
    for p in args.problems:
        desc, lines, rows, wall, threads = inspect(p, args.arch, args.dtype, args.block_b, args.block_c, args.num_warps,
                                          args.num_stages, tuple(args.targets.split(",")), args.workers)
        for target, dt, regs, stack, local, warps, occ in rows:
            print(f"{p:16} {len(desc.paths):5d} {lines:6d} {target:>8} {dt:9.1f} {regs!s:>5} {stack!s:>6} "
                  f"{local!s:>6} {warps:5d} {occ:9.0%}", flush=True)
        print(f"{p:16} all {len(rows)} kernels compiled in {wall:.1f} s wall on {threads} threads", flush=True)


if __name__ == "__main__":
    main()
