"""Every shipped spec compiles, passes the IR verifier, imports, runs and is equivariant in float64."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl.compiler import check_file
from eqdsl.ir.verify import verify
from eqdsl.testing import GRID_OPS, assert_equivariant, equivariance_errors, grid_errors, random_sample

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.eq"))
IDS = [p.stem for p in SPECS]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_spec_compiles_and_verifies(spec):
    result = check_file(spec, verify_ir=True)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.models
    for model in result.models:
        verify(model)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_spec_is_equivariant_float64(spec):
    compiled = eqdsl.compile_file(spec)
    for name in compiled.model_names:
        torch.manual_seed(0)
        model = compiled.model_class(name)().double()
        if any(op in GRID_OPS for op, _ in getattr(type(model), "APPROXIMATE", ())):
            # equivariant up to the grid's resolution (tests/backends/test_reference_orientations.py): small on
            # a grid 16 times as fine
            sizes, errors = grid_errors(model, seed=1, trials=3)[-1]
            assert max(errors.values()) < 1e-2, (sizes, errors)
        else:
            errors = assert_equivariant(model, trials=3, tol=1e-9, seed=1)
        assert set(errors) == {n for n, *_ in type(model).OUTPUTS}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_outputs_have_declared_shapes_in_float32(spec):
    compiled = eqdsl.compile_file(spec)
    cls = compiled.model_class()
    sample = random_sample(cls, np.random.default_rng(0), dtype=torch.float32)
    out = cls()(**sample.inputs, **sample.kwargs)
    from eqdsl.testing import _irreps
    for name, kind, rep, placement in cls.OUTPUTS:
        rows = {"node": sample.num_nodes, "edge": sample.num_edges, "graph": 2}[placement]
        dim = 3 if kind == "point" else _irreps(cls.GROUP, rep).dim
        shape = (rows, 3, 3) if kind == "rotation" else (rows, dim)  # rotations: matrices of their 3 columns
        assert out[name].shape == shape
        assert out[name].dtype == torch.float32
        assert torch.isfinite(out[name]).all()


def _generate(spec: Path, seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run([sys.executable, "-m", "eqdsl.cli", "compile", str(spec.relative_to(ROOT))],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("spec", [ROOT / "specs" / "nequip.eq", ROOT / "specs" / "tetris.eq"], ids=["nequip", "tetris"])
def test_generated_source_is_byte_identical_across_hash_seeds(spec):
    first, second = _generate(spec, "1"), _generate(spec, "12345")
    assert first == second
    assert str(ROOT) not in first  # no absolute paths


def test_check_detects_broken_translation_equivariance():
    """Mutate generated NequIP code so edge vectors use one endpoint only: eqc check's function must notice."""
    compiled = eqdsl.compile_file(ROOT / "specs" / "nequip.eq", layers=2)
    source = compiled.source.replace("= pos_src - add_1", "= pos_src - 0.0 * add_1")
    assert source != compiled.source
    namespace = {}
    exec(compile(source, "<mutated>", "exec"), namespace)
    model = namespace["NequIP"]().double()
    with pytest.raises(AssertionError, match="equivariance broken"):
        assert_equivariant(model)


def test_check_detects_broken_rotation_equivariance():
    """Stretch one axis of the edge vectors before the invariant dot product: rotations must notice."""
    compiled = eqdsl.compile_file(ROOT / "specs" / "egnn.eq", layers=1)
    match = re.search(r"rt\.dot\((r(?:_\d+)?), ", compiled.source)
    assert match, compiled.source
    r = match.group(1)
    stretched = compiled.source.replace(match.group(0), f"rt.dot({r} * torch.tensor([1.0, 1.0, 2.0], dtype={r}.dtype), ")
    namespace = {}
    exec(compile(stretched, "<mutated>", "exec"), namespace)
    errors = equivariance_errors(namespace["EGNN"]().double(), np.random.default_rng(0))
    assert errors["features"] > 1e-3


def test_eqc_check_cli_passes_and_reports(repo_root, capsys):
    from eqdsl.cli import main
    assert main(["check", "specs/so3_dipole.eq", "--trials", "2"]) == 0
    out = capsys.readouterr().out
    assert "dipole" in out and "equivariant" in out


def test_overrides_change_the_model():
    small = eqdsl.compile_file(ROOT / "specs" / "nequip.eq", layers=2)
    big = eqdsl.compile_file(ROOT / "specs" / "nequip.eq", layers=4)
    assert small.source.count("TensorProductLayer(tpd") == 3  # a convolution per layer, self-connections after the first
    assert big.source.count("TensorProductLayer(tpd") == 7
    with pytest.raises(eqdsl.CompileError, match="names no constant"):
        eqdsl.compile_file(ROOT / "specs" / "nequip.eq", no_such_parameter=2)


def test_float_parameters_are_constructor_arguments():
    cls = eqdsl.compile_file(ROOT / "specs" / "nequip.eq", layers=2).model_class()
    sample = random_sample(cls, np.random.default_rng(0))
    a = cls(cutoff=5.0).double()
    b = cls(cutoff=2.0).double()
    c = cls(cutoff=5.0, avg_neighbors=20.0).double()  # used as avg_neighbors ** 0.5: still a parameter
    b.load_state_dict(a.state_dict())
    c.load_state_dict(a.state_dict())
    ea = a(**sample.inputs, **sample.kwargs)["energy"]
    eb = b(**sample.inputs, **sample.kwargs)["energy"]
    ec = c(**sample.inputs, **sample.kwargs)["energy"]
    assert not torch.allclose(ea, eb) and not torch.allclose(ea, ec)
    assert cls.COMPILE_TIME_PARAMETERS == {"layers": 2}
    assert cls.FLOAT_PARAMETERS == ("cutoff", "avg_neighbors")
