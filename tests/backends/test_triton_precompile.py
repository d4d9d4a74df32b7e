"""Compiling the Triton kernels ahead, in parallel (backends/triton/precompile.py).

Without a GPU: the job lists name exactly the kernels the launches use, with arguments that bind
to the kernels' real signatures (checked by compiling them for sm_90 on two threads in a
subprocess, where triton is not in interpreter mode); the module and the tuner call the
precompiler once, with the right jobs; the warmup keys are the launch keys (a stand-in driver for an
sm_90 device, and Triton's cache hook recording the keys without compiling).  On CUDA: after compiling
ahead, the launches of a forward+backward find every kernel compiled.
"""
import os

import pytest
import torch

from triton_interpreter import (  # noqa: F401  (the fixtures apply by being imported here)
    INTERPRET, WRONG_MODE, WRONG_MODE_REASON, I, _cache_root, _interpreter, run_compiler_script,
    triton,
)

import eqdsl.backends.triton as tri
from eqdsl.backends.triton import TritonTensorProduct, autotune, codegen, fused, kernel_cache, precompile
from eqdsl.backends.triton.autotune import Config, Tuner
from eqdsl.groups.o3 import O3
from eqdsl.reps import tp

needs_interpreter = pytest.mark.skipif(WRONG_MODE, reason=WRONG_MODE_REASON)

DESC = tp.channelwise(O3, I("2x0e+2x1o"), I("1x0e+1x1o"))


def _plan(desc=DESC, dtype=torch.float32, weights="row", cfg=Config(16, 16, 4)):
    return tri.per_row._plan(desc, dtype, weights, cfg.block_b, cfg.block_c, cfg.num_warps, cfg.num_stages)


def _kernels(plan, targets, family="target"):
    """The kernels of these operations, then the fused backward's (and its dx2 sum) where the descriptor has
    one and the operations are a backward's."""
    names = [f for t in targets for f, _ in plan.module.KERNELS[f"tp_{family}_{t}"]]
    backward = f"tp_{family}_backward"
    if "w" in targets and backward in plan.module.KERNELS:
        names += [f for f, _ in plan.module.KERNELS[backward]] + [f"{backward}_dx2"]
    return names


@needs_interpreter
@pytest.mark.parametrize("weights", ["row", "shared"])
def test_jobs_name_the_launched_kernels(weights):
    plan = _plan(weights=weights)
    fwd = precompile.plan_jobs(plan, "forward", torch.float32, 100)
    both = precompile.plan_jobs(plan, "forward_backward", torch.float32, 100)
    weighted = precompile.plan_jobs(plan, "weighted", torch.float32, 100)
    assert [j.name for j in fwd] == _kernels(plan, "g")
    assert [j.name for j in both] == _kernels(plan, ("g", "x1", "x2", "w"))
    assert weighted == []  # every path weighted: the weighted-paths names alias the operations' own kernels
    assert any(j.name.startswith("tp_target_backward") for j in both)  # row and shared weights alike
    for j in both:  # operand and output pointers of the plan's dtype, then the row count; BLOCK_B and warps
        assert j.args[-1] == 100 and all(a is torch.float32 for a in j.args[:-1])
        assert j.kwargs == {"BLOCK_B": 16, "num_warps": 4, "enable_fp_fusion": True}
    with pytest.raises(ValueError, match="mode"):
        precompile.plan_jobs(plan, "training", torch.float32, 1)


@needs_interpreter
def test_weighted_jobs_of_a_partly_weighted_descriptor():
    """Second derivatives through the weight gradient launch kernels of the weighted paths alone."""
    desc = tp.build(I("2x0e+2x1o"), I("1x0e+1x1o"), I("2x1o"), [(1, 0, 0, "uvu", True), (0, 1, 0, "uvu", False)])
    plan = tri.per_row._Plan(codegen.KernelKey(desc, "float32", "row", 16), 16, 4)
    jobs = precompile.plan_jobs(plan, "weighted", torch.float32, 9)
    assert [j.name for j in jobs] == _kernels(plan, ("g_weighted", "x1_weighted", "x2_weighted"))
    assert not set(j.name for j in jobs) & set(_kernels(plan, ("g", "x1", "x2")))


