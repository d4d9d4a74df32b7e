"""`eqc bench`: the suite run on the implementations installed, verified and timed, or saved reports merged.

``--conv`` runs the problems as message-passing convolutions instead (``conv``); ``--packages`` runs
NequIP and MACE beside their packages instead (``packages``); ``--model`` times nothing and reports what
eqdsl's Triton kernels launch and move (``model``).  Implementations:
eqdsl's Triton kernels and reference, and the anchors e3nn, cuEquivariance and OpenEquivariance when
they import (``registry``); what is measured is ``runner``'s docstring.
"""
from __future__ import annotations

import json
import os
import platform
from typing import Optional

import torch

from . import conv as convolution
from . import merge
from .plot import plot
from .registry import CUDA_ONLY, probe
from .report import format_markdown
from .runner import run_problem
from .suite import CHECK_ROWS, IMPLS, PROBLEMS, SUITE
from .timing import copy_bandwidth
from .verify import RTOL


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor()
    try:  # platform.processor() is often empty or just the architecture on Linux
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name or platform.machine()} ({os.cpu_count()} cores, {platform.system()})"


def _select(text: Optional[str], known, what: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()] if text else list(known)
    unknown = [s for s in names if s not in known]
    if unknown:
        raise SystemExit(f"eqc bench: unknown {what} {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def _save(text: str, report: dict, args) -> None:
    """Print `text` (markdown) and write what --json (the report) and --markdown (the text) ask for."""
    print("\n" + text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")


def _write(report: dict, args) -> None:
    """Print the suite report's tables and write what --json / --markdown / --plot ask for."""
    _save(format_markdown(report), report, args)
    if args.plot:
        print(plot(report, args.plot))


def _refuse_suite_options(args, what: str, allowed: tuple = ()) -> None:
    given = [f"--{k.replace('_', '-')}" for k in ("problems", "impls", "batch", "device", "nodes", "check_rows",
                                                  "tune_candidates", "threads")
             if k not in allowed and getattr(args, k, None) is not None]
    given += [f"--{k.replace('_', '-')}" for k in ("conv", "no_double", "cold_cache")
              if k not in allowed and getattr(args, k, False)]
    if given:
        raise SystemExit(f"eqc bench: {what}; {', '.join(given)} belong to a run of the suite")


def _device(args) -> torch.device:
    """--device (default cuda when torch sees one), with TF32 off: it would make e3nn's (and any matmul-based)
    float32 results both faster and less exact."""
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("eqc bench: --device cuda, but torch sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    return device


def model_kernels(args) -> int:
    """``eqc bench --model``: the traffic and launch model of eqdsl's Triton kernels (``model``); runs no kernel."""
    _refuse_suite_options(args, "--model computes what the kernels move and times nothing",
                          allowed=("problems", "batch", "conv", "nodes"))
    if getattr(args, "merge", None) or getattr(args, "plot", None):
        raise SystemExit("eqc bench: --model writes --json and --markdown only (no --merge, no --plot)")
    from . import model

    problems = [PROBLEMS[p] for p in _select(args.problems, PROBLEMS, "problem")]
    batch = args.batch or 50000
    if batch < 1 or (args.nodes is not None and args.nodes < 2):
        raise SystemExit("eqc bench: --model needs --batch >= 1 and --nodes >= 2")
    print(f"eqc bench --model: batch {batch}{' (edges of a convolution)' if args.conv else ''}, float32, "
          + ("registers for sm_90" if not args.no_compile else "no compiles"), flush=True)
    report = model.run(problems, batch, args.conv, args.nodes, not args.no_compile)
    _save(model.table(report["problems"]), report, args)
    return 0


def compare_packages(args) -> int:
    """``eqc bench --packages``: NequIP and MACE beside the nequip and mace-torch packages (same weights),
    on --device (default cuda if available), float32, --repeat interleaved calls (``packages``)."""
    _refuse_suite_options(args, "--packages times the two models, not the suite", allowed=("device", "threads"))
    if getattr(args, "merge", None) or getattr(args, "plot", None):
        raise SystemExit("eqc bench: --packages writes --json and --markdown only (no --merge, no --plot)")
    from . import packages

    device = _device(args)
    print(f"eqc bench --packages: {_device_name(device)}, {args.packages}", flush=True)
    rows = packages.compare(args.packages, args.repeat, "float32", device)
    meta = {"device": _device_name(device), "torch": torch.__version__, "calls": args.repeat, "dtype": "float32"}
    _save(packages.table(rows, "float32", device, args.repeat), {"meta": meta, "rows": rows}, args)
    return 0


def merge_saved(args) -> int:
    """``eqc bench --merge A.json,B.json``: the parts of one run (e.g. one problem per call) as one report."""
    _refuse_suite_options(args, "--merge renders saved reports and runs nothing")
    paths = [p.strip() for p in args.merge.split(",") if p.strip()]
    try:
        report = merge.merge([merge.load(p) for p in paths], paths, [p.id for p in SUITE])
    except merge.ReportError as err:
        raise SystemExit(f"eqc bench --merge: {err}") from None
    _write(report, args)
    return 0


def compare_strategies(args) -> int:
    """``eqc bench --strategies``: the Gaunt product's algorithms beside e3nn's CG product over the same paths
    (``strategies``), L = --lmax, on --device (default cuda if available)."""
    _refuse_suite_options(args, "--strategies times the tensor-product strategies, not the suite",
                          allowed=("device", "threads", "batch"))
    if getattr(args, "merge", None):
        raise SystemExit("eqc bench: --strategies writes --json, --markdown and --plot (no --merge)")
    from . import strategies

    device = _device(args)
    try:
        lmaxes = [int(x) for x in args.lmax.split(",")] if "," in args.lmax else \
            list(range(int(args.lmax.split("..")[0]), int(args.lmax.split("..")[1]) + 1))
    except (ValueError, IndexError):
        raise SystemExit(f"eqc bench: --lmax takes A..B or a comma-separated list, not {args.lmax!r}") from None
    if not lmaxes or min(lmaxes) < 1 or args.channels < 1:
        raise SystemExit("eqc bench: --lmax values and --channels must be at least 1")
    try:
        import e3nn  # noqa: F401
        with_e3nn = True
    except ModuleNotFoundError:
        with_e3nn = False
        print("e3nn is not installed: the Gaunt algorithms only (pip install 'eqdsl[bench]' for the comparison)")
    batch = args.batch or (2000 if device.type == "cpu" else 50000)
    print(f"eqc bench --strategies: {_device_name(device)}, L in {lmaxes}, {args.channels} channels, batch {batch}",
          flush=True)
    if args.rank < 0:
        raise SystemExit("eqc bench: --rank must be >= 0 (0: no low-rank product)")
    rows = strategies.run(lmaxes, args.channels, batch, device, args.warmup, args.repeat, with_e3nn, args.rank)
    _save(strategies.table(rows, _device_name(device), args.repeat),
          {"meta": {"device": _device_name(device), "torch": torch.__version__, "threads": torch.get_num_threads()},
           "rows": rows}, args)
    if args.plot:
        print(strategies.plot(rows, args.plot))
    return 0


def run(args) -> int:
    if getattr(args, "strategies", False):
        return compare_strategies(args)
    if getattr(args, "packages", None):
        return compare_packages(args)
    if getattr(args, "merge", None):
        return merge_saved(args)
    if getattr(args, "model", False):
        return model_kernels(args)
    if getattr(args, "no_compile", False):
        raise SystemExit("eqc bench: --no-compile belongs to --model")
    device = _device(args)
    cpu = device.type == "cpu"
    batch = args.batch or (2000 if cpu else 50000)
    check_rows = getattr(args, "check_rows", None)
    check_rows = CHECK_ROWS if check_rows is None else check_rows
    if check_rows < 0:
        raise SystemExit("eqc bench: --check-rows must be >= 0 (0: the whole batch)")
    problems = [PROBLEMS[p] for p in _select(args.problems, PROBLEMS, "problem")]
    explicit = args.impls is not None
    wanted = _select(args.impls, IMPLS, "implementation")
    notes = []
    if cpu:
        notes.append(f"CPU run (batch {batch}): these are not the suite's numbers, which are CUDA at batch 50,000")
        if "eqdsl-triton" in wanted and not explicit:
            wanted.remove("eqdsl-triton")
            notes.append("eqdsl-triton left out: on the CPU it runs in Triton's interpreter, far too slow "
                         "(name it in --impls to run it anyway)")
        elif "eqdsl-triton" in wanted:
            # must be set before triton's first import in this process (see backends/triton/README.md)
            os.environ["TRITON_INTERPRET"] = "1"
            notes.append("eqdsl-triton runs in Triton's interpreter (TRITON_INTERPRET=1): its times are not speed")
    if args.cold_cache:  # first-call times then include code generation and compilation
        import tempfile
        root = tempfile.mkdtemp(prefix="eqdsl-bench-cache-")
        os.environ["EQDSL_CACHE"] = root
        os.environ["TRITON_CACHE_DIR"] = os.path.join(root, "triton-binaries")
        notes.append(f"cold caches: EQDSL_CACHE and TRITON_CACHE_DIR under {root}")
    found, missing = probe(wanted)
    impls = [n for n in wanted if n in found]
    for name in [n for n in impls if cpu and n in CUDA_ONLY and not explicit]:
        impls.remove(name)
        notes.append(f"{name} left out: it runs on CUDA only")

    bandwidth = copy_bandwidth(device)
    meta = {"device": _device_name(device), "device_type": device.type, "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "threads": torch.get_num_threads(), "batch": batch, "dtype": "float32", "tf32": False,
            "warmup": args.warmup, "repeat": args.repeat,
            "timer": "CUDA events" if device.type == "cuda" else "time.perf_counter",
            "copy_bandwidth_GBps": bandwidth / 1e9, "impls": impls, "versions": found, "missing": missing,
            "notes": notes, "check_rows": min(batch, check_rows or batch), "rtol": RTOL}
    print(f"eqc bench: {meta['device']}, batch {batch}, {', '.join(impls) or 'no implementation'}", flush=True)
    double = not getattr(args, "no_double", False)
    tune_candidates = getattr(args, "tune_candidates", None)
    if tune_candidates is not None and tune_candidates < 0:
        raise SystemExit("eqc bench: --tune-candidates must be >= 0")
    if tune_candidates is not None:
        notes.append("eqdsl-triton: " + ("launch configuration not tuned (defaults)" if tune_candidates == 0 else
                                         f"tuned over the first {tune_candidates} autotuning candidates only"))
    meta["double_backward"] = double
    conv = getattr(args, "conv", False)
    if conv:
        nodes = getattr(args, "nodes", None) or max(2, batch // convolution.DEGREE)
        if nodes < 2:
            raise SystemExit("eqc bench: --nodes must be at least 2")
        meta["conv"] = {"nodes": nodes, "edges": batch}
        if getattr(args, "check_rows", None) is not None:
            notes.append("--check-rows has no effect with --conv: convolutions are verified on their own small graph")
        entries = [convolution.run_problem(p, impls, device, batch, nodes, args.warmup, args.repeat, bandwidth,
                                            double=double, tune_candidates=tune_candidates) for p in problems]
    else:
        entries = [run_problem(p, impls, device, batch, args.warmup, args.repeat, bandwidth, double=double,
                               tune_candidates=tune_candidates, check_rows=check_rows) for p in problems]
    _write({"meta": meta, "problems": entries}, args)
    return 0
