"""The layer graph: deterministic order, a verifier that catches inconsistent nodes, a readable listing."""
from pathlib import Path

import pytest

from eqdsl.ir.types import tensor
from eqdsl.compiler import check_file
from eqdsl.groups import O3
from eqdsl.ir.printer import format_model
from eqdsl.ir.verify import IRVerificationError, verify
from eqdsl.reps.irreps import Irreps

ROOT = Path(__file__).resolve().parents[2]


def nequip():
    result = check_file(ROOT / "specs" / "nequip.eq", overrides={"layers": 2})
    assert result.ok
    return result.models[0]


def first(model, op):
    return next(n for n in model.order() if model.node(n)["op"] == op)


def test_verifier_accepts_checked_models():
    verify(nequip())


def test_verifier_catches_a_wrong_stored_type():
    model = nequip()
    node = first(model, "linear")
    model.node(node)["type"] = tensor(Irreps.parse("7x0e", O3), "node")
    with pytest.raises(IRVerificationError, match="stored type"):
        verify(model)


def test_verifier_catches_an_attribute_that_breaks_a_rule():
    model = nequip()
    node = first(model, "linear")
    model.node(node)["attrs"]["out"] = Irreps.parse("32x1o", O3)  # no 1o in the species input: Schur
    with pytest.raises(IRVerificationError, match="E0201"):
        verify(model)


def test_verifier_catches_a_stale_descriptor():
    model = nequip()
    tps = [n for n in model.order() if model.node(n)["op"] == "conv"]  # fused tensor products
    a, b = model.node(tps[0])["attrs"], model.node(tps[1])["attrs"]
    a["descriptor"] = b["descriptor"]
    with pytest.raises(IRVerificationError):
        verify(model)


def test_order_is_deterministic_and_topological():
    model = nequip()
    order = model.order()
    assert order == nequip().order()
    position = {n: i for i, n in enumerate(order)}
    for u, v in model.graph.edges():
        assert position[u] < position[v]


def test_listing_names_ops_types_lines_and_scopes():
    result = check_file(ROOT / "specs" / "nequip.eq", overrides={"layers": 3})
    text = format_model(result.models[0])
    assert text.startswith("model NequIP(cutoff = 5.0, avg_neighbors = 12.0, layers = 3)  group O3")
    assert "conv(x=" in text and "mode=uvu" in text and "gather_index=src, scatter_index=dst" in text
    assert "(line 20)  [repeat 1/1 > block interaction2]" in text  # the middle layer's first line
    assert "outputs: energy <- n" in text
