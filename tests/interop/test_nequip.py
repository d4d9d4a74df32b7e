"""eqdsl.interop.nequip: nequip 0.19's NequIP models come out of eqdsl with the same numbers.

Small models of the package with random weights (and random per-type scales and shifts) against the
eqdsl module from_nequip returns: energies, forces and stress on periodic cells and on a molecule in
vacuum, float64 to 1e-10 relative and float32 to 1e-5.  specs/nequip.eq is nequip_spec of the model
SHIPPED builds (regenerate: python tests/interop/test_nequip.py --write).
"""
from __future__ import annotations

import contextlib
import json
import random
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

ase = pytest.importorskip("ase")
from comparison_structures import structures  # noqa: E402


from eqdsl.interop import UnsupportedModel  # noqa: E402
from eqdsl.interop.nequip import from_nequip, nequip_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TYPES = ["Cu", "Ag", "H"]
# the architecture specs/nequip.eq spells: NequIPGNNModel's defaults but for the layers, lmax, parity and size
SHIPPED = dict(type_names=["H", "C", "N", "O"], r_max=5.0, num_layers=3, l_max=2, parity=False, num_features=32,
               radial_mlp_depth=1, radial_mlp_width=128,
               avg_num_neighbors=12.0, per_type_energy_scales=None, per_type_energy_shifts=None)


@contextlib.contextmanager
def nequip_state():
    """nequip's global state (float64 default, its seeds) while building and running its models, and
    this process's own afterwards: nothing else in the test run sees nequip's settings."""
    dtype, py, np_state = torch.get_default_dtype(), random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        from nequip.utils.global_state import set_global_state

        set_global_state()
        torch.set_default_dtype(torch.float64)
        try:
            yield
        finally:
            torch.set_default_dtype(dtype)
            random.setstate(py)
            np.random.set_state(np_state)


def build(model_dtype: str = "float64", seed: int = 0, **kwargs):
    from nequip.model import NequIPGNNModel

    options = dict(seed=seed, model_dtype=model_dtype, r_max=3.5, type_names=TYPES, num_layers=3, l_max=2,
                   parity=False, num_features=6, radial_mlp_width=12, avg_num_neighbors=9.0,
                   per_type_energy_scales={"Cu": 1.3, "Ag": 0.7, "H": 0.4},
                   per_type_energy_shifts={"Cu": -3.1, "Ag": -2.2, "H": -0.6})
    options.update(kwargs)
    with nequip_state(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nequip's advice to set scales and shifts, for the models without them
        return NequIPGNNModel(**options)


def nequip_outputs(model, atoms) -> dict:
    from nequip.data import AtomicDataDict, compute_neighborlist_, from_ase

    with nequip_state():
        data = from_ase(atoms)
        data = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in data.items()}
        data[AtomicDataDict.ATOM_TYPE_KEY] = torch.tensor([TYPES.index(s) for s in atoms.get_chemical_symbols()])
        data = compute_neighborlist_(data, r_max=float(model.model.func.edge_norm.r_max))
        out = model(data)
    result = {"energy": out[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1), "forces": out[AtomicDataDict.FORCE_KEY]}
    if atoms.pbc.all():
        result["stress"] = out[AtomicDataDict.STRESS_KEY].reshape(3, 3)
    return {k: v.detach().double() for k, v in result.items()}


def eqdsl_outputs(module, atoms) -> dict:
    from eqdsl.atoms import atoms_to_inputs, energy_forces_stress

    periodic = bool(atoms.pbc.all())
    out = energy_forces_stress(module, atoms_to_inputs(module, [atoms], TYPES, module.param_cutoff), stress=periodic)
    result = {"energy": out["energy"].reshape(-1), "forces": out["forces"]}
    if periodic:
        result["stress"] = out["stress"].reshape(3, 3)
    return {k: v.detach().double() for k, v in result.items()}


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


ARCHITECTURES = {
    "parity off, l = 2": {},
    "parity on, l = 3, deeper radial and readout MLPs": dict(
        parity=True, num_layers=4, l_max=3, num_features=[6, 5, 4, 3], radial_mlp_depth=2,
        readout_mlp_hidden_layers_depth=2, readout_mlp_hidden_layers_width=7),
    "residual updates, a self-connection in every layer, no scales or shifts": dict(
        parity=True, num_layers=3, num_features=5, convnet_resnet=True, learnable_shift=True,
        per_type_energy_scales=None, per_type_energy_shifts=None),
    "one layer": dict(num_layers=1),
}


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_float64_models_agree_to_1e_10(arch):
    source = build(**ARCHITECTURES[arch])
    module = from_nequip(source)
    assert module.type_names == tuple(TYPES)
    assert next(module.parameters()).dtype == torch.float64
    for name, atoms in structures().items():
        want, got = nequip_outputs(source, atoms), eqdsl_outputs(module, atoms)
        assert set(got) == set(want)
        for key in want:
            assert relative(got[key], want[key]) < 1e-10, (arch, name, key, relative(got[key], want[key]))


