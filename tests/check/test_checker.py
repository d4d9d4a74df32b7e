"""Focused tests of the type rules, through small specs run by the front end.

Valid specs are also lowered and re-checked by the IR verifier (eqdsl.ir.verify).
Invalid specs must report every independent error of the file in one run.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from eqdsl.codes import CODES
from eqdsl.compiler import check_file
from eqdsl.diagnostics import render_all
from eqdsl.ir.verify import verify

SPECS = sorted((Path(__file__).resolve().parents[2] / "specs").glob("*.eq"))


# -- helpers -----------------------------------------------------------------------------------------
def spec(body: str, group: str = "O3", head: str = "", params: str = "") -> str:
    """A one-model spec; `body` is the model body, `head` top-level declarations before it."""
    body = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    head = textwrap.dedent(head).strip("\n")
    return f"group {group}\n{head}\nmodel M{params} {{\n{body}\n}}\n"


def run(text: str, path="t.eq", **kw):
    """The checker's own IR (no passes: dead-code elimination would drop the unused values inspected here)."""
    result = check_file(path, text=text, passes=False, **kw)
    for d in result.diagnostics:
        assert d.code in CODES
    render_all(result.diagnostics, result.sources)
    return result


def ok(text: str, **kw):
    """Compile a valid spec, verify its IR and return its only model."""
    result = run(text, **kw)
    assert result.ok, render_all(result.diagnostics, result.sources)
    for model in result.models:
        verify(model)
    (model,) = result.models
    return model


def codes(text: str, **kw) -> list[str]:
    return [d.code for d in run(text, **kw).diagnostics]


def err(text: str, **kw):
    """The single diagnostic of an invalid spec."""
    result = run(text, **kw)
    assert len(result.diagnostics) == 1, render_all(result.diagnostics, result.sources)
    return result.diagnostics[0]


def line_of(text: str, snippet: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), 1) if snippet in line)


def named(model, name: str) -> str:
    """The type of the last node bound to `name`."""
    found = [d for _, d in sorted(model.graph.nodes(data=True)) if d["name"] == name]
    assert found, f"no node named {name}"
    return str(found[-1]["type"])


def output(model, name: str) -> str:
    return str(model.node(dict(model.outputs)[name])["type"])


def count_ops(model, op: str) -> int:
    return sum(1 for _, d in model.graph.nodes(data=True) if d["op"] == op)


# -- Schur's lemma (E0201) --------------------------------------------------------------------------------
def test_linear_between_copies_of_the_same_irreps():
    m = ok(spec("""
        input x : 16x0e + 8x1o @node
        output y = linear(x) -> (4x0e + 2x1o + 3x0e)
    """))
    assert output(m, "y") == "4x0e+2x1o+3x0e @node"


@pytest.mark.parametrize("out, missing", [("2x1e", "1e"), ("4x0o", "0o"), ("1x2e", "2e"), ("(4x0e + 1x1e)", "1e")])
def test_linear_cannot_create_irreps(out, missing):
    text = spec(f"""
        input x : 16x0e + 8x1o @node
        h = linear(x) -> {out}
        output y = linear(x) -> 1x0e
    """)
    d = err(text)
    assert d.code == "E0201" and f"no `{missing}` in the input" in d.label
    assert d.span.line == line_of(text, "h = linear") and "Schur" in " ".join(d.notes)


def test_bias_needs_invariant_output():
    assert codes(spec("input x : 8x1o @node\noutput y = linear(x, bias = true) -> 2x1o")) == ["E0201"]
    ok(spec("input x : 8x0e + 8x1o @node\noutput y = linear(x, bias = true) -> (2x0e + 2x1o)"))


