"""Time solving the equivariant bases of every shipped spec over a matrix group, cold and cached.

    python -m eqdsl.benchmarks.solve_bases

For each spec, two fresh processes share one empty basis cache ($EQDSL_CACHE in a
temporary folder): the first solves everything (cold), the second reads the cache
(warm). Each reports the type check (which solves the basis counts it needs for its
diagnostics) and the construction of the generated module (which solves or loads the
bases themselves), excluding Python start-up and imports.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: its specs/

_CHILD = r"""
import json, sys, time
import torch
from eqdsl.api import load_source
from eqdsl.codegen import generate_source
from eqdsl.compiler import check_file
t0 = time.perf_counter()
result = check_file(sys.argv[1])
t1 = time.perf_counter()
namespace = load_source(generate_source(result))
models = [namespace[m.name]() for m in result.models]
t2 = time.perf_counter()
params = sum(p.numel() for m in models for p in m.parameters())
print(json.dumps({"check": t1 - t0, "build": t2 - t1, "params": params, "group": result.models[0].group}))
"""


def _run(spec: Path, cache: str) -> dict:
    env = {**os.environ, "EQDSL_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", _CHILD, str(spec)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}")
    print(f"{'spec':<16}{'group':<12}{'params':>8}{'cold check':>12}{'cold build':>12}{'warm check':>12}{'warm build':>12}")
    for spec in sorted((ROOT / "specs").glob("*.eq")):
        text = spec.read_text()
        if "group O3" in text or "group SO3" in text:
            continue  # irreps groups: nothing is solved
        with tempfile.TemporaryDirectory() as cache:
            cold = _run(spec, cache)
            warm = _run(spec, cache)
        print(f"{spec.stem:<16}{cold['group']:<12}{cold['params']:>8}{cold['check']:>11.2f}s{cold['build']:>11.2f}s"
              f"{warm['check']:>11.2f}s{warm['build']:>11.2f}s")


if __name__ == "__main__":
    main()
