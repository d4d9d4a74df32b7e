"""The anchors' adapters: e3nn, cuEquivariance and OpenEquivariance built from an eqdsl descriptor.

Every implementation is given the same random inputs in eqdsl's layout (e3nn's ``mul_ir``); an
adapter converts them once, outside the timed region, to what the library expects
(cuEquivariance: ``ir_mul`` and its own block order).  The libraries are imported when an adapter
is built: ``registry.probe`` says beforehand which are installed.
"""
from __future__ import annotations

import torch

from .impl import Impl


def e3nn_instructions(desc) -> list[tuple]:
    """e3nn instructions for the descriptor's paths, in its order (so the weights line up).

    No path weights are passed: e3nn derives them from its defaults (irrep_normalization
    'component', path_normalization 'element'), the convention the descriptor follows, so equal
    outputs check that the two agree.  A channelwise ('uvu') problem where every allowed path
    writes its own block is, in e3nn, an output irreps with one ``mul1 x ir_out`` entry per path
    and the instruction (i1, i2, k, 'uvu', True) writing entry k.
    """
    return [(p.i_in1, p.i_in2, p.i_out, p.mode, p.has_weight) for p in desc.paths]


def build_e3nn(desc, shared, device):
    from e3nn import o3

    tp = o3.TensorProduct(str(desc.irreps_in1), str(desc.irreps_in2), str(desc.irreps_out),
                          e3nn_instructions(desc), shared_weights=shared, internal_weights=False)
    return Impl(tp.to(device))


def transpose_blocks(x, blocks, to_ir_mul: bool):
    """mul_ir <-> ir_mul, block by block (``blocks``: eqdsl MulIr items in the order they lie in x)."""
    out, start = [], 0
    for b in blocks:
        shape = (b.mul, b.ir.dim) if to_ir_mul else (b.ir.dim, b.mul)
        out.append(x[:, start:start + b.dim].reshape(-1, *shape).transpose(1, 2).reshape(-1, b.dim))
        start += b.dim
    return torch.cat(out, dim=1)


def build_cuequivariance(desc, shared, device):
    import cuequivariance as cue
    import cuequivariance_torch as cuet

    # cue.O3's real basis and Clebsch-Gordan tensors equal e3nn's (verify reports "exact"); its
    # O3_e3nn variant differs only in how irreps sort, and takes its tables from e3nn in float32
    def irreps(x):
        return cue.Irreps(cue.O3, str(x))

    kw = dict(layout=cue.ir_mul, shared_weights=shared, internal_weights=False, device=device,
              dtype=torch.float32)
    if device.type != "cuda":
        kw["method"] = "naive"  # its kernels are CUDA; "naive" is its plain-torch path
    note = "ir_mul layout"
    order = list(range(len(desc.irreps_out)))  # order[i]: the eqdsl output block at cuEq's position i
    path_order = list(range(len(desc.paths)))  # the same for the weights' paths
    if all(p.mode == "uvu" for p in desc.paths):
        if any(p.i_out != k for k, p in enumerate(desc.paths)):
            raise ValueError("cuEquivariance's channelwise product writes one block per path")
        m = cuet.ChannelWiseTensorProduct(irreps(desc.irreps_in1), irreps(desc.irreps_in2),
                                          irreps(desc.irreps_out), **kw)
        # it sorts the per-path output blocks by irrep (stable) and permutes the weights with them
        order = path_order = list(irreps(desc.irreps_out).sort().inv)
        note += ", output blocks sorted by irrep"
    elif all(p.mode == "uvw" for p in desc.paths):
        m = cuet.FullyConnectedTensorProduct(irreps(desc.irreps_in1), irreps(desc.irreps_in2),
                                             irreps(desc.irreps_out), **kw)
    else:
        raise ValueError("mixed path modes")
    blocks = [desc.irreps_out[k] for k in order]
    if str(m.irreps_out) != str(irreps("+".join(str(b) for b in blocks))) or m.weight_numel != desc.weight_numel:
        raise ValueError(f"cuEquivariance built {m.irreps_out} ({m.weight_numel} weights), "
                         f"expected the descriptor's paths in order {order}")
    slices = desc.weight_slices()
    inv = [order.index(k) for k in range(len(order))]
    starts = [0]
    for b in blocks:
        starts.append(starts[-1] + b.dim)

    def to_native(x1, x2, w):
        w = torch.cat([w[..., slices[p]] for p in path_order], dim=-1)
        return (transpose_blocks(x1, desc.irreps_in1, True), transpose_blocks(x2, desc.irreps_in2, True),
                w.reshape(1, -1) if shared else w)

    def from_native(y):
        y = transpose_blocks(y, blocks, False)
        return torch.cat([y[:, starts[inv[k]]:starts[inv[k] + 1]] for k in range(len(order))], dim=1)

    return Impl(m, to_native, from_native, exact=False, note=f"{note}, method {m.method if hasattr(m, 'method') else '?'}")


def openequivariance_problem(desc, shared):
    """OpenEquivariance's description of the descriptor's product (e3nn's instructions, float32)."""
    import numpy as np
    import openequivariance as oeq

    return oeq.TPProblem(str(desc.irreps_in1), str(desc.irreps_in2), str(desc.irreps_out), e3nn_instructions(desc),
                         shared_weights=shared, internal_weights=False, irrep_dtype=np.float32,
                         weight_dtype=np.float32)


def build_openequivariance(desc, shared, device):
    import openequivariance as oeq

    if device.type != "cuda":
        raise RuntimeError("OpenEquivariance runs on CUDA devices only")
    tp = oeq.TensorProduct(openequivariance_problem(desc, shared), torch_op=True)
    # same instructions and normalization as e3nn; for uvw the weights are laid out in its own order,
    # converted by its own function
    return Impl(tp, lambda x1, x2, w: (x1, x2, tp.reorder_weights_from_e3nn(w, not shared)), exact=False)
