"""The structures both importers' comparisons run on (tests/interop/test_nequip.py and, in mace-torch's own
environment, tests/interop/mace_worker.py): a rattled periodic cubic cell, a skewed primitive cell of two
atoms repeated twice, a molecule in vacuum; elements Cu, Ag and H."""
from __future__ import annotations

import ase
import ase.build
import numpy as np


def structures() -> dict:
    bulk = ase.build.bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))
    bulk.symbols[[1, 4]] = "Ag"
    bulk.symbols[6] = "H"
    bulk.rattle(0.1, seed=0)
    skew = ase.build.bulk("Ag", "fcc", a=4.1).repeat((2, 1, 1))  # a primitive (non-orthogonal) cell, twice
    skew.set_cell(skew.cell[:] + np.array([[0.0, 0.1, 0.0], [0.0, 0.0, 0.2], [0.1, 0.0, 0.0]]), scale_atoms=True)
    skew.symbols[1] = "H"
    skew.rattle(0.05, seed=1)
    molecule = ase.Atoms("CuAgH2Cu", positions=[[0, 0, 0], [2.4, 0.1, 0], [1.1, 1.5, 0.3], [-0.9, 0.8, 1.2],
                                                 [0.4, -0.5, 2.3]])
    return {"periodic cell": bulk, "primitive skewed cell": skew, "molecule": molecule}
