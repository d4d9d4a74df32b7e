"""Soft symmetry: `soft group` declarations, layers with unconstrained paths (`approximate = true`), the
generated equivariance_penalty() and the strengths learned from the data."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl import soft, testing
from eqdsl.backends.reference import soft_layers

ROOT = Path(__file__).resolve().parents[2]


def _model(tmp_path, text, name="m.eq"):
    path = tmp_path / name
    path.write_text(text)
    torch.manual_seed(0)
    return eqdsl.compile_file(path).model_class()().double()


EXACT_UNDER_SOFT = """group O3
soft group SO3

model Exact {
    input pos : position @node
    input h : 4x0e @node
    input edges : graph
    r = pos[dst] - pos[src]
    w = mlp(concat(h[src], norm(r)), 16) -> 1x0e
    output v : 1x1o @node = scatter_sum(r * w, dst)
    output e : 1x0e @graph = sum_nodes(mlp(h, 8) -> 1x0e)
}
"""


def test_the_penalty_is_zero_for_an_exactly_equivariant_model(tmp_path):
    model = _model(tmp_path, EXACT_UNDER_SOFT)
    assert type(model).SOFT_GROUPS == (("SO3", ("irreps", "SO3")),)
    sample = testing.random_sample(type(model), np.random.default_rng(0))
    result = model.equivariance_penalty(**sample.inputs, **sample.kwargs, samples=3)
    assert float(result["penalty"].detach()) < 1e-25 and float(result["error/SO3"].detach()) < 1e-25
    assert float(result["strength/SO3"]) == 1.0


def test_the_penalty_is_positive_for_a_broken_symmetry_and_reaches_the_weights():
    torch.manual_seed(0)
    model = eqdsl.compile_file(ROOT / "specs" / "gravity_soft.eq").model_class()().double()
    assert [name for name, _ in type(model).SOFT_GROUPS] == ["O3", "Mirror"]
    sample = testing.random_sample(type(model), np.random.default_rng(0))
    result = model.equivariance_penalty(**sample.inputs, **sample.kwargs)
    assert float(result["error/O3"].detach()) > 1e-3          # gravity's direction and the height break O(3)
    assert float(result["error/Mirror"].detach()) < 1e-25     # no layer of this spec can tell left from right
    result["penalty"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().max()) > 0 for g in grads)


def test_strengths_follow_whether_the_symmetry_helps_the_fit():
    """The hypergradient step: a task loss that wants the model symmetric raises the strength, one that
    wants it broken lowers it, and a group the model cannot break leaves it unchanged."""
    torch.manual_seed(0)
    model = eqdsl.compile_file(ROOT / "specs" / "gravity_soft.eq").model_class()().double()
    sample = testing.random_sample(type(model), np.random.default_rng(1))
    result = model.equivariance_penalty(**sample.inputs, **sample.kwargs)
    before = model.soft_log_strength.clone()
    aligned = soft.tune_strengths(model, result["error/O3"] * 2.0, result)  # the task "is" the symmetry
    assert aligned["O3"] == pytest.approx(1.0) and aligned["Mirror"] == 0.0
    assert float(model.soft_log_strength[0]) > float(before[0])
    assert float(model.soft_log_strength[1]) == float(before[1])
    soft.tune_strengths(model, -result["error/O3"], result)  # the task wants it broken
    soft.tune_strengths(model, -result["error/O3"], result)
    assert float(model.soft_log_strength[0]) < float(before[0])
    assert set(soft.strengths(model)) == {"O3", "Mirror"}


APPROXIMATE = """group O3

