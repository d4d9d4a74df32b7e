"""symmetric_contraction(A, correlation, by = species) -> R: MACE's body-order product, equivariant in
float64, equal to its definition term by term, differentiable twice."""
import pytest
import torch

import eqdsl
from eqdsl.backends.reference import SymmetricContraction
from eqdsl.groups import O3
from eqdsl.reps.irreps import Irreps
from eqdsl.testing import assert_equivariant

SPEC = """group O3
model SC(cutoff = 4.0) {
    input species : 3x0e @node
    input pos     : position @node
    input edges   : graph
    r = pos[dst] - pos[src]
    Y = spherical_harmonics(r, lmax = 2)
    h = linear(species) -> 4x0e
    m = tensor_product(h[src], Y, weights = mlp(bessel(norm(r), n = 4, cutoff = cutoff), 8), mode = uvu, filter = 4x0e + 4x1o + 4x2e)
    A = scatter_sum(m, dst)
    B = symmetric_contraction(A, correlation = 3BY) -> (4x0e + 4x1o)
    output energy : 0e @graph = sum_nodes(linear(B) -> 1x0e)
    output v : 1x1o @node = linear(B) -> 1x1o
}
"""


@pytest.mark.parametrize("by", [", by = species", ""], ids=["per-element", "shared"])
def test_a_model_with_a_symmetric_contraction_is_equivariant(tmp_path, by):
    path = tmp_path / "sc.eq"
    path.write_text(SPEC.replace("BY", by))
    spec = eqdsl.compile_file(path)
    assert "SymmetricContractionLayer(G, " in spec.source
    torch.manual_seed(0)
    model = spec.model_class()().double()
    assert_equivariant(model)


def layer(selectors=0, seed=0):
    irreps_in, irreps_out = Irreps.parse("3x0e+3x1o+3x2e", O3), Irreps.parse("3x0e+3x1o+3x2e", O3)
    torch.manual_seed(seed)
    return SymmetricContraction(O3, irreps_in, irreps_out, correlation=3, selectors=selectors).double()


def definition(m: SymmetricContraction, x, selector=None):
    """sum_k sum_eta w U(a, ..., a) with the full power of a: what the nested evaluation must equal."""
    n, c = x.shape[0], m.channels
    blocks = [x[:, s].reshape(n, b.mul, b.ir.dim) for s, b in zip(m.irreps_in.slices(), m.irreps_in)]
    a = torch.cat(blocks, dim=2)  # [N, C, d]
    outs = []
    for i, (mul, ir) in enumerate(m.irreps_out):
        y = torch.zeros(n, c, ir.dim, dtype=x.dtype)
        for k in m._orders[i]:
            u = getattr(m, f"basis_{i}_{k}")
            weight = getattr(m, f"weight_{i}_{k}")  # [K, n, C]: per-row weights s @ W, or the one shared set
            w = (weight[0].expand(n, -1, -1) if selector is None
                 else torch.einsum("bk,knc->bnc", selector, weight))
            power = a
            for _ in range(k - 1):
                power = torch.einsum("bc...,bcd->bc...d", power, a)
            y = y + torch.einsum("n...m,bc...,bnc->bcm", u, power, w)
        outs.append(y.reshape(n, -1))
    return torch.cat(outs, dim=1)


def test_nested_evaluation_equals_the_definition():
    m = layer()
    x = torch.randn(5, m.irreps_in.dim, dtype=torch.float64)
    assert torch.allclose(m(x), definition(m, x), atol=1e-12)
    m3 = layer(selectors=3, seed=1)
    s = torch.rand(5, 3, dtype=torch.float64)
    assert torch.allclose(m3(x, s), definition(m3, x, s), atol=1e-12)


def test_a_one_hot_selector_takes_each_elements_weights():
    m = layer(selectors=2, seed=2)
    x = torch.randn(4, m.irreps_in.dim, dtype=torch.float64)
    kinds = torch.tensor([1, 0, 1, 1])
    y = m(x, torch.nn.functional.one_hot(kinds, 2).double())
    for element in (0, 1):
        shared = layer(seed=3)
        with torch.no_grad():
            for name, p in shared.named_parameters():
                p.copy_(getattr(m, name)[element:element + 1])
        rows = kinds == element
        assert torch.allclose(y[rows], shared(x[rows]), atol=1e-12)
    with pytest.raises(ValueError, match="takes a selector"):
        m(x)
    with pytest.raises(ValueError, match="expected 2 columns"):
        m(x, torch.rand(4, 3, dtype=torch.float64))


def test_symmetric_contraction_gradcheck():
    irreps_in, irreps_out = Irreps.parse("2x0e+2x1o", O3), Irreps.parse("2x0e+2x1o", O3)
    torch.manual_seed(4)
    m = SymmetricContraction(O3, irreps_in, irreps_out, correlation=3, selectors=2).double()
    x = torch.randn(3, irreps_in.dim, dtype=torch.float64, requires_grad=True)
    s = torch.rand(3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x, s))
    assert torch.autograd.gradgradcheck(m, (x, s))
    # and in the weights, which enter through U W shared by the rows
    names = [name for name, _ in m.named_parameters()]
    weights = tuple(p.detach().clone().requires_grad_(True) for p in m.parameters())

    def call(x, s, *ws):
        return torch.func.functional_call(m, dict(zip(names, ws)), (x, s))

    assert torch.autograd.gradcheck(call, (x, s) + weights)


def test_a_constant_one_hot_selector_sorts_rows_by_kind_with_the_same_values_and_gradients():
    from eqdsl.backends.reference.selectors import one_hot_kinds

    m = layer(selectors=3, seed=5)
    x = torch.randn(7, m.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    kinds = torch.tensor([2, 0, 2, 2, 1, 0, 2])
    onehot = torch.nn.functional.one_hot(kinds, 3).double()
    assert torch.equal(one_hot_kinds(onehot), kinds)
    assert one_hot_kinds(onehot * 0.5) is None and one_hot_kinds(onehot.requires_grad_(True)) is None
    general = m(x, onehot)  # the selector needs its gradient: the general path
    sorted_ = m(x, onehot.detach())
    assert torch.allclose(sorted_, general, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(general)
    (gx,) = torch.autograd.grad(general, x, g)
    (gx_sorted,) = torch.autograd.grad(sorted_, x, g)
    assert torch.allclose(gx_sorted, gx, rtol=1e-12, atol=1e-12)
    few = x[:4].detach().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda x: m(x, onehot[:4].detach()), (few,))
    # a kind no row has, and a single kind, take the same path
    assert torch.allclose(m(x[:2], onehot[:2].detach()), general[:2], atol=1e-12)


def test_the_bases_are_exact_again_in_float64():
    from eqdsl.reps.symmetric_power import symmetric_basis

    m = layer().float().double()
    exact = symmetric_basis(O3, m.irs, m.irreps_out[1].ir, 3)
    assert torch.equal(m.basis_1_3, torch.from_numpy(exact))
