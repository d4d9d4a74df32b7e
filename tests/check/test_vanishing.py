"""The irreps each value can carry (eqdsl/check/vanishing.py): always-zero blocks are rejected (E0210), and
the tracked sets are sound: numerically, no value has a part outside its set (hypothesis)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import eqdsl
from eqdsl.check import vanishing
from eqdsl.compiler import check_file
from eqdsl.reps import matrix_properties
from eqdsl.testing import random_sample


def _check(tmp_path, text):
    path = tmp_path / "net.eq"
    path.write_text(text)
    return check_file(path)


def _model(lines: list[str], group: str = "group D4") -> str:
    return "\n".join([group, "", "model Net {"] + [f"    {line}" for line in lines] + ["}"]) + "\n"


def test_invariant_part_of_a_square_does_not_reach_det(tmp_path):
    result = _check(tmp_path, _model(["input x : scalar @graph", "h1 = linear(x) -> (V**2)",
                                      "output y = linear(h1) -> (det)"]))
    [d] = result.diagnostics
    assert d.code == "E0210"
    assert (d.span.line, d.span.column) == (6, 31)  # the `det` after the arrow
    assert "`h1` carries only scalar" in d.message
    assert any("line 5: `linear(x) -> V**2`" in n for n in d.notes)
    assert d.hints


def test_a_square_made_from_vectors_reaches_det(tmp_path):
    result = _check(tmp_path, _model(["input x : V @graph", "input y : V @graph", "h = bilinear(x, y) -> (V**2)",
                                      "h2 = linear(h) -> (V**2)", "output z = linear(h2) -> (det + scalar)"]))
    assert result.ok, result.diagnostics


def test_a_sum_with_one_vanishing_part_is_not_zero(tmp_path):
    # the part of h1 from s alone would vanish in det, the part from x (x) y does not
    result = _check(tmp_path, _model(["input x : V @graph", "input y : V @graph", "input s : scalar @graph",
                                      "h1 = linear(s) -> (V**2) + bilinear(x, y) -> (V**2)",
                                      "output z = linear(h1) -> (det + scalar)"]))
    assert result.ok, result.diagnostics


def test_bilinear_of_a_value_with_itself_has_no_antisymmetric_part(tmp_path):
    result = _check(tmp_path, _model(["input x : V @graph", "h = linear(x) -> (2 * V)",
                                      "output y = bilinear(h, x) -> det"]))
    assert [d.code for d in result.diagnostics] == ["E0210"]
    assert _check(tmp_path, _model(["input x : V @graph", "input y : V @graph",
                                    "output a = bilinear(x, y) -> det"])).ok


def test_bias_adds_the_invariant_part(tmp_path):
    # from det, linear reaches only the det part of V**2; a bias adds its invariant part
    assert _check(tmp_path, _model(["input x : det @graph", "h = linear(x, bias = true) -> (V**2)",
                                    "output y = linear(h) -> (scalar + det)"])).ok
    result = _check(tmp_path, _model(["input x : det @graph", "h = linear(x) -> (V**2)",
                                      "output y = linear(h) -> (scalar + det)"]))
    assert [d.code for d in result.diagnostics] == ["E0210"]
    assert result.diagnostics[0].message.startswith("`scalar` is always zero")


def test_circle_groups_are_tracked(tmp_path):
    result = _check(tmp_path, _model(["input x : V @graph", "h = linear(x) -> (V**3)",
                                      "output y = linear(h) -> (freq(3))"], group="group G = O(2)"))
    assert [d.code for d in result.diagnostics] == ["E0210"]
    assert "carries only V" in result.diagnostics[0].message


def test_groups_without_irreps_are_not_tracked(tmp_path):
    # SO(3): scalar -> V**2 reaches only the invariant part, which no map takes to V; not caught (documented)
    assert _check(tmp_path, _model(["input x : scalar @graph", "h = linear(x) -> (V**2)",
                                    "output y = linear(h) -> V"], group="group G = SO(3)")).ok


def test_zero_blocks_are_reported_once(tmp_path):
    # h's det block is zero: one error, nothing more about values computed from h
    result = _check(tmp_path, _model(["input x : scalar @graph", "h1 = linear(x) -> (V**2)",
                                      "h = linear(h1) -> (scalar + det)", "output y = linear(h + h) -> det"]))
    assert [d.code for d in result.diagnostics] == ["E0210"]


# -- soundness against numbers --------------------------------------------------------------------------
GROUPS = ["group D4", "group C4", "group G = dihedral(3)", "group S4"]
REPS = ["1", "V", "det", "V**2", "regular", "V + det", "2 * V + 1"]
LAYERS = ["linear({x}) -> ({r})", "linear({x}, bias = true) -> ({r})", "bilinear({x}, {y}) -> ({r})", "{x} + {y}",
          "2.0 * {x}", "concat({x}, {y})", "relu({x})", "norm({x})", "group_pool({x}, reduce = mean)"]


@st.composite
def chains(draw):
    lines = [f"input a : {draw(st.sampled_from(REPS))} @graph", f"input b : {draw(st.sampled_from(REPS))} @graph"]
    names = ["a", "b"]
    for i in range(draw(st.integers(1, 4))):
        layer = draw(st.sampled_from(LAYERS))
        x, y = draw(st.sampled_from(names[-2:])), draw(st.sampled_from(names))  # mostly chains
        lines.append(f"h{i} = " + layer.format(x=x, y=y, r=draw(st.sampled_from(REPS))))
        lines.append(f"output o{i} = h{i}")
        names.append(f"h{i}")
    return _model(lines, draw(st.sampled_from(GROUPS)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(chains())
@example(_model(["input a : 1 @graph", "input b : V @graph", "h0 = linear(a) -> (V**2)", "output o0 = h0",
                 "h1 = linear(h0) -> (det + scalar)", "output o1 = h1"]))
@example(_model(["input a : V @graph", "input b : V @graph", "h0 = bilinear(a, 2.0 * a) -> (det + V**2)",
                 "output o0 = h0"]))
@example(_model(["input a : det @graph", "input b : V @graph", "h0 = linear(a) -> (2 * regular)", "output o0 = h0",
                 "h1 = group_pool(h0, reduce = mean)", "output o1 = h1"], "group S4"))
def test_values_carry_nothing_outside_their_tracked_irreps(tmp_path, text):
    """Compile without the check, track the irreps of every output, then project the computed outputs onto
    each irrep the tracker rules out: the projection must vanish (and a fully ruled-out block is zero)."""
    tracked = _check(tmp_path, text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(vanishing.SupportTracker, "for_group", classmethod(lambda cls, group, ir: None))
        untracked = _check(tmp_path, text)
        if not untracked.ok:
            return
        model = eqdsl.compile_file(tmp_path / "net.eq").model_class()().double()
    ir = untracked.models[0]
    tracker = vanishing.SupportTracker(vanishing.irrep_sets(_group(ir)), ir)
    for node in ir.order():
        if ir.node(node)["op"] != "input":
            tracker.visit(node, ir.node(node)["op"], vanishing.ports_of(ir, node), ir.node(node)["attrs"])
    support = {name: tracker.of(node) for name, node in ir.outputs}
    # every zero block is reported where it arises, so the checker rejects exactly these programs
    assert tracked.ok == all(all(s) for s in support.values()), (text, tracked.diagnostics)

    torch.manual_seed(0)
    out = model(**_inputs(model))
    sets = tracker.sets
    for name, node in ir.outputs:
        values = out[name].detach().numpy()
        scale = max(1.0, float(np.abs(values).max()))
        offset = 0
        for block, carried in zip(matrix_properties.blocks(ir.node(node)["type"].rep), support[name]):
            part = values[:, offset:offset + block.size]
            offset += block.size
            for ir_ in sets.of(block) - carried:
                leak = np.abs(part @ _projector(sets, block, ir_).T).max()
                assert leak < 1e-9 * scale, (text, name, str(block), sets.name(ir_), leak)


def _group(ir):
    from eqdsl.groups.recipe import group_from_recipe
    return group_from_recipe(ir.group_recipe)


def _inputs(model):
    sample = random_sample(type(model), np.random.default_rng(0))
    return {**sample.inputs, **sample.kwargs}


def _projector(sets, block, irrep) -> np.ndarray:
    """Projector onto the irrep's isotypic part of a block: dim / <chi, chi> * mean_g chi(g) rho(g)."""
    elements = sets.group.elements()
    chi = np.array(irrep.character)
    mean = sum(c * block.rho(g) for c, g in zip(chi, elements)) / len(elements)
    return irrep.dim / (chi @ chi / len(elements)) * mean


def test_projector_is_exact_on_a_known_split():
    from eqdsl.groups.builtin import dihedral
    from eqdsl.reps.matrix_reps import Power, Vector
    sets = vanishing.irrep_sets(dihedral(4))
    square = Power(Vector(dihedral(4)), 2)
    total = sum(_projector(sets, square, ir) for ir in sets.of(square))
    assert np.allclose(total, np.eye(4))


def test_edge_vectors_from_positions_are_tracked(tmp_path):
    lines = ["input pos : position", "input edges : graph", "r = pos[dst] - pos[src]"]
    assert _check(tmp_path, _model(lines + ["output y = bilinear(r, r) -> freq(2)"], "group G = O(2)")).ok
    result = _check(tmp_path, _model(lines + ["output y = bilinear(r, r) -> det"], "group G = O(2)"))
    assert [d.code for d in result.diagnostics] == ["E0210"]  # r (x) r is symmetric; det is its antisymmetric part
