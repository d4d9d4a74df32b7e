"""Run inside a virtualenv with mace-torch 0.3.16 (e3nn 0.4.4) and eqdsl: small MACE models with random
weights against the eqdsl modules eqdsl.interop.mace.from_mace returns, on periodic cells and a molecule.
Prints one JSON object: per model, structure and output the relative difference (tests/interop/test_mace.py
reads it), or the refusal of each unsupported model.  Usage: python mace_worker.py compare|refusals|spec
"""
from __future__ import annotations

import json
import sys
import warnings

import torch

warnings.filterwarnings("ignore")

from comparison_structures import structures  # noqa: E402

from eqdsl.atoms import atoms_to_inputs, energy_forces_stress  # noqa: E402
from eqdsl.benchmarks.mace_models import SHIPPED, build, mace_data  # noqa: E402
from eqdsl.interop import UnsupportedModel  # noqa: E402
from eqdsl.interop.mace import from_mace, mace_spec  # noqa: E402

def compare(source, module, atoms) -> dict:
    periodic = bool(atoms.pbc.all())
    inputs = atoms_to_inputs(module, [atoms], module.type_names, float(source.r_max))
    got = energy_forces_stress(module, inputs, stress=periodic)
    out = source(mace_data(source, inputs), compute_force=True, compute_stress=periodic)
    want = {"energy": out["energy"].reshape(-1), "forces": out["forces"]}
    if periodic:
        want["stress"] = out["stress"].reshape(3, 3)
    result = {}
    for key, w in want.items():
        g = got[key].reshape(w.shape).detach().double()
        result[key] = float((g - w.detach().double()).norm() / w.detach().double().norm())
    return result


ARCHITECTURES = {
    "scale-shift MACE, l = 2, correlation 3": {},
    "MACE without scale-shift, l = 3, three layers, correlation 2 then 3": dict(
        scale_shift=False, max_ell=3, num_interactions=3, correlation=[2, 3, 3], hidden_irreps="3x0e+3x1o+3x2e"),
    "one residual layer, element-agnostic product": dict(
        first="RealAgnosticResidualInteractionBlock", num_interactions=1, use_agnostic_product=True),
    "last readout only, 1e features": dict(use_last_readout_only=True, hidden_irreps="3x0e+3x1o+3x1e"),
    "float32": dict(dtype=torch.float32, seed=3),
}


def run_compare() -> dict:
    report = {}
    for name, options in ARCHITECTURES.items():
        source = build(**options)
        module = from_mace(source)
        report[name] = {"dtype": str(next(module.parameters()).dtype),
                        **{s: compare(source, module, atoms) for s, atoms in structures().items()}}
    return report


# models using what eqdsl's MACE cannot say, and a word the refusal must name
UNSUPPORTED = {
    "pair repulsion": (dict(pair_repulsion=True), "pair repulsion"),
    "distance transform": (dict(distance_transform="Agnesi"), "distance transform"),
    "gaussian radial basis": (dict(radial_type="gaussian"), "GaussianBasis"),
    "two heads": (dict(heads=["a", "b"]), "heads"),
    "density interaction": (dict(interaction="RealAgnosticDensityInteractionBlock"), "RealAgnosticDensityInteractionBlock"),
    "odd scalars the first product cannot reach": (dict(hidden_irreps="3x0e+3x0o"), "0o"),
}


def run_refusals() -> dict:
    report = {}
    for name, (options, word) in UNSUPPORTED.items():
        try:
            from_mace(build(**options))
            report[name] = {"refused": False, "word": word}
        except UnsupportedModel as e:
            report[name] = {"refused": True, "word": word, "message": str(e)}
    return report


def run_shipped() -> dict:
    model = build(**SHIPPED)
    return {"spec": mace_spec(model), "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def run_signs() -> dict:
    """e3nn 0.4.4's couplings against eqdsl's: the signs the convolution weights absorb."""
    from eqdsl.interop._weights import cg_sign

    return {f"{l1},{l2},{l3}": cg_sign(l1, l2, l3) for l1, l2, l3 in [(0, 1, 1), (1, 1, 2), (1, 2, 2), (1, 3, 3), (2, 2, 2)]}


def run_bench() -> dict:
    """python -m eqdsl.benchmarks.packages's MACE half, one call of each (float64: the two must agree)."""
    from eqdsl.benchmarks import packages

    return {"rows": packages.run_mace(1, "float64", torch.device("cpu"))}


if __name__ == "__main__":
    what = sys.argv[1:] or ["compare", "refusals", "shipped", "signs", "bench"]
    runs = {"compare": run_compare, "refusals": run_refusals, "shipped": run_shipped, "signs": run_signs,
            "bench": run_bench}
    print(json.dumps({name: runs[name]() for name in what}))