# -- tensor products: selection rules, parity, modes ---------------------------------------------------------
TP_CASES = [
    # a, b, mode, declared output, expected output type or error code
    ("8x1o", "1x1o", "uvw", "(4x0e + 4x1e + 4x2e)", "4x0e+4x1e+4x2e"),
    ("8x1o", "1x1o", "uvw", "4x1o", "E0203"),          # parity: 1o (x) 1o is even
    ("8x1o", "1x1o", "uvw", "4x3e", "E0203"),          # l = 3 out of reach
    ("8x1o", "1x1e", "uvw", "(2x0o + 2x1o + 2x2o)", "2x0o+2x1o+2x2o"),
    ("8x2e", "1x1o", "uvw", "(2x1o + 2x2o + 2x3o)", "2x1o+2x2o+2x3o"),
    ("8x2e", "1x1o", "uvw", "2x2e", "E0203"),
    ("8x0o", "1x0o", "uvw", "3x0e", "3x0e"),
    ("8x0o", "1x0o", "uvw", "3x0o", "E0203"),
    ("8x1o", "1x1o", "uvu", "8x1e", "8x1e"),
    ("8x1o", "1x1o", "uvu", "8x1o", "E0203"),
    ("8x1o", "1x1o", "uvu", "4x1e", "E0208"),          # uvu keeps the first input's 8 channels
    ("8x0e + 4x1o", "1x1o", "uvu", "(8x1o + 4x0e)", "8x1o+4x0e"),
    ("8x0e + 4x1o", "1x1o", "uvu", "(4x1o + 4x0e)", "E0208"),
    ("2x1o", "1x1o", "full", "(2x0e + 2x1e + 2x2e)", "2x0e+2x1e+2x2e"),
    ("2x1o", "1x1o", "full", "(2x0e + 2x2e)", "E0204"),  # full gives every path; use filter
    ("2x1o", "3x1o", "full", "(6x0e + 6x1e + 6x2e)", "6x0e+6x1e+6x2e"),
]


@pytest.mark.parametrize("a, b, mode, out, expected", TP_CASES)
def test_tensor_product_selection_rules(a, b, mode, out, expected):
    text = spec(f"""
        input x : {a} @node
        input v : {b} @node
        t = tensor_product(x, v, mode = {mode}) -> {out}
        output y = x
    """)
    if expected.startswith("E"):
        d = err(text)
        assert d.code == expected and d.span.line == line_of(text, "t = tensor_product")
    else:
        assert named(ok(text), "t") == expected + " @node"


def test_selection_rule_error_names_the_reachable_irreps_and_the_parity():
    d = err(spec("""
        input x : 8x1o @node
        input v : 1x1o @node
        t = tensor_product(x, v) -> 8x1o
        output y = x
    """))
    assert d.code == "E0203"
    assert "reachable here: 0e, 1e, 2e" in d.notes
    assert "even parity" in d.label and "did you mean `8x1e`?" in d.hints


@pytest.mark.parametrize("mode, expected", [("uvu", "8x1o+4x1o+4x1o"), ("full", "8x1o+4x1o+12x1o")])
def test_filter_keeps_the_listed_irreps(mode, expected):
    m = ok(spec(f"""
        input x : 8x0e + 4x1e @node
        input v : 1x1o + 3x0o @node
        t = tensor_product(x, v, mode = {mode}, filter = 1o)
        output y = x
    """))
    assert named(m, "t") == expected + " @node"


def test_tensor_product_argument_rules():
    body = """
        input x : 8x0e + 8x1o @node
        input v : 1x1o @node
        input s : 4x0e @node
        {stmt}
        output y = x
    """
    assert codes(spec(body.format(stmt="t = tensor_product(x, v)"))) == ["E0104"]  # uvw needs -> R
    assert codes(spec(body.format(stmt="t = tensor_product(x, v, mode = uvu, filter = 1o) -> 8x1o"))) == ["E0104"]
    assert codes(spec(body.format(stmt="t = tensor_product(x, v, mode = uvu, filter = 2o)"))) == ["E0203"]
    assert codes(spec(body.format(stmt="t = tensor_product(x, v, mode = full, weights = s)"))) == ["E0205"]
    assert codes(spec(body.format(stmt="t = tensor_product(x, v, mode = uvx) -> 8x1o"))) == ["E0108"]


# -- tensor-product weights and open MLPs (E0205) ------------------------------------------------------------
WEIGHTS = """
    input s : 4x0e @node
    input x : 8x0e + 8x1o @node
    input v : 1x0e + 1x1o @node
    {w}
    t = tensor_product(x, v, weights = w, mode = uvu) -> (8x1o + 8x1e)
    output y = t
"""
# uvu paths into 8x1o + 8x1e: 0e(x)1o, 1o(x)0e -> 1o and 1o(x)1o -> 1e, 8 weights each
UVU_WEIGHTS = 3 * 8


def test_weights_count_matches():
    m = ok(spec(WEIGHTS.format(w=f"w = mlp(s, 16) -> {UVU_WEIGHTS}x0e")))
    assert output(m, "y") == "8x1o+8x1e @node"


def test_weights_count_differs():
    d = err(spec(WEIGHTS.format(w="w = mlp(s, 16) -> 7x0e")))
    assert d.code == "E0205" and d.message == f"the tensor product needs {UVU_WEIGHTS} weights, got `7x0e`"
    assert any(f"{UVU_WEIGHTS}x0e" in h for h in d.hints)


