"""IR verifier: re-infer every node's type from its inputs and attributes (JAX's check_jaxpr, in spirit).

Run between passes when EQDSL_VERIFY=1 is set, and always in the tests.  A
failure here is a compiler bug, never a user error, so it raises.
"""
from __future__ import annotations

from ..groups.recipe import group_from_recipe
from . import ops, type_rules
from .graph import ModelIR


class IRVerificationError(AssertionError):
    pass


def verify(ir: ModelIR, memo: dict | None = None) -> None:
    """Raise IRVerificationError unless every node's stored type and derived attributes are what its rule
    gives for its inputs.

    `memo` (a dict kept across the verifications of one model, after each pass) remembers, per node id, the
    op, input types and attributes its rule last saw and what it gave: rules are pure functions of those,
    so a node that a pass left as it was is compared with its rule's answer without running the rule again.
    """
    g = group_from_recipe(ir.group_recipe)
    registry = ops.ops_for(g)
    graph = ir.graph
    for node in ir.order():
        data = graph.nodes[node]
        op = registry.get(data["op"])
        if op is None:
            raise IRVerificationError(f"{node}: unknown op {data['op']!r}")
        ins = {port: graph.nodes[src]["type"] for port, src in ir.inputs_of(node)}
        if op.param("xs") is not None:
            ins = {"xs": [ins[f"xs.{i}"] for i in range(data["attrs"]["xs"])]}
        seen = memo.get(node) if memo is not None else None
        if seen is not None and seen[0] == data["op"] and seen[1] == ins and seen[2] == data["attrs"]:
            vtype, derived = seen[3]
        else:
            try:
                vtype, derived = op.infer(g, ins, data["attrs"])
            except type_rules.TypeRuleError as err:
                raise IRVerificationError(f"{node} ({data['op']} at {data['span']}): {err.code} {err.message}") from None
            if memo is not None:
                memo[node] = (data["op"], ins, dict(data["attrs"]), (vtype, derived))
        if vtype != data["type"]:
            raise IRVerificationError(f"{node} ({data['op']}): stored type {data['type']} but inputs give {vtype}")
        for key, value in derived.items():
            if data["attrs"].get(key) != value:
                raise IRVerificationError(f"{node} ({data['op']}): attribute {key} differs from its re-derivation")
    names = [n for n, _ in ir.outputs]
    if len(set(names)) != len(names):
        raise IRVerificationError("duplicate output names")
    for _, node in ir.inputs + ir.outputs:
        if node not in graph:
            raise IRVerificationError(f"dangling reference to {node}")
