"""Shared setup of the Triton test modules: Triton's interpreter on the CPU, compiled kernels on CUDA.

Without a GPU (or with TRITON_INTERPRET=1 already set) the kernels run in Triton's
interpreter, which must be on before triton is first imported: Triton creates
its own library functions (``tl.cdiv``, the ``tl.sum`` combiners) at import,
interpreted or compiled, for the rest of the process.  So TRITON_INTERPRET=1 is
set before the import below and the previous value restored right after; the
autouse fixture ``_interpreter`` (imported by each module) sets it again only while
a Triton test runs, so other modules see the environment they had.  What cannot be
undone is that triton, in this process, is now an interpreter-mode triton: that
breaks compiling real Triton kernels later in the same process (none of the other
test modules does on a machine without a GPU; torch.compile's CPU backend only
imports triton).  With a GPU the modules run the compiled kernels on CUDA and touch
nothing.  The interpreter executes every Triton op as numpy code, one program at a
time, so every problem in these modules is tiny.
"""
import os

import pytest
import torch

INTERPRET = not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"
DEVICE = "cpu" if INTERPRET else "cuda"

_OLD_INTERPRET = os.environ.get("TRITON_INTERPRET")
if INTERPRET:
    os.environ["TRITON_INTERPRET"] = "1"
try:
    triton = pytest.importorskip("triton")
finally:
    if _OLD_INTERPRET is None:
        os.environ.pop("TRITON_INTERPRET", None)
    else:
        os.environ["TRITON_INTERPRET"] = _OLD_INTERPRET

from eqdsl.backends.triton import kernel_cache  # noqa: E402
from eqdsl.groups.o3 import O3  # noqa: E402
from eqdsl.reps.irreps import Irreps  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# triton was imported earlier in this process without the interpreter: these modules must run alone
WRONG_MODE = INTERPRET and kernel_cache.triton_import_mode() != "interpret"
WRONG_MODE_REASON = ("triton was imported in this process before TRITON_INTERPRET=1 could be set; "
                     "run this file in its own process")


@pytest.fixture(scope="module")
def _cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("eqdsl_cache")


@pytest.fixture(autouse=True)
def _interpreter(monkeypatch, _cache_root):
    if INTERPRET:
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setenv("EQDSL_CACHE", str(_cache_root))
    torch.manual_seed(0)


def I(text):  # noqa: E743
    return Irreps.parse(text, O3)


def mixed_descriptor():
    """2x0e+2x1o (x) 1x0e+1x1o+1x2e -> 2x1e+2x1o with weighted and unweighted paths of every mode (uvuv, uvu,
    uvw) into shared output blocks: the weighted-only kernels, affine weight gradients."""
    from eqdsl.reps import tp
    return tp.build(I("2x0e+2x1o"), I("1x0e+1x1o+1x2e"), I("2x1e+2x1o"),
                    [(1, 1, 0, "uvuv", True), (1, 1, 0, "uvu", False), (1, 0, 1, "uvu", True),
                     (0, 1, 1, "uvuv", False), (1, 2, 1, "uvw", True)])


def run_compiler_script(tmp_path, script: str, timeout: int = 900, needs_ptxas: bool = True):
    """Run `script` (Python source, dedented here) in a subprocess whose triton is not in interpreter mode,
    with fresh eqdsl and Triton caches under `tmp_path`: the real compiler, down to sm_90 cubins without a
    GPU (``standin_cuda`` importable, for a stand-in device).  Skips when this triton build ships no ptxas
    (unless the script compiles nothing: `needs_ptxas`)."""
    import subprocess
    import sys
    import textwrap

    from eqdsl.benchmarks import inspect_kernels

    if needs_ptxas and not os.path.exists(inspect_kernels._tool("ptxas")):
        pytest.skip("this triton build ships no ptxas")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.update(EQDSL_CACHE=str(tmp_path), TRITON_CACHE_DIR=str(tmp_path / "triton_cache"),
               PYTHONPATH=os.pathsep.join((ROOT, os.path.dirname(os.path.abspath(__file__)), env.get("PYTHONPATH", ""))))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def rel(a, b) -> float:
    """Relative error of `a` against the reference `b`."""
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def check_forces_training(ref, tri, message, tol=1e-11):
    """Training on forces through `ref` and `tri`: per edge, spherical harmonics of the edge vector and weights
    from its length go into ``message(module, h, src, sh, w, dst, num_nodes)`` (a per-edge product or a
    convolution); E sums its output, F = -dE/dpos, then d|F|^2/d(node features, weight amplitudes).  Forces
    and those second derivatives must agree (complete graph on 4 nodes, float64)."""
    from eqdsl.backends.reference import spherical_harmonics

    desc, n = ref.desc, 4
    src = torch.tensor([i for i in range(n) for j in range(n) if i != j], device=DEVICE)
    dst = torch.tensor([j for i in range(n) for j in range(n) if i != j], device=DEVICE)
    kw = dict(dtype=torch.float64, device=DEVICE, requires_grad=True)
    pos, h, amp = torch.randn(n, 3, **kw), torch.randn(n, desc.irreps_in1.dim, **kw), \
        torch.randn(desc.weight_numel, **kw)

    def forces_loss(module):
        vec = pos[dst] - pos[src]
        sh = spherical_harmonics(2, vec)
        w = torch.exp(-vec.norm(dim=-1, keepdim=True) ** 2) * amp  # per-edge weights from the edge length
        out = message(module, h, src, sh, w, dst, n)
        energy = (out[:, :2] ** 2).sum() + out.sum()
        forces = -torch.autograd.grad(energy, pos, create_graph=True)[0]
        return forces, torch.autograd.grad((forces ** 2).sum(), [h, amp])

    (f_ref, g_ref), (f_tri, g_tri) = forces_loss(ref), forces_loss(tri)
    assert rel(f_tri, f_ref) < tol
    for a, b in zip(g_tri, g_ref):
        assert rel(a, b) < tol
