"""The traffic model (``backends.triton.traffic``) against Triton's interpreter, launch by launch.

Each test runs a workload for real under the interpreter while counting, at the interpreter's own load,
store and atomic primitives, the elements every instruction's active lanes touch (mapped back to the
launch's arguments by address); the model traces the same launches with its counting stand-in for
``triton.language``.  Issued elements, sectors, instructions and the distinct elements read and written
must agree per argument, for every launch of a forward, a backward and second derivatives.  Then:
a trace of two row blocks scaled to more rows equals the trace of those rows, and ``eqc bench --model``
reports what the suite's forward must move.
"""
import functools
import json

import numpy as np
import pytest
import torch

from triton_interpreter import (  # noqa: F401  (the fixtures apply by being imported here)
    DEVICE, INTERPRET, WRONG_MODE, WRONG_MODE_REASON, I, _cache_root, _interpreter, mixed_descriptor,
)

from eqdsl.backends.tensor_product import TensorProductLayer
from eqdsl.backends.triton import TritonTensorProduct, per_row, segments, traffic
from eqdsl.benchmarks.verify import second_derivatives
from eqdsl.groups.o3 import O3
from eqdsl.reps import tp

if WRONG_MODE:
    pytest.skip(WRONG_MODE_REASON + " (pytest tests/backends/test_triton_traffic.py)", allow_module_level=True)
if not INTERPRET:
    pytest.skip("counts Triton's interpreter's memory operations (a CPU-only test)", allow_module_level=True)

IN1, IN2 = I("3x0e+2x1o"), I("1x0e+1x1o+1x2e")
DESCS = {
    "uvu": tp.channelwise(O3, IN1, IN2),
    "uvw": tp.fully_connected(O3, IN1, IN2, I("2x0e+3x1o+1x1e")),
    # weighted and unweighted paths into shared blocks: the weighted-only kernels of second derivatives
    "mixed": mixed_descriptor(),
}


