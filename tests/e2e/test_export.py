"""Exported potentials (eqc export: TorchScript, torch.export, AOTInductor) loaded in a fresh process give
the energies, forces and stresses of the eager model, float32 and float64, periodic and molecular."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from eqdsl import checkpoint
from eqdsl.api import compile_file
from eqdsl.atoms import atoms_to_inputs, energy_forces_stress
from eqdsl.export import ExportError, export_potential, load_exported, read_metadata

ase = pytest.importorskip("ase")
from ase.build import bulk, molecule  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "nequip.eq"
SPECIES = ["H", "C", "N", "O"]
OVERRIDES = {"layers": 2}  # a smaller NequIP (three layers shipped): faster to trace and compile

LOADER = """
import json, sys, torch
from eqdsl.export import load_exported
artifact, cases = sys.argv[1], torch.load(sys.argv[2])
potential = load_exported(artifact)
out = [{k: v for k, v in potential(**case).items()} for case in cases]
torch.save(out, sys.argv[3])
print(json.dumps(potential.metadata))
"""


def structures():
    cell = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))  # 8 atoms, a cell smaller than twice the cutoff
    cell.rattle(0.05, seed=1)
    cell.set_chemical_symbols(["C", "N", "O", "H"] * 2)
    small = bulk("Cu", "fcc", a=3.7)  # one atom: every neighbour is a periodic image of itself
    small.set_chemical_symbols(["O"])
    mol = molecule("CH3CH2OH")
    return [cell, small], [mol]


def model_of(dtype):
    torch.manual_seed(3)
    model = compile_file(SPEC, **OVERRIDES).model_class()(cutoff=4.0).to(dtype)
    with torch.no_grad():  # weights unlike the initial ones, so that the artifact must carry them
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def cases_and_reference(model):
    periodic, molecules = structures()
    cases, expected = [], []
    for structs, stress in ((periodic, True), (molecules, False)):
        inputs = atoms_to_inputs(model, structs, species=SPECIES, cutoff=4.0)
        ref = energy_forces_stress(model, inputs, stress=stress)
        kw = inputs.kwargs
        dtype = kw["pos"].dtype
        cell = torch.tensor(np.stack([a.cell.array for a in structs]), dtype=dtype)
        cases.append({"species": kw["species"], "pos": kw["pos"], "edges": kw["edges"], "shift": kw["shift"],
                      "batch": kw["batch"], "cell": cell})
        expected.append(ref)
    return cases, expected


def run_fresh(artifact, cases, tmp_path):
    torch.save(cases, tmp_path / "cases.pt")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", LOADER, str(artifact), str(tmp_path / "cases.pt"), str(tmp_path / "out.pt")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(tmp_path / "out.pt"), json.loads(proc.stdout.strip().splitlines()[-1])


def eqc_export(args, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "eqdsl.cli", "export", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=900, cwd=tmp_path)


@pytest.mark.parametrize("fmt,dtype", [("torchscript", torch.float32), ("torchscript", torch.float64),
                                       ("export", torch.float32), ("export", torch.float64),
                                       ("aoti", torch.float64)])
def test_exported_potential_matches_eager_in_a_fresh_process(tmp_path, fmt, dtype):
    if fmt == "aoti" and not any(Path(d, "g++").exists() or Path(d, "c++").exists()
                                 for d in os.environ.get("PATH", "").split(os.pathsep)):
        pytest.skip("AOTInductor needs a C++ compiler")
    model = model_of(dtype)
    checkpoint.save(model, tmp_path / "weights.pt")
    artifact = tmp_path / ("nequip.pt" if fmt == "torchscript" else "nequip.pt2")
    proc = eqc_export([SPEC, "--checkpoint", tmp_path / "weights.pt", "-o", artifact, "--format", fmt], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"-> {artifact} ({fmt})" in proc.stderr
    cases, expected = cases_and_reference(model)
    got, meta = run_fresh(artifact, cases, tmp_path)
    assert meta["spec_sha256"] == model.SPEC_SHA256 and meta["dtype"] == str(dtype).removeprefix("torch.")
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    for out, ref in zip(got, expected):
        for key in ref:
            scale = ref[key].abs().max().clamp_min(1e-12)
            err = float((out[key] - ref[key]).abs().max() / scale)
            assert err < rtol, f"{key}: relative error {err:.2e}"
    assert "stress" in got[0] and "stress" not in got[1]  # molecules (zero cells) have no stress
    assert got[0]["energy"].shape == (2,) and got[1]["forces"].shape == cases[1]["pos"].shape


def test_the_same_artifact_serves_other_sizes_and_checks_its_inputs(tmp_path):
    model = model_of(torch.float64)
    path = export_potential(model, tmp_path / "p.pt2", format="export")
    assert read_metadata(path)["format"] == "export"
    potential = load_exported(path)
    big = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((3, 3, 2))
    big.rattle(0.1, seed=5)
    big.set_chemical_symbols(["C"] * len(big))
    inputs = atoms_to_inputs(model, [big], species=SPECIES, cutoff=4.0)
    ref = energy_forces_stress(model, inputs)
    kw = inputs.kwargs
    case = {"species": kw["species"], "pos": kw["pos"], "edges": kw["edges"], "shift": kw["shift"],
            "batch": kw["batch"], "cell": torch.tensor(big.cell.array[None])}
    out = potential(**case)
    assert torch.allclose(out["forces"], ref["forces"], rtol=1e-10, atol=1e-12)
    assert torch.allclose(out["stress"], ref["stress"], rtol=1e-10, atol=1e-12)
    bad = dict(case, edges=case["edges"].clone())
    bad["edges"][0, 0] = len(big)
    with pytest.raises(ValueError, match="edges"):
        potential(**bad)
    with pytest.raises(TypeError, match="float64"):
        potential(**{k: (v.float() if v.is_floating_point() else v) for k, v in case.items()})
    with pytest.raises(ValueError, match="batch"):
        potential(**dict(case, batch=None))


def test_what_cannot_be_exported_is_refused_with_a_reason(tmp_path):
    deepsets = compile_file(ROOT / "specs" / "deepsets.eq").model_class()()
    with pytest.raises(ExportError, match="not a potential"):
        export_potential(deepsets, tmp_path / "x.pt2")
    with pytest.raises(ExportError, match="format"):
        export_potential(model_of(torch.float32), tmp_path / "x.pt2", format="onnx")
    with pytest.raises(ExportError, match=".pt2 file"):
        export_potential(model_of(torch.float32), tmp_path / "x.so", format="aoti")
    (tmp_path / "junk.pt2").write_bytes(b"not an archive")
    with pytest.raises(ExportError, match="not a potential exported by eqdsl"):
        read_metadata(tmp_path / "junk.pt2")


def test_eqc_export_names_both_specs_when_the_checkpoint_is_of_another(tmp_path):
    model = model_of(torch.float32)
    checkpoint.save(model, tmp_path / "weights.pt")
    proc = eqc_export([ROOT / "specs" / "mace.eq", "--checkpoint", tmp_path / "weights.pt", "-o", tmp_path / "m.pt2"],
                      tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "nequip.eq" in proc.stderr and "mace.eq" in proc.stderr
    proc = eqc_export([SPEC, "--checkpoint", tmp_path / "missing.pt", "-o", tmp_path / "m.pt2"], tmp_path)
    assert proc.returncode == 1 and "no such checkpoint" in proc.stderr and "Traceback" not in proc.stderr


def test_the_ase_calculator_runs_an_exported_potential(tmp_path):
    from ase.md.verlet import VelocityVerlet
    from ase import units
    from eqdsl.ase import Calculator

    model = model_of(torch.float64)
    path = export_potential(model, tmp_path / "p.pt2", format="export")
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=7)
    atoms.set_chemical_symbols(["C", "N", "O", "H"] * 2)
    eager, exported = atoms.copy(), atoms.copy()
    eager.calc = Calculator(model, SPECIES)
    exported.calc = Calculator.from_exported(path, SPECIES)
    assert exported.calc.cutoff == 4.0  # exported with the model
    assert abs(eager.get_potential_energy() - exported.get_potential_energy()) < 1e-10
    assert np.abs(eager.get_forces() - exported.get_forces()).max() < 1e-10
    assert np.abs(eager.get_stress() - exported.get_stress()).max() < 1e-10
    for a in (eager, exported):
        a.set_momenta(np.zeros((len(a), 3)))
        VelocityVerlet(a, 1.0 * units.fs).run(5)
    assert np.abs(eager.positions - exported.positions).max() < 1e-9
    mol = molecule("CH3CH2OH")
    mol.calc = Calculator.from_exported(path, SPECIES)
    assert np.isfinite(mol.get_forces()).all()
    with pytest.raises(ValueError, match="periodic"):
        mol.get_stress()