def test_weights_must_be_invariant():
    w = f"input p : 8x0o @node\n    w = concat(linear(s) -> {UVU_WEIGHTS - 8}x0e, p)"
    d = err(spec(WEIGHTS.format(w=w)))
    assert d.code == "E0205" and "0o" in d.label


def test_open_mlp_takes_the_weight_count_of_its_tensor_product():
    m = ok(spec(WEIGHTS.format(w="w = mlp(s, 16)")))
    assert named(m, "w") == f"{UVU_WEIGHTS}x0e @node"


def test_open_mlp_uvw_weight_count():
    # uvw into 4x1o + 2x0e: 0e(x)0e->0e 8*1*2, 0e(x)1o->1o 8*1*4, 1o(x)0e->1o 8*1*4, 1o(x)1o->0e 8*1*2
    m = ok(spec("""
        input s : 4x0e @node
        input x : 8x0e + 8x1o @node
        input v : 1x0e + 1x1o @node
        w = mlp(s, 16)
        t = tensor_product(x, v, weights = w) -> (4x1o + 2x0e)
        output y = t
    """))
    assert named(m, "w") == "96x0e @node"


def test_open_mlp_that_is_never_sized():
    d = err(spec("input s : 4x0e @node\nw = mlp(s, 16)\noutput y = s"))
    assert d.code == "E0205" and "never determined" in d.message


def test_open_mlp_used_as_features():
    assert "E0205" in codes(spec("input s : 4x0e @node\nw = mlp(s, 16)\noutput y = linear(w) -> 1x0e"))


def test_mlp_input_and_output_must_be_invariant():
    assert codes(spec("input x : 4x0e + 1x1o @node\nh = mlp(x, 8) -> 2x0e\noutput y = x")) == ["E0305"]
    assert codes(spec("input x : 4x0e @node\nh = mlp(x, 8) -> 2x1o\noutput y = x")) == ["E0305"]
    assert codes(spec("input x : 4x0o @node\nh = mlp(x, 8) -> 2x0e\noutput y = x")) == ["E0305"]


# -- gate (E0206) --------------------------------------------------------------------------------------------
def test_gate_arity_ok():
    m = ok(spec("""
        input x : 16x0e + 8x1o + 2x2e @node
        h = linear(x) -> (16x0e + 10x0e + 8x1o + 2x2e)
        output y = gate(h) -> (16x0e + 8x1o + 2x2e)
    """))
    assert output(m, "y") == "16x0e+8x1o+2x2e @node"


@pytest.mark.parametrize("gates", [9, 11, 0])
def test_gate_needs_one_gate_per_gated_irrep(gates):
    extra = f"{gates}x0e + " if gates else ""
    d = err(spec(f"""
        input x : 16x0e + 8x1o + 2x2e @node
        h = linear(x) -> (16x0e + {extra}8x1o + 2x2e)
        g = gate(h) -> (16x0e + 8x1o + 2x2e)
        output y = x
    """))
    assert d.code == "E0206" and "10 gates" in d.label


def test_gate_scalars_first():
    d = err(spec("""
        input x : 16x0e + 8x1o @node
        h = linear(x) -> (16x0e + 8x0e + 8x1o)
        g = gate(h) -> (8x1o + 16x0e)
        output y = x
    """))
    assert d.code == "E0206" and "before the gated irreps" in d.message


def test_gate_without_gated_irreps_is_a_pointwise_activation():
    m = ok(spec("input x : 16x0e @node\noutput y = gate(x) -> 16x0e"))
    assert output(m, "y") == "16x0e @node"


# -- pointwise functions (E0301, E0302) ----------------------------------------------------------------------
@pytest.mark.parametrize("fn, rep, expected", [
    ("relu", "4x0e", "4x0e"),
    ("silu", "4x0e", "4x0e"),
    ("relu", "4x1o", "E0301"),
    ("tanh", "2x0e + 1x2e", "E0301"),
    ("silu", "4x0o", "E0302"),
    ("relu", "4x0e + 2x0o", "E0302"),
    ("sigmoid", "2x0o", "E0302"),
    ("tanh", "4x0o", "4x0o"),         # odd functions keep the parity
    ("sin", "4x0o", "4x0o"),
    ("identity", "4x0o", "4x0o"),
    ("abs", "4x0o", "4x0e"),          # even functions make pseudoscalars invariant
    ("cos", "4x0o", "4x0e"),
    ("square", "4x0o", "4x0e"),
    ("abs", "4x0e + 2x0o", "4x0e+2x0e"),
])
def test_pointwise_rules(fn, rep, expected):
    text = spec(f"input x : {rep} @node\nh = {fn}(x)\noutput y = x")
    if expected.startswith("E"):
        d = err(text)
        assert d.code == expected and d.span.line == line_of(text, f"h = {fn}")
    else:
        assert named(ok(text), "h") == expected + " @node"


