"""Reference runtime: activations, normalize2mom, Gate, NormActivation, MLP."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from eqdsl.backends.reference import (ACTIVATIONS, MLP, Gate, NormActivation, get_activation, normalize2mom,
                                      second_moment_scale)
from eqdsl.groups.o3 import O3, SO3
from eqdsl.reps.irreps import Irreps
from eqdsl.reps.so3 import irreps_D, random_rotation


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def I(text, group=O3):  # noqa: E743
    return Irreps.parse(text, group)


def D(irreps, R):
    return torch.tensor(irreps_D(irreps, R), dtype=torch.float64)


def group_elements(group, seed=1):
    rng = np.random.default_rng(seed)
    rots = [random_rotation(rng) for _ in range(2)]
    return rots + [-r for r in rots] if group is O3 else rots


def sorted_layout(x, irreps):
    """Rearrange blocks of x into Irreps.sort() order (what e3nn's Gate expects as input)."""
    _, _, inv = irreps.sort()
    blocks = [x[..., s] for s in irreps.slices()]
    return torch.cat([blocks[i] for i in inv], dim=-1)


# ---------------------------------------------------------------------------- activations

def test_activation_table_and_lookup():
    for name in ["silu", "relu", "tanh", "sigmoid", "gelu", "softplus", "abs", "identity"]:
        assert get_activation(name) is ACTIVATIONS[name]
    assert get_activation(torch.tanh) is torch.tanh
    with pytest.raises(ValueError, match="unknown activation"):
        get_activation("swishy")
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)
    torch.testing.assert_close(ACTIVATIONS["ssp"](torch.zeros(1)), torch.zeros(1))
    torch.testing.assert_close(ACTIVATIONS["square"](x), x * x)


def test_normalize2mom_constants():
    # quadrature is the exact integral: E[relu(z)^2] = 1/2, E[|z|^2] = 1, E[exp(z)^2] = e^2
    assert second_moment_scale(F.relu, "quadrature") == pytest.approx(math.sqrt(2), rel=1e-12)
    assert second_moment_scale(torch.abs, "quadrature") == pytest.approx(1.0, rel=1e-12)
    assert second_moment_scale(torch.exp, "quadrature") == pytest.approx(math.exp(-1), rel=1e-10)
    # e3nn's Monte-Carlo estimate is within its sampling error of the integral
    for name in ["silu", "tanh", "gelu", "sigmoid", "softplus"]:
        fn = ACTIVATIONS[name]
        assert second_moment_scale(fn) == pytest.approx(second_moment_scale(fn, "quadrature"), rel=5e-3)
    assert second_moment_scale(ACTIVATIONS["identity"]) == 1.0
    x = torch.randn(5, dtype=torch.float64)
    torch.testing.assert_close(normalize2mom("silu")(x), F.silu(x) * second_moment_scale(F.silu))


def test_normalize2mom_matches_e3nn():
    em = pytest.importorskip("e3nn.math")
    for name in ["silu", "relu", "tanh", "sigmoid", "gelu", "softplus", "abs"]:
        fn = ACTIVATIONS[name]
        assert second_moment_scale(fn) == em.normalize2mom(fn).cst


# ---------------------------------------------------------------------------- Gate

GATE_O3 = dict(scalars="3x0e+2x0o", gates="2x0e+1x0e", gated="1x1o+1x2e+1x1e")
GATE_SO3 = dict(scalars="3x0", gates="3x0", gated="1x1+2x2")


def make_gate(group, spec, normalize=True):
    s, g, v = (I(spec[k], group) for k in ("scalars", "gates", "gated"))
    acts = ["silu", "tanh"][:len(s)]  # 0o scalars get the odd tanh
    return Gate(s, g, v, acts, "sigmoid", normalize=normalize).double()


def gate_irreps_out(group, spec):
    # the activations above keep every parity; 0e gates leave the gated parities alone
    return I(spec["scalars"], group) + I(spec["gated"], group)


def test_gate_gradcheck():
    m = make_gate(O3, GATE_O3)
    x = torch.randn(2, m.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,))


@pytest.mark.parametrize("group,spec", [(O3, GATE_O3), (SO3, GATE_SO3)])
def test_gate_equivariance(group, spec):
    m = make_gate(group, spec)
    out_irreps = gate_irreps_out(group, spec)
    x = torch.randn(4, m.irreps_in.dim, dtype=torch.float64)
    for R in group_elements(group):
        torch.testing.assert_close(m(x @ D(m.irreps_in, R).T), m(x) @ D(out_irreps, R).T)


def test_gate_semantics():
    m = make_gate(O3, GATE_O3, normalize=False)
    x = torch.randn(3, m.irreps_in.dim, dtype=torch.float64)
    out = m(x)
    torch.testing.assert_close(out[:, :3], F.silu(x[:, :3]))
    torch.testing.assert_close(out[:, 3:5], torch.tanh(x[:, 3:5]))
    g = torch.sigmoid(x[:, 5:8])
    torch.testing.assert_close(out[:, 5:8], g[:, :1] * x[:, 8:11])  # first gate scales the 1o copy
    torch.testing.assert_close(out[:, 8:13], g[:, 1:2] * x[:, 11:16])
    torch.testing.assert_close(out[:, 13:16], g[:, 2:3] * x[:, 16:19])
    scalars_only = Gate(I("2x0e"), I(""), I(""), "relu", "sigmoid")
    assert scalars_only(torch.randn(4, 2)).shape == (4, 2)
    with pytest.raises(ValueError):
        Gate(I("1x1o"), I(""), I(""), "relu", "sigmoid")
    with pytest.raises(ValueError):
        Gate(I("1x0e"), I("2x0e"), I("1x1o"), "relu", "sigmoid")


