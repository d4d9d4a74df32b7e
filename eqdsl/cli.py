"""`eqc`: compile, check and explain .eq specs."""
from __future__ import annotations

import argparse
import sys

from .version import __version__
from .codes import CODES, WARNINGS, explain


def _overrides(items) -> dict:
    out = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        if not sep or not name.isidentifier():
            raise SystemExit(f"eqc: -D expects NAME=VALUE, got `{item}`")
        low = raw.strip().lower()
        if low in ("true", "false"):
            out[name] = low == "true"
            continue
        try:
            out[name] = int(raw)
        except ValueError:
            try:
                out[name] = float(raw)
            except ValueError:
                raise SystemExit(f"eqc: -D {name}: `{raw}` is not a number or boolean") from None
    return out


def _front_end(args):
    from .compiler import check_file
    from .diagnostics import render_all

    result = check_file(args.spec, overrides=_overrides(args.define))
    if not result.ok:
        print(render_all(result.diagnostics, result.sources), file=sys.stderr)
        return None
    if result.diagnostics:  # warnings only
        print(render_all(result.diagnostics, result.sources), file=sys.stderr)
    return result


def cmd_compile(args) -> int:
    import time

    t0 = time.perf_counter()
    result = _front_end(args)
    if result is None:
        return 1
    elapsed = time.perf_counter() - t0
    if args.emit == "ir":
        from .ir.printer import format_model
        text = "\n\n".join(format_model(m) for m in result.models) + "\n"
    else:
        from .codegen import generate_source
        text = generate_source(result, command=_regen_command(args))
    if args.report:  # beside the module: on standard error when the module goes to standard output
        from .ir.cost import format_report
        print("\n\n".join(format_report(m) for m in result.models), file=sys.stdout if args.output else sys.stderr)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        names = ", ".join(m.name for m in result.models)
        print(f"eqc: {args.spec}: {names} -> {args.output} (front end {elapsed * 1000:.0f} ms)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _regen_command(args) -> str:
    parts = ["eqc compile", args.spec]
    for d in args.define or []:
        parts.append(f"-D {d}")
    if args.output:
        from .check.loader import display_path
        from pathlib import Path
        shown = display_path(Path(args.output))
        parts.append(f"-o {shown if not Path(shown).is_absolute() else Path(shown).name}")
    return " ".join(parts)


def cmd_check(args) -> int:
    result = _front_end(args)
    if result is None:
        return 1
    from .testing import check_models
    return check_models(result, args)


def cmd_explain(args) -> int:
    if args.code is None:
        for code, (title, _) in {**CODES, **WARNINGS}.items():
            print(f"{code}  {title}")
        return 0
    text = explain(args.code)
    if text is None:
        print(f"eqc: unknown code `{args.code}` (eqc explain lists them)", file=sys.stderr)
        return 2
    print(text)
    return 0


def cmd_export(args) -> int:
    if _front_end(args) is None:
        return 1
    from pathlib import Path

    import torch

    from . import checkpoint
    from .diagnostics import CompileError
    from .export import ExportError, export_potential

    if not Path(args.checkpoint).is_file():
        print(f"eqc: {args.checkpoint}: no such checkpoint", file=sys.stderr)
        return 1
    try:
        model = checkpoint.load(args.checkpoint, spec=args.spec, model_name=args.model,
                                dtype=getattr(torch, args.dtype) if args.dtype else None)
        path = export_potential(model.eval(), args.output, format=args.format)
    except (checkpoint.CheckpointMismatch, ExportError) as err:
        print(f"eqc: {err}", file=sys.stderr)
        return 1
    except CompileError as err:  # the spec with the compile-time parameters the checkpoint was saved with
        print(f"eqc: {args.checkpoint}: the spec does not compile with the checkpoint's parameters:\n{err}", file=sys.stderr)
        return 1
    print(f"eqc: {args.spec}: {type(model).__name__} ({args.checkpoint}) -> {path} ({args.format})", file=sys.stderr)
    return 0


def cmd_nero(args) -> int:
    result = _front_end(args)
    if result is None:
        return 1
    import torch

    from . import checkpoint
    from .api import CompiledSpec
    from .codegen import generate_source
    from .nero import NeroError, equivariance_along, plot, rotation_path, write_json

    if args.weights is not None and args.define:
        print("eqc: --weights rebuilds the model the checkpoint was saved from; leave out -D", file=sys.stderr)
        return 2
    try:
        if args.weights is not None:
            model = checkpoint.load(args.weights, spec=args.spec, model_name=args.model, dtype=torch.float64)
        else:
            torch.manual_seed(args.seed)
            model = CompiledSpec(result, generate_source(result)).model_class(args.model)().double()
        group = type(model).GROUP
        soft = dict(getattr(type(model), "SOFT_GROUPS", ()))
        if args.soft is not None:  # sweep a symmetry the model only approximately has
            if args.soft not in soft:
                known = ", ".join(soft) or "none"
                raise NeroError(f"{type(model).__name__} has no soft group `{args.soft}` (its soft groups: {known})")
            group = soft[args.soft]
        try:
            path = rotation_path(group, steps=args.steps, axis=args.axis)
        except NeroError as err:
            hint = f"; sweep a soft group instead: --soft {next(iter(soft))}" if soft and args.soft is None else ""
            raise NeroError(f"{err}{hint}") from None
        nero = equivariance_along(model.eval(), path, seed=args.seed)
        nero.meta.update({"spec": args.spec, "model": type(model).__name__, "weights": args.weights})
        if args.json:
            write_json(nero, args.json)
        if args.output:
            plot(nero, args.output, title=f"{type(model).__name__} ({args.spec}): {path.description}")
    except (NeroError, checkpoint.CheckpointMismatch, ValueError) as err:
        print(f"eqc: {err}", file=sys.stderr)
        return 1
    for name, values in nero.errors.items():
        measured = [v for v in values if v is not None]
        if measured:
            worst = max(measured)
            at = path.angles_deg[values.index(worst)]
            print(f"  {name:<16} largest relative error {worst:.2e} at {at:g} degrees, smallest {min(measured):.2e}")
        else:
            print(f"  {name:<16} not measured (an image output)")
    written = [p for p in (args.output, args.json) if p]
    print(f"eqc: {args.spec}: {path.description}" + (f" -> {', '.join(written)}" if written else ""), file=sys.stderr)
    return 0


def cmd_bench(args) -> int:
    from .benchmarks.command import run  # torch and the benchmark package only when benchmarking
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="eqc", description="Compile equivariant network specs (.eq) to PyTorch.")
    p.add_argument("--version", action="version", version=f"eqc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="type-check a spec and generate a PyTorch module (or print its IR)")
    c.add_argument("spec")
    c.add_argument("-o", "--output", help="write here instead of standard output")
    c.add_argument("--emit", choices=["torch", "ir"], default="torch", help="what to produce (default: torch)")
    c.add_argument("--report", action="store_true",
                   help="print per layer: operation, algorithm, parameters, FLOPs and bytes per row, the kernel it runs")
    c.add_argument("-D", "--define", action="append", metavar="NAME=VALUE", help="override a const or model parameter")
    c.set_defaults(func=cmd_compile)

    k = sub.add_parser("check", help="compile, then test equivariance numerically in float64")
    k.add_argument("spec")
    k.add_argument("-D", "--define", action="append", metavar="NAME=VALUE", help="override a const or model parameter")
    k.add_argument("--trials", type=int, default=3, help="random group elements to try (default 3)")
    k.add_argument("--tol", type=float, default=1e-9, help="largest relative error accepted (default 1e-9)")
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--backend", choices=["reference", "triton"], default="reference",
                   help="tensor-product backend to check (triton without CUDA runs in Triton's interpreter)")
    k.set_defaults(func=cmd_check)

    e = sub.add_parser("explain", help="explain a diagnostic code, or list them all")
    e.add_argument("code", nargs="?")
    e.set_defaults(func=cmd_explain)

    x = sub.add_parser("export", help="write a potential with trained weights as a TorchScript, torch.export or "
                       "AOTInductor file (energy, forces, virial)")
    x.add_argument("spec")
    x.add_argument("--checkpoint", required=True, help="the weights (eqdsl.checkpoint.save)")
    x.add_argument("-o", "--output", required=True, help="the file to write")
    x.add_argument("--format", choices=["torchscript", "export", "aoti"], default="export",
                   help="torchscript, torch.export program (default) or AOTInductor package (needs a C++ compiler)")
    x.add_argument("--dtype", choices=["float32", "float64"], help="default: the checkpoint's")
    x.add_argument("--model", help="which model of the spec (default: the checkpoint's)")
    x.set_defaults(func=cmd_export, define=None)

    n = sub.add_parser("nero", help="plot each output's equivariance error along a path of rotations (NERO)")
    n.add_argument("spec")
    n.add_argument("-o", "--output", help="the plot (PNG; needs matplotlib)")
    n.add_argument("--json", help="the angles and errors as JSON")
    n.add_argument("--weights", help="a checkpoint (eqdsl.checkpoint.save); default: random weights from --seed")
    n.add_argument("--model", help="which model of the spec (default: the only one)")
    n.add_argument("--steps", type=int, default=73, help="angles from 0 to 360 degrees (default 73: every 5)")
    n.add_argument("--axis", choices=["x", "y", "z"], default="z", help="rotation axis for O3/SO3 (default z)")
    n.add_argument("--soft", metavar="GROUP", help="sweep this soft group (`soft group GROUP` of the spec) instead")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("-D", "--define", action="append", metavar="NAME=VALUE", help="override a const or model parameter")
    n.set_defaults(func=cmd_nero)

    b = sub.add_parser("bench", help="time the tensor-product benchmark suite (eqdsl and the anchors installed)")
    b.add_argument("--batch", type=int, help="rows (edges); default 50000 on CUDA, 2000 on the CPU")
    b.add_argument("--problems", help="comma-separated problem ids (default: all six)")
    b.add_argument("--impls", help="comma-separated: eqdsl-triton, eqdsl-reference, e3nn, cuequivariance, "
                   "openequivariance (default: every one available)")
    b.add_argument("--repeat", type=int, default=15, help="timed calls, the median is reported (default 15)")
    b.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    b.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda if available, else cpu")
    b.add_argument("--threads", type=int, help="torch.set_num_threads before timing (default: torch's)")
    b.add_argument("--conv", action="store_true",
                   help="time the problems as message-passing convolutions (gather, tensor product, scatter) over "
                        "a random graph with --batch edges")
    b.add_argument("--nodes", type=int, help="--conv: nodes of the graph (default: edges / 16)")
    b.add_argument("--check-rows", type=int, metavar="N",
                   help="rows verified against the float64 reference before timing (default 64; 0: the whole batch)")
    b.add_argument("--no-double", action="store_true",
                   help="skip the second derivatives (verified and timed as fwd+bwd+2nd by default)")
    b.add_argument("--tune-candidates", type=int, metavar="K",
                   help="eqdsl-triton autotunes over the first K candidate launch configurations only "
                        "(0: no tuning, the defaults; default: all)")
    b.add_argument("--cold-cache", action="store_true",
                   help="fresh eqdsl and Triton caches, so first-call times include compilation")
    b.add_argument("--json", metavar="PATH", help="write every measurement as JSON")
    b.add_argument("--markdown", metavar="PATH", help="write the table as markdown")
    b.add_argument("--plot", metavar="PATH", help="bar charts (log scale) per problem; needs matplotlib")
    b.add_argument("--packages", nargs="?", const="all", choices=["all", "nequip", "mace"],
                   help="instead of the suite: specs/nequip.eq and specs/mace.eq beside the nequip and mace-torch "
                        "packages, same weights, energy and forces on an 87-atom cluster and a 256-atom periodic "
                        "cell, --repeat interleaved calls each (default: both packages)")
    b.add_argument("--strategies", action="store_true",
                   help="instead of the suite: the Gaunt product (dense, grid, fourier) beside e3nn's channelwise "
                        "Clebsch-Gordan product over the same paths, for L in --lmax, forward and forward + backward")
    b.add_argument("--lmax", default="1..8", help="--strategies: degrees, A..B or a comma-separated list (default 1..8)")
    b.add_argument("--channels", type=int, default=16, help="--strategies: channels (default 16)")
    b.add_argument("--rank", type=int, default=0,
                   help="--strategies: also the CP low-rank product of this rank over the same paths (default 0: not)")
    b.add_argument("--model", action="store_true",
                   help="time nothing: per problem and workload, the launches of eqdsl's Triton kernels, the bytes "
                        "they move against the memory floor, sector use, atomics, and registers and occupancy "
                        "compiled for sm_90 (no GPU needed; --problems, --batch, default 50000, --conv, --nodes)")
    b.add_argument("--no-compile", action="store_true", help="--model: skip the sm_90 compiles (registers)")
    b.add_argument("--merge", metavar="JSON[,JSON...]",
                   help="run nothing: merge reports saved with --json by runs of other problems on the same device "
                        "and settings into one table (then --json / --markdown / --plot write it)")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`eqc ... | head`): stop quietly, as other command-line tools do
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
    except ModuleNotFoundError as err:
        from .extras import missing_package
        line = missing_package(err.name or "", f"eqc {args.command}")
        if line is None:
            raise
        print(f"eqc: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