def test_norm_activation_and_norm_act_on_any_irreps():
    m = ok(spec("input x : 4x0e + 2x1o + 1x2e @node\nh = norm_activation(x)\noutput y = norm(h)"))
    assert named(m, "h") == "4x0e+2x1o+1x2e @node" and output(m, "y") == "7x0e @node"


def test_constants_and_products():
    body = "input x : 4x0e + 2x1o @node\ninput s : 4x0e @node\ninput p : 1x0o @node\n{stmt}\noutput y = x"
    assert codes(spec(body.format(stmt="h = x + 1.0"))) == ["E0303"]
    assert named(ok(spec(body.format(stmt="h = s + 1.0"))), "h") == "4x0e @node"
    assert named(ok(spec(body.format(stmt="h = 2.0 * x"))), "h") == "4x0e+2x1o @node"
    assert named(ok(spec(body.format(stmt="h = p * x"))), "h") == "4x0o+2x1e @node"  # a pseudoscalar flips parity
    assert named(ok(spec(body.format(stmt="h = s * s"))), "h") == "4x0e @node"
    assert codes(spec(body.format(stmt="h = x * x"))) == ["E0304"]
    assert codes(spec(body.format(stmt="h = x / x"))) == ["E0304"]
    assert codes(spec(body.format(stmt="h = x ** 2"))) == ["E0304"]
    assert named(ok(spec(body.format(stmt="h = p ** 2"))), "h") == "1x0e @node"


# -- points and vectors (E0401, E0402) -----------------------------------------------------------------------
GEOMETRY = """
    input pos : position @node
    input edges : graph
    input v : 1x1o @node
    input w : 2x1o @node
    {stmt}
    output r = pos[dst] - pos[src]
"""


def test_point_minus_point_is_a_vector():
    m = ok(spec(GEOMETRY.format(stmt="")))
    assert output(m, "r") == "1x1o @edge"
    assert str(m.node(dict(m.inputs)["pos"])["type"]) == "point @node"


def test_point_plus_vector_is_a_point():
    m = ok(spec(GEOMETRY.format(stmt="p = pos + v\nq = p - v\nd = norm(q - pos)")))
    assert named(m, "p") == "point @node" and named(m, "q") == "point @node"
    assert named(m, "d") == "1x0e @node"


@pytest.mark.parametrize("stmt, code", [
    ("p = pos[src] + pos[dst]", "E0402"),   # point + point
    ("p = v - pos", "E0402"),                # vector - point
    ("p = pos + w", "E0402"),                # a point moves by one vector, not 2x1o
    ("h = linear(pos) -> 1x1o", "E0401"),
    ("h = norm(pos)", "E0401"),
    ("h = spherical_harmonics(pos, lmax = 2)", "E0401"),
    ("h = tensor_product(pos, v, mode = full)", "E0401"),
])
def test_invalid_use_of_positions(stmt, code):
    text = spec(GEOMETRY.format(stmt=stmt))
    d = err(text)
    assert d.code == code and d.span.line == line_of(text, stmt)


@pytest.mark.parametrize("stmt", ["p = 2.0 * pos", "p = -pos", "p = pos / 2.0"])
def test_scaling_or_negating_a_position_is_rejected(stmt):
    # codes.py files these under E0402 ("adding, scaling or negating points"); the checker currently says E0401
    assert codes(spec(GEOMETRY.format(stmt=stmt))) in (["E0401"], ["E0402"])


# -- placements and aggregation (E0501-E0505) ----------------------------------------------------------------
GRAPH = """
    input h : 8x0e + 4x1o @node
    input s : 4x0e @node
    input pos : position @node
    input edges : graph
    d = norm(pos[dst] - pos[src])
    {stmt}
    output y = scatter_sum(h[src], dst)
"""


@pytest.mark.parametrize("stmt, expected", [
    ("m = scatter_sum(h[src], dst)", "8x0e+4x1o @node"),
    ("m = scatter_mean(h[dst], src)", "8x0e+4x1o @node"),
    ("m = scatter_max(s[src], dst)", "4x0e @node"),
    ("m = sum_nodes(h)", "8x0e+4x1o @graph"),
    ("m = mean_nodes(h)", "8x0e+4x1o @graph"),
    ("m = sum_edges(d)", "1x0e @graph"),
    ("m = max_nodes(s)", "4x0e @graph"),
    ("m = s[src] * d", "4x0e @edge"),
    ("m = concat(s, h)", "4x0e+8x0e+4x1o @node"),
])
def test_placements(stmt, expected):
    assert named(ok(spec(GRAPH.format(stmt=stmt))), "m") == expected


