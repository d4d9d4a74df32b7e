"""The static occupancy inspect_kernels reports (sm_90 limits: 65536 registers, 64 warps, 32 blocks per SM)."""
import pytest

from eqdsl.benchmarks.inspect_kernels import occupancy


@pytest.mark.parametrize("regs,warps,shared,expected", [
    (32, 4, 0, 1.0),          # 4096 registers per block: 16 blocks, 64 warps
    (40, 4, 0, 0.75),         # 1280 per warp -> 51 warps' worth -> 12 blocks of 4 warps
    (128, 4, 0, 0.25),
    (255, 4, 0, 0.125),       # rounded up to 256 per thread: 2 blocks
    (64, 8, 0, 0.5),          # 8 warps per block: 4 blocks
    (16, 1, 0, 0.5),          # the 32-block limit: 32 one-warp blocks
    (32, 4, 100 * 1024, 0.125),  # shared memory: 2 blocks of 100 KB, 8 warps
])
def test_occupancy(regs, warps, shared, expected):
    assert occupancy(regs, warps, shared) == pytest.approx(expected)
