"""`eqc bench --conv` (benchmarks/conv.py): graphs, floors, adapters verified, the command end to end."""
import json
import subprocess
import sys

import pytest
import torch

from eqdsl.benchmarks import conv, suite
from eqdsl.benchmarks.verify import verify

CPU = torch.device("cpu")


def test_graph_is_symmetric_without_self_loops_and_seeded():
    src, dst = conv.graph(10, 40, CPU)
    assert src.shape == dst.shape == (40,) and src.dtype == torch.int64
    assert bool((src != dst).all()) and int(src.max()) < 10 and int(src.min()) >= 0
    pairs = sorted(zip(src.tolist(), dst.tolist()))
    assert pairs == sorted(zip(dst.tolist(), src.tolist()))  # every edge has its reverse
    again = conv.graph(10, 40, CPU)
    assert torch.equal(again[0], src) and torch.equal(again[1], dst)
    s, d = conv.graph(3, 7, CPU)  # odd: one extra directed edge
    assert len(s) == 7 and bool((s != d).all())
    with pytest.raises(ValueError, match="at least 2 nodes"):
        conv.graph(1, 4, CPU)


def test_floor_hand_computed():
    desc = suite.descriptor(suite.PROBLEMS["mace-medium"])  # 512 -> 2432 wide, 16 wide edge features
    d1, d2, do, w = desc.irreps_in1.dim, desc.irreps_in2.dim, desc.irreps_out.dim, desc.weight_numel
    fwd = 4 * (10 * d1 + 100 * d2 + 100 * w + 10 * do) + 2 * 100 * 8
    assert conv.floor_bytes(desc, 10, 100, False) == fwd
    assert conv.floor_bytes(desc, 10, 100, False, True) == \
        fwd + 4 * (2 * 10 * d1 + 2 * 100 * d2 + 2 * 100 * w + 10 * do) + 2 * 100 * 8
    assert conv.floor_bytes(desc, 10, 100, True, index_bytes=4) == \
        4 * (10 * d1 + 100 * d2 + w + 10 * do) + 2 * 100 * 4


@pytest.mark.parametrize("pid", ["mace-medium", "fc-shared-L2"])
def test_unfused_adapters_verify_and_a_wrong_scatter_is_caught(pid):
    pytest.importorskip("e3nn")
    p = suite.PROBLEMS[pid]
    desc = suite.descriptor(p)
    src, dst = conv.graph(conv.CHECK_NODES, conv.CHECK_EDGES, CPU, seed=1)
    ref = conv.BUILDERS["eqdsl-reference"](desc, p.shared, CPU, src, dst, conv.CHECK_NODES).fn
    x1 = torch.randn(conv.CHECK_NODES, desc.irreps_in1.dim)
    x2 = torch.randn(conv.CHECK_EDGES, desc.irreps_in2.dim)
    w = torch.randn(*(() if p.shared else (conv.CHECK_EDGES,)), desc.weight_numel)
    good = conv.BUILDERS["e3nn"](desc, p.shared, CPU, src, dst, conv.CHECK_NODES)
    r = verify(good, ref, x1, x2, w, desc.irreps_out, double=True)
    assert r["verified"] and r["double_verified"] and r["check"] == "exact"
    swapped = conv.BUILDERS["e3nn"](desc, p.shared, CPU, dst, src, conv.CHECK_NODES)  # src <-> dst
    assert not verify(swapped, ref, x1, x2, w, desc.irreps_out)["verified"]


def test_cli_conv(tmp_path):
    pytest.importorskip("e3nn")
    out_json, out_md = tmp_path / "c.json", tmp_path / "c.md"
    cmd = [sys.executable, "-m", "eqdsl.cli", "bench", "--conv", "--device", "cpu", "--batch", "64", "--nodes", "9",
           "--problems", "fc-shared-L2,mace-medium", "--impls", "eqdsl-reference,e3nn", "--repeat", "1",
           "--warmup", "0", "--json", str(out_json), "--markdown", str(out_md)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out_json.read_text())
    assert report["meta"]["conv"] == {"nodes": 9, "edges": 64}
    for entry in report["problems"]:
        assert entry["nodes"] == 9 and entry["edges"] == 64
        for r in entry["results"]:
            assert r["verified"] is True and r["double_verified"] is True and r["fwd_bwd2_ms"] > 0, r
    md = out_md.read_text()
    assert md.startswith("# eqdsl convolution benchmark") and "64 edges into 9 nodes" in md
