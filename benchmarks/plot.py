"""Bar charts of a report (``eqc bench --plot``); needs matplotlib, says so when it is missing."""
from __future__ import annotations


def plot(report: dict, path: str) -> str:
    """One log-scale bar chart per problem: fwd and fwd+bwd per implementation, floors as lines."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "note: matplotlib is not installed; no plot written"
    entries = report["problems"]
    cols = min(3, len(entries)) or 1
    rows = -(-len(entries) // cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, e in zip(axes.flat, entries):
        res = [r for r in e["results"] if r.get("fwd_ms") is not None]
        xs = range(len(res))
        ax.bar([x - 0.27 for x in xs], [r["fwd_ms"] for r in res], 0.27, label="fwd")
        ax.bar(list(xs), [r.get("fwd_bwd_ms") or 0 for r in res], 0.27, label="fwd+bwd")
        ax.bar([x + 0.27 for x in xs], [r.get("fwd_bwd2_ms") or 0 for r in res], 0.27, label="fwd+bwd+2nd")
        ax.axhline(e["floor_ms"], color="C0", ls="--", lw=1, label="floor fwd")
        ax.axhline(e["floor_fwd_bwd_ms"], color="C1", ls="--", lw=1, label="floor fwd+bwd")
        ax.set_xticks(list(xs), [r["impl"] + ("" if r.get("verified") else " (!)") for r in res],
                      rotation=30, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("ms")
        ax.set_title(e["id"])
    for ax in list(axes.flat)[len(entries):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper left", fontsize=7, ncols=4)
    m = report["meta"]
    size = f"conv, {m['conv']['edges']} edges, {m['conv']['nodes']} nodes" if m.get("conv") else f"batch {m['batch']}"
    fig.suptitle(f"{m['device']}, {size}, float32 (unverified results marked (!))", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return f"plot written to {path}"
