"""Equivariant bases: known dimensions, equivariance, dense/iterative agreement, determinism, cache."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.groups.builtin import GL, SL, SO, O, SU2, Sp, cyclic, dihedral, lorentz, symmetric
from eqdsl.reps.matrix_reps import Trivial, Vector
from eqdsl.reps.permutation_reps import Permutation, Regular
from eqdsl.reps.matrix_rep_syntax import parse_rep
from eqdsl.reps.solve import (
    DENSE_MAX, BasisCache, NoEquivariantMap, bilinear_basis, canonicalize_basis, count_equivariant_finite,
    default_cache, equivariant_basis, invariant_basis, problem_key, solve,
)


@pytest.fixture(autouse=True)
def no_user_cache(monkeypatch):
    """Never touch ~/.cache from tests; tests that want a cache pass one."""
    monkeypatch.setenv("EQDSL_CACHE", "off")


def basis(G, a, b, **kw):
    kw.setdefault("cache", False)
    return equivariant_basis(parse_rep(a, G), parse_rep(b, G), allow_empty=True, **kw)


def assert_equivariant(B, rep_in, rep_out, n_samples=3, seed=0):
    G = rep_in.group
    rng = np.random.default_rng(seed)
    for _ in range(n_samples):
        g = G.sample(rng)
        Ro, Ri_inv = rep_out.rho(g), rep_in.rho_inv(g)
        s = max(1.0, np.abs(Ro).max() * np.abs(Ri_inv).max())
        err = np.abs(np.einsum("oa,nab,bi->noi", Ro, B, Ri_inv) - B).max() if len(B) else 0.0
        assert err <= 1e-8 * s, err


def assert_orthonormal(B):
    F = B.reshape(len(B), -1)
    np.testing.assert_allclose(F @ F.T, np.eye(len(B)), atol=1e-10)


KNOWN = [
    (SO(3), "V", "V", 1),
    (SO(3), "V**2", "scalar", 1),          # the metric
    (O(3), "V**3", "scalar", 0),
    (SO(3), "V**3", "scalar", 1),          # the Levi-Civita symbol
    (SO(3), "V**4", "scalar", 3),
    (SO(3), "V**2", "V**2", 3),
    (O(3), "V**2", "V", 0),
    (SO(3), "V**2", "V", 1),               # cross product
    (symmetric(3), "V", "V", 2),
    (symmetric(5), "V", "V", 2),           # identity and all-ones
    (symmetric(4), "V**2", "V**2", 15),
    (lorentz(), "V**2", "scalar", 1),      # the Minkowski metric
    (lorentz(), "V.dual**2", "scalar", 1),  # its inverse (V* = V through eta)
    (lorentz(), "V * V.dual", "scalar", 1),  # the trace
    (lorentz(), "V", "V", 1),
    (lorentz(), "V**4", "scalar", 4),      # three metric pairings and epsilon
    (lorentz("O"), "V**4", "scalar", 3),
    (SO(2), "V", "scalar", 0),
    (SO(3), "V", "scalar", 0),
    (SO(5), "V", "scalar", 0),
    (SO(2), "V", "V", 2),
    (cyclic(3), "V", "V", 2),              # a I + b J
    (cyclic(8), "V", "V", 2),
    (cyclic(2), "V", "V", 4),              # C2 = {I, -I}
    (dihedral(3), "V", "V", 1),
    (dihedral(4), "V", "V", 1),
    (dihedral(2), "V", "V", 2),
    (SL(2), "V**2", "scalar", 1),          # the symplectic form (antisymmetric)
    (SL(3), "V**2", "scalar", 0),
    (SL(3), "V**3", "scalar", 1),          # the determinant
    (GL(2), "V**2", "scalar", 0),
    (GL(2), "V", "V", 1),
    (GL(3), "V * V.dual", "scalar", 1),    # the trace
    (Sp(4), "V**2", "scalar", 1),
    (SU2(), "V", "V", 4),                  # right multiplication by quaternions
    (SU2(), "V**2", "scalar", 4),
    (dihedral(3), "regular", "regular", 6),
    (cyclic(5), "regular", "scalar", 1),
]


@pytest.mark.parametrize("G, a, b, n", KNOWN, ids=lambda x: str(x).replace(" ", ""))
def test_known_dimensions_and_equivariance(G, a, b, n):
    rep_in, rep_out = parse_rep(a, G), parse_rep(b, G)
    B = equivariant_basis(rep_in, rep_out, cache=False, allow_empty=True)
    assert B.shape == (n, rep_out.size, rep_in.size)
    if n:
        assert_orthonormal(B)
        assert_equivariant(B, rep_in, rep_out)


def test_lorentz_invariant_bilinear_form_is_the_metric():
    # invariant vectors of V* (x) V* are the forms B with g^T B g = B
    G = lorentz()
    B = invariant_basis(Vector(G).dual ** 2, cache=False)
    assert B.shape == (1, 16)
    eta = B[0].reshape(4, 4)
    eta = eta / eta[0, 0]
    np.testing.assert_allclose(eta, np.diag([1.0, -1.0, -1.0, -1.0]), atol=1e-12)
    # maps V**2 -> scalar are linear functionals w(x (x) y) = x^T W y invariant under g: W = eta
    W = basis(G, "V**2", "scalar")[0, 0].reshape(4, 4)
    np.testing.assert_allclose(W / W[0, 0], np.diag([1.0, -1.0, -1.0, -1.0]), atol=1e-12)


def test_so3_invariants_are_the_metric_and_epsilon():
    G = SO(3)
    metric = basis(G, "V**2", "scalar")[0, 0]
    np.testing.assert_allclose(metric, np.eye(3).ravel() / np.sqrt(3), atol=1e-14)  # canonical sign: +
    eps = np.zeros((3, 3, 3))
    for i, j, k in [(0, 1, 2), (1, 2, 0), (2, 0, 1)]:
        eps[i, j, k], eps[j, i, k] = 1.0, -1.0
    e = basis(G, "V**3", "scalar")[0, 0]
    assert abs(abs(e @ eps.ravel()) - np.sqrt(6)) < 1e-12


def test_sl2_invariant_form_is_antisymmetric():
    W = basis(SL(2), "V**2", "scalar")[0, 0].reshape(2, 2)
    np.testing.assert_allclose(W, -W.T, atol=1e-14)


@settings(max_examples=12, deadline=None)
@given(G=st.sampled_from([dihedral(3), dihedral(4), symmetric(3), cyclic(4)]),
       a=st.sampled_from(["V", "V**2", "V + 1", "regular", "V.dual * V", "V**3"]),
       b=st.sampled_from(["scalar", "V", "V**2", "regular + V", "2*V"]))
def test_finite_dimensions_match_characters(G, a, b):
    rep_in, rep_out = parse_rep(a, G), parse_rep(b, G)
    B = equivariant_basis(rep_in, rep_out, cache=False, allow_empty=True)
    assert len(B) == count_equivariant_finite(rep_in, rep_out)
    assert_equivariant(B, rep_in, rep_out, n_samples=2)


MEDIUM = [
    (SO(3), "V**3", "V**2"),
    (lorentz(), "V**2", "V**2"),
    (O(3), "V**2 + V", "V**2"),
    (symmetric(4), "V**2", "V**2"),
    (dihedral(5), "V**4", "V**3"),
    (SL(2), "V**3", "V**3"),
]


@pytest.mark.parametrize("G, a, b", MEDIUM, ids=lambda x: str(x).replace(" ", ""))
def test_dense_and_iterative_solvers_agree(G, a, b):
    dense = basis(G, a, b, method="dense")
    iterative = basis(G, a, b, method="iterative")
    assert dense.shape == iterative.shape and len(dense)
    D, I = dense.reshape(len(dense), -1), iterative.reshape(len(dense), -1)
    # same span: the projectors agree ...
    np.testing.assert_allclose(D.T @ D, I.T @ I, atol=1e-10)
    # ... and, through canonicalization, the arrays themselves
    np.testing.assert_allclose(dense, iterative, atol=1e-10)


def test_iterative_solver_on_a_larger_problem():
    G = lorentz()
    rep = parse_rep("V**3", G)
    assert rep.size ** 2 > DENSE_MAX
    sol = solve(rep, rep, cache=False)
    assert sol.methods == {"iterative": 1}
    assert len(sol.basis) == 25  # 15 products of metrics + 10 with epsilon (SO+(1,3) invariants of V^6)
    assert_orthonormal(sol.basis)
    assert_equivariant(sol.basis, rep, rep, n_samples=2)


def test_iterative_solver_with_dense_constraints_and_finite_group():
    G = dihedral(6)
    rep = parse_rep("V**5", G)
    B = equivariant_basis(rep, rep, method="iterative", cache=False)
    assert len(B) == count_equivariant_finite(rep, rep) == 171
    assert_equivariant(B, rep, rep, n_samples=2)


def test_solutions_are_deterministic():
    G = O(3)
    a, b = parse_rep("V**2 + V", G), parse_rep("V**2", G)
    first = equivariant_basis(a, b, cache=False)
    second = equivariant_basis(a, b, cache=False)
    assert np.array_equal(first, second)
    it1 = equivariant_basis(a, b, cache=False, method="iterative")
    it2 = equivariant_basis(a, b, cache=False, method="iterative")
    assert np.array_equal(it1, it2)


def test_canonicalization_depends_only_on_the_span():
    rng = np.random.default_rng(0)
    B = np.linalg.qr(rng.normal(size=(40, 6)))[0]
    mix = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    c1, c2 = canonicalize_basis(B), canonicalize_basis(B @ mix)
    np.testing.assert_allclose(c1, c2, atol=1e-12)
    np.testing.assert_allclose(c1.T @ c1, np.eye(6), atol=1e-12)
    np.testing.assert_allclose(c1 @ c1.T, B @ B.T, atol=1e-12)


def test_no_equivariant_map():
    G = O(3)
    V = Vector(G)
    with pytest.raises(NoEquivariantMap) as info:
        equivariant_basis(V ** 3, Trivial(G), cache=False)
    assert isinstance(info.value, ValueError)
    assert "O(3)" in str(info.value) and "V**3" in str(info.value)
    assert equivariant_basis(V ** 3, Trivial(G), cache=False, allow_empty=True).shape == (0, 1, 27)
    with pytest.raises(ValueError, match="different groups"):
        equivariant_basis(V, Vector(SO(3)), cache=False)
    with pytest.raises(ValueError, match="unknown method"):
        equivariant_basis(V, V, cache=False, method="magic")


def test_block_splitting_and_reuse():
    G = SO(3)
    V = Vector(G)
    sol = solve(V ** 2 + V, V + 1, cache=False)
    # Hom(V, V) + Hom(V**2, V) (cross product) + Hom(V**2, 1) (dot product); Hom(V, 1) = 0
    assert len(sol.basis) == 3 and sol.blocks == 4 and sol.distinct_blocks == 4
    assert_equivariant(sol.basis, V ** 2 + V, V + 1)
    many = solve(16 * V, 16 * V, cache=False)
    assert many.blocks == 256 and many.distinct_blocks == 1 and len(many.basis) == 256
    assert_orthonormal(many.basis)


def test_trivial_group_everything_is_equivariant():
    G = symmetric(1)
    B = equivariant_basis(Vector(G), Vector(G) + 1, cache=False)
    assert B.shape == (2, 2, 1)


def test_bilinear_maps():
    G = SO(3)
    V = Vector(G)
    cross = bilinear_basis(V, V, V, cache=False)
    assert cross.shape == (1, 3, 3, 3)
    x, y = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 2.0])
    out = np.einsum("oij,i,j->o", cross[0], x, y)
    c = np.cross(x, y)
    np.testing.assert_allclose(out / np.linalg.norm(out), np.sign(out @ c) * c / np.linalg.norm(c), atol=1e-12)
    assert bilinear_basis(Vector(O(3)), Vector(O(3)), Vector(O(3)), cache=False, allow_empty=True).shape[0] == 0
    dot = bilinear_basis(V, V, Trivial(G), cache=False)
    assert dot.shape == (1, 1, 3, 3)
    g = G.sample(np.random.default_rng(0))
    W = bilinear_basis(V, V ** 2, V, cache=False)
    lhs = np.einsum("noij,i,j->no", W, g @ x, np.kron(g @ x, g @ y))
    rhs = np.einsum("po,noij,i,j->np", g, W, x, np.kron(x, y))
    np.testing.assert_allclose(lhs, rhs, atol=1e-12)
    L = lorentz()
    assert bilinear_basis(Vector(L), Vector(L), Trivial(L), cache=False).shape == (1, 1, 4, 4)


def test_permutation_rep_solve():
    G = dihedral(4)
    axes = Permutation.from_orbit(G, [1.0, 0.0])
    B = equivariant_basis(axes, Vector(G), cache=False)
    assert len(B) == count_equivariant_finite(axes, Vector(G)) == 1
    assert_equivariant(B, axes, Vector(G))
    reg = Regular(symmetric(3))
    assert equivariant_basis(reg, Vector(symmetric(3)), cache=False).shape[0] == 3


# -- cache -----------------------------------------------------------------------------------
def test_cache_round_trip(tmp_path, monkeypatch):
    G = SO(3)
    a, b = parse_rep("V**2 + V", G), parse_rep("V**2", G)
    cache = BasisCache(tmp_path, memory=False)
    cold = solve(a, b, cache=cache)
    assert cold.cache_hits == 0 and cache.stats.misses == 2 and cache.stats.writes == 2
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and all(f.endswith(".npy") for f in files)  # no temporary files left
    warm = solve(a, b, cache=BasisCache(tmp_path))
    assert warm.cache_hits == 2 and warm.methods == {"cache": 2}
    assert np.array_equal(cold.basis, warm.basis)
    # memory layer
    mem = BasisCache(tmp_path)
    solve(a, b, cache=mem)
    solve(a, b, cache=mem)
    assert mem.stats.disk_hits == 2 and mem.stats.memory_hits == 2
    # the environment variable names the default cache
    monkeypatch.setenv("EQDSL_CACHE", str(tmp_path / "env"))
    assert default_cache().directory == tmp_path / "env"
    solve(a, b)
    assert len(list((tmp_path / "env").glob("*.npy"))) == 2
    assert solve(a, b).cache_hits == 2
    for off in ("off", "0", "none"):
        monkeypatch.setenv("EQDSL_CACHE", off)
        assert default_cache() is None
        assert solve(a, b).cache_hits == 0


def test_cache_keys_and_corruption(tmp_path):
    G = SO(3)
    V = Vector(G)
    k1 = problem_key(V, V, 1e-6)
    assert k1 == problem_key(Vector(SO(3)), Vector(SO(3)), 1e-6)
    assert k1 != problem_key(Vector(O(3)), Vector(O(3)), 1e-6)
    assert k1 != problem_key(V.dual, V, 1e-6) and k1 != problem_key(V, V, 1e-7)
    cache = BasisCache(tmp_path, memory=False)
    ref = equivariant_basis(V ** 2, V, cache=cache)
    (path,) = tmp_path.glob("*.npy")
    path.write_bytes(b"not a numpy file")
    again = BasisCache(tmp_path, memory=False)
    np.testing.assert_array_equal(equivariant_basis(V ** 2, V, cache=again), ref)
    assert again.stats.misses == 1 and again.stats.writes == 1
    np.save(path, np.zeros((1, 2, 2)))  # wrong shape: ignored
    assert BasisCache(tmp_path).get(path.stem, (3, 9)) is None


def test_empty_results_are_cached_too(tmp_path):
    cache = BasisCache(tmp_path, memory=False)
    V = Vector(O(3))
    with pytest.raises(NoEquivariantMap):
        equivariant_basis(V ** 3, Trivial(O(3)), cache=cache)
    with pytest.raises(NoEquivariantMap):
        equivariant_basis(V ** 3, Trivial(O(3)), cache=cache)
    assert cache.stats.disk_hits == 1


def test_unwritable_cache_only_warns(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.warns(RuntimeWarning, match="could not write"):
        B = equivariant_basis(Vector(SO(3)), Vector(SO(3)), cache=BasisCache(blocker / "sub"))
    assert B.shape == (1, 3, 3)


# -- counts from invariant theory ------------------------------------------------------------------
RIORDAN = [1, 0, 1, 1, 3, 6, 15, 36, 91]  # dim of SO(3) invariants in V^(x)n


@pytest.mark.parametrize("a, b", [(a, b) for a in range(0, 5) for b in range(0, 4) if 0 < a + b <= 7])
def test_so3_and_o3_counts_are_riordan_numbers(a, b):
    for G, expected in ((SO(3), RIORDAN[a + b]), (O(3), RIORDAN[a + b] if (a + b) % 2 == 0 else 0)):
        rep_in = parse_rep(f"V**{a}" if a else "scalar", G)
        rep_out = parse_rep(f"V**{b}" if b else "scalar", G)
        B = equivariant_basis(rep_in, rep_out, cache=False, allow_empty=True)
        assert len(B) == expected
        if a + b >= 6:
            assert_equivariant(B, rep_in, rep_out, n_samples=1)


@pytest.mark.parametrize("n", range(1, 7))
def test_so2_and_o2_counts_are_binomials(n):
    from math import comb
    so2 = comb(n, n // 2) if n % 2 == 0 else 0
    o2 = (comb(n, n // 2) // 2 if n else 1) if n % 2 == 0 else 0
    assert len(basis(SO(2), f"V**{n}", "scalar")) == so2
    assert len(basis(O(2), f"V**{n}", "scalar")) == o2


@pytest.mark.parametrize("a, b", [(2, 0), (3, 0), (4, 0), (5, 0), (2, 2), (3, 1), (3, 2)])
def test_lorentz_counts_match_so4(a, b):
    """SO+(1,3) and SO(4) have the same complexification, hence the same invariant counts."""
    counts = []
    for G in (lorentz(), SO(4)):
        rep_out = parse_rep(f"V**{b}" if b else "scalar", G)
        B = equivariant_basis(parse_rep(f"V**{a}", G), rep_out, cache=False, allow_empty=True)
        counts.append(len(B))
    assert counts[0] == counts[1]


def _small_reps(G):
    V = Vector(G)
    leaves = [V, V.dual, Trivial(G)]
    pieces = st.sampled_from(leaves)
    two = st.tuples(pieces, pieces)
    return st.one_of(
        pieces,
        two.map(lambda ab: ab[0] + ab[1]),
        two.map(lambda ab: ab[0] * ab[1]),
        st.tuples(pieces, pieces, pieces).map(lambda abc: abc[0] * abc[1] + abc[2]),
    ).filter(lambda r: r.size <= 30)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_random_problems_dense_iterative_and_equivariance(data):
    G = data.draw(st.sampled_from([SO(3), O(2), lorentz(), SL(2), dihedral(3), symmetric(3), Sp(4)]))
    rep_in, rep_out = data.draw(_small_reps(G)), data.draw(_small_reps(G))
    dense = equivariant_basis(rep_in, rep_out, cache=False, allow_empty=True, method="dense")
    iterative = equivariant_basis(rep_in, rep_out, cache=False, allow_empty=True, method="iterative")
    assert dense.shape == iterative.shape
    np.testing.assert_allclose(dense, iterative, atol=1e-9)
    if G.is_finite:
        assert len(dense) == count_equivariant_finite(rep_in, rep_out)
    if len(dense):
        assert_orthonormal(dense)
        assert_equivariant(dense, rep_in, rep_out, n_samples=2)
