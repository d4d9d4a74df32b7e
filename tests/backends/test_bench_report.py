"""eqc bench reports: eqdsl-triton against the best verified anchor and the floor; merging the parts of a run."""
import json
import subprocess
import sys

import pytest

from eqdsl.benchmarks import merge as bench_merge
from eqdsl.benchmarks import report as bench_report


def result(impl, fwd, fwd_bwd, second=None, verified=True, double_verified=True, **extra):
    r = {"impl": impl, "verified": verified, "fwd_ms": fwd, "fwd_bwd_ms": fwd_bwd, **extra}
    if second is not None:
        r.update(fwd_bwd2_ms=second, double_verified=double_verified)
    return r


def entry(pid="mace-large", mode="uvu", results=(), floor=1.0, floor_fwd_bwd=3.0):
    return {"id": pid, "mode": mode, "floor_ms": floor, "floor_fwd_bwd_ms": floor_fwd_bwd, "results": list(results)}


def test_faster_than_every_anchor_and_near_the_floor_meets_the_targets():
    s = bench_report.summarize(entry(results=[
        result("eqdsl-triton", 1.2, 4.0, 9.0), result("e3nn", 5.0, 20.0, 50.0),
        result("openequivariance", 1.5, 5.0, 10.0), result("cuequivariance", 2.0, 4.5, 8.0)]))
    assert s["missed"] == []
    assert s["vs_anchor"]["fwd"] == (pytest.approx(1.2 / 1.5), "openequivariance")
    assert s["vs_anchor"]["fwd+bwd"] == (pytest.approx(4.0 / 4.5), "cuequivariance")
    assert s["vs_anchor"]["fwd+bwd+2nd"] == (pytest.approx(9.0 / 8.0), "cuequivariance")  # not a target
    assert s["vs_floor"] == {"fwd_ms": pytest.approx(1.2), "fwd_bwd_ms": pytest.approx(4.0 / 3.0)}


def test_each_missed_target_is_named_with_its_ratio():
    s = bench_report.summarize(entry(results=[result("eqdsl-triton", 2.0, 6.0), result("openequivariance", 1.6, 6.6)]))
    assert s["missed"] == ["fwd 1.25x openequivariance", "fwd 2.00x floor"]
    # the floor target is for the uvu problems only
    s = bench_report.summarize(entry("diffdock-L2", "uvw", [result("eqdsl-triton", 2.0, 6.0),
                                                             result("e3nn", 2.5, 7.0)]))
    assert s["missed"] == []


def test_only_verified_anchors_count():
    results = [result("eqdsl-triton", 2.0, 6.0, 12.0), result("e3nn", 1.0, 1.0, 1.0, verified=False),
               result("cuequivariance", 3.0, 8.0, 5.0, double_verified=False),
               {"impl": "openequivariance", "error": "RuntimeError: no CUDA"}]
    s = bench_report.summarize(entry(results=results, floor=2.0))
    assert s["vs_anchor"]["fwd"] == (pytest.approx(2 / 3), "cuequivariance")
    assert "fwd+bwd+2nd" not in s["vs_anchor"]  # cuEquivariance's second derivatives were wrong
    assert s["missed"] == []
    assert bench_report.best_anchor(entry(results=results[:2]), "fwd_ms") is None


def test_an_unverified_eqdsl_row_meets_nothing():
    s = bench_report.summarize(entry(results=[result("eqdsl-triton", 0.1, 0.1, verified=False),
                                              result("e3nn", 5.0, 9.0)]))
    assert s["missed"] == ["not verified"] and s["vs_anchor"] == {}
    text = bench_report.format_summary({"problems": [entry(results=[
        {"impl": "eqdsl-triton", "error": "OutOfResources: shared memory"}])]})
    assert "| mace-large |" in text and "missed: not verified (OutOfResources: shared memory)" in text


def test_summary_table():
    report = {"problems": [
        entry(results=[result("eqdsl-triton", 1.0, 3.0, 7.0), result("openequivariance", 2.0, 4.0, 8.0)]),
        entry("uvu-L6", results=[result("eqdsl-triton", 1.0, 3.0)], floor=0.5),
        entry("fc-shared-L2", "uvw", results=[result("e3nn", 1.0, 2.0)])]}  # no eqdsl-triton row: left out
    lines = bench_report.format_summary(report).splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| problem")]
    assert rows == [
        "| mace-large | 0.50x (openequivariance) | 0.75x (openequivariance) | 0.88x (openequivariance) | 1.00x | "
        "1.00x | met |",
        "| uvu-L6 | no anchor | no anchor |  | 2.00x | 1.00x | missed: fwd 2.00x floor |"]  # 2nd not measured
    assert bench_report.format_summary({"problems": [report["problems"][2]]}) == ""


def _run_bench(tmp_path, *argv):
    return subprocess.run([sys.executable, "-m", "eqdsl.cli", "bench", *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)


def test_merge_the_parts_of_a_run(tmp_path):
    common = ["--device", "cpu", "--batch", "32", "--impls", "eqdsl-reference", "--repeat", "1", "--warmup", "0",
              "--no-double"]
    for name, pid in (("a.json", "fc-shared-L2"), ("b.json", "mace-medium")):
        r = _run_bench(tmp_path, *common, "--problems", pid, "--json", name)
        assert r.returncode == 0, r.stderr
    r = _run_bench(tmp_path, "--merge", "a.json,b.json", "--json", "all.json", "--markdown", "all.md")
    assert r.returncode == 0, r.stderr
    merged = json.loads((tmp_path / "all.json").read_text())
    assert [e["id"] for e in merged["problems"]] == ["mace-medium", "fc-shared-L2"]  # the suite's order
    assert any("merged from 2 runs (a.json, b.json)" in n for n in merged["meta"]["notes"])
    md = (tmp_path / "all.md").read_text()
    assert "| mace-medium | eqdsl-reference | yes" in md and "| fc-shared-L2 | eqdsl-reference | yes" in md
    assert md == bench_report.format_markdown(merged)

    # parts measured differently, twice the same problem, files that are not reports: errors, no traceback
    r = _run_bench(tmp_path, *common[:2], "--batch", "16", *common[4:], "--problems", "diffdock-L2", "--json", "c.json")
    assert r.returncode == 0, r.stderr
    bad = {"bad.json": "{not json", "other.json": json.dumps({"rows": []})}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    for files, message in (("a.json,c.json", "c.json: batch is 16, a.json has 32"),
                           ("a.json,a.json", "problem fc-shared-L2 is also in a.json"),
                           ("a.json,bad.json", "bad.json:1:2: not JSON"),
                           ("other.json", "other.json: not an `eqc bench --json` report"),
                           ("a.json,gone.json", "gone.json: cannot read it")):
        r = _run_bench(tmp_path, "--merge", files)
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (files, r.stderr)
    r = _run_bench(tmp_path, "--merge", "a.json", "--problems", "uvu-L6")
    assert r.returncode != 0 and "--problems belong to a run" in r.stderr


def test_merge_refuses_other_library_versions():
    meta = {k: None for k in bench_merge.SAME}
    meta.update(versions={"e3nn": "0.6.0"}, missing={}, notes=[], impls=["e3nn"])
    other = dict(meta, versions={"e3nn": "0.5.1"})
    with pytest.raises(bench_merge.ReportError, match="y.json: e3nn 0.5.1, x.json has 0.6.0"):
        bench_merge.merge([{"meta": meta, "problems": []}, {"meta": other, "problems": []}], ["x.json", "y.json"])
