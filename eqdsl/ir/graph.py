"""The layer graph: a networkx MultiDiGraph of typed nodes, each pointing back to the spec.

Node ids are assigned in the order the checker creates nodes, so the same spec
always gives the same graph.  Each node carries:
  op      the name of an entry in eqdsl.check.ops.OPS
  type    its ValueType
  attrs   static attributes (output reps, modes, activations, descriptors...)
  span    where in the spec it comes from
  name    the spec variable it was bound to, if any
  scope   e.g. "repeat 2/3" or "block interaction", for readable listings
Edges carry ``port``: the parameter of the consumer the value feeds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from ..check.types import ValueType
from ..diagnostics import Span


@dataclass
class ModelIR:
    name: str
    group: str
    params: dict[str, object]
    graph: nx.MultiDiGraph = field(default_factory=nx.MultiDiGraph)
    inputs: list[tuple[str, str]] = field(default_factory=list)   # (name, node id)
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (name, node id)
    span: Span | None = None
    group_recipe: tuple = ("irreps", "O3")  # rebuilds the group (eqdsl.groups.recipe)
    _next: int = 0

    def add(self, op: str, vtype: ValueType, attrs: dict, span: Span | None,
            inputs: list[tuple[str, str]] = (), scope: str = "") -> str:
        node = f"n{self._next:04d}"
        self._next += 1
        self.graph.add_node(node, op=op, type=vtype, attrs=dict(attrs), span=span, name=None, scope=scope)
        for port, src in inputs:
            self.graph.add_edge(src, node, port=port)
        return node

    def node(self, node: str) -> dict:
        return self.graph.nodes[node]

    def inputs_of(self, node: str) -> list[tuple[str, str]]:
        """(port, producer) pairs in the consumer's parameter order (the order they were added)."""
        edges = [(d["port"], u) for u, _, d in self.graph.in_edges(node, data=True)]
        return edges

    def order(self) -> list[str]:
        """Deterministic topological order (ties broken by node id)."""
        return list(nx.lexicographical_topological_sort(self.graph))