@needs_interpreter
def test_split_descriptors_list_every_kernel(monkeypatch):
    monkeypatch.setattr(codegen, "MAX_TERMS_PER_KERNEL", 10)  # forces several kernels per operation
    desc = tp.channelwise(O3, I("2x0e+2x1o+1x2e"), I("1x0e+1x1o+1x2e"))
    plan = tri.per_row._Plan(codegen.KernelKey(desc, "float64", "row", 4), 16, 2)
    jobs = precompile.plan_jobs(plan, "forward_backward", torch.float64, 7)
    assert len(jobs) == len(_kernels(plan, ("g", "x1", "x2", "w"))) > 4
    assert len({j.name for j in jobs}) == len(jobs)


@needs_interpreter
def test_conv_jobs_take_the_index_tensors():
    plan = _plan()
    cplan = fused._conv_plan(plan)
    jobs = precompile.conv_jobs(cplan, "forward", torch.float32, torch.int64, 50)
    # the forward's kernels, then the fixup of nodes split into several pieces
    assert [j.name for j in jobs] == [f for f, _ in cplan.module.KERNELS["tp_conv_g"]] + ["tp_conv_fixup_g"]
    pieces = (torch.int64, torch.int64)  # PERM, PIECES
    assert jobs[0].args == (torch.float32,) * 3 + (torch.int64, torch.int64) + pieces + (torch.float32, 50)
    assert jobs[-1].args == (torch.float32, torch.int64, 50)
    both = precompile.conv_jobs(cplan, "forward_backward", torch.float32, torch.int32, 50)
    assert [j.name for j in both] == _kernels(cplan, ("g", "x1", "x2", "w"), "conv") + [
        "tp_conv_fixup_x1", "tp_conv_fixup_g"]
    x2 = next(j for j in both if j.name.startswith("tp_conv_x2"))  # per edge: no pieces
    assert x2.args == (torch.float32,) * 3 + (torch.int32,) * 2 + (torch.float32, 50)
    backward = [j for j in both if j.name.startswith("tp_conv_backward__")]
    assert backward and backward[0].args == (torch.float32,) * 4 + (torch.int32,) * 2 + pieces + (
        torch.float32,) * 3 + (50,)


def test_arity_mismatch_is_caught():
    class Fn:
        arg_names = ["X1", "T", "N", "BLOCK_B"]
    with pytest.raises(AssertionError, match="do not match"):
        precompile._check_arity("k", Fn, (torch.float32, 5), {"BLOCK_B": None})
    precompile._check_arity("k", Fn, (torch.float32, torch.float32, 5), {"BLOCK_B": None})


def test_worker_count(monkeypatch):
    monkeypatch.setenv("EQDSL_COMPILE_WORKERS", "3")
    assert precompile.workers(10) == 3 and precompile.workers(2) == 2
    monkeypatch.delenv("EQDSL_COMPILE_WORKERS")
    assert precompile.workers(1000) == (os.cpu_count() or 1) and precompile.workers(0) == 1
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("EQDSL_COMPILE_WORKERS", bad)
        with pytest.raises(ValueError, match="EQDSL_COMPILE_WORKERS"):
            precompile.workers(4)


class Recorder:
    def __init__(self):
        self.names = []

    def warmup(self, *args, grid, **kwargs):
        self.names.append((args, kwargs))


