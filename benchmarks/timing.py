"""Timing: calls timed on the device's own clock, first-call wall time, peak memory, copy bandwidth."""
from __future__ import annotations

import statistics
import time
from typing import Callable, Optional

import torch


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable, device: torch.device, warmup: int, repeat: int) -> list[float]:
    """Milliseconds of each of ``repeat`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(repeat):
        if device.type == "cuda":  # events: the GPU's own clock, no host-side launch noise
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            out.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1e3)
    return out


def wall_ms(fn: Callable, device: torch.device) -> float:
    """Milliseconds of one call, host clock, the device synchronized before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return (time.perf_counter() - t0) * 1e3


def peak_mb(fn: Callable, device: torch.device) -> Optional[float]:
    """Device memory one call of `fn` allocates at its peak beyond what was allocated before it, in MB
    (the inputs are not counted); None off CUDA, where torch does not track it."""
    if device.type != "cuda":
        return None
    sync(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 1e6


def copy_bandwidth(device: torch.device, nbytes: Optional[int] = None, repeat: int = 10) -> float:
    """Bytes/s of a large device-to-device copy, counting both the read and the write."""
    nbytes = nbytes or (1 << 30 if device.type == "cuda" else 1 << 28)
    src = torch.ones(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    ms = statistics.median(measure(lambda: dst.copy_(src), device, warmup=3, repeat=repeat))
    return 2 * src.numel() * 4 / (ms / 1e3)
