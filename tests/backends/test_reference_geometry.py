"""Reference runtime: spherical harmonics, radial bases, graph ops, invariants, forces (double backward)."""
import math

import numpy as np
import pytest
import torch

from eqdsl.backends.reference import (MLP, Gate, Linear, SphericalHarmonics, TensorProduct, bessel_basis, dot, forces,
                                      gather, gaussian_basis, grad, norm, polynomial_cutoff, pool, radial_embedding, scatter,
                                      spherical_harmonics)
from eqdsl.groups.o3 import O3
from eqdsl.reps import tp
from eqdsl.reps.irreps import Irreps
from eqdsl.reps.so3 import irreps_D, random_rotation
from eqdsl.reps.so3 import spherical_harmonics as np_spherical_harmonics

F64 = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def I(text):  # noqa: E743
    return Irreps.parse(text, O3)


def group_elements(seed=2):
    rng = np.random.default_rng(seed)
    rots = [random_rotation(rng) for _ in range(2)]
    return rots + [-r for r in rots]


def D(irreps, R):
    return torch.tensor(irreps_D(irreps, R), dtype=F64)


# ---------------------------------------------------------------------------- spherical harmonics

LMAX = 8


@pytest.mark.parametrize("normalize", [True, False])
def test_sh_matches_numpy_reference(normalize):
    v = torch.randn(30, 3, dtype=F64)
    expected = torch.tensor(np_spherical_harmonics(LMAX, v.numpy(), normalize=normalize))
    torch.testing.assert_close(spherical_harmonics(LMAX, v, normalize), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(SphericalHarmonics(LMAX, normalize)(v), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_sh_matches_e3nn(normalize):
    o3 = pytest.importorskip("e3nn.o3")
    v = torch.randn(30, 3, dtype=F64)
    expected = o3.spherical_harmonics(list(range(LMAX + 1)), v, normalize, normalization="component")
    torch.testing.assert_close(spherical_harmonics(LMAX, v, normalize), expected, rtol=1e-12, atol=1e-12)


def test_sh_equivariance_and_norms():
    v = torch.randn(10, 3, dtype=F64)
    irreps = Irreps.harmonics(O3, LMAX)
    y = spherical_harmonics(LMAX, v)
    for R in group_elements():
        torch.testing.assert_close(spherical_harmonics(LMAX, v @ torch.tensor(R).T), y @ D(irreps, R).T)
    sq = norm(y, irreps) ** 2  # component normalization: |Y^l|^2 = 2l+1
    torch.testing.assert_close(sq, torch.arange(LMAX + 1, dtype=F64).mul(2).add(1).expand_as(sq))


def test_sh_at_and_near_zero():
    m = SphericalHarmonics(4)
    v = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    y = m(v)
    torch.testing.assert_close(y[:, 0], torch.ones(2, dtype=F64))
    assert (y[:, 1:] == 0).all()
    (g,) = torch.autograd.grad(y.pow(2).sum() + y.sum(), v, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), v)
    assert torch.isfinite(g).all() and torch.isfinite(gg).all()
    small = (1e-2 * torch.randn(3, 3, dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: m(v), (small,))
    ordinary = torch.randn(3, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: m(v), (ordinary,))
    assert torch.autograd.gradcheck(lambda v: spherical_harmonics(3, v, normalize=False), (ordinary,))
    assert m.float()(torch.randn(5, 3)).dtype == torch.float32


# ---------------------------------------------------------------------------- radial

def test_radial_values():
    c, n = 5.0, 4
    d = torch.tensor([0.0, 0.7, 2.5, 4.999, 5.0, 6.0, 1e6], dtype=F64)
    k = torch.arange(1, n + 1, dtype=F64) * math.pi / c
    b = bessel_basis(d, n, c)
    torch.testing.assert_close(b[1:], math.sqrt(2 / c) * torch.sin(k * d[1:, None]) / d[1:, None])
    torch.testing.assert_close(b[0], math.sqrt(2 / c) * k)  # the d -> 0 limit
    torch.testing.assert_close(bessel_basis(d[1], n, c, prefactor=2 / c), 2 / c * torch.sin(k * 0.7) / 0.7)
    env = polynomial_cutoff(d, c)
    assert env[0] == 1 and (env[4:] == 0).all() and 0 < env[3] < 1e-9
    x = (d[1] / c).item()
    assert env[1].item() == pytest.approx(1 - 28 * x ** 6 + 48 * x ** 7 - 21 * x ** 8, rel=1e-14)
    torch.testing.assert_close(radial_embedding(d, n, c), b * env[:, None])
    torch.testing.assert_close(radial_embedding(d, n, c, "gaussian", None), gaussian_basis(d, n, c))


def test_cutoff_smooth_at_cutoff():
    d = torch.tensor([5.0 - 1e-9, 5.0, 5.0 + 1e-9], dtype=F64, requires_grad=True)
    env = polynomial_cutoff(d, 5.0)
    (g,) = torch.autograd.grad(env.sum(), d, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), d)
    assert g.abs().max() < 1e-12 and gg.abs().max() < 1e-6


def test_radial_matches_e3nn():
    em = pytest.importorskip("e3nn.math")
    d = torch.rand(20, dtype=F64) * 6
    torch.testing.assert_close(gaussian_basis(d, 8, 5.0), em.soft_one_hot_linspace(d, 0.0, 5.0, 8, "gaussian", False))
    torch.testing.assert_close(bessel_basis(d, 8, 5.0), em.soft_one_hot_linspace(d, 0.0, 5.0, 8, "bessel", False))


def test_radial_gradcheck():
    d = torch.tensor([1e-3, 0.4, 2.0, 3.9, 4.5], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d: bessel_basis(d, 3, 4.0), (d,))
    assert torch.autograd.gradcheck(lambda d: gaussian_basis(d, 3, 4.0), (d,))
    assert torch.autograd.gradcheck(lambda d: polynomial_cutoff(d, 4.0), (d,))
    assert torch.autograd.gradcheck(lambda d: radial_embedding(d, 3, 4.0), (d,))
    z = torch.zeros(2, dtype=F64, requires_grad=True)  # finite value and gradients at d = 0
    (g,) = torch.autograd.grad(radial_embedding(z, 3, 4.0).sum(), z, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), z)
    assert torch.isfinite(g).all() and torch.isfinite(gg).all()


