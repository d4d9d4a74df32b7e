"""gradient_outputs=False: a generated module leaves out what it computes from grad(...) (forces), for
callers that differentiate the energy themselves; everything else is what it was."""
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl.atoms import without_gradient_outputs
from eqdsl.testing import random_sample

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.eq"))


def classes():
    for spec in SPECS:
        compiled = eqdsl.compile_file(spec)
        for name in compiled.model_names:
            yield pytest.param(compiled.model_class(name), id=f"{spec.stem}.{name}")


@pytest.mark.parametrize("cls", list(classes()))
def test_gradient_outputs_are_left_out_and_the_rest_unchanged(cls):
    names = [name for name, *_ in cls.OUTPUTS]
    if not cls.GRADIENT_OUTPUTS:
        assert "gradient_outputs" not in cls.__init__.__code__.co_varnames
        return
    assert set(cls.GRADIENT_OUTPUTS) < set(names)
    torch.manual_seed(0)
    model = cls().double()
    sample = random_sample(cls, np.random.default_rng(0), dtype=torch.float64)
    full = model(**sample.inputs, **sample.kwargs)
    with without_gradient_outputs(model):
        assert model.gradient_outputs is False
        with torch.no_grad():
            part = model(**sample.inputs, **sample.kwargs)
    assert model.gradient_outputs is True
    assert sorted(part) == sorted(set(names) - set(cls.GRADIENT_OUTPUTS))
    for key in part:
        assert torch.equal(part[key], full[key].detach()), key
        assert not part[key].requires_grad  # under no_grad nothing was recorded for a backward pass
    assert sorted(cls(gradient_outputs=False).double()(**sample.inputs, **sample.kwargs)) == sorted(part)


def test_some_shipped_spec_has_gradient_outputs():
    assert any(p.values[0].GRADIENT_OUTPUTS for p in classes())
