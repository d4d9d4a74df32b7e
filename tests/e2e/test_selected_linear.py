"""linear(x, by = s): one linear map per column of an invariant selector (weights indexed by the element
of each atom), one typing rule for both families of groups, equivariant, and what it computes."""
import pytest
import torch

import eqdsl
from eqdsl.backends.reference import Linear, SelectedLinear
from eqdsl.groups import O3
from eqdsl.reps.irreps import Irreps
from eqdsl.testing import assert_equivariant

IRREPS_SPEC = """group O3
model Sel(cutoff = 4.0) {
    input species : 3x0e @node
    input pos     : position @node
    input edges   : graph
    r = pos[dst] - pos[src]
    Y = spherical_harmonics(r, lmax = 1)
    h = linear(species) -> 8x0e
    m = tensor_product(h[src], Y, weights = mlp(bessel(norm(r), n = 4, cutoff = cutoff), 8), mode = uvu, filter = 8x0e + 8x1o)
    s = linear(scatter_sum(m, dst), by = species, bias = true) -> (4x0e + 2x1o)
    output energy : 0e @graph = sum_nodes(linear(s) -> 1x0e)
    output v : 2x1o @node = linear(s) -> 2x1o
}
"""
MATRIX_SPEC = """group C4
model SelC4(cutoff = 3.0) {
    input pos : position
    input kind : 3 @node
    input edges : graph
    r = pos[dst] - pos[src]
    radial = mlp(bessel(norm(r), n = 4, cutoff = cutoff), 8) -> 4
    h = scatter_sum(bilinear(radial, r) -> (2 * V), dst)
    s = linear(concat(norm(h), h), by = kind, bias = true) -> (2 + V + regular)
    output velocity : V @node = linear(s) -> V
}
"""


def compiled(tmp_path, text, name):
    path = tmp_path / f"{name}.eq"
    path.write_text(text)
    return eqdsl.compile_file(path)


@pytest.mark.parametrize("text,name,layer", [(IRREPS_SPEC, "sel", "SelectedLinearLayer(G, ["),
                                             (MATRIX_SPEC, "sel_c4", "rt.SelectedLinear([")])
def test_models_with_selected_weights_are_equivariant(tmp_path, text, name, layer):
    spec = compiled(tmp_path, text, name)
    assert layer in spec.source and "for _ in range(3)]" in spec.source
    torch.manual_seed(0)
    model = spec.model_class()().double()
    with torch.no_grad():  # biases and every element's weights away from their initial values
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    assert_equivariant(model)


def test_a_one_hot_selector_gives_each_row_its_own_map():
    irreps_in, irreps_out = Irreps.parse("3x0e+2x1o", O3), Irreps.parse("2x0e+1x1o", O3)
    torch.manual_seed(1)
    layer = SelectedLinear([Linear(irreps_in, irreps_out, bias=True) for _ in range(4)]).double()
    with torch.no_grad():
        for m in layer.maps:
            m.bias.normal_()
    x = torch.randn(6, irreps_in.dim, dtype=torch.float64)
    kinds = torch.tensor([0, 3, 1, 1, 2, 0])
    y = layer(x, torch.nn.functional.one_hot(kinds, 4).double())
    for row, k in enumerate(kinds.tolist()):
        assert torch.allclose(y[row], layer.maps[k](x[row:row + 1])[0], atol=1e-14)
    mixed = torch.rand(6, 4, dtype=torch.float64)  # any invariant selector: the combination of the maps
    expect = sum(mixed[:, k:k + 1] * layer.maps[k](x) for k in range(4))
    assert torch.allclose(layer(x, mixed), expect, atol=1e-13)
    with pytest.raises(ValueError, match="expected 4 columns"):
        layer(x, mixed[:, :3])


def test_selected_linear_gradcheck():
    irreps_in, irreps_out = Irreps.parse("2x0e+1x1o+1x2e", O3), Irreps.parse("1x0e+2x1o+1x2e", O3)
    torch.manual_seed(2)
    layer = SelectedLinear([Linear(irreps_in, irreps_out, bias=True) for _ in range(3)]).double()
    x = torch.randn(5, irreps_in.dim, dtype=torch.float64, requires_grad=True)
    s = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x, s))
    assert torch.autograd.gradgradcheck(layer, (x, s))
    # a constant one-hot selector runs each map on its rows only: the same values and gradients, weights too
    onehot = torch.nn.functional.one_hot(torch.tensor([2, 0, 2, 2, 0]), 3).double()
    assert torch.allclose(layer(x, onehot), layer(x, onehot.clone().requires_grad_(True)), atol=1e-14)
    names = [name for name, _ in layer.named_parameters()]
    weights = tuple(p.detach().clone().requires_grad_(True) for p in layer.parameters())

    def call(x, *ws):
        return torch.func.functional_call(layer, dict(zip(names, ws)), (x, onehot))

    assert torch.autograd.gradcheck(call, (x,) + weights)
    assert torch.autograd.gradgradcheck(lambda x: layer(x, onehot), (x,))


def test_the_derived_selector_width_is_verified(tmp_path):
    from eqdsl.compiler import check_file
    from eqdsl.ir.verify import IRVerificationError, verify

    path = tmp_path / "sel.eq"
    path.write_text(IRREPS_SPEC)
    ir = check_file(path).models[0]
    node = next(n for n in ir.order() if ir.node(n)["attrs"].get("selectors"))
    assert ir.node(node)["attrs"]["selectors"] == 3
    verify(ir)
    ir.node(node)["attrs"]["selectors"] = 2
    with pytest.raises(IRVerificationError, match="selectors"):
        verify(ir)
