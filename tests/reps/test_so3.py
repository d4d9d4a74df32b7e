"""Numerics of eqdsl.reps.so3: equivariance, group laws, normalization, and agreement with e3nn."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.groups.o3 import O3, SO3, O3Irrep, SO3Irrep
from eqdsl.reps.irreps import Irreps
from eqdsl.reps.so3 import (
    D_from_matrix,
    angles_to_matrix,
    change_basis_real_to_complex,
    irreps_D,
    matrix_to_angles,
    random_orthogonal,
    random_rotation,
    so3_generators,
    spherical_harmonics,
    su2_clebsch_gordan,
    wigner_3j,
    wigner_D,
)

ATOL = 1e-12
seeds = st.integers(0, 2**32 - 1)


def triples(lmax):
    """All (l1, l2, l3) with l1, l2 <= lmax that pass the triangle rule."""
    for l1, l2 in itertools.product(range(lmax + 1), repeat=2):
        for l3 in range(abs(l1 - l2), l1 + l2 + 1):
            yield l1, l2, l3


SPOT_3J = [(8, 8, 16), (8, 8, 0), (7, 8, 4), (8, 5, 10), (6, 6, 12), (8, 1, 7)]


def rotate_3j(C, D1, D2, D3):
    return np.einsum("ia,jb,kc,abc->ijk", D1, D2, D3, C)


def D(l, R):
    return D_from_matrix(SO3Irrep(l), R)


# --- basis change and SU(2) coefficients ---------------------------------------


@pytest.mark.parametrize("l", range(9))
def test_change_basis_is_unitary(l):
    q = change_basis_real_to_complex(l)
    assert q.dtype == np.complex128
    np.testing.assert_allclose(q.conj().T @ q, np.eye(2 * l + 1), atol=ATOL)


def test_su2_known_values():
    # |1 0> = (|+-> + |-+>)/sqrt2 ; |0 0> = (|+-> - |-+>)/sqrt2 for two spin-1/2
    c1 = su2_clebsch_gordan(0.5, 0.5, 1)
    c0 = su2_clebsch_gordan(0.5, 0.5, 0)
    s = 1 / math.sqrt(2)
    np.testing.assert_allclose(c1[:, :, 1], [[0, s], [s, 0]], atol=ATOL)
    np.testing.assert_allclose(c0[:, :, 0], [[0, -s], [s, 0]], atol=ATOL)
    # <1 1 1 -1 | 2 0> = 1/sqrt6
    assert su2_clebsch_gordan(1, 1, 2)[2, 0, 2] == pytest.approx(1 / math.sqrt(6), abs=ATOL)


@pytest.mark.parametrize("j1,j2", [(0.5, 0.5), (1, 0.5), (1.5, 2), (2, 3), (4, 4)])
def test_su2_orthogonality(j1, j2):
    """CG matrices form an orthogonal change of basis from |j1 m1 j2 m2> to |j3 m3>."""
    t = int(2 * abs(j1 - j2)), int(2 * (j1 + j2))
    cols = [su2_clebsch_gordan(j1, j2, t3 / 2).reshape(-1, t3 + 1) for t3 in range(t[0], t[1] + 1, 2)]
    U = np.concatenate(cols, axis=1)
    np.testing.assert_allclose(U.T @ U, np.eye(U.shape[0]), atol=ATOL)


@pytest.mark.parametrize("bad", [(1, 1, 3), (0.5, 0.5, 0.5), (2, 0, 1), (-1, 1, 1), (0.3, 1, 1)])
def test_su2_rejects_invalid(bad):
    with pytest.raises(ValueError):
        su2_clebsch_gordan(*bad)


# --- wigner_3j -----------------------------------------------------------------


@pytest.mark.parametrize("bad", [(1, 1, 3), (0, 2, 1), (4, 1, 2)])
def test_3j_triangle_error(bad):
    with pytest.raises(ValueError, match="triangle"):
        wigner_3j(*bad)


def test_3j_cached_readonly():
    C = wigner_3j(2, 3, 4)
    assert C is wigner_3j(2, 3, 4)
    assert C.dtype == np.float64 and C.shape == (5, 7, 9)
    assert not C.flags.writeable
    with pytest.raises(ValueError):
        C[0, 0, 0] = 1.0


@pytest.mark.parametrize("l1,l2,l3", list(triples(4)) + SPOT_3J)
def test_3j_invariant_under_generators(l1, l2, l3):
    """Infinitesimal invariance: (X1 + X2 + X3) C = 0 for each rotation generator."""
    C = wigner_3j(l1, l2, l3)
    assert np.linalg.norm(C) == pytest.approx(1.0, abs=ATOL)
    X1, X2, X3 = so3_generators(l1), so3_generators(l2), so3_generators(l3)
    for k in range(3):
        lie = (np.einsum("ia,abc->ibc", X1[k], C) + np.einsum("jb,abc->ajc", X2[k], C)
               + np.einsum("kc,abc->abk", X3[k], C))
        np.testing.assert_allclose(lie, 0, atol=1e-11)


def test_3j_invariant_under_rotations():
    rng = np.random.default_rng(0)
    for l1, l2, l3 in list(triples(4)) + SPOT_3J:
        R = random_rotation(rng)
        C = wigner_3j(l1, l2, l3)
        np.testing.assert_allclose(rotate_3j(C, D(l1, R), D(l2, R), D(l3, R)), C, atol=1e-11)


@pytest.mark.parametrize("l1,l2", list(itertools.product(range(5), repeat=2)))
def test_3j_orthogonality_and_completeness(l1, l2):
    """sqrt(2l3+1) C(l1,l2,l3), over all l3, is an orthogonal change of basis of the product space."""
    ls = range(abs(l1 - l2), l1 + l2 + 1)
    U = np.concatenate([math.sqrt(2 * l3 + 1) * wigner_3j(l1, l2, l3).reshape(-1, 2 * l3 + 1) for l3 in ls], axis=1)
    assert U.shape == ((2 * l1 + 1) * (2 * l2 + 1),) * 2
    np.testing.assert_allclose(U.T @ U, np.eye(U.shape[0]), atol=ATOL)


@pytest.mark.parametrize("l1,l2,l3", [(1, 1, 1), (1, 2, 3), (2, 3, 4), (3, 3, 2), (4, 2, 5)])
def test_3j_permutation_symmetry(l1, l2, l3):
    C, s = wigner_3j(l1, l2, l3), (-1) ** (l1 + l2 + l3)
    np.testing.assert_allclose(wigner_3j(l2, l1, l3), s * C.transpose(1, 0, 2), atol=ATOL)
    np.testing.assert_allclose(wigner_3j(l2, l3, l1), C.transpose(1, 2, 0), atol=ATOL)


# --- generators and Wigner D -----------------------------------------------------


def test_generators_l1_are_xyz_rotations():
    eps = np.zeros((3, 3, 3))
    for i, j, k in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
        eps[i, j, k], eps[i, k, j] = 1, -1
    # (L_i)_jk = -eps_ijk: the generator of the rotation about axis i
    np.testing.assert_allclose(so3_generators(1), -eps, atol=ATOL)


@pytest.mark.parametrize("l", range(9))
def test_generators_lie_algebra(l):
    X = so3_generators(l)
    np.testing.assert_allclose(X + X.transpose(0, 2, 1), 0, atol=ATOL)
    for i, j, k in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
        np.testing.assert_allclose(X[i] @ X[j] - X[j] @ X[i], X[k], atol=1e-11)
    # Casimir: sum X_i^2 = -l(l+1)
    np.testing.assert_allclose(np.einsum("kab,kbc->ac", X, X), -l * (l + 1) * np.eye(2 * l + 1), atol=1e-10)


def test_wigner_D_l1_is_rotation_matrix():
    rng = np.random.default_rng(1)
    abc = rng.uniform(-7, 7, size=(3, 20))
    np.testing.assert_allclose(wigner_D(1, *abc), angles_to_matrix(*abc), atol=ATOL)


@pytest.mark.parametrize("l", range(9))
def test_wigner_D_agrees_with_D_from_matrix(l):
    rng = np.random.default_rng(l)
    abc = rng.uniform(-7, 7, size=(3, 10))
    np.testing.assert_allclose(wigner_D(l, *abc), D(l, angles_to_matrix(*abc)), atol=1e-11)


def test_angles_round_trip():
    rng = np.random.default_rng(2)
    R = np.concatenate([random_rotation(rng, 50), np.eye(3)[None], angles_to_matrix(0.3, np.pi, 1.1)[None],
                        angles_to_matrix(0.3, 0.0, 1.1)[None]])
    np.testing.assert_allclose(angles_to_matrix(*matrix_to_angles(R)), R, atol=1e-12)
    with pytest.raises(ValueError):
        matrix_to_angles(-np.eye(3))


@settings(max_examples=25, deadline=None)
@given(seeds)
def test_D_homomorphism_so3(seed):
    rng = np.random.default_rng(seed)
    R1, R2 = random_rotation(rng), random_rotation(rng)
    assert np.linalg.det(R1) == pytest.approx(1.0)
    for l in range(9):
        D1, D2 = D(l, R1), D(l, R2)
        np.testing.assert_allclose(D(l, R1 @ R2), D1 @ D2, atol=1e-11)
        np.testing.assert_allclose(D1 @ D1.T, np.eye(2 * l + 1), atol=1e-11)
        np.testing.assert_allclose(D(l, R1.T), D1.T, atol=1e-11)


@pytest.mark.parametrize("l", range(9))
def test_D_identity(l):
    for ir in (SO3Irrep(l), O3Irrep(l, 1), O3Irrep(l, -1)):
        np.testing.assert_allclose(D_from_matrix(ir, np.eye(3)), np.eye(2 * l + 1), atol=ATOL)
    np.testing.assert_allclose(wigner_D(l, 0.0, 0.0, 0.0), np.eye(2 * l + 1), atol=ATOL)


@settings(max_examples=25, deadline=None)
@given(seeds)
def test_D_homomorphism_o3_with_reflections(seed):
    rng = np.random.default_rng(seed)
    Q1, Q2 = random_orthogonal(rng), random_orthogonal(rng)
    Q1[:, 0] *= -1 if np.linalg.det(Q1) > 0 else 1  # make sure at least one reflection is tested
    for l, p in itertools.product(range(7), (1, -1)):
        ir = O3Irrep(l, p)
        np.testing.assert_allclose(D_from_matrix(ir, Q1 @ Q2), D_from_matrix(ir, Q1) @ D_from_matrix(ir, Q2),
                                   atol=1e-11)


@pytest.mark.parametrize("l", range(9))
def test_D_parity(l):
    for p in (1, -1):
        np.testing.assert_allclose(D_from_matrix(O3Irrep(l, p), -np.eye(3)), p * np.eye(2 * l + 1), atol=ATOL)
    rng = np.random.default_rng(l)
    M = np.diag([1.0, 1.0, -1.0]) @ random_rotation(rng)  # a reflection: D = p D(-M)
    np.testing.assert_allclose(D_from_matrix(O3Irrep(l, -1), M), -D(l, -M), atol=1e-11)


def test_D_errors():
    with pytest.raises(ValueError, match="reflection"):
        D_from_matrix(SO3Irrep(1), -np.eye(3))
    with pytest.raises(ValueError, match="orthogonal"):
        D_from_matrix(O3Irrep(1, -1), 2 * np.eye(3))
    with pytest.raises(ValueError):
        D_from_matrix(O3Irrep(1, -1), np.eye(2))


def test_D_batched():
    rng = np.random.default_rng(3)
    Q = random_orthogonal(rng, (4, 2))
    out = D_from_matrix(O3Irrep(3, -1), Q)
    assert out.shape == (4, 2, 7, 7)
    np.testing.assert_allclose(out[1, 1], D_from_matrix(O3Irrep(3, -1), Q[1, 1]), atol=ATOL)


def test_irreps_D_blocks_and_homomorphism():
    irreps = Irreps.parse("2x0e+1o+3x2e+0o+1x3o", O3)
    rng = np.random.default_rng(4)
    Q1, Q2 = random_orthogonal(rng), random_orthogonal(rng)
    M = irreps_D(irreps, Q1)
    assert M.shape == (irreps.dim, irreps.dim)
    start = 0
    for mul, ir in irreps:
        for _ in range(mul):
            sl = slice(start, start + ir.dim)
            np.testing.assert_allclose(M[sl, sl], D_from_matrix(ir, Q1), atol=ATOL)
            start += ir.dim
    mask = np.zeros_like(M, dtype=bool)
    start = 0
    for mul, ir in irreps:
        for _ in range(mul):
            mask[start:start + ir.dim, start:start + ir.dim] = True
            start += ir.dim
    assert np.all(M[~mask] == 0)
    np.testing.assert_allclose(irreps_D(irreps, Q1 @ Q2), M @ irreps_D(irreps, Q2), atol=1e-11)
    np.testing.assert_allclose(M @ M.T, np.eye(irreps.dim), atol=1e-11)
    with pytest.raises(ValueError):
        irreps_D(Irreps.parse("1x1+2x0", SO3), -np.eye(3))


def test_random_matrices():
    rng = np.random.default_rng(5)
    R = random_rotation(rng, 200)
    Q = random_orthogonal(rng, 200)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=ATOL)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=ATOL)
    dets = np.linalg.det(Q)
    np.testing.assert_allclose(np.abs(dets), 1.0, atol=ATOL)
    assert 50 < np.sum(dets > 0) < 150  # both components are hit about equally often
    assert random_rotation(rng).shape == (3, 3)
    # Haar: the mean of a random rotation is zero (|mean| ~ 1/sqrt(N) otherwise)
    assert np.abs(random_rotation(rng, 4000).mean(axis=0)).max() < 0.06


# --- spherical harmonics -----------------------------------------------------------


def sh_blocks(Y, lmax):
    return [Y[..., l * l:(l + 1) ** 2] for l in range(lmax + 1)]


def test_sh_low_orders():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(10, 3))
    u = x / np.linalg.norm(x, axis=-1, keepdims=True)
    Y = spherical_harmonics(2, x)
    assert Y.shape == (10, 9)
    np.testing.assert_allclose(Y[:, 0], 1.0)
    np.testing.assert_allclose(Y[:, 1:4], math.sqrt(3) * u, atol=ATOL)  # l=1 is (x, y, z)
    # m=0 of l=2 is along y, the polar axis
    np.testing.assert_allclose(Y[:, 6], math.sqrt(5) * (u[:, 1] ** 2 - 0.5 * (u[:, 0] ** 2 + u[:, 2] ** 2)), atol=ATOL)


@settings(max_examples=20, deadline=None)
@given(seeds)
def test_sh_equivariance(seed):
    """Y(Q r) = D(Q) Y(r) for rotations and reflections: SH carry Irreps.harmonics(O3, lmax) (parity (-1)^l)."""
    rng = np.random.default_rng(seed)
    lmax = 8
    x = rng.normal(size=(7, 3))
    Q = random_orthogonal(rng)
    D_all = irreps_D(Irreps.harmonics(O3, lmax), Q)
    np.testing.assert_allclose(spherical_harmonics(lmax, x @ Q.T), spherical_harmonics(lmax, x) @ D_all.T, atol=1e-10)


def test_sh_component_normalization():
    rng = np.random.default_rng(7)
    lmax = 8
    Y = spherical_harmonics(lmax, rng.normal(size=(50, 3)))
    for l, block in enumerate(sh_blocks(Y, lmax)):
        np.testing.assert_allclose(np.sum(block**2, axis=-1), 2 * l + 1, rtol=1e-12)


def test_sh_orthonormal_on_sphere():
    """Exact quadrature (Gauss-Legendre in y, uniform in angle): mean of Y_a Y_b over S^2 is delta_ab."""
    lmax = 8
    y, wy = np.polynomial.legendre.leggauss(lmax + 2)
    phi = 2 * np.pi * np.arange(2 * lmax + 2) / (2 * lmax + 2)
    yy, pp = np.meshgrid(y, phi, indexing="ij")
    s = np.sqrt(1 - yy**2)
    pts = np.stack([s * np.sin(pp), yy, s * np.cos(pp)], axis=-1).reshape(-1, 3)
    w = (np.repeat(wy, len(phi)) / (2 * len(phi)))  # weights sum to 1
    Y = spherical_harmonics(lmax, pts)
    np.testing.assert_allclose(np.einsum("n,na,nb->ab", w, Y, Y), np.eye((lmax + 1) ** 2), atol=1e-12)


def test_sh_zero_vector_and_homogeneity():
    lmax = 8
    Y0 = spherical_harmonics(lmax, np.zeros((2, 3)))
    expected = np.zeros((lmax + 1) ** 2)
    expected[0] = 1.0
    assert np.all(np.isfinite(Y0))
    np.testing.assert_array_equal(Y0, np.broadcast_to(expected, Y0.shape))
    rng = np.random.default_rng(8)
    x = rng.normal(size=(5, 3))
    scale = 1.7
    Ya, Yb = spherical_harmonics(lmax, scale * x, normalize=False), spherical_harmonics(lmax, x, normalize=False)
    for l, (a, b) in enumerate(zip(sh_blocks(Ya, lmax), sh_blocks(Yb, lmax))):
        np.testing.assert_allclose(a, scale**l * b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(spherical_harmonics(lmax, x / np.linalg.norm(x, axis=-1, keepdims=True), False),
                               spherical_harmonics(lmax, x), atol=1e-12)
    with pytest.raises(ValueError):
        spherical_harmonics(2, np.zeros((4, 2)))


# --- agreement with e3nn ---------------------------------------------------------------


@pytest.fixture(scope="module")
def e3o3():
    pytest.importorskip("e3nn")
    import torch
    from e3nn import o3

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds generators and D in the default dtype
    yield torch, o3
    torch.set_default_dtype(old)


E3NN_3J = [t for t in triples(5) if t[2] <= 5] + SPOT_3J


def test_e3nn_wigner_3j(e3o3):
    torch, o3 = e3o3
    for l1, l2, l3 in E3NN_3J:
        ref = o3.wigner_3j(l1, l2, l3, dtype=torch.float64).numpy()
        np.testing.assert_allclose(wigner_3j(l1, l2, l3), ref, atol=ATOL, err_msg=f"{(l1, l2, l3)}")


def test_e3nn_basis_and_generators(e3o3):
    torch, o3 = e3o3
    for l in range(9):
        np.testing.assert_allclose(change_basis_real_to_complex(l),
                                   o3.change_basis_real_to_complex(l, dtype=torch.float64).numpy(), atol=ATOL)
        np.testing.assert_allclose(so3_generators(l), o3.so3_generators(l).numpy(), atol=ATOL)


def test_e3nn_rotations_and_D(e3o3):
    torch, o3 = e3o3
    rng = np.random.default_rng(9)
    abc = rng.uniform(-7, 7, size=(3, 8))
    t_abc = [torch.tensor(a) for a in abc]
    R = angles_to_matrix(*abc)
    np.testing.assert_allclose(R, o3.angles_to_matrix(*t_abc).numpy(), atol=ATOL)
    for ours, ref in zip(matrix_to_angles(R), o3.matrix_to_angles(torch.tensor(R))):
        np.testing.assert_allclose(ours, ref.numpy(), atol=1e-10)
    for l in range(9):
        np.testing.assert_allclose(wigner_D(l, *abc), o3.wigner_D(l, *t_abc).numpy(), atol=1e-11)
    Q = random_orthogonal(rng, 8)
    for l, p in itertools.product(range(9), (1, -1)):
        ref = o3.Irrep(l, p).D_from_matrix(torch.tensor(Q)).numpy()
        np.testing.assert_allclose(D_from_matrix(O3Irrep(l, p), Q), ref, atol=1e-11)
    text = "2x0e+1o+3x2e+0o+2x3o"
    ref = o3.Irreps(text).D_from_matrix(torch.tensor(Q)).numpy()
    np.testing.assert_allclose(irreps_D(Irreps.parse(text, O3), Q), ref, atol=1e-11)


@pytest.mark.parametrize("normalize", [True, False])
def test_e3nn_spherical_harmonics(e3o3, normalize):
    torch, o3 = e3o3
    rng = np.random.default_rng(10)
    x = rng.normal(size=(64, 3))
    x[0] = 0.0
    x[1] = [0.0, 2.0, 0.0]
    for lmax in range(9):
        ref = o3.spherical_harmonics(list(range(lmax + 1)), torch.tensor(x), normalize=normalize,
                                     normalization="component").numpy()
        np.testing.assert_allclose(spherical_harmonics(lmax, x, normalize=normalize), ref, atol=1e-10, rtol=1e-10)
