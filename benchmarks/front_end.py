"""Time the front end (load, parse, type-check, verify the IR) and code generation on every shipped spec.

    python -m eqdsl.benchmarks.front_end [--repeat 20]

Reports the first call in this process (including building the LALR parser) and the
median of the following calls, per spec.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from eqdsl.codegen import generate_source
from eqdsl.compiler import check_file

ROOT = Path(__file__).resolve().parent.parent  # the repository: its specs/


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m eqdsl.benchmarks.front_end", description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"{'spec':<16}{'nodes':>7}{'first (ms)':>12}{'check (ms)':>12}{'codegen (ms)':>14}")
    for spec in sorted((ROOT / "specs").glob("*.eq")):
        t0 = time.perf_counter()
        result = check_file(spec, verify_ir=True)
        first = time.perf_counter() - t0
        checks, gens = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = check_file(spec, verify_ir=True)
            t1 = time.perf_counter()
            generate_source(result)
            checks.append(t1 - t0)
            gens.append(time.perf_counter() - t1)
        nodes = sum(m.graph.number_of_nodes() for m in result.models)
        print(f"{spec.stem:<16}{nodes:>7}{first * 1e3:>12.1f}{statistics.median(checks) * 1e3:>12.1f}"
              f"{statistics.median(gens) * 1e3:>14.1f}")


if __name__ == "__main__":
    main()
