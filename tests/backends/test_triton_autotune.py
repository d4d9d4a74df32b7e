"""Autotuning of the Triton tensor product's launch configuration (backends/triton/autotune.py).

The tuner's logic is tested with an injected fake timer (no CUDA needed): it picks the fastest
candidate, writes the cache, a second tuner / a second process reads it and measures nothing,
corrupt entries are re-tuned with a warning, keys separate what they must.  The kernels run in
Triton's interpreter (set up in triton_interpreter.py: TRITON_INTERPRET=1 before triton's first
import): TritonTensorProduct does not tune there, and every candidate config gives the
reference's numbers, so tuning can change speed only.  Problems are tiny: the interpreter is slow.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from triton_interpreter import (  # noqa: F401  (the fixtures apply by being imported here)
    DEVICE, INTERPRET, ROOT, WRONG_MODE, WRONG_MODE_REASON, I, _cache_root, _interpreter, rel, triton,
)

from eqdsl.backends.reference import TensorProduct
from eqdsl.backends.triton import TritonTensorProduct, autotune, kernel_cache, launch
from eqdsl.backends.triton.autotune import CANDIDATES, DEFAULT_CONFIG, Config, Tuner
from eqdsl.groups.o3 import O3
from eqdsl.reps import tp

needs_interpreter = pytest.mark.skipif(WRONG_MODE, reason=WRONG_MODE_REASON)


DESC = tp.channelwise(O3, I("2x0e+2x1o"), I("1x0e+1x1o"))
# multiplicity 33: channel tiles of 8, 16 and 32 all differ (5, 3 and 2 tiles, with remainders)
WIDE = tp.channelwise(O3, I("33x0e+3x1o"), I("1x0e+1x1o"), keep=[O3.parse_irrep(s) for s in ("0e", "1o")])
TOL = {torch.float64: 1e-11, torch.float32: 2e-5}


class FakeTimer:
    """measure(fn, config) -> ms from a table; counts calls (and runs nothing)."""

    def __init__(self, fastest=Config(32, 8, 4), default_ms=1.0):
        self.fastest, self.default_ms, self.calls = fastest, default_ms, []

    def __call__(self, fn, config):
        self.calls.append(config)
        return 0.25 if config == self.fastest else self.default_ms + 0.01 * len(self.calls)


class Runner:
    """runner(config) -> fn; counts configs asked for and first calls."""

    def __init__(self, fail=()):
        self.configs, self.runs, self.fail = [], 0, set(fail)

    def __call__(self, config):
        self.configs.append(config)
        if config in self.fail:
            raise RuntimeError(f"out of resources for {config}")

        def fn():
            self.runs += 1
        return fn


def key_for(desc=DESC, dtype="float32", weights="row", device="NVIDIA H100 80GB HBM3", rows=50000,
            mode="forward"):
    return autotune.make_key(desc, dtype, weights, device, rows, mode)


def new_tuner(path, timer=None):
    return Tuner(measure=timer or FakeTimer(), sync=lambda: None, cache_dir=path)


# -- the tuner, with a fake timer -------------------------------------------------------------------

def test_candidate_list():
    assert CANDIDATES[0] == DEFAULT_CONFIG
    assert len(set(CANDIDATES)) == len(CANDIDATES) == 17
    for c in CANDIDATES:
        assert c.block_b in (16, 32, 64) and c.block_c in (8, 16, 32) and c.num_warps in (2, 4, 8)
        assert c.block_b * c.block_c <= autotune.MAX_TILE_ELEMENTS
        assert 32 * c.num_warps <= c.block_b * c.block_c
    # per problem: block_c clamped to the widest tile the descriptor has, block_b to the batch, no duplicates
    assert autotune.channel_cap(DESC) == 2 and autotune.channel_cap(WIDE) == 64
    # DESC: tiles of 2 channels; 5 rows need no more than 16-row blocks; few elements, so 2 warps
    assert autotune.candidates_for(DESC, rows=5) == [Config(16, 2, 2)]
    assert autotune.candidates_for(DESC, rows=20) == [Config(16, 2, 2), Config(32, 2, 2)]
    assert autotune.candidates_for(WIDE, rows=50000) == list(CANDIDATES)
    assert {c.block_b for c in autotune.candidates_for(WIDE, rows=20)} == {16, 32}


def test_rows_bucket():
    b = autotune.rows_bucket
    assert [b(0), b(1), b(3), b(1000), b(1024), b(1025)] == [1, 1, 4, 1024, 1024, 2048]
    assert b(50000) == b(10 ** 7) == autotune.MAX_BUCKET


def test_picks_fastest_and_writes_cache(tmp_path):
    timer, runner = FakeTimer(fastest=Config(32, 8, 4)), Runner()
    tuner = new_tuner(tmp_path, timer)
    key = key_for()
    r = tuner.tune(key, runner, CANDIDATES)
    assert r.config == Config(32, 8, 4) and r.source == "tuned"
    assert timer.calls == list(CANDIDATES) and runner.configs == list(CANDIDATES)
    assert runner.runs == len(CANDIDATES)  # one first (compiling) call per candidate, outside the timer
    entry = json.loads(tuner.path(key).read_text())
    assert entry["config"] == {"block_b": 32, "block_c": 8, "num_warps": 4, "num_stages": None}
    assert entry["key"] == key.as_dict()
    assert [t["config"] for t in entry["timings"]] == [c.as_dict() for c in CANDIDATES]
    assert min(entry["timings"], key=lambda t: t["ms"])["ms"] == 0.25
    assert entry["tune_s"] >= 0 and entry["compile_s"] >= 0
    assert sorted(p.suffix for p in tmp_path.iterdir() if p.suffix != ".lock") == [".json"]  # no temp files left
    # the same tuner again: from memory, nothing measured
    assert tuner.tune(key, runner, CANDIDATES).source == "memory"
    assert len(timer.calls) == len(CANDIDATES)


def test_a_second_tuner_reads_the_cache_and_measures_nothing(tmp_path):
    key = key_for(mode="forward_backward")
    first = new_tuner(tmp_path, FakeTimer(fastest=Config(16, 32, 8)))
    assert first.tune(key, Runner(), CANDIDATES).config == Config(16, 32, 8)
    # a "new process": fresh in-memory state, the same directory
    timer, runner = FakeTimer(fastest=Config(64, 8, 2)), Runner()
    second = new_tuner(tmp_path, timer)
    r = second.tune(key, runner, CANDIDATES)
    assert r.source == "disk" and r.config == Config(16, 32, 8)
    assert timer.calls == [] and runner.configs == []
    assert len(r.timings) == len(CANDIDATES) and r.compile_s >= 0
    first.clear_memory()
    assert first.tune(key, runner, CANDIDATES).source == "disk"
    assert timer.calls == [] and runner.configs == []


@pytest.mark.parametrize("content", ["", "{not json", '{"format": "eqdsl-triton-tuning"}', "\x00\xff garbage",
                                     "config"])
def test_corrupt_cache_entry_is_retuned_with_a_warning(tmp_path, content):
    key = key_for()
    tuner = new_tuner(tmp_path)
    path = tuner.path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    if content == "config":  # well-formed JSON of the right key, but an impossible config
        new_tuner(tmp_path).tune(key, Runner(), CANDIDATES)
        entry = json.loads(path.read_text())
        entry["config"]["block_b"] = 3
        path.write_text(json.dumps(entry))
    else:
        path.write_bytes(content.encode("latin-1"))
    with pytest.warns(RuntimeWarning, match="corrupt cache entry"):
        r = tuner.tune(key, Runner(), CANDIDATES)
    assert r.source == "tuned" and r.config == Config(32, 8, 4)
    assert len(tuner.measure.calls) == len(CANDIDATES)
    assert json.loads(path.read_text())["config"]["block_b"] == 32  # repaired
    assert new_tuner(tmp_path).tune(key, Runner(), CANDIDATES).source == "disk"


def test_entry_of_another_key_is_not_used(tmp_path):
    k1, k2 = key_for(rows=100), key_for(rows=100000)
    tuner = new_tuner(tmp_path)
    tuner.tune(k1, Runner(), CANDIDATES)
    tuner.path(k2).write_text(tuner.path(k1).read_text())  # k1's entry under k2's name
    with pytest.warns(RuntimeWarning, match="another key"):
        assert new_tuner(tmp_path).tune(k2, Runner(), CANDIDATES).source == "tuned"


def test_keys_differ_across_what_changes_the_best_config():
    base = key_for()
    variants = [key_for(dtype="float64"), key_for(weights="shared"), key_for(rows=1000),
                key_for(device="NVIDIA A100-SXM4-80GB"), key_for(mode="forward_backward"),
                key_for(desc=WIDE), autotune.make_key(DESC, "float32", "row", base.device, 50000, "forward",
                                                      CANDIDATES[:5])]
    digests = {base.digest()} | {k.digest() for k in variants}
    assert len(digests) == len(variants) + 1
    assert len({k.filename() for k in [base] + variants}) == len(variants) + 1
    # the same problem gives the same key (a fresh, equal descriptor; rows in the same bucket)
    same = autotune.make_key(tp.channelwise(O3, I("2x0e+2x1o"), I("1x0e+1x1o")), "float32", "row",
                             base.device, 60000, "forward")
    assert same == base and same.digest() == base.digest()
    assert base.triton == triton.__version__
    # the fingerprint is the kernel cache's hash without block_c: equal for every block_c
    assert autotune.kernel_fingerprint(DESC, "float32", "row") != autotune.kernel_fingerprint(DESC, "float64", "row")


def test_failing_candidates_are_recorded_and_skipped(tmp_path):
    bad = {Config(32, 8, 4), CANDIDATES[3]}
    r = new_tuner(tmp_path).tune(key_for(), Runner(fail=bad), CANDIDATES)
    assert r.config not in bad
    errors = [t for t in r.timings if "error" in t]
    assert sorted(map(str, (Config(**t["config"]) for t in errors))) == sorted(map(str, bad))
    with pytest.raises(RuntimeError, match="every candidate"):
        new_tuner(tmp_path / "other").tune(key_for(), Runner(fail=set(CANDIDATES)), CANDIDATES)


def test_unwritable_cache_dir_warns_and_still_tunes(tmp_path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the directory should be")
    tuner = new_tuner(blocker / "tuning")
    with pytest.warns(RuntimeWarning, match="cannot write"):
        r = tuner.tune(key_for(), Runner(), CANDIDATES)
    assert r.config == Config(32, 8, 4)
    assert tuner.tune(key_for(), Runner(), CANDIDATES).source == "memory"


def test_tuning_dir_is_next_to_the_kernel_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("EQDSL_CACHE", str(tmp_path))
    assert autotune.tuning_dir() == tmp_path / "triton_tuning"
    assert kernel_cache.cache_dir() == tmp_path / "triton"


_SUBPROCESS_TUNE = textwrap.dedent("""
    import sys, time
    from eqdsl.backends.triton import autotune
    from eqdsl.groups.o3 import O3
    from eqdsl.reps import tp
    from eqdsl.reps.irreps import Irreps
    I = lambda s: Irreps.parse(s, O3)
    desc = tp.channelwise(O3, I("2x0e+2x1o"), I("1x0e+1x1o"))
    calls = []
    def timer(fn, config):
        calls.append(config)
        time.sleep(float(sys.argv[1]))
        return 0.5 if config == autotune.Config(64, 8, 2) else 1.0
    tuner = autotune.Tuner(measure=timer, sync=lambda: None)  # the default directory, under EQDSL_CACHE
    key = autotune.make_key(desc, "float32", "row", "NVIDIA H100 80GB HBM3", 50000, "forward")
    r = tuner.tune(key, lambda cfg: (lambda: None), autotune.CANDIDATES)
    print(len(calls), r.source, r.config.block_b, r.config.block_c, r.config.num_warps)
