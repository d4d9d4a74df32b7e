"""Tensor-product descriptors: which paths a tensor product computes and how they are weighted.

A descriptor is pure data built from representations (no torch): the type
checker builds it, the IR carries it, backends execute it.  Path weights follow
e3nn (irrep_normalization='component', path_normalization='element'), so the
same weights give the same numbers as ``e3nn.o3.TensorProduct``.

Modes (e3nn's connection modes):
  uvw   fully connected: out[w] = sum_uv W[u,v,w] x1[u] (x) x2[v]
  uvu   channelwise:     out[u] = sum_v  W[u,v]   x1[u] (x) x2[v]   (mul_out == mul1)
  uvuv  full (no weights): out[u,v] = x1[u] (x) x2[v]                (mul_out == mul1*mul2)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from math import prod, sqrt

from .irreps import Irreps, MulIr

MODES = ("uvw", "uvu", "uvuv")


@dataclass(frozen=True)
class Path:
    i_in1: int
    i_in2: int
    i_out: int
    mode: str
    has_weight: bool
    path_weight: float  # sqrt(alpha): multiplies the Clebsch-Gordan contraction
    weight_shape: tuple[int, ...]

    @property
    def weight_numel(self) -> int:
        return prod(self.weight_shape) if self.has_weight else 0


@dataclass(frozen=True)
class TensorProductDescriptor:
    irreps_in1: Irreps
    irreps_in2: Irreps
    irreps_out: Irreps
    paths: tuple[Path, ...]

    def __post_init__(self):
        # read on every tensor-product call (plan and kernel caches are keyed by the descriptor): computed
        # once, as plain attributes (which torch.compile traces); the hash is the one dataclass would give
        object.__setattr__(self, "_weight_numel", sum(p.weight_numel for p in self.paths))
        object.__setattr__(self, "_hash", hash(tuple(getattr(self, f.name) for f in fields(self))))

    def __hash__(self) -> int:
        return self._hash

    def __getstate__(self) -> dict:
        # the fields only: string hashes differ between processes, so the cached values are recomputed
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __setstate__(self, state: dict) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    @property
    def weight_numel(self) -> int:
        return self._weight_numel

    def weight_slices(self) -> list[slice | None]:
        """Where each path's weights sit in the flat weight vector (None for unweighted paths)."""
        out, start = [], 0
        for p in self.paths:
            if p.has_weight:
                out.append(slice(start, start + p.weight_numel))
                start += p.weight_numel
            else:
                out.append(None)
        return out

    def __str__(self) -> str:
        return f"{self.irreps_in1} (x) {self.irreps_in2} -> {self.irreps_out} [{len(self.paths)} paths, {self.weight_numel} weights]"


def _num_elements(mode: str, mul1: int, mul2: int) -> int:
    return {"uvw": mul1 * mul2, "uvu": mul2, "uvuv": 1}[mode]


def _weight_shape(mode: str, mul1: int, mul2: int, mulo: int) -> tuple[int, ...]:
    return {"uvw": (mul1, mul2, mulo), "uvu": (mul1, mul2), "uvuv": (mul1, mul2)}[mode]


def build(in1: Irreps, in2: Irreps, out: Irreps, raw: list[tuple[int, int, int, str, bool]]) -> TensorProductDescriptor:
    """Attach e3nn's 'component'/'element' normalization to raw (i1, i2, io, mode, has_weight) paths."""
    paths = []
    for i1, i2, io, mode, has_weight in raw:
        m1, m2, mo = in1[i1].mul, in2[i2].mul, out[io].mul
        alpha = float(out[io].ir.dim)
        x = sum(_num_elements(r[3], in1[r[0]].mul, in2[r[1]].mul) for r in raw if r[2] == io)
        if x > 0:
            alpha /= x
        paths.append(Path(i1, i2, io, mode, has_weight, sqrt(alpha), _weight_shape(mode, m1, m2, mo)))
    return TensorProductDescriptor(in1, in2, out, tuple(paths))


def reachable(group, in1: Irreps, in2: Irreps) -> list:
    """Every irrep some pair of input blocks can produce, sorted."""
    found = set()
    for a in in1:
        for b in in2:
            found.update(group.product(a.ir, b.ir))
    return sorted(found)


def fully_connected(group, in1: Irreps, in2: Irreps, out: Irreps, weighted: bool = True) -> TensorProductDescriptor:
    raw = [(i1, i2, io, "uvw", weighted)
           for i1, a in enumerate(in1) for i2, b in enumerate(in2) for io, c in enumerate(out)
           if c.ir in group.product(a.ir, b.ir) and a.mul * b.mul * c.mul > 0]
    return build(in1, in2, out, raw)


def channelwise_to(group, in1: Irreps, in2: Irreps, out: Irreps, weighted: bool = True) -> TensorProductDescriptor:
    """uvu into a given output: a path exists where the selection rule allows it and mul_out == mul1."""
    raw = [(i1, i2, io, "uvu", weighted)
           for i1, a in enumerate(in1) for i2, b in enumerate(in2) for io, c in enumerate(out)
           if c.ir in group.product(a.ir, b.ir) and a.mul == c.mul and a.mul * b.mul > 0]
    return build(in1, in2, out, raw)


def _concatenated(group, in1: Irreps, in2: Irreps, keep, mode: str, weighted: bool) -> TensorProductDescriptor:
    blocks: list[MulIr] = []
    raw = []
    for i1, a in enumerate(in1):
        for i2, b in enumerate(in2):
            for ir in group.product(a.ir, b.ir):
                if keep is not None and ir not in keep:
                    continue
                mul = a.mul if mode == "uvu" else a.mul * b.mul
                raw.append((i1, i2, len(blocks), mode, weighted))
                blocks.append(MulIr(mul, ir))
    return build(in1, in2, Irreps(tuple(blocks)), raw)


def channelwise(group, in1: Irreps, in2: Irreps, keep=None, weighted: bool = True) -> TensorProductDescriptor:
    """uvu as in NequIP/MACE convolutions: every allowed path writes its own ``mul1 x ir`` block."""
    return _concatenated(group, in1, in2, keep, "uvu", weighted)


def full(group, in1: Irreps, in2: Irreps, keep=None) -> TensorProductDescriptor:
    """Every allowed path, no weights: each writes a ``mul1*mul2 x ir`` block."""
    return _concatenated(group, in1, in2, keep, "uvuv", False)


def describe(group, in1: Irreps, in2: Irreps, mode: str, out: Irreps | None = None, keep=None) -> TensorProductDescriptor:
    """The descriptor of `tensor_product(a, b, mode = ..., filter = keep) [-> out]` (no validation here).

    mode is the spec's name: "uvw", "uvu" or "full".  ``keep`` is an iterable of irreps or None.
    Descriptors are immutable values, so each is built once per process: the checker, the IR
    verifier (after every pass) and every generated module's constructor ask for the same ones.
    """
    return _describe(group, in1, in2, mode, out, tuple(keep) if keep is not None else None)


@functools.lru_cache(maxsize=4096)
def _describe(group, in1: Irreps, in2: Irreps, mode: str, out: Irreps | None, keep: tuple | None):
    keep = list(keep) if keep is not None else None
    if mode == "uvw":
        return fully_connected(group, in1, in2, out)
    if mode == "uvu":
        return channelwise_to(group, in1, in2, out) if out is not None else channelwise(group, in1, in2, keep)
    if mode == "full":
        return full(group, in1, in2, keep)
    raise ValueError(f"unknown tensor-product mode {mode!r}")
