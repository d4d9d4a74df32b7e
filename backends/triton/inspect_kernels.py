"""Compile the generated kernels for a GPU target without a GPU, and report their static resources.

    python -m eqdsl.backends.triton.inspect_kernels [--arch 90] [--dtype float32] [--block-b 32] [problem ...]

Triton lowers a kernel to PTX in-process and its wheel ships ``ptxas``, so the
whole pipeline up to the cubin runs on a machine without a GPU.  For each
problem of the benchmark suite (``eqdsl/bench.py``; or the ones named) this prints
the generated source size, the compile time of each kernel and the cubin's
resource usage from ``cuobjdump -res-usage`` (registers per thread, stack
bytes: a nonzero stack is usually register spilling).  It measures nothing
about speed: that needs the GPU.
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
    from eqdsl import bench

    p = bench.PROBLEMS[problem]
    return bench.descriptor(p), "shared" if p.shared else "row"


def _tool(name: str) -> str:
    """A CUDA binary shipped in Triton's wheel (cuobjdump, nvdisasm, ptxas)."""
    import triton
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)


def inspect(problem: str, arch: int = 90, dtype: str = "float32", block_b: int = 16, block_c: int = 16,
            num_warps: int = 4, num_stages: int = 3, targets=("g", "x1", "x2", "w")):
    os.environ.pop("TRITON_INTERPRET", None)  # compiled kernels, not interpreted ones
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from . import codegen

    desc, weights = descriptor(problem)
    key = codegen.KernelKey(desc, dtype, weights, block_c)
    mod = codegen.load(key)
    src_lines = codegen.source_path(key).read_text().count("\n")
    ptr = "*fp32" if dtype == "float32" else "*fp64"
    rows = []
    for target in targets:
        for fname, _ in mod.KERNELS[f"tp_target_{target}"]:
            fn = getattr(mod, fname)
            sig = {n: ptr for n in fn.arg_names if n not in ("N", "BLOCK_B")}
            sig.update({"N": "i32", "BLOCK_B": "constexpr"})
            t0 = time.perf_counter()
            k = triton.compile(ASTSource(fn, sig, constexprs={"BLOCK_B": block_b}),
                               target=GPUTarget("cuda", arch, 32),
                               options={"num_warps": num_warps, "num_stages": num_stages})
            dt = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as tmp:
                cubin = os.path.join(tmp, "k.cubin")
                with open(cubin, "wb") as f:
                    f.write(k.asm["cubin"])
                r = subprocess.run([_tool("cuobjdump"), "-res-usage", cubin], capture_output=True, text=True)
            use = dict(re.findall(r"(REG|STACK|LOCAL|SHARED):(\d+)", r.stdout))
            rows.append((fname.replace("tp_target_", ""), dt, use.get("REG"), use.get("STACK"), use.get("LOCAL"),
                         k.metadata.num_warps))
    return desc, src_lines, rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from eqdsl import bench
    ap.add_argument("problems", nargs="*", default=list(bench.PROBLEMS))
    ap.add_argument("--arch", type=int, default=90)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--block-b", type=int, default=16)
    ap.add_argument("--block-c", type=int, default=16)
    ap.add_argument("--num-warps", type=int, default=4)
    ap.add_argument("--num-stages", type=int, default=3)
    ap.add_argument("--targets", default="g,x1,x2,w", help="comma-separated kernels: g (forward), x1, x2, w")
    args = ap.parse_args(argv)
    print(f"{'problem':16} {'paths':>5} {'lines':>6} {'kernel':>8} {'compile_s':>9} {'regs':>5} "
          f"{'stack':>6} {'local':>6} {'warps':>5}")
    for p in args.problems:
        desc, lines, rows = inspect(p, args.arch, args.dtype, args.block_b, args.block_c, args.num_warps,
                                    args.num_stages, tuple(args.targets.split(",")))
        for target, dt, regs, stack, local, warps in rows:
            print(f"{p:16} {len(desc.paths):5d} {lines:6d} {target:>8} {dt:9.1f} {regs!s:>5} {stack!s:>6} "
                  f"{local!s:>6} {warps:5d}", flush=True)


if __name__ == "__main__":
    main()
