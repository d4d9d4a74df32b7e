"""The traffic model of the generated kernels: what each launch must move, computed from the kernels themselves.

Two steps, both on the runtime's own code paths, so the model cannot drift from what runs:

* ``recorded()``: while it is active, ``per_row.launch_kernel`` (where every generated kernel is launched)
  records each launch (kernel, grid, arguments, launch options) instead of running it, and operands on
  any device pass the device check.  A workload run inside it (a forward, a backward, second derivatives:
  the real autograd code) lists exactly the kernels it would launch, in order.  On meta tensors this costs
  nothing at any size; outputs are left unwritten, so values mean nothing.
* ``trace(launch)``: runs every program of a recorded launch through the kernel's own Python function
  (``JITFunction.fn``, the code Triton compiles) with ``triton.language`` replaced by a counting stand-in:
  index arithmetic is done exactly on integer arrays, feature values are not computed at all, and every
  ``tl.load``, ``tl.store`` and ``tl.atomic_add`` records the elements its active lanes touch.  A small
  launch is traced (a few row blocks); ``scaled`` carries its counts to the size of the same launch
  recorded at the model's scale: issued accesses scale with the rows, distinct elements with each
  argument's leading dimension (per-row operands with the rows, node features with the nodes, one
  shared weight vector not at all).

Per launch the model gives the bytes read and written from memory under perfect L2 reuse inside a kernel
and none across kernels (distinct elements touched; an atomic add reads and writes its element), the
bytes the loads and stores issue (every active lane of every executed instruction, no L1 reuse), the
32-byte sectors those instructions touch (distinct sectors per executed instruction over the program's
tile: the layout's coalescing) and the atomic operations.  The traced counts are checked against
Triton's interpreter, instruction by instruction, in tests/backends/test_triton_traffic.py.
"""
from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from . import per_row

SECTOR = 32  # bytes per L2 sector (and per DRAM access granule) on NVIDIA GPUs


class ModelError(RuntimeError):
    """A kernel uses something the traffic model does not know how to count."""


@dataclass
class Launch:
    """One recorded kernel launch."""

    kernel: object  # the JITFunction
    grid: tuple
    args: tuple
    meta: dict

    @property
    def name(self) -> str:
        return getattr(self.kernel, "fn", self.kernel).__name__

    @property
    def programs(self) -> int:
        return int(np.prod(self.grid))

    @property
    def rows(self) -> int:
        """The launch's row count (its ``N``: edges for the fused convolution)."""
        names = list(self.kernel.arg_names)
        return int(self.args[names.index("N")])


@contextlib.contextmanager
def recorded():
    """Record the launches of the generated kernels instead of running them (see the module docstring)."""
    if per_row._RECORDER is not None:
        raise RuntimeError("traffic.recorded() is already active")
    launches: list[Launch] = []
    per_row._RECORDER = lambda kernel, grid, args, meta: launches.append(Launch(kernel, tuple(grid), args, meta))
    try:
        yield launches
    finally:
        per_row._RECORDER = None


# -----------------------------------------------------------------------------
# the counting stand-in for triton.language
# -----------------------------------------------------------------------------

class _Value:
    """A value whose numbers the model does not need (features, accumulators): arithmetic gives itself."""

    __array_ufunc__ = None  # numpy arrays defer to the reflected operators below

    def _same(self, *_, **__):
        return self

    __add__ = __radd__ = __iadd__ = __sub__ = __rsub__ = __isub__ = _same
    __mul__ = __rmul__ = __imul__ = __truediv__ = __rtruediv__ = __itruediv__ = _same
    __neg__ = __pos__ = __getitem__ = to = _same


_VALUE = _Value()


class _Index(np.ndarray):
    """Integer (and mask) arrays of the kernel's index arithmetic, computed exactly."""

    def to(self, *_, **__):
        return self


def _index(a) -> _Index:
    return np.asarray(a).view(_Index)


