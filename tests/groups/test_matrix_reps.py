"""General representations of matrix groups: homomorphisms, Lie algebra actions, canonical forms, parsing."""
import re

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.groups.builtin import SL, SO, O, cyclic, dihedral, lorentz, symmetric
from eqdsl.groups.matrix import expm
from eqdsl.reps.matrix_reps import (
    Dual, Power, RepSyntaxError, Sum, Tensor, Trivial, Vector,
)
from eqdsl.reps.matrix_rep_syntax import parse_rep
from eqdsl.reps.permutation_reps import Permutation, Regular
from eqdsl.reps.irreps import IrrepsSyntaxError

GROUPS = [SO(3), O(2), lorentz(), SL(2), dihedral(4), symmetric(3)]
MAX_SIZE = 64


def reps_of(G):
    leaves = [Vector(G), Vector(G).dual, Trivial(G)]
    if G.is_finite:
        leaves.append(Regular(G))
    base = st.sampled_from(leaves)

    def extend(children):
        return st.one_of(
            st.tuples(children, children).map(lambda ab: ab[0] + ab[1]),
            st.tuples(children, children).map(lambda ab: ab[0] * ab[1]),
            st.tuples(children, st.integers(0, 3)).map(lambda ak: ak[0] ** ak[1]),
            st.tuples(st.integers(1, 3), children).map(lambda na: na[0] * na[1]),
            children.map(lambda a: a.dual),
            st.tuples(children, st.integers(1, 2)).map(lambda an: an[0] + an[1]),
        )

    return st.recursive(base, extend, max_leaves=5).filter(lambda r: r.size <= MAX_SIZE)


group_and_rep = st.sampled_from(GROUPS).flatmap(lambda G: st.tuples(st.just(G), reps_of(G)))
seeds = st.integers(0, 2**32 - 1)


def scale(*mats):
    return max([1.0] + [float(np.abs(m).max()) for m in mats])


@settings(max_examples=60, deadline=None)
@given(gr=group_and_rep, seed=seeds)
def test_rho_is_a_homomorphism(gr, seed):
    G, rep = gr
    rng = np.random.default_rng(seed)
    g1, g2 = G.sample(rng), G.sample(rng)
    R1, R2, R12 = rep.rho(g1), rep.rho(g2), rep.rho(g1 @ g2)
    assert R1.shape == (rep.size, rep.size)
    np.testing.assert_allclose(R12, R1 @ R2, atol=1e-9 * scale(R1) * scale(R2))
    np.testing.assert_allclose(rep.rho(np.eye(G.dim)), np.eye(rep.size), atol=1e-12)
    Rinv = rep.rho_inv(g1)
    np.testing.assert_allclose(R1 @ Rinv, np.eye(rep.size), atol=1e-9 * scale(R1) * scale(Rinv))
    np.testing.assert_allclose(rep.rho(np.linalg.inv(g1)), Rinv, atol=1e-9 * scale(Rinv))
    assert rep.character(g1) == pytest.approx(np.trace(R1), abs=1e-9 * scale(R1) * rep.size)


@settings(max_examples=40, deadline=None)
@given(gr=group_and_rep, seed=seeds)
def test_drho_is_the_derivative_of_rho(gr, seed):
    G, rep = gr
    if G.is_finite:
        assert not rep.drho(np.zeros((G.dim, G.dim))).any()
        return
    rng = np.random.default_rng(seed)
    c = rng.normal(scale=0.3, size=G.lie_dim)
    A = G.lie_element(c)
    dA = rep.drho(A)
    # rho(exp A) = exp(drho(A))
    np.testing.assert_allclose(rep.rho(expm(A)), scipy.linalg.expm(dA), atol=1e-9 * scale(dA) ** 2)
    # drho is a Lie algebra homomorphism
    B = G.lie_element(rng.normal(scale=0.3, size=G.lie_dim))
    dB = rep.drho(B)
    np.testing.assert_allclose(rep.drho(A @ B - B @ A), dA @ dB - dB @ dA, atol=1e-10 * scale(dA, dB) ** 2)


@settings(max_examples=60, deadline=None)
@given(gr=group_and_rep)
def test_string_round_trip_and_value_semantics(gr):
    G, rep = gr
    text = str(rep)
    again = parse_rep(text, G)
    assert again == rep and hash(again) == hash(rep)
    assert again.size == rep.size and again.structure() == rep.structure()
    assert text in repr(rep)