def test_compile_jobs_warms_every_job_and_swallows_compile_errors():
    ok, bad = Recorder(), Recorder()

    def boom(*a, **k):
        raise RuntimeError("compile error")
    bad.warmup = boom
    jobs = [precompile.Job("a", ok, (torch.float32, 3), {"BLOCK_B": 16}), precompile.Job("b", bad, (3,)),
            precompile.Job("c", ok, (torch.float64, 4), {"BLOCK_B": 32})]
    assert precompile.compile_jobs(jobs, torch.device("cpu")) >= 0
    assert ok.names == [((torch.float32, 3), {"BLOCK_B": 16}), ((torch.float64, 4), {"BLOCK_B": 32})]
    assert precompile.compile_jobs([], torch.device("cpu")) == 0.0
    # inside the caller's own AsyncCompileMode, the jobs go to it (no second mode: Triton forbids nesting)
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as ex, triton.AsyncCompileMode(ex):
        precompile.compile_jobs(jobs[:1], torch.device("cpu"))
    assert len(ok.names) == 3


class FakeCuda:
    """Stands in for a CUDA tensor where compile_ahead only reads the device and dtype."""
    device, dtype, shape = torch.device("cuda", 0), torch.float32, (40,)


@needs_interpreter
def test_compile_ahead_runs_once_per_mode_and_device(monkeypatch):
    calls = []
    monkeypatch.setattr(precompile, "compile_jobs", lambda jobs, device: calls.append((sorted(j.name for j in jobs),
                                                                                       device)))
    plan = _plan(cfg=Config(16, 8, 2))
    plan.module  # loaded while the interpreter flag is still the real one
    plan._compiled_ahead.clear()
    monkeypatch.setattr(kernel_cache, "interpreting", lambda: False)
    jobs = lambda mode: lambda: precompile.plan_jobs(plan, mode, torch.float32, 40)  # noqa: E731
    for _ in range(2):
        plan.compile_ahead("forward", FakeCuda, 40, jobs("forward"))
    plan.compile_ahead("forward_backward", FakeCuda, 40, jobs("forward_backward"))
    plan.compile_ahead("forward_backward", FakeCuda, 41, jobs("forward_backward"))
    assert [c[0] for c in calls] == [sorted(_kernels(plan, "g")), sorted(_kernels(plan, ("g", "x1", "x2", "w")))]
    assert calls[0][1] == torch.device("cuda", 0)
    monkeypatch.setattr(kernel_cache, "interpreting", lambda: True)  # the interpreter compiles nothing
    plan.compile_ahead("forward", type("X", (), {"device": torch.device("cuda", 1)}), 1, jobs("forward"))
    assert len(calls) == 2


def test_tuner_compiles_every_candidate_before_the_first_run(tmp_path):
    order = []

    def runner(cfg):
        order.append(("run", cfg))
        return lambda: None
    cands = [Config(16, 16, 4), Config(32, 8, 4)]
    key = autotune.make_key(DESC, "float32", "row", "fake-gpu", 100, "forward", cands)
    t = Tuner(measure=lambda fn, cfg: 1.0, sync=lambda: None, cache_dir=tmp_path)
    r = t.tune(key, runner, cands, precompile=lambda cs: order.append(("compile", tuple(cs))))
    assert order[0] == ("compile", tuple(cands)) and [o[0] for o in order[1:]] == ["run", "run"]
    assert r.compile_s >= 0 and r.source == "tuned"


def test_a_failing_precompile_only_warns(tmp_path):
    def bad(cs):
        raise RuntimeError("no compiler")
    cands = [Config(16, 16, 4)]
    key = autotune.make_key(DESC, "float32", "row", "fake-gpu", 100, "forward", cands)
    t = Tuner(measure=lambda fn, cfg: 1.0, sync=lambda: None, cache_dir=tmp_path)
    with pytest.warns(RuntimeWarning, match="compiling the candidates ahead failed"):
        r = t.tune(key, lambda cfg: (lambda: None), cands, precompile=bad)
    assert r.config == cands[0]


