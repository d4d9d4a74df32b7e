"""What the input checks of generated modules cost: forward and forward+backward with and without them.

    python -m eqdsl.benchmarks.input_checks [--specs nequip mace] [--nodes 128] [--graphs 4] [--rounds 30]

Each spec is compiled, one model built (float32, the reference backend on this machine's CPU or
the default backend on CUDA), and a random batch of ``--graphs`` graphs with ``--nodes`` atoms in
all made (every pair within a graph an edge with probability 0.7).  Timing is interleaved: each
round times a few calls with ``check_inputs`` on and the same number with it off, the order
alternating between rounds, so that drift of the machine falls on both; the minimum over rounds
of the mean call is reported for each, and as the overhead the median over rounds of the ratio of
the checked to the unchecked call (paired within a round, so less noisy than the two minima).  forward+backward differentiates the sum
of the outputs with respect to the positions (the forces of a potential).  Since the difference of
two such timings is at the level of the machine's noise, the checks are also timed alone: the call
``rt.check_inputs(...)`` exactly as the generated forward() makes it, recorded once and repeated
(``checks alone``, with its share of the unchecked forward).
"""
from __future__ import annotations

import argparse
import platform
import re
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from eqdsl.api import compile_file
from eqdsl.backends import reference as rt  # what generated modules call the checks through
from eqdsl.testing import random_sample

from .timing import measure

ROOT = Path(__file__).resolve().parent.parent  # the repository: its specs/


def _call(model, sample, backward: bool):
    def run():
        inputs = dict(sample.inputs)
        if backward:
            inputs = {k: (v.detach().requires_grad_(True) if k == _positions(model) else v) for k, v in inputs.items()}
        out = model(**inputs, **sample.kwargs)
        if backward:
            total = sum(v.sum() for v in out.values())
            total.backward()
    return run


def _positions(model) -> str:
    """The input forces are taken against: the positions, or the first feature input of a model without."""
    floats = [(name, kind) for name, kind, *_ in model.INPUTS if kind != "graph"]
    return next((name for name, kind in floats if kind == "point"), floats[0][0])


def checks_alone_ms(model, sample, repeat: int = 2000) -> float:
    """Milliseconds of one ``rt.check_inputs`` call with the arguments the model's forward() passes."""
    recorded = []
    original = rt.check_inputs
    rt.check_inputs = lambda *args, **kwargs: recorded.append((args, kwargs))
    try:
        model(**sample.inputs, **sample.kwargs)
    finally:
        rt.check_inputs = original
    (args, kwargs), = recorded
    for _ in range(repeat // 10):
        original(*args, **kwargs)
    t0 = time.perf_counter()
    for _ in range(repeat):
        original(*args, **kwargs)
    return (time.perf_counter() - t0) / repeat * 1e3


def time_spec(spec: Path, nodes: int, graphs: int, rounds: int, calls: int, device: torch.device) -> list[tuple]:
    cls = compile_file(spec).model_class()
    torch.manual_seed(0)
    model = cls().to(device=device, dtype=torch.float32)
    sample = random_sample(cls, np.random.default_rng(0), num_nodes=nodes, num_graphs=graphs, dtype=torch.float32)
    sample.inputs = {k: v.to(device) for k, v in sample.inputs.items()}
    sample.kwargs = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in sample.kwargs.items()}
    rows = []
    alone = checks_alone_ms(model, sample)
    for backward in (False, True):
        run = _call(model, sample, backward)
        best = {True: float("inf"), False: float("inf")}
        ratios = []
        for r in range(rounds):
            mean = {}
            for checked in ((True, False) if r % 2 else (False, True)):  # ABBA: neither setting always first
                model.check_inputs = checked
                times = measure(run, device, warmup=1, repeat=calls)
                mean[checked] = sum(times) / len(times)
                best[checked] = min(best[checked], mean[checked])
            ratios.append(mean[True] / mean[False])
        rows.append((spec.stem, "forward+backward" if backward else "forward", sample.num_edges,
                     best[True], best[False], 100.0 * (statistics.median(ratios) - 1.0), alone,
                     100.0 * alone / best[False]))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m eqdsl.benchmarks.input_checks", description=__doc__.splitlines()[0])
    ap.add_argument("--specs", nargs="+", default=["nequip", "mace"], help="names of shipped specs")
    ap.add_argument("--nodes", type=int, default=128)
    ap.add_argument("--graphs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--calls", type=int, default=3, help="calls per round and setting")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    print(f"machine: {name}; torch {torch.__version__}; {args.nodes} atoms in {args.graphs} graphs, float32")
    print(f"{'spec':<10}{'call':<18}{'edges':>7}{'checked (ms)':>14}{'unchecked (ms)':>16}{'overhead':>10}"
          f"{'checks alone (ms)':>19}{'share':>8}")
    for spec_name in args.specs:
        spec = ROOT / "specs" / f"{spec_name}.eq"
        if not re.fullmatch(r"[A-Za-z0-9_]+", spec_name) or not spec.is_file():
            raise SystemExit(f"error: no shipped spec named {spec_name!r} (specs/*.eq)")
        for row in time_spec(spec, args.nodes, args.graphs, args.rounds, args.calls, device):
            stem, call, edges, on, off, pct, alone, share = row
            print(f"{stem:<10}{call:<18}{edges:>7}{on:>14.3f}{off:>16.3f}{pct:>+9.1f}%{alone:>19.3f}{share:>7.2f}%")


if __name__ == "__main__":
    main()
