"""NequIP and MACE in eqdsl beside the nequip and mace-torch packages: the same models with the same weights.

    python -m eqdsl.benchmarks.packages [--package all|nequip|mace] [--calls 10] [--dtype float32]
                                        [--device cpu] [--readme README.md]

Builds nequip's NequIPGNNModel with the architecture specs/nequip.eq spells and mace-torch's ScaleShiftMACE
with specs/mace.eq's (random weights), imports each with eqdsl.interop (from_nequip, from_mace), checks that
both give the same energy and forces, then times one call of each, interleaved, ``--calls`` times on two
structures (every atom the same element, any of the model's: the weights are random):

* an 87-atom copper cluster (an fcc sphere: seven neighbour shells), no cell;
* a 256-atom periodic copper cell (4 x 4 x 4 cubic cells), rattled.

Inputs (neighbour lists) are prepared once, eqdsl.atoms's graph given to both.  A package call is its
model's forward: energy, forces and (with a cell) the virial or stress from one backward pass; an eqdsl call
is eqdsl.atoms.energy_forces_stress (the same).  Medians; the speedup is the package's time over eqdsl's.
mace-torch pins e3nn 0.4.4, so its half runs in mace-torch's own virtualenv (eqdsl.benchmarks.mace_env),
this script again with ``--package mace --json``.  With ``--readme`` the table replaces the block between
the two markers in that file.
"""
from __future__ import annotations

import argparse
import json
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
ELEMENT = "O"  # the type the copper atoms take (one both models have: the weights are random)


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


def _timed_rows(name: str, package: str, cases, calls: int, device: torch.device) -> list[dict]:
    """cases: (structure, atoms, edges, call_package, call_eqdsl, energy and forces of a package output)."""
    from .timing import sync

    rows = []
    for structure, atoms, edges, call_package, call_eqdsl, read in cases:
        a, b = call_package(), call_eqdsl()
        energy_a, forces_a = read(a)
        energy_b, forces_b = float(b["energy"].detach().sum()), b["forces"].detach().double()
        agree = {"energy": abs(energy_a - energy_b) / abs(energy_b),
                 "forces": float((forces_a - forces_b).norm() / forces_a.norm())}
        for fn in (call_package, call_eqdsl):  # warm-up
            fn()
        times = {"package": [], "eqdsl": []}
        for _ in range(calls):
            for key, fn in (("package", call_package), ("eqdsl", call_eqdsl)):
                sync(device)
                t0 = time.perf_counter()
                fn()
                sync(device)
                times[key].append((time.perf_counter() - t0) * 1e3)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append({"model": name, "package": package, "structure": structure, "atoms": len(atoms), "edges": edges,
                     "package_ms": med["package"], "eqdsl_ms": med["eqdsl"], "speedup": med["package"] / med["eqdsl"],
                     "agreement": agree})
    return rows


def run_nequip(calls: int, dtype: str, device: torch.device) -> list[dict]:
    import nequip
    from nequip.data import AtomicDataDict
    from nequip.utils.global_state import set_global_state

    from eqdsl.atoms import atoms_to_inputs, energy_forces_stress
    from eqdsl.interop.nequip import from_nequip

    set_global_state()  # what nequip needs before building a model (float64 default dtype, its seeds)
    source = nequip_model(dtype, device)
    module = from_nequip(source.cpu()).to(device)
    source = source.to(device)
    cases = []
    for name, atoms in structures().items():
        periodic = bool(atoms.pbc.all())
        data = nequip_data(source, atoms, device)
        inputs = atoms_to_inputs(module, [atoms], NEQUIP["type_names"], NEQUIP["r_max"], device=device)
        cases.append((name, atoms, int(inputs.kwargs["edges"].shape[1]),
                      lambda data=data: source(dict(data)),
                      lambda inputs=inputs, periodic=periodic: energy_forces_stress(module, inputs, stress=periodic),
                      lambda out: (float(out[AtomicDataDict.TOTAL_ENERGY_KEY].detach().sum()),
                                   out[AtomicDataDict.FORCE_KEY].detach().double())))
    return _timed_rows("NequIP", f"nequip {nequip.__version__}", cases, calls, device)