@pytest.mark.parametrize("stmt, code", [
    ("m = s * d", "E0501"),
    ("m = concat(s, d)", "E0501"),
    ("m = dot(h, h[src])", "E0501"),
    ("m = scatter_sum(h, dst)", "E0504"),
    ("m = sum_nodes(d)", "E0504"),
    ("m = sum_edges(h)", "E0504"),
    ("m = scatter_max(h[src], dst)", "E0503"),
    ("m = max_nodes(h)", "E0503"),
    ("m = d[src]", "E0502"),
    ("m = h[d]", "E0502"),
    ("m = edges[src]", "E0502"),
    ("m = linear(edges) -> 1x0e", "E0502"),
])
def test_placement_errors(stmt, code):
    text = spec(GRAPH.format(stmt=stmt))
    d = err(text)
    assert d.code == code and d.span.line == line_of(text, stmt)


def test_max_over_pseudoscalars_is_not_equivariant():
    assert codes(spec("input p : 4x0o @node\nm = max_nodes(p)\noutput y = sum_nodes(p)")) == ["E0503"]


def test_output_placement():
    m = ok(spec("input h : 8x0e @node\noutput e : 1x0e @graph = sum_nodes(linear(h) -> 1x0e)"))
    assert output(m, "e") == "1x0e @graph"
    text = spec("input h : 8x0e @node\noutput y = h\noutput e : 1x0e @graph = linear(h) -> 1x0e")
    d = err(text)
    assert d.code == "E0505" and d.span.line == line_of(text, "output e")


def test_unknown_placement_and_src_without_graph():
    assert codes(spec("input h : 8x0e @nodes\ninput s : 1x0e\noutput y = s")) == ["E0108"]
    assert codes(spec("input h : 8x0e\nm = h[src]\noutput y = h")) == ["E0502"]


# -- gradients (E0603) ---------------------------------------------------------------------------------------
GRAD = """
    input pos : position @node
    input x : 4x1o + 2x0e @node
    input h : 8x0e @node
    input p : 8x0o @node
    e = sum_nodes(linear(h) -> 1x0e)
    q = sum_nodes(linear(p) -> 1x0o)
    {stmt}
    output forces : 1o @node = -grad(e, pos)
"""


@pytest.mark.parametrize("stmt, expected", [
    ("g = grad(e, pos)", "1x1o @node"),        # the gradient of an invariant wrt positions is a vector
    ("g = grad(q, pos)", "1x1e @node"),        # of a pseudoscalar: a pseudovector
    ("g = grad(e, x)", "4x1o+2x0e @node"),
    ("g = grad(q, x)", "4x1e+2x0o @node"),
])
def test_gradient_types(stmt, expected):
    m = ok(spec(GRAD.format(stmt=stmt)))
    assert named(m, "g") == expected
    assert output(m, "forces") == "1x1o @node"


@pytest.mark.parametrize("stmt, code", [
    ("g = grad(x, pos)", "E0603"),                        # not a single scalar
    ("g = grad(linear(h) -> 2x0e, pos)", "E0603"),        # two scalars
    ("g = grad(e, linear(h) -> 2x0e)", "E0603"),          # not with respect to an input
    ("g = grad(e, edges)", "E0603"),                      # the graph
    ("g = grad(e, 1.0)", "E0207"),                        # a constant
])
def test_gradient_errors(stmt, code):
    text = spec(GRAD.format(stmt=stmt).replace("input h", "input edges : graph\n    input h"))
    d = err(text)
    assert d.code == code and d.span.line == line_of(text, stmt)


def test_gradient_in_so3():
    m = ok(spec("""
        input pos : position @node
        input h : 8x0 @node
        e = sum_nodes(linear(h) -> 1x0)
        output f : 1x1 @node = -grad(e, pos)
    """, group="SO3"))
    assert output(m, "f") == "1x1 @node"


# -- repeat --------------------------------------------------------------------------------------------------
REPEAT = """
    input x : 8x0e @node
    h = linear(x) -> 8x0e
    repeat {count} {{
        h = linear(h) -> 8x0e
    }}
    output y = h
"""