def test_jobs_bind_to_the_real_kernels_compiled_for_sm90_on_two_threads(tmp_path):
    """The warmup arguments must bind to the generated signatures: compile every job of a forward+backward
    (row and shared weights, float32 and float64, a split operation), of the fused conv, and the same kernel
    functions at two launch configurations, for sm_90, on two threads at once, in a subprocess whose triton
    is not in interpreter mode."""
    script = ("""
        import torch
        import eqdsl.backends.triton as tri
        from eqdsl.backends.triton import codegen, fused, precompile
        from eqdsl.groups.o3 import O3
        from eqdsl.reps import tp
        from eqdsl.reps.irreps import Irreps
        I = lambda s: Irreps.parse(s, O3)
        uvu = tp.channelwise(O3, I("2x0e+2x1o"), I("0e+1o"))
        fc = tp.fully_connected(O3, I("2x0e+1x1o"), I("0e+1o"), I("2x0e+1x1o"))
        codegen.MAX_TERMS_PER_KERNEL = 12  # the float64 case splits its operations into several kernels
        jobs = precompile.plan_jobs(tri.per_row._plan(uvu, torch.float64, "row", 16, 4, 2), "forward_backward",
                                    torch.float64, 1000)
        n_split = len(jobs)
        codegen.MAX_TERMS_PER_KERNEL = 1200
        plan = tri.per_row._plan(fc, torch.float32, "shared", 32, 8, 4)
        jobs += precompile.plan_jobs(plan, "forward_backward", torch.float32, 3 * 2 ** 31)
        jobs += precompile.conv_jobs(fused._conv_plan(tri.per_row._plan(uvu, torch.float32, "row", 16, 16, 4)),
                                     "forward_backward", torch.float32, torch.int32, 10)
        # the same kernel functions at other launch configurations, compiled at the same time (autotuning)
        jobs += precompile.plan_jobs(tri.per_row._plan(fc, torch.float32, "shared", 64, 8, 8), "forward", torch.float32, 99)
        done = precompile.compile_offline(jobs, 90, 2)
        assert [j.name for j, _, _ in done] == [j.name for j in jobs]
        assert all(len(k.asm["cubin"]) > 0 for _, _, k in done)
        assert all(k.metadata.num_warps == j.kwargs["num_warps"] for j, _, k in done)
        assert all(k.metadata.enable_fp_fusion for _, _, k in done)
        print(n_split > 4, len(done))
    """)
    r = run_compiler_script(tmp_path, script)
    assert r.returncode == 0, r.stderr[-3000:]
    split, total = r.stdout.split()
    assert split == "True" and int(total) > 9


@pytest.mark.skipif(INTERPRET, reason="compiled kernels need CUDA")
def test_compiled_ahead_kernels_are_the_ones_launched():
    """On CUDA: compile ahead, then a forward+backward compiles nothing more (the warmup keys are the launch
    keys: same argument types, N not specialized)."""
    desc = tp.channelwise(O3, I("3x0e+2x1o+1x2e"), I("0e+1o+2e"))
    mod = TritonTensorProduct(desc, shared_weights=False, tune=False)
    plan = _plan(desc, torch.float32, "row", Config(16, 16, 4))
    plan._compiled_ahead.clear()
    n = 37
    x1 = torch.randn(n, desc.irreps_in1.dim, device="cuda", requires_grad=True)
    x2 = torch.randn(n, desc.irreps_in2.dim, device="cuda", requires_grad=True)
    w = torch.randn(n, desc.weight_numel, device="cuda", requires_grad=True)
    jobs = precompile.plan_jobs(plan, "forward_backward", torch.float32, n)
    precompile.compile_jobs(jobs, x1.device)
    dev = torch.cuda.current_device()
    sizes = {j.name: len(j.fn.device_caches[dev][0]) for j in jobs}
    assert all(s >= 1 for s in sizes.values()), sizes
    y = mod(x1, x2, w)
    torch.autograd.grad(y, (x1, x2, w), torch.randn_like(y))
    y = mod(x1[:20], x2[:20], w[:20])  # another row count: the same binaries (N is not specialized)
    torch.autograd.grad(y, (x1, x2, w), torch.randn_like(y), allow_unused=True)
    assert {j.name: len(j.fn.device_caches[dev][0]) for j in jobs} == sizes


