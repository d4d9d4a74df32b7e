"""Compiled potentials on real atomic structures: vesin neighbour lists with periodic images, energy,
forces and stress (checked against finite differences), the ASE calculator with ASE's optimizers and
integrators, and the errors for input no potential can answer."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ase = pytest.importorskip("ase")
pytest.importorskip("vesin")

from ase import Atoms  # noqa: E402
from ase.build import bulk, fcc111, molecule  # noqa: E402
from ase.neighborlist import neighbor_list as ase_neighbor_list  # noqa: E402

import eqdsl  # noqa: E402
from eqdsl.ase import Calculator  # noqa: E402
from eqdsl.atoms import atoms_to_inputs, energy_forces_stress, neighbour_list  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPECIES = ["Cu", "Ni", "H", "O"]
CUTOFF = 4.0


def potential(spec="nequip", dtype=torch.float64, seed=0):
    cls = eqdsl.compile_file(ROOT / "specs" / f"{spec}.eq", layers=2).model_class()
    torch.manual_seed(seed)
    return cls(cutoff=CUTOFF, avg_neighbors=20.0).to(dtype)


@pytest.fixture(scope="module")
def model():
    return potential()


def rattled_copper(repeat=(2, 2, 2), seed=0, strain=0.0):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(repeat)
    rng = np.random.default_rng(seed)
    atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    symbols = atoms.get_chemical_symbols()
    symbols[1] = "Ni"
    atoms.set_chemical_symbols(symbols)
    if strain:
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain * np.array([[1, 0.3, 0], [0.3, -0.5, 0], [0, 0, 0.2]])),
                       scale_atoms=True)
    return atoms


@pytest.mark.parametrize("atoms", [bulk("Cu", "fcc", a=3.6), bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2),
                                   fcc111("Cu", (2, 2, 3), vacuum=5.0), molecule("H2O")],
                         ids=["primitive cell smaller than the cutoff", "supercell", "slab", "molecule"])
def test_neighbour_list_matches_ase_with_every_periodic_image(atoms):
    edges, shifts = neighbour_list(atoms, CUTOFF)
    i, j, S = ase_neighbor_list("ijS", atoms, CUTOFF)
    ours = set(zip(edges[0], edges[1], map(tuple, np.round(shifts, 9))))
    theirs = set(zip(i, j, map(tuple, np.round(S @ atoms.cell.array, 9))))
    assert ours == theirs and len(ours) == edges.shape[1]
    vectors = atoms.positions[edges[1]] - atoms.positions[edges[0]] + shifts
    assert np.linalg.norm(vectors, axis=1).max() < CUTOFF


def test_a_periodic_energy_is_extensive_over_supercells(model):
    """A cell and its 2x1x3 supercell are the same crystal: the supercell's energy is 6 times the cell's,
    which only holds when every periodic image, down to repeated images of one neighbour, is an edge."""
    cell = bulk("Cu", "fcc", a=3.6)  # one atom, all 12 neighbours (and more) its own images
    inputs = atoms_to_inputs(model, [cell, cell.repeat((2, 1, 3))], SPECIES, CUTOFF)
    e = energy_forces_stress(model, inputs)
    assert abs(float(e["energy"][1]) - 6 * float(e["energy"][0])) < 1e-9 * abs(float(e["energy"][1]))
    torch.testing.assert_close(e["stress"][1], e["stress"][0], rtol=1e-8, atol=1e-12)


def test_a_batch_gives_each_structure_its_own_answer(model):
    a, b = rattled_copper(seed=1), fcc111("Cu", (2, 2, 2), vacuum=4.0)
    b.pbc = [True, True, True]  # a slab with vacuum is still a 3-periodic cell (a volume: stress is defined)
    both = energy_forces_stress(model, atoms_to_inputs(model, [a, b], SPECIES, CUTOFF))
    for g, atoms in enumerate([a, b]):
        alone = energy_forces_stress(model, atoms_to_inputs(model, atoms, SPECIES, CUTOFF))
        torch.testing.assert_close(both["energy"][g], alone["energy"][0], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(both["stress"][g], alone["stress"][0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(both["forces"][len(a):], energy_forces_stress(
        model, atoms_to_inputs(model, b, SPECIES, CUTOFF))["forces"], rtol=1e-10, atol=1e-12)


def test_forces_and_stress_are_derivatives_of_the_energy(model):
    atoms = rattled_copper(repeat=(1, 1, 2), strain=0.02)
    atoms.calc = Calculator(model, SPECIES)
    forces, stress = atoms.get_forces(), atoms.get_stress(voigt=False)
    h = 1e-5
    for a, k in [(0, 0), (3, 1), (5, 2)]:
        shifted = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.calc = atoms.calc
            moved.positions[a, k] += sign * h
            shifted.append(moved.get_potential_energy())
        assert abs(-(shifted[0] - shifted[1]) / (2 * h) - forces[a, k]) < 1e-6 * (1 + abs(forces[a, k]))
    volume = atoms.get_volume()
    for i, j in [(0, 0), (1, 1), (0, 1), (1, 2)]:
        strained = []
        for sign in (1, -1):  # a symmetric strain: dE = volume * sum_kl stress_kl eps_kl = volume * stress_ij * h
            eps = np.zeros((3, 3))
            eps[i, j] = eps[j, i] = sign * (h if i == j else h / 2)
            moved = atoms.copy()
            moved.calc = atoms.calc
            moved.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            strained.append(moved.get_potential_energy())
        fd = (strained[0] - strained[1]) / (2 * h) / volume
        assert abs(fd - stress[i, j]) < 1e-6 * (1 + abs(fd)), (i, j, fd, stress[i, j])


def test_calculator_in_ase_optimizers_with_a_cell_filter(model):
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    atoms = rattled_copper(repeat=(1, 1, 1), strain=0.03)
    atoms.calc = Calculator(model, SPECIES)
    start = atoms.get_potential_energy()
    opt = BFGS(FrechetCellFilter(atoms), logfile=None)
    opt.run(fmax=1e-6, steps=30)  # the random model's energies are small: a tight fmax makes it take steps
    assert opt.nsteps > 0
    assert atoms.get_potential_energy() < start  # relaxed positions and cell together


def test_nve_molecular_dynamics_conserves_energy(model):
    from ase import units
    from ase.md.verlet import VelocityVerlet

    atoms = rattled_copper(repeat=(1, 1, 1))
    atoms.calc = Calculator(model, SPECIES)
    masses = atoms.get_masses()[:, None]  # Maxwell-Boltzmann momenta at 300 K
    atoms.set_momenta(np.random.default_rng(0).normal(size=(len(atoms), 3)) * np.sqrt(masses * units.kB * 300.0))
    total, potential_energy = [], []
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs, logfile=None)
    dyn.attach(lambda: (total.append(atoms.get_total_energy()), potential_energy.append(atoms.get_potential_energy())))
    dyn.run(40)
    # energy flows between kinetic and potential; their sum stays put (Verlet's error is second order in the step)
    assert np.ptp(potential_energy) > 0 and np.ptp(total) < 0.02 * np.ptp(potential_energy), (np.ptp(total),
                                                                                             np.ptp(potential_energy))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_calculator_keeps_the_model_dtype_and_torch_default(dtype):
    before = torch.get_default_dtype()
    model = potential(dtype=dtype)
    atoms = rattled_copper(repeat=(1, 1, 1))
    atoms.calc = Calculator(model, SPECIES)
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    assert torch.get_default_dtype() == before
    assert isinstance(energy, float) and forces.dtype == np.float64 and stress.shape == (6,)
    reference = Calculator(potential(dtype=torch.float64), SPECIES)
    assert abs(energy - reference.get_potential_energy(atoms)) < (1e-4 if dtype == torch.float32 else 1e-10) * (1 + abs(energy))


def test_mace_is_a_periodic_potential_too():
    model = potential("mace")
    cell = bulk("Cu", "fcc", a=3.6)
    inputs = atoms_to_inputs(model, [cell, cell.repeat((1, 2, 2))], SPECIES[:3], CUTOFF)  # its species: 3 columns
    e = energy_forces_stress(model, inputs)
    assert abs(float(e["energy"][1]) - 4 * float(e["energy"][0])) < 1e-9 * abs(float(e["energy"][1]))


@pytest.mark.parametrize("make, words", [
    (lambda: Atoms("CuAu", positions=[[0, 0, 0], [2, 0, 0]]), "element Au not in the model's species"),
    (lambda: Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 0]]), "overlap"),
    (lambda: Atoms("Cu2", positions=[[0, 0, 0], [9, 0, 0]]), "no pair of atoms is within the cutoff"),
    (lambda: Atoms("Cu", cell=[[3, 0, 0], [6, 0, 0], [0, 0, 3]], pbc=True), "linearly dependent"),
    (lambda: Atoms("Cu2", positions=[[0, 0, 0], [np.nan, 0, 0]]), "NaN"),
])
def test_input_no_potential_can_answer_is_a_clear_error(model, make, words):
    atoms = make()
    atoms.calc = Calculator(model, SPECIES)
    with pytest.raises(ValueError, match=words):
        atoms.get_potential_energy()


def test_species_must_match_the_model_and_stress_needs_a_cell(model):
    with pytest.raises(ValueError, match="species lists 2 elements but the model's species input has 4 columns"):
        atoms_to_inputs(model, molecule("H2O"), ["H", "O"], CUTOFF)
    water = molecule("H2O")
    water.calc = Calculator(model, SPECIES)
    assert np.isfinite(water.get_forces()).all()
    with pytest.raises(ValueError, match="stress needs a cell periodic in all three directions"):
        water.get_stress()
    tetris = eqdsl.compile_file(ROOT / "specs" / "tetris.eq").model_class()()
    with pytest.raises(TypeError, match="is not a potential"):
        Calculator(tetris, SPECIES, cutoff=CUTOFF)


FORCE_CHECK = """
import os, sys
os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported: the kernels run on the CPU
import numpy as np, torch
from ase.build import bulk
import eqdsl
from eqdsl.atoms import atoms_to_inputs, energy_forces_stress
backend = sys.argv[1]
cls = eqdsl.compile_file(sys.argv[2], layers=2).model_class()
torch.manual_seed(0)
model = cls(cutoff=3.0, avg_neighbors=12.0, backend=backend).double()
atoms = bulk("Cu", "fcc", a=3.6, cubic=True)  # 4 atoms, periodic: every atom sees images of the others
atoms.positions += np.random.default_rng(0).normal(0.0, 0.08, atoms.positions.shape)
species = ["Cu", "Ni", "H", "O"]
inputs = atoms_to_inputs(model, atoms, species, 3.0)
pos_name = inputs.positions
out = energy_forces_stress(model, inputs, stress=False)
h, worst = 1e-5, 0.0
for a, k in [(0, 0), (1, 2), (3, 1)]:
    e = []
    for sign in (1, -1):
        moved = atoms.copy()
        moved.positions[a, k] += sign * h
        e.append(float(energy_forces_stress(model, atoms_to_inputs(model, moved, species, 3.0), stress=False)["energy"][0]))
    fd = -(e[0] - e[1]) / (2 * h)
    worst = max(worst, abs(fd - float(out["forces"][a, k])) / (1e-3 + abs(fd)))
