"""Reference runtime: steerable 2D convolutions, pooling and the grid action (float64, exact groups)."""
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eqdsl.backends.reference.conv2d import (
    OFF_GRID_ANGLES, SteerableConv2d, approximate_equivariance_error, avg_pool2d, global_mean, grid_group_ok,
    grid_subgroup, kernel_basis, kernel_rep, max_pool2d, off_grid_elements, offset_orbits, ring_frequencies,
    ring_interpolation, ring_points, rotate_image, transform_grid,
)
from eqdsl.groups.builtin import GL, O2, SL, SO, SO2, cyclic, dihedral
from eqdsl.reps import matrix_properties
from eqdsl.reps.matrix_reps import Sum, Tensor
from eqdsl.reps.permutation_reps import Permutation
from eqdsl.reps.matrix_rep_syntax import parse_rep
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


def equivariance_error(fn, rep_in, rep_out, size, batch=2, seed=0, elements=None):
    """max over all g (or the given elements) of |f(g.x) - g.f(x)|, relative to max |f(x)|."""
    G = rep_in.group
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, size, size, rep_in.size, dtype=torch.float64, generator=gen)
    err = 0.0
    with torch.no_grad():
        y = fn(x)
        for g in (G.elements() if elements is None else elements):
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
    for t_out, _ in matrix_properties.type_groups(rep_out):
        for t_in, _ in matrix_properties.type_groups(rep_in):
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
    torch.testing.assert_close(m(x), ref, rtol=1e-12, atol=1e-12)  # same sums, other channel order


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
    assert len(matrix_properties.blocks(kr)) == n_terms
    if n_terms > 1:
        assert isinstance(kr, Sum)
    assert all(b in matrix_properties.blocks(kr) for b in rin.blocks())  # the fixed centre: the blocks themselves
    assert matrix_properties.blocks(kernel_rep(G, 1, rin)) == rin.blocks()  # a 1 x 1 kernel sees only the centre
    for b in ("1", "V", "regular", "V + regular + 1"):
        rout = R(b, G)
        n = kernel_basis(rin, rout, k).shape[0]
        assert matrix_properties.basis_count(kr, rout) == n == count_equivariant_finite(full, rout)


def test_kernel_rep_unreachable_blocks():
    """What the compiler asks: which output blocks no k x k kernel reaches."""
    C2 = cyclic(2)
    one = R("1", C2)
    # a 1 x 1 kernel sees only the centre, which C2 fixes: no scalar -> V map; a 3 x 3 kernel has d -> d
    assert matrix_properties.unreachable_blocks(kernel_rep(C2, 1, one), R("V + 1 + V", C2)) == [0, 2]
    assert matrix_properties.unreachable_blocks(kernel_rep(C2, 3, one), R("V + 1 + V", C2)) == []
    D4 = dihedral(4)
    assert matrix_properties.unreachable_blocks(kernel_rep(D4, 1, R("1", D4)), R("regular + V", D4)) == [1]
    assert matrix_properties.unreachable_blocks(kernel_rep(D4, 3, R("1", D4)), R("regular + V", D4)) == []
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


# ------------------------------------------------------------------ approximate (ring-sampled) kernels
def G_of(name):
    return {"C": cyclic, "D": dihedral}[name[0]](int(name[1:]))


