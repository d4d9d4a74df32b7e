"""Passes over the layer graph, each ModelIR -> ModelIR (a new IR; the input is left as it was).

The compiler runs them one after another (`run_passes`), re-verifying every node's type between
them when asked to (EQDSL_VERIFY, or verify_ir=True).  Node ids survive every pass, so a value keeps
its name and a layer its parameters' names in the generated module.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .graph import LayerGraph, ModelIR, frozen

# Ops whose value depends only on their inputs and attributes and that own no parameters: two such nodes
# with the same op, inputs and attributes compute the same tensor, so one may stand for both.
PURE_OPS = frozenset({
    "gather", "scatter_sum", "scatter_mean", "scatter_max",
    "sum_nodes", "mean_nodes", "max_nodes", "sum_edges", "mean_edges", "max_edges",
    "norm", "dot", "bessel", "gaussian", "spline", "envelope", "spherical_harmonics", "concat",
    "add", "sub", "mul", "div", "neg", "scale", "add_const", "pow",
    "identity", "silu", "relu", "gelu", "sigmoid", "softplus", "exp", "tanh", "sin", "abs", "cos", "square",
    "group_pool", "avg_pool2d", "max_pool2d", "global_pool",
})


def rebuild(ir: ModelIR, keep: list[str], inputs_of: Callable[[str], list[tuple[str, str]]],
            nodes: dict[str, dict] | None = None, rename: dict[str, str] | None = None) -> ModelIR:
    """A new IR holding the nodes `keep` (in that order) with the edges `inputs_of(node)` gives; `nodes`
    replaces a node's data, `rename` points inputs and outputs that named a dropped node at its stand-in."""
    rename = rename or {}
    graph = LayerGraph()
    for node in keep:
        data = (nodes or {}).get(node, ir.node(node))
        graph.add_node(node, **{**data, "attrs": dict(data["attrs"])})
    for node in keep:
        for port, src in inputs_of(node):
            graph.add_edge(rename.get(src, src), node, port=port)
    return replace(ir, graph=graph, inputs=list(ir.inputs),
                   outputs=[(name, rename.get(node, node)) for name, node in ir.outputs])


def eliminate_common_subexpressions(ir: ModelIR) -> ModelIR:
    """Pure nodes computing what an earlier node computes are replaced by it (the NequIP spec's three
    Bessel bases of the same distances become one)."""
    seen: dict[tuple, str] = {}
    rename: dict[str, str] = {}
    keep = []
    for node in ir.order():
        d = ir.node(node)
        if d["op"] in PURE_OPS:
            key = (d["op"], tuple((port, rename.get(src, src)) for port, src in ir.inputs_of(node)),
                   frozen(d["attrs"]), str(d["type"]))
            if key in seen:
                rename[node] = seen[key]
                continue
            seen[key] = node
        keep.append(node)
    if not rename:
        return ir
    return rebuild(ir, keep, ir.inputs_of, rename=rename)


def eliminate_dead_code(ir: ModelIR) -> ModelIR:
    """Nodes no output depends on are dropped (inputs stay: they are the module's signature)."""
    live = {node for _, node in ir.outputs} | {node for _, node in ir.inputs}
    for node in reversed(ir.order()):
        if node in live:
            live.update(src for _, src in ir.inputs_of(node))
    if len(live) == len(ir.graph):
        return ir
    return rebuild(ir, [n for n in ir.order() if n in live], ir.inputs_of)


def fuse_message_passing(ir: ModelIR) -> ModelIR:
    """scatter_sum(tensor_product(h[i], b, ...), j) becomes one `conv` node when nothing else reads the
    gathered rows or the per-edge products (so they never need to exist): its inputs are h, b and the
    weights, its attributes the tensor product's plus the two indices.  It takes the tensor product's id,
    so the layer keeps its parameters' names."""
    outputs = {node for _, node in ir.outputs}
    fused: dict[str, tuple[str, str]] = {}  # tensor product -> (gather, scatter)
    for node in ir.order():
        if ir.node(node)["op"] != "scatter_sum" or ir.node(node)["type"].frame is not None:
            continue  # values in a frame keep their rows per copy: the fused kernels index the graph itself
        tp = dict(ir.inputs_of(node))["x"]
        if ir.node(tp)["op"] != "tensor_product" or ir.graph.out_degree(tp) != 1 or tp in outputs \
                or ir.node(tp)["attrs"].get("approximate") or ir.node(tp)["attrs"]["mode"] == "gaunt" \
                or ir.node(tp)["attrs"].get("share_paths"):
            continue  # the fused kernels are Clebsch-Gordan products, without an approximate one's free path
        gat = dict(ir.inputs_of(tp))["a"]
        if ir.node(gat)["op"] != "gather" or ir.graph.out_degree(gat) != 1 or gat in outputs:
            continue
        fused[tp] = (gat, node)
    if not fused:
        return ir
    dropped = {n for pair in fused.values() for n in pair}
    rename = {scatter: tp for tp, (_, scatter) in fused.items()}
    nodes = {}
    for tp, (gat, scatter) in fused.items():
        d, s = ir.node(tp), ir.node(scatter)
        attrs = {**d["attrs"], "gather_index": ir.node(gat)["attrs"]["index"], "scatter_index": s["attrs"]["index"]}
        nodes[tp] = {**d, "op": "conv", "type": s["type"], "attrs": attrs, "name": s["name"] or d["name"]}

    def inputs_of(node):
        if node not in fused:
            return ir.inputs_of(node)
        gat = fused[node][0]
        return [("x" if port == "a" else port, dict(ir.inputs_of(gat))["x"] if port == "a" else src)
                for port, src in ir.inputs_of(node)]

    return rebuild(ir, [n for n in ir.order() if n not in dropped], inputs_of, nodes=nodes, rename=rename)


# The passes the compiler runs, in order: (name, pass, whether `fuse=False` leaves it out).
PASSES: tuple[tuple[str, Callable[[ModelIR], ModelIR], bool], ...] = (
    ("common-subexpression elimination", eliminate_common_subexpressions, False),
    ("dead-code elimination", eliminate_dead_code, False),
    ("message-passing fusion", fuse_message_passing, True),
)


def run_passes(ir: ModelIR, passes=PASSES, *, fuse: bool = True,
               verify: Callable[[ModelIR], None] | None = None) -> ModelIR:
    """The passes in order; `verify` (the IR verifier) runs on the input and after each pass that changed
    something (a pass with nothing to do returns its input itself, and no pass modifies its input)."""
    if verify is not None:
        verify(ir)
    for name, run, is_fusion in passes:
        if is_fusion and not fuse:
            continue
        before, ir = ir, run(ir)
        if verify is not None and ir is not before:
            try:
                verify(ir)
            except AssertionError as err:
                raise type(err)(f"after {name}: {err}") from None
    return ir
