"""Reference runtime: steerable 2D convolutions, pooling and the grid action (float64, exact groups)."""
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eqdsl.backends.reference.conv2d import (
    SteerableConv2d, avg_pool2d, global_mean, grid_group_ok, kernel_basis, kernel_rep, max_pool2d,
    offset_orbits, transform_grid,
)
from eqdsl.groups.builtin import SO2, cyclic, dihedral
from eqdsl.reps import facts
from eqdsl.reps.general import Permutation, Sum, Tensor, parse_rep
from eqdsl.reps.solve import count_equivariant_finite, invariant_basis, solve


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EQDSL_CACHE", str(tmp_path_factory.mktemp("bases")))
        yield


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def R(text, G):
    return parse_rep(text, G)


def equivariance_error(fn, rep_in, rep_out, size, batch=2, seed=0):
    """max over all g of |f(g.x) - g.f(x)|, relative to max |f(x)|."""
    G = rep_in.group
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, size, size, rep_in.size, dtype=torch.float64, generator=gen)
    err = 0.0
    with torch.no_grad():
        y = fn(x)
        for g in G.elements():
            lhs = fn(transform_grid(x, g, rep_in.rho(g)))
            rhs = transform_grid(y, g, rep_out.rho(g))
            err = max(err, float((lhs - rhs).abs().max()))
    return err / max(float(y.abs().max()), 1e-300)


def conv(rep_in, rep_out, k, bias=False):
    m = SteerableConv2d(rep_in, rep_out, k, bias=bias).double()
    if bias:
        with torch.no_grad():
            m.bias.normal_()  # zero-initialised; make it count
    return m


CASES = [
    ("C4", "1", "regular"), ("C4", "regular", "regular"), ("C4", "V", "V"), ("C4", "2 + regular", "V + 1"),
    ("D4", "1", "1"), ("D4", "regular", "regular"), ("D4", "V", "2 + regular"), ("D4", "2 + regular", "V + 1"),
    ("C2", "V + 1", "regular"), ("D1", "regular", "V"), ("D2", "V", "V + regular"), ("C1", "V", "2"),
    ("D4", "V + 1 + regular + V", "regular + V + 2 + regular"),  # interleaved, repeated block types
]


def map_bases(m):
    return [getattr(m.map, f"basis_{i}") for i in range(m.map.num_pieces)]


def piece_kernel_bases(rep_in, rep_out, k):
    """The float64 kernel bases [n, out, in, k, k] the map should hold, in its piece order."""
    out = []
    for t_out, _ in facts.type_groups(rep_out):
        for t_in, _ in facts.type_groups(rep_in):
            K = kernel_basis(t_in, t_out, k)
            if K.shape[0]:
                out.append(K.transpose(0, 3, 4, 1, 2))
    return out


def span_residual(W, B):
    """|W - P W| / |W|, P the projection onto the span of the orthonormal basis B [n, ...]."""
    Bf = B.reshape(B.shape[0], -1)
    w = np.asarray(W, dtype=np.float64).reshape(-1)
    return float(np.linalg.norm(w - Bf.T @ (Bf @ w)) / np.linalg.norm(w))


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("group,a,b", CASES)
def test_conv_equivariant(group, a, b, size):
    G = {"C": cyclic, "D": dihedral}[group[0]](int(group[1:]))
    m = conv(R(a, G), R(b, G), 3)
    assert equivariance_error(m, m.rep_in, m.rep_out, size) < 1e-12


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("group,a,b,k", [("C4", "regular", "2 + regular", 3), ("D4", "V + 1", "regular + 1", 5),
                                         ("D1", "2", "V + 1", 3)])
def test_conv_with_bias_equivariant(group, a, b, k, size):
    G = {"C": cyclic, "D": dihedral}[group[0]](int(group[1:]))
    m = conv(R(a, G), R(b, G), k, bias=True)
    assert m.bias.abs().sum() > 0
    assert equivariance_error(m, m.rep_in, m.rep_out, size) < 1e-12


