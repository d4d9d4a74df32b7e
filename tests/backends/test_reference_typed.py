"""TypedMap: equivariant maps assembled per pair of block types from small solved bases.

The dense map must span exactly the space the solver finds for the whole reps
(interleaved blocks included), bases must be float64-exact after ``.double()``,
and wide layers must stay small and well initialised.
"""
import time

import numpy as np
import pytest
import torch

from eqdsl.backends.reference.matrix_maps import Bilinear, EquivariantLinear, apply_rep
from eqdsl.backends.reference.typed import ExactBuffers, TypedMap
from eqdsl.groups.builtin import builtin_group
from eqdsl.reps import matrix_properties
from eqdsl.reps.matrix_reps import Tensor
from eqdsl.reps.matrix_rep_syntax import parse_rep
from eqdsl.reps.solve import solve

f64 = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    # solved bases go to the run's private cache (tests/conftest.py), never ~/.cache
    torch.manual_seed(0)


def linear_solver(types_in, t_out):
    return solve(types_in[0], t_out, allow_empty=True).basis


def bilinear_solver(types_in, t_out):
    ta, tb = types_in
    B = solve(Tensor(ta, tb), t_out, allow_empty=True).basis
    return B.reshape(B.shape[0], t_out.size, ta.size, tb.size)


def reps(gname, *texts):
    G = builtin_group(gname)
    return (G, *(parse_rep(t, G) for t in texts))


def span_residual(W, B):
    """|W - P W| / |W| for P the projection onto the span of the orthonormal basis B [n, ...]."""
    Bf = B.reshape(B.shape[0], -1)
    w = np.asarray(W, dtype=np.float64).reshape(-1)
    return float(np.linalg.norm(w - Bf.T @ (Bf @ w)) / np.linalg.norm(w))


def randomize(tm):
    with torch.no_grad():
        for w in tm.weights:
            w.normal_()


def sampled_span(tm, B, samples):
    """Rank of `samples` dense maps with random weights, and the worst residual against span(B)."""
    Ws, worst = [], 0.0
    for _ in range(samples):
        randomize(tm)
        W = tm.dense().detach().numpy()
        worst = max(worst, span_residual(W, B))
        Ws.append(W.reshape(-1))
    return np.linalg.matrix_rank(np.stack(Ws), tol=1e-9 * max(1.0, np.abs(Ws).max())), worst


LINEAR = [
    ("SO(3)", "V + 2 + V", "1 + V + V**2"),
    ("D4", "2*regular + 1", "2*regular + 1"),
    ("D4", "V + 1 + regular + V", "regular + V + 1 + regular"),
    ("SO+(1,3)", "V + 1 + V**2 + V", "V**2 + V + 1"),
]


# --------------------------------------------------------------------------- spans
@pytest.mark.parametrize("gname,a,b", LINEAR)
def test_linear_spans_exactly_the_solver_space(gname, a, b):
    G, rin, rout = reps(gname, a, b)
    B = solve(rin, rout).basis  # [n, out, in], orthonormal
    n = B.shape[0]
    np.testing.assert_allclose(B.reshape(n, -1) @ B.reshape(n, -1).T, np.eye(n), atol=1e-10)
    tm = TypedMap([rin], rout, linear_solver).double()
    assert tm.num_basis == n == matrix_properties.basis_count(rin, rout)
    W = tm.dense().detach()
    assert W.shape == (rout.size, rin.size)
    assert span_residual(W.numpy(), B) < 1e-12
    rank, worst = sampled_span(tm, B, n)
    assert rank == n and worst < 1e-12
    # and W really is equivariant, not just in some n-dimensional space
    rng = np.random.default_rng(0)
    for _ in range(2):
        g = G.sample(rng)
        Ri, Ro = (torch.as_tensor(r.rho(g), dtype=f64) for r in (rin, rout))
        torch.testing.assert_close(Ro @ W, W @ Ri, rtol=0, atol=1e-10 * float(W.abs().max()))


def test_span_check_can_fail():
    """Negative controls: block placement matters, and a free matrix is not in the span."""
    _, rin, rout, swapped = reps("SO(3)", "V + 2 + V", "1 + V + V**2", "2 + V + V")
    B = solve(swapped, rout).basis  # same blocks in another order
    tm = TypedMap([rin], rout, linear_solver).double()
    assert span_residual(tm.dense().detach().numpy(), B) > 0.1
    free = np.random.default_rng(1).standard_normal((rout.size, rin.size))
    assert span_residual(free, solve(rin, rout).basis) > 0.1