class _InterpreterCounts:
    """Every load, store and atomic of Triton's interpreter, per argument of the running launch."""

    def __init__(self, monkeypatch):
        from triton.runtime import interpreter

        self.args: list = []
        self.accesses: dict = {}
        b = interpreter.interpreter_builder
        cls = type(b)  # the class's methods: a second counter replaces this one instead of wrapping it
        load, store, rmw = (functools.partial(getattr(cls, m), b)
                            for m in ("create_masked_load", "create_masked_store", "create_atomic_rmw"))

        def masked_load(ptrs, mask, other, *a):
            self._count("load", ptrs.data, mask.data)
            return load(ptrs, mask, other, *a)

        def masked_store(ptrs, value, mask, *a):
            self._count("store", ptrs.data, mask.data)
            return store(ptrs, value, mask, *a)

        def atomic_rmw(op, ptr, val, mask, *a):
            self._count("atomic", ptr.data, mask.data)
            return rmw(op, ptr, val, mask, *a)
        monkeypatch.setattr(b, "create_masked_load", masked_load)
        monkeypatch.setattr(b, "create_masked_store", masked_store)
        monkeypatch.setattr(b, "create_atomic_rmw", atomic_rmw)

    def _count(self, kind, addresses, mask):
        addresses = np.broadcast_to(addresses, np.broadcast_shapes(np.shape(addresses), np.shape(mask)))
        active = addresses[np.broadcast_to(mask, addresses.shape)].astype(np.int64)
        for i, t in enumerate(self.args):
            base, size = t.data_ptr(), t.element_size()
            inside = (active >= base) & (active < base + t.numel() * size)
            if inside.any():
                assert inside.all(), "one instruction touched two arguments"
                acc = self.accesses.setdefault((i, kind), traffic.Access())
                acc.add((active - base) // size, size)
                return
        raise AssertionError(f"a {kind} outside every argument of the launch")


def _run_and_compare(monkeypatch, workload):
    """Run `workload` under the interpreter, each launch counted there and traced by the model."""
    counts = _InterpreterCounts(monkeypatch)
    launches = []

    def run_counted(kernel, grid, args, meta):
        counts.args = [a for a in args if isinstance(a, torch.Tensor)]
        counts.accesses = {}
        kernel[grid](*args, **meta)
        launches.append((traffic.Launch(kernel, tuple(grid), args, meta), dict(counts.accesses)))
    monkeypatch.setattr(per_row, "_RECORDER", run_counted)
    workload()
    monkeypatch.setattr(per_row, "_RECORDER", None)
    assert launches
    for launch, seen in launches:
        model = traffic.trace(launch)
        tensors = [a for a in launch.args if isinstance(a, torch.Tensor)]
        assert len(model.arguments) == len(tensors)
        for i, arg in enumerate(model.arguments):
            for kind in ("load", "store", "atomic"):
                want, got = seen.get((i, kind), traffic.Access()), getattr(arg, kind)
                what = f"{launch.name} {arg.name} {kind}"
                assert (got.issued, got.sectors, got.instructions) == (want.issued, want.sectors, want.instructions), what
            read = traffic._distinct(*(seen.get((i, k), traffic.Access()) for k in ("load", "atomic")))
            written = traffic._distinct(*(seen.get((i, k), traffic.Access()) for k in ("store", "atomic")))
            assert (arg.read, arg.written) == (read, written), f"{launch.name} {arg.name}"
    return launches


def _second_order(layer, x1, x2, w, g):
    leaves = [x1, x2] + ([w] if w is not None else [layer.weight])

    def run():
        grads = torch.autograd.grad(layer(x1, x2, w), leaves, g, create_graph=True)
        second_derivatives(grads, leaves, [torch.randn_like(t) for t in leaves])
    return run


@pytest.mark.parametrize("name", ["uvu", "uvw"])
def test_traced_counts_equal_the_interpreters_for_the_fused_backward(monkeypatch, name):
    desc = DESCS[name]
    layer = TensorProductLayer(desc, False, backend="triton").to(DEVICE, torch.float32)
    nodes, n = 5, 37
    x1, x1n = torch.randn(n, desc.irreps_in1.dim, requires_grad=True), torch.randn(nodes, desc.irreps_in1.dim)
    x2 = torch.randn(n, desc.irreps_in2.dim, requires_grad=True)
    w = torch.randn(n, desc.weight_numel, requires_grad=True)
    src, dst = torch.randint(nodes, (n,)), torch.randint(nodes, (n,))
    x1n.requires_grad_()
    launches = _run_and_compare(monkeypatch, lambda: torch.autograd.grad(
        layer(x1, x2, w), [x1, x2, w], torch.randn(n, desc.irreps_out.dim)))
    launches += _run_and_compare(monkeypatch, lambda: torch.autograd.grad(
        layer.conv(x1n, src, x2, w, dst, nodes), [x1n, x2, w], torch.randn(nodes, desc.irreps_out.dim)))
    names = {lc.name for lc, _ in launches}
    assert {"tp_target_backward_dx2", "tp_conv_backward_dx2"} <= names
    assert any(n.startswith("tp_conv_backward__") for n in names)


@pytest.mark.parametrize("name,shared", [("uvu", False), ("uvw", True), ("mixed", False), ("mixed", True)])
def test_traced_counts_equal_the_interpreters_per_row(monkeypatch, name, shared):
    desc = DESCS[name]
    layer = TensorProductLayer(desc, shared, backend="triton").to(DEVICE, torch.float32)
    n = 37  # a partial last row block: masked rows count nothing
    x1 = torch.randn(n, desc.irreps_in1.dim, requires_grad=True)
    x2 = torch.randn(n, desc.irreps_in2.dim, requires_grad=True)
    w = None if shared else torch.randn(n, desc.weight_numel, requires_grad=True)
    g = torch.randn(n, desc.irreps_out.dim)
    launches = _run_and_compare(monkeypatch, _second_order(layer, x1, x2, w, g))
    names = {lc.name.rsplit("__", 1)[0] for lc, _ in launches}
    assert {"tp_target_g", "tp_target_x1", "tp_target_x2", "tp_target_w"} <= names
    if name == "mixed":
        assert any(n.endswith("_weighted") for n in names)


def test_traced_counts_equal_the_interpreters_for_split_kernels_and_channel_loops(monkeypatch):
    """Blocks split by paths (a later piece loads what an earlier kernel stored) and channel tiles looped."""
    monkeypatch.setenv("EQDSL_TRITON_MAX_TERMS", "12")
    desc = tp.channelwise(O3, I("5x0e+5x1o+5x2e"), I("0e+1o+2e"))
    layer = TritonTensorProduct(desc, False, block_c=2).to(DEVICE, torch.float32)
    n = 32
    x1, x2 = torch.randn(n, desc.irreps_in1.dim, requires_grad=True), torch.randn(n, 9, requires_grad=True)
    w = torch.randn(n, desc.weight_numel, requires_grad=True)
    launches = _run_and_compare(monkeypatch, lambda: torch.autograd.grad(layer(x1, x2, w), [x1, x2, w],
                                                                         torch.randn(n, desc.irreps_out.dim)))
    assert len(launches) > 4  # split operations
    # a later piece of a split block loads what an earlier kernel stored (the fused backward's dx1)
    assert any(a.load.issued for lc, _ in launches for a in traffic.trace(lc).arguments if a.name in ("T", "DX1"))


@pytest.mark.parametrize("shared", [False, True])
def test_traced_counts_equal_the_interpreters_for_the_fused_convolution(monkeypatch, shared):
    desc = DESCS["uvu"]
    layer = TensorProductLayer(desc, shared, backend="triton").to(DEVICE, torch.float32)
    # node 0 receives and node 1 sends more edges than a piece holds (128): split, partial rows, fixups
    nodes, edges = 5, 150
    src, dst = torch.randint(nodes, (edges,)), torch.randint(nodes, (edges,))
    dst[:130], src[15:145] = 0, 1
    x1 = torch.randn(nodes, desc.irreps_in1.dim, requires_grad=True)
    x2 = torch.randn(edges, desc.irreps_in2.dim, requires_grad=True)
    w = None if shared else torch.randn(edges, desc.weight_numel, requires_grad=True)
    leaves = [x1, x2] + ([w] if w is not None else [layer.weight])

    def run():
        y = layer.conv(x1, src, x2, w, dst, nodes)
        grads = torch.autograd.grad(y, leaves, torch.randn_like(y), create_graph=True)
        second_derivatives(grads, leaves, [torch.randn_like(t) for t in leaves])
    launches = _run_and_compare(monkeypatch, run)
    names = {lc.name for lc, _ in launches}
    assert "tp_conv_fixup_g" in names and "tp_conv_fixup_x1" in names
    traced = [a for lc, _ in launches for a in traffic.trace(lc).arguments]
    assert not any(a.atomic.issued for a in traced)  # node rows are summed per piece, stored once
    assert any(a.name == "PERM" and a.load.issued for a in traced)


def _recorded(layer, rows, nodes=None, device="meta"):
    desc = layer.desc
    x2 = torch.randn(rows, desc.irreps_in2.dim, device=device)
    w = torch.randn(rows, desc.weight_numel, device=device)
    with traffic.recorded() as launches:
        with torch.no_grad():
            if nodes:  # the graph's pieces from its values, on meta too (as the model builds them)
                src = torch.arange(rows) % nodes
                dst = src.flip(0)
                src, dst = segments.placed(src, dst, segments.sides(src, dst, nodes, nodes,
                                                                    16 * segments.SEGMENT_ROW_BLOCKS), device)
                x1 = torch.randn(nodes, desc.irreps_in1.dim, device=device)
                layer.conv(x1, src, x2, w, dst, nodes)
            else:
                layer(torch.randn(rows, desc.irreps_in1.dim, device=device), x2, w)
    return launches


@pytest.mark.parametrize("conv", [False, True])
def test_a_trace_scaled_to_more_rows_equals_the_trace_of_those_rows(conv):
    desc = DESCS["uvu"]
    layer = TensorProductLayer(desc, False, backend="triton")
    # every edge its own node, so that the gathered rows' sectors follow the same pattern at both sizes
    small, big = _recorded(layer, 32, 32 if conv else None, "cpu"), _recorded(layer, 96, 96 if conv else None, "cpu")
    assert [lc.name for lc in small] == [lc.name for lc in big]
    for s, b in zip(small, big):
        model, exact = traffic.scaled(traffic.trace(s), b), traffic.scaled(traffic.trace(b), b)
        assert model == exact
    meta = _recorded(layer, 96, 96 if conv else None)  # the same launches on meta tensors: shapes only
    assert [traffic.scaled(traffic.trace(s), m) for s, m in zip(small, meta)] == \
        [traffic.scaled(traffic.trace(b), b) for b in big]


def test_recording_is_exclusive_and_restores_the_launch_path():
    with traffic.recorded():
        with pytest.raises(RuntimeError, match="already active"):
            with traffic.recorded():
                pass
    assert per_row._RECORDER is None


def test_the_model_of_the_suites_forward_moves_the_floor(tmp_path, capsys):
    """mace-medium's forward is one kernel reading x1, x2 and the weights once and writing the output once:
    exactly the floor; the fused backward reads x1, x2, the weights and the output gradient once more (and
    writes and reads its dx2 partials), so forward+backward comes within 1.15x of the floor."""
    from eqdsl.cli import main

    out = tmp_path / "model.json"
    assert main(["bench", "--model", "--problems", "mace-medium", "--no-compile", "--batch", "4096",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    w = report["problems"][0]["workloads"]
    assert w["fwd"]["launches"] == 1 and w["fwd"]["over_floor"] == pytest.approx(1.0)
    names = [k["name"] for k in w["fwd_bwd"]["kernels"]]
    assert names[0] == "tp_target_g__0" and names[-1] == "tp_target_backward_dx2"
    assert 1.0 < w["fwd_bwd"]["over_floor"] < 1.15
    assert w["fwd_bwd2"]["torch_ops"]  # autograd adds the second derivatives' pieces
    assert "| mace-medium | fwd | 1 (1 + 0) |" in capsys.readouterr().out


def test_the_model_of_a_fused_convolution_moves_its_floor_without_atomics(tmp_path):
    """mace-medium as a convolution: the forward sums each destination's piece of sorted edges and stores it
    once, so it moves exactly its floor (x1, x2, weights, both indices read once, the output written once)
    and adds no atomic anywhere; the graph's one-time preparation is reported apart."""
    from eqdsl.cli import main

    out = tmp_path / "model.json"
    assert main(["bench", "--model", "--conv", "--problems", "mace-medium", "--no-compile", "--batch", "4096",
                 "--json", str(out)]) == 0
    entry = json.loads(out.read_text())["problems"][0]
    w = entry["workloads"]
    assert all(v["atomics"] == 0 for v in w.values())
    # the floor counts both indices; the kernel also reads PERM and PIECES (the sorted edges): within 2%
    assert w["fwd"]["launches"] == 1 and 1.0 <= w["fwd"]["over_floor"] < 1.02
    assert 1.0 < w["fwd_bwd"]["over_floor"] < 1.15
    assert entry["graph"]["launches"] > 0 and entry["graph"]["bytes"] > 0
