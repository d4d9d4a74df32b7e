"""Autotuning of the launch configuration of the generated tensor-product kernels.

What is tuned: ``Config(block_b, block_c, num_warps, num_stages)``: rows per program
(``BLOCK_B``), the largest channel tile (``block_c``, a code-generation parameter: another
value is another generated module), Triton's ``num_warps`` and, optionally, ``num_stages``
(``None``: Triton's default; the default candidates leave it at that, because the kernels have
no ``tl.dot`` and few loops that software pipelining could overlap).  None of these changes the
numbers beyond float rounding; the tests run every candidate against the reference.

How: for a ``TuneKey`` seen for the first time, the kernels of every candidate are compiled
in one parallel batch (``precompile``), then every candidate is run once (code generation and
whatever compilation is left: this and the batch are recorded as *compile* time), then timed with CUDA events on the real inputs (forward, or forward + backward), and
the fastest is kept.  The result (chosen config, every candidate's time or error, tune
seconds, compile seconds) is written as JSON under ``tuning_dir()``, which is
``<kernel cache>/../triton_tuning``: ``$EQDSL_CACHE/triton_tuning`` or
``~/.cache/eqdsl/triton_tuning`` (``kernel_cache.cache_dir`` decides the root).  Another process
with the same key reads the file and measures nothing; its kernels come from the source cache
(``codegen``) and Triton's binary cache.

Keys (``TuneKey``): the kernel fingerprint (``KernelKey.digest()`` with the block_c field left
out, so it covers the descriptor, dtype, weight mode, generator version and Triton version),
dtype, weight mode, device name (``torch.cuda.get_device_name``), Triton version, a batch-size
bucket (rows rounded up to a power of two, capped at ``MAX_BUCKET``), what was timed (forward
or forward + backward), and a hash of the candidate list (a changed list re-tunes).

Safety: entries are written to a temporary file in the same directory and moved in place with
``os.replace`` (readers see the old or the new file, never half of one); tuning one key is
serialized across processes with an advisory ``fcntl`` lock (a process waiting on it then
reads the other's result instead of timing against it).  An unreadable or corrupt entry is
ignored with a warning and re-tuned; an unwritable cache directory costs a warning, not the
result.

Timings are only meaningful on a GPU: ``TritonTensorProduct`` never tunes on the CPU or under
``TRITON_INTERPRET``.  The measuring function is a parameter of ``Tuner`` so that the logic is
testable without CUDA.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import statistics
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from . import codegen, kernel_cache

TUNER_VERSION = 1
ENTRY_FORMAT = "eqdsl-triton-tuning"
MAX_BUCKET = 1 << 16          # rows beyond 65536 share one bucket (the suite's 50,000 rows land there)
MAX_TILE_ELEMENTS = 512       # block_b * block_c: 1024-element tiles spilled registers in the sm_90 builds
BASE_MODES = ("forward", "forward_backward")
# what is timed: the per-row tensor product, or the fused message-passing convolution (rows are edges)
MODES = BASE_MODES + tuple(f"conv_{m}" for m in BASE_MODES)


@dataclass(frozen=True)
class Config:
    """One launch configuration. ``num_stages=None`` leaves Triton's default."""

    block_b: int = 16
    block_c: int = 16
    num_warps: int = 4
    num_stages: Optional[int] = None

    def __post_init__(self):
        for name in ("block_b", "block_c", "num_warps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1 or v & (v - 1):
                raise ValueError(f"{name} must be a positive power of two, got {v!r}")
        if self.num_stages is not None and (not isinstance(self.num_stages, int) or isinstance(self.num_stages, bool)
                                            or self.num_stages < 1):
            raise ValueError(f"num_stages must be a positive int or None, got {self.num_stages!r}")

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        if not isinstance(d, dict) or set(d) != {"block_b", "block_c", "num_warps", "num_stages"}:
            raise ValueError(f"not a config: {d!r}")
        return cls(**d)

    def __str__(self) -> str:
        s = f"block_b={self.block_b} block_c={self.block_c} num_warps={self.num_warps}"
        return s + (f" num_stages={self.num_stages}" if self.num_stages is not None else "")


DEFAULT_CONFIG = Config(16, 16, 4)

# The candidates (before filtering per problem): block_b in {16, 32, 64} x block_c in {8, 16, 32}
# x num_warps in {2, 4, 8}, keeping tiles of at most MAX_TILE_ELEMENTS elements and at most one
# thread per tile element (more warps than elements only replicates work).  17 configs; the
# default comes first, so that ties and failures fall back to it.
BLOCK_B_CHOICES = (16, 32, 64)
BLOCK_C_CHOICES = (8, 16, 32)
NUM_WARPS_CHOICES = (2, 4, 8)


def _valid(c: Config) -> bool:
    tile = c.block_b * c.block_c
    return tile <= MAX_TILE_ELEMENTS and 32 * c.num_warps <= max(tile, 64)


CANDIDATES: tuple[Config, ...] = tuple(dict.fromkeys(
    [DEFAULT_CONFIG] + [c for c in (Config(b, bc, w) for b in BLOCK_B_CHOICES for bc in BLOCK_C_CHOICES
                                    for w in NUM_WARPS_CHOICES) if _valid(c)]))


def _next_pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def channel_cap(desc) -> int:
    """The widest channel tile any kernel of `desc` can use (block_c beyond it generates the same code).

    Channel tiles span an irreps block's multiplicity (x1, x2, output), a reduced channel index
    (also a multiplicity) or one path's weights (u*v or u*v*w elements).
    """
    widths = [b.mul for irr in (desc.irreps_in1, desc.irreps_in2, desc.irreps_out) for b in irr]
    widths += [p.weight_numel for p in desc.paths]
    return _next_pow2(max(widths + [1]))


def candidates_for(desc, rows: int, candidates: Sequence[Config] = CANDIDATES) -> list[Config]:
    """The candidates worth timing for one problem: block_c clamped to what the descriptor can use,
    block_b no larger than the batch needs (but the smallest one kept), duplicates and invalid
    (per ``_valid``) combinations dropped; order kept."""
    cap = channel_cap(desc)
    row_cap = max(min(c.block_b for c in candidates), _next_pow2(max(rows, 1)))
    out = []
    for c in candidates:
        if c.block_b > row_cap:
            continue
        c = Config(c.block_b, min(c.block_c, cap), c.num_warps, c.num_stages)
        if _valid(c) and c not in out:
            out.append(c)
    return out or [Config(DEFAULT_CONFIG.block_b, min(DEFAULT_CONFIG.block_c, cap), DEFAULT_CONFIG.num_warps)]


def rows_bucket(rows: int) -> int:
    """Rows rounded up to a power of two, capped at MAX_BUCKET."""
    return min(_next_pow2(max(int(rows), 1)), MAX_BUCKET)


def kernel_fingerprint(desc, dtype: str, weights: str) -> str:
    """The kernel cache's hash (``KernelKey.digest``) of everything but block_c: descriptor (irreps,
    paths, path weights), dtype, weight mode, generator version, Triton version."""
    canon = codegen.KernelKey(desc, dtype, weights).canonical()
    canon = "\n".join(ln for ln in canon.splitlines() if not ln.startswith("block_c "))
    return hashlib.sha256(canon.encode()).hexdigest()


def _candidates_hash(candidates: Iterable[Config]) -> str:
    text = ";".join(str(c) for c in candidates)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def device_name(device) -> str:
    """torch.cuda.get_device_name for CUDA devices, the device type otherwise."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


@dataclass(frozen=True)
class TuneKey:
    fingerprint: str
    dtype: str
    weights: str
    device: str
    triton: str
    bucket: int
    mode: str
    candidates: str
    version: int = TUNER_VERSION

    def as_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()

    def filename(self) -> str:
        return f"tune_{self.digest()[:32]}.json"


def make_key(desc, dtype: str, weights: str, device: str, rows: int, mode: str = "forward",
             candidates: Sequence[Config] = CANDIDATES) -> TuneKey:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    return TuneKey(kernel_fingerprint(desc, dtype, weights), dtype, weights, device, codegen._triton_version(),
                   rows_bucket(rows), mode, _candidates_hash(candidates))


@dataclass
class TuneResult:
    """A tuning outcome: the chosen config, and how it was obtained.

    ``source``: "tuned" (measured in this process), "disk" (read from the tuning cache),
    "memory" (this process tuned or read it before).  ``timings``: one dict per candidate,
    ``{"config": {...}, "ms": float, "compile_s": float}`` or ``{"config": {...}, "error": str}``.
    ``tune_s``: seconds spent timing (first calls excluded); ``compile_s``: seconds of compiling
    every candidate ahead (in parallel, when the caller can) plus the candidates' first calls (code
    generation, any JIT compilation left, one run), as recorded when the key was tuned (in
    whichever process did it).  A candidate's own ``compile_s`` is its first call alone.
    """

    key: TuneKey
    config: Config
    timings: list = field(default_factory=list)
    tune_s: float = 0.0
    compile_s: float = 0.0
    source: str = "tuned"
    path: Optional[str] = None

    def report(self) -> dict:
        return {"source": self.source, "config": self.config.as_dict(), "tune_s": self.tune_s,
                "compile_s": self.compile_s, "timings": self.timings, "key": self.key.as_dict(), "path": self.path}


def tuning_dir() -> Path:
    """Next to the kernel source cache: ``$EQDSL_CACHE/triton_tuning`` or ``~/.cache/eqdsl/triton_tuning``."""
    return kernel_cache.cache_dir().parent / "triton_tuning"


def cuda_event_timer(fn: Callable[[], object], config: Config, warmup: int = 3, repeat: int = 10) -> float:
    """Median milliseconds of `fn` over `repeat` runs, each bracketed by CUDA events (after `warmup` runs)."""
    import torch

    for _ in range(warmup):
        fn()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeat)]
    for start, end in events:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) for s, e in events)


def _cuda_sync() -> None:
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive advisory lock on `path` (fcntl; a no-op where that is unavailable or the directory
    cannot be written: tuning twice is wasteful, never wrong)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")
    except OSError:
        yield
        return
    with f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class Tuner:
    """Picks the fastest candidate per ``TuneKey``, remembering results in memory and on disk.

    ``measure(fn, config) -> milliseconds`` times one candidate's runner (default: CUDA events);
    ``sync()`` waits for the device after a candidate's first call (default: cuda synchronize);
    ``cache_dir`` defaults to ``tuning_dir()`` evaluated at each use (so EQDSL_CACHE may change).
    """

    def __init__(self, measure: Optional[Callable[[Callable[[], object], Config], float]] = None,
                 sync: Optional[Callable[[], None]] = None, cache_dir: Optional[os.PathLike] = None):
        self.measure = measure or cuda_event_timer
        self.sync = sync or _cuda_sync
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._memo: dict[TuneKey, TuneResult] = {}
        self._lock = threading.Lock()

    @property
    def cache_dir(self) -> Path:
        return self._cache_dir if self._cache_dir is not None else tuning_dir()

    def path(self, key: TuneKey) -> Path:
        return self.cache_dir / key.filename()

    def clear_memory(self) -> None:
        """Forget in-memory results (as a new process would); the disk cache stays."""
        self._memo.clear()

    def cached(self, key: TuneKey) -> Optional[TuneResult]:
        """The remembered or stored result for `key`, without tuning (None when there is none)."""
        r = self._memo.get(key)
        if r is not None:
            return TuneResult(r.key, r.config, r.timings, r.tune_s, r.compile_s, "memory", r.path)
        r = self._read(key)
        if r is not None:
            self._memo[key] = r
        return r

    def tune(self, key: TuneKey, runner: Callable[[Config], Callable[[], object]],
             candidates: Sequence[Config],
             precompile: Optional[Callable[[Sequence[Config]], None]] = None) -> TuneResult:
        """The config for `key`: from memory, from disk, or by timing `runner(config)()` for each candidate.

        `runner(config)` returns a zero-argument function that runs the real workload with that
        config.  A candidate that raises (e.g. Triton's OutOfResources) is recorded and skipped.
        `precompile(candidates)`, when given, is called once before the first candidate runs, to
        compile every candidate's kernels at once (in parallel); its wall time counts as compile
        time, and an error in it only costs a warning (each candidate's first call compiles then).
        """
        with self._lock:
            r = self._memo.get(key)
            if r is not None:
                return TuneResult(r.key, r.config, r.timings, r.tune_s, r.compile_s, "memory", r.path)
            path = self.path(key)
            with _file_lock(path.with_suffix(".lock")):
                r = self._read(key)  # another process may have tuned it while this one waited
                if r is None:
                    r = self._measure(key, runner, candidates, precompile)
                    r.path = str(path)
                    self._write(path, r)
            self._memo[key] = r
            return r

    # -- internals ---------------------------------------------------------------------------------

    def _measure(self, key: TuneKey, runner, candidates: Sequence[Config], precompile=None) -> TuneResult:
        if not candidates:
            raise ValueError("no candidate configs to tune over")
        timings, compile_s, tune_s, errors = [], 0.0, 0.0, []
        if precompile is not None:
            t0 = time.perf_counter()
            try:
                precompile(candidates)
            except Exception as err:  # noqa: BLE001 -- only a speed-up: the first calls compile instead
                warnings.warn(f"eqdsl triton tuning: compiling the candidates ahead failed ({type(err).__name__}: "
                              f"{err}); each candidate compiles on its first call", RuntimeWarning, stacklevel=4)
            compile_s += time.perf_counter() - t0
        best: Optional[tuple[float, Config]] = None
        for cfg in candidates:
            try:
                fn = runner(cfg)
                t0 = time.perf_counter()
                fn()  # source generation + JIT compilation + one run
                self.sync()
                first = time.perf_counter() - t0
                compile_s += first
                t0 = time.perf_counter()
                ms = float(self.measure(fn, cfg))
                tune_s += time.perf_counter() - t0
            except Exception as err:  # one bad candidate (out of resources, ...) must not stop tuning
                errors.append(err)
                timings.append({"config": cfg.as_dict(), "error": f"{type(err).__name__}: {err}"[:300]})
                continue
            timings.append({"config": cfg.as_dict(), "ms": ms, "compile_s": first})
            if best is None or ms < best[0]:
                best = (ms, cfg)
        if best is None:
            raise RuntimeError(f"every candidate config failed; the first error: {errors[0]!r}") from errors[0]
        return TuneResult(key, best[1], timings, tune_s, compile_s, "tuned")

    def _read(self, key: TuneKey) -> Optional[TuneResult]:
        path = self.path(key)
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            warnings.warn(f"eqdsl triton tuning: cannot read {path} ({err}); re-tuning", RuntimeWarning,
                          stacklevel=3)
            return None
        try:
            d = json.loads(raw.decode("utf-8"))  # UnicodeDecodeError is a ValueError
            if not isinstance(d, dict) or d.get("format") != ENTRY_FORMAT or d.get("version") != TUNER_VERSION:
                raise ValueError("not a tuning entry of this version")
            if d.get("key") != key.as_dict():
                raise ValueError("the entry was written for another key")
            config = Config.from_dict(d["config"])
            timings = d["timings"]
            if not isinstance(timings, list):
                raise ValueError("timings is not a list")
            tune_s, compile_s = float(d["tune_s"]), float(d["compile_s"])
        except (ValueError, KeyError, TypeError) as err:
            warnings.warn(f"eqdsl triton tuning: ignoring corrupt cache entry {path} ({err}); re-tuning",
                          RuntimeWarning, stacklevel=3)
            return None
        return TuneResult(key, config, timings, tune_s, compile_s, "disk", str(path))

    def _write(self, path: Path, r: TuneResult) -> None:
        entry = {"format": ENTRY_FORMAT, "version": TUNER_VERSION, "key": r.key.as_dict(),
                 "config": r.config.as_dict(), "timings": r.timings, "tune_s": r.tune_s, "compile_s": r.compile_s,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(entry, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic: readers see the old entry or the new one
        except OSError as err:
            warnings.warn(f"eqdsl triton tuning: cannot write {path} ({err}); the result is kept in memory only",
                          RuntimeWarning, stacklevel=3)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


_DEFAULT_TUNER: Optional[Tuner] = None


def default_tuner() -> Tuner:
    """The process-wide tuner ``TritonTensorProduct`` uses (CUDA events, the default cache dir)."""
    global _DEFAULT_TUNER
    if _DEFAULT_TUNER is None:
        _DEFAULT_TUNER = Tuner()
    return _DEFAULT_TUNER