@pytest.mark.parametrize("count, layers", [("3", 3), ("1", 1), ("0", 0), ("n - 1", 4), ("2 * n", 10)])
def test_repeat_unrolls(count, layers):
    m = ok(spec(REPEAT.format(count=count), params="(n = 5)"))
    assert count_ops(m, "linear") == 1 + layers


def test_repeat_count_from_an_override():
    m = ok(spec(REPEAT.format(count="layers"), params="(layers = 2)"), overrides={"layers": 6})
    assert count_ops(m, "linear") == 7 and m.params["layers"] == 6


def test_repeat_iterations_are_labelled():
    m = ok(spec(REPEAT.format(count="3")))
    scopes = sorted({d["scope"] for _, d in m.graph.nodes(data=True) if d["scope"]})
    assert scopes == ["repeat 1/3", "repeat 2/3", "repeat 3/3"]


@pytest.mark.parametrize("count", ["-1", "2.5", "true", "n - 6", "100000"])
def test_invalid_repeat_count(count):
    text = spec(REPEAT.format(count=count), params="(n = 5)")
    d = err(text)
    assert d.code == "E0602" and d.span.line == line_of(text, "repeat")


def test_repeat_reports_an_error_in_its_body_once():
    text = spec(REPEAT.format(count="4").replace("h = linear(h) -> 8x0e", "h = linear(h) -> 8x1o"))
    assert codes(text) == ["E0201"]


# -- blocks --------------------------------------------------------------------------------------------------
BLOCK = """
    block layer(h, s : 4x0e) -> 8x0e {
        a = linear(h) -> 8x0e
        return a + linear(s) -> 8x0e
    }
"""


def test_block_calls_are_inlined_with_their_own_parameters():
    m = ok(spec("""
        input x : 8x0e @node
        input s : 4x0e @node
        h = layer(x, s)
        h = layer(h, s = s)
        output y = h
    """, head=BLOCK))
    assert count_ops(m, "linear") == 4
    assert {d["scope"] for _, d in m.graph.nodes(data=True) if d["op"] == "linear"} == {"block layer"}
    assert output(m, "y") == "8x0e @node"


def test_block_inside_repeat_and_nested_blocks():
    head = BLOCK + """
    block twice(h, s) {
        return layer(layer(h, s), s)
    }
    """
    m = ok(spec("""
        input x : 8x0e @node
        input s : 4x0e @node
        h = x
        repeat 3 {
            h = twice(h, s)
        }
        output y = h
    """, head=head))
    assert count_ops(m, "linear") == 3 * 2 * 2
    assert "repeat 2/3 > block twice > block layer" in {d["scope"] for _, d in m.graph.nodes(data=True)}


@pytest.mark.parametrize("call, code", [
    ("layer(x)", "E0104"),                 # missing argument
    ("layer(x, s, s)", "E0104"),           # too many
    ("layer(x, t = s)", "E0104"),          # unknown keyword
    ("layer(x, x)", "E0204"),              # parameter type s : 4x0e
    ("layer(t, s)", "E0201"),              # error inside the block body: no 0e in 2x1o
])
def test_block_call_errors(call, code):
    text = spec(f"""
        input x : 8x0e @node
        input s : 4x0e @node
        input t : 2x1o @node
        h = {call}
        output y = x
    """, head=BLOCK)
    assert codes(text) == [code]


def test_block_declared_return_type():
    head = "block f(h) -> 2x0e {\n    return linear(h) -> 3x0e\n}"
    assert codes(spec("input x : 8x0e @node\nh = f(x)\noutput y = x", head=head)) == ["E0204"]


def test_block_without_return():
    head = "block f(h) {\n    a = linear(h) -> 3x0e\n}"
    assert codes(spec("input x : 8x0e @node\nh = f(x)\noutput y = x", head=head)) == ["E0604"]


def test_recursive_blocks():
    head = "block f(h) {\n    return f(h)\n}"
    d = err(spec("input x : 8x0e @node\nh = f(x)\noutput y = x", head=head))
    assert d.code == "E0105" and "call chain: f -> f" in d.notes
    head = "block a(h) {\n    return b(h)\n}\nblock b(h) {\n    return c(h)\n}\nblock c(h) {\n    return a(h)\n}"
    d = err(spec("input x : 8x0e @node\nh = a(x)\noutput y = x", head=head))
    assert d.code == "E0105" and "call chain: a -> b -> c -> a" in d.notes


def test_unused_recursive_block_is_not_an_error():
    # blocks are checked where they are inlined; one that is never called is never expanded
    ok(spec("input x : 8x0e @node\noutput y = x", head="block f(h) {\n    return f(h)\n}"))


# -- imports (E0106, E0107, E0109) ---------------------------------------------------------------------------
def write(tmp_path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())


