"""spline(d, n, cutoff): cubic B-splines that sum to one inside, vanish smoothly at the cutoff, are C2 at
their knots and differentiable twice; a spec using them is equivariant."""
import pytest
import torch

import eqdsl
from eqdsl.backends.reference import spline_basis
from eqdsl.testing import assert_equivariant


@pytest.mark.parametrize("n", [1, 4, 8])
def test_partition_of_unity_and_a_smooth_end(n):
    cutoff = 5.0
    h = cutoff / n
    d = torch.linspace(0.0, cutoff - 3 * h, 101, dtype=torch.float64)
    if n > 3:
        assert torch.allclose(spline_basis(d, n, cutoff).sum(-1), torch.ones_like(d), atol=1e-14)
    beyond = torch.tensor([cutoff, cutoff + 0.1, 50.0], dtype=torch.float64, requires_grad=True)
    values = spline_basis(beyond, n, cutoff)
    assert torch.equal(values, torch.zeros_like(values))
    (g,) = torch.autograd.grad(values.sum(), beyond, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), beyond)
    assert torch.equal(g, torch.zeros_like(g)) and torch.equal(gg, torch.zeros_like(gg))
    assert spline_basis(d, n, cutoff).shape == (101, n)


def test_continuous_to_the_second_derivative_at_the_knots():
    n, cutoff = 6, 3.0
    h = cutoff / n
    for j in range(1, n + 1):
        for order in range(3):
            left = torch.tensor([j * h - 1e-7], dtype=torch.float64, requires_grad=True)
            right = torch.tensor([j * h + 1e-7], dtype=torch.float64, requires_grad=True)
            vals = []
            for x in (left, right):
                y = spline_basis(x, n, cutoff)[0]
                for _ in range(order):
                    y = torch.stack([torch.autograd.grad(yk, x, create_graph=True)[0][0] for yk in y])
                vals.append(y.detach())
            assert torch.allclose(vals[0], vals[1], atol=1e-5 * (1 + 10 ** order) / h ** order), (j, order)


def test_spline_gradcheck():
    d = torch.tensor([0.0, 0.3, 1.1, 2.49, 2.6, 4.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: spline_basis(x, 5, 3.0), (d,))
    assert torch.autograd.gradgradcheck(lambda x: spline_basis(x, 5, 3.0), (d,))
    with pytest.raises(ValueError, match="n >= 1"):
        spline_basis(d, 0, 3.0)


def test_a_spec_with_a_spline_radial_basis(tmp_path):
    spec = tmp_path / "s.eq"
    spec.write_text("""group O3
model S(cutoff = 3.0) {
    input pos : position @node
    input edges : graph
    input ones : 1x0e @node
    r = pos[dst] - pos[src]
    w = mlp(spline(norm(r), n = 6, cutoff = cutoff), 16)
    m = tensor_product(ones[src], spherical_harmonics(r, lmax = 1), weights = w, mode = uvu, filter = 1x0e + 1x1o)
    output v : 1x1o @node = linear(scatter_sum(m, dst)) -> 1x1o
}
""")
    compiled = eqdsl.compile_file(spec)
    assert "rt.spline_basis(" in compiled.source
    torch.manual_seed(0)
    assert_equivariant(compiled.model_class()().double())
