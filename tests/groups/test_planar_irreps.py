"""Analytic irreps of the planar groups (freq(k), det) and the irreps diagnostics list for them."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.groups.builtin import O, SO, O2, SO2, cyclic, dihedral, lorentz, symmetric
from eqdsl.groups.matrix import expm
from eqdsl.reps import matrix_properties
from eqdsl.reps.matrix_reps import Det, Frequency, Tensor, Trivial, Vector, frequency
from eqdsl.reps.permutation_reps import Regular
from eqdsl.reps.matrix_rep_syntax import parse_rep
from eqdsl.reps.solve import solve

PLANAR = [SO2(), O2(), cyclic(8), dihedral(6)]


def _hom(a, b) -> int:
    return solve(a, b, allow_empty=True, cache=False).basis.shape[0]


@pytest.mark.parametrize("G", PLANAR, ids=lambda G: G.name)
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_frequency_is_a_homomorphism_and_rotates_k_times(G, k):
    rng = np.random.default_rng(k)
    rep = Frequency(G, k)
    for _ in range(5):
        a, b = G.sample(rng), G.sample(rng)
        np.testing.assert_allclose(rep.rho(a @ b), rep.rho(a) @ rep.rho(b), atol=1e-12)
        np.testing.assert_allclose(rep.rho(a) @ rep.rho_inv(a), np.eye(2), atol=1e-12)
        if np.linalg.det(a) > 0:  # a rotation by theta acts as the rotation by k theta
            theta = np.arctan2(a[1, 0], a[0, 0])
            np.testing.assert_allclose(rep.character(a), 2 * np.cos(k * theta), atol=1e-12)
    for A in G.lie_generators:  # the Lie action is the derivative of rho along exp(tA)
        t = 1e-6
        numeric = (rep.rho(expm(t * A)) - rep.rho(expm(-t * A))) / (2 * t)
        np.testing.assert_allclose(rep.drho(A), numeric, atol=1e-6)


def test_freq_1_is_v_and_strings_round_trip():
    for G in PLANAR:
        assert frequency(G, 1) == Vector(G)
        for text in ["freq(2)", "det", "freq(3) + 2*det + V", "freq(2) * freq(3)"]:
            rep = parse_rep(text, G)
            assert parse_rep(str(rep), G) == rep
    with pytest.raises(ValueError, match="plane"):
        Frequency(SO(3), 2)
    with pytest.raises(ValueError, match="k >= 1"):
        Frequency(SO2(), 0)


def test_schur_dimensions_match_theory():
    # SO(2): real frequency-k irreps have commutant C (dimension 2); O(2): R (dimension 1)
    assert _hom(Frequency(SO2(), 3), Frequency(SO2(), 3)) == 2
    assert _hom(Frequency(O2(), 3), Frequency(O2(), 3)) == 1
    assert _hom(Frequency(SO2(), 2), Frequency(SO2(), 3)) == 0
    assert _hom(Det(O2()), Trivial(O2())) == 0
    assert _hom(Det(SO2()), Trivial(SO2())) == 1  # no reflections: det is trivial
    # C8: frequencies k and 8 - k are equivalent
    assert _hom(Frequency(cyclic(8), 3), Frequency(cyclic(8), 5)) == 2


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.sampled_from([SO2(), O2()]))
def test_selection_rule_of_frequencies(k, l, G):
    """freq(k) (x) freq(l) = freq(k + l) + freq(|k - l|) (two 1-dim pieces when k == l)."""
    prod = Tensor(frequency(G, k), frequency(G, l))
    found = matrix_properties.contained_irreps(prod)
    expected = {str(frequency(G, k + l))}
    if k == l:
        expected |= {"scalar"} | ({"det"} if G.name == "O(2)" else set())
    else:
        expected.add(str(frequency(G, abs(k - l))))
    assert {str(ir) for ir in found} == expected


def test_det_representation():
    G = O(3)
    rng = np.random.default_rng(0)
    for _ in range(5):
        g = G.sample(rng)
        assert Det(G).rho(g)[0, 0] == pytest.approx(np.linalg.det(g))
    assert matrix_properties.planar_irreps(lorentz()) is None
    assert _hom(Tensor(Vector(G), Vector(G)), Det(G)) == 0
    assert _hom(Tensor(Tensor(Vector(G), Vector(G)), Vector(G)), Det(G)) == 1  # the triple product


@pytest.mark.parametrize("G, count", [(symmetric(3), 3), (symmetric(4), 5), (dihedral(4), 5), (cyclic(3), 2),
                                      (cyclic(8), 5), (symmetric(5), 7)], ids=lambda x: getattr(x, "name", x))
def test_finite_irreps_are_the_real_irreducible_characters(G, count):
    irreps = matrix_properties.finite_irreps(G)
    assert len(irreps) == count
    assert irreps[0].name == "scalar"
    chars = np.array([ir.character for ir in irreps])
    gram = chars @ chars.T / G.order
    # orthogonal; <chi, chi> = 1 (real type), 2 (complex type) or 4 (quaternionic type)
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-6)
    assert set(np.round(np.diag(gram)).astype(int)) <= {1, 2, 4}
    np.testing.assert_allclose(chars[:, 0], [ir.dim for ir in irreps], atol=1e-6)  # identity first
    # the regular representation contains each real irrep dim / <chi, chi> times
    assert sum(ir.dim ** 2 / round(g) for ir, g in zip(irreps, np.diag(gram))) == G.order
    if matrix_properties.planar_irreps(G) is None:  # planar groups list their analytic irreps (freq(k), det) instead
        assert [str(ir) for ir in matrix_properties.contained_irreps(Regular(G))] == [ir.name for ir in irreps]


def test_finite_irreps_in_diagnostics_of_s4():
    G = symmetric(4)
    names = [str(ir) for ir in matrix_properties.contained_irreps(Vector(G))]
    assert names[0] == "scalar" and len(names) == 2 and names[1].startswith("irrep3_")  # V = 1 + standard
    assert [str(ir) for ir in matrix_properties.contained_irreps(Det(G))] == ["det"]
