"""The tensor-product benchmark suite (six NequIP/MACE/DiffDock-style problems) as data, and its memory floors.

Plain data and arithmetic: this module imports neither torch nor numpy (``descriptor`` builds the
eqdsl descriptor of a problem when asked), so tools that only list or describe the problems
(``benchmarks/inspect_kernels.py``) stay light.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    id: str
    mode: str     # "uvu" (channelwise) or "uvw" (fully connected)
    in1: str
    in2: str
    out: str      # uvw: the output irreps; uvu: the filter (every allowed path writes its own block)
    shared: bool  # one weight vector for the whole batch instead of one per edge


_NEQUIP = "64x0o+64x0e+64x1o+64x1e+64x2o+64x2e"
_L6 = "16x0e+16x1o+16x2e+16x3o+16x4e+16x5o+16x6e"
_DIFFDOCK = "10x1o+10x1e+48x0e+48x0o"
_FC = "32x0e+32x1o+32x2e"

SUITE = (
    Problem("nequip-toluene", "uvu", _NEQUIP, "0e+1o+2e", _NEQUIP, False),
    Problem("mace-medium", "uvu", "128x0e+128x1o", "0e+1o+2e+3o", "128x0e+128x1o+128x2e", False),
    Problem("mace-large", "uvu", "128x0e+128x1o+128x2e", "0e+1o+2e+3o", "128x0e+128x1o+128x2e+128x3o", False),
    Problem("uvu-L6", "uvu", _L6, "0e+1o+2e+3o+4e+5o+6e", _L6, False),
    Problem("diffdock-L2", "uvw", _DIFFDOCK, "0e+1o+2e", _DIFFDOCK, False),
    Problem("fc-shared-L2", "uvw", _FC, "0e+1o+2e", _FC, True),
)
PROBLEMS = {p.id: p for p in SUITE}

IMPLS = ("eqdsl-triton", "eqdsl-reference", "e3nn", "cuequivariance", "openequivariance")
CHECK_ROWS = 64  # rows of the verification slice (a multiple of Triton's 16-row blocks)


def descriptor(problem: Problem):
    """The eqdsl TensorProductDescriptor of a suite problem (paths, e3nn path weights)."""
    from eqdsl.groups import O3
    from eqdsl.reps import tp
    from eqdsl.reps.irreps import Irreps

    in1, in2, out = (Irreps.parse(s, O3) for s in (problem.in1, problem.in2, problem.out))
    if problem.mode == "uvu":  # one output block per path, kept where its irrep is in the filter
        return tp.describe(O3, in1, in2, "uvu", keep=[m.ir for m in out])
    return tp.describe(O3, in1, in2, "uvw", out=out)


# ---------------------------------------------------------------------------- memory floor

def floor_bytes(desc, batch: int, shared: bool, backward: bool = False) -> int:
    """float32 bytes that must move at least once.

    Forward: read x1, x2 and the weights, write the output.  The backward adds reading x1, x2,
    the weights and the output gradient and writing the three gradients.  Shared weights count
    once, per-edge weights once per row.
    """
    d1, d2, do = desc.irreps_in1.dim, desc.irreps_in2.dim, desc.irreps_out.dim
    w = desc.weight_numel if shared else batch * desc.weight_numel
    n = batch * (d1 + d2 + do) + w
    if backward:
        n += batch * (2 * d1 + 2 * d2 + do) + 2 * w
    return 4 * n


def floor_ms(nbytes: int, bandwidth: float) -> float:
    """Milliseconds to move ``nbytes`` at ``bandwidth`` bytes/s (reads and writes counted)."""
    return nbytes / bandwidth * 1e3