def test_weight_shapes_are_uvw():
    """One piece per (output type, input type) with a nonzero basis: weights [m_out, m_in, n_basis]."""
    _, rin, rout = reps("D4", "2*regular + 1", "1 + V + 2*regular")
    tm = TypedMap([rin], rout, linear_solver)
    # output types in order of first appearance: 1, V, regular; input types: regular, 1; 1 -> V has no map
    want = []
    for t_out, io in matrix_properties.type_groups(rout):
        for t_in, ii in matrix_properties.type_groups(rin):
            nb = matrix_properties.type_count(t_in, t_out)
            if nb:
                want.append((len(io), len(ii), nb))
    assert [tuple(w.shape) for w in tm.weights] == want
    assert tm.num_pieces == len(want) == len([k for k in dict(tm.named_buffers()) if k.startswith("basis_")])
    assert want == [(1, 2, 1), (1, 1, 1), (1, 2, 2), (2, 2, 8), (2, 1, 1)]


@pytest.mark.parametrize("gname,a,b,out", [
    ("SO(3)", "V + 1 + V", "1 + V", "V + 1 + V**2"),
    ("D4", "regular + 1", "V + 1", "regular + V"),
])
def test_bilinear_spans_exactly_the_solver_space(gname, a, b, out):
    G, ra, rb, rout = reps(gname, a, b, out)
    B = solve(Tensor(ra, rb), rout).basis
    n = B.shape[0]
    B = B.reshape(n, rout.size, ra.size, rb.size)  # Tensor coordinate i * b.size + j
    tm = TypedMap([ra, rb], rout, bilinear_solver).double()
    assert tm.num_basis == n == matrix_properties.bilinear_count(ra, rb, rout)
    W = tm.dense().detach()
    assert W.shape == (rout.size, ra.size, rb.size)
    assert span_residual(W.numpy(), B) < 1e-12
    rank, worst = sampled_span(tm, B, n)
    assert rank == n and worst < 1e-12
    # with the input axes swapped it is an equivariant map on (b, a); scrambling an axis breaks it
    assert span_residual(W.transpose(1, 2).numpy(), solve(Tensor(rb, ra), rout).basis) < 1e-12
    assert span_residual(W.numpy()[:, ::-1], B) > 0.1


def test_extra_axes_are_trailing():
    """A solver with trailing axes (e.g. a kernel's offsets) gives dense maps [out, in, *extra]."""
    _, rin, rout = reps("D4", "regular + 1 + regular", "1 + regular")

    def with_extra(types_in, t_out):
        B = linear_solver(types_in, t_out)
        return np.stack([B, 2 * B], axis=-1)  # [n, out, in, 2]: second slice twice the first

    tm = TypedMap([rin], rout, with_extra, extra=(2,)).double()
    W = tm.dense().detach()
    assert W.shape == (rout.size, rin.size, 2)
    torch.testing.assert_close(W[..., 1], 2 * W[..., 0], rtol=0, atol=1e-14)
    assert span_residual(W[..., 0].numpy(), solve(rin, rout).basis) < 1e-12


def test_no_pieces():
    _, rin, rout = reps("SO(3)", "V", "2")
    tm = TypedMap([rin], rout, linear_solver)
    assert tm.num_pieces == 0 and tm.num_basis == 0 and len(tm.weights) == 0
    assert torch.equal(tm.dense(), torch.zeros(2, 3))


# --------------------------------------------------------------------------- dtypes
def test_double_after_float32_is_exact():
    _, rin, rout = reps("SO(3)", "V + 2 + V", "1 + V + V**2")
    tm = TypedMap([rin], rout, linear_solver)
    pieces = [(t_out, t_in) for t_out, _ in matrix_properties.type_groups(rout) for t_in, _ in matrix_properties.type_groups(rin)
              if matrix_properties.type_count(t_in, t_out)]
    exact = [solve(t_in, t_out).basis for t_out, t_in in pieces]
    bases = lambda m: [getattr(m, f"basis_{i}") for i in range(m.num_pieces)]  # noqa: E731
    assert all(b.dtype == torch.float32 for b in bases(tm))
    assert all(w.dtype == torch.float32 for w in tm.weights)
    # float32 cannot hold entries like 1/sqrt(3): a plain cast would keep that round-off
    assert any(not np.array_equal(b.double().numpy(), e) for b, e in zip(bases(tm), exact))
    for conv in (lambda m: m.double(), lambda m: m.float().to(f64), lambda m: m.to(torch.float32).double()):
        tm = conv(tm)
        assert all(w.dtype == f64 for w in tm.weights)
        for b, e in zip(bases(tm), exact):
            assert b.dtype == f64
            np.testing.assert_array_equal(b.numpy(), e)
    # coordinates stay integer; bases and coordinates are not state
    assert all(not b.is_floating_point() for k, b in tm.named_buffers() if k.startswith("coords_"))
    assert set(tm.state_dict()) == {f"weights.{i}" for i in range(tm.num_pieces)}


