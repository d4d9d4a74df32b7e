"""`eqc bench --model`: what eqdsl's Triton kernels launch and move on the suite, without a GPU.

For each problem (per row, or ``--conv`` as a fused message-passing convolution) and each workload that
``eqc bench`` times (fwd, fwd+bwd, fwd+bwd+2nd: ``runner.workloads``), the module ``eqc bench`` runs
(eqdsl-triton, default launch configuration) is called inside ``traffic.recorded()``: once at the
suite's size on meta tensors, which lists every kernel launch and every torch operation in between
(a ``TorchDispatchMode`` counts those: sums of partials, zero fills, gradient accumulation), and once
on a few row blocks of CPU tensors, whose launches are traced (``traffic.trace``) and scaled to the
first run's (``traffic.scaled``).  Per workload: the launches, the bytes moved (perfect L2 reuse inside
a kernel, none across kernels; a torch operation reads its inputs and writes its outputs), the memory
floor of ``suite.floor_bytes`` / ``conv.floor_bytes`` and the ratio, the bytes the instructions issue
and how well their 32-byte sectors are used, the atomic operations, and (unless ``--no-compile``)
registers, spills and occupancy of each kernel compiled for sm_90 (``inspect_kernels``).
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch.utils import _pytree
from torch.utils._python_dispatch import TorchDispatchMode

from . import conv as convolution
from .runner import workloads
from .suite import Problem, descriptor, floor_bytes

WORKLOADS = ("fwd", "fwd_bwd", "fwd_bwd2")
TRACE_ROW_BLOCKS = 2  # row blocks of the traced run (each row block runs the same code)
# edges of the traced convolution: its graph has the model's degree (16 nodes at convolution.DEGREE), so its
# pieces hold edge counts drawn like the big graph's; per-piece counts then scale with the edges
CONV_TRACE_EDGES = 256
_NO_KERNEL = {"empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided"}
_WRITE_ONLY = {"zero_", "fill_", "zeros", "new_zeros", "zeros_like", "ones", "ones_like", "full", "new_full"}


class TorchLaunches(TorchDispatchMode):
    """The torch operations of a workload that launch a kernel (views and allocations do not), with the
    bytes each reads and writes."""

    def __init__(self):
        super().__init__()
        self.ops: list[dict] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if func.is_view or name in _NO_KERNEL or name in ("detach", "alias", "lift_fresh"):
            return out
        ins = [t for t in _pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
        outs = [t for t in _pytree.tree_leaves(out) if isinstance(t, torch.Tensor)]
        nbytes = lambda ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
        read = 0 if name in _WRITE_ONLY else nbytes(ins)
        self.ops.append({"name": f"aten.{name}", "read": read, "written": nbytes(outs)})
        return out


def _inputs(problem: Problem, desc, rows: int, nodes: int, device) -> tuple:
    x1 = torch.randn(nodes if nodes else rows, desc.irreps_in1.dim, device=device)
    x2 = torch.randn(rows, desc.irreps_in2.dim, device=device)
    w = torch.randn(*(() if problem.shared else (rows,)), desc.weight_numel, device=device)
    return x1, x2, w


def _graph(device, rows: int, nodes: int, block_b: int):
    """``eqc bench --conv``'s graph (the same random graph at both sizes, so the degrees the pieces of the fused
    convolution see are the same), on `device`, with its pieces built once: from the graph's values, so on
    meta tensors too their sizes are the exact ones.  Returns src, dst and the torch operations of that one
    preparation per graph (counted on the values, the sizes those of the model's graph)."""
    from eqdsl.backends.triton import segments

    src, dst = convolution.graph(nodes, rows, torch.device("cpu"))
    piece = block_b * segments.SEGMENT_ROW_BLOCKS
    with TorchLaunches() as ops:  # what the preparation costs: on the values, which pick its path
        built = segments.sides(src, dst, nodes, nodes, piece)
    return (*segments.placed(src, dst, built, device), ops.ops)


def _build(problem: Problem, desc, device, rows: int, nodes: int, block_b: int):
    """eqdsl-triton as ``eqc bench`` builds it, with the default launch configuration (and for the
    convolution the graph's one-time preparation)."""
    if nodes:
        src, dst, prep = _graph(device, rows, nodes, block_b)
        return convolution.BUILDERS["eqdsl-triton"](desc, problem.shared, device, src, dst, nodes,
                                                    tune_candidates=0), prep
    from .registry import BUILDERS
    return BUILDERS["eqdsl-triton"](desc, problem.shared, device, tune_candidates=0), []


def _record(problem: Problem, desc, device, rows: int, nodes: int, block_b: int) -> tuple[dict, list]:
    """(workload -> (kernel launches, torch operations) of one run at this size, the graph's preparation)."""
    from eqdsl.backends.triton import traffic

    torch.manual_seed(0)
    impl, prep = _build(problem, desc, device, rows, nodes, block_b)
    runs = workloads(impl.fn, list(_inputs(problem, desc, rows, nodes, device)), desc.irreps_out.dim)
    out = {}
    for name in WORKLOADS:
        with traffic.recorded() as launches, TorchLaunches() as ops:
            runs[name]()
        out[name] = (launches, ops.ops)
    return out, prep


def _resources(launches, cache: dict) -> dict:
    """kernel name -> (registers, stack bytes, occupancy) of each distinct kernel, compiled for sm_90."""
    from eqdsl.backends.triton import precompile

    from .inspect_kernels import _resources as resources

    def key(lc):  # one binary per kernel, argument types and launch options (rows past int32: another)
        return (lc.kernel, tuple(a.dtype if isinstance(a, torch.Tensor) else a >= 2 ** 31 for a in lc.args),
                tuple(sorted(lc.meta.items())))

    jobs = {}
    for lc in launches:
        if key(lc) not in cache and key(lc) not in jobs:
            args = tuple(a.dtype if isinstance(a, torch.Tensor) else a for a in lc.args)
            jobs[key(lc)] = precompile.Job(lc.name, lc.kernel, args, dict(lc.meta))
    if jobs:
        for k, (job, seconds, compiled) in zip(jobs, precompile.compile_offline(list(jobs.values()))):
            _, _, regs, stack, _, _, occ = resources(job.name, seconds, compiled)
            cache[k] = (int(regs or 0), int(stack or 0), occ)
    return {lc.name: cache[key(lc)] for lc in launches}


def model_problem(problem: Problem, batch: int, conv: bool = False, nodes: Optional[int] = None,
                  compile: bool = True, resource_cache: Optional[dict] = None) -> dict:
    """The model of one problem: its floors and, per workload, the launches and their traffic."""
    from eqdsl.backends.triton import traffic

    desc = descriptor(problem)
    nodes = (nodes or max(2, batch // convolution.DEGREE)) if conv else 0
    block_b = 16  # the default launch configuration's row block (autotune.DEFAULT_CONFIG)
    big, prep = _record(problem, desc, torch.device("meta"), batch, nodes, block_b)
    if conv:  # a graph of the same degree: the pieces of the fused convolution see the same edge counts
        traced_rows = CONV_TRACE_EDGES
        small, _ = _record(problem, desc, torch.device("cpu"), traced_rows,
                           max(2, round(traced_rows * nodes / batch)), block_b)
    else:
        traced_rows = TRACE_ROW_BLOCKS * block_b
        small, _ = _record(problem, desc, torch.device("cpu"), traced_rows, 0, block_b)
    if conv:
        floors = {"fwd": convolution.floor_bytes(desc, nodes, batch, problem.shared),
                  "fwd_bwd": convolution.floor_bytes(desc, nodes, batch, problem.shared, True)}
    else:
        floors = {"fwd": floor_bytes(desc, batch, problem.shared),
                  "fwd_bwd": floor_bytes(desc, batch, problem.shared, True)}
    entry = {"id": problem.id, "mode": problem.mode, "conv": conv, "rows": batch, "nodes": nodes or None,
             "paths": len(desc.paths), "floor_bytes": floors, "workloads": {}}
    if conv:  # once per graph, shared by every layer and pass: not part of any workload's figures
        entry["graph"] = {"torch_ops": prep, "launches": len(prep),
                          "bytes": sum(o["read"] + o["written"] for o in prep)}
    traces: dict = {}
    cache = resource_cache if resource_cache is not None else {}
    for name in WORKLOADS:
        (launches, ops), (small_launches, _) = big[name], small[name]
        if [lc.name for lc in launches] != [lc.name for lc in small_launches]:
            raise traffic.ModelError(f"{problem.id} {name}: the traced run launches other kernels than the "
                                     "run at the model's size")
        kernels = []
        res = _resources(launches, cache) if compile else {}
        for lc, small_lc in zip(launches, small_launches):
            key = (small_lc.name, id(small_lc.kernel), tuple(getattr(a, "shape", a) for a in small_lc.args))
            if key not in traces:
                traces[key] = traffic.trace(small_lc)
            t = traffic.scaled(traces[key], lc)
            row = {"name": t.name, "programs": t.programs, "read": t.read, "written": t.written,
                   "issued": t.issued, "sectors": t.sectors, "atomics": t.atomics}
            if lc.name in res:
                row["registers"], row["stack"], row["occupancy"] = res[lc.name]
            kernels.append(row)
        moved = sum(k["read"] + k["written"] for k in kernels) + sum(o["read"] + o["written"] for o in ops)
        w = {"kernels": kernels, "torch_ops": ops, "launches": len(kernels) + len(ops), "bytes": moved,
             "issued": sum(k["issued"] for k in kernels), "sectors": sum(k["sectors"] for k in kernels),
             "atomics": sum(k["atomics"] for k in kernels)}
        if name in floors:
            w["over_floor"] = moved / floors[name]
        if res:
            w["max_registers"] = max(k["registers"] for k in kernels)
            w["min_occupancy"] = min(k["occupancy"] for k in kernels)
            w["max_stack"] = max(k["stack"] for k in kernels)
        entry["workloads"][name] = w
    return entry


def _mb(x: float) -> str:
    return f"{x / 1e6:.0f}" if x >= 1e7 else f"{x / 1e6:.1f}"


def table(entries: list[dict]) -> str:
    """Markdown: per problem and workload the launches, bytes against the floor, sector use, atomics,
    registers and occupancy."""
    lines = ["| problem | workload | launches (kernels + torch) | modelled MB | floor MB | over floor | issued MB | "
             "sector use | atomics | max regs | min occupancy |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        for name, w in e["workloads"].items():
            floor = e["floor_bytes"].get(name)
            use = w["issued"] / (w["sectors"] * 32) if w["sectors"] else 0.0
            lines.append("| " + " | ".join([
                e["id"] + (" (conv)" if e["conv"] else ""), name.replace("_", "+").replace("bwd2", "bwd+2nd"),
                f"{w['launches']} ({len(w['kernels'])} + {len(w['torch_ops'])})", _mb(w["bytes"]),
                _mb(floor) if floor else "", f"{w['over_floor']:.2f}x" if floor else "", _mb(w["issued"]),
                f"{use:.0%}", f"{w['atomics']:.3g}" if w["atomics"] else "0",
                str(w.get("max_registers", "")), f"{w['min_occupancy']:.0%}" if "min_occupancy" in w else ""]) + " |")
    return "\n".join(lines)


def run(problems: list[Problem], batch: int, conv: bool, nodes: Optional[int], compile: bool, log=print) -> dict:
    if compile:  # sm_90 compiles need a triton imported without its interpreter (traces work either way)
        os.environ.pop("TRITON_INTERPRET", None)
    entries, cache = [], {}
    for p in problems:
        entries.append(model_problem(p, batch, conv, nodes, compile, cache))
        e = entries[-1]
        log(f"  {p.id}: " + ", ".join(f"{k} {w['launches']} launches, {w['bytes'] / 1e6:.0f} MB"
                                     + (f" ({w['over_floor']:.2f}x floor)" if "over_floor" in w else "")
                                     for k, w in e["workloads"].items())
            + (f"; once per graph: {e['graph']['launches']} torch operations, {e['graph']['bytes'] / 1e6:.1f} MB"
               if "graph" in e else ""), flush=True)
    return {"meta": {"batch": batch, "conv": conv, "nodes": nodes, "dtype": "float32",
                     "assumptions": "perfect L2 reuse inside a kernel, none across kernels; default launch "
                                    "configuration (block_b 16, block_c 16, 4 warps); sm_90 for registers"},
            "problems": entries}