# ---------------------------------------------------------------------------- graph ops

INDEX = torch.tensor([0, 2, 2, 0, 3, 2])  # segment 1 is empty


def test_scatter_values():
    x = torch.randn(6, 2, dtype=F64)
    s = scatter(x, INDEX, 5, "sum")
    torch.testing.assert_close(s[2], x[1] + x[2] + x[5])
    assert (s[1] == 0).all() and (s[4] == 0).all()
    torch.testing.assert_close(scatter(x, INDEX, 5, "mean")[0], (x[0] + x[3]) / 2)
    mx = scatter(x - 10, INDEX, 5, "max")  # all negative: empty segments must still give 0
    torch.testing.assert_close(mx[2], torch.maximum(torch.maximum(x[1], x[2]), x[5]) - 10)
    assert (mx[1] == 0).all()
    torch.testing.assert_close(gather(s, INDEX), s[INDEX])
    torch.testing.assert_close(pool(x, INDEX, 5, "sum"), s)
    with pytest.raises(ValueError):
        scatter(x, INDEX, 5, "min")
    assert scatter(torch.randn(6, 3, 2), INDEX, 4, "max").shape == (4, 3, 2)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_scatter_gradcheck(reduce):
    x = torch.randn(6, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: scatter(x, INDEX, 5, reduce), (x,))
    assert torch.autograd.gradcheck(lambda x: pool(x, INDEX, 5, reduce), (x,))
    assert torch.autograd.gradgradcheck(lambda x: scatter(x, INDEX, 5, reduce), (x,))
    h = torch.randn(4, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda h: gather(h, INDEX[INDEX < 4]), (h,))


# ---------------------------------------------------------------------------- invariants

IRREPS = I("2x0e+1x0o+2x1o+1x2e")


def test_norm_dot_values_and_invariance():
    x, y = torch.randn(2, 3, IRREPS.dim, dtype=F64)
    n, p = norm(x, IRREPS), dot(x, y, IRREPS)
    assert n.shape == p.shape == (3, IRREPS.num_irreps)
    torch.testing.assert_close(n[:, 3], x[:, 3:6].norm(dim=-1))
    torch.testing.assert_close(p[:, 5], (x[:, 9:14] * y[:, 9:14]).sum(-1))
    torch.testing.assert_close(n[:, 2], x[:, 2].abs())
    for R in group_elements():
        Dm = D(IRREPS, R)
        torch.testing.assert_close(norm(x @ Dm.T, IRREPS), n)
        torch.testing.assert_close(dot(x @ Dm.T, y @ Dm.T, IRREPS), p)


