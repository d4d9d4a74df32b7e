"""eqdsl.interop.mace: mace-torch 0.3.16's MACE models come out of eqdsl with the same numbers.

mace-torch pins e3nn 0.4.4 (the test extra has e3nn 0.6), so the comparison runs in a virtualenv of its
own (eqdsl.benchmarks.mace_env: made on first use, then reused) by tests/interop/mace_worker.py: small
models of several architectures with random weights against from_mace's module, energies, forces and
stress on two periodic cells and a molecule, float64 to 1e-10 relative and float32 to 1e-5; models with
features eqdsl cannot express are refused naming the feature; specs/mace.eq is mace_spec of the model
mace_worker.SHIPPED builds (regenerate: python tests/interop/test_mace.py --write).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import eqdsl
from eqdsl.backends.reference import SymmetricContraction
from eqdsl.benchmarks import mace_env
from eqdsl.groups import O3
from eqdsl.interop import UnsupportedModel
from eqdsl.interop._weights import set_symmetric_order
from eqdsl.reps.irreps import Irreps

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("mace_worker.py")
SPEC = ROOT / "specs" / "mace.eq"


@pytest.fixture(scope="module")
def report() -> dict:
    return mace_env.run_json(WORKER)


def test_models_agree_with_mace_torch(report):
    compared = {arch: dict(outputs) for arch, outputs in report["compare"].items()}
    dtypes = [outputs.pop("dtype") for outputs in compared.values()]
    assert len(compared) >= 5 and "torch.float32" in dtypes and "torch.float64" in dtypes
    for (arch, per_structure), dtype in zip(compared.items(), dtypes):
        tol = 1e-10 if dtype == "torch.float64" else 1e-5
        assert set(per_structure) == {"periodic cell", "primitive skewed cell", "molecule"}
        for structure, outputs in per_structure.items():
            assert set(outputs) == ({"energy", "forces"} if structure == "molecule" else {"energy", "forces", "stress"})
            for key, error in outputs.items():
                assert error < tol, (arch, structure, key, error)


def test_unsupported_models_are_refused_naming_the_feature(report):
    for name, outcome in report["refusals"].items():
        assert outcome["refused"], name
        assert outcome["word"] in outcome["message"], (name, outcome["message"])


def test_the_shipped_spec_is_mace_as_mace_torch_builds_it(report):
    assert SPEC.read_text() == report["shipped"]["spec"], "regenerate: python tests/interop/test_mace.py --write"


def test_e3nn_0_4_couplings_differ_from_eqdsls_by_signs_the_import_folds_in(report):
    assert report["signs"] == {"0,1,1": 1.0, "1,1,2": 1.0, "1,2,2": -1.0, "1,3,3": -1.0, "2,2,2": 1.0}


def test_the_package_benchmark_times_mace_models_that_agree(report):
    rows = report["bench"]["rows"]
    assert [r["atoms"] for r in rows] == [87, 256] and rows[0]["edges"] == 2076
    for r in rows:
        assert r["model"] == "MACE" and r["package"] == "mace-torch 0.3.16"
        assert r["agreement"]["energy"] < 1e-10 and r["agreement"]["forces"] < 1e-10, r
        assert r["package_ms"] > 0 and r["eqdsl_ms"] > 0


def test_the_shipped_spec_takes_mace_torchs_number_of_layers():
    for layers in (2, 3):
        model = eqdsl.compile_file(SPEC, layers=layers).model_class()()
        kinds = [type(m).__name__ for m in model.children()]
        assert kinds.count("SymmetricContractionLayer") == layers
        assert kinds.count("SelectedLinearLayer") == layers  # skip_tp after the first, self-connections after


def test_a_product_basis_map_outside_the_symmetric_equivariant_maps_is_refused():
    layer = SymmetricContraction(O3, Irreps.parse("2x0e+2x1o", O3), Irreps.parse("2x0e", O3), correlation=2, selectors=3).double()
    u = getattr(layer, "basis_0_2")  # [n, d, d, 1]: an equivariant symmetric map copies over exactly
    coeffs = torch.einsum("n...,ecn->ec...", u, torch.randn(3, 2, u.shape[0], dtype=torch.float64))
    set_symmetric_order(layer, 0, 2, coeffs, "test")
    rebuilt = torch.einsum("n...,enc->ec...", u, layer.weight_0_2.detach())
    assert torch.allclose(rebuilt, coeffs, atol=1e-12)
    antisymmetric = coeffs + 0.0
    antisymmetric[:, :, 1, 2] += 1.0  # a non-symmetric part only: dropped, the same map on a x a
    antisymmetric[:, :, 2, 1] -= 1.0
    set_symmetric_order(layer, 0, 2, antisymmetric, "test")
    assert torch.allclose(torch.einsum("n...,enc->ec...", u, layer.weight_0_2.detach()), coeffs, atol=1e-12)
    broken = coeffs + 0.0
    broken[:, :, 1, 1] += 1.0  # symmetric but not rotation-invariant (one component of the 1o block)
    with pytest.raises(UnsupportedModel, match="outside the equivariant symmetric maps"):
        set_symmetric_order(layer, 0, 2, broken, "test")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    SPEC.write_text(mace_env.run_json(WORKER, "shipped")["shipped"]["spec"])
    print(f"wrote {SPEC.relative_to(ROOT)}")
