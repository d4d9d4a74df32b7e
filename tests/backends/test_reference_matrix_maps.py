"""Reference runtime for general matrix groups: equivariance, gradients, values, initialization."""
import itertools
import math
import re

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck
from torch.func import functional_call

from eqdsl.backends.reference import matrix_maps
from eqdsl.backends.reference.activations import second_moment_scale
from eqdsl.backends.reference.matrix_maps import (
    Bilinear, EquivariantLinear, GeneralGate, InvariantForm, apply_rep, block_norm, group_pool,
    invariant_forms, rep_blocks,
)
from eqdsl.groups.builtin import builtin_group
from eqdsl.reps import matrix_properties
from eqdsl.reps.matrix_reps import Tensor
from eqdsl.reps.matrix_rep_syntax import parse_rep
from eqdsl.reps.solve import NoEquivariantMap, bilinear_basis, equivariant_basis, invariant_basis, solve

# name -> (group, rep_in, rep_out, rep with one invariant form per block or None)
CASES = {
    "SO(3)": ("SO(3)", "V + 2", "V + V**2 + 1", "V + 2"),
    "O(5)": ("O(5)", "V + 2", "V + 1", "V + 1"),
    "D4": ("D4", "V + 1", "V + regular", "V + 1"),
    "C4": ("C4", "V + 1", "V + 2", None),
    "S4": ("S4", "V + 1", "V + 1", None),
    "lorentz": ("SO+(1,3)", "V + 1", "V**2 + 1", "V + 1"),
    "SL(2)": ("SL(2)", "V + V.dual*V", "V.dual*V + V", "V"),
}
ORTHOGONAL = ["SO(3)", "O(5)", "D4", "C4", "S4"]  # V is orthogonal: norms are invariant
f64 = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    # solved bases go to the run's private cache (tests/conftest.py), never ~/.cache
    torch.manual_seed(0)


def case(name):
    gname, a, b, form = CASES[name]
    G = builtin_group(gname)
    return G, parse_rep(a, G), parse_rep(b, G), (parse_rep(form, G) if form else None)


def randn(rng, *shape):
    return torch.as_tensor(rng.standard_normal(shape), dtype=f64)


def rho(rep, g):
    return torch.as_tensor(rep.rho(g), dtype=f64)


def equivariance_error(f, reps_in, rep_out, xs, G, rng, trials=3):
    """max over g of |f(rho_in(g) x) - rho_out(g) f(x)| relative to the outputs' scale."""
    worst = 0.0
    y = f(*xs)
    assert y.abs().max() > 1e-3, "a zero output would be trivially equivariant"
    for _ in range(trials):
        g = G.sample(rng)
        lhs = f(*(apply_rep(x, rho(r, g)) for x, r in zip(xs, reps_in)))
        rhs = apply_rep(y, rho(rep_out, g))
        scale = max(lhs.abs().max().item(), rhs.abs().max().item())
        worst = max(worst, (lhs - rhs).abs().max().item() / scale)
    return worst


TOL = 1e-9  # float64; the tolerance `eqc check` uses


def span_residual(W, B):
    """|W - P W| / |W|, P the projection onto the span of the orthonormal basis B [n, ...]."""
    Bf = B.reshape(B.shape[0], -1)
    w = np.asarray(W, dtype=np.float64).reshape(-1)
    return float(np.linalg.norm(w - Bf.T @ (Bf @ w)) / np.linalg.norm(w))


def piece_bases(reps_in, rep_out):
    """The float64 solver bases TypedMap should hold, in its piece order (output type, then input types)."""
    out = []
    for t_out, _ in matrix_properties.type_groups(rep_out):
        for combo in itertools.product(*(matrix_properties.type_groups(r) for r in reps_in)):
            types = [t for t, _ in combo]
            if len(types) == 1:
                B = solve(types[0], t_out, allow_empty=True).basis
            else:
                B = solve(Tensor(*types), t_out, allow_empty=True).basis
                B = B.reshape(B.shape[0], t_out.size, types[0].size, types[1].size)
            if B.shape[0]:
                out.append(B)
    return out


def map_bases(m):
    return [getattr(m.map, f"basis_{i}") for i in range(m.map.num_pieces)]


def weight_names(m):
    return {f"map.weights.{i}" for i in range(m.map.num_pieces)}