def test_launches_find_every_kernel_compiled_ahead_for_a_gpu_target(tmp_path):
    """The warmup keys are the launch keys, checked without a GPU: in a subprocess whose triton is not in
    interpreter mode, a stand-in driver (``standin_cuda``) names an sm_90 device and Triton's ``jit_cache_hook`` records the
    cache key of every kernel about to be compiled, then declines to compile (so nothing is compiled or
    launched).  The modules run on CPU tensors through the real launch path, with compiling ahead switched
    on: every launch of a forward, a forward+backward, second derivatives (training on forces) and a call
    with another row count must ask for a key that the compiling ahead asked for first.  Per-row and fused
    convolution, row and shared weights, partly weighted descriptors (whose second derivatives launch the
    weighted-paths kernels), float32 and float64, int32 and int64 indices, an operation split in kernels."""
    script = ("""
        import collections
        import torch
        from triton import knobs
        import standin_cuda
        standin_cuda.install()
        asked = collections.defaultdict(set)  # "warmup" / "launch" -> {(kernel, cache key)}

        def record(*, key, fn, is_manual_warmup, **_):
            asked["warmup" if is_manual_warmup else "launch"].add((fn.name, str(key)))
            return True  # skip the compilation, and with it the launch
        knobs.runtime.jit_cache_hook = record

        import eqdsl.backends.triton as tri
        from eqdsl.backends.triton import codegen, fused
        from eqdsl.groups.o3 import O3
        from eqdsl.reps import tp
        from eqdsl.reps.irreps import Irreps
        I = lambda s: Irreps.parse(s, O3)
        IN1, IN2 = I("2x0e+2x1o"), I("1x0e+1x1o+1x2e")
        uvu = tp.channelwise(O3, I("3x0e+2x1o+1x2e"), I("0e+1o+2e"))
        uvw = tp.fully_connected(O3, IN1, IN2, I("2x0e+1x1o+2x1e+1x2e"))
        mixed = tp.build(IN1, IN2, I("2x1e+2x1o"), [(1, 1, 0, "uvuv", True), (1, 1, 0, "uvu", False),
                                                     (1, 0, 1, "uvu", True), (0, 1, 1, "uvuv", False),
                                                     (1, 2, 1, "uvw", True)])

        def check(name, desc, shared, dtype, conv, index=torch.int64, max_terms=200):
            codegen.MAX_TERMS_PER_KERNEL = max_terms
            tri.per_row._PLANS.clear()  # fresh plans: nothing counts as compiled ahead, and max_terms applies
            fused._CONV_PLANS.clear()
            asked.clear()
            mod = tri.TritonTensorProduct(desc, shared, tune=False).to(dtype)
            kw = dict(dtype=dtype, requires_grad=True)
            edges, nodes = 37, 11
            x1 = torch.randn(nodes if conv else edges, desc.irreps_in1.dim, **kw)
            x2 = torch.randn(edges, desc.irreps_in2.dim, **kw)
            w = None if shared else torch.randn(edges, desc.weight_numel, **kw)
            src = torch.randint(0, nodes, (edges,), dtype=index)
            dst = torch.randint(0, nodes, (edges,), dtype=index)

            def call(rows):
                if conv:
                    return mod.conv(x1, src[:rows], x2[:rows], None if w is None else w[:rows], dst[:rows], nodes)
                return mod(x1[:rows], x2[:rows], None if w is None else w[:rows])
            with torch.no_grad():
                call(edges)
            leaves = [t for t in (x1, x2, w, mod.weight) if t is not None]
            y = call(edges)
            grads = torch.autograd.grad(y, leaves, torch.randn_like(y), create_graph=True)
            torch.autograd.grad(grads, leaves, [torch.randn_like(g) for g in grads], allow_unused=True)
            y = call(20)
            torch.autograd.grad(y, leaves, torch.randn_like(y), allow_unused=True)
            late = sorted({k for k, _ in asked["launch"] - asked["warmup"]})
            kernels = {k for k, _ in asked["launch"]}
            print(name, len(asked["warmup"]), len(kernels), any("_weighted" in k for k in kernels), late)

        check("tp-uvu-row", uvu, False, torch.float32, False)
        check("tp-uvw-shared", uvw, True, torch.float32, False)
        check("tp-mixed-row-f64", mixed, False, torch.float64, False)
        check("tp-uvu-split", uvu, False, torch.float32, False, max_terms=12)
        check("conv-uvu-row", uvu, False, torch.float32, True)
        check("conv-mixed-shared-i32", mixed, True, torch.float32, True, torch.int32)
        check("conv-uvw-row-f64-split", uvw, False, torch.float64, True, max_terms=12)
    """)
    r = run_compiler_script(tmp_path, script, timeout=600, needs_ptxas=False)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = {line.split()[0]: line.split(maxsplit=4)[1:] for line in r.stdout.splitlines()}
    assert len(rows) == 7, r.stdout
    for name, (warmed, launched, weighted, late) in rows.items():
        assert late == "[]", f"{name}: launched without being compiled ahead: {late}"
        assert int(launched) >= 4 and int(warmed) >= int(launched), (name, warmed, launched)
        assert (weighted == "True") == ("mixed" in name), (name, weighted)
    assert int(rows["tp-uvu-split"][1]) > int(rows["tp-uvu-row"][1])  # the split made more kernels