@settings(max_examples=30, deadline=None)
@given(gr=group_and_rep, seed=seeds)
def test_blocks_reassemble_the_rep(gr, seed):
    G, rep = gr
    g = G.sample(np.random.default_rng(seed))
    blocks = rep.blocks()
    assert sum(b.size for b in blocks) == rep.size
    np.testing.assert_allclose(scipy.linalg.block_diag(*[b.rho(g) for b in blocks]), rep.rho(g), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(gr=group_and_rep, seed=seeds)
def test_dual_pairing_is_invariant(gr, seed):
    G, rep = gr
    g = G.sample(np.random.default_rng(seed))
    R, Rd = rep.rho(g), rep.dual.rho(g)
    np.testing.assert_allclose(R.T @ Rd, np.eye(rep.size), atol=1e-9 * scale(R) * scale(Rd))
    raw = Dual(rep).rho(g)
    np.testing.assert_allclose(raw, Rd, atol=1e-9 * scale(Rd))


@pytest.mark.parametrize("G", [SO(3), lorentz(), SL(2), dihedral(4)], ids=str)
def test_sum_tensor_power_dual_matrices(G):
    rng = np.random.default_rng(0)
    g = G.sample(rng)
    V = Vector(G)
    A = g
    np.testing.assert_allclose(V.rho(g), A)
    np.testing.assert_allclose(V.dual.rho(g), np.linalg.inv(A).T)
    np.testing.assert_allclose(Sum(V, V.dual).rho(g), scipy.linalg.block_diag(A, np.linalg.inv(A).T))
    np.testing.assert_allclose(Tensor(V, V.dual).rho(g), np.kron(A, np.linalg.inv(A).T), atol=1e-12)
    np.testing.assert_allclose(Power(V, 3).rho(g), np.kron(np.kron(A, A), A), atol=1e-12)
    np.testing.assert_allclose(Power(V, 0).rho(g), np.eye(1))
    if G.lie_generators:
        X = G.lie_generators[0]
        np.testing.assert_allclose(V.dual.drho(X), -X.T)
        np.testing.assert_allclose(Tensor(V, V).drho(X), np.kron(X, np.eye(G.dim)) + np.kron(np.eye(G.dim), X))


def test_constraint_matrices_annihilate_invariants():
    G = SO(3)
    C = (Vector(G) ** 2).constraint_matrices()
    assert C.shape == (3, 9, 9)
    np.testing.assert_allclose(C @ np.eye(3).ravel(), 0, atol=1e-12)
    L = lorentz()
    eta = np.diag([1.0, -1.0, -1.0, -1.0])
    C = (Vector(L).dual ** 2).constraint_matrices()  # the metric is a covariant 2-tensor
    np.testing.assert_allclose(C @ eta.ravel(), 0, atol=1e-12)
    D = dihedral(3)
    C = Regular(D).constraint_matrices()
    assert C.shape == (2, 6, 6)
    np.testing.assert_allclose(C @ np.ones(6), 0, atol=1e-12)
    assert len(Vector(O(3)).constraint_matrices(sparse=True)) == 4
    assert Trivial(SO(3)).constraint_matrices().shape == (3, 1, 1)


def test_sizes_without_matrices():
    V = Vector(SO(3))
    assert (V ** 40).size == 3 ** 40  # never built
    assert (V ** 2 + V.dual + 3).size == 15
    assert Regular(symmetric(5)).size == 120


def test_canonical_forms():
    G = SO(3)
    V, s = Vector(G), Trivial(G)
    assert V * V == V ** 2 and (V ** 2) * V == V ** 3 and (V ** 2) ** 3 == V ** 6
    assert 3 * V == V + V + V == V * 3
    assert s * V == V and V * s == V and V ** 1 == V and V ** 0 == s
    assert V.dual.dual == V and V.T == V.dual and s.dual == s
    assert (V ** 2).dual == V.dual ** 2 and (V + 1).dual == V.dual + 1
    assert (V * V.dual).dual == V.dual * V
    assert (V + V) + V == V + (V + V)
    assert 2 + V == Sum(s, s, V) and V + 2 == Sum(V, s, s)
    assert V != V.dual and V + V.dual != V.dual + V
    assert isinstance(V * (V + V), Tensor)
    reg = Regular(dihedral(3))
    assert reg.dual == reg


@pytest.mark.parametrize("text, printed", [
    ("V**2 + V.dual", "V**2 + V.dual"),
    ("V ** 2 + V.dual", "V**2 + V.dual"),
    ("3*V + 2", "3*V + 2"),
    ("V + V + scalar", "2*V + scalar"),
    ("(V + 1)**2", "(V + scalar)**2"),
    ("V*V*V", "V**3"),
    ("(V**2).dual", "V.dual**2"),
    ("V.T * V", "V.dual * V"),
    ("2*(V*V.dual) + 1", "2*(V * V.dual) + scalar"),
    ("V*(V.dual*V)", "V * (V.dual * V)"),
    ("1", "scalar"),
    ("4", "4"),
    ("scalar + scalar", "2"),
])
def test_printing(text, printed):
    G = SO(3)
    rep = parse_rep(text, G)
    assert str(rep) == printed
    assert parse_rep(printed, G) == rep


def test_regular_in_specs():
    G = dihedral(4)
    rep = parse_rep("regular + V", G)
    assert rep.size == 10 and str(rep) == "regular + V"


@pytest.mark.parametrize("text, needle", [
    ("", "empty"), ("V**", "integer exponent"), ("W", "unknown representation"), ("V +", "expected a representation"),
    ("(V", "expected `)`"), ("V.foo", "dual"), ("0", "empty"), ("V**2**2", "chained"), ("regular", "finite"),
    ("V $", "unexpected character"), ("V V", "unexpected token"), ("V**-1", "integer exponent"),
    ("V - V", "unexpected token"),
])
def test_parse_errors_have_hints_and_positions(text, needle):
    with pytest.raises(RepSyntaxError, match=re.escape(needle)) as info:
        parse_rep(text, SO(3))
    assert info.value.hint and info.value.position is not None
    assert isinstance(info.value, IrrepsSyntaxError) and isinstance(info.value, ValueError)


def test_mixing_groups_and_bad_arguments():
    with pytest.raises(ValueError, match="different groups"):
        Vector(SO(3)) + Vector(O(3))
    with pytest.raises(ValueError, match="finite"):
        Regular(SO(3))
    with pytest.raises(ValueError):
        Vector(SO(3)) ** -1
    with pytest.raises(ValueError, match="3 x 3"):
        Vector(SO(3)).rho(np.eye(2))
    with pytest.raises(AttributeError):
        Vector(SO(3)).foo = 1
    with pytest.raises(ValueError):
        Sum()
    assert Vector(SO(3)) != 3 and (Vector(SO(3)) == "V") is False


def test_regular_and_permutation_reps():
    G = dihedral(4)
    reg = Regular(G)
    rng = np.random.default_rng(0)
    for _ in range(5):
        g = G.sample(rng)
        R = reg.rho(g)
        np.testing.assert_array_equal(R.sum(0), 1)
        np.testing.assert_array_equal(R.sum(1), 1)
        assert reg.character(g) == (8.0 if np.allclose(g, np.eye(2)) else 0.0)
    P = Permutation.from_orbit(G, [1.0, 0.0])  # the 4 axis directions
    assert P.size == 4
    corners = Permutation.from_orbit(G, [1.0, 0.5])  # generic point: a regular orbit
    assert corners.size == 8
    g = G.elements()[3]
    h = G.elements()[5]
    np.testing.assert_array_equal(P.rho(g @ h), P.rho(g) @ P.rho(h))
    S = symmetric(4)
    natural = Permutation(S, [[1, 0, 2, 3], [1, 2, 3, 0]])
    for g in S.elements()[::5]:
        np.testing.assert_array_equal(natural.rho(g), g)  # the defining rep is this permutation rep
    with pytest.raises(ValueError, match="do not define a representation"):
        Permutation(S, [[1, 0, 2, 3], [0, 1, 2, 3]]).rho(S.elements()[1])
    with pytest.raises(ValueError, match="permutation of range"):
        Permutation(S, [[0, 0, 1, 2], [1, 2, 3, 0]])
    assert natural == Permutation(S, ((1, 0, 2, 3), (1, 2, 3, 0))) and natural != P
    assert Regular(cyclic(1)).size == 1
