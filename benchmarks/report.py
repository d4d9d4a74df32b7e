"""The report of a run: the markdown table, and eqdsl's Triton kernels against the best anchor and the floor.

The suite's targets (``../shared/bench/suite.md`` and the Triton issue): on every problem, forward and
forward+backward at or below the best anchor measured in the same run; on the uvu problems, forward
within 1.5x of the memory floor.  Only verified results count: an anchor whose values or gradients
disagree with the float64 reference is no anchor, and an unverified eqdsl row meets no target.
"""
from __future__ import annotations

from typing import Optional

EQDSL = "eqdsl-triton"
ANCHORS = ("e3nn", "cuequivariance", "openequivariance")
METRICS = (("fwd_ms", "fwd"), ("fwd_bwd_ms", "fwd+bwd"), ("fwd_bwd2_ms", "fwd+bwd+2nd"))
FLOOR_TARGET = 1.5  # forward over the memory floor, uvu problems


def _counts(r: dict, key: str) -> bool:
    """Whether result `r` may be compared on metric `key`: verified (second derivatives too for the 2nd)."""
    if r.get(key) is None or r.get("verified") is not True:
        return False
    return key != "fwd_bwd2_ms" or r.get("double_verified") is True


def best_anchor(entry: dict, key: str) -> Optional[tuple[str, float]]:
    """(anchor, ms): the fastest verified anchor of a problem on metric `key`, None when there is none."""
    times = [(r[key], r["impl"]) for r in entry["results"] if r["impl"] in ANCHORS and _counts(r, key)]
    return (min(times)[1], min(times)[0]) if times else None


def summarize(entry: dict) -> Optional[dict]:
    """eqdsl-triton on one problem: its time over the best anchor's per metric, over the floor, and
    which targets it misses; None when the problem has no eqdsl-triton row."""
    r = next((r for r in entry["results"] if r["impl"] == EQDSL), None)
    if r is None:
        return None
    out = {"id": entry["id"], "mode": entry["mode"], "verified": r.get("verified") is True,
           "error": r.get("error"), "vs_anchor": {}, "vs_floor": {}, "missed": []}
    if not out["verified"]:
        out["missed"].append("not verified")
        return out
    out["measured"] = [label for key, label in METRICS if _counts(r, key)]
    for key, label in METRICS:
        best = best_anchor(entry, key)
        if best is not None and _counts(r, key):
            out["vs_anchor"][label] = (r[key] / best[1], best[0])
    for key, floor in (("fwd_ms", "floor_ms"), ("fwd_bwd_ms", "floor_fwd_bwd_ms")):
        if r.get(key) is not None and entry.get(floor):
            out["vs_floor"][key] = r[key] / entry[floor]
    for label in ("fwd", "fwd+bwd"):
        ratio = out["vs_anchor"].get(label)
        if ratio is not None and ratio[0] > 1.0:
            out["missed"].append(f"{label} {_x(ratio[0])} {ratio[1]}")
    if entry["mode"] == "uvu" and out["vs_floor"].get("fwd_ms", 0.0) > FLOOR_TARGET:
        out["missed"].append(f"fwd {_x(out['vs_floor']['fwd_ms'])} floor")
    return out


def _x(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:.0f}x"