def test_float32_models_agree_to_1e_5():
    source = build("float32", seed=3, parity=True)
    module = from_nequip(source)
    assert next(module.parameters()).dtype == torch.float32
    for name, atoms in structures().items():
        want, got = nequip_outputs(source, atoms), eqdsl_outputs(module, atoms)
        for key in want:
            assert relative(got[key], want[key]) < 1e-5, (name, key, relative(got[key], want[key]))


def test_a_different_weight_is_a_different_model():
    """The comparison can fail: one weight of the source changed after the import shows up."""
    source = build()
    module = from_nequip(source)
    with torch.no_grad():
        source.model.func.layer1_convnet.conv.linear_2.weight[3] += 0.1
    atoms = structures()["periodic cell"]
    assert relative(eqdsl_outputs(module, atoms)["energy"], nequip_outputs(source, atoms)["energy"]) > 1e-6


def test_the_spec_compiles_and_is_equivariant_by_eqc_check(tmp_path):
    from eqdsl.cli import main

    spec = tmp_path / "nequip_parity.eq"
    spec.write_text(nequip_spec(build(parity=True, num_layers=4)))
    assert main(["check", str(spec)]) == 0


@pytest.mark.parametrize("feature, kwargs, words", [
    ("a ZBL pair potential", dict(pair_potential={"_target_": "nequip.nn.pair_potential.ZBL", "units": "metal",
                                                  "chemical_species": ["Cu", "Ag", "H"]}), ["pair potential"]),
    ("per-edge-type cutoffs", dict(per_edge_type_cutoff={"Cu": 3.0, "Ag": 3.2, "H": 2.0}), ["per-edge-type cutoffs"]),
    ("the norm nonlinearity", dict(convnet_nonlinearity_type="norm"), ["NormActivation"]),
    ("another activation", dict(convnet_nonlinearity_scalars={"e": "ssp", "o": "tanh"}), ["shifted_softplus"]),
    ("per-type neighbour counts", dict(avg_num_neighbors={"Cu": 9.0, "Ag": 8.0, "H": 3.0}), ["per-type avg_num_neighbors"]),
    ("a readout MLP of gelu", dict(readout_mlp_hidden_layers_depth=1, readout_mlp_nonlinearity="gelu"), ["GELU"]),
])
def test_what_eqdsl_cannot_say_is_refused_by_name(feature, kwargs, words):
    source = build(**kwargs)
    with pytest.raises(UnsupportedModel) as err:
        from_nequip(source)
    for word in words:
        assert word in str(err.value), (feature, str(err.value))


def test_trained_bessel_roots_are_refused():
    source = build(bessel_trainable=True)
    with torch.no_grad():
        source.model.func.bessel_encode.bessel_weights[0] += 0.01
    with pytest.raises(UnsupportedModel, match="Bessel roots"):
        from_nequip(source)


def test_the_package_benchmark_times_models_that_agree(tmp_path):
    """python -m eqdsl.benchmarks.packages: one call of each on both structures, and its README block."""
    from eqdsl.benchmarks import packages

    with nequip_state():
        rows = packages.run_nequip(1, "float64", torch.device("cpu"))
    assert [r["atoms"] for r in rows] == [87, 256] and rows[0]["edges"] == 2076
    for r in rows:
        assert r["agreement"]["energy"] < 1e-10 and r["agreement"]["forces"] < 1e-10, r
        assert r["package_ms"] > 0 and r["eqdsl_ms"] > 0 and r["package"].startswith("nequip ")
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{packages.START}\nold\n{packages.END}\nafter\n")
    packages.write_readme(readme, packages.table(rows, "float64", torch.device("cpu"), 1))
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert "| 87-atom Cu cluster | 87 | 2076 |" in text and "| NequIP (nequip " in text


def test_eqc_bench_runs_the_package_comparison(tmp_path, capsys):
    """`eqc bench --packages nequip`: the same comparison as one prepared command (a GPU's, with --device cuda)."""
    from eqdsl.cli import main

    md, js = tmp_path / "packages.md", tmp_path / "packages.json"
    with nequip_state():
        assert main(["bench", "--packages", "nequip", "--device", "cpu", "--repeat", "1",
                     "--markdown", str(md), "--json", str(js)]) == 0
    assert "| NequIP (nequip " in md.read_text() and "| 256-atom periodic Cu cell | 256 |" in md.read_text()
    rows = json.loads(js.read_text())["rows"]
    assert [r["atoms"] for r in rows] == [87, 256] and all(r["agreement"]["forces"] < 1e-4 for r in rows)
    with pytest.raises(SystemExit, match="--problems belong to a run of the suite"):
        main(["bench", "--packages", "--problems", "uvu-L6"])
    with pytest.raises(SystemExit, match="no --plot"):
        main(["bench", "--packages", "--plot", str(tmp_path / "p.png")])


def shipped_spec() -> str:
    return nequip_spec(build(**SHIPPED))


def test_shipped_spec_is_nequip():
    assert (ROOT / "specs" / "nequip.eq").read_text() == shipped_spec(), \
        "specs/nequip.eq is not nequip_spec(SHIPPED): python tests/interop/test_nequip.py --write"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        (ROOT / "specs" / "nequip.eq").write_text(shipped_spec())
        print("wrote specs/nequip.eq")
    else:
        sys.exit("usage: python tests/interop/test_nequip.py --write")
