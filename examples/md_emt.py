#!/usr/bin/env python
"""Train the NequIP spec on periodic EMT copper (energies, forces, stress), then run NVE molecular dynamics.

    python examples/md_emt.py            # a few minutes on 2 CPU cores
    python examples/md_emt.py --quick    # seconds: a smoke test

Pipeline:
  1. compile specs/nequip.eq (``--layers``), whose edge vectors take periodic cell shifts;
  2. make bulk fcc copper cells (``--repeat`` cubic cells per axis), each under a random symmetric
     strain and rattled (seeded), labelled with ASE's EMT energy, forces and stress; split into
     train / validation / test;
  3. train with Adam on per-atom energy, force and stress errors (in units of the training set's
     spread), through eqdsl.atoms (vesin neighbour lists; stress as the strain derivative of the
     energy), keeping the weights that do best on the validation set;
  4. report energy, force and stress MAE on the held-out test cells next to trivial baselines
     (the mean energy per atom, zero forces, the mean stress);
  5. run NVE (velocity Verlet, ``--timestep`` fs, from Maxwell-Boltzmann velocities at ``--temperature``)
     with the trained model, in float64, through eqdsl.ase.Calculator, and with EMT itself from the
     same start, and report the drift of the total energy (slope of a least-squares line) in meV/atom/ps.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

import eqdsl  # noqa: E402

SPEC = ROOT / "specs" / "nequip.eq"
SPECIES = ["Cu", "Ag", "Au", "Ni"]  # the spec's one-hot has 4 columns; these cells are all copper


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--cutoff", type=float, default=4.0, help="neighbour-list radius and the spec's cutoff (A)")
    p.add_argument("--structures", type=int, default=60, help="EMT-labelled cells in all")
    p.add_argument("--repeat", type=int, default=2, help="cubic fcc cells (4 atoms) along each axis")
    p.add_argument("--lattice", type=float, default=3.61)
    p.add_argument("--rattle", type=float, default=0.08, help="std of every atom's displacement (A)")
    p.add_argument("--strain", type=float, default=0.02, help="std of the random symmetric strain")
    p.add_argument("--test", type=int, default=10, help="held-out test cells")
    p.add_argument("--val", type=int, default=5, help="validation cells")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--energy-weight", type=float, default=10.0)
    p.add_argument("--stress-weight", type=float, default=10.0)
    p.add_argument("--md-steps", type=int, default=500)
    p.add_argument("--timestep", type=float, default=2.0, help="fs")
    p.add_argument("--temperature", type=float, default=300.0, help="K, of the initial velocities")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a smoke test: tiny data, a few steps, a short MD")
    args = p.parse_args(argv)
    if args.quick:
        args.layers, args.structures, args.test, args.val, args.steps, args.md_steps = 2, 10, 3, 2, 3, 20
        args.repeat = 1
    if args.test + args.val >= args.structures:
        p.error("--test and --val leave no training cells")
    return args


def make_cells(args, rng):
    from ase.build import bulk
    from ase.calculators.emt import EMT

    cells = []
    for _ in range(args.structures):
        atoms = bulk("Cu", "fcc", a=args.lattice, cubic=True).repeat((args.repeat,) * 3)
        eps = rng.normal(0.0, args.strain, (3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        atoms.positions += rng.normal(0.0, args.rattle, atoms.positions.shape)
        atoms.calc = EMT()
        labels = (atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False))
        atoms.calc = None
        cells.append((atoms, *labels))
    return cells


class Scaled(torch.nn.Module):
    """The compiled network in the training set's units: E = scale * E_net + e0 per atom.

    It shows the network's INPUT_LAYOUT, OUTPUTS and cutoff, so eqdsl.atoms and eqdsl.ase.Calculator take it
    as the potential it is; forces and stress are derivatives of this energy (e0 depends on no position)."""

    def __init__(self, net, e0: float, scale: float):
        super().__init__()
        self.net, self.e0, self.scale = net, float(e0), float(scale)
        self.INPUT_LAYOUT, self.OUTPUTS, self.param_cutoff = net.INPUT_LAYOUT, net.OUTPUTS, net.param_cutoff

    def forward(self, *, batch, num_graphs, **inputs):
        energy = self.net(**inputs, batch=batch, num_graphs=num_graphs)["energy"].reshape(num_graphs)
        atoms = torch.bincount(batch, minlength=num_graphs).to(energy.dtype)
        return {"energy": self.scale * energy + self.e0 * atoms}

    def predict(self, inputs, training: bool):
        from eqdsl.atoms import energy_forces_stress

        out = energy_forces_stress(self, inputs, stress=True, training=training)
        return {**out, "atoms": torch.as_tensor(inputs.num_atoms, dtype=out["energy"].dtype)}


def targets(batch, dtype):
    return {"energy": torch.tensor([e for _, e, _, _ in batch], dtype=dtype),
            "forces": torch.as_tensor(np.concatenate([f for _, _, f, _ in batch]), dtype=dtype),
            "stress": torch.as_tensor(np.stack([s for _, _, _, s in batch]), dtype=dtype)}


def errors(model, cells, dtype):
    """Mean absolute errors over `cells`: energy per atom (eV), force components (eV/A), stress components (eV/A^3)."""
    from eqdsl.atoms import atoms_to_inputs

    pred = model.predict(atoms_to_inputs(model, [c[0] for c in cells], SPECIES, model.param_cutoff), False)
    t = targets(cells, dtype)
    return {"energy": float(((pred["energy"] - t["energy"]) / pred["atoms"]).abs().mean()),
            "forces": float((pred["forces"] - t["forces"]).abs().mean()),
            "stress": float((pred["stress"] - t["stress"]).abs().mean())}


def baselines(train, test):
    e_atom = np.mean([e / len(a) for a, e, _, _ in train])
    s_mean = np.mean([s for *_, s in train], axis=0)
    return {"energy": float(np.mean([abs(e / len(a) - e_atom) for a, e, _, _ in test])),
            "forces": float(np.mean(np.abs(np.concatenate([f for _, _, f, _ in test])))),
            "stress": float(np.mean([np.abs(s - s_mean).mean() for *_, s in test]))}


def train(args, train_cells, val_cells):
    from eqdsl.atoms import atoms_to_inputs

    dtype = torch.float32
    n_atoms = np.array([len(a) for a, *_ in train_cells])
    e0 = float(np.sum([e for _, e, _, _ in train_cells]) / n_atoms.sum())
    scale = math.sqrt(np.mean(np.concatenate([f.ravel() for _, _, f, _ in train_cells]) ** 2))
    cls = eqdsl.compile_file(SPEC, layers=args.layers).model_class()
    torch.manual_seed(args.seed)
    probe = atoms_to_inputs(cls(cutoff=args.cutoff), [c[0] for c in train_cells], SPECIES, args.cutoff)
    avg_neighbors = probe.kwargs["edges"].shape[1] / sum(n_atoms)
    # the energy alone: forces and stress are energy_forces_stress's derivatives, one backward pass for both
    net = cls(cutoff=args.cutoff, avg_neighbors=avg_neighbors, gradient_outputs=False).to(dtype)
    model = Scaled(net, e0, scale)
    stress_scale = max(float(np.std([s for *_, s in train_cells])), 1e-6)
    batches = [[train_cells[i] for i in idx] for idx in
               np.array_split(np.random.default_rng(args.seed).permutation(len(train_cells)),
                              max(1, len(train_cells) // args.batch_size))]
    inputs = [atoms_to_inputs(model, [c[0] for c in b], SPECIES, args.cutoff) for b in batches]
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=args.lr / 20)
    best, best_state = float("inf"), None
    for step in range(args.steps):
        k = step % len(batches)
        pred, t = model.predict(inputs[k], True), targets(batches[k], dtype)
        loss = (args.energy_weight * (((pred["energy"] - t["energy"]) / pred["atoms"] / scale) ** 2).mean()
                + (((pred["forces"] - t["forces"]) / scale) ** 2).mean()
                + args.stress_weight * (((pred["stress"] - t["stress"]) / stress_scale) ** 2).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if k == len(batches) - 1 or step == args.steps - 1:  # after each pass: keep the best on validation
            val = errors(model, val_cells, dtype)
            score = val["energy"] / scale * args.energy_weight + val["forces"] / scale
            if score < best:
                best, best_state = score, {n: v.clone() for n, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    return model


def nve_drift(atoms, calc, args) -> tuple[float, np.ndarray]:
    """meV/atom/ps: the slope of the total energy's least-squares line over an NVE run from `atoms`' momenta."""
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms = atoms.copy()
    atoms.calc = calc
    total = []
    dyn = VelocityVerlet(atoms, timestep=args.timestep * units.fs, logfile=None)
    dyn.attach(lambda: total.append(atoms.get_total_energy() / len(atoms)), interval=1)
    dyn.run(args.md_steps)
    t_ps = np.arange(len(total)) * args.timestep * 1e-3
    slope = np.polyfit(t_ps, np.array(total), 1)[0] if len(total) > 1 else 0.0
    return 1e3 * float(slope), np.array(total)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    from ase import units
    from ase.calculators.emt import EMT

    from eqdsl.ase import Calculator

    args = parse_args(argv)
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    cells = make_cells(args, rng)
    test_cells, val_cells, train_cells = cells[:args.test], cells[args.test:args.test + args.val], cells[args.test + args.val:]
    model = train(args, train_cells, val_cells)
    t_train = time.perf_counter() - t0
    test = errors(model, test_cells, torch.float32)
    base = baselines(train_cells, test_cells)
    per_gpa = 1.0 / units.GPa
    print(f"trained {args.steps} steps on {len(train_cells)} cells of {len(train_cells[0][0])} atoms in {t_train:.0f} s")
    print(f"test ({len(test_cells)} cells)   model      baseline")
    print(f"energy (meV/atom) {1e3 * test['energy']:10.2f} {1e3 * base['energy']:10.2f}  (mean energy per atom)")
    print(f"forces (meV/A)    {1e3 * test['forces']:10.2f} {1e3 * base['forces']:10.2f}  (zero forces)")
    print(f"stress (GPa)      {test['stress'] * per_gpa:10.3f} {base['stress'] * per_gpa:10.3f}  (mean stress)")

    start = test_cells[0][0].copy()
    masses = start.get_masses()[:, None]
    start.set_momenta(np.random.default_rng(args.seed).normal(size=(len(start), 3))
                      * np.sqrt(masses * units.kB * args.temperature))
    drift_model, total_model = nve_drift(start, Calculator(model.double(), SPECIES), args)  # MD in float64
    drift_emt, total_emt = nve_drift(start, EMT(), args)
    print(f"NVE {args.md_steps} steps of {args.timestep} fs at {args.temperature:.0f} K, {len(start)} atoms: drift "
          f"{drift_model:+.3f} meV/atom/ps (model), {drift_emt:+.3f} meV/atom/ps (EMT); total-energy spread "
          f"{1e3 * np.ptp(total_model):.3f} and {1e3 * np.ptp(total_emt):.3f} meV/atom")
    return {"test": test, "baseline": base, "drift_model": drift_model, "drift_emt": drift_emt,
            "spread_model": float(np.ptp(total_model)), "spread_emt": float(np.ptp(total_emt))}


if __name__ == "__main__":
    main()
