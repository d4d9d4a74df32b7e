"""An ASE calculator for potentials compiled by eqdsl: energy, free_energy, forces and stress.

    from eqdsl.ase import Calculator
    atoms.calc = Calculator(model, species=["Cu"], cutoff=5.0)
    atoms.calc = Calculator.from_exported("cu.pt2", species=["Cu"])   # an artifact of eqc export
    atoms.get_potential_energy(); atoms.get_forces(); atoms.get_stress()

`species` maps chemical symbols to the columns of the model's one-hot species input, in order.
Units are the model's: a model trained on eV and Angstrom gives ASE's own units.  The model's dtype
(float32 or float64) is used throughout; torch's global default dtype is left alone.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional, Sequence

import numpy as np
import torch

from .atoms import atoms_to_inputs, energy_forces_stress, potential_inputs
from .extras import missing_package


def __getattr__(name: str):
    # the class derives from ASE's, so it is made on first use: without ase, one line saying what to install
    if name == "Calculator":
        return _calculator_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=None)
def _calculator_class():
    try:
        from ase.calculators.calculator import Calculator as AseCalculator, all_changes
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(missing_package("ase", "eqdsl.ase.Calculator", extra="atoms")) from e

    class Calculator(AseCalculator):
        """A compiled potential as an ase Calculator (see the module docstring)."""

        implemented_properties = ["energy", "free_energy", "forces", "stress"]

        def __init__(self, model: torch.nn.Module, species: Sequence[str], cutoff: Optional[float] = None, **kwargs):
            super().__init__(**kwargs)
            self.roles = potential_inputs(model)
            # a compiled module, or an exported artifact (eqdsl.export.load_exported) that differentiates itself
            self.model = model.eval() if isinstance(model, torch.nn.Module) else model
            self.species = list(species)
            if cutoff is None:  # the spec's `cutoff` parameter, when it has one
                cutoff = getattr(model, "param_cutoff", None)
            if cutoff is None:
                raise ValueError(f"{type(model).__name__} has no cutoff parameter: pass cutoff= (the neighbour-list radius)")
            self.cutoff = float(cutoff)

        @classmethod
        def from_checkpoint(cls, path, *, spec=None, model_class=None, species: Optional[Sequence[str]] = None,
                            dtype: Optional[torch.dtype] = None, device="cpu", **kwargs):
            """A calculator for a model saved with eqdsl.checkpoint.save (see eqdsl.checkpoint.load for spec=,
            model_class=, dtype= and device=); `species` defaults to the one saved with it (save(..., species=))."""
            from . import checkpoint

            model = checkpoint.load(path, spec=spec, model_class=model_class, dtype=dtype, device=device)
            species = species if species is not None else checkpoint.read(path)["extra"].get("species")
            if species is None:
                raise ValueError(f"{path} records no species: pass species=[...] (the elements of the one-hot columns)")
            return cls(model, species, **kwargs)

        @classmethod
        def from_exported(cls, path, species: Sequence[str], **kwargs):
            """A calculator running an artifact written by eqdsl.export.export_potential (any format); the
            cutoff is the one exported with it unless cutoff= is given."""
            from .export import load_exported
            return cls(load_exported(path), species, **kwargs)

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            inputs = atoms_to_inputs(self.model, self.atoms, self.species, self.cutoff)
            periodic = bool(all(self.atoms.pbc))
            if "stress" in properties and not periodic:
                raise ValueError("stress needs a cell periodic in all three directions (atoms.pbc all True)")
            want_stress = periodic  # one call answers energy, forces and stress: cell filters ask for all three
            out = energy_forces_stress(self.model, inputs, stress=want_stress)
            energy = float(out["energy"][0])
            self.results["energy"] = energy
            self.results["free_energy"] = energy
            self.results["forces"] = out["forces"].cpu().numpy().astype(np.float64)
            if want_stress:
                s = out["stress"][0].cpu().numpy().astype(np.float64)
                self.results["stress"] = s[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]  # Voigt: xx yy zz yz xz xy

    Calculator.__module__ = __name__
    return Calculator