def test_broken_kernel_is_detected():
    """The check can fail: an unconstrained kernel, or a bias outside the invariant subspace."""
    G = cyclic(4)
    rin, rout = R("regular", G), R("V", G)
    w = torch.randn(rout.size, rin.size, 3, 3, dtype=torch.float64)

    def free(x):
        return F.conv2d(x.permute(0, 3, 1, 2), w, padding=1).permute(0, 2, 3, 1)

    assert equivariance_error(free, rin, rout, 7) > 1e-2
    m = conv(rin, rout, 3)

    def shifted(x):
        return m(x) + torch.tensor([1.0, 0.0], dtype=torch.float64)

    assert equivariance_error(shifted, rin, rout, 7) > 1e-2
    # transposing the kernel (a correlation/convolution mix-up) breaks equivariance too
    with torch.no_grad():
        kernel = m.kernel()

    def flipped(x):
        return F.conv2d(x.permute(0, 3, 1, 2), kernel.transpose(2, 3), padding=1).permute(0, 2, 3, 1)

    assert equivariance_error(flipped, rin, rout, 7) > 1e-2


def _full_offset_rep(G, k):
    """Permutation rep of G on all k*k offsets, built directly (no orbit decomposition)."""
    r = k // 2
    perms = []
    for h in G.discrete_generators:
        h = np.rint(h).astype(int)
        perms.append([int((h @ (np.array(divmod(j, k)) - r) + r) @ [k, 1]) for j in range(k * k)])
    return Permutation(G, perms)


@pytest.mark.parametrize("group,a,b,k", [("C4", "regular", "V + 1", 3), ("D4", "2 + regular", "V", 5),
                                         ("D4", "V", "V", 3), ("C2", "V", "regular", 3)])
def test_kernel_constraint(group, a, b, k):
    G = {"C": cyclic, "D": dihedral}[group[0]](int(group[1:]))
    rin, rout = R(a, G), R(b, G)
    K = kernel_basis(rin, rout, k)  # [n, k, k, out, in]
    n, r = K.shape[0], k // 2
    flat = K.reshape(n, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(n), atol=1e-10)
    full = Tensor(_full_offset_rep(G, k), rin)  # offsets outer, channels inner
    assert n == count_equivariant_finite(full, rout)
    # the orbit-by-orbit solve spans the same space as one solve on the whole offset rep
    B = solve(full, rout).basis.reshape(n, rout.size, k, k, rin.size).transpose(0, 2, 3, 1, 4).reshape(n, -1)
    np.testing.assert_allclose(B.T @ B, flat.T @ flat, atol=1e-10)
    for g in G.elements():
        gi = np.rint(g).astype(int)
        Ri, Ro = rin.rho(g), rout.rho(g)
        for di in range(-r, r + 1):
            for dj in range(-r, r + 1):
                e = gi @ [di, dj] + r
                lhs = K[:, e[0], e[1]]
                rhs = np.einsum("oa,nab,bi->noi", Ro, K[:, di + r, dj + r], np.linalg.inv(Ri))
                np.testing.assert_allclose(lhs, rhs, atol=1e-10)


def test_basis_counts():
    C4, D4 = cyclic(4), dihedral(4)
    for G in (C4, D4):
        assert kernel_basis(R("1", G), R("1", G), 3).shape[0] == 3  # centre, edge midpoints, corners
        assert len(offset_orbits(G, 3)) == 3
    # regular -> regular: per orbit O, dim Hom(O x R, R) = |O| * |G|: C4 1*4 + 4*4 + 4*4, D4 8 + 32 + 32
    for G, expected in ((C4, 36), (D4, 72)):
        rin = R("regular", G)
        n = kernel_basis(rin, rin, 3).shape[0]
        assert n == expected == count_equivariant_finite(Tensor(_full_offset_rep(G, 3), rin), rin)
    assert len(offset_orbits(D4, 5)) == 6 and len(offset_orbits(C4, 5)) == 7


