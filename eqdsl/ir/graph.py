"""The layer graph: a directed multigraph of typed nodes, each pointing back to the spec.

Node ids are assigned in the order the checker creates nodes, so the same spec
always gives the same graph.  Each node carries:
  op      the name of an entry in eqdsl.ir.ops.OPS (ops_for(group))
  type    its ValueType
  attrs   static attributes (output reps, modes, activations, descriptors...)
  span    where in the spec it comes from
  name    the spec variable it was bound to, if any
  scope   e.g. "repeat 2/3" or "block interaction", for readable listings
Edges carry ``port``: the parameter of the consumer the value feeds.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from .types import ValueType
from ..diagnostics import Span


class _Nodes(dict):
    """node id -> attributes, in insertion order; ``nodes(data=True)`` lists (id, attributes) pairs."""

    def __call__(self, data: bool = False):
        return list(self.items()) if data else list(self)


class LayerGraph:
    """The part of a directed multigraph the IR needs (networkx's MultiDiGraph API, without networkx, whose
    import alone took 139 ms of the compiler's start-up).  Edges between the same two nodes may repeat
    (``h + h``); each carries its own attributes."""

    def __init__(self):
        self.nodes = _Nodes()
        self._pred: dict[str, dict[str, list[dict]]] = {}  # v -> u -> attributes of each u -> v edge
        self._succ: dict[str, dict[str, list[dict]]] = {}
        self._order: list[str] | None = None  # the topological order, until a node or an edge is added

    def add_node(self, node: str, **attrs) -> None:
        if node not in self.nodes:
            self._order = None
        self.nodes.setdefault(node, {}).update(attrs)
        self._pred.setdefault(node, {})
        self._succ.setdefault(node, {})

    def add_edge(self, u: str, v: str, **attrs) -> None:
        for n in (u, v):
            if n not in self.nodes:
                self.add_node(n)
        self._order = None
        self._succ[u].setdefault(v, []).append(attrs)
        self._pred[v].setdefault(u, []).append(attrs)

    def __contains__(self, node) -> bool:
        return node in self.nodes

    def __len__(self) -> int:
        return len(self.nodes)

    def number_of_nodes(self) -> int:
        return len(self.nodes)

    def in_edges(self, node: str, data: bool = False) -> list:
        """(u, node[, attributes]) per edge into `node`, grouped by u in the order the u first appeared."""
        return [(u, node, a) if data else (u, node) for u, edges in self._pred[node].items() for a in edges]

    def out_degree(self, node: str) -> int:
        return sum(len(edges) for edges in self._succ[node].values())

    def edges(self, data: bool = False) -> list:
        return [(u, v, a) if data else (u, v) for u, succ in self._succ.items() for v, edges in succ.items()
                for a in edges]

    def topological_order(self) -> list[str]:
        """Kahn's algorithm, the smallest ready node id first (deterministic); raises on a cycle.

        Computed once per shape of the graph: every pass and every verification asks for it."""
        if self._order is None:
            self._order = self._kahn()
        return list(self._order)

    def _kahn(self) -> list[str]:
        indegree = {n: sum(len(e) for e in self._pred[n].values()) for n in self.nodes}
        ready = [n for n, d in indegree.items() if d == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            u = heapq.heappop(ready)
            order.append(u)
            for v, edges in self._succ[u].items():
                indegree[v] -= len(edges)
                if indegree[v] == 0:
                    heapq.heappush(ready, v)
        if len(order) != len(self.nodes):
            raise ValueError("the layer graph has a cycle")
        return order


@dataclass
class ModelIR:
    name: str
    group: str
    params: dict[str, object]
    graph: LayerGraph = field(default_factory=LayerGraph)
    inputs: list[tuple[str, str]] = field(default_factory=list)   # (name, node id)
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (name, node id)
    span: Span | None = None
    group_recipe: tuple = ("irreps", "O3")  # rebuilds the group (eqdsl.groups.recipe)
    rep_names: dict[str, str] = field(default_factory=dict)  # canonical text of a rep -> the spec's name for it
    consts: dict[str, object] = field(default_factory=dict)  # constants the compile overrode (-D): compile-time parameters too
    soft_groups: list[tuple[str, tuple]] = field(default_factory=list)  # `soft group` declarations: (name, recipe)
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
        return self.graph.topological_order()


_LEAVES = (str, int, float, bool, type(None))


def frozen(value):
    """A hashable stand-in for an attribute value (dicts, lists and sets of hashable leaves)."""
    if type(value) in _LEAVES:
        return value
    if isinstance(value, dict):
        return tuple(sorted((k, frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(frozen(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(frozen(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
