"""Message passing scatter_sum(tensor_product(h[src], ...), dst) is lowered to one fused call, only
when nothing else reads the gathered rows or the per-edge products, and gives the same numbers."""
from pathlib import Path

import numpy as np
import pytest
import torch


from eqdsl.api import load_source
from eqdsl.codegen import generate_source
from eqdsl.compiler import check_file
from eqdsl.testing import random_sample

ROOT = Path(__file__).resolve().parents[2]

_SPEC = """group O3
model Conv {{
    input h : 4x0e + 2x1o @node
    input pos : position
    input edges : graph
    r = pos[dst] - pos[src]
    Y = spherical_harmonics(r, lmax = 1)
    W = mlp(norm(r), 8) -> {w}x0e
    g = h[src]
    m = tensor_product(g, Y, weights = W, mode = uvu) -> (4x0e + 2x1o)
    {extra}
    output out = scatter_sum(m, dst)
}}
"""


def _source(text, tmp_path):
    spec = tmp_path / "conv.eq"
    spec.write_text(text)
    result = check_file(spec)
    assert result.ok, [d.message for d in result.diagnostics]
    return generate_source(result)


def _weights(extra=""):
    return _SPEC.format(w=6, extra=extra)


def test_message_passing_is_fused(tmp_path):
    src = _source(_weights(), tmp_path)
    assert src.count(".conv(h, src, Y, W, dst, num_nodes)") == 1
    assert "rt.gather(h, src)" not in src


@pytest.mark.parametrize("extra", ["output gathered = g", "output per_edge = m",
                                   "output doubled = scatter_sum(g + g, dst)"])
def test_not_fused_when_intermediates_are_used(tmp_path, extra):
    src = _source(_weights(extra), tmp_path)
    assert ".conv(" not in src


def test_a_use_no_output_needs_does_not_stop_the_fusion(tmp_path):
    """Dead-code elimination runs first: `k` feeds nothing, so the gathered rows still need not exist."""
    src = _source(_weights("k = g + g"), tmp_path)
    assert src.count(".conv(h, src, Y, W, dst, num_nodes)") == 1
    assert "rt.gather(h, src)" not in src and "k = " not in src


@pytest.mark.parametrize("spec", ["nequip", "mace"])
def test_fused_and_unfused_modules_agree(spec):
    result = check_file(ROOT / "specs" / f"{spec}.eq", verify_ir=True)
    unfused = check_file(ROOT / "specs" / f"{spec}.eq", verify_ir=True, fuse=False)
    assert any(result.models[0].node(n)["op"] == "conv" for n in result.models[0].graph.nodes)
    assert not any(unfused.models[0].node(n)["op"] == "conv" for n in unfused.models[0].graph.nodes)
    fused, plain = load_source(generate_source(result)), load_source(generate_source(unfused))
    name = result.models[0].name
    torch.manual_seed(0)
    a = fused[name]().double()
    b = plain[name]().double()
    b.load_state_dict(a.state_dict())  # same parameter names: fusion changes no module
    sample = random_sample(type(a), np.random.default_rng(0))
    out_a, out_b = a(**sample.inputs, **sample.kwargs), b(**sample.inputs, **sample.kwargs)
    for key in out_a:
        torch.testing.assert_close(out_a[key], out_b[key], rtol=1e-12, atol=1e-12)