""")


def _env_for(tmp_path):
    return dict(os.environ, EQDSL_CACHE=str(tmp_path), TRITON_INTERPRET="1",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_a_second_process_reads_the_cache(tmp_path):
    env = _env_for(tmp_path)
    runs = [subprocess.run([sys.executable, "-c", _SUBPROCESS_TUNE, "0"], env=env, capture_output=True, text=True,
                           timeout=120) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-3000:]
    assert runs[0].stdout.split() == [str(len(CANDIDATES)), "tuned", "64", "8", "2"]
    assert runs[1].stdout.split() == ["0", "disk", "64", "8", "2"]
    assert len(list((tmp_path / "triton_tuning").glob("tune_*.json"))) == 1


def test_concurrent_processes_tune_a_key_once(tmp_path):
    """Two processes started together: one tunes (slowly), the other waits on the lock and reads its result."""
    env = _env_for(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", _SUBPROCESS_TUNE, "0.1"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    results = sorted(out.split() for out, _ in outs)
    assert results == [["0", "disk", "64", "8", "2"], [str(len(CANDIDATES)), "tuned", "64", "8", "2"]]
    assert not list((tmp_path / "triton_tuning").glob("*.tmp"))


# -- TritonTensorProduct: when it tunes, and that no config changes the numbers --------------------

class ForbiddenTuner(Tuner):
    def tune(self, *a, **k):
        raise AssertionError("must not tune here")

    def cached(self, *a, **k):
        raise AssertionError("must not tune here")


def _inputs(desc, rows, dtype, shared):
    kw = dict(dtype=dtype, device=DEVICE, requires_grad=True)
    x1 = torch.randn(rows, desc.irreps_in1.dim, **kw)
    x2 = torch.randn(rows, desc.irreps_in2.dim, **kw)
    w = None if shared else torch.randn(rows, desc.weight_numel, **kw)
    return x1, x2, w


@needs_interpreter
@pytest.mark.skipif(not INTERPRET, reason="checks the CPU / interpreter behaviour")
def test_no_tuning_under_the_interpreter(monkeypatch):
    monkeypatch.setattr(autotune, "default_tuner", lambda: ForbiddenTuner())
    ref = TensorProduct(DESC, False).double()
    tri = TritonTensorProduct(DESC, False)  # tune="auto"
    assert tri.tune == "auto" and tri.config == DEFAULT_CONFIG
    x1, x2, w = _inputs(DESC, 5, torch.float64, False)
    assert rel(tri(x1, x2, w), ref(x1, x2, w)) < TOL[torch.float64]
    assert tri.config == DEFAULT_CONFIG
    assert tri.tune_report["source"] == "default" and "mean nothing" in tri.tune_report["reason"]
    # tune=True cannot tune here either: it says so, once, and runs the defaults
    forced = TritonTensorProduct(DESC, False, tuner=ForbiddenTuner(), tune=True)
    with pytest.warns(RuntimeWarning, match="not tuning"):
        y = forced(x1, x2, w)
    assert rel(y, ref(x1, x2, w)) < TOL[torch.float64]


def test_explicit_block_sizes_disable_tuning():
    tri = TritonTensorProduct(DESC, False, block_b=4, tuner=ForbiddenTuner())
    assert tri.tune is False and tri.config == Config(4, 16, 4)
    assert tri.tune_report["source"] == "explicit"
    assert TritonTensorProduct(DESC, False, tune=False).tune_report["source"] == "default"
    with pytest.raises(ValueError, match="not both"):
        TritonTensorProduct(DESC, False, block_c=8, tune=True)
    with pytest.raises(ValueError, match="power of two"):
        TritonTensorProduct(DESC, False, block_b=12)
    with pytest.raises(ValueError, match="tune must be"):
        TritonTensorProduct(DESC, False, tune="yes")


@needs_interpreter
@pytest.mark.skipif(not INTERPRET, reason="fakes the GPU path on the CPU")
def test_tuning_wiring_with_a_fake_timer(monkeypatch, tmp_path):
    """The CUDA path of TritonTensorProduct, run on the CPU: tuning allowed, a fake timer, the interpreter's kernels."""
    monkeypatch.setattr(launch.LaunchChooser, "tuning_unavailable", staticmethod(lambda like: None))
    x1, x2, w = _inputs(DESC, 20, torch.float64, False)
    cands = autotune.candidates_for(DESC, 20)
    assert len(cands) == 2
    timer = FakeTimer(fastest=cands[-1])
    tri = TritonTensorProduct(DESC, False, tuner=Tuner(measure=timer, sync=lambda: None, cache_dir=tmp_path))
    ref = TensorProduct(DESC, False).double()
    y = tri(x1, x2, w)  # records gradients: tunes forward + backward
    assert tri.config == cands[-1] and tri.tune_report["source"] == "tuned"
    assert tri.tune_report["key"]["mode"] == "forward_backward" and tri.tune_report["key"]["device"] == "cpu"
    assert len(timer.calls) == len(cands)
    assert rel(y, ref(x1, x2, w)) < TOL[torch.float64]
    gt = torch.autograd.grad(y.square().sum(), (x1, x2, w))
    gr = torch.autograd.grad(ref(x1, x2, w).square().sum(), (x1, x2, w))
    for a, b in zip(gt, gr):
        assert rel(a, b) < TOL[torch.float64]
    # a second module (and tuner, as in a new process) reads the result; nothing is measured again
    timer2 = FakeTimer(fastest=cands[0])
    tri2 = TritonTensorProduct(DESC, False, tuner=Tuner(measure=timer2, sync=lambda: None, cache_dir=tmp_path))
    tri2(x1, x2, w)
    assert tri2.config == cands[-1] and tri2.tune_report["source"] == "disk" and timer2.calls == []
    # without gradients it is another problem (forward only)
    with torch.no_grad():
        tri2(x1, x2, w)
    assert tri2.tune_report["key"]["mode"] == "forward" and tri2.tune_report["source"] == "tuned"
    assert tri2.tune_report["tune_s"] >= 0 and tri2.tune_report["compile_s"] >= 0
    # another candidate list is another key: tuned over that list only
    timer3 = FakeTimer()
    tri3 = TritonTensorProduct(DESC, False, tune_candidates=[Config(32, 8, 2)],
                               tuner=Tuner(measure=timer3, sync=lambda: None, cache_dir=tmp_path))
    assert rel(tri3(x1, x2, w), ref(x1, x2, w)) < TOL[torch.float64]
    assert tri3.config == Config(32, 2, 2) and tri3.tune_report["source"] == "tuned" and len(timer3.calls) == 1
    with pytest.raises(ValueError, match="tune_candidates"):
        TritonTensorProduct(DESC, False, tune_candidates=[])