class _Pointer:
    """Argument `arg` plus element offsets."""

    __array_ufunc__ = None

    def __init__(self, arg: int, offset=0):
        self.arg, self.offset = arg, offset

    def __add__(self, other):
        return _Pointer(self.arg, self.offset + other)

    __radd__ = __add__


@dataclass
class Access:
    """One kind of access (load, store or atomic add) to one argument, over the traced programs."""

    issued: int = 0  # elements: active lanes of every executed instruction
    sectors: int = 0  # distinct 32-byte sectors per executed instruction, summed
    instructions: int = 0
    elements: list = field(default_factory=list, repr=False)  # offsets touched (arrays), for the distinct count

    def add(self, offsets: np.ndarray, itemsize: int) -> None:
        self.issued += offsets.size
        self.sectors += int(np.unique(offsets * itemsize // SECTOR).size)
        self.instructions += 1
        self.elements.append(offsets)


class _CountingLanguage:
    """``tl`` for ``trace``: the subset of triton.language the generators emit; anything else is a ModelError."""

    constexpr = object
    float16 = bfloat16 = float32 = float64 = int1 = int8 = int16 = int32 = int64 = "dtype"

    def __init__(self, itemsizes: list[Optional[int]], index_values: dict[int, np.ndarray]):
        self.itemsizes, self.index_values = itemsizes, index_values
        self.pid = 0
        self.accesses: dict[tuple[int, str], Access] = {}

    def __getattr__(self, name):
        raise ModelError(f"the traffic model does not know tl.{name}: teach backends/triton/traffic.py to count it")

    def program_id(self, axis):
        if axis != 0:
            raise ModelError("the traffic model traces one-dimensional grids")
        return self.pid

    def arange(self, start, end):
        return _index(np.arange(start, end, dtype=np.int64))

    def zeros(self, shape, dtype=None):
        return _VALUE

    def cdiv(self, a, b):
        return -(-a // b)

    def minimum(self, a, b):
        return np.minimum(a, b)

    def sum(self, x, axis=None, keep_dims=False):
        if isinstance(x, _Value):
            return _VALUE
        return _index(np.sum(x, axis=axis, keepdims=keep_dims))

    def _record(self, kind: str, pointer, mask) -> tuple[_Pointer, np.ndarray]:
        if not isinstance(pointer, _Pointer):
            raise ModelError(f"tl.{kind} on something that is not an argument pointer")
        offset = np.asarray(pointer.offset, dtype=np.int64)
        if mask is None:
            active = np.ones(offset.shape, dtype=bool)
        else:
            shape = np.broadcast_shapes(offset.shape, np.shape(mask))
            offset, active = np.broadcast_to(offset, shape), np.broadcast_to(np.asarray(mask, dtype=bool), shape)
        size = self.itemsizes[pointer.arg]
        if size is None:
            raise ModelError(f"tl.{kind} through argument {pointer.arg}, which is not a tensor")
        acc = self.accesses.setdefault((pointer.arg, kind), Access())
        acc.add(offset[active], size)
        return pointer, np.where(active, offset, 0)

    def load(self, pointer, mask=None, other=None, **_):
        pointer, offset = self._record("load", pointer, mask)
        values = self.index_values.get(pointer.arg)
        if values is None:
            return _VALUE
        got = values.reshape(-1)[offset]
        if mask is not None:
            got = np.where(np.broadcast_to(np.asarray(mask, dtype=bool), got.shape), got, other or 0)
        return _index(got)

    def store(self, pointer, value, mask=None, **_):
        self._record("store", pointer, mask)

    def atomic_add(self, pointer, value, mask=None, sem=None, **_):
        self._record("atomic", pointer, mask)
        return _VALUE


# -----------------------------------------------------------------------------
# tracing one launch, and carrying it to another size
# -----------------------------------------------------------------------------

@dataclass
class ArgumentTraffic:
    """One tensor argument of a traced launch."""

    name: str
    itemsize: int
    leading: int  # its leading dimension (1 for a 0-d tensor)
    load: Access
    store: Access
    atomic: Access
    read: int  # distinct elements read (loads and atomic adds)
    written: int  # distinct elements written (stores and atomic adds)


@dataclass
class Trace:
    """Every program of one launch, counted."""

    name: str
    programs: int
    rows: int
    arguments: list[ArgumentTraffic]


def _distinct(*accesses: Access) -> int:
    parts = [e for a in accesses for e in a.elements]
    return int(np.unique(np.concatenate(parts)).size) if parts else 0


def trace(launch: Launch) -> Trace:
    """Run every program of `launch` (a small one: this is Python) through the counting stand-in."""
    fn = getattr(launch.kernel, "fn", None)
    if not isinstance(fn, types.FunctionType):
        raise ModelError(f"{launch.name}: not a Triton kernel with a Python function")
    names = list(launch.kernel.arg_names)
    itemsizes = [a.element_size() if isinstance(a, torch.Tensor) else None for a in launch.args]
    index_values = {i: a.detach().cpu().numpy() for i, a in enumerate(launch.args)
                    if isinstance(a, torch.Tensor) and not a.is_floating_point()}
    tl = _CountingLanguage(itemsizes, index_values)
    counting = types.FunctionType(fn.__code__, {**fn.__globals__, "tl": tl}, fn.__name__, fn.__defaults__,
                                  fn.__closure__)
    args = [_Pointer(i) if isinstance(a, torch.Tensor) else a for i, a in enumerate(launch.args)]
    constexprs = {k: v for k, v in launch.meta.items() if k in names}
    for pid in range(launch.programs):
        tl.pid = pid
        counting(*args, **constexprs)
    arguments = []
    for i, a in enumerate(launch.args):
        if not isinstance(a, torch.Tensor):
            continue
        load, store, atomic = (tl.accesses.get((i, k), Access()) for k in ("load", "store", "atomic"))
        arguments.append(ArgumentTraffic(names[i], itemsizes[i], a.shape[0] if a.dim() else 1, load, store, atomic,
                                         _distinct(load, atomic), _distinct(store, atomic)))
    return Trace(launch.name, launch.programs, launch.rows, arguments)


@dataclass
class Traffic:
    """What one launch moves, at the size of the launch it was scaled to (bytes unless named otherwise)."""

    name: str
    programs: int
    read: float  # from memory, perfect L2 reuse inside the kernel, none across kernels
    written: float
    issued: float  # by the loads, stores and atomics of every program (no L1 reuse)
    sectors: float  # 32-byte sectors those instructions touch
    atomics: float  # atomic operations (elements)
    instructions: float  # executed load / store / atomic instructions (tiles), over all programs

    @property
    def moved(self) -> float:
        return self.read + self.written


def scaled(t: Trace, launch: Launch) -> Traffic:
    """`t`'s counts carried to `launch`, the same kernel recorded at another size: accesses scale with the
    rows (every row block runs the same code), distinct elements with each argument's leading dimension.
    Exact when both row counts are multiples of the kernel's row block."""
    if launch.name != t.name:
        raise ModelError(f"scaling a trace of {t.name} to a launch of {launch.name}")
    tensors = [a for a in launch.args if isinstance(a, torch.Tensor)]
    rows = launch.rows / t.rows
    read = written = issued = sectors = atomics = instructions = 0.0
    for arg, big in zip(t.arguments, tensors):
        lead = (big.shape[0] if big.dim() else 1) / arg.leading
        size = big.element_size()
        read += arg.read * lead * size
        written += arg.written * lead * size
        for acc in (arg.load, arg.store, arg.atomic):
            issued += acc.issued * rows * size
            sectors += acc.sectors * rows
            instructions += acc.instructions * rows
        atomics += arg.atomic.issued * rows
    return Traffic(t.name, launch.programs, read, written, issued, sectors, atomics, instructions)
