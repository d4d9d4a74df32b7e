"""Checkpoints carry the spec's hash, the compile-time and float parameters: they load back into the
same model only, and the calculator loads them in a fresh process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl import checkpoint
from eqdsl.testing import random_sample

ROOT = Path(__file__).resolve().parents[2]
NEQUIP = ROOT / "specs" / "nequip.eq"


def trained(layers=2, cutoff=4.5, seed=0, dtype=torch.float64):
    cls = eqdsl.compile_file(NEQUIP, layers=layers).model_class()
    torch.manual_seed(seed)
    return cls(cutoff=cutoff).to(dtype)


def outputs(model, seed=0):
    sample = random_sample(type(model), np.random.default_rng(seed), dtype=next(model.parameters()).dtype)
    return model(**sample.inputs, **sample.kwargs)


def test_save_and_load_give_the_same_model(tmp_path):
    model = trained()
    path = tmp_path / "m.pt"
    checkpoint.save(model, path, species=["Cu", "Ni", "H", "O"])
    for loaded in (checkpoint.load(path, spec=NEQUIP), checkpoint.load(path, model_class=type(model))):
        assert loaded.param_cutoff == 4.5 and next(loaded.parameters()).dtype == torch.float64
        a, b = outputs(model), outputs(loaded)
        for k in a:
            assert torch.equal(a[k], b[k]), k
    data = checkpoint.read(path)
    assert data["compile_time_parameters"] == {"layers": 2} and data["extra"]["species"] == ["Cu", "Ni", "H", "O"]
    assert data["spec_sha256"] == type(model).SPEC_SHA256 and data["spec"].endswith("nequip.eq")
    as32 = checkpoint.load(path, spec=NEQUIP, dtype=torch.float32)
    assert next(as32.parameters()).dtype == torch.float32


def test_loading_into_another_model_names_both(tmp_path):
    path = tmp_path / "m.pt"
    checkpoint.save(trained(layers=2), path)
    other_layers = eqdsl.compile_file(NEQUIP, layers=3).model_class()
    with pytest.raises(checkpoint.CheckpointMismatch) as caught:
        checkpoint.load(path, model_class=other_layers)
    message = str(caught.value)
    assert "NequIP of " in message and "layers=2" in message and "layers=3" in message
    assert "differ in the compile-time parameters;" in message and "-D layers=2" in message
    mace = eqdsl.compile_file(ROOT / "specs" / "mace.eq").model_class()
    with pytest.raises(checkpoint.CheckpointMismatch, match="differ in the model, spec;"):
        checkpoint.load(path, model_class=mace)
    edited = tmp_path / "nequip.eq"
    edited.write_text(NEQUIP.read_text().replace("n = 8", "n = 6"))
    with pytest.raises(checkpoint.CheckpointMismatch, match="differ in the spec;"):
        checkpoint.load(path, spec=edited)


def test_overridden_constants_are_compile_time_parameters(tmp_path):
    # -D L=3 changes the layers without changing the spec's text: the checkpoint must rebuild that model
    model = eqdsl.compile_file(NEQUIP, layers=2, L=3).model_class()(cutoff=4.5).double()
    assert type(model).COMPILE_TIME_PARAMETERS == {"L": 3, "layers": 2}
    path = tmp_path / "m.pt"
    checkpoint.save(model, path)
    loaded = checkpoint.load(path, spec=NEQUIP)
    a, b = outputs(model), outputs(loaded)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(checkpoint.CheckpointMismatch, match="L=3"):
        checkpoint.load(path, model_class=eqdsl.compile_file(NEQUIP, layers=2).model_class())


def test_a_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    plain = tmp_path / "weights.pt"
    torch.save(trained().state_dict(), plain)
    with pytest.raises(ValueError, match="not an eqdsl checkpoint"):
        checkpoint.load(plain, spec=NEQUIP)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not an eqdsl checkpoint"):
        checkpoint.read(garbage)
    with pytest.raises(TypeError, match="exactly one of spec= .* and model_class="):
        checkpoint.load(plain)


def test_the_calculator_from_a_checkpoint_in_a_fresh_process(tmp_path):
    pytest.importorskip("ase")
    pytest.importorskip("vesin")
    from ase.build import bulk

    from eqdsl.ase import Calculator

    model = trained()
    path = tmp_path / "m.pt"
    checkpoint.save(model, path, species=["Cu", "Ni", "H", "O"])
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.calc = Calculator(model, ["Cu", "Ni", "H", "O"])
    here = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    code = (f"import numpy as np\nfrom ase.build import bulk\nfrom eqdsl.ase import Calculator\n"
            f"atoms = bulk('Cu', 'fcc', a=3.6, cubic=True)\n"
            f"atoms.calc = Calculator.from_checkpoint({str(path)!r}, spec={str(NEQUIP)!r})\n"
            f"print(repr(atoms.get_potential_energy()))\n"
            f"print(repr(atoms.get_forces().tolist()))\nprint(repr(atoms.get_stress().tolist()))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    energy, forces, stress = (eval(line) for line in done.stdout.strip().splitlines())
    assert energy == here[0]
    assert np.array_equal(np.array(forces), here[1]) and np.array_equal(np.array(stress), here[2])