def test_pooling_and_global_mean():
    G = dihedral(4)
    rep = R("2 + regular + V", G)
    assert equivariance_error(lambda x: avg_pool2d(x, 2), rep, rep, 8) < 1e-13
    assert equivariance_error(lambda x: avg_pool2d(x, 3), rep, rep, 9) < 1e-13
    reg = R("regular", G)
    assert equivariance_error(lambda x: max_pool2d(x, 2), reg, reg, 8) < 1e-13
    assert equivariance_error(lambda x: max_pool2d(x, 3), reg, reg, 9) < 1e-13
    # max is not equivariant for V (rho(g) mixes signs), as documented
    V = R("V", G)
    assert equivariance_error(lambda x: max_pool2d(x, 2), V, V, 8) > 1e-2
    x = torch.randn(3, 8, 8, rep.size, dtype=torch.float64)
    y = global_mean(x)
    assert y.shape == (3, rep.size)
    for g in G.elements():
        rho = torch.as_tensor(rep.rho(g))
        torch.testing.assert_close(global_mean(transform_grid(x, g, rho)), y @ rho.T)
    torch.testing.assert_close(avg_pool2d(x, 2)[:, 0, 0], x[:, :2, :2].mean(dim=(1, 2)))
    for bad in (3, 5):
        with pytest.raises(ValueError, match="divisible"):
            avg_pool2d(x, bad)
        with pytest.raises(ValueError, match="divisible"):
            max_pool2d(x, bad)


def test_transform_grid_is_an_action():
    """(g h).x == g.(h.x), and the rotation by 90 degrees matches torch.rot90 on a scalar field."""
    G = dihedral(4)
    rep = R("regular + V", G)
    x = torch.randn(2, 6, 6, rep.size, dtype=torch.float64)
    els = G.elements()
    for g in els[:4]:
        for h in els:
            lhs = transform_grid(x, g @ h, rep.rho(g @ h))
            rhs = transform_grid(transform_grid(x, h, rep.rho(h)), g, rep.rho(g))
            torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-13)
    rot = cyclic(4).discrete_generators[0]  # [[0, -1], [1, 0]]: out[i, j] = s[j, -i] centred
    s = torch.randn(1, 5, 5, 1, dtype=torch.float64)
    torch.testing.assert_close(transform_grid(s, rot, np.eye(1)), torch.rot90(s, 1, dims=(1, 2)))


def test_gradcheck():
    G = cyclic(4)
    m = conv(R("regular + 1", G), R("V + 1", G), 3, bias=True)
    names = [k for k, _ in m.named_parameters()]
    assert set(names) == {"bias"} | {f"map.weights.{i}" for i in range(m.map.num_pieces)}
    assert m.map.num_pieces > 1
    x = torch.randn(1, 4, 4, 5, dtype=torch.float64, requires_grad=True)

    def f(x, *params):
        return torch.func.functional_call(m, dict(zip(names, params)), (x,))

    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    assert torch.autograd.gradcheck(f, (x, *params))
    m(x).pow(2).sum().backward()  # gradients reach every single weight
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().min() > 0, name


def test_kernel_spans_the_kernel_basis():
    """kernel() lies in the span of kernel_basis for the whole reps; the weights count its dimension."""
    G = dihedral(4)
    rin, rout, k = R("V + 1 + regular + V", G), R("regular + 1 + V", G), 3
    m = conv(rin, rout, k)
    K = kernel_basis(rin, rout, k).transpose(0, 3, 4, 1, 2)  # [n, out, in, k, k]
    assert m.map.num_basis == K.shape[0]
    for got, want in zip(map_bases(m), piece_kernel_bases(rin, rout, k), strict=True):
        np.testing.assert_array_equal(got.numpy(), want)
    W = m.kernel().detach()
    assert W.shape == (rout.size, rin.size, k, k)
    assert span_residual(W.numpy(), K) < 1e-12
    assert span_residual(W.transpose(2, 3).numpy(), K) > 1e-2  # the check can fail
    Ws = []
    for _ in range(K.shape[0]):
        with torch.no_grad():
            for w in m.map.weights:
                w.normal_()
        Ws.append(m.kernel().detach().numpy().reshape(-1))
    assert np.linalg.matrix_rank(np.stack(Ws), tol=1e-9) == K.shape[0]  # and spans all of it
    x = torch.randn(2, 6, 6, rin.size, dtype=torch.float64)
    ref = F.conv2d(x.permute(0, 3, 1, 2), m.kernel(), padding=1).permute(0, 2, 3, 1)
    torch.testing.assert_close(m(x), ref, rtol=0, atol=0)


