"""The ASE calculator's cost: energy+forces+stress on a periodic copper cell, beside ASE's EMT and the model alone.

    python -m eqdsl.benchmarks.calculator [--spec nequip] [--repeat 4] [--layers 3] [--dtype float32]

One run, on one machine: a cubic fcc copper cell repeated ``--repeat`` times along each axis
(4 x 4 x 4 x 4 = 256 atoms), rattled; each row is the median of ``--calls`` calls after a warm-up:

* ASE's EMT (energy, forces, stress): the classical potential the model would replace;
* eqdsl.ase.Calculator (a fresh calculation each call: neighbour list, inputs, model, stress);
* the neighbour list alone (vesin, through eqdsl.atoms.neighbour_list);
* the model alone on prepared inputs (energy_forces_stress: the forward, forces and strain derivative);
* the same with the module also taking its own forces (gradient outputs kept on, a second backward pass):
  what energy_forces_stress cost before it switched them off.

The calculator's overhead is its time over the model alone.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent


def _median_ms(fn, calls: int) -> float:
    fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv=None) -> None:
    from ase.build import bulk
    from ase.calculators.emt import EMT

    from eqdsl.api import compile_file
    from eqdsl.ase import Calculator
    from eqdsl.atoms import atoms_to_inputs, energy_forces_stress, neighbour_list

    ap = argparse.ArgumentParser(prog="python -m eqdsl.benchmarks.calculator", description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="nequip", choices=["nequip", "mace"])
    ap.add_argument("--repeat", type=int, default=4, help="cubic cells along each axis (4 atoms each)")
    ap.add_argument("--layers", type=int, default=None, help="the spec's layers (default: the spec's own)")
    ap.add_argument("--cutoff", type=float, default=5.0)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--calls", type=int, default=15)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    overrides = {"layers": args.layers} if args.layers else {}
    cls = compile_file(ROOT / "specs" / f"{args.spec}.eq", **overrides).model_class()
    torch.manual_seed(0)
    model = cls(cutoff=args.cutoff).to(dtype)
    species = ["Cu"] + [f"X{i}" for i in range(next(r[3] for r in cls.INPUT_LAYOUT if r[2] == "node" and r[1] == "tensor") - 1)]
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((args.repeat,) * 3)
    atoms.positions += np.random.default_rng(0).normal(0.0, 0.05, atoms.positions.shape)

    emt = atoms.copy()
    emt.calc = EMT()
    ours = atoms.copy()
    ours.calc = Calculator(model, species)

    def calculator_call(target):
        def run():
            target.calc.reset()  # a fresh calculation every call, as after an MD step
            target.get_potential_energy(), target.get_forces(), target.get_stress()
        return run

    inputs = atoms_to_inputs(model, atoms, species, args.cutoff)
    rows = [("ASE EMT", _median_ms(calculator_call(emt), args.calls)),
            ("eqdsl.ase.Calculator", _median_ms(calculator_call(ours), args.calls)),
            ("neighbour list (vesin)", _median_ms(lambda: neighbour_list(atoms, args.cutoff), args.calls)),
            ("model alone (energy, forces, stress)", _median_ms(lambda: energy_forces_stress(model, inputs), args.calls))]
    if cls.GRADIENT_OUTPUTS:
        both = cls(cutoff=args.cutoff).to(dtype)
        both.load_state_dict(model.state_dict())
        both.GRADIENT_OUTPUTS = ()  # hides them from energy_forces_stress: the module computes its forces too
        rows.append(("model alone, its own forces kept on", _median_ms(lambda: energy_forces_stress(both, inputs), args.calls)))
    edges = inputs.kwargs[next(r[0] for r in cls.INPUT_LAYOUT if r[1] == "graph")].shape[1]
    print(f"machine: {platform.machine()} CPU, {torch.get_num_threads()} threads; torch {torch.__version__}; "
          f"{args.spec} ({cls.COMPILE_TIME_PARAMETERS}), {args.dtype}; {len(atoms)} atoms, {edges} edges, "
          f"cutoff {args.cutoff}")
    emt_ms, calculator, model_alone = rows[0][1], rows[1][1], rows[3][1]
    print(f"{'':<40}{'median (ms)':>12}{'/ EMT':>10}")
    for name, ms in rows:
        print(f"{name:<40}{ms:>12.1f}{ms / emt_ms:>10.2f}")
    print(f"calculator overhead over the model alone: {100.0 * (calculator / model_alone - 1.0):+.1f}%")


if __name__ == "__main__":
    main()
