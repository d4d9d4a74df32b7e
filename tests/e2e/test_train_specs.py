"""Every shipped spec trains: a few optimizer steps on a fixed random batch lower the loss.

This catches models whose parameters receive no gradient (a basis lost in lowering, a
detached branch) and layers that produce NaNs under training, for every group.
"""
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl.testing import random_sample

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.eq"))


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_spec_trains_a_few_steps(spec):
    cls = eqdsl.compile_file(spec).model_class()
    torch.manual_seed(0)
    model = cls()
    sample = random_sample(cls, np.random.default_rng(0), dtype=torch.float32)
    with torch.no_grad():
        first = model(**sample.inputs, **sample.kwargs)
    targets = {name: torch.randn_like(value) for name, value in first.items()}

    def loss_fn():
        out = model(**sample.inputs, **sample.kwargs)
        return sum(torch.nn.functional.mse_loss(out[k], targets[k]) for k in targets)

    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        losses.append(loss.item())
        opt.step()
    assert all(np.isfinite(losses))
    params = [p for p in model.parameters() if p.requires_grad]
    assert params, "the model has no trainable parameters"
    untouched = [n for n, p in model.named_parameters() if p.grad is None]
    assert not untouched, f"parameters without gradient: {untouched}"
    assert loss_fn().item() < losses[0]
