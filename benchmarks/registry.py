"""The implementations the benchmark knows, how each is built, and which of them are installed here."""
from __future__ import annotations

import importlib
import importlib.util

from . import anchors
from .impl import build_eqdsl
from .suite import IMPLS

# the module each implementation needs (None: always there)
MODULES = {"eqdsl-triton": "triton", "eqdsl-reference": None, "e3nn": "e3nn",
           "cuequivariance": "cuequivariance_torch", "openequivariance": "openequivariance"}
CUDA_ONLY = {"openequivariance"}  # its kernels are JIT-compiled CUDA; it has no CPU path

# name -> build(desc, shared, device, **options) -> Impl (eqdsl-triton takes tune_candidates)
BUILDERS = {"eqdsl-triton": build_eqdsl("triton"), "eqdsl-reference": build_eqdsl("reference"),
            "e3nn": anchors.build_e3nn, "cuequivariance": anchors.build_cuequivariance,
            "openequivariance": anchors.build_openequivariance}


def probe(impls=IMPLS) -> tuple[dict, dict]:
    """(available: name -> version, missing: name -> reason) for the implementations' packages.

    eqdsl-triton is only looked up, not imported: on the CPU, TRITON_INTERPRET must be set before
    triton's first import, which the command decides.
    """
    found, missing = {}, {}
    for name in impls:
        mod = MODULES[name]
        if mod is None:
            from eqdsl import __version__
            found[name] = __version__
        elif name == "eqdsl-triton":
            if importlib.util.find_spec("triton") is None:
                missing[name] = "ImportError: No module named 'triton'"
            else:
                from importlib.metadata import version
                found[name] = "triton " + version("triton")
        else:
            try:
                m = importlib.import_module(mod)
                found[name] = getattr(m, "__version__", None) or _dist_version(mod)
            except Exception as err:  # an anchor that fails to import for any reason is "missing"
                missing[name] = f"{type(err).__name__}: {err}"
    return found, missing


def _dist_version(mod: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(mod.replace("_", "-"))
    except PackageNotFoundError:
        return "?"