def test_norm_dot_gradcheck():
    x = torch.randn(2, IRREPS.dim, dtype=F64, requires_grad=True)
    y = torch.randn(2, IRREPS.dim, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: norm(x, IRREPS), (x,))
    assert torch.autograd.gradcheck(lambda x, y: dot(x, y, IRREPS), (x, y))
    z = torch.zeros(1, IRREPS.dim, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(norm(z, IRREPS).sum(), z)
    assert (g == 0).all()


# ---------------------------------------------------------------------------- a tiny interatomic potential

class TinyPotential(torch.nn.Module):
    """Edge SH (x) node features with MLP(radial) per-edge weights, gate, pooled invariant energy."""

    def __init__(self, cutoff=3.0):
        super().__init__()
        self.cutoff = cutoff
        self.sh = SphericalHarmonics(2)
        feats, edge = I("2x0e"), Irreps.harmonics(O3, 2)
        self.desc = tp.channelwise(O3, feats, edge)
        self.radial = MLP([4, 8, self.desc.weight_numel], "silu")
        self.tp = TensorProduct(self.desc, shared_weights=False)
        mid = self.desc.irreps_out
        self.lin = Linear(mid, I("3x0e+2x0e+1x1o+1x2e"))
        self.gate = Gate(I("3x0e"), I("2x0e"), I("1x1o+1x2e"), "silu", "sigmoid")
        self.readout = Linear(I("3x0e+1x1o+1x2e"), I("1x0e"))

    def forward(self, pos, species, src, dst, batch, num_graphs: int):
        vec = gather(pos, dst) - gather(pos, src)
        d = norm(vec, I("1x1o")).squeeze(-1)
        w = self.radial(radial_embedding(d, 4, self.cutoff))
        msg = self.tp(gather(species, src), self.sh(vec), w)
        h = self.gate(self.lin(scatter(msg, dst, pos.shape[0], "sum")))
        return pool(self.readout(h), batch, num_graphs, "sum").squeeze(-1)


def tiny_system():
    pos = torch.tensor([[0.0, 0.0, 0.0], [1.1, 0.2, -0.3], [0.1, 1.3, 0.4], [2.0, 2.1, 0.5]], dtype=F64)
    src, dst = torch.tensor([i for i in range(4) for j in range(4) if i != j]), torch.tensor(
        [j for i in range(4) for j in range(4) if i != j])
    species = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype=F64)
    batch = torch.tensor([0, 0, 1, 1])
    return pos, species, src, dst, batch


def test_forces_double_backward():
    model = TinyPotential().double()
    pos, species, src, dst, batch = tiny_system()
    pos.requires_grad_(True)
    energy = model(pos, species, src, dst, batch, 2)
    f = forces(energy, pos)
    assert f.shape == pos.shape and f.abs().max() > 0
    (f.pow(2).sum() + energy.sum()).backward()  # training on forces: second derivatives w.r.t. parameters
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    # forces are second-derivative-correct w.r.t. positions too
    assert torch.autograd.gradcheck(lambda p: forces(model(p, species, src, dst, batch, 2), p),
                                    (pos.detach().clone().requires_grad_(),))


def test_forces_equivariant_and_energy_invariant():
    model = TinyPotential().double()
    pos, species, src, dst, batch = tiny_system()
    pos.requires_grad_(True)
    energy = model(pos, species, src, dst, batch, 2)
    f = forces(energy, pos, create_graph=False)
    for R in group_elements():
        Rt = torch.tensor(R, dtype=F64)
        rpos = (pos.detach() @ Rt.T + torch.tensor([0.3, -1.0, 2.0], dtype=F64)).requires_grad_(True)
        e2 = model(rpos, species, src, dst, batch, 2)
        torch.testing.assert_close(e2, energy)
        torch.testing.assert_close(forces(e2, rpos), f @ Rt.T)


def test_compiles_without_graph_breaks():
    model = TinyPotential()
    pos, species, src, dst, batch = (t.float() if t.is_floating_point() else t for t in tiny_system())
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(pos, species, src, dst, batch, 2), model(pos, species, src, dst, batch, 2))


def test_grad_of_unconnected_input_is_zero():
    x = torch.randn(3, 2, dtype=F64, requires_grad=True)
    y = torch.randn(3, dtype=F64, requires_grad=True)
    torch.testing.assert_close(grad(y * 2.0, x), torch.zeros_like(x))
    torch.testing.assert_close(grad((x * x).sum(-1), x), 2 * x)