# --------------------------------------------------------------------------- equivariance
@pytest.mark.parametrize("name", list(CASES))
def test_linear_equivariant(name):
    G, rin, rout, _ = case(name)
    rng = np.random.default_rng(1)
    m = EquivariantLinear(rin, rout, bias=True).double()  # built in float32, checked in float64
    with torch.no_grad():
        m.bias.normal_()
    x = randn(rng, 4, rin.size)
    assert equivariance_error(m, [rin], rout, [x], G, rng) < TOL


@pytest.mark.parametrize("name", list(CASES))
def test_bilinear_equivariant(name):
    G, rin, rout, _ = case(name)
    rng = np.random.default_rng(2)
    m = Bilinear(rin, rin, rout).double()
    a, b = randn(rng, 4, rin.size), randn(rng, 4, rin.size)
    assert equivariance_error(m, [rin, rin], rout, [a, b], G, rng) < TOL


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n][3]])
def test_invariant_form_invariant(name):
    G, _, _, rep = case(name)
    rng = np.random.default_rng(3)
    m = InvariantForm(rep).double()
    a, b = randn(rng, 5, rep.size), randn(rng, 5, rep.size)
    trivial = parse_rep(f"{len(rep_blocks(rep))}" if len(rep_blocks(rep)) > 1 else "scalar", G)
    assert equivariance_error(m, [rep, rep], trivial, [a, b], G, rng) < TOL


@pytest.mark.parametrize("name", list(CASES))
def test_gate_equivariant(name):
    G, rin, _, _ = case(name)
    rng = np.random.default_rng(4)
    sizes = [t.size for t in rep_blocks(rin)]
    m = GeneralGate(2, sizes, ["silu", "tanh"], "sigmoid").double()
    head = len(sizes) + 2  # scalars and gates are invariant

    class Rep:  # just what equivariance_error needs: rho of [scalars | gates | gated]
        def __init__(self, k):
            self.k = k

        def rho(self, g):
            return scipy.linalg.block_diag(np.eye(self.k), rin.rho(g))

    x = randn(rng, 4, head + rin.size)
    assert equivariance_error(m, [Rep(head)], Rep(2), [x], G, rng) < TOL