def random_conv(rin, rout, k, seed=0):
    """An unconstrained kernel of the same size: the baseline for approximate equivariance."""
    w = torch.randn(rout.size, rin.size, k, k, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return lambda x: F.conv2d(x.permute(0, 3, 1, 2), w, padding=k // 2).permute(0, 2, 3, 1)


def test_grid_subgroup():
    expected = {"C8": 4, "D8": 8, "C6": 2, "C3": 1, "D3": 2, "D6": 4, "C16": 4, "C4": 4, "D4": 8, "C1": 1}
    for name, m in expected.items():
        G = G_of(name)
        H = grid_subgroup(G)
        assert H.shape == (m, 2, 2) and H.dtype == np.float64
        np.testing.assert_array_equal(H[0], np.eye(2))
        np.testing.assert_array_equal(H, np.rint(H))  # exact signed permutations
        for h in H:
            G.element_index(h)
            assert np.all(np.abs(h).sum(axis=0) == 1) and np.all(np.abs(h).sum(axis=1) == 1)
    np.testing.assert_array_equal(grid_subgroup(cyclic(6))[1], -np.eye(2))
    # continuous planar groups: the rotations by 90 degrees (SO(2)), and the 4 axis reflections (O(2))
    for G, m in ((SO2(), 4), (O2(), 8)):
        H = grid_subgroup(G)
        assert H.shape == (m, 2, 2) and H.dtype == np.float64
        np.testing.assert_array_equal(H[0], np.eye(2))
        np.testing.assert_array_equal(H, np.rint(H))
        assert all(G.is_element(h) for h in H)
        assert len({tuple(h.ravel()) for h in H}) == m  # distinct
        assert sorted(np.rint(np.linalg.det(H))) == [-1] * (m - 4) + [1] * 4
        # closed under products: a group
        keys = {tuple(h.ravel()) for h in H}
        assert all(tuple((a @ b).ravel()) in keys for a in H for b in H)
    np.testing.assert_array_equal(grid_subgroup(SO2()), grid_subgroup(O2())[:4])
    # continuous groups of the plane that are not rotations and reflections stay unsupported
    for G in (SL(2), GL(2)):
        with pytest.raises(ValueError, match=r"SO\(2\)/O\(2\)"):
            grid_subgroup(G)


@pytest.mark.parametrize("name", ["C8", "D8", "C6", "C3", "D3", "D6", "C16", "C1", "D1", "C4"])
def test_ring_points_are_permuted_by_every_element(name):
    G = G_of(name)
    n = sum(np.linalg.det(g) > 0 for g in G.elements())
    for k in (1, 3, 5, 7):
        pts = ring_points(G, k)
        np.testing.assert_array_equal(pts[0], [0.0, 0.0])
        radii = np.hypot(pts[:, 0], pts[:, 1])
        sizes = [int(np.sum(np.isclose(radii, r))) for r in range(1, k // 2 + 1)]
        assert all(M % n == 0 and M >= n for M in sizes) and 1 + sum(sizes) == len(pts)
        for g in G.elements():
            dist = np.linalg.norm((pts @ g.T)[:, None] - pts[None], axis=2)
            j = dist.argmin(axis=1)
            assert dist[np.arange(len(pts)), j].max() < 1e-12
            assert sorted(j) == list(range(len(pts)))  # a permutation
        # the interpolation commutes with the grid's symmetries in G: P[h d, h p] = P[d, p]
        P, r = ring_interpolation(G, k), k // 2
        d = np.stack(np.divmod(np.arange(k * k), k), axis=1) - r
        assert np.all(P[(d ** 2).sum(axis=1) > (r + 0.5) ** 2] == 0)  # no corners
        for h in grid_subgroup(G):
            e = d @ np.rint(h).astype(int).T + r
            pd = np.linalg.norm((pts @ h.T)[:, None] - pts[None], axis=2).argmin(axis=1)
            np.testing.assert_allclose(P[np.ix_(e[:, 0] * k + e[:, 1], pd)], P, rtol=0, atol=1e-14)
    assert len(ring_points(cyclic(8), 5)) == 1 + 8 + 16
    assert ring_frequencies(cyclic(8), 7) == [2, 3, 2] and ring_frequencies(cyclic(3), 3) == [2]


def test_rotate_image():
    """Agrees with transform_grid on the grid's symmetries; exact on linear fields for any angle."""
    D4 = dihedral(4)
    for size in (7, 8):
        rep = R("regular + V", D4)
        x = torch.randn(2, size, size, rep.size, dtype=torch.float64)
        for g in D4.elements():
            torch.testing.assert_close(rotate_image(x, g, rep.rho(g)), transform_grid(x, g, rep.rho(g)),
                                       rtol=0, atol=1e-12)
        C8 = cyclic(8)  # the C4 inside C8 carries rounding (cos(pi/2) = 6e-17)
        reg = R("regular", C8)
        x = torch.randn(1, size, size, 8, dtype=torch.float64)
        for g in grid_subgroup(C8)[1:]:
            g = C8.elements()[C8.element_index(g)]
            torch.testing.assert_close(rotate_image(x, g, reg.rho(g)), transform_grid(x, g, reg.rho(g)),
                                       rtol=0, atol=1e-12)
    # bilinear interpolation reproduces linear fields: (g.f)(p) = rho(g) f(g^-1 p) exactly, any g
    D8 = dihedral(8)
    V = R("V", D8)
    size, a = 11, np.random.default_rng(0).normal(size=(2, 2))
    c = np.arange(size) - (size - 1) / 2
    p = np.stack(np.meshgrid(c, c, indexing="ij"), axis=-1)  # [H, W, 2]
    f = torch.as_tensor(p @ a.T)[None]                        # the vector field f(p) = A p
    inside = torch.as_tensor(np.hypot(p[..., 0], p[..., 1]) < (size - 1) / 2 - 1)
    for g in D8.elements():
        want = torch.as_tensor((p @ g) @ a.T @ V.rho(g).T)  # rho(g) A g^-1 p, g^-1 = g^T
        got = rotate_image(f, g, V.rho(g))[0]
        torch.testing.assert_close(got[inside], want[inside], rtol=0, atol=1e-12)
    x = torch.randn(1, 6, 9, 2, dtype=torch.float64, requires_grad=True)  # non-square images work too
    y = rotate_image(x, D8.discrete_generators[0], V.rho(D8.discrete_generators[0]))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None
    with pytest.raises(ValueError, match="rho"):
        rotate_image(x, np.eye(2), np.eye(3))


APPROX_CASES = [("C8", "regular", "regular", 5), ("C8", "1", "regular", 5), ("D8", "regular", "regular", 5),
                ("C6", "regular", "regular", 3), ("D6", "V + 1", "regular", 3), ("C16", "1", "regular", 5)]


def check_approximate(m, G, rin, rout, k, tol):
    """An approximate convolution: exact on the grid subgroup of G (rough inputs, odd and even sizes), and under
    the rest of G an error below `tol` and under a third of an unconstrained kernel's."""
    H = grid_subgroup(G)
    for size in (7, 8):
        assert equivariance_error(m, rin, rout, size, elements=H) < 1e-12
    assert approximate_equivariance_error(m, G, rin, rout, rng=0, elements="grid") < 1e-12
    err = approximate_equivariance_error(m, G, rin, rout, rng=0)
    base = approximate_equivariance_error(random_conv(rin, rout, k), G, rin, rout, rng=0, kernel_size=k)
    assert err < tol and 3 * err < base, (err, base)


@pytest.mark.parametrize("group,a,b,k", APPROX_CASES)
def test_approximate_conv(group, a, b, k):
    """Exact under the grid's symmetries in G; approximately equivariant (far better than an
    unconstrained kernel) under the rest."""
    G = G_of(group)
    rin, rout = R(a, G), R(b, G)
    m = SteerableConv2d(rin, rout, k, approximate=True).double()
    check_approximate(m, G, rin, rout, k, tol=0.15)


@pytest.mark.parametrize("group,a,b,k", APPROX_CASES[:5] + [("D3", "regular", "V + 1", 5), ("C3", "V", "V", 7)])
def test_approximate_kernel_basis(group, a, b, k):
    """Orthonormal, as many as kernel_rep says, and exactly constrained on the grid subgroup."""
    G = G_of(group)
    rin, rout = R(a, G), R(b, G)
    K = kernel_basis(rin, rout, k, approximate=True)  # [n, k, k, out, in]
    n, r = K.shape[0], k // 2
    flat = K.reshape(n, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(n), atol=1e-12)
    assert 0 < n == matrix_properties.basis_count(kernel_rep(G, k, rin, approximate=True), rout)
    d = np.stack(np.divmod(np.arange(k * k), k), axis=1) - r
    Kf = K.reshape(n, k * k, rout.size, rin.size)
    assert np.all(Kf[:, (d ** 2).sum(axis=1) > (r + 0.5) ** 2] == 0)
    for g in grid_subgroup(G):
        g = G.elements()[G.element_index(g)]
        e = np.rint(d @ g.T).astype(int) + r
        rhs = rout.rho(g) @ Kf @ np.linalg.inv(rin.rho(g))
        np.testing.assert_allclose(Kf[:, e[:, 0] * k + e[:, 1]], rhs, atol=1e-12)
    assert len(grid_subgroup(G)) < G.order  # the other elements move offsets off the grid


def test_approximate_counts_match_kernel_rep():
    """The interpolation to pixels loses no kernel, for many groups and sizes (so the compiler's
    reachability check on kernel_rep is exact)."""
    for name in ("C1", "C3", "D3", "C5", "C6", "D6", "C8", "D8", "C16"):
        G = G_of(name)
        rin = R("V + 1", G)
        for k in (1, 3, 5, 7):
            for b in ("1", "V") if name.startswith("D") or name == "C16" else ("1", "V", "regular"):
                rout = R(b, G)
                n = kernel_basis(rin, rout, k, approximate=True).shape[0]
                assert n == matrix_properties.basis_count(kernel_rep(G, k, rin, approximate=True), rout), (name, k, b)
    # a 1 x 1 kernel sees only the centre: the same as the exact kernel
    C8 = cyclic(8)
    assert matrix_properties.blocks(kernel_rep(C8, 1, R("V + 1", C8), approximate=True)) == R("V + 1", C8).blocks()
    assert matrix_properties.unreachable_blocks(kernel_rep(C8, 1, R("1", C8), approximate=True), R("V + 1", C8)) == [0]
    assert matrix_properties.unreachable_blocks(kernel_rep(C8, 3, R("1", C8), approximate=True), R("V + 1", C8)) == []


def test_approximate_is_opt_in_and_planar_only():
    C8 = cyclic(8)
    reg = R("regular", C8)
    with pytest.raises(ValueError, match="grid"):
        SteerableConv2d(reg, reg, 3)
    with pytest.raises(ValueError, match="grid"):
        kernel_basis(reg, reg, 3)
    with pytest.raises(ValueError, match="grid"):
        kernel_rep(C8, 3, reg)
    m = SteerableConv2d(reg, reg, 3, approximate=True)
    assert m.approximate and "approximate=True" in repr(m)
    for G in (SO2(), O2()):  # continuous planar groups: approximate only
        V = R("V", G)
        for make in (lambda: SteerableConv2d(V, V, 3), lambda: kernel_basis(V, V, 3), lambda: kernel_rep(G, 3, V)):
            with pytest.raises(ValueError, match="grid"):
                make()
        assert SteerableConv2d(V, V, 3, approximate=True).map.num_basis > 0
    for G in (SL(2), GL(2)):  # continuous, but not rotations and reflections
        V = R("V", G)
        with pytest.raises(ValueError, match=r"other than SO\(2\)/O\(2\) are not supported on images"):
            SteerableConv2d(V, V, 3, approximate=True)
        with pytest.raises(ValueError, match=r"SO\(2\)/O\(2\)"):
            kernel_basis(V, V, 3, approximate=True)
        with pytest.raises(ValueError, match=r"SO\(2\)/O\(2\)"):
            kernel_rep(G, 3, V, approximate=True)
    with pytest.raises(ValueError, match="R\\^3"):
        kernel_rep(SO(3), 3, R("V", SO(3)), approximate=True)
    with pytest.raises(ValueError, match="odd"):
        SteerableConv2d(reg, reg, 4, approximate=True)
    # grid groups accept approximate=True too: smoother kernels, still exact everywhere
    D4 = dihedral(4)
    rd = R("regular", D4)
    a = SteerableConv2d(rd, rd, 5, approximate=True).double()
    assert a.map.num_basis < SteerableConv2d(rd, rd, 5).map.num_basis
    assert equivariance_error(a, rd, rd, 7) < 1e-12
    assert approximate_equivariance_error(a, D4, rd, rd, rng=0) == 0.0  # no off-grid elements


def test_approximate_gradcheck_and_double():
    C8 = cyclic(8)
    rin, rout = R("1 + V", C8), R("V + 1", C8)
    m = SteerableConv2d(rin, rout, 3, bias=True, approximate=True)
    assert all(b.dtype == torch.float32 for b in map_bases(m))
    m = m.double()
    names = [k for k, _ in m.named_parameters()]
    x = torch.randn(1, 3, 3, rin.size, dtype=torch.float64, requires_grad=True)

    def f(x, *params):
        return torch.func.functional_call(m, dict(zip(names, params)), (x,))

    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    assert torch.autograd.gradcheck(f, (x, *params), fast_mode=True)
    # .double() restores the float64 bases exactly
    exact = []
    for t_out, _ in matrix_properties.type_groups(rout):
        for t_in, _ in matrix_properties.type_groups(rin):
            K = kernel_basis(t_in, t_out, 3, approximate=True)
            if K.shape[0]:
                exact.append(K.transpose(0, 3, 4, 1, 2))
    for got, want in zip(map_bases(m), exact, strict=True):
        assert got.dtype == torch.float64
        np.testing.assert_array_equal(got.numpy(), want)


def test_approximate_init_variance():
    C8 = cyclic(8)
    rep = R("regular", C8)
    x = torch.randn(2, 16, 16, rep.size, dtype=torch.float64)
    var = []
    for _ in range(8):
        m = SteerableConv2d(rep, rep, 5, approximate=True).double()
        with torch.no_grad():
            var.append(float(m(x)[:, 5:-5, 5:-5].pow(2).mean()))
    assert 0.5 < np.mean(var) < 2.0


def test_approximate_error_measure_can_fail():
    """A C4-equivariant kernel inside C8 (exact on the grid subgroup, unconstrained by the 45-degree
    rotations) scores far worse than the ring kernel; the measure validates its arguments."""
    C8 = cyclic(8)
    reg = R("regular", C8)
    ring = SteerableConv2d(reg, reg, 5, approximate=True).double()
    # a C4-equivariant map of C8's regular rep: restricted to C4 it is 2 copies of C4's regular rep
    C4 = grid_subgroup(C8)
    els = C8.elements()
    idx = [C8.element_index(h) for h in C4]
    w = torch.randn(8, 8, 5, 5, dtype=torch.float64)
    # average the random kernel over the C4 action only: K'(d) = mean_h rho(h) K(h^-1 d) rho(h)^-1
    acc = torch.zeros_like(w)
    for i in idx:
        g = els[i]
        rho = torch.as_tensor(reg.rho(g))
        moved = transform_grid(w.permute(2, 3, 0, 1).reshape(1, 5, 5, 64), g, np.eye(64)).reshape(5, 5, 8, 8)
        acc += (rho @ moved @ rho.T).permute(2, 3, 0, 1)
    w4 = acc / len(idx)

    def c4conv(x):
        return F.conv2d(x.permute(0, 3, 1, 2), w4, padding=2).permute(0, 2, 3, 1)

    assert equivariance_error(c4conv, reg, reg, 7, elements=C4) < 1e-12
    e4 = approximate_equivariance_error(c4conv, C8, reg, reg, rng=0, kernel_size=5)
    e = approximate_equivariance_error(ring, C8, reg, reg, rng=0)
    assert 3 * e < e4
    with pytest.raises(ValueError, match="kernel_size"):
        approximate_equivariance_error(c4conv, C8, reg, reg)
    with pytest.raises(ValueError, match="too small"):
        approximate_equivariance_error(ring, C8, reg, reg, size=13)


# ------------------------------------------------------------------ continuous planar groups: SO(2), O(2)
# Hand counts for k = 5 (rings r = 1, 2, both with band limit ring_frequencies = [2, 2]): the ring
# functions carry H = 3 * trivial (centre, two ring constants) + 2 * freq(1) + 2 * freq(2).
# dim Hom(freq(a), freq(b)) is 2 for SO(2) when a = b (the commutant a I + b J), 1 for O(2) (the
# reflection F = diag(1, -1) kills J), else 0; freq(a) (x) freq(b) = freq(a + b) + freq(|a - b|),
# where freq(0) means trivial + trivial for SO(2) and trivial + det for O(2).
#   1 -> V + freq(2) + 1:  Hom(H, V) + Hom(H, freq(2)) + Hom(H, 1) = SO(2): 4 + 4 + 3 = 11, O(2): 2 + 2 + 3 = 7
#   V -> V:  H (x) V = 3 V + 2 (freq(2) + freq(0)) + 2 (freq(3) + freq(1)), Hom to V: SO(2) 3*2 + 2*2 = 10,
#            O(2) 3 + 2 = 5
CONTINUOUS_CASES = [("SO(2)", "1", "V + freq(2) + 1", 11), ("SO(2)", "V", "V", 10),
                    ("O(2)", "1", "V + freq(2) + 1", 7), ("O(2)", "V", "V", 5)]


def continuous(name):
    return {"SO(2)": SO2, "O(2)": O2}[name]()


@pytest.mark.parametrize("group,a,b,count", CONTINUOUS_CASES)
def test_continuous_kernel_basis(group, a, b, count):
    """Orthonormal, as many as kernel_rep says (and the hand count), zero corners, and exactly
    constrained on the grid subgroup."""
    G = continuous(group)
    rin, rout, k = R(a, G), R(b, G), 5
    K = kernel_basis(rin, rout, k, approximate=True)  # [n, k, k, out, in]
    n, r = K.shape[0], k // 2
    assert n == count == matrix_properties.basis_count(kernel_rep(G, k, rin, approximate=True), rout)
    flat = K.reshape(n, -1)
    np.testing.assert_allclose(flat @ flat.T, np.eye(n), atol=1e-12)
    d = np.stack(np.divmod(np.arange(k * k), k), axis=1) - r
    Kf = K.reshape(n, k * k, rout.size, rin.size)
    assert np.all(Kf[:, (d ** 2).sum(axis=1) > (r + 0.5) ** 2] == 0)
    for g in grid_subgroup(G):
        e = np.rint(d @ g.T).astype(int) + r
        rhs = rout.rho(g) @ Kf @ np.linalg.inv(rin.rho(g))
        np.testing.assert_allclose(Kf[:, e[:, 0] * k + e[:, 1]], rhs, atol=1e-12)


# Measured (float64, rng=0, torch seed 0 as below): relative errors under the rotations by 15..75 degrees
# (and, for O(2), those composed with the reflection), against an unconstrained 5 x 5 kernel:
#   SO(2) 1 -> V + freq(2) + 1: 0.030 vs 1.48;  SO(2) V -> V: 0.019 vs 1.52
#   O(2)  1 -> V + freq(2) + 1: 0.030 vs 1.48;  O(2)  V -> V: 0.022 vs 1.68
# (C8/D8 with the same reps: 0.014-0.026.)  Exact on the grid subgroup: ~1e-15.
@pytest.mark.parametrize("group,a,b,count", CONTINUOUS_CASES)
def test_continuous_conv(group, a, b, count):
    """SO(2)/O(2) ring kernels: exact under the grid's symmetries, approximately equivariant
    (far better than an unconstrained kernel) under other rotations and reflections."""
    G = continuous(group)
    rin, rout, k = R(a, G), R(b, G), 5
    bias = "1" in b  # an invariant bias where rep_out has invariants
    m = SteerableConv2d(rin, rout, k, bias=bias, approximate=True).double()
    assert m.map.num_basis == count
    if bias:
        with torch.no_grad():
            m.bias.normal_()  # zero-initialised; make it count
    check_approximate(m, G, rin, rout, k, tol=0.06)


def test_continuous_off_grid_elements():
    """The measure uses fixed rotations by 15..75 degrees (composed with the reflection for O(2)), members of G."""
    for G, m in ((SO2(), 5), (O2(), 10)):
        els = off_grid_elements(G)
        assert els.shape == (m, 2, 2) and all(G.is_element(g) for g in els)
        assert all(_snap_is_none(g) for g in els)
        angles = np.degrees(np.arctan2(els[:5, 1, 0], els[:5, 0, 0]))
        np.testing.assert_allclose(angles, OFF_GRID_ANGLES)
        assert np.all(np.linalg.det(els[5:]) < 0)
    assert off_grid_elements(cyclic(8)).shape == (4, 2, 2) and off_grid_elements(dihedral(4)).shape == (0, 2, 2)


def _snap_is_none(g):
    return not np.allclose(g, np.rint(g), atol=1e-6)


def test_continuous_ring_harmonics_transform_as_their_reps():
    """u(g^-1 p) = S(p) rho(g) c for every g (not only those permuting the points): the cos/sin pair
    of frequency f is freq(f), the constants trivial, for rotations and O(2)'s reflections alike."""
    from eqdsl.reps.grid import _ring_harmonics
    rng = np.random.default_rng(0)
    for G in (SO2(), O2()):
        pts = ring_points(G, 7)
        radii = np.hypot(pts[:, 0], pts[:, 1])
        np.testing.assert_allclose(radii, np.rint(radii), atol=1e-12)
        sizes = [int(np.sum(np.isclose(radii, r))) for r in (1, 2, 3)]
        assert all(M % 4 == 0 for M in sizes) and sizes == [16, 28, 40]
        assert ring_frequencies(G, 7) == [2, 3, 2] and ring_frequencies(G, 9) == [2, 3, 6, 2]
        gs = [G.sample(rng) for _ in range(4)]
        gs += [g @ h for g in gs for h in G.discrete_generators] + list(grid_subgroup(G))  # O(2): reflections
        assert all(G.is_element(g) for g in gs)
        for g in gs:
            q = pts @ np.linalg.inv(g).T  # g^-1 p
            tq = np.arctan2(q[:, 1], q[:, 0])
            for rep, S in _ring_harmonics(G, 7):
                if rep.size == 1:
                    np.testing.assert_array_equal(S[:, 0], S[:, 0] ** 2)  # an indicator: constant on its ring
                    continue
                f = rep.k
                on = S[:, 0] ** 2 + S[:, 1] ** 2 > 0.5
                moved = np.stack([np.cos(f * tq), np.sin(f * tq)], axis=1)[on]  # S(g^-1 p)
                np.testing.assert_allclose(moved, S[on] @ rep.rho(g), atol=1e-12)


def test_continuous_ring_points_and_interpolation():
    """The grid's symmetries in SO(2)/O(2) permute the ring points and commute with the interpolation."""
    for G in (SO2(), O2()):
        for k in (1, 3, 5):
            pts, P, r = ring_points(G, k), ring_interpolation(G, k), k // 2
            d = np.stack(np.divmod(np.arange(k * k), k), axis=1) - r
            for h in grid_subgroup(G):
                dist = np.linalg.norm((pts @ h.T)[:, None] - pts[None], axis=2)
                pd = dist.argmin(axis=1)
                assert dist[np.arange(len(pts)), pd].max() < 1e-12 and sorted(pd) == list(range(len(pts)))
                e = d @ np.rint(h).astype(int).T + r
                np.testing.assert_allclose(P[np.ix_(e[:, 0] * k + e[:, 1], pd)], P, rtol=0, atol=1e-14)


def test_continuous_counts_and_reflections():
    """Counts match kernel_rep for several sizes and outputs; O(2)'s reflections halve the SO(2) counts
    and remove the det outputs of scalar inputs."""
    for G in (SO2(), O2()):
        for a in ("1", "V", "V + freq(2)"):
            rin = R(a, G)
            for k in (1, 3, 5, 7):
                for b in ("1", "det", "V", "freq(2)", "freq(3)"):
                    rout = R(b, G)
                    n = kernel_basis(rin, rout, k, approximate=True).shape[0]
                    assert n == matrix_properties.basis_count(kernel_rep(G, k, rin, approximate=True), rout), (G.name, a, k, b)
    # Scalar -> det.  The ring functions carry, per ring, the constant (trivial) and the pairs
    # (cos f t, sin f t), f >= 1, each an irreducible freq(f) of O(2) that contains no det.  A det
    # component would be the "sin" partner of the constant, sin(0 t) = 0: it does not exist, so O(2)
    # has no scalar -> det kernel at any size: rotation invariance makes a scalar kernel radial, and a
    # radial kernel is even under reflections, while det asks for odd.  (k = 1: the centre alone,
    # trivial, also none.)  On SO(2) det is trivial: one kernel per trivial harmonic, 1 + k // 2.
    O, S = O2(), SO2()
    for k in (1, 3, 5):
        assert kernel_basis(R("1", O), R("det", O), k, approximate=True).shape[0] == 0
        assert matrix_properties.basis_count(kernel_rep(O, k, R("1", O), approximate=True), R("det", O)) == 0
        assert kernel_basis(R("1", S), R("det", S), k, approximate=True).shape[0] == 1 + k // 2
    with pytest.raises(ValueError, match="no nonzero"):
        SteerableConv2d(R("1", O), R("det", O), 5, approximate=True)
    # Vector -> det and vector -> scalar (k = 5, rings r = 1, 2 with frequencies up to 2): a det output
    # needs det inside H (x) V.  The constants give V (x) trivial = V (no det); freq(1) (x) V = freq(2) +
    # trivial + det: the trivial part is the divergence kernel d -> d^T, the det part the curl kernel
    # d -> (J d)^T, which exists because freq(1) has its sin partner; freq(2) (x) V = freq(3) + freq(1)
    # (no det).  So one curl and one divergence per ring: O(2) V -> det 2, V -> 1 2; SO(2), where det is
    # trivial and both are invariant, V -> 1 and V -> det 4 each.
    assert kernel_basis(R("V", O), R("det", O), 5, approximate=True).shape[0] == 2
    assert kernel_basis(R("V", O), R("1", O), 5, approximate=True).shape[0] == 2
    assert kernel_basis(R("V", S), R("1", S), 5, approximate=True).shape[0] == 4
    assert kernel_basis(R("V", S), R("det", S), 5, approximate=True).shape[0] == 4
    # the O(2) kernels are the curl (odd under reflections) and the divergence: K(d) v = (J d . v) w(|d|)
    # and (d . v) w(|d|), so sum_d K(d) d = 0 for the curl and sum_d K(d) J d = 0 for the divergence
    k, r = 5, 2
    d = (np.stack(np.divmod(np.arange(k * k), k), axis=1) - r).astype(np.float64)
    Jd = d @ np.array([[0.0, -1.0], [1.0, 0.0]]).T
    for out, zero_against in (("det", d), ("1", Jd)):
        K = kernel_basis(R("V", O), R(out, O), k, approximate=True).reshape(2, k * k, 2)  # [n, d, in]
        np.testing.assert_allclose(np.einsum("ndi,di->n", K, zero_against), 0, atol=1e-12)
    # V -> V: 10 for SO(2) (5 real 2 x 2 blocks commuting with rotations, each a I + b J), 5 for O(2)
    assert kernel_basis(R("V", S), R("V", S), 5, approximate=True).shape[0] == 10
    assert kernel_basis(R("V", O), R("V", O), 5, approximate=True).shape[0] == 5


def test_continuous_error_measure_can_fail():
    """A scalar kernel made C4-symmetric (exact on SO(2)'s grid subgroup) but not isotropic scores
    far worse under SO(2) than the ring kernel."""
    G = SO2()
    rin, rout = R("1", G), R("freq(2)", G)
    # scalar -> freq(2): the rotation by 90 degrees acts on freq(2) as -1, so C4 lets each of the two
    # outputs use cos(2t) and sin(2t) freely (4 kernels per ring), SO(2) only in the rotation-coupled
    # pairs (2).  (A scalar -> scalar kernel would not do: on smooth fields any C4-symmetric kernel
    # is isotropic up to fourth order.)
    w = torch.randn(2, 1, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    acc = torch.zeros_like(w)
    for h in grid_subgroup(G):  # K'(d) = mean_h rho_out(h) K(h^-1 d) rho_in(h)^-1
        moved = transform_grid(w.permute(2, 3, 0, 1).reshape(1, 5, 5, 2), h, np.eye(2)).reshape(5, 5, 2, 1)
        acc += (torch.as_tensor(rout.rho(h)) @ moved).permute(2, 3, 0, 1)
    w4 = acc / 4

    def c4conv(x):
        return F.conv2d(x.permute(0, 3, 1, 2), w4, padding=2).permute(0, 2, 3, 1)

    assert equivariance_error(c4conv, rin, rout, 7, elements=grid_subgroup(G)) < 1e-12
    e4 = approximate_equivariance_error(c4conv, G, rin, rout, rng=0, kernel_size=5)
    ring = SteerableConv2d(rin, rout, 5, approximate=True).double()
    e = approximate_equivariance_error(ring, G, rin, rout, rng=0)
    assert 3 * e < e4, (e, e4)
    assert approximate_equivariance_error(ring, G, rin, rout, rng=0, elements="all") == e  # the grid part adds ~0


def test_continuous_gradcheck():
    G = SO2()
    rin, rout = R("1 + V", G), R("V + 1", G)
    m = SteerableConv2d(rin, rout, 3, bias=True, approximate=True).double()
    names = [n for n, _ in m.named_parameters()]
    x = torch.randn(1, 3, 3, rin.size, dtype=torch.float64, requires_grad=True)

    def f(x, *params):
        return torch.func.functional_call(m, dict(zip(names, params)), (x,))

    params = [p.detach().clone().requires_grad_() for p in m.parameters()]
    assert torch.autograd.gradcheck(f, (x, *params), fast_mode=True)


def _gram_schmidt_rows(A):
    """Rows of A orthonormalised in order (QR of A^T, positive diagonal), each row's largest entry positive."""
    Q, R = np.linalg.qr(A.T)
    V = (Q * np.sign(np.diag(R))).T
    return V * np.sign(V[np.arange(len(V)), np.argmax(np.abs(V), axis=1)])[:, None]


def test_kernel_orthonormalisation_is_gram_schmidt_in_row_order():
    """The approximate kernels' orthonormal basis depends on the solved kernels alone: Gram-Schmidt in their
    order, even when their Gram matrix is degenerate (an eigensolver would pick its own vectors there, which
    differ between LAPACK builds: C8's kernels have many equal eigenvalues); dependent rows are dropped."""
    from eqdsl.reps.grid import _orthonormal_rows

    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((40, 40)))[0]
    A = 3.0 * Q[:6] + 1e-3 * rng.standard_normal((6, 40))  # nearly degenerate Gram (9 I)
    A[:3] = 3.0 * Q[:3]  # exactly degenerate among the first three
    np.testing.assert_allclose(_orthonormal_rows(A), _gram_schmidt_rows(A), atol=1e-12)
    dependent = np.vstack([A[:2], A[0] - 2 * A[1], A[2:]])  # the third row adds nothing: dropped
    np.testing.assert_allclose(_orthonormal_rows(dependent), _gram_schmidt_rows(A), atol=1e-10)
