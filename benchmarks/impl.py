"""An implementation as the benchmark calls it (``Impl``), and eqdsl's own two: its Triton kernels and reference."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


def _identity3(x1, x2, w):
    return x1, x2, w


@dataclass
class Impl:
    """An implementation as the benchmark calls it.

    ``fn(x1, x2, w)`` is what is timed, on the library's own layout.  ``to_native`` (inputs in
    eqdsl's layout -> the library's) and ``from_native`` (its output -> eqdsl's layout) are
    differentiable torch code run once outside the timing, so that the verification compares
    values and gradients in one layout.  ``exact``: False where the library's convention may differ
    from e3nn's by a constant per output block (then that scale is fitted and reported).
    """
    fn: Callable
    to_native: Callable = _identity3
    from_native: Callable = lambda y: y
    exact: bool = True
    note: str = ""
    report: Optional[Callable] = None  # what the implementation chose for itself (eqdsl-triton: tuning)


def tuning_options(tune_candidates: Optional[int]) -> dict:
    """eqdsl-triton's tuning for ``--tune-candidates K``: None tunes over every candidate, 0 not at all."""
    from eqdsl.backends.triton import autotune

    return {"tune": "auto" if tune_candidates != 0 else False,
            "tune_candidates": autotune.CANDIDATES[:tune_candidates] if tune_candidates else None}


def build_eqdsl(backend: str):
    """The builder of eqdsl's implementation on `backend` ("triton" or "reference")."""
    def build(desc, shared: bool, device, tune_candidates: Optional[int] = None) -> Impl:
        if backend == "triton":  # the module that autotunes its launch configuration (on CUDA only)
            from eqdsl.backends.triton import TritonTensorProduct
            mod = TritonTensorProduct(desc, shared, **tuning_options(tune_candidates)).to(device)
            report = lambda: {k: v for k, v in mod.tune_report.items() if k in ("source", "config", "tune_s", "compile_s")}  # noqa: E731
        else:
            from eqdsl.backends.tensor_product import TensorProductLayer
            mod = TensorProductLayer(desc, shared, backend=backend).to(device)
            report = None
        if not shared:
            return Impl(mod, report=report)

        def fn(x1, x2, w):
            # the shared weights are the benchmark's tensor: put it in the parameter slot (a dict write)
            # rather than torch.func.functional_call, which costs ~35 us of Python per call
            mod._parameters["weight"] = w
            return mod(x1, x2)
        return Impl(fn, report=report)
    return build