@pytest.mark.parametrize("name", ORTHOGONAL)
def test_block_norm_invariant(name):
    G, rin, rout, _ = case(name)
    rng = np.random.default_rng(5)
    for rep in (rin, rout):
        sizes = [t.size for t in rep_blocks(rep)]
        x = randn(rng, 3, rep.size)
        y = block_norm(x, sizes)
        for _ in range(3):
            torch.testing.assert_close(block_norm(apply_rep(x, rho(rep, G.sample(rng))), sizes), y,
                                       rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gname,text", [("D4", "regular + regular"), ("C4", "regular + 1"), ("S4", "V + 1")])
@pytest.mark.parametrize("reduce", ["max", "mean"])
def test_group_pool_invariant_on_permutation_reps(gname, text, reduce):
    G = builtin_group(gname)
    rep = parse_rep(text, G)
    sizes = [t.size for t in rep_blocks(rep)]
    rng = np.random.default_rng(6)
    x = randn(rng, 3, rep.size)
    y = group_pool(x, sizes, reduce)
    for g in G.elements():
        torch.testing.assert_close(group_pool(apply_rep(x, rho(rep, g)), sizes, reduce), y, rtol=0, atol=1e-14)


def test_equivariance_check_catches_a_broken_basis():
    G, rin, rout, _ = case("SO(3)")
    rng = np.random.default_rng(7)
    m = EquivariantLinear(rin, rout).double()
    x = randn(rng, 4, rin.size)
    with torch.no_grad():  # any weights are fine...
        for w in m.map.weights:
            w.normal_()
    assert equivariance_error(m, [rin], rout, [x], G, rng) < TOL
    with torch.no_grad():  # ...but not any basis
        m.map.basis_0.normal_()
    assert equivariance_error(m, [rin], rout, [x], G, rng) > 1e-3
    # nor a wrong placement of a correct basis: V + 2 -> V + V**2 + 1 with the input blocks swapped
    m = EquivariantLinear(parse_rep("2 + V", G), rout).double()
    assert equivariance_error(m, [rin], rout, [x], G, rng) > 1e-3
    b = Bilinear(rin, rin, rout).double()
    with torch.no_grad():
        b.map.basis_0.normal_()
    assert equivariance_error(b, [rin, rin], rout, [x, randn(rng, 4, rin.size)], G, rng) > 1e-3
    # pooling a non-permutation rep is not invariant either
    D4 = builtin_group("D4")
    V = parse_rep("V", D4)
    x = torch.tensor([[1.0, -2.0]], dtype=f64)
    g = D4.discrete_generators[0]  # rotation by 90 degrees: (1, -2) -> (2, 1)
    assert not torch.allclose(group_pool(apply_rep(x, rho(V, g)), [2], "max"), group_pool(x, [2], "max"))


# --------------------------------------------------------------------------- gradients
def _params_fn(m, names, num_inputs):
    """f(*inputs, *parameters) through functional_call, so gradcheck differentiates the parameters too."""
    return lambda *args: functional_call(m, dict(zip(names, args[num_inputs:])), args[:num_inputs])


def _grads_reach_every_parameter(m, *inputs):
    m.zero_grad()
    m(*inputs).pow(2).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().min() > 0, name  # every single weight, not just some


@pytest.mark.parametrize("name", ["SO(3)", "lorentz", "D4"])
def test_gradcheck_linear_with_bias(name):
    _, rin, rout, _ = case(name)
    m = EquivariantLinear(rin, rout, bias=True).double()
    rng = np.random.default_rng(8)
    names = [k for k, _ in m.named_parameters()]
    assert set(names) == weight_names(m) | {"bias"}
    x = randn(rng, 3, rin.size).requires_grad_()
    params = [(randn(rng, m.bias.numel()) if k == "bias" else p.detach().clone()).requires_grad_()
              for k, p in m.named_parameters()]
    assert gradcheck(_params_fn(m, names, 1), (x, *params))
    _grads_reach_every_parameter(m, randn(rng, 5, rin.size))


@pytest.mark.parametrize("name", ["SO(3)", "SL(2)"])
def test_gradcheck_bilinear(name):
    _, rin, rout, _ = case(name)
    m = Bilinear(rin, rin, rout).double()
    rng = np.random.default_rng(9)
    names = [k for k, _ in m.named_parameters()]
    assert set(names) == weight_names(m)
    a, b = randn(rng, 2, rin.size).requires_grad_(), randn(rng, 2, rin.size).requires_grad_()
    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    assert gradcheck(_params_fn(m, names, 2), (a, b, *params))
    _grads_reach_every_parameter(m, randn(rng, 5, rin.size), randn(rng, 5, rin.size))


def test_gradcheck_invariant_form_gate_norm_pool():
    rng = np.random.default_rng(10)
    _, _, _, rep = case("lorentz")
    form = InvariantForm(rep).double()
    a, b = randn(rng, 3, rep.size).requires_grad_(), randn(rng, 3, rep.size).requires_grad_()
    assert gradcheck(form, (a, b))
    gate = GeneralGate(2, [3, 2], ["silu", "tanh"], "sigmoid").double()
    assert gradcheck(gate, (randn(rng, 3, 2 + 2 + 5).requires_grad_(),))
    sizes = [3, 3, 1, 4]
    x = (randn(rng, 3, 11) + 0.5).requires_grad_()  # away from 0, where the norm is smooth
    assert gradcheck(lambda x: block_norm(x, sizes), (x,))
    assert gradcheck(lambda x: group_pool(x, sizes, "mean"), (x,))
    assert gradcheck(lambda x: group_pool(x, sizes, "max"), (x,))  # distinct values: piecewise linear


def test_block_norm_zero_value_and_gradient():
    x = torch.zeros(2, 5, dtype=f64, requires_grad=True)
    y = block_norm(x, [3, 2])
    assert torch.equal(y, torch.zeros(2, 2, dtype=f64))
    (g,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(g, torch.zeros_like(x))


# --------------------------------------------------------------------------- values
@pytest.mark.parametrize("gname,a,b", [("SO(3)", "V + 2", "V + V**2 + 1"),
                                      ("D4", "V + 1 + regular + V", "regular + 2 + V")])
def test_linear_matches_its_weight_matrix_in_the_solver_span(gname, a, b):
    G = builtin_group(gname)
    rin, rout = parse_rep(a, G), parse_rep(b, G)
    m = EquivariantLinear(rin, rout).double()
    B = equivariant_basis(rin, rout)  # orthonormal [n, out, in]
    assert m.map.num_basis == sum(w.numel() for w in m.map.weights) == B.shape[0]
    assert B.shape[0] == matrix_properties.basis_count(rin, rout)
    for got, want in zip(map_bases(m), piece_bases([rin], rout), strict=True):
        np.testing.assert_array_equal(got.numpy(), want)
    W = m.weight_matrix().detach()
    assert W.shape == (rout.size, rin.size)
    assert span_residual(W.numpy(), B) < 1e-12
    assert span_residual(np.random.default_rng(0).standard_normal(W.shape), B) > 0.1  # the check can fail
    rng = np.random.default_rng(11)
    x = randn(rng, 6, rin.size)
    np.testing.assert_allclose(m(x).detach().numpy(), x.numpy() @ W.numpy().T, rtol=1e-12, atol=1e-12)
    y0 = m(x).detach()
    with torch.no_grad():
        for w in m.map.weights:
            w.mul_(-0.5)
    torch.testing.assert_close(m(x), -0.5 * y0)
    for w in m.map.weights:  # every weight tensor is used
        with torch.no_grad():
            w.view(-1)[0] += 1.0
        assert not torch.allclose(m(x), -0.5 * y0)
        with torch.no_grad():
            w.view(-1)[0] -= 1.0


def test_linear_bias():
    G, rin, rout, _ = case("lorentz")  # V**2 + 1 has invariants eta and 1
    m = EquivariantLinear(rin, rout, bias=True).double()
    assert m.bias.shape == (2,) and torch.equal(m.bias, torch.zeros(2, dtype=f64))
    x = randn(np.random.default_rng(12), 3, rin.size)
    y0 = m(x).detach()
    with torch.no_grad():
        m.bias.copy_(torch.tensor([1.0, -2.0]))
    shift = m(x) - y0
    torch.testing.assert_close(shift, (torch.tensor([1.0, -2.0], dtype=f64) @ m.bias_basis).expand(3, -1))
    np.testing.assert_array_equal(m.bias_basis.numpy(), invariant_basis(rout))
    g = G.sample(np.random.default_rng(0))  # the shift is an invariant vector
    torch.testing.assert_close(apply_rep(shift[:1], rho(rout, g)), shift[:1])
    with pytest.raises(ValueError, match="invariant"):
        EquivariantLinear(rin, parse_rep("V", G), bias=True)
    with pytest.raises(NoEquivariantMap):
        EquivariantLinear(parse_rep("V", G), parse_rep("scalar", G))


@pytest.mark.parametrize("name,text", [("SO(3)", "8*V + 4"), ("lorentz", "4*V + V**2 + 2"), ("S4", "3*V + 2")])
def test_linear_init_keeps_unit_variance(name, text):
    G = case(name)[0]
    rep = parse_rep(text, G)
    rng = np.random.default_rng(13)
    x = randn(rng, 4000, rep.size)
    ratios = []
    for seed in range(3):
        torch.manual_seed(seed)
        m = EquivariantLinear(rep, rep).double()
        ratios.append(m(x).detach().var().item() / x.var().item())
    assert 0.5 < np.mean(ratios) < 2.0, ratios


def test_bilinear_matches_naive_outer_product():
    G = builtin_group("SO(3)")
    big, small, out = parse_rep("V + 2", G), parse_rep("V", G), parse_rep("V + V**2 + 1", G)
    rng = np.random.default_rng(14)
    for ra, rb in ((big, small), (small, big)):  # both contraction orders
        m = Bilinear(ra, rb, out).double()
        B = bilinear_basis(ra, rb, out)  # [n, out, A, A']
        assert m.map.num_basis == B.shape[0] == matrix_properties.bilinear_count(ra, rb, out)
        for got, want in zip(map_bases(m), piece_bases([ra, rb], out), strict=True):
            np.testing.assert_array_equal(got.numpy(), want)
        a, b = randn(rng, 2, 3, ra.size), randn(rng, 2, 3, rb.size)
        W = m.weight_tensor()
        assert W.shape == (out.size, ra.size, rb.size)
        assert span_residual(W.detach().numpy(), B) < 1e-12
        naive = torch.einsum("oij,...ij->...o", W, a.unsqueeze(-1) * b.unsqueeze(-2))
        torch.testing.assert_close(m(a, b), naive, rtol=1e-12, atol=1e-12)
        for w in m.map.weights:  # every weight tensor is used
            y0 = m(a, b).detach()
            with torch.no_grad():
                w.copy_(torch.randn(w.shape))
            assert not torch.allclose(m(a, b), y0)


def test_invariant_forms_values():
    lor = parse_rep("V", builtin_group("SO+(1,3)"))
    np.testing.assert_allclose(invariant_forms(lor)[0], np.diag([1.0, -1, -1, -1]), atol=1e-12)
    (F,) = invariant_forms(parse_rep("V", builtin_group("SO(3)")))
    np.testing.assert_allclose(F, np.eye(3), atol=1e-12)
    forms = invariant_forms(parse_rep("V + 1 + V", builtin_group("O(5)")))
    assert [f.shape for f in forms] == [(5, 5), (1, 1), (5, 5)]
    np.testing.assert_allclose(forms[1], [[1.0]])
    np.testing.assert_allclose(forms[0], np.eye(5), atol=1e-12)
    assert np.array_equal(forms[0] != 0, np.eye(5, dtype=bool))  # solver round-off snapped to exact zeros
    # SL(2) preserves only the antisymmetric form: sign fixed by its first nonzero entry
    (F,) = invariant_forms(parse_rep("V", builtin_group("SL(2)")))
    np.testing.assert_allclose(F, [[0.0, 1.0], [-1.0, 0.0]], atol=1e-12)


def test_invariant_form_sign_does_not_depend_on_the_solver(monkeypatch):
    # a one-dimensional basis has an arbitrary sign; the normalization must fix it
    solved = matrix_maps.bilinear_basis
    monkeypatch.setattr(matrix_maps, "bilinear_basis", lambda *a, **k: -solved(*a, **k))
    (F,) = invariant_forms(parse_rep("V", builtin_group("SO+(1,3)")))
    np.testing.assert_allclose(F, np.diag([1.0, -1, -1, -1]), atol=1e-12)
    (F,) = invariant_forms(parse_rep("V", builtin_group("SL(2)")))
    np.testing.assert_allclose(F, [[0.0, 1.0], [-1.0, 0.0]], atol=1e-12)


@pytest.mark.parametrize("gname,text,block,m", [("C4", "1 + V", "V", 2), ("S4", "V", "V", 2),
                                                ("SO+(1,3)", "V + V**2", "V**2", 4)])
def test_invariant_form_needs_exactly_one(gname, text, block, m):
    rep = parse_rep(text, builtin_group(gname))
    with pytest.raises(ValueError, match=rf"`{re.escape(block)}`.* {m} invariant"):
        InvariantForm(rep)


def test_invariant_form_forward_by_hand():
    rep = parse_rep("V + 1 + V", builtin_group("SO+(1,3)"))
    m = InvariantForm(rep).double()
    rng = np.random.default_rng(15)
    a, b = randn(rng, 2, 9), randn(rng, 2, 9)
    eta = torch.diag(torch.tensor([1.0, -1, -1, -1], dtype=f64))
    want = torch.stack([((a[:, :4] @ eta) * b[:, :4]).sum(-1), a[:, 4] * b[:, 4],
                        ((a[:, 5:] @ eta) * b[:, 5:]).sum(-1)], dim=-1)
    torch.testing.assert_close(m(a, b), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("normalize", [True, False])
def test_gate_matches_hand_computation(normalize):
    m = GeneralGate(3, [3, 2, 3], ["silu", "tanh", "silu"], "sigmoid", normalize=normalize).double()
    rng = np.random.default_rng(16)
    x = randn(rng, 4, 3 + 3 + 8)

    def c(fn):
        return second_moment_scale(fn) if normalize else 1.0

    s, gates, v = x[:, :3], x[:, 3:6], x[:, 6:]
    sig = c(torch.sigmoid) * torch.sigmoid(gates)
    want = torch.cat([c(F.silu) * F.silu(s[:, :1]), c(torch.tanh) * torch.tanh(s[:, 1:2]),
                      c(F.silu) * F.silu(s[:, 2:]), v[:, :3] * sig[:, :1], v[:, 3:5] * sig[:, 1:2],
                      v[:, 5:] * sig[:, 2:]], dim=-1)
    torch.testing.assert_close(m(x), want, rtol=1e-12, atol=1e-12)
    if normalize:
        assert abs(c(F.silu) - 1.0) > 0.1  # the normalized case really differs
    with pytest.raises(ValueError, match="3 scalars but 2"):
        GeneralGate(3, [2], ["silu", "tanh"], "sigmoid")
    with pytest.raises(ValueError, match="expects 14"):
        m(x[:, :-1])


def test_block_norm_and_group_pool_values():
    x = torch.tensor([[3.0, 4.0, 1.0, -2.0, 2.0, 5.0]], dtype=f64)
    torch.testing.assert_close(block_norm(x, [2, 1, 3]), torch.tensor([[5.0, 1.0, math.sqrt(33)]], dtype=f64))
    torch.testing.assert_close(group_pool(x, [2, 1, 3], "max"), torch.tensor([[4.0, 1.0, 5.0]], dtype=f64))
    torch.testing.assert_close(group_pool(x, [2, 2, 2], "mean"), torch.tensor([[3.5, -0.5, 3.5]], dtype=f64))
    with pytest.raises(ValueError, match="sum to"):
        block_norm(x, [2, 2])
    with pytest.raises(ValueError, match="reduce"):
        group_pool(x, [6], "sum")


def test_apply_rep():
    rng = np.random.default_rng(17)
    x, r = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))
    np.testing.assert_allclose(apply_rep(torch.as_tensor(x), torch.as_tensor(r)).numpy(), x @ r.T, rtol=1e-14)


# --------------------------------------------------------------------------- dtypes and state
def test_double_restores_exact_float64_bases():
    _, rin, rout, form_rep = case("lorentz")
    exact = piece_bases([rin], rout)
    m = EquivariantLinear(rin, rout, bias=True)
    assert all(b.dtype == torch.float32 for b in map_bases(m))
    assert all(w.dtype == torch.float32 for w in m.map.weights) and m.bias.dtype == torch.float32
    for conv in (lambda mod: mod.double(), lambda mod: mod.float().to(torch.float64)):
        m = conv(m)
        assert m.bias_basis.dtype == f64 and m.bias.dtype == f64
        assert all(w.dtype == f64 for w in m.map.weights)
        for got, want in zip(map_bases(m), exact, strict=True):
            assert got.dtype == f64
            np.testing.assert_array_equal(got.numpy(), want)
        np.testing.assert_array_equal(m.bias_basis.numpy(), invariant_basis(rout))
        assert span_residual(m.weight_matrix().detach().numpy(), equivariant_basis(rin, rout)) < 1e-14
    # the SO(3) bases have entries like 1/sqrt(3) that float32 cannot hold
    _, rin, rout, _ = case("SO(3)")
    exact = piece_bases([rin], rout)
    lin = EquivariantLinear(rin, rout)
    assert any(not np.array_equal(b.double().numpy(), e) for b, e in zip(map_bases(lin), exact))
    lin.double()
    for got, want in zip(map_bases(lin), exact, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)
    bil = Bilinear(rin, rin, rout)
    exact = piece_bases([rin, rin], rout)
    assert any(not np.array_equal(b.double().numpy(), e) for b, e in zip(map_bases(bil), exact))
    bil.double()
    for got, want in zip(map_bases(bil), exact, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)
    f = InvariantForm(form_rep).double()
    assert all(b.dtype == f64 for b in f.buffers())
    # bases are derived from the reps, not state: only the learnable parameters are saved
    assert set(m.state_dict()) == weight_names(m) | {"bias"}
    assert set(bil.state_dict()) == weight_names(bil)
    assert set(f.state_dict()) == set()


def test_state_dict_round_trip():
    _, rin, rout, _ = case("D4")
    rng = np.random.default_rng(18)
    x = randn(rng, 3, rin.size)
    src = EquivariantLinear(rin, rout, bias=True).double()
    with torch.no_grad():
        src.bias.normal_()
    torch.manual_seed(1)
    dst = EquivariantLinear(rin, rout, bias=True).double()
    assert not torch.allclose(dst(x), src(x))
    dst.load_state_dict(src.state_dict())
    torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)
    a = Bilinear(rin, rin, rout).double()
    b = Bilinear(rin, rin, rout).double()
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b(x, x), a(x, x), rtol=0, atol=0)
