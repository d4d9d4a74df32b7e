"""Names in generated modules: the spec's own, unique, never one of the module's."""
from eqdsl.codegen.names import MODULE_NAMES, LocalNames, RepConstants
from eqdsl.groups import O3
from eqdsl.reps.family import family_of
from eqdsl.reps.irreps import Irreps

IRREPS = family_of(O3)


def test_locals_keep_the_spec_name_first_and_number_the_rest():
    names = LocalNames(taken=["h"])
    assert [names.fresh("h"), names.fresh("h"), names.fresh("r")] == ["h_2", "h_3", "r"]
    assert [names.fresh("bessel", numbered=True), names.fresh("bessel", numbered=True)] == ["bessel_1", "bessel_2"]


def test_locals_never_take_a_module_name_or_a_name_already_given():
    names = LocalNames()
    assert all(names.fresh(n) != n for n in ("src", "batch", "torch", "self", "G"))
    names.fresh("h_2")  # a spec variable literally called h_2
    assert names.fresh("h") == "h" and names.fresh("h") == "h_3"


def test_rep_constants_are_named_after_the_spec_and_built_once():
    reps = RepConstants(IRREPS, taken=["GATE_IN"])  # e.g. a model class of that name
    hidden = Irreps.parse("32x0e+32x1o", O3)
    assert reps.constant(hidden, "Hidden") == "HIDDEN"
    assert reps.constant(Irreps.parse("32x0e+32x1o", O3), "Other") == "HIDDEN"  # one constant per rep
    assert reps.constant(Irreps.parse("4x0e", O3), "GateIn") == "GATE_IN_1"
    assert reps.constant(Irreps.parse("1x1o", O3)) == "IRREPS_1x1o"
    long = Irreps.parse("+".join(["1x0e", "1x1o"] * 8), O3)
    assert reps.constant(long) == "IRREPS_1"
    assert reps.lines[0] == "HIDDEN = Irreps.parse('32x0e+32x1o', G)" and len(reps.lines) == 4
    assert not set(reps.by_text.values()) & MODULE_NAMES


def test_a_rep_named_like_the_group_constant_gets_another_name():
    reps = RepConstants(IRREPS)
    assert reps.constant(Irreps.parse("2x0e", O3), "g") == "G_1"


def test_matrix_group_constants_are_parsed_back_by_their_family():
    from eqdsl.groups.builtin import symmetric
    from eqdsl.reps.matrix_reps import Vector

    group = symmetric(4)
    reps = RepConstants(family_of(group))
    assert reps.constant(Vector(group)) == "REP_1" and reps.constant(Vector(group) * 2, "Pair") == "PAIR"
    assert reps.lines == ["REP_1 = parse_rep('V', G)", "PAIR = parse_rep('2*V', G)"]