@needs_interpreter
@pytest.mark.skipif(not INTERPRET, reason="fakes the GPU path on the CPU")
def test_generated_layers_and_convolutions_tune_too(monkeypatch, tmp_path):
    """TensorProductLayer (what generated models use) tunes its tensor product and its fused convolution,
    each as its own problem (conv keys: rows are edges), through the same tuner; tune=False never tunes."""
    from eqdsl.backends.reference.graph_ops import gather, scatter
    from eqdsl.backends.tensor_product import TensorProductLayer

    monkeypatch.setattr(launch.LaunchChooser, "tuning_unavailable", staticmethod(lambda like: None))
    timer = FakeTimer(fastest=autotune.candidates_for(DESC, 20)[-1])
    tuner = Tuner(measure=timer, sync=lambda: None, cache_dir=tmp_path)
    monkeypatch.setattr(autotune, "_DEFAULT_TUNER", tuner)
    layer = TensorProductLayer(DESC, False, backend="triton")
    ref = TensorProduct(DESC, False).double()
    x1, x2, w = _inputs(DESC, 20, torch.float64, False)
    with torch.no_grad():
        y = layer(x1, x2, w)
    ch = layer.chooser()
    assert ch.report["source"] == "tuned" and ch.report["key"]["mode"] == "forward"
    assert rel(y, ref(x1, x2, w)) < TOL[torch.float64]
    n_timed = len(timer.calls)
    src = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 3, 5, 7, 9])
    dst = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 2, 4, 6, 8, 1, 1, 1, 2, 2])
    xn = torch.randn(10, DESC.irreps_in1.dim, dtype=torch.float64, requires_grad=True)
    out = layer.conv(xn, src, x2, w, dst, 10)
    assert ch.report["key"]["mode"] == "conv_forward_backward" and ch.report["source"] == "tuned"
    assert ch.report["key"]["bucket"] == autotune.rows_bucket(len(src)) and len(timer.calls) > n_timed
    expected = scatter(ref(gather(xn, src), x2, w), dst, 10, "sum")
    assert rel(out, expected) < TOL[torch.float64]
    ga = torch.autograd.grad(out.square().sum(), (xn, x2, w))
    gb = torch.autograd.grad(expected.square().sum(), (xn, x2, w))
    assert all(rel(a, b) < TOL[torch.float64] for a, b in zip(ga, gb))
    assert list(layer.state_dict()) == list(TensorProduct(DESC, False).state_dict())  # the chooser is not state
    off = TensorProductLayer(DESC, False, backend="triton", tune=False)
    n = len(timer.calls)
    off(x1, x2, w)
    assert off.chooser().report["source"] == "default" and len(timer.calls) == n
    with pytest.raises(ValueError, match="tune must be"):
        TensorProductLayer(DESC, False, tune="always")


