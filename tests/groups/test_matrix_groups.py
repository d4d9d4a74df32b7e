"""Matrix groups declared by generators: Lie algebras, sampling, membership, finite enumeration, identity."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.groups.builtin import (
    GL, O, SL, SO, SO2, O2, SU2, Sp, builtin_group, cyclic, dihedral, lorentz, minkowski_metric,
    symmetric, symplectic_form,
)
from eqdsl.groups.matrix import GroupTooLarge, MatrixGroup

seeds = st.integers(0, 2**32 - 1)
ETA = minkowski_metric()

CONTINUOUS = [SO(2), SO(3), SO(5), O(3), O(4), lorentz(), lorentz("O"), SL(2), SL(3), GL(2), Sp(4), SU2()]
FINITE = [cyclic(1), cyclic(2), cyclic(5), cyclic(8), dihedral(1), dihedral(4), dihedral(6),
          symmetric(1), symmetric(2), symmetric(4), symmetric(5)]


# -- Lie algebras --------------------------------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_so_generators_are_antisymmetric(n):
    for G in (SO(n), O(n)):
        assert G.lie_dim == n * (n - 1) // 2
        for A in G.lie_generators:
            np.testing.assert_array_equal(A, -A.T)


def test_lorentz_generators_preserve_the_metric():
    G = lorentz()
    assert G.name == "SO+(1,3)" and G.lie_dim == 6 and not G.compact
    np.testing.assert_array_equal(ETA, np.diag([1.0, -1.0, -1.0, -1.0]))
    kinds = []
    for A in G.lie_generators:
        np.testing.assert_allclose(A.T @ ETA + ETA @ A, 0, atol=0)
        kinds.append("rotation" if np.allclose(A, -A.T) else "boost" if np.allclose(A, A.T) else "?")
    assert kinds.count("rotation") == 3 and kinds.count("boost") == 3


@pytest.mark.parametrize("n", [2, 3, 4])
def test_sl_gl_sp_algebras(n):
    assert SL(n).lie_dim == n * n - 1
    assert all(abs(np.trace(A)) == 0 for A in SL(n).lie_generators)
    assert GL(n).lie_dim == n * n
    if n % 2 == 0:
        J = symplectic_form(n)
        assert Sp(n).lie_dim == (n // 2) * (n + 1)
        for A in Sp(n).lie_generators:
            np.testing.assert_allclose(A.T @ J + J @ A, 0, atol=0)


def test_su2_is_unit_quaternions_acting_on_r4():
    G = SU2()
    assert G.dim == 4 and G.lie_dim == 3
    for A in G.lie_generators:
        np.testing.assert_array_equal(A, -A.T)
        np.testing.assert_array_equal(A @ A, -np.eye(4))  # i^2 = j^2 = k^2 = -1
    i, j, k = G.lie_generators
    np.testing.assert_array_equal(i @ j, k)


@pytest.mark.parametrize("G", CONTINUOUS, ids=str)
def test_generators_span_a_lie_algebra_normalized_by_the_discrete_part(G):
    gens = np.stack([A.ravel() for A in G.lie_generators])
    assert np.linalg.matrix_rank(gens) == G.lie_dim  # linearly independent
    for A in G.lie_generators:
        for B in G.lie_generators:
            assert G.in_lie_algebra(A @ B - B @ A)  # closed under the bracket
        for h in G.discrete_generators:
            assert G.in_lie_algebra(h @ A @ np.linalg.inv(h))
    assert not G.in_lie_algebra(np.eye(G.dim)) or G.name.startswith("GL")


# -- sampling and membership -----------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=seeds)
def test_samples_of_orthogonal_groups(seed):
    rng = np.random.default_rng(seed)
    for n in (2, 3, 4):
        for G, dets in ((SO(n), {1}), (O(n), {1, -1})):
            g = G.sample(rng)
            np.testing.assert_allclose(g.T @ g, np.eye(n), atol=1e-12)
            assert round(np.linalg.det(g)) in dets
            assert G.is_element(g)


def test_orthogonal_group_samples_reach_both_components():
    rng = np.random.default_rng(0)
    dets = {round(np.linalg.det(O(3).sample(rng))) for _ in range(40)}
    assert dets == {1, -1}


@settings(max_examples=25, deadline=None)
@given(seed=seeds)
def test_lorentz_samples_preserve_the_minkowski_metric(seed):
    rng = np.random.default_rng(seed)
    g = lorentz().sample(rng)
    np.testing.assert_allclose(g.T @ ETA @ g, ETA, atol=1e-10)
    assert np.linalg.det(g) == pytest.approx(1.0, abs=1e-10)
    assert g[0, 0] >= 1.0
    assert np.linalg.cond(g) < 1e3  # kept well conditioned
    assert lorentz().is_element(g)
    h = lorentz("O").sample(rng)
    np.testing.assert_allclose(h.T @ ETA @ h, ETA, atol=1e-10)
    assert lorentz("O").is_element(h)


@settings(max_examples=20, deadline=None)
@given(seed=seeds)
def test_samples_of_noncompact_groups(seed):
    rng = np.random.default_rng(seed)
    for n in (2, 3):
        g = SL(n).sample(rng)
        assert np.linalg.det(g) == pytest.approx(1.0, abs=1e-10)
        assert SL(n).is_element(g)
        assert GL(n).is_element(GL(n).sample(rng))
    J = symplectic_form(4)
    s = Sp(4).sample(rng)
    np.testing.assert_allclose(s.T @ J @ s, J, atol=1e-10)
    assert Sp(4).is_element(s)
    q = SU2().sample(rng)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-12)
    assert SU2().is_element(q)


@settings(max_examples=25, deadline=None)
@given(seed=seeds, n=st.integers(1, 9))
def test_samples_of_finite_groups(seed, n):
    rng = np.random.default_rng(seed)
    c = cyclic(n).sample(rng)
    angle = math.atan2(c[1, 0], c[0, 0])
    k = angle / (2 * math.pi / n)
    assert abs(k - round(k)) < 1e-9 and np.linalg.det(c) == pytest.approx(1.0)
    d = dihedral(n).sample(rng)
    np.testing.assert_allclose(d.T @ d, np.eye(2), atol=1e-12)
    assert dihedral(n).is_element(d) and cyclic(n).is_element(c)
    p = symmetric(n).sample(rng)
    assert set(np.unique(p)) <= {0.0, 1.0}
    np.testing.assert_array_equal(p.sum(0), 1)
    np.testing.assert_array_equal(p.sum(1), 1)
    assert symmetric(n).is_element(p)


def test_membership_rejects_non_elements():
    rng = np.random.default_rng(1)
    refl = np.diag([-1.0, 1.0, 1.0])
    assert O(3).is_element(refl) and not SO(3).is_element(refl)
    assert not SO(3).is_element(2 * SO(3).sample(rng))
    assert not SO(3).is_element(np.eye(2))
    T = np.diag([-1.0, 1.0, 1.0, 1.0])
    P = np.diag([1.0, -1.0, -1.0, -1.0])
    assert not lorentz().is_element(T) and not lorentz().is_element(P)
    assert lorentz("O+").is_element(P) and not lorentz("O+").is_element(T)
    assert lorentz("SO").is_element(-np.eye(4)) and not lorentz("SO").is_element(T)
    assert lorentz("O").is_element(T) and lorentz("O").is_element(T @ P)
    assert not lorentz().is_element(np.eye(4) * 1.1)
    assert not SL(2).is_element(np.diag([2.0, 2.0])) and GL(2).is_element(np.diag([2.0, 2.0]))
    assert not GL(2).is_element(np.zeros((2, 2)))
    assert not cyclic(8).is_element(np.array([[0.0, -1.0], [1.0, 0.0]]) @ np.diag([1.0, -1.0]))
    assert not cyclic(6).is_element(np.array([[0.0, -1.0], [1.0, 0.0]]))  # 90 deg is not in C6
    assert cyclic(8).is_element(np.array([[0.0, -1.0], [1.0, 0.0]]))
    assert dihedral(4).is_element(np.array([[0.0, 1.0], [1.0, 0.0]]))
    assert not symmetric(3).is_element(np.eye(3) * -1)
    assert not SU2().is_element(np.diag([1.0, 1.0, -1.0, -1.0]))



def _declared(G):
    """The same generators declared by hand: no facts, so membership falls back to the derived conditions."""
    return MatrixGroup(G.name + "-declared", G.lie_generators, G.discrete_generators, compact=G.compact)


@pytest.mark.parametrize("G", [SO(3), O(3), lorentz(), lorentz("O"), SL(2), Sp(4)], ids=str)
def test_membership_of_groups_declared_without_facts(G):
    """Derived from the generators alone: elements pass; a scaled element breaks the invariant forms."""
    H, rng = _declared(G), np.random.default_rng(7)
    for _ in range(4):
        g = G.sample(rng)
        assert H.is_element(g)
        assert not H.is_element(1.3 * g)


def test_membership_of_a_non_orthogonal_declared_group():
    """The unipotent shear group exp(tA), A = [[0, 1], [0, 0]]: it preserves x^T B y for B = [[0, 1], [-1, d]] and
    commutes with [[x, y], [0, x]]; a diagonal scaling commutes with neither."""
    A = np.array([[0.0, 1.0], [0.0, 0.0]])
    shear = MatrixGroup("shear", [A], [], compact=False)
    for t in (-2.0, 0.5, 3.0):
        assert shear.is_element(np.eye(2) + t * A)
    assert not shear.is_element(np.diag([2.0, 0.5]))
    assert not shear.is_element(np.array([[1.0, 0.0], [1.0, 1.0]]))

@pytest.mark.parametrize("G", FINITE, ids=str)
def test_finite_group_orders_and_enumeration(G):
    expected = {"C": lambda n: n, "D": lambda n: 2 * n, "S": math.factorial}[G.name[0]](int(G.name[1:]))
    assert G.order == expected
    elems = G.elements()
    assert len(elems) == expected
    np.testing.assert_array_equal(elems[0], np.eye(G.dim))
    for i in range(0, len(elems), max(1, len(elems) // 7)):
        assert G.element_index(elems[i]) == i
        assert G.is_element(elems[i])
    # closed under products
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = elems[rng.integers(len(elems))], elems[rng.integers(len(elems))]
        G.element_index(a @ b)


def test_infinite_discrete_generator_is_refused():
    shear = MatrixGroup("shear", [], [np.array([[1.0, 1.0], [0.0, 1.0]])], compact=False)
    with pytest.raises(GroupTooLarge):
        shear.elements(max_order=100)


# -- identity, construction, names ---------------------------------------------------------------
def test_value_equality_and_hash():
    a = MatrixGroup("SO(3)", SO(3).lie_generators, [], compact=True)
    assert a == SO(3) and hash(a) == hash(SO(3))
    assert {SO(3): 1}[a] == 1
    assert MatrixGroup("other", SO(3).lie_generators, [], compact=True) != SO(3)
    assert SO(3) != O(3) and cyclic(4) != dihedral(4)
    assert SO(3) is SO(3)  # constructors are memoized
    assert str(cyclic(8)) == "C8" and str(dihedral(4)) == "D4" and str(symmetric(5)) == "S5"
    assert SO2() is SO(2) and O2() is O(2)
    assert "SO(3)" in repr(SO(3))


def test_generators_are_read_only():
    with pytest.raises(ValueError):
        SO(3).lie_generators[0][0, 1] = 5.0


@pytest.mark.parametrize("name", ["SO(3)", "O(5)", "C8", "D4", "S5", "SO+(1,3)", "O(1,3)", "SL(2)",
                                  "GL(3)", "Sp(4)", "SU(2)"])
def test_builtin_names_round_trip(name):
    assert builtin_group(name).name == name


def test_builtin_group_errors():
    with pytest.raises(ValueError, match="unknown group"):
        builtin_group("E8")
    with pytest.raises(ValueError):
        Sp(3)
    with pytest.raises(ValueError):
        SO(0)
    with pytest.raises(ValueError):
        lorentz("weird")


def test_constructor_validation():
    with pytest.raises(ValueError, match="square"):
        MatrixGroup("bad", [np.zeros((2, 3))], [], compact=True)
    with pytest.raises(ValueError, match="2 x 2"):
        MatrixGroup("bad", [np.zeros((2, 2))], [np.eye(3)], compact=True)
    with pytest.raises(ValueError, match="singular"):
        MatrixGroup("bad", [], [np.zeros((2, 2))], compact=True)
    with pytest.raises(ValueError, match="dim"):
        MatrixGroup("bad", [], [], compact=True)
    trivial = MatrixGroup("1", [], [], compact=True, dim=3)
    assert trivial.order == 1 and trivial.is_element(np.eye(3)) and not trivial.is_element(-np.eye(3))


def test_membership_of_a_group_declared_without_facts():
    """O(2) declared by bare generators: membership from derived invariants and determinants."""
    G = MatrixGroup("my O(2)", [np.array([[0.0, -1.0], [1.0, 0.0]])], [np.diag([1.0, -1.0])], compact=True)
    rng = np.random.default_rng(3)
    for _ in range(5):
        assert G.is_element(G.sample(rng))
    assert not G.is_element(np.diag([2.0, 0.5]))
    assert not G.is_element(np.array([[1.0, 1.0], [0.0, 1.0]]))
    H = MatrixGroup("my SL(2)", SL(2).lie_generators, [], compact=False)
    assert H.is_element(SL(2).sample(rng))
    assert not H.is_element(np.diag([2.0, 2.0]))
