"""NequIP in eqdsl beside the nequip package: the same model with the same weights, energy and forces.

    python -m eqdsl.benchmarks.packages [--calls 10] [--dtype float32] [--device cpu] [--readme README.md]

Builds nequip's NequIPGNNModel with the architecture specs/nequip.eq spells (random weights), imports it
with eqdsl.interop.nequip.from_nequip, checks that both give the same energy and forces, then times
one call of each, interleaved, ``--calls`` times on two structures:

* an 87-atom copper cluster (an fcc sphere: seven neighbour shells), no cell;
* a 256-atom periodic copper cell (4 x 4 x 4 cubic cells), rattled.

Inputs (neighbour lists) are prepared once.  A nequip call is its model's forward: energy, forces and the
virial from one backward pass; an eqdsl call is eqdsl.atoms.energy_forces_stress (energy, forces and, with a
cell, the stress from one backward pass).  Medians; the speedup is nequip's time over eqdsl's.  With
``--readme`` the table replaces the block between the two markers in that file.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- packages benchmark: start -->", "<!-- packages benchmark: end -->"
# specs/nequip.eq's architecture (tests/interop/test_nequip.py holds the spec to it)
NEQUIP = dict(type_names=["H", "C", "N", "O"], r_max=5.0, num_layers=3, l_max=2, parity=False, num_features=32,
              radial_mlp_depth=1, radial_mlp_width=128, avg_num_neighbors=12.0)
ELEMENT = "O"  # the type the copper atoms take (any of the four: the weights are random)


def structures() -> dict:
    from ase.build import bulk

    lattice = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((6, 6, 6))
    centre = lattice.positions[np.argmin(np.linalg.norm(lattice.positions - lattice.cell.sum(0) / 2, axis=1))]
    dist = np.linalg.norm(lattice.positions - centre, axis=1)
    cluster = lattice[np.argsort(dist, kind="stable")[:87]]
    cluster.set_cell(None)
    cluster.pbc = False
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((4, 4, 4))
    cell.rattle(0.05, seed=0)
    for atoms in (cluster, cell):
        atoms.set_chemical_symbols([ELEMENT] * len(atoms))
    return {"87-atom Cu cluster": cluster, "256-atom periodic Cu cell": cell}


def nequip_model(dtype: str, device: torch.device):
    from nequip.model import NequIPGNNModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its advice to set per-type scales and shifts: random weights here
        model = NequIPGNNModel(seed=0, model_dtype=dtype, **NEQUIP)
    return model.to(device).eval()


def nequip_data(model, atoms, device: torch.device) -> dict:
    from nequip.data import AtomicDataDict, compute_neighborlist_, from_ase

    data = from_ase(atoms)
    data = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in data.items()}
    data[AtomicDataDict.ATOM_TYPE_KEY] = torch.full((len(atoms),), NEQUIP["type_names"].index(ELEMENT))
    data = compute_neighborlist_(data, r_max=NEQUIP["r_max"])
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in data.items()}


def run(calls: int, dtype: str, device: torch.device) -> list[dict]:
    from nequip.data import AtomicDataDict
    from nequip.utils.global_state import set_global_state

    from eqdsl.atoms import atoms_to_inputs, energy_forces_stress
    from eqdsl.interop.nequip import from_nequip

    from .timing import sync

    set_global_state()  # what nequip needs before building a model (float64 default dtype, its seeds)
    source = nequip_model(dtype, device)
    module = from_nequip(source.cpu()).to(device)
    source = source.to(device)
    rows = []
    for name, atoms in structures().items():
        periodic = bool(atoms.pbc.all())
        data = nequip_data(source, atoms, device)
        inputs = atoms_to_inputs(module, [atoms], NEQUIP["type_names"], NEQUIP["r_max"], device=device)

        def call_nequip():
            return source(dict(data))

        def call_eqdsl():
            return energy_forces_stress(module, inputs, stress=periodic)

        a, b = call_nequip(), call_eqdsl()
        forces_a, forces_b = a[AtomicDataDict.FORCE_KEY].double(), b["forces"].double()
        energy_a, energy_b = float(a[AtomicDataDict.TOTAL_ENERGY_KEY].detach().sum()), float(b["energy"].detach().sum())
        forces_a, forces_b = forces_a.detach(), forces_b.detach()
        agree = {"energy": abs(energy_a - energy_b) / abs(energy_b),
                 "forces": float((forces_a - forces_b).norm() / forces_a.norm())}
        for fn in (call_nequip, call_eqdsl):  # warm-up
            fn()
        times = {"nequip": [], "eqdsl": []}
        for _ in range(calls):
            for key, fn in (("nequip", call_nequip), ("eqdsl", call_eqdsl)):
                sync(device)
                t0 = time.perf_counter()
                fn()
                sync(device)
                times[key].append((time.perf_counter() - t0) * 1e3)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append({"structure": name, "atoms": len(atoms), "edges": int(inputs.kwargs["edges"].shape[1]),
                     "nequip_ms": med["nequip"], "eqdsl_ms": med["eqdsl"], "speedup": med["nequip"] / med["eqdsl"],
                     "agreement": agree})
    return rows


def table(rows: list[dict], dtype: str, device: torch.device, calls: int) -> str:
    import nequip

    machine = (f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
               if device.type == "cpu" else torch.cuda.get_device_name(device))
    lines = [f"NequIP (specs/nequip.eq's architecture), {dtype}, {device.type} ({machine}), nequip "
             f"{nequip.__version__}; medians of {calls} interleaved calls, energy and forces (and the stress or "
             f"virial each takes in the same backward pass):", "",
             "| structure | atoms | edges | nequip package | eqdsl | nequip / eqdsl | agreement (energy, forces) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['structure']} | {r['atoms']} | {r['edges']} | {r['nequip_ms']:.1f} ms | "
                     f"{r['eqdsl_ms']:.1f} ms | {r['speedup']:.2f}x | {r['agreement']['energy']:.1e}, "
                     f"{r['agreement']['forces']:.1e} |")
    return "\n".join(lines)


def write_readme(path: Path, text: str) -> None:
    content = path.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{path} has no block between {START} and {END}")
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m eqdsl.benchmarks.packages", description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    ap.add_argument("--readme", type=Path, help="write the table into this file, between the markers")
    args = ap.parse_args(argv)
    try:
        import nequip  # noqa: F401
    except ModuleNotFoundError as err:
        from eqdsl.extras import missing_package

        raise SystemExit(missing_package(err.name, "python -m eqdsl.benchmarks.packages")) from None
    device = torch.device(args.device)
    text = table(run(args.calls, args.dtype, device), args.dtype, device, args.calls)
    print(text)
    if args.readme:
        write_readme(args.readme, text)


if __name__ == "__main__":
    main()