@needs_interpreter
@pytest.mark.parametrize("shared", [False, True], ids=["row", "shared"])
def test_every_candidate_matches_the_reference(shared):
    """Tuning can only change speed: every candidate gives the reference's values and gradients.

    The interpreter ignores num_warps (and num_stages), so configs differing only there run the same
    program here; each distinct (block_b, block_c) runs once.  On a GPU every candidate runs."""
    dtype = torch.float64
    ref = TensorProduct(WIDE, shared).to(DEVICE, dtype)
    x1, x2, w = _inputs(WIDE, 5, dtype, shared)
    wargs = () if shared else (w,)
    y_ref = ref(x1, x2, *wargs)
    wrt_ref = (x1, x2, ref.weight if shared else w)
    g_ref = torch.autograd.grad(y_ref, wrt_ref, torch.ones_like(y_ref))
    configs = CANDIDATES if not INTERPRET else list({(c.block_b, c.block_c): c for c in CANDIDATES}.values())
    assert {(c.block_b, c.block_c) for c in configs} == {(c.block_b, c.block_c) for c in CANDIDATES}
    for c in configs:
        tri = TritonTensorProduct(WIDE, shared, block_b=c.block_b, block_c=c.block_c, num_warps=c.num_warps,
                                  num_stages=c.num_stages).to(DEVICE, dtype)
        tri.load_state_dict(ref.state_dict())
        y = tri(x1, x2, *wargs)
        assert tri.config == c
        assert rel(y, y_ref) < TOL[dtype], c
        wrt = (x1, x2, tri.weight if shared else w)
        for a, b in zip(torch.autograd.grad(y, wrt, torch.ones_like(y)), g_ref):
            assert rel(a, b) < TOL[dtype], c