def test_import_of_another_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {
        "lib/common.eq": """
            rep Hidden = 8x0e + 4x1o
            const width = 16
            block mix(h) {
                return linear(h) -> Hidden
            }
        """,
        "main.eq": """
            group O3
            import "lib/common.eq"
            model M(n = width) {
                input x : Hidden @node
                output y = mix(x)
            }
        """,
    })
    result = check_file(tmp_path / "main.eq")
    assert result.ok, render_all(result.diagnostics, result.sources)
    (m,) = result.models
    verify(m)
    assert output(m, "y") == "8x0e+4x1o @node" and m.params == {"n": 16}
    assert set(result.sources) == {"main.eq", "lib/common.eq"}


def test_diamond_imports_are_loaded_once(tmp_path):
    write(tmp_path, {
        "base.eq": "rep R = 4x0e\n",
        "left.eq": 'import "base.eq"\nrep L = 2x0e\n',
        "right.eq": 'import "base.eq"\nrep Q = 3x0e\n',
        "main.eq": ('group O3\nimport "left.eq"\nimport "right.eq"\n'
                    "model M {\n    input x : R\n    output y = linear(x) -> (L + Q)\n}\n"),
    })
    result = check_file(tmp_path / "main.eq")
    assert result.ok, render_all(result.diagnostics, result.sources)
    verify(result.models[0])


def test_import_cycle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {
        "a.eq": 'group O3\nimport "b.eq"\nmodel M {\n    input x : 4x0e\n    output y = x\n}\n',
        "b.eq": 'import "c.eq"\nrep B = 4x0e\n',
        "c.eq": 'import "a.eq"\nrep C = 4x0e\n',
    })
    result = check_file(tmp_path / "a.eq")
    assert [d.code for d in result.diagnostics] == ["E0106"]
    d = result.diagnostics[0]
    assert d.span.file == "c.eq" and d.span.line == 1
    assert "cycle: a.eq -> b.eq -> c.eq -> a.eq" in d.notes
    render_all(result.diagnostics, result.sources)


def test_self_import(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"a.eq": 'group O3\nimport "a.eq"\nmodel M {\n    input x : 4x0e\n    output y = x\n}\n'})
    assert [d.code for d in check_file(tmp_path / "a.eq").diagnostics] == ["E0106"]


def test_missing_import_and_missing_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"a.eq": 'group O3\nimport "nope.eq"\nmodel M {\n    input x : 4x0e\n    output y = x\n}\n'})
    result = check_file(tmp_path / "a.eq")
    assert [d.code for d in result.diagnostics] == ["E0107"] and result.diagnostics[0].span.line == 2
    result = check_file(tmp_path / "missing.eq")
    assert [d.code for d in result.diagnostics] == ["E0107"]
    render_all(result.diagnostics, result.sources)


def test_syntax_error_in_an_imported_file_is_reported_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"lib.eq": "rep R = 4x0e +\n",
                     "a.eq": 'group O3\nimport "lib.eq"\nmodel M {\n    input x : R\n    output y = x\n}\n'})
    result = check_file(tmp_path / "a.eq")
    assert [(d.code, d.span.file) for d in result.diagnostics] == [("E0003", "lib.eq")]


def test_import_declaring_another_group(tmp_path, monkeypatch):
    # the main spec's group is authoritative: the conflict is reported at the import's `group`,
    # and the main spec's own O3 irreps are not reported
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"lib.eq": "group SO3\nrep R = 4x0\n",
                     "a.eq": 'group O3\nimport "lib.eq"\nmodel M {\n    input x : 4x0e\n    output y = x\n}\n'})
    result = check_file(tmp_path / "a.eq")
    first = result.diagnostics[0]
    assert (first.code, first.span.file, first.span.line) == ("E0109", "lib.eq", 1)
    assert all(d.span.file == "lib.eq" for d in result.diagnostics)
    render_all(result.diagnostics, result.sources)


# -- SO(3) ---------------------------------------------------------------------------------------------------
def test_so3_irreps_have_no_parity():
    m = ok(spec("""
        input x : 16x0 + 8x1 + 4x2 @node
        input v : 1x1 @node
        t = tensor_product(x, v) -> (4x0 + 4x1 + 4x2 + 4x3)
        output y = relu(linear(x) -> 16x0)
    """, group="SO3"))
    assert named(m, "t") == "4x0+4x1+4x2+4x3 @node" and output(m, "y") == "16x0 @node"