def test_gate_matches_e3nn():
    nn = pytest.importorskip("e3nn.nn")
    spec = GATE_O3
    ours = make_gate(O3, spec)
    theirs = nn.Gate(spec["scalars"], [F.silu, torch.tanh], spec["gates"], [torch.sigmoid, torch.sigmoid],
                     spec["gated"])
    x = torch.randn(5, ours.irreps_in.dim, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(sorted_layout(x, ours.irreps_in)), rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------------- NormActivation

NORM_IRREPS = "2x0e+1x0o+2x1o+1x2e"


@pytest.mark.parametrize("bias", [False, True])
def test_norm_activation_gradcheck(bias):
    m = NormActivation(I(NORM_IRREPS), "sigmoid", bias=bias).double()
    x = torch.randn(2, m.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    if not bias:
        assert torch.autograd.gradcheck(m, (x,))
    else:
        b = torch.randn(m.irreps_in.num_irreps, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda x, b: functional_call(m, {"biases": b}, (x,)), (x, b))
    # unnormalized variant: act(|v|) v, smooth everywhere except at v = 0
    m2 = NormActivation(I(NORM_IRREPS), "tanh", normalize=False).double()
    assert torch.autograd.gradcheck(m2, (x,))


def test_norm_activation_at_zero():
    m = NormActivation(I(NORM_IRREPS), "silu").double()
    x = torch.zeros(1, m.irreps_in.dim, dtype=torch.float64, requires_grad=True)
    y = m(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x)
    assert torch.isfinite(y).all() and torch.isfinite(g).all() and torch.isfinite(gg).all()
    assert (y == 0).all()


@pytest.mark.parametrize("group", [O3, SO3])
def test_norm_activation_equivariance(group):
    irreps = I(NORM_IRREPS, group) if group is O3 else I("2x0+2x1+1x2", group)
    m = NormActivation(irreps, "silu").double()
    x = torch.randn(4, irreps.dim, dtype=torch.float64)
    for R in group_elements(group):
        torch.testing.assert_close(m(x @ D(irreps, R).T), m(x) @ D(irreps, R).T)


def test_norm_activation_matches_e3nn():
    # (e3nn 0.6.0's NormActivation cannot be built with normalize=False; that case is checked by formula below)
    e3nn = pytest.importorskip("e3nn")
    ours = NormActivation(I(NORM_IRREPS), "sigmoid", bias=True).double()
    theirs = e3nn.nn.NormActivation(e3nn.o3.Irreps(NORM_IRREPS), torch.sigmoid, bias=True).double()
    with torch.no_grad():
        ours.biases.normal_()
        theirs.biases.copy_(ours.biases)
    x = torch.randn(5, ours.irreps_in.dim, dtype=torch.float64)
    x[0, :2] = 0.0  # exercise the epsilon clamp
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-13, atol=1e-13)


def test_norm_activation_unnormalized_formula():
    m = NormActivation(I("1x0o+2x1o"), "tanh", normalize=False).double()
    x = torch.randn(3, 7, dtype=torch.float64)
    v = x[:, 1:].reshape(3, 2, 3)
    expected = torch.cat([torch.tanh(x[:, :1].abs()) * x[:, :1],
                          (torch.tanh(v.norm(dim=-1, keepdim=True)) * v).reshape(3, 6)], dim=-1)
    torch.testing.assert_close(m(x), expected)


# ---------------------------------------------------------------------------- MLP

def test_mlp_gradcheck_and_shapes():
    m = MLP([3, 5, 4, 2], "silu").double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    ws = [w.detach().clone().requires_grad_() for w in m.weights]
    f = lambda x, *ws: functional_call(m, {f"weights.{i}": w for i, w in enumerate(ws)}, (x,))  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, *ws))
    assert m(torch.randn(7, 6, 3, dtype=torch.float64)).shape == (7, 6, 2)


def test_mlp_structure():
    m = MLP([4, 3], "relu", normalize=False).double()
    x = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(m(x), x @ m.weights[0] / 2.0)  # no activation after the last layer, no bias
    m = MLP([2, 3, 1], "relu", normalize=False).double()
    torch.testing.assert_close(m(x[:, :2]), F.relu(x[:, :2] @ m.weights[0] / math.sqrt(2)) @ m.weights[1] / math.sqrt(3))


def test_mlp_matches_e3nn():
    nn = pytest.importorskip("e3nn.nn")
    ours = MLP([3, 8, 8, 2], "silu").double()
    theirs = nn.FullyConnectedNet([3, 8, 8, 2], F.silu).double()
    with torch.no_grad():
        for i, w in enumerate(ours.weights):
            getattr(theirs, f"layer{i}").weight.copy_(w)
    x = torch.randn(6, 3, dtype=torch.float64)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-13, atol=1e-13)
