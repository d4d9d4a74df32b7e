"""Which launch configuration a tensor-product layer runs with: fixed, or autotuned per problem on CUDA.

``LaunchChooser`` holds a layer's choice (``TritonTensorProduct`` and the generated models'
``TensorProductLayer`` each own one) and ``tuned_forward`` / ``tuned_conv`` run a layer's
tensor product or message-passing convolution with the configuration it picks.  A problem is
(descriptor, dtype, weight mode, device, row-count bucket, workload); the workloads are
"forward" / "forward_backward" for the per-row tensor product and "conv_forward" /
"conv_forward_backward" for the fused convolution (rows are edges).  See ``autotune`` for the
tuner and its disk cache.
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence, Union

import torch

from . import autotune, kernel_cache
from .autotune import DEFAULT_CONFIG, Config

_DTYPES = {torch.float32: "float32", torch.float64: "float64"}
_TUNE_OFF_WARNED: set = set()


def weight_mode(desc, shared: bool) -> str:
    return "none" if desc.weight_numel == 0 else ("shared" if shared else "row")


def workload(operands) -> str:
    """"forward_backward" when autograd will differentiate through these operands, else "forward"."""
    grads = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in operands)
    return "forward_backward" if grads else "forward"


class LaunchChooser:
    """One layer's launch configuration (``autotune.Config``): block_b, block_c, num_warps, num_stages.

    ``tune``: "auto" (default) tunes on CUDA the first time a problem is seen and uses the result
    cached on disk after that; on the CPU and under ``TRITON_INTERPRET`` it never tunes (timings
    there mean nothing) and uses the defaults.  ``True``: the same, but warns once where it cannot
    tune.  ``False``: the defaults.  Explicit block sizes fix the configuration and disable tuning.
    ``tune_mode``: "auto" (forward+backward when the call records gradients, else forward),
    "forward" or "forward_backward".  ``tune_candidates``: the configs to try.

    After a call, ``config`` is the configuration used and ``report`` says where it came from.
    """

    def __init__(self, desc, shared: bool, *, block_b: Optional[int] = None, block_c: Optional[int] = None,
                 num_warps: Optional[int] = None, num_stages: Optional[int] = None, tune: Union[bool, str] = "auto",
                 tune_mode: str = "auto", tune_candidates: Optional[Sequence[Config]] = None,
                 tuner: Optional[autotune.Tuner] = None, owner: str = "TritonTensorProduct"):
        if tune not in (True, False, "auto"):
            raise ValueError(f"tune must be True, False or 'auto', got {tune!r}")
        if tune_mode not in ("auto",) + autotune.BASE_MODES:
            raise ValueError(f"tune_mode must be 'auto', 'forward' or 'forward_backward', got {tune_mode!r}")
        explicit = any(v is not None for v in (block_b, block_c, num_warps, num_stages))
        if explicit and tune is True:
            raise ValueError("explicit block sizes fix the launch configuration: pass them or tune=True, not both")
        d = DEFAULT_CONFIG
        try:
            fixed = Config(d.block_b if block_b is None else block_b, d.block_c if block_c is None else block_c,
                           d.num_warps if num_warps is None else num_warps, num_stages)
        except ValueError as err:
            raise ValueError(f"{owner}: {err}") from None
        self.desc, self.shared, self.owner = desc, shared, owner
        self.tune = False if explicit else tune
        self.tune_mode = tune_mode
        self.tuner = tuner
        self.tune_candidates = tuple(autotune.CANDIDATES if tune_candidates is None else tune_candidates)
        if not self.tune_candidates or not all(isinstance(c, Config) for c in self.tune_candidates):
            raise ValueError("tune_candidates must be a non-empty sequence of autotune.Config")
        self.fixed = fixed
        self.fixed_report = {"source": "explicit" if explicit else "default", "config": fixed.as_dict()}
        self._resolved: dict = {}  # per problem: (config, report)
        self.config: Config = fixed
        self.report: dict = dict(self.fixed_report, reason="not called yet")

    @staticmethod
    def tuning_unavailable(like: torch.Tensor) -> Optional[str]:
        """Why this call cannot be tuned (None: it can): only compiled kernels on CUDA give timings."""
        if like.device.type != "cuda":
            return f"{like.device.type} tensors: timings there mean nothing"
        if kernel_cache.interpreting():
            return "TRITON_INTERPRET is on: timings there mean nothing"
        return None

    def _no_tuning(self, reason: str) -> tuple[Config, dict]:
        if self.tune is True and reason not in _TUNE_OFF_WARNED:
            _TUNE_OFF_WARNED.add(reason)
            warnings.warn(f"{self.owner}(tune=True): not tuning ({reason}); using {self.fixed}", RuntimeWarning,
                          stacklevel=5)
        return self.fixed, dict(self.fixed_report, reason=reason)

    def use_fixed(self) -> Config:
        """This call runs the fixed configuration (tuning off, or arguments the launcher will reject)."""
        self.config, self.report = self.fixed, self.fixed_report
        return self.config

    def choose(self, like: torch.Tensor, rows: int, grads: bool, conv: bool, runner, compiler) -> Config:
        """The configuration for this call (recorded in ``config`` / ``report``).

        ``runner(mode)`` -> (``config`` -> a function running the call's workload with it) and
        ``compiler(mode)`` -> (``configs`` -> compile their kernels) are only called when tuning.
        """
        self.config, self.report = self._choose(like, rows, grads, conv, runner, compiler)
        return self.config

    def _choose(self, like, rows, grads, conv, runner, compiler) -> tuple[Config, dict]:
        if self.tune is False:
            return self.fixed, self.fixed_report
        reason = self.tuning_unavailable(like)
        if reason is not None:
            return self._no_tuning(reason)
        if rows == 0:
            return self.fixed, dict(self.fixed_report, reason="empty batch")
        base = ("forward_backward" if grads else "forward") if self.tune_mode == "auto" else self.tune_mode
        mode = f"conv_{base}" if conv else base
        memo = (like.dtype, like.device, autotune.rows_bucket(rows), mode)
        hit = self._resolved.get(memo)
        if hit is not None:
            return hit
        tuner = self.tuner or autotune.default_tuner()
        key = autotune.make_key(self.desc, _DTYPES[like.dtype], weight_mode(self.desc, self.shared),
                                autotune.device_name(like.device), rows, mode, self.tune_candidates)
        if like.is_cuda and torch.cuda.is_current_stream_capturing():  # no timing inside a CUDA graph capture
            r = tuner.cached(key)
            if r is None:
                return self._no_tuning("CUDA graph capture in progress and no tuned config cached")
        else:
            r = tuner.tune(key, runner(base), autotune.candidates_for(self.desc, rows, self.tune_candidates),
                           precompile=compiler(base))
        out = (r.config, r.report())
        self._resolved[memo] = out
        return out

    def describe(self) -> str:
        tune = "off" if self.tune is False else self.tune
        return f"tune={tune}, config=({self.config})"
