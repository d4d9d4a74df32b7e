"""CP low-rank tensor products: full rank reproduces the exact product, lower ranks are approximately equivariant
with the measured error never above its bound, gradients are right, and the typing rules ask for the
declaration."""
import numpy as np
import pytest
import torch

import eqdsl
from eqdsl import testing
from eqdsl.backends.reference.low_rank import LowRankProduct, cp_factors
from eqdsl.compiler import check_file
from eqdsl.groups import GROUPS
from eqdsl.reps import tp as tpd
from eqdsl.reps.irreps import Irreps

pytestmark = pytest.mark.usefixtures("float64_default")


def _layer(mode, rank, shared=False):
    g = GROUPS["O3"]
    a, b = Irreps.parse("3x0e + 3x1o + 3x2e", g), Irreps.parse("1x0e + 1x1o + 1x2e", g)
    out = a if mode == "uvu" else Irreps.parse("2x0e + 2x1o + 2x2e", g)
    return LowRankProduct(tpd.describe(g, a, b, mode, out=out), rank, shared_weights=shared)


def test_the_cross_product_has_cp_rank_five():
    assert cp_factors(1, 1, 1, 5)[3] < 1e-10
    assert cp_factors(1, 1, 1, 4)[3] > 1e-2


@pytest.mark.parametrize("mode", ["uvu", "uvw"])
@pytest.mark.parametrize("shared", [False, True])
def test_full_rank_is_the_exact_product(mode, shared):
    layer = _layer(mode, 12, shared)
    d = layer.desc
    x1, x2 = torch.randn(4, d.irreps_in1.dim), torch.randn(4, d.irreps_in2.dim)
    w = None if shared else torch.randn(4, d.weight_numel)
    assert max(layer.residuals) < 1e-10
    assert torch.allclose(layer(x1, x2, w), layer.exact(x1, x2, w), atol=1e-10)


def test_a_low_rank_error_stays_under_its_bound_and_falls_with_the_rank(tmp_path):
    errors = []
    for rank in (3, 6, 12):
        path = tmp_path / f"r{rank}.eq"
        path.write_text(f"""group O3
model Net {{
    input a : 3x0e + 3x1o + 3x2e @node
    input b : 1x0e + 1x1o + 1x2e @node
    output y : 3x0e + 3x1o + 3x2e @node = tensor_product(a, b, mode = uvu, rank = {rank}, approximate = true) -> (3x0e + 3x1o + 3x2e)
}}
""")
        torch.manual_seed(0)
        model = eqdsl.compile_file(path).model_class()().double()
        assert type(model).APPROXIMATE == (("low_rank", f"{path}:5"),)
        assert not getattr(type(model), "SOFT_GROUPS", ())  # a fixed approximation: no penalty to train
        (r,) = testing.low_rank_errors(model, np.random.default_rng(0))
        assert r["error"] <= r["bound"] * (1 + 1e-9) + 1e-13, r
        errors.append(r["error"])
    assert errors[0] > 1e-3 and errors[2] < 1e-10, errors


def test_gradcheck():
    layer = _layer("uvu", 4)
    d = layer.desc
    args = (torch.randn(2, d.irreps_in1.dim, requires_grad=True), torch.randn(2, d.irreps_in2.dim, requires_grad=True),
            torch.randn(2, d.weight_numel, requires_grad=True))
    assert torch.autograd.gradcheck(layer, args)


@pytest.mark.parametrize("extra,code", [(", rank = 4", "E0213"), (", mode = full, rank = 4, approximate = true", "E0104"),
                                        (", rank = -1, approximate = true", "E0108")])
def test_typing_rules(tmp_path, extra, code):
    path = tmp_path / "t.eq"
    mode = "" if "mode" in extra else ", mode = uvu"
    path.write_text(f"group O3\nmodel Net {{\n input a : 2x1o @node\n"
                    f" output y : 2x0e + 2x1o + 2x2e @node = tensor_product(a, a{mode}{extra}) -> (2x0e + 2x1o + 2x2e)\n}}\n")
    if "full" in extra:
        path.write_text(f"group O3\nmodel Net {{\n input a : 2x1o @node\n"
                        f" output y : 4x0e + 4x1e + 4x2e @node = tensor_product(a, a{extra})\n}}\n")
    assert [d.code for d in check_file(path).diagnostics] == [code]


def test_shared_paths_are_the_channelwise_product_with_one_weight_per_channel():
    """Path-weight sharing: the uvu product whose every path's weight for channel u is w_u."""
    from eqdsl.backends.reference.low_rank import SharedPathProduct
    from eqdsl.backends.reference.tensor_product import TensorProduct
    g = GROUPS["O3"]
    a, b = Irreps.parse("3x0e + 3x1o + 3x2e", g), Irreps.parse("1x0e + 1x1o + 1x2e", g)
    d = tpd.describe(g, a, b, "uvu", out=a)
    shared = SharedPathProduct(d, 0, shared_weights=False)
    x1, x2, w = torch.randn(4, a.dim), torch.randn(4, b.dim), torch.randn(4, 3)
    tied = torch.cat([w for _ in d.paths], dim=-1)  # every path's [u, v = 1] weights: w_u
    assert torch.allclose(shared(x1, x2, w), TensorProduct(d, shared_weights=False)(x1, x2, tied), atol=1e-12)
    full = SharedPathProduct(d, 40, shared_weights=False)
    assert full.residuals[0] < 1e-8
    assert torch.allclose(full(x1, x2, w), shared(x1, x2, w), atol=1e-7)


def test_shared_paths_need_channels(tmp_path):
    path = tmp_path / "s.eq"
    path.write_text("group O3\nmodel Net {\n input a : 3x0e + 2x1o @node\n input b : 1x0e + 1x1o @node\n"
                    " output y : 3x0e + 2x1o @node = tensor_product(a, b, mode = uvu, share_paths = true) -> (3x0e + 2x1o)\n}\n")
    assert [d.code for d in check_file(path).diagnostics] == ["E0208"]
