"""mace-torch models for the comparisons with MACE (tests/interop/mace_worker.py, python -m
eqdsl.benchmarks.packages): built with random weights, and MACE's input dictionary for a graph that
eqdsl.atoms made.  Imported only inside mace-torch's own environment (eqdsl.benchmarks.mace_env)."""
from __future__ import annotations

import numpy as np
import torch

# the architecture specs/mace.eq spells: mace-torch's MACE with its usual small settings
SHIPPED = dict(r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3, num_interactions=2,
               hidden_irreps="16x0e+16x1o+16x2e", MLP_irreps="16x0e", correlation=3, radial_MLP=[64, 64, 64],
               avg_num_neighbors=8.0, atomic_numbers=[1, 6, 8], atomic_energies=[-13.6, -1029.8, -2041.8])


def build(dtype=torch.float64, seed=0, scale_shift=True, **kwargs):
    """A mace-torch model (ScaleShiftMACE, or MACE with scale_shift=False) with N(0, 1) weights; keyword
    arguments are MACE's, plus `first` and `interaction`, the names of the interaction classes."""
    from e3nn import o3
    from mace import modules

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
