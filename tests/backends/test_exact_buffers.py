"""A model trained in float32 and converted to float64 (for MD, for eqc check) gets its constants back
exactly: Clebsch-Gordan tensors, harmonics couplings, product bases, solved matrix-group bases."""
from pathlib import Path

import pytest
import torch

import eqdsl
from eqdsl.backends.reference import SphericalHarmonics, TensorProduct
from eqdsl.groups import O3
from eqdsl.reps import tp as tpd
from eqdsl.reps.irreps import Irreps
from eqdsl.reps.so3 import wigner_3j
from eqdsl.testing import assert_equivariant

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", ["nequip", "mace", "tetris"])
def test_float32_then_float64_is_as_exact_as_float64(spec):
    torch.manual_seed(0)
    model = eqdsl.compile_file(ROOT / "specs" / f"{spec}.eq").model_class()().float().double()
    errors = assert_equivariant(model, tol=1e-12)
    assert max(errors.values()) < 1e-12


def test_constant_buffers_round_trip_exactly():
    g = O3
    desc = tpd.describe(g, Irreps.parse("2x1o+1x2e", g), Irreps.parse("1x0e+1x1o+1x2e", g), "uvw",
                        out=Irreps.parse("2x1e+1x2o", g))
    tp = TensorProduct(desc).float().double()
    name = tp.cg_names[0]
    ls = tuple(int(x) for x in name.split("_")[1:])
    assert torch.equal(getattr(tp, name), torch.tensor(wigner_3j(*ls)))  # a copy: the cached array is read-only
    sh = SphericalHarmonics(4)
    before = sh.c2.clone()
    assert torch.equal(sh.float().double().c2, before)
