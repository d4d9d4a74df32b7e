"""The IR's LayerGraph against networkx's MultiDiGraph, whose API it keeps: same topological order (smallest
ready id first), same in-edge order (grouped by predecessor), degrees and edge lists, repeated edges kept."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eqdsl.ir.graph import LayerGraph

nx = pytest.importorskip("networkx")


@st.composite
def dags(draw):
    n = draw(st.integers(1, 12))
    names = [f"n{i:04d}" for i in range(n)]
    order = draw(st.permutations(names))  # creation order differs from id order
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=30))
    # edges go from earlier to later in a hidden order, so the graph is acyclic
    rank = {v: i for i, v in enumerate(draw(st.permutations(names)))}
    pairs = [(names[a], names[b]) for a, b in edges if rank[names[a]] < rank[names[b]]]
    return order, pairs


@settings(max_examples=200, deadline=None)
@given(dags())
def test_matches_networkx(dag):
    order, pairs = dag
    g, G = LayerGraph(), nx.MultiDiGraph()
    for node in order:
        g.add_node(node, op="x")
        G.add_node(node, op="x")
    for i, (u, v) in enumerate(pairs):
        g.add_edge(u, v, port=f"p{i}")
        G.add_edge(u, v, port=f"p{i}")
    assert g.topological_order() == list(nx.lexicographical_topological_sort(G))
    assert g.edges() == list(G.edges()) and g.number_of_nodes() == G.number_of_nodes() == len(g)
    for node in order:
        assert [(u, a["port"]) for u, _, a in g.in_edges(node, data=True)] == \
            [(u, a["port"]) for u, _, a in G.in_edges(node, data=True)]
        assert g.out_degree(node) == G.out_degree(node)
        assert g.nodes[node] == G.nodes[node]
    assert g.nodes(data=True) == list(G.nodes(data=True)) and g.nodes() == list(G.nodes)


def test_repeated_edges_and_cycles():
    g = LayerGraph()
    g.add_node("n0000")
    g.add_edge("n0000", "n0001", port="a")
    g.add_edge("n0000", "n0001", port="b")  # h + h: two edges, both kept
    assert g.out_degree("n0000") == 2 and [a["port"] for *_, a in g.in_edges("n0001", data=True)] == ["a", "b"]
    assert g.topological_order() == ["n0000", "n0001"] and "n0001" in g
    g.add_edge("n0001", "n0000", port="c")
    with pytest.raises(ValueError, match="cycle"):
        g.topological_order()