assert worst < 1e-6, ("forces are not -dE/dpos", worst)
kwargs = dict(inputs.kwargs)
pos = kwargs[pos_name].clone().requires_grad_(True)
kwargs[pos_name] = pos
forces = model(**kwargs)["forces"]
rows = [torch.autograd.grad(forces.reshape(-1)[i], pos, retain_graph=True)[0].reshape(-1) for i in range(pos.numel())]
hessian = -torch.stack(rows)
asym = float((hessian - hessian.T).abs().max() / hessian.abs().max())
assert asym < 1e-10, ("Hessian not symmetric", asym)
print("ok", worst, asym)
"""


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_forces_are_the_energy_gradient_and_the_hessian_is_symmetric_on_every_backend(backend):
    """Finite differences of the energy against the forces, and d(forces)/d(positions) symmetric, on a periodic
    cell: on the reference and on the Triton kernels (Triton's interpreter on the CPU), in a child process so
    that the interpreter is on before triton is imported."""
    if backend == "triton":
        pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", FORCE_CHECK, backend, str(ROOT / "specs" / "nequip.eq")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


def test_a_position_orientation_potential_runs_on_periodic_cells():
    """specs/ponita.eq (features on a grid of directions) through the same path: extensive over supercells,
    forces the derivative of its energy."""
    ponita = potential("ponita")
    cell = bulk("Cu", "fcc", a=3.6)
    inputs = atoms_to_inputs(ponita, [cell, cell.repeat((2, 1, 3))], SPECIES, CUTOFF)
    e = energy_forces_stress(ponita, inputs)
    assert abs(float(e["energy"][1]) - 6 * float(e["energy"][0])) < 1e-9 * abs(float(e["energy"][1]))
    atoms = rattled_copper(repeat=(1, 1, 1), seed=3)
    forces = energy_forces_stress(ponita, atoms_to_inputs(ponita, [atoms], SPECIES, CUTOFF))["forces"]
    step = 1e-5
    for k in range(3):
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[2, k] += sign * step
            energies.append(float(energy_forces_stress(ponita, atoms_to_inputs(ponita, [moved], SPECIES, CUTOFF))["energy"][0]))
        assert abs(-(energies[0] - energies[1]) / (2 * step) - float(forces[2, k])) < 1e-7
