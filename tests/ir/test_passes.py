"""IR passes: each returns a new IR, keeps the types the verifier re-derives, and changes no numbers."""
from pathlib import Path

import pytest

from eqdsl.compiler import check_file
from eqdsl.ir.passes import (PASSES, eliminate_common_subexpressions, eliminate_dead_code, fuse_message_passing,
                             rebuild, run_passes)
from eqdsl.ir.printer import format_model
from eqdsl.ir.verify import IRVerificationError, verify

ROOT = Path(__file__).resolve().parents[2]


def ops(ir) -> list[str]:
    return [ir.node(n)["op"] for n in ir.order()]


def raw(spec: str, **overrides):
    """The IR as the checker builds it, before any pass."""
    result = check_file(ROOT / "specs" / spec, overrides=overrides, passes=False)
    assert result.ok, [d.message for d in result.diagnostics]
    return result.models[0]


def from_text(tmp_path, text: str):
    spec = tmp_path / "spec.eq"
    spec.write_text(text)
    result = check_file(spec, passes=False)
    assert result.ok, [d.message for d in result.diagnostics]
    return result.models[0]


def test_cse_computes_a_repeated_radial_basis_once(tmp_path):
    ir = from_text(tmp_path, """group O3
block interaction(h, Y, d, cutoff) {
    R = mlp(bessel(d, n = 8, cutoff = cutoff) * envelope(d, cutoff = cutoff), 16, act = silu)
    return h + linear(scatter_sum(tensor_product(h[src], Y, weights = R, mode = uvu, filter = (8x0e + 8x1o)), dst)) -> (8x0e + 8x1o)
}
model Convs(cutoff = 4.0) {
    input h0  : 8x0e + 8x1o @node
    input pos : position @node
    input edges : graph
    r = pos[dst] - pos[src]
    d = norm(r)
    Y = spherical_harmonics(r, lmax = 1)
    h = h0
    repeat 3 {
        h = interaction(h, Y, d, cutoff)              # each writes bessel(d, ...) * envelope(d, ...) again
    }
    output y : 8x0e @node = linear(h) -> 8x0e
}
""")
    assert ops(ir).count("bessel") == 3 and ops(ir).count("envelope") == 3
    after = eliminate_common_subexpressions(ir)
    assert ops(after).count("bessel") == 1 and ops(after).count("envelope") == 1
    assert ops(after).count("mlp") == ops(ir).count("mlp")  # layers with parameters are never merged
    verify(after)


def test_cse_keeps_layers_with_parameters_apart(tmp_path):
    ir = from_text(tmp_path, """group O3
model Twice {
    input h : 4x0e + 2x1o @node
    a = linear(h) -> (4x0e + 2x1o)
    b = linear(h) -> (4x0e + 2x1o)
    output y = norm(a) + norm(b)
}
""")
    after = eliminate_common_subexpressions(ir)
    assert ops(after).count("linear") == 2 and ops(after).count("norm") == 2


def test_cse_merges_equal_pure_nodes_and_rewires_their_users(tmp_path):
    ir = from_text(tmp_path, """group O3
model Same {
    input h : 4x0e + 2x1o @node
    output y = norm(h) + norm(h)
}
""")
    after = eliminate_common_subexpressions(ir)
    assert ops(after).count("norm") == 1
    add = next(n for n in after.order() if after.node(n)["op"] == "add")
    assert len({src for _, src in after.inputs_of(add)}) == 1
    verify(after)


def test_dce_drops_what_no_output_needs(tmp_path):
    ir = from_text(tmp_path, """group O3
model Dead {
    input h : 4x0e + 2x1o @node
    unused = linear(h) -> 3x0e
    output y = norm(h)
}
""")
    after = eliminate_dead_code(ir)
    assert "linear" in ops(ir) and "linear" not in ops(after)
    assert [n for n, _ in after.inputs] == ["h"]  # inputs stay, used or not
    verify(after)


def test_fusion_is_a_node_the_listing_shows():
    ir = raw("nequip.eq", layers=2)
    after = fuse_message_passing(ir)
    assert "conv" not in ops(ir) and ops(after).count("conv") == 2  # one per interaction
    assert ops(after).count("scatter_sum") == ops(ir).count("scatter_sum") - 2
    assert "conv(x=" in format_model(after)
    verify(after)


@pytest.mark.parametrize("spec", ["nequip.eq", "mace.eq", "galaxy_d4.eq"])
def test_passes_leave_their_input_alone(spec):
    ir = raw(spec)
    before = format_model(ir)
    for _, run, _ in PASSES:
        run(ir)
    assert format_model(ir) == before


def test_the_verifier_runs_after_each_pass_and_names_the_one_that_broke_types():
    def swap_first_linear_input(ir):
        """A broken pass: feeds the first linear layer from the positions instead of its input."""
        out = eliminate_dead_code(fuse_message_passing(ir))  # a copy to damage
        node = next(n for n in out.order() if out.node(n)["op"] == "linear")
        out.node(node)["type"] = out.node(dict(out.inputs)["pos"])["type"]
        return out

    ir = raw("nequip.eq", layers=2)
    with pytest.raises(IRVerificationError, match="after a broken pass"):
        run_passes(ir, [("a broken pass", swap_first_linear_input, False)], verify=verify)
    run_passes(ir, [("a broken pass", swap_first_linear_input, False)])  # unverified, nothing notices



def test_the_memoized_verifier_still_compares_every_node():
    """With the memo kept across passes (what the compiler does), a node a pass damaged without changing its
    op, inputs or attributes is still caught: the rule's remembered answer is compared with the stored type."""
    def retype_a_linear_layer(ir):
        out = rebuild(ir, ir.order(), ir.inputs_of)  # a copy to damage
        node = next(n for n in out.order() if out.node(n)["op"] == "linear")
        out.node(node)["type"] = out.node(dict(out.inputs)["pos"])["type"]
        return out

    ir, memo = raw("nequip.eq", layers=2), {}
    run_passes(ir, PASSES, verify=lambda m: verify(m, memo))
    assert memo  # the rules' answers were kept
    with pytest.raises(IRVerificationError, match="after a broken pass: .*stored type"):
        run_passes(ir, [("a broken pass", retype_a_linear_layer, False)], verify=lambda m: verify(m, memo))

def test_compiled_models_have_been_through_every_pass():
    result = check_file(ROOT / "specs" / "nequip.eq", verify_ir=True)
    assert "conv" in ops(result.models[0]) and ops(result.models[0]).count("bessel") == 1