@pytest.mark.parametrize("rep", ["1o", "4x0e", "2x1e"])
def test_so3_rejects_parity(rep):
    text = spec(f"input x : 16x0 @node\nh = linear(x) -> {rep}\noutput y = x", group="SO3")
    d = err(text)
    assert d.code == "E0209" and "group O3" in " ".join(d.hints)


def test_o3_needs_parity():
    d = err(spec("input x : 16x0 @node\ninput s : 1x0e @node\noutput y = s"))
    assert d.code == "E0209" and "write `0e` (even) or `0o` (odd)" in d.hints


def test_so3_pointwise_on_vectors():
    assert codes(spec("input x : 4x1 @node\nh = relu(x)\noutput y = x", group="SO3")) == ["E0301"]


def test_so3_geometry():
    m = ok(spec("""
        input pos : position @node
        input edges : graph
        r = pos[dst] - pos[src]
        output y = spherical_harmonics(r, lmax = 2)
    """, group="SO3"))
    assert output(m, "y") == "1x0+1x1+1x2 @edge"


# -- groups, names and structure -----------------------------------------------------------------------------
def test_names_and_structure():
    assert codes("model M {\n    input x : 1x0e\n    output y = x\n}\n") == ["E0601"]
    assert codes("group O3\nrep R = 1x0e\n") == ["E0601"]
    assert codes(spec("input x : 4x0e @node\nh = x")) == ["E0601"]
    assert codes(spec("input x : 4x0e @node\nh = linaer(x) -> 1x0e\noutput y = x")) == ["E0103"]
    assert codes(spec("input x : 4x0e @node\nh = linear(xx) -> 1x0e\noutput y = x")) == ["E0101"]
    assert codes(spec("input x : 4x0e @node\ninput x : 4x0e @node\ninput z : 1x0e\noutput y = z")) == ["E0102"]
    assert codes(spec("input class : 4x0e @node\noutput y = class")) == ["E0110"]
    assert codes(spec("input x : 4x0e @node\noutput y = x\nreturn x")) == ["E0604"]
    assert codes(spec("input x : 4x0e @node\nh = x + 32x0e\noutput y = x")) == ["E0207"]


def test_every_error_of_a_file_in_one_run_sorted_by_position():
    # The block is declared after the model: its error is found first (while inlining `f = late(x)`)
    # but is reported last, in source order.
    text = textwrap.dedent("""\
        group O3

        model M {
            input x : 16x0e + 8x1o @node
            input v : 1x1o @node
            input edges : graph
            f = late(x)
            a = linear(x) -> 4x1e
            b = tensor_product(x, v, mode = uvu) -> 4x1e
            c = relu(x)
            d = scatter_max(x[src], dst)
            e = x + 1.0
            output y = linear(x) -> 4x0e
        }

        block late(h) {
            return linear(h) -> 2x2e
        }
    """)
    result = run(text)
    got = [(d.code, d.span.line) for d in result.diagnostics]
    assert got == [("E0201", line_of(text, "a = linear")), ("E0208", line_of(text, "b = tensor")),
                   ("E0301", line_of(text, "c = relu")), ("E0503", line_of(text, "d = scatter_max")),
                   ("E0303", line_of(text, "e = x + 1.0")), ("E0201", line_of(text, "return linear(h) -> 2x2e"))]
    assert render_all(result.diagnostics, result.sources).endswith("6 errors found")


def test_no_follow_up_error_when_the_only_output_fails():
    assert codes(spec("input x : 4x0e @node\noutput y = linear(xx) -> 1x0e")) == ["E0101"]
    assert codes(spec("input x : 4x0e @node\noutput y : 1x0e @graph = linear(x) -> 1x0e")) == ["E0505"]


def test_rejected_duplicate_input_keeps_the_first_binding():
    text = spec("""
        input x : 4x0e @node
        input x : 4x1o @node
        h = x + 1.0
        p = relu(x)
        output y = x
    """)
    assert codes(text) == ["E0102"]  # x is still 4x0e: `x + 1.0` and relu(x) are fine


def test_rejected_assignment_to_a_reserved_name_keeps_it_usable():
    # `src = ...` is refused (E0102) and src stays the edge index, so the later point + point is still reported
    text = spec("""
        input pos : position @node
        input edges : graph
        src = 1.0
        mid = pos[src] + pos[dst]
        output r = pos[dst] - pos[src]
    """)
    assert codes(text) == ["E0102", "E0402"]


# -- shipped specs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_shipped_specs_check_and_verify(path):
    result = check_file(path)
    assert result.ok, render_all(result.diagnostics, result.sources)
    assert result.models
    for model in result.models:
        verify(model)
