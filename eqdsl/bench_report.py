"""Reading `eqc bench` reports: eqdsl's Triton kernels against the best anchor and the memory floor,
and several runs' reports merged into one (``eqc bench --merge``).

The suite's targets (``../shared/bench/suite.md`` and the Triton issue): on every problem, forward and
forward+backward at or below the best anchor measured in the same run; on the uvu problems, forward
within 1.5x of the memory floor.  Only verified results count: an anchor whose values or gradients
disagree with the float64 reference is no anchor, and an unverified eqdsl row meets no target.

Merging: a GPU run of the whole suite may not fit one session (uvu-L6's kernels take minutes to
compile and tune), so ``eqc bench --problems ...`` can run in parts and ``--merge`` renders the
parts as one table.  Each problem's rows still come from one run (the anchors of a problem are
always measured beside eqdsl in the same process); the parts must agree on the device, the batch,
the library versions and the timing settings, and no problem may appear twice.
"""
from __future__ import annotations

import json
from typing import Optional, Sequence

EQDSL = "eqdsl-triton"
ANCHORS = ("e3nn", "cuequivariance", "openequivariance")
METRICS = (("fwd_ms", "fwd"), ("fwd_bwd_ms", "fwd+bwd"), ("fwd_bwd2_ms", "fwd+bwd+2nd"))
FLOOR_TARGET = 1.5  # forward over the memory floor, uvu problems

# what the parts of a merged report must share (a table compares numbers measured the same way)
SAME = ("device", "device_type", "batch", "dtype", "tf32", "timer", "torch", "cuda", "double_backward", "conv",
        "warmup", "repeat", "rtol")


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


# ---------------------------------------------------------------------------- merging the parts of a run

class ReportError(ValueError):
    """A report that cannot be read or merged; the message names the file and the field."""


def load(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
    except OSError as err:
        raise ReportError(f"{path}: cannot read it ({err.strerror or err})") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}:{err.lineno}:{err.colno}: not JSON ({err.msg})") from None
    if not (isinstance(report, dict) and isinstance(report.get("meta"), dict)
            and isinstance(report.get("problems"), list)):
        raise ReportError(f"{path}: not an `eqc bench --json` report (no meta and problems)")
    missing = [k for k in SAME + ("versions", "missing", "notes", "impls")
               if k not in report["meta"] and k != "conv"]  # "conv" only in convolution reports
    if missing:
        raise ReportError(f"{path}: the report's meta lacks {', '.join(missing)} (written by another version of "
                          "eqc bench?)")
    return report


def merge(reports: Sequence[dict], names: Sequence[str], order: Sequence[str] = ()) -> dict:
    """One report from the parts of a run: `names` name the parts in messages; problems in `order`
    (the suite's), then any others in the order met."""
    if not reports:
        raise ReportError("nothing to merge")
    first, first_name = reports[0]["meta"], names[0]
    for report, name in zip(reports[1:], names[1:]):
        for key in SAME:
            if report["meta"].get(key) != first.get(key):
                raise ReportError(f"{name}: {key} is {report['meta'].get(key)!r}, {first_name} has "
                                  f"{first.get(key)!r}: the parts of one table must be measured the same way")
    versions: dict = {}
    where: dict = {}
    for report, name in zip(reports, names):
        for impl, version in report["meta"]["versions"].items():
            if impl in versions and versions[impl] != version:
                raise ReportError(f"{name}: {impl} {version}, {where[impl]} has {versions[impl]}")
            versions.setdefault(impl, version)
            where.setdefault(impl, name)
    seen: dict = {}
    problems = []
    for report, name in zip(reports, names):
        for entry in report["problems"]:
            if entry["id"] in seen:
                raise ReportError(f"{name}: problem {entry['id']} is also in {seen[entry['id']]}; each problem's "
                                  "rows must come from one run")
            seen[entry["id"]] = name
            problems.append(entry)
    rank = {pid: i for i, pid in enumerate(order)}
    problems.sort(key=lambda e: rank.get(e["id"], len(rank)))
    meta = dict(first)
    meta["versions"] = versions
    meta["impls"] = [i for i in dict.fromkeys(i for r in reports for i in r["meta"]["impls"])]
    meta["missing"] = {k: v for r in reports for k, v in r["meta"]["missing"].items() if k not in versions}
    notes = list(dict.fromkeys(n for r in reports for n in r["meta"]["notes"]))
    bandwidths = [r["meta"].get("copy_bandwidth_GBps") for r in reports]
    if len(reports) > 1:
        notes.append(f"merged from {len(reports)} runs ({', '.join(names)}); each problem's rows come from one "
                     "run, with that run's copy bandwidth for its floor (" +
                     ", ".join(f"{b:.0f}" for b in bandwidths if b is not None) + " GB/s)")
    meta["notes"] = notes  # the header's copy bandwidth is the first part's; the note lists each part's
    return {"meta": meta, "problems": problems}
