"""A readable listing of the typed layer graph (`eqc compile --emit ir`)."""
from __future__ import annotations

from ..reps.tp import TensorProductDescriptor
from .graph import ModelIR

_HIDDEN_ATTRS = {"type", "name", "open", "xs", "scalars", "gates", "gated", "shared_weights", "param_refs", "scalar_acts"}


def _attr(value) -> str:
    if isinstance(value, TensorProductDescriptor):
        return f"{len(value.paths)} paths, {value.weight_numel} weights"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def format_model(ir: ModelIR) -> str:
    params = ", ".join(f"{k} = {v}" for k, v in ir.params.items())
    lines = [f"model {ir.name}({params})  group {ir.group}  [{ir.graph.number_of_nodes()} nodes]"]
    width = max((len(n) for n in ir.graph.nodes), default=4)
    for node in ir.order():
        d = ir.graph.nodes[node]
        args = ", ".join(f"{port}={src}" for port, src in ir.inputs_of(node))
        attrs = ", ".join(f"{k}={_attr(v)}" for k, v in d["attrs"].items() if k not in _HIDDEN_ATTRS and v is not None)
        call = f"{d['op']}({', '.join(x for x in (args, attrs) if x)})"
        name = f"  # {d['name']}" if d["name"] else ""
        where = f"  [{d['scope']}]" if d["scope"] else ""
        line = d["span"].line if d["span"] is not None else "?"
        lines.append(f"  {node:<{width}} : {str(d['type']):<28} = {call}{name}  (line {line}){where}")
    lines.append("  inputs:  " + ", ".join(f"{n} <- {node}" for n, node in ir.inputs))
    lines.append("  outputs: " + ", ".join(f"{n} <- {node}" for n, node in ir.outputs))
    return "\n".join(lines)
