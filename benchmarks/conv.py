"""`eqc bench --conv`: the suite's tensor products as message-passing convolutions over a graph.

    out[n] = sum over edges e with dst[e] == n of TP(x1_nodes[src[e]], x2[e], w[e])

which is how NequIP, MACE and DiffDock use them.  The graph (seeded): ``nodes`` nodes (default:
edges / 16, an average of 16 incoming edges per node) and ``edges`` edges, both directions of
random pairs of distinct nodes, in random order (unsorted), as a radius graph would give.

Implementations:

* eqdsl-triton: the fused kernel family (``TensorProductLayer(..., backend="triton").conv``): the
  gather, the tensor product and the per-node sum in one kernel per operation, forward and backward
  (the edges sorted by node once per graph, on the first call: before the timed calls, as a model
  sorts once for all its layers);
  its launch configuration autotuned per workload as a generated model's would be
  (``--tune-candidates`` limits that);
* eqdsl-reference, e3nn, cuequivariance: gather x1 by src, the per-edge tensor product,
  ``index_add`` by dst: what a model written with these libraries does;
* openequivariance: its fused ``TensorProductConv`` (atomic mode; rows = dst, cols = src).

Each is verified first on a small graph (8 nodes, 48 edges) against the float64 eqdsl reference
convolution: values, the gradients of the node features, the edge features and the weights, and
the second derivatives.  The floor counts reading the node features, edge features, weights and
both indices and writing the node outputs (plus the backward's reads and writes): the per-edge
messages are not in it, since a fused kernel never writes them.
"""
from __future__ import annotations

from typing import Optional

import torch

from . import registry
from .anchors import openequivariance_problem
from .impl import Impl, tuning_options
from .runner import log_result, run_impl
from .suite import Problem, descriptor, floor_ms

CHECK_NODES, CHECK_EDGES = 8, 48
DEGREE = 16