def test_wide_regular_conv_is_small_and_exact():
    G = dihedral(4)
    rep, k = R("8*regular", G), 5
    t0 = time.perf_counter()
    m = SteerableConv2d(rep, rep, k, bias=True)
    assert time.perf_counter() - t0 < 5.0  # ~0.1 s with a cold basis cache
    n = m.map.num_basis
    assert n == 8 * 8 * 200  # per copy pair: sum over D4's 6 orbits on 5 x 5 of |O| * |G| = 25 * 8
    entries = sum(b.numel() for name, b in m.map.named_buffers() if name.startswith("basis_"))
    assert entries * 1000 < n * rep.size * rep.size * k * k  # vs one dense basis of the whole kernel
    assert sum(b.numel() for b in m.buffers()) < 400_000
    m.double()
    (basis,) = map_bases(m)
    reg = R("regular", G)
    np.testing.assert_array_equal(basis.numpy(), kernel_basis(reg, reg, k).transpose(0, 3, 4, 1, 2))
    with torch.no_grad():
        m.bias.normal_()
    assert equivariance_error(m, rep, rep, 7, batch=1) < 1e-12
    # output variance ~1 for unit-variance inputs (interior pixels)
    x = torch.randn(2, 16, 16, rep.size, dtype=torch.float64)
    with torch.no_grad():
        m.bias.zero_()
        v = float(m(x)[:, k:-k, k:-k].pow(2).mean())
    assert 0.5 < v < 2.0


@pytest.mark.parametrize("group,a,k", [("C4", "regular", 3), ("D4", "V + 1 + regular", 5), ("C2", "1", 1),
                                       ("D1", "V", 3), ("D2", "regular + V", 3)])
def test_kernel_rep(group, a, k):
    """kernel_rep is Perm_offsets (x) rep_in up to isomorphism: same characters, same maps to any rep_out."""
    G = {"C": cyclic, "D": dihedral}[group[0]](int(group[1:]))
    rin = R(a, G)
    kr = kernel_rep(G, k, rin)
    full = Tensor(_full_offset_rep(G, k), rin)
    assert kr.size == k * k * rin.size == full.size
    for g in G.elements():
        assert np.isclose(np.trace(kr.rho(g)), np.trace(full.rho(g)), atol=1e-9)
    # one term per (offset orbit, block of rep_in); the fixed centre contributes the blocks themselves
    n_terms = len(offset_orbits(G, k)) * len(rin.blocks())
    assert len(facts.blocks(kr)) == n_terms
    if n_terms > 1:
        assert isinstance(kr, Sum)
    assert all(b in facts.blocks(kr) for b in rin.blocks())  # the fixed centre: the blocks themselves
    assert facts.blocks(kernel_rep(G, 1, rin)) == rin.blocks()  # a 1 x 1 kernel sees only the centre
    for b in ("1", "V", "regular", "V + regular + 1"):
        rout = R(b, G)
        n = kernel_basis(rin, rout, k).shape[0]
        assert facts.basis_count(kr, rout) == n == count_equivariant_finite(full, rout)


def test_kernel_rep_unreachable_blocks():
    """What the compiler asks: which output blocks no k x k kernel reaches."""
    C2 = cyclic(2)
    one = R("1", C2)
    # a 1 x 1 kernel sees only the centre, which C2 fixes: no scalar -> V map; a 3 x 3 kernel has d -> d
    assert facts.unreachable_blocks(kernel_rep(C2, 1, one), R("V + 1 + V", C2)) == [0, 2]
    assert facts.unreachable_blocks(kernel_rep(C2, 3, one), R("V + 1 + V", C2)) == []
    D4 = dihedral(4)
    assert facts.unreachable_blocks(kernel_rep(D4, 1, R("1", D4)), R("regular + V", D4)) == [1]
    assert facts.unreachable_blocks(kernel_rep(D4, 3, R("1", D4)), R("regular + V", D4)) == []
    with pytest.raises(ValueError, match="odd"):
        kernel_rep(D4, 2, R("1", D4))
    with pytest.raises(ValueError, match="different groups"):
        kernel_rep(D4, 3, R("1", C2))
    with pytest.raises(ValueError, match="grid"):
        kernel_rep(cyclic(8), 3, R("1", cyclic(8)))


