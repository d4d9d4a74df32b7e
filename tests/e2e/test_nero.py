"""NERO: equivariance and task errors along a path of rotations; exact specs are flat at rounding, the
approximately equivariant C8 classifier is exact at the grid's rotations only, a broken model shows."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl import testing
from eqdsl.nero import NeroError, equivariance_along, plot, rotation_path, task_error_along, write_json

ROOT = Path(__file__).resolve().parents[2]


def eqc(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "eqdsl.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_eqc_nero_on_the_c8_classifier_is_exact_at_the_grids_rotations_only(tmp_path):
    proc = eqc("nero", ROOT / "specs" / "galaxy_c8.eq", "-o", tmp_path / "n.png", "--json", tmp_path / "n.json",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "n.json").read_text())  # strict JSON: no NaN or Infinity in it
    angles, errors = data["angles_deg"], data["errors"]["votes"]
    assert angles == [0.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 315.0, 360.0]
    for a, e in zip(angles, errors):
        assert (e < 1e-12) if a % 90 == 0 else (e > 1e-5), (a, e)
    assert (tmp_path / "n.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same number eqc check reports for the off-grid elements (same smooth images, same seed)
    torch.manual_seed(0)
    model = eqdsl.compile_file(ROOT / "specs" / "galaxy_c8.eq").model_class()().double()
    reported = testing.approximate_errors(model, np.random.default_rng(0))["votes"]
    assert max(errors) == pytest.approx(reported, rel=1e-9)


def test_an_exact_spec_is_flat_at_rounding_and_matches_the_check(tmp_path):
    torch.manual_seed(0)
    model = eqdsl.compile_file(ROOT / "specs" / "nequip.eq", layers=2).model_class()().double()
    path = rotation_path(type(model).GROUP, steps=13, axis="x")
    result = equivariance_along(model, path, seed=3)
    for name, values in result.errors.items():
        assert len(values) == 13 and max(values) < 1e-12, name
    sample = testing.random_sample(type(model), np.random.default_rng(3))
    t = testing.Transform(path.elements[4], np.zeros(3), np.arange(sample.num_nodes))
    assert testing.errors_under(model, sample, t, np.arange(sample.num_edges)) == {
        name: values[4] for name, values in result.errors.items()}
    assert path.angles_deg[4] == pytest.approx(120.0)
    write_json(result, tmp_path / "r.json")
    plot(result, tmp_path / "r.png")
    assert json.loads((tmp_path / "r.json").read_text())["errors"]["energy"] == result.errors["energy"]


class Broken(torch.nn.Module):
    """Shaped like a generated module, with a fixed direction in it: exact only at 0 and 360 degrees."""
    GROUP = "SO3"
    INPUTS = (("pos", "point", None, "node"),)
    OUTPUTS = (("v", "tensor", "1x1", "node"),)

    def forward(self, pos):
        centred = pos - pos.mean(0)
        return {"v": centred + torch.tensor([1.0, 0.0, 0.0], dtype=pos.dtype)}


def test_a_broken_model_shows_on_its_orbit():
    path = rotation_path("SO3", steps=9)
    sample = testing.Sample({"pos": torch.randn(5, 3, dtype=torch.float64)}, {}, 5, 0)
    errors = equivariance_along(Broken(), path, sample=sample).errors["v"]
    assert errors[0] < 1e-14 and errors[-1] < 1e-14
    assert min(errors[1:-1]) > 1e-2 and errors[4] == max(errors)  # worst at 180 degrees


def test_task_error_along_the_orbit():
    pos = torch.randn(6, 3, dtype=torch.float64)
    data = [({"pos": pos}, {}, {"v": pos - pos.mean(0)})]  # targets of an exactly equivariant task
    path = rotation_path("SO3", steps=5)
    errors = task_error_along(Broken(), data, path).errors["v"]
    assert errors == pytest.approx([1.0 / 3.0] * 5)  # the constant offset, wherever the orbit goes
    with pytest.raises(NeroError, match="not outputs"):
        task_error_along(Broken(), [({"pos": pos}, {}, {"w": pos})], path)


def test_groups_without_a_path_and_bad_steps_are_clear_errors(tmp_path):
    proc = eqc("nero", ROOT / "specs" / "lorentz_jets.eq", "--json", tmp_path / "x.json", cwd=tmp_path)
    assert proc.returncode == 1 and "no built-in rotation path" in proc.stderr and "Traceback" not in proc.stderr
    with pytest.raises(NeroError, match="at least 2"):
        rotation_path("O3", steps=1)


def test_eqc_nero_with_trained_weights(tmp_path):
    from eqdsl import checkpoint

    spec = ROOT / "specs" / "nequip.eq"
    torch.manual_seed(5)
    checkpoint.save(eqdsl.compile_file(spec, layers=2).model_class()(), tmp_path / "w.pt")
    proc = eqc("nero", spec, "--weights", tmp_path / "w.pt", "--json", tmp_path / "n.json", "--steps", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "n.json").read_text())
    assert data["weights"].endswith("w.pt") and data["model"] == "NequIP" and len(data["angles_deg"]) == 5
    assert max(data["errors"]["forces"]) < 1e-12
    proc = eqc("nero", spec, "--weights", tmp_path / "w.pt", "-D", "layers=2", cwd=tmp_path)
    assert proc.returncode == 2 and "leave out -D" in proc.stderr