model Approx {
    input pos : position @node
    input h : 4x0e @node
    input edges : graph
    r = pos[dst] - pos[src]
    m = tensor_product(h[src], r, approximate = true) -> 4x1o
    v = linear(scatter_sum(m, dst), approximate = true) -> 1x1o
    output f : 1x1o @node = v + linear(h, approximate = true) -> 1x1o
}
"""


def test_approximate_layers_start_exact_and_are_pulled_by_their_own_group(tmp_path):
    model = _model(tmp_path, APPROXIMATE)
    cls = type(model)
    assert [op for op, _ in cls.APPROXIMATE] == ["tensor_product", "linear", "linear"]
    assert cls.SOFT_GROUPS == (("O3", ("irreps", "O3")),)  # the model's own group becomes soft
    # the residual of linear(h) -> 1x1o (Schur: no equivariant part) is the layer itself: not zero
    errors = testing.equivariance_errors(model, np.random.default_rng(0), trials=2)
    assert errors["f"] > 1e-3
    sample = testing.random_sample(cls, np.random.default_rng(0))
    assert float(model.equivariance_penalty(**sample.inputs, **sample.kwargs)["error/O3"].detach()) > 1e-6
    # the unconstrained paths beside an equivariant map start at zero
    free = [m for m in model.modules() if isinstance(m, soft_layers.WithResidual) and m.equivariant is not None]
    assert free and all(float(m.free.abs().max()) == 0.0 for m in free)
    bilinear = [m for m in model.modules() if isinstance(m, soft_layers.FreeBilinear)]
    assert bilinear and float(bilinear[0].weight.abs().max()) == 0.0


def test_an_approximate_mlp_reads_any_representation(tmp_path):
    model = _model(tmp_path, """group O3
model M {
    input v : 1x1o + 2x0e @node
    output y : 1x0e @node = mlp(v, 8, approximate = true) -> 1x0e
}
""")
    assert [op for op, _ in type(model).APPROXIMATE] == ["mlp"]
    errors = testing.equivariance_errors(model, np.random.default_rng(0), trials=2)
    assert errors["y"] > 1e-3  # an MLP on a vector's components is not invariant


def test_unconstrained_paths_have_correct_gradients():
    torch.manual_seed(0)
    res = soft_layers.WithResidual(torch.nn.Linear(5, 3), 5, 3).double()
    with torch.no_grad():
        res.free.normal_()
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(res, (x,))
    bil = soft_layers.FreeBilinear(3, 4, 2).double()
    with torch.no_grad():
        bil.weight.normal_()
    a = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(bil, (a, b))


def test_eqc_check_reports_soft_groups_without_enforcing_them():
    proc = subprocess.run([sys.executable, "-m", "eqdsl.cli", "check", str(ROOT / "specs" / "gravity_soft.eq")],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    o3 = re.search(r"soft group O3 \(reported, not enforced\): max relative error force ([\d.e+-]+)", proc.stdout)
    mirror = re.search(r"soft group Mirror \(reported, not enforced\): max relative error force ([\d.e+-]+)", proc.stdout)
    assert o3 and float(o3[1]) > 1e-2, proc.stdout
    assert mirror and float(mirror[1]) < 1e-12, proc.stdout
    assert re.search(r"force\s+max relative error [\d.e+-]+\s+ok", proc.stdout)  # exact under Axial


def test_train_soft_example_quick_run(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "train_soft.py"), "--quick", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=600).stdout
    rows = {m[1].strip(): m for m in re.finditer(
        r"^(exact O\(3\)|soft \(Axial \+ soft O3\)|soft spec, no penalty|unconstrained)\s+(\d+)\s+([\d.]+) \[[\d.-]+\]"
        r"\s+([\d.e+-]+)\s+([\d.e+-]+)", out, re.M)}
    assert len(rows) == 4, out
    assert float(rows["exact O(3)"][4]) < 1e-5 and float(rows["exact O(3)"][5]) < 1e-5   # exact under both
    assert float(rows["soft (Axial + soft O3)"][4]) < 1e-5                                # exact about z
    assert float(rows["unconstrained"][4]) > 1e-3                                        # symmetric under neither
    assert (tmp_path / "nero_tilts.json").exists()


def test_eqc_nero_sweeps_a_soft_group(tmp_path):
    """The model is exact about z (its group) and broken under tilts (its soft O3)."""
    import json

    def nero(*args):
        return subprocess.run([sys.executable, "-m", "eqdsl.cli", "nero", str(ROOT / "specs" / "gravity_soft.eq"),
                               "--steps", "5", *args], capture_output=True, text=True, cwd=ROOT, timeout=600)

    assert nero("--soft", "O3", "--axis", "z", "--json", tmp_path / "z.json").returncode == 0
    assert nero("--soft", "O3", "--axis", "x", "--json", tmp_path / "x.json").returncode == 0
    about_z = json.loads((tmp_path / "z.json").read_text())["errors"]["force"]
    tilts = json.loads((tmp_path / "x.json").read_text())["errors"]["force"]
    assert max(about_z) < 1e-12 and tilts[0] < 1e-12 and max(tilts) > 1e-2
    refused = nero()
    assert refused.returncode == 1 and "--soft O3" in refused.stderr