def graph(nodes: int, edges: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """src, dst (int64): both directions of edges // 2 random pairs of distinct nodes (plus one random
    directed edge when `edges` is odd), shuffled."""
    if nodes < 2 and edges > 0:
        raise ValueError(f"a graph with {edges} edges needs at least 2 nodes, got {nodes}")
    gen = torch.Generator().manual_seed(seed)
    half = edges // 2
    a = torch.randint(0, nodes, (half + edges % 2,), generator=gen)
    b = (a + torch.randint(1, max(nodes, 2), (len(a),), generator=gen)) % max(nodes, 1)  # b != a
    src = torch.cat([a, b[:half]])
    dst = torch.cat([b, a[:half]])
    perm = torch.randperm(edges, generator=gen)
    return src[perm].to(device), dst[perm].to(device)


def floor_bytes(desc, nodes: int, edges: int, shared: bool, backward: bool = False, index_bytes: int = 8) -> int:
    """float32 bytes that must move at least once (see the module docstring)."""
    d1, d2, do = desc.irreps_in1.dim, desc.irreps_in2.dim, desc.irreps_out.dim
    w = desc.weight_numel if shared else edges * desc.weight_numel
    n = 4 * (nodes * d1 + edges * d2 + w + nodes * do) + 2 * edges * index_bytes
    if backward:  # read x1, x2, w, the output gradient and the indices again; write the three gradients
        n += 4 * (2 * nodes * d1 + 2 * edges * d2 + 2 * w + nodes * do) + 2 * edges * index_bytes
    return n


def _unfused(per_row: Impl, src, dst, nodes: int) -> Impl:
    """gather -> per-edge tensor product -> index_add, in the library's own layout."""
    def fn(x1n, x2, w):
        y = per_row.fn(x1n.index_select(0, src), x2, w)
        return y.new_zeros(nodes, y.shape[1]).index_add(0, dst, y)
    return Impl(fn, per_row.to_native, per_row.from_native, per_row.exact, per_row.note)


def _eqdsl(backend: str):
    def build(desc, shared, device, src, dst, nodes, tune_candidates: Optional[int] = None):
        from eqdsl.backends.tensor_product import TensorProductLayer

        layer = TensorProductLayer(desc, shared, backend=backend, **tuning_options(tune_candidates)).to(device)
        if shared:
            def fn(x1n, x2, w):
                layer._parameters["weight"] = w  # the benchmark's tensor in the parameter slot
                return layer.conv(x1n, src, x2, None, dst, nodes)
        else:
            def fn(x1n, x2, w):
                return layer.conv(x1n, src, x2, w, dst, nodes)
        if backend != "triton":
            return Impl(fn)
        keep = ("source", "config", "tune_s", "compile_s")
        return Impl(fn, note="fused gather, tensor product and scatter",
                    report=lambda: {k: v for k, v in layer.chooser().report.items() if k in keep})
    return build


def _per_row_library(name: str):
    def build(desc, shared, device, src, dst, nodes):
        return _unfused(registry.BUILDERS[name](desc, shared, device), src, dst, nodes)
    return build


def _oeq(desc, shared, device, src, dst, nodes):
    import openequivariance as oeq

    if device.type != "cuda":
        raise RuntimeError("OpenEquivariance runs on CUDA devices only")
    conv = oeq.TensorProductConv(openequivariance_problem(desc, shared), deterministic=False)
    rows, cols = dst.long(), src.long()
    return Impl(lambda x1n, x2, w: conv(x1n, x2, w, rows, cols),
                lambda x1n, x2, w: (x1n, x2, conv.reorder_weights_from_e3nn(w, not shared)), exact=False,
                note="TensorProductConv, atomics")


BUILDERS = {"eqdsl-triton": _eqdsl("triton"), "eqdsl-reference": _eqdsl("reference"),
            "e3nn": _per_row_library("e3nn"), "cuequivariance": _per_row_library("cuequivariance"),
            "openequivariance": _oeq}


def run_problem(problem: Problem, impls, device: torch.device, edges: int, nodes: Optional[int],
                warmup: int, repeat: int, bandwidth: float, log=print, double: bool = True,
                tune_candidates: Optional[int] = None) -> dict:
    desc = descriptor(problem)
    nodes = nodes or max(2, edges // DEGREE)
    src, dst = graph(nodes, edges, device)
    gen = torch.Generator(device=device).manual_seed(0)
    x1 = torch.randn(nodes, desc.irreps_in1.dim, device=device, generator=gen)
    x2 = torch.randn(edges, desc.irreps_in2.dim, device=device, generator=gen)
    w = torch.randn(*(() if problem.shared else (edges,)), desc.weight_numel, device=device, generator=gen)
    # the check: a small graph of its own, the float64 reference convolution on it
    csrc, cdst = graph(CHECK_NODES, CHECK_EDGES, device, seed=1)
    cgen = torch.Generator(device=device).manual_seed(1)
    check_inputs = (torch.randn(CHECK_NODES, desc.irreps_in1.dim, device=device, generator=cgen),
                    torch.randn(CHECK_EDGES, desc.irreps_in2.dim, device=device, generator=cgen),
                    torch.randn(*(() if problem.shared else (CHECK_EDGES,)), desc.weight_numel, device=device,
                                generator=cgen))
    ref = BUILDERS["eqdsl-reference"](desc, problem.shared, device, csrc, cdst, CHECK_NODES).fn
    ib = src.element_size()
    fwd_b = floor_bytes(desc, nodes, edges, problem.shared, index_bytes=ib)
    bwd_b = floor_bytes(desc, nodes, edges, problem.shared, True, index_bytes=ib)
    entry = {"id": problem.id, "mode": problem.mode, "in1": problem.in1, "in2": problem.in2, "out": problem.out,
             "shared_weights": problem.shared, "paths": len(desc.paths), "nodes": nodes, "edges": edges,
             "dims": [desc.irreps_in1.dim, desc.irreps_in2.dim, desc.irreps_out.dim],
             "weight_numel": desc.weight_numel, "floor_bytes": fwd_b, "floor_fwd_bwd_bytes": bwd_b,
             "floor_ms": floor_ms(fwd_b, bandwidth), "floor_fwd_bwd_ms": floor_ms(bwd_b, bandwidth),
             "results": []}
    for name in impls:
        def build(name=name):
            make = BUILDERS[name]
            opts = {"tune_candidates": tune_candidates} if name == "eqdsl-triton" else {}
            return (make(desc, problem.shared, device, src, dst, nodes, **opts),
                    make(desc, problem.shared, device, csrc, cdst, CHECK_NODES, **opts))
        r = run_impl(name, build, desc, device, (x1, x2, w), (ref, check_inputs), warmup, repeat, double)
        entry["results"].append(r)
        log_result(log, problem.id, r)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return entry