def format_summary(report: dict) -> str:
    """A markdown table of eqdsl-triton against the best anchor and the floor ("" without eqdsl-triton rows)."""
    rows = [s for s in (summarize(e) for e in report["problems"]) if s is not None]
    if not rows:
        return ""
    lines = [f"## {EQDSL} against the best verified anchor and the memory floor",
             "",
             f"Time over the best anchor's (which one in brackets; below 1 is faster) and over the floor. Targets: "
             f"fwd and fwd+bwd at most 1x the best anchor on every problem, fwd at most {FLOOR_TARGET}x the floor "
             "on the uvu problems.",
             "",
             "| problem | fwd | fwd+bwd | fwd+bwd+2nd | fwd / floor | fwd+bwd / floor | targets |",
             "|---|---|---|---|---|---|---|"]
    for s in rows:
        if not s["verified"]:
            cells = [""] * 5 + ["missed: not verified" + (f" ({s['error'][:80]})" if s["error"] else "")]
        else:
            cells = [f"{_x(s['vs_anchor'][m][0])} ({s['vs_anchor'][m][1]})" if m in s["vs_anchor"] else
                     "no anchor" if m in s["measured"] else "" for _, m in METRICS]
            cells += [_x(s["vs_floor"][k]) if k in s["vs_floor"] else "" for k in ("fwd_ms", "fwd_bwd_ms")]
            cells.append("met" if not s["missed"] else "missed: " + "; ".join(s["missed"]))
        lines.append(f"| {s['id']} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- the table of a run

def _header(meta: dict) -> str:
    anchors = "; ".join([f"{k} {v}" for k, v in meta["versions"].items()] +
                        [f"{k} MISSING ({v})" for k, v in meta["missing"].items()])
    conv = meta.get("conv")
    size = (f"message-passing convolution over {conv['edges']} edges into {conv['nodes']} nodes (random "
            "symmetric graph, unsorted)" if conv else f"batch {meta['batch']}")
    checked = "a graph of 8 nodes and 48 edges" if conv else f"{meta['check_rows']} rows"
    lines = [
        f"- device: {meta['device']}; torch {meta['torch']}" + (f", CUDA {meta['cuda']}" if meta["cuda"] else "")
        + f"; {meta['threads']} torch threads",
        f"- implementations: {anchors or 'none'}",
        f"- {size}, float32, TF32 off, median of {meta['repeat']} after {meta['warmup']} warm-ups "
        f"({meta['timer']}); verified: values and x1/x2/weight gradients on {checked} against "
        f"the float64 eqdsl reference, max relative error <= {meta['rtol']}"
        + ("; 2nd: the second derivatives d<v, grad>/d(x1, x2, w) likewise; fwd+bwd+2nd times the forward, the "
           "gradients with create_graph and their gradients (force training)" if meta.get("double_backward") else ""),
        f"- copy bandwidth {meta['copy_bandwidth_GBps']:.0f} GB/s (read + write); floor = bytes that must move / "
        "bandwidth (fwd: inputs, weights, output" + ("; node features in and out, edge features, weights, both "
                                                     "indices; no per-edge messages" if conv else "")
        + "; fwd+bwd adds the backward's reads and writes)",
    ] + [f"- note: {n}" for n in meta["notes"]]
    return "\n".join(lines)


def _ms(v) -> str:
    return "" if v is None else f"{v:.3g}"


def format_markdown(report: dict) -> str:
    rows = ["| problem | impl | verified | fwd ms | fwd+bwd ms | fwd+bwd+2nd ms | first fwd ms | first fwd+bwd ms "
            "| fwd+bwd peak MB | note |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for e in report["problems"]:
        rows.append(f"| {e['id']} | floor | | {_ms(e['floor_ms'])} | {_ms(e['floor_fwd_bwd_ms'])} | | | | | "
                    f"{e['floor_bytes'] / 1e6:.1f} / {e['floor_fwd_bwd_bytes'] / 1e6:.1f} MB |")
        for r in e["results"]:
            if "verified" in r:
                ok = "yes" if r["verified"] else "NO"
                ver = f"{ok} ({r['check']}, {r['max_rel_err']:.1e})"
            else:
                ver = "NO"
            if "double_verified" in r:
                ver += f"; 2nd: {'yes' if r['double_verified'] else 'NO'} ({r['double_max_rel_err']:.1e})"
            note = r.get("error") or r.get("note", "")
            if "double_error" in r:
                note += f" 2nd derivatives: {r['double_error']}"
            if "scales" in r:
                note += f" scales {r['scales']}"
            if "tuning" in r:
                t = r["tuning"]
                note += f" launch config {t.get('config')} ({t.get('source')}"
                note += f", tuned in {t['tune_s']:.1f} s)" if isinstance(t.get("tune_s"), (int, float)) else ")"
            rows.append(f"| {e['id']} | {r['impl']} | {ver} | {_ms(r.get('fwd_ms'))} | {_ms(r.get('fwd_bwd_ms'))} | "
                        f"{_ms(r.get('fwd_bwd2_ms'))} | {_ms(r.get('first_fwd_ms'))} | {_ms(r.get('first_fwd_bwd_ms'))} | "
                        f"{_ms(r.get('fwd_bwd_peak_mb'))} | {note.replace('|', '/')} |")
    title = "convolution" if report["meta"].get("conv") else "tensor-product"
    summary = format_summary(report)
    return (f"# eqdsl {title} benchmark\n\n" + _header(report["meta"]) + "\n\n" + "\n".join(rows) + "\n"
            + ("\n" + summary if summary else ""))