def run_mace(calls: int, dtype: str, device: torch.device) -> list[dict]:
    """Inside mace-torch's environment: specs/mace.eq's architecture (tests/interop/test_mace.py holds the
    spec to it) in mace-torch and in eqdsl."""
    import mace

    from eqdsl.atoms import atoms_to_inputs, energy_forces_stress
    from eqdsl.interop.mace import from_mace

    from .mace_models import SHIPPED, build, mace_data

    source = build(dtype=getattr(torch, dtype), **SHIPPED)
    module = from_mace(source).to(device)
    source = source.to(device).eval()
    cases = []
    for name, atoms in structures().items():
        periodic = bool(atoms.pbc.all())
        inputs = atoms_to_inputs(module, [atoms], module.type_names, SHIPPED["r_max"], device=device)
        data = {k: v.to(device) for k, v in mace_data(source, inputs).items()}
        cases.append((name, atoms, int(inputs.kwargs["edges"].shape[1]),
                      lambda data=data, periodic=periodic: source(dict(data), compute_force=True,
                                                                  compute_stress=periodic),
                      lambda inputs=inputs, periodic=periodic: energy_forces_stress(module, inputs, stress=periodic),
                      lambda out: (float(out["energy"].detach().sum()), out["forces"].detach().double())))
    version = getattr(mace, "__version__", None) or _dist_version("mace-torch")
    return _timed_rows("MACE", f"mace-torch {version}", cases, calls, device)


def _dist_version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def run_mace_in_its_env(calls: int, dtype: str, device: torch.device) -> list[dict]:
    from . import mace_env

    return mace_env.run_json("-m", "eqdsl.benchmarks.packages", "--package", "mace", "--json", "--calls", str(calls),
                             "--dtype", dtype, "--device", device.type)["rows"]


def table(rows: list[dict], dtype: str, device: torch.device, calls: int) -> str:
    machine = (f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
               if device.type == "cpu" else torch.cuda.get_device_name(device))
    packages = ", ".join(dict.fromkeys(r["package"] for r in rows))
    lines = [f"NequIP and MACE (the architectures of specs/nequip.eq and specs/mace.eq), {dtype}, {device.type} "
             f"({machine}), {packages}; medians of {calls} interleaved calls, energy and forces (and the stress or "
             f"virial each takes in the same backward pass):", "",
             "| model | structure | atoms | edges | package | eqdsl | package / eqdsl | agreement (energy, forces) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} ({r['package']}) | {r['structure']} | {r['atoms']} | {r['edges']} | "
                     f"{r['package_ms']:.1f} ms | {r['eqdsl_ms']:.1f} ms | {r['speedup']:.2f}x | "
                     f"{r['agreement']['energy']:.1e}, {r['agreement']['forces']:.1e} |")
    return "\n".join(lines)


def write_readme(path: Path, text: str) -> None:
    content = path.read_text()
    if START not in content or END not in content:
        raise SystemExit(f"{path} has no block between {START} and {END}")
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def compare(package: str, calls: int, dtype: str, device: torch.device) -> list[dict]:
    """The rows of the comparison with `package` ("nequip", "mace" or "all"): ``main`` and ``eqc bench
    --packages`` run this.  A missing nequip is one line naming the extra to install (SystemExit)."""
    rows = []
    if package in ("all", "nequip"):
        try:
            import nequip  # noqa: F401
        except ModuleNotFoundError as err:
            from eqdsl.extras import missing_package

            raise SystemExit(missing_package(err.name, "the comparison with nequip")) from None
        rows += run_nequip(calls, dtype, device)
    if package in ("all", "mace"):
        try:
            import mace  # noqa: F401
            in_mace_env = True
        except ModuleNotFoundError:
            in_mace_env = False
        rows += (run_mace if in_mace_env else run_mace_in_its_env)(calls, dtype, device)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m eqdsl.benchmarks.packages", description=__doc__.splitlines()[0])
    ap.add_argument("--package", default="all", choices=["all", "nequip", "mace"])
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    ap.add_argument("--readme", type=Path, help="write the table into this file, between the markers")
    ap.add_argument("--json", action="store_true", help="print the rows as one JSON line (how the MACE half reports)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    rows = compare(args.package, args.calls, args.dtype, device)
    if args.json:
        print(json.dumps({"rows": rows}))
        return
    text = table(rows, args.dtype, device, args.calls)
    print(text)
    if args.readme:
        write_readme(args.readme, text)


if __name__ == "__main__":
    main()
