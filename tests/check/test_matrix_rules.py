"""The checker's facts about representations of matrix groups, against brute force (hypothesis)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.groups.builtin import SO, cyclic, dihedral, lorentz, symmetric
from eqdsl.reps import matrix_properties
from eqdsl.reps.matrix_reps import Trivial, Vector, direct_sum, power, tensor
from eqdsl.reps.permutation_reps import Regular
from eqdsl.reps.solve import count_equivariant_finite, solve

FINITE = [cyclic(4), dihedral(4), symmetric(4)]
CONTINUOUS = [SO(3), lorentz()]


def reps_of(G, max_size=40):
    leaves = [Trivial(G), Vector(G), Vector(G).dual] + ([Regular(G)] if G.is_finite else [])
    base = st.sampled_from(leaves)

    def extend(children):
        return st.one_of(
            st.tuples(children, children).map(lambda ab: direct_sum(*ab)),
            st.tuples(children, children).map(lambda ab: tensor(*ab)),
            st.tuples(children, st.integers(1, 2)).map(lambda ak: power(*ak)),
        )

    return st.recursive(base, extend, max_leaves=4).filter(lambda r: r.size <= max_size)


def finite_pair():
    return st.sampled_from(FINITE).flatmap(lambda G: st.tuples(reps_of(G), reps_of(G)))


@settings(max_examples=40, deadline=None)
@given(finite_pair())
def test_basis_count_matches_characters(pair):
    a, b = pair
    assert matrix_properties.basis_count(a, b) == count_equivariant_finite(a, b)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(FINITE).flatmap(reps_of))
def test_permutation_rep_by_brute_force(rep):
    def is_perm(m):
        return np.allclose(np.sort(m, axis=1)[:, :-1], 0) and np.allclose(m.sum(axis=0), 1) and np.allclose(m.max(axis=1), 1)
    assert matrix_properties.is_permutation_rep(rep) == all(is_perm(rep.rho(g)) for g in rep.group.elements())


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(FINITE + CONTINUOUS).flatmap(lambda G: reps_of(G, 30)))
def test_orthogonal_rep_by_sampling(rep):
    rng = np.random.default_rng(0)
    samples = [rep.rho(rep.group.sample(rng)) for _ in range(4)]
    orthogonal = all(np.allclose(m @ m.T, np.eye(rep.size), atol=1e-8) for m in samples)
    assert matrix_properties.is_orthogonal_rep(rep) == orthogonal


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(FINITE + CONTINUOUS).flatmap(lambda G: st.tuples(reps_of(G, 20), reps_of(G, 20))))
def test_unreachable_blocks_agree_with_the_solver(pair):
    a, b = pair
    missing = set(matrix_properties.unreachable_blocks(a, b))
    for i, block in enumerate(matrix_properties.blocks(b)):
        reached = solve(a, block, allow_empty=True).basis.shape[0] > 0
        assert (i not in missing) == reached


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(FINITE + CONTINUOUS).flatmap(lambda G: st.tuples(reps_of(G, 12), reps_of(G, 12), reps_of(G, 20))))
def test_bilinear_count_agrees_with_the_solver(triple):
    a, b, out = triple
    from eqdsl.reps.matrix_reps import Tensor
    assert matrix_properties.bilinear_count(a, b, out) == solve(Tensor(a, b), out, allow_empty=True).basis.shape[0]