def test_exact_buffers_nested():
    """A parent's .double() reaches ExactBuffers children (EquivariantLinear holds a TypedMap)."""
    class Child(ExactBuffers):
        def __init__(self):
            super().__init__()
            self._exact_buffer("third", np.full(3, 1 / 3))

    parent = torch.nn.Sequential(torch.nn.Linear(2, 2), Child())
    assert parent[1].third.dtype == torch.float32
    parent.double()
    assert parent[1].third.dtype == f64
    np.testing.assert_array_equal(parent[1].third.numpy(), np.full(3, 1 / 3))
    assert 1 / 3 != float(np.float32(1 / 3))  # what a plain cast would have given
    parent.float()
    assert parent[1].third.dtype == torch.float32
    assert dict(parent[1].state_dict()) == {}


# --------------------------------------------------------------------------- wide layers
WIDE = "16 + 8*V + 2*V**2"


def _basis_entries(tm):
    return sum(b.numel() for k, b in tm.named_buffers() if k.startswith("basis_"))


def test_wide_linear_is_small_and_fast():
    G, rep = reps("SO(5)", WIDE)
    t0 = time.perf_counter()
    m = EquivariantLinear(rep, rep)
    seconds = time.perf_counter() - t0
    assert seconds < 5.0, seconds  # ~0.2 s with a cold basis cache
    n = m.map.num_basis
    assert n == matrix_properties.basis_count(rep, rep) == 16 * 16 + 8 * 8 + 2 * 2 * 3 + 2 * 16 + 16 * 2
    dense_entries = n * rep.size * rep.size  # what one dense basis of the whole map would hold
    assert _basis_entries(m.map) * 1000 < dense_entries
    assert sum(b.numel() for b in m.buffers()) < 10_000
    m.double()
    W = m.weight_matrix().detach()
    rng = np.random.default_rng(2)
    for _ in range(2):
        g = G.sample(rng)
        Ro = torch.as_tensor(rep.rho(g), dtype=f64)
        torch.testing.assert_close(Ro @ W, W @ Ro, rtol=0, atol=1e-10 * float(W.abs().max()))


def test_wide_bilinear_is_small():
    """The case that motivated TypedMap: a dense basis would be 10648 x 106**3 doubles (~95 GB)."""
    G, rep = reps("SO(5)", WIDE)
    t0 = time.perf_counter()
    m = Bilinear(rep, rep, rep)
    assert time.perf_counter() - t0 < 30.0  # ~2.5 s with a cold basis cache
    n = m.map.num_basis
    assert n == matrix_properties.bilinear_count(rep, rep, rep) > 10_000
    assert _basis_entries(m.map) * 10_000 < n * rep.size ** 3
    m.double()
    rng = np.random.default_rng(3)
    a, b = (torch.as_tensor(rng.standard_normal((2, rep.size))) for _ in range(2))
    y = m(a, b).detach()
    g = G.sample(rng)
    R = torch.as_tensor(rep.rho(g), dtype=f64)
    torch.testing.assert_close(m(apply_rep(a, R), apply_rep(b, R)), apply_rep(y, R),
                               rtol=0, atol=1e-10 * float(y.abs().max()))


@pytest.mark.parametrize("gname", ["SO(5)", "SO(3)"])
def test_wide_linear_init_variance(gname):
    """Unit-variance inputs give unit-variance outputs, overall and per output type (over inits)."""
    _, rep = reps(gname, WIDE)
    rng = np.random.default_rng(4)
    x = torch.as_tensor(rng.standard_normal((4000, rep.size)))
    per_type, overall = [], []
    for seed in range(5):
        torch.manual_seed(seed)
        y = EquivariantLinear(rep, rep).double()(x).detach()
        overall.append(float(y.var()))
        per_type.append([float(y[:, idx.reshape(-1)].var()) for _, idx in matrix_properties.type_groups(rep)])
    assert 0.5 < np.mean(overall) < 2.0, overall
    means = np.mean(per_type, axis=0)
    assert np.all((0.5 < means) & (means < 2.0)), means
