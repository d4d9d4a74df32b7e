"""Run inside a virtualenv with mace-torch 0.3.16 (e3nn 0.4.4) and eqdsl: small MACE models with random
weights against the eqdsl modules eqdsl.interop.mace.from_mace returns, on periodic cells and a molecule.
Prints one JSON object: per model, structure and output the relative difference (tests/interop/test_mace.py
reads it), or the refusal of each unsupported model.  Usage: python mace_worker.py compare|refusals|spec
"""
from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")

from comparison_structures import structures  # noqa: E402
from e3nn import o3  # noqa: E402
from mace import modules  # noqa: E402

from eqdsl.atoms import atoms_to_inputs, energy_forces_stress  # noqa: E402
from eqdsl.interop import UnsupportedModel  # noqa: E402
from eqdsl.interop.mace import from_mace, mace_spec  # noqa: E402

ELEMENTS = ["H", "Cu", "Ag"]   # atomic numbers 1, 29, 47: MACE's one-hot follows the sorted numbers
# the architecture specs/mace.eq spells: mace-torch's MACE with its usual small settings
SHIPPED = dict(r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3, num_interactions=2,
               hidden_irreps="16x0e+16x1o+16x2e", MLP_irreps="16x0e", correlation=3, radial_MLP=[64, 64, 64],
               avg_num_neighbors=8.0, atomic_numbers=[1, 6, 8], atomic_energies=[-13.6, -1029.8, -2041.8])


def build(dtype=torch.float64, seed=0, scale_shift=True, **kwargs):
    options = dict(r_max=3.5, num_bessel=6, num_polynomial_cutoff=5, max_ell=2, num_interactions=2,
                   hidden_irreps="4x0e+4x1o", MLP_irreps="5x0e", correlation=3, radial_MLP=[8, 8],
                   avg_num_neighbors=7.0, atomic_numbers=[1, 29, 47], atomic_energies=[-0.5, -3.1, -2.7],
                   first="RealAgnosticInteractionBlock", interaction="RealAgnosticResidualInteractionBlock")
    options.update(kwargs)
    first, rest = options.pop("first"), options.pop("interaction")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    torch.manual_seed(seed)
    try:
        extra = dict(atomic_inter_scale=1.7, atomic_inter_shift=-0.3) if scale_shift else {}
        cls = modules.ScaleShiftMACE if scale_shift else modules.MACE
        model = cls(interaction_cls_first=modules.interaction_classes[first],
                    interaction_cls=modules.interaction_classes[rest], num_elements=len(options["atomic_numbers"]),
                    gate=torch.nn.functional.silu, hidden_irreps=o3.Irreps(options.pop("hidden_irreps")),
                    MLP_irreps=o3.Irreps(options.pop("MLP_irreps")),
                    atomic_energies=np.array(options.pop("atomic_energies")), **options, **extra)
        with torch.no_grad():  # MACE's initial weights leave some maps tiny: random ones test every path
            for p in model.parameters():
                if p.requires_grad:
                    p.copy_(torch.randn_like(p))
    finally:
        torch.set_default_dtype(previous)
    return model


def mace_data(model, inputs) -> dict:
    """MACE's input dictionary for the same graph eqdsl.atoms made (same edges and shifts)."""
    kw = inputs.kwargs
    n, cell = kw["pos"].shape[0], inputs.cells[0].clone()
    # MACE recomputes the shifts from the integer image offsets (for the strain derivative): shift = S @ cell
    unit = (torch.linalg.solve(cell.T, kw["shift"].T).T.round() if bool(cell.abs().sum() > 0)
            else torch.zeros_like(kw["shift"]))
    return {"positions": kw["pos"].clone(), "node_attrs": kw["species"].clone(), "edge_index": kw["edges"],
            "shifts": kw["shift"].clone(), "unit_shifts": unit,
            "batch": kw["batch"], "ptr": torch.tensor([0, n]), "cell": cell,
            "head": torch.zeros(1, dtype=torch.long)}


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


if __name__ == "__main__":
    what = sys.argv[1:] or ["compare", "refusals", "shipped", "signs"]
    runs = {"compare": run_compare, "refusals": run_refusals, "shipped": run_shipped, "signs": run_signs}
    print(json.dumps({name: runs[name]() for name in what}))
