"""`eqc bench --strategies`: tensor-product strategies beside e3nn's Clebsch-Gordan product over the same paths.

For every L in --lmax (default 1..8): C channels (--channels, default 16) of the degrees 0..L of natural parity
(0e + 1o + 2e + ...) times one channel of the same degrees (edge harmonics), into C channels of 0..L.  The
paths are the Gaunt product's, |l1 - l2| <= l3 <= l1 + l2 with l1 + l2 + l3 even; e3nn runs them as a
channelwise (uvu) o3.TensorProduct with shared weights, eqdsl's Gaunt product by each algorithm with its
shared weights.  Times are medians of --repeat calls, forward, and forward + backward (gradients of the
inputs and the weights).  The Gaunt algorithms are first checked against each other (the same numbers), and
the cost model's choice (`algorithm = auto`) is reported beside the fastest measured.  With --rank R the
CP low-rank products of rank R over the same paths are timed too (per path, and of the whole table with
path-weight sharing), with their largest table residuals (it is a
different, approximately equivariant operation: residual 0 only at or above each table's CP rank).
"""
from __future__ import annotations

import statistics

import torch

from eqdsl.ir import cost, gaunt_rules

from .timing import measure

ALGORITHMS = gaunt_rules.ALGORITHMS


def _plan(L: int, channels: int) -> dict:
    ls = tuple(range(L + 1))
    return {"la": ls, "lb": ls, "lo": ls, "channels": channels, "b_channels": 1}


