"""A stand-in for Triton's CUDA driver: the compiled-kernel path of the Triton backend, without a GPU.

For scripts run by ``run_compiler_script`` (a process whose triton is not in interpreter mode).
``install()`` makes Triton see one sm_90 device with an H100's limits and switches eqdsl's
launch path on for CPU tensors.  Kernels then compile for real when asked (Triton lowers to PTX
in-process and runs the ptxas its wheel ships); loading a binary returns placeholder handles, after
Triton's own checks of shared memory and threads against the device; a launch records the kernel,
its grid and its argument count instead of running.  The tensors are CPU tensors and the outputs
are never written, so values mean nothing: what this exercises is which kernels are compiled, under
which cache keys, and whether they fit the device.
"""
from __future__ import annotations

from triton.backends.compiler import GPUTarget
from triton.runtime.driver import driver

# the properties Triton reads when it loads a kernel (an H100 SXM: 227 KiB of shared memory per block)
H100 = {"max_shared_mem": 232448, "max_num_regs": 65536, "multiprocessor_count": 132, "warpSize": 32}


class _Utils:
    def load_binary(self, name, kernel, shared, device):
        # (module, function, registers, spills, max threads per block)
        return ("module:" + name, name, 0, 0, 1024)

    def unload_module(self, module):
        pass

    def get_device_properties(self, device):
        return dict(H100)


class StandInCudaDriver:
    def __init__(self):
        self.utils = _Utils()
        self.launches: list[tuple[str, tuple[int, int, int], int]] = []  # (kernel, grid, arguments)

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_current_target(self):
        return GPUTarget("cuda", 90, 32)

    @property
    def launcher_cls(self):
        launches = self.launches

        class Launcher:
            def __init__(self, src, metadata):
                pass

            def __call__(self, gx, gy, gz, stream, function, packed_metadata, launch_metadata, enter_hook,
                         exit_hook, *args):
                launches.append((function, (gx, gy, gz), len(args)))
        return Launcher


def install() -> StandInCudaDriver:
    """Make the stand-in Triton's active driver and let eqdsl's launch path (compiling ahead included)
    take CPU tensors; returns the driver, whose ``launches`` list grows with every launch."""
    import eqdsl.backends.triton as tri
    from eqdsl.backends.triton import fused

    d = StandInCudaDriver()
    driver.set_active(d)
    tri.per_row._compiles_ahead = lambda like: True
    tri.per_row._check_device = fused._check_device = lambda t, *_: None
    return d