def test_dtypes_and_shapes():
    G = dihedral(4)
    m = SteerableConv2d(R("V", G), R("regular", G), 3)
    assert all(b.dtype == torch.float32 for b in map_bases(m))
    assert all(w.dtype == torch.float32 for w in m.map.weights)
    y = m(torch.randn(2, 6, 9, 2))  # conv itself works on non-square images
    assert y.shape == (2, 6, 9, 8) and y.dtype == torch.float32
    m.double()
    assert all(b.dtype == torch.float64 for b in map_bases(m))
    assert all(w.dtype == torch.float64 for w in m.map.weights)
    assert m(torch.randn(1, 4, 4, 2, dtype=torch.float64)).dtype == torch.float64
    assert m.kernel().shape == (8, 2, 3, 3)
    with pytest.raises(ValueError, match="square"):
        transform_grid(torch.randn(1, 6, 9, 2), G.elements()[1], np.eye(2))
    with pytest.raises(ValueError, match=r"\[B, H, W, 2\]"):
        m(torch.randn(1, 4, 4, 3, dtype=torch.float64))


def test_double_restores_exact_float64_bases():
    """Built in float32, .double() gives the solver's float64 bases exactly (not float32 round-off)."""
    G = dihedral(4)
    rin, rout = R("V + regular", G), R("regular + 1", G)
    exact = piece_kernel_bases(rin, rout, 3)
    m = SteerableConv2d(rin, rout, 3, bias=True)
    assert any(not np.array_equal(b.double().numpy(), e) for b, e in zip(map_bases(m), exact))
    assert m.bias_basis.dtype == torch.float32
    for convert in (lambda mod: mod.double(), lambda mod: mod.float().to(torch.float64)):
        m = convert(m)
        for got, want in zip(map_bases(m), exact, strict=True):
            assert got.dtype == torch.float64
            np.testing.assert_array_equal(got.numpy(), want)
        np.testing.assert_array_equal(m.bias_basis.numpy(), invariant_basis(rout))
    # bases are a function of the reps, not state
    assert set(m.state_dict()) == {"bias"} | {f"map.weights.{i}" for i in range(m.map.num_pieces)}
    other = SteerableConv2d(rin, rout, 3, bias=True).double()
    other.load_state_dict(m.state_dict())
    x = torch.randn(1, 5, 5, rin.size, dtype=torch.float64)
    torch.testing.assert_close(other(x), m(x), rtol=0, atol=0)


def test_init_variance():
    """Unit-variance inputs give outputs of roughly unit variance (interior pixels, over inits)."""
    G = dihedral(4)
    for a, b, k in (("regular", "regular", 5), ("2 + V", "V + 1", 3),
                    ("3*regular + 2 + V", "2*regular + V + 1", 3)):
        rin, rout = R(a, G), R(b, G)
        x = torch.randn(4, 24, 24, rin.size, dtype=torch.float64)
        var = []
        for _ in range(20):
            m = SteerableConv2d(rin, rout, k).double()
            with torch.no_grad():
                var.append(float(m(x)[:, k:-k, k:-k].pow(2).mean()))
        assert 0.5 < np.mean(var) < 2.0


def test_errors():
    with pytest.raises(ValueError, match="grid"):
        SteerableConv2d(R("regular", cyclic(8)), R("regular", cyclic(8)), 3)
    assert "45 degrees" in grid_group_ok(cyclic(8))
    assert "grid" in grid_group_ok(SO2())
    for G in (cyclic(1), cyclic(2), cyclic(4), dihedral(1), dihedral(2), dihedral(4)):
        assert grid_group_ok(G) is None
    assert grid_group_ok(cyclic(3)) is not None and grid_group_ok(dihedral(6)) is not None
    C4 = cyclic(4)
    for k in (2, 4, 0):
        with pytest.raises(ValueError, match="odd"):
            SteerableConv2d(R("regular", C4), R("regular", C4), k)
    with pytest.raises(ValueError, match="invariant"):
        SteerableConv2d(R("regular", C4), R("V", C4), 3, bias=True)
    with pytest.raises(ValueError, match="grid"):
        transform_grid(torch.randn(1, 4, 4, 1), cyclic(8).discrete_generators[0], np.eye(1))
    # C2 (rotation by 180 degrees) maps V to -V; a 1x1 kernel sees only the fixed centre,
    # where no map from scalars to V is equivariant
    C2 = cyclic(2)
    with pytest.raises(ValueError, match="no nonzero"):
        SteerableConv2d(R("1", C2), R("V", C2), 1)
    assert SteerableConv2d(R("1", C2), R("V", C2), 3).map.num_basis > 0
    with pytest.raises(ValueError, match="different groups"):
        SteerableConv2d(R("1", C2), R("V", C4), 3)
