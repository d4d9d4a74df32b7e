"""The one registry of ops: each op declared once, offered to the families it names, its rule asking
the group's family only through the FamilyRules protocol."""
import inspect

import pytest

from eqdsl.groups import O3
from eqdsl.groups.builtin import cyclic
from eqdsl.ir import ops
from eqdsl.ir.irreps_rules import IrrepsRules
from eqdsl.ir.matrix_rules import MatrixRules
from eqdsl.ir.type_rules import FAMILIES, FamilyRules, TypeRuleError
from eqdsl.ir.types import tensor
from eqdsl.reps.irreps import Irreps
from eqdsl.reps.matrix_rep_syntax import parse_rep

GROUPS = {"irreps": O3, "matrix": cyclic(4)}
SHARED = ("guard", "selector")  # written once in FamilyRules itself
QUESTIONS = [name for name, fn in inspect.getmembers(FamilyRules, inspect.isfunction)
             if not name.startswith("_") and name not in SHARED]


@pytest.mark.parametrize("rules", [IrrepsRules, MatrixRules])
def test_every_family_answers_every_question(rules):
    assert QUESTIONS, "the protocol lists its questions"
    unanswered = [q for q in QUESTIONS if getattr(rules, q) is getattr(FamilyRules, q)]
    assert unanswered == []


@pytest.mark.parametrize("family", FAMILIES)
def test_ops_of_one_family_have_their_rule_in_that_family(family):
    rules = ops.family_rules(GROUPS[family])
    assert type(rules).__name__ == {"irreps": "IrrepsRules", "matrix": "MatrixRules"}[family]
    for name, op in ops.OPS.items():
        if op.families == (family,) and name != "conv" and name != "norm_activation":
            assert callable(getattr(rules, name, None)), f"{name} has no rule in the {family} family"


def test_each_group_sees_the_ops_and_parameters_of_its_family():
    o3, c4 = (ops.ops_for(GROUPS[f]) for f in ("irreps", "matrix"))
    shared = set(o3) & set(c4)
    assert {"linear", "gate", "norm", "mlp", "concat", "mul", "div", "pow", "scatter_max", "relu"} <= shared
    assert {"tensor_product", "spherical_harmonics", "dot", "grad", "conv"}.isdisjoint(c4)
    assert {"bilinear", "inner", "group_pool", "conv2d", "global_pool"}.isdisjoint(o3)
    for name in shared:  # one declaration: the same rule object behind both families' views
        assert o3[name].infer is c4[name].infer is ops.OPS[name].infer
    assert [p.name for p in o3["gate"].params] == ["x", "act", "odd_act", "gate_act"]
    assert [p.name for p in c4["gate"].params] == ["x", "act", "gate_act"]


def test_one_rule_gives_each_family_its_own_answer():
    g, c4 = GROUPS["irreps"], GROUPS["matrix"]
    linear = ops.OPS["linear"].infer
    out, _ = linear(g, {"x": tensor(Irreps.parse("4x0e+2x1o", g), "node")}, {"out": Irreps.parse("3x1o", g)})
    assert str(out.rep) == "3x1o"
    out, derived = linear(c4, {"x": tensor(parse_rep("regular", c4), "node")}, {"out": parse_rep("2 * regular", c4)})
    assert derived["basis_size"] == 8  # Hom(regular, regular) of C4 is 4-dimensional, twice
    with pytest.raises(TypeRuleError) as err:
        linear(g, {"x": tensor(Irreps.parse("4x0e", g), "node")}, {"out": Irreps.parse("1x1o", g)})
    assert err.value.code == "E0201" and "Schur" in err.value.notes[0]
    with pytest.raises(TypeRuleError) as err:
        ops.OPS["relu"].infer(c4, {"x": tensor(parse_rep("V", c4), "node")}, {})
    assert err.value.code == "E0301" and "permutation representations" in err.value.notes[0]
