"""Several runs' reports merged into one (``eqc bench --merge``), and reading a saved report.

A GPU run of the whole suite may not fit one session (uvu-L6's kernels take minutes to
compile and tune), so ``eqc bench --problems ...`` can run in parts and ``--merge`` renders the
parts as one table.  Each problem's rows still come from one run (the anchors of a problem are
always measured beside eqdsl in the same process); the parts must agree on the device, the batch,
the library versions and the timing settings, and no problem may appear twice.
"""
from __future__ import annotations

import json
from typing import Sequence

# what the parts of a merged report must share (a table compares numbers measured the same way)
SAME = ("device", "device_type", "batch", "dtype", "tf32", "timer", "torch", "cuda", "double_backward", "conv",
        "warmup", "repeat", "rtol")


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