def test_compiled_ahead_kernels_are_the_ones_launched_on_a_stand_in_device(tmp_path):
    """``test_compiled_ahead_kernels_are_the_ones_launched`` without a GPU: the stand-in driver
    (``standin_cuda``) lets the kernels compile for real for sm_90, through the module's own compiling
    ahead (``AsyncCompileMode`` on two threads), and records launches instead of running them.  A
    forward+backward, second derivatives and a call with another row count, per row and as a fused
    convolution, and a partly weighted descriptor in float64: no launch compiles anything (Triton's
    ``jit_cache_hook`` sees every compilation a launch starts), every kernel cache holds finished
    binaries, every binary loads within an H100's shared memory and threads, and the launches are the
    generated kernels with their grids."""
    script = ("""
        import os
        os.environ["EQDSL_COMPILE_WORKERS"] = "2"
        import torch
        from triton import knobs
        import standin_cuda
        device = standin_cuda.install()
        compiled_by_a_launch = []

        def record(*, fn, is_manual_warmup, **_):
            if not is_manual_warmup:
                compiled_by_a_launch.append(fn.name)
            return None  # compile as usual
        knobs.runtime.jit_cache_hook = record

        import eqdsl.backends.triton as tri
        from eqdsl.backends.triton import fused
        from eqdsl.groups.o3 import O3
        from eqdsl.reps import tp
        from eqdsl.reps.irreps import Irreps
        I = lambda s: Irreps.parse(s, O3)
        uvu = tp.channelwise(O3, I("3x0e+2x1o+1x2e"), I("0e+1o+2e"))
        mixed = tp.build(I("2x0e+2x1o"), I("1x0e+1x1o+1x2e"), I("2x1e+2x1o"),
                         [(1, 1, 0, "uvuv", True), (1, 1, 0, "uvu", False), (1, 0, 1, "uvu", True),
                          (0, 1, 1, "uvuv", False), (1, 2, 1, "uvw", True)])

        def train_steps(desc, dtype, conv):
            mod = tri.TritonTensorProduct(desc, False, tune=False).to(dtype)
            kw = dict(dtype=dtype, requires_grad=True)
            edges, nodes = 37, 11
            x1 = torch.randn(nodes if conv else edges, desc.irreps_in1.dim, **kw)
            x2 = torch.randn(edges, desc.irreps_in2.dim, **kw)
            w = torch.randn(edges, desc.weight_numel, **kw)
            src = torch.randint(0, nodes, (edges,), dtype=torch.int32)
            dst = torch.randint(0, nodes, (edges,), dtype=torch.int32)
            call = ((lambda r: mod.conv(x1, src[:r], x2[:r], w[:r], dst[:r], nodes)) if conv
                    else (lambda r: mod(x1[:r], x2[:r], w[:r])))
            for rows in (edges, 20):
                y = call(rows)
                grads = torch.autograd.grad(y, (x1, x2, w), torch.randn_like(y), create_graph=True)
                torch.autograd.grad(grads, (x1, x2, w), [torch.randn_like(g) for g in grads], allow_unused=True)
            return mod

        for desc, dtype, conv in ((uvu, torch.float32, False), (uvu, torch.float32, True), (mixed, torch.float64, False)):
            mod = train_steps(desc, dtype, conv)
        plans = list(tri.per_row._PLANS.values())
        modules = [p.module for p in plans] + [fused._conv_plan(p).module for p in plans if id(p) in fused._CONV_PLANS]
        functions = [getattr(m, f) for m in modules for ks in m.KERNELS.values() for f, _ in ks]
        binaries = [k for fn in set(functions) for k in fn.device_caches[0][0].values()]
        assert all(type(k).__name__ == "CompiledKernel" and k.asm["cubin"] for k in binaries), binaries
        launched = {name for name, _, _ in device.launches}
        assert all(g[0] >= 2 and g[1:] == (1, 1) for _, g, _ in device.launches)  # at least ceil(20 / 16) row blocks
        print(len(binaries), len(launched), len(device.launches), sorted(compiled_by_a_launch))
        print(" ".join(sorted(launched)))
    """)
    r = run_compiler_script(tmp_path, script, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    counts, names = r.stdout.splitlines()[-2:]
    n_binaries, n_launched, n_launches, late = counts.split(maxsplit=3)
    assert late == "[]", f"launches compiled kernels themselves: {late}"
    names = names.split()
    assert {n.split("__")[0] for n in names} >= {f"tp_{fam}_{t}" for fam in ("target", "conv") for t in ("g", "x1", "x2", "w")}
    assert any("_weighted" in n for n in names)  # the mixed descriptor's second derivatives
    assert int(n_binaries) >= int(n_launched) and int(n_launches) > int(n_launched)


def test_a_generated_model_compiles_every_kernel_before_its_first_training_step(tmp_path):
    """The training example's model (specs/nequip.eq, 2 layers, tensor products on Triton) on the stand-in
    device: the first step (energy, forces by autograd, a loss on both, its backward: second derivatives
    through the fused convolutions) compiles its kernels ahead, for real, and no launch compiles one; the
    second step compiles nothing at all."""
    script = ("""
        import torch
        from triton import knobs
        import standin_cuda
        device = standin_cuda.install()
        compiled = {"ahead": [], "by a launch": []}

        def record(*, fn, is_manual_warmup, **_):
            compiled["ahead" if is_manual_warmup else "by a launch"].append(fn.name)
        knobs.runtime.jit_cache_hook = record

        import eqdsl
        Model = eqdsl.compile_file("specs/nequip.eq", layers=2).model_class()
        net = Model(cutoff=5.0, avg_neighbors=10.0, backend="triton")
        n = 12
        species = torch.nn.functional.one_hot(torch.arange(n) % 4, 4).float()
        pos = torch.randn(n, 3) * 2
        pairs = torch.cartesian_prod(torch.arange(n), torch.arange(n))
        edges = pairs[pairs[:, 0] != pairs[:, 1]].T.contiguous()
        steps = []
        for step in range(2):
            out = net(species, pos, edges, torch.zeros(edges.shape[1], 3), batch=torch.zeros(n, dtype=torch.long), num_graphs=1)
            (out["energy"].sum() + (out["forces"] ** 2).sum()).backward()
            steps.append({k: len(v) for k, v in compiled.items()})
        kernels = {name for name, _, _ in device.launches}
        print(steps[0]["ahead"], steps[0]["by a launch"], steps[1]["ahead"], steps[1]["by a launch"], len(kernels),
              " ".join(sorted(kernels)))
    """)
    r = run_compiler_script(tmp_path, script, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    ahead, late, ahead_after, late_after, n_kernels, *names = r.stdout.split()
    assert late == "0" and (ahead_after, late_after) == (ahead, "0"), r.stdout
    assert int(ahead) >= int(n_kernels) >= 4
    # message passing runs the fused family; the self-connections (h times the type embedding) run per row
    assert any(name.startswith("tp_conv_") for name in names), names
    assert all(name.startswith(("tp_conv_", "tp_target_")) for name in names), names


def test_tuning_compiles_every_candidate_before_timing_on_a_stand_in_device(tmp_path):
    """The autotuner on the stand-in device (its timings replaced by a count of the runs, so the fastest
    candidate is whichever ran first): the candidates' kernels compile together, for real, before the
    first run, and neither the timed runs nor the tuned call compile anything, per row and fused."""
    script = ("""
        import torch
        from triton import knobs
        import standin_cuda
        standin_cuda.install()
        compiled = {"ahead": [], "by a launch": []}

        def record(*, fn, is_manual_warmup, **_):
            compiled["ahead" if is_manual_warmup else "by a launch"].append(fn.name)
        knobs.runtime.jit_cache_hook = record

        import eqdsl.backends.triton as tri
        from eqdsl.backends.triton import autotune, launch
        from eqdsl.backends.triton.autotune import Config
        from eqdsl.groups.o3 import O3
        from eqdsl.reps import tp
        from eqdsl.reps.irreps import Irreps
        launch.LaunchChooser.tuning_unavailable = staticmethod(lambda like: None)
        runs = []

        def count(fn, cfg):
            fn()
            runs.append(cfg)
            return float(len(runs))
        tuner = autotune.Tuner(measure=count, sync=lambda: None, cache_dir=%r)
        I = lambda s: Irreps.parse(s, O3)
        desc = tp.channelwise(O3, I("3x0e+2x1o+1x2e"), I("0e+1o+2e"))
        cands = (Config(16, 16, 4), Config(32, 8, 4), Config(64, 16, 8))
        mod = tri.TritonTensorProduct(desc, False, tune=True, tune_candidates=cands, tuner=tuner)
        kw = dict(requires_grad=True)
        edges, nodes = 200, 30
        x1 = torch.randn(edges, desc.irreps_in1.dim, **kw)
        x1n = torch.randn(nodes, desc.irreps_in1.dim, **kw)
        x2, w = torch.randn(edges, desc.irreps_in2.dim, **kw), torch.randn(edges, desc.weight_numel, **kw)
        src, dst = torch.randint(0, nodes, (edges,)), torch.randint(0, nodes, (edges,))
        from eqdsl.backends.triton import fused, precompile
        tried = autotune.candidates_for(desc, edges, cands)
        plans = [tri.per_row._plan(desc, torch.float32, "row", c.block_b, c.block_c, c.num_warps) for c in tried]
        jobs = {"tp": sum(len(precompile.plan_jobs(p, "forward_backward", torch.float32, edges)) for p in plans),
                "conv": sum(len(precompile.conv_jobs(fused._conv_plan(p), "forward_backward", torch.float32,
                                                     src.dtype, edges)) for p in plans)}
        for name, call in (("tp", lambda: mod(x1, x2, w)), ("conv", lambda: mod.conv(x1n, src, x2, w, dst, nodes))):
            compiled["ahead"].clear()
            y = call()
            torch.autograd.grad(y, (x2, w), torch.randn_like(y))
            print(name, mod.tune_report["source"], len(tried), jobs[name], len(compiled["ahead"]),
                  len(compiled["by a launch"]), len(runs))
    """ % str(tmp_path / "tuning"))
    r = run_compiler_script(tmp_path, script, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [line.split() for line in r.stdout.splitlines()[-2:]]
    assert [row[0] for row in rows] == ["tp", "conv"], r.stdout
    runs = 0
    for name, source, tried, jobs, ahead, late, total_runs in rows:
        assert source == "tuned" and int(tried) >= 2, r.stdout
        assert int(ahead) == int(jobs) > 0, f"{name}: {ahead} kernels compiled ahead, {jobs} jobs"
        assert late == "0", f"{name}: launches compiled {late} kernels"
        assert int(total_runs) - runs >= int(tried)  # every candidate ran
        runs = int(total_runs)