def _irreps(L: int, mul: int) -> str:
    return "+".join(f"{mul}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(L + 1))


def _e3nn(L: int, channels: int):
    from e3nn import o3

    ls = list(range(L + 1))
    paths = [(l1, l2, l3, "uvu", True) for l1 in ls for l2 in ls for l3 in ls
             if abs(l1 - l2) <= l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == 0]
    return o3.TensorProduct(_irreps(L, channels), _irreps(L, 1), _irreps(L, channels), paths,
                            internal_weights=True, shared_weights=True), len(paths)


def _low_rank(L: int, channels: int, rank: int, share_paths: bool = False):
    """eqdsl's CP low-rank channelwise product over the same paths (per path, or of the whole table with
    path-weight sharing), shared weights."""
    from eqdsl.backends.reference.low_rank import LowRankProduct, SharedPathProduct
    from eqdsl.groups import GROUPS
    from eqdsl.reps import tp as tpd
    from eqdsl.reps.irreps import Irreps

    g = GROUPS["O3"]
    in1, in2 = Irreps.parse(_irreps(L, channels), g), Irreps.parse(_irreps(L, 1), g)
    raw = [(l1, l2, l3, "uvu", True) for l1 in range(L + 1) for l2 in range(L + 1) for l3 in range(L + 1)
           if abs(l1 - l2) <= l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == 0]
    kind = SharedPathProduct if share_paths else LowRankProduct
    return kind(tpd.build(in1, in2, in1, raw), rank, shared_weights=True)


def _timed(fn_of, inputs, device, warmup, repeat) -> tuple[float, float]:
    """(forward ms, forward + backward ms), medians."""
    a, b = inputs

    def forward():
        with torch.no_grad():
            fn_of(a, b)

    grad = None

    def both():
        nonlocal grad
        out = fn_of(a, b)
        if grad is None:
            grad = torch.randn_like(out)
        out.backward(grad)

    return (statistics.median(measure(forward, device, warmup, repeat)),
            statistics.median(measure(both, device, warmup, repeat)))


def run(lmaxes, channels: int, batch: int, device: torch.device, warmup: int, repeat: int,
        with_e3nn: bool = True, rank: int = 0) -> list[dict]:
    from eqdsl.backends.reference.gaunt import GauntProduct

    rows = []
    for L in lmaxes:
        torch.manual_seed(L)
        d = (L + 1) ** 2
        a = torch.randn(batch, channels * d, device=device, requires_grad=True)
        b = torch.randn(batch, d, device=device, requires_grad=True)
        plan = _plan(L, channels)
        row = {"L": L, "channels": channels, "batch": batch, "ms": {},
               "auto": cost.cheapest_gaunt(plan),
               "flops": {alg: cost.gaunt(plan, alg)["flops"] for alg in ALGORITHMS}}
        values = {}
        for alg in ALGORITHMS:
            layer = GauntProduct(plan["la"], plan["lb"], plan["lo"], channels, 1, alg, shared_weights=True).to(device)
            with torch.no_grad():
                layer.weight.copy_(torch.linspace(-1.0, 1.0, layer.weight.numel()))
                values[alg] = layer(a[:64], b[:64]).double()
            row["ms"][f"gaunt-{alg}"] = _timed(layer, (a, b), device, warmup, repeat)
        scale = float(values["dense"].abs().max())
        row["agreement"] = max(float((values[alg] - values["dense"]).abs().max()) / scale for alg in ALGORITHMS)
        if rank:
            layer = _low_rank(L, channels, rank).to(device)
            row["ms"][f"cp-rank-{rank}"] = _timed(layer, (a, b), device, warmup, repeat)
            shared = _low_rank(L, channels, rank, share_paths=True).to(device)
            row["ms"][f"cp-shared-rank-{rank}"] = _timed(shared, (a, b), device, warmup, repeat)
            row["cp_residual"] = (max(layer.residuals), max(shared.residuals))
        if with_e3nn:
            tp, row["paths"] = _e3nn(L, channels)
            row["ms"]["e3nn-cg"] = _timed(tp.to(device), (a, b), device, warmup, repeat)
        rows.append(row)
    return rows


def table(rows: list[dict], device_name: str, repeat: int) -> str:
    names = list(rows[0]["ms"])
    lines = [f"Tensor-product strategies, float32, {device_name}; {rows[0]['channels']} channels of degrees 0..L times "
             f"one channel of 0..L into {rows[0]['channels']} channels of 0..L, the Gaunt product's paths (l1 + l2 + l3 "
             f"even), batch {rows[0]['batch']}, medians of {repeat} calls, ms forward / forward + backward:", "",
             "| L | paths | " + " | ".join(names) + " | e3nn / best Gaunt (fwd+bwd) | auto | agreement |"
             + (" CP residual (per path, shared) |" if "cp_residual" in rows[0] else ""),
             "|---" * (len(names) + 5 + ("cp_residual" in rows[0])) + "|"]
    for r in rows:
        cells = [f"{r['ms'][n][0]:.2f} / {r['ms'][n][1]:.2f}" for n in names]
        best = min(v[1] for n, v in r["ms"].items() if n.startswith("gaunt-"))
        ratio = f"{r['ms']['e3nn-cg'][1] / best:.1f}x" if "e3nn-cg" in r["ms"] else "-"
        lines.append(f"| {r['L']} | {r.get('paths', '-')} | " + " | ".join(cells) + f" | {ratio} | {r['auto']} | "
                     f"{r['agreement']:.1e} |" + (f" {r['cp_residual'][0]:.1e}, {r['cp_residual'][1]:.1e} |" if "cp_residual" in r else ""))
    overtakes = []
    if "e3nn-cg" in names:
        for n in names:
            if n != "e3nn-cg":
                at = next((r["L"] for r in rows if r["ms"][n][1] < r["ms"]["e3nn-cg"][1]), None)
                overtakes.append(f"{n}: L = {at}" if at is not None else f"{n}: never up to L = {rows[-1]['L']}")
        lines += ["", "Forward + backward faster than e3nn's CG from: " + "; ".join(overtakes)]
    return "\n".join(lines)


def plot(rows: list[dict], path: str) -> str:
    from eqdsl.extras import missing_package
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError as err:
        raise SystemExit(missing_package(err.name, "eqc bench --strategies --plot", extra="plots")) from None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name in rows[0]["ms"]:
        ax.plot([r["L"] for r in rows], [r["ms"][name][1] for r in rows], marker="o", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("L (degrees 0..L in every input and the output)")
    ax.set_ylabel("forward + backward, ms (log)")
    ax.set_title(f"Gaunt product vs Clebsch-Gordan, {rows[0]['channels']} channels, batch {rows[0]['batch']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"wrote {path}"
