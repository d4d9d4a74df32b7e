"""Fused message-passing convolution on the generated kernels.

    out[n] = sum_{e : dst[e] == n} TP(x1_nodes[src[e]], x2[e], w[e])        out: [num_nodes, d_out]

**Every operation fused.**  ``codegen.generate`` with ``KernelKey(..., fused=True)`` emits the
``tp_conv_*`` family: the operations of the per-row family (the same unrolled Clebsch-Gordan
code: ``tp_conv_g`` is the forward, ``tp_conv_{x1,x2,w}`` the gradients, ``_weighted`` variants
when some paths carry no weights) over the edges, where the x1 slot lives on the nodes ``SRC``
names and the g slot (the output, or the incoming gradient) on the nodes ``DST`` names.  A slot
on nodes is read through its index (the gather happens in the kernel); as a target, it is summed
per node: the edges are sorted by that node once per graph (``segments.py``: ``segments.Graph``,
shared by every layer given the same index tensors), one program sums one piece of a node's edges
in a fixed order and stores it once, and a fixup kernel sums the pieces of nodes with more edges
than a piece holds.  x2 and the weights stay per edge.  ``_ConvTPOp`` is the autograd function: its
backward calls ``_ConvTPOp.apply`` for the other slots, exactly like the per-row ``_TPOp``, so
forward, backward and every higher derivative (double backward for training on forces included) run
fused kernels, and neither the per-edge messages ``[E, d_out]`` nor the gathered node features
``[E, d1]`` nor per-edge gradients of them ever exist in memory.  (A descriptor too large for one
kernel is split into several kernels launched in turn, as for the per-row family.)  The first-order
backward of channelwise descriptors is the fused backward (``backward_codegen``), over pieces of the
source nodes' edges.

Indices are arbitrary integer tensors (int32 or int64, any order, repeats allowed): the
names src/dst are only the usual use; x1 may be gathered by either index.  Out-of-range
indices raise on the CPU (checked before the launch) and trip a device-side assert on CUDA
(``torch._assert_async``, as ``index_select`` does), since the kernel indexes raw memory.

Summation order: fixed by the graph (a node's edges in their order in the index, by pieces of
``segments.SEGMENT_ROW_BLOCKS`` row blocks, pieces summed in order): no atomics, so results are the
same run to run (the reference ``index_add`` sums in another order; both are exact up to rounding).
Building the pieces reads the largest degree back to the host once per graph side (and, when some node
has more edges than a piece holds, the sizes of the grids).
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Optional

import torch

from . import codegen, kernel_cache, precompile, segments
from .launch import weight_mode, workload
from .per_row import (_DTYPES, _check_device, _Plan, _plan, check_operands, compile_candidates,
                      fused_backward_applies, launch_kernel)

__all__ = ["conv", "conv_tensor_product", "tuned_conv"]


class _ConvPlan:
    """The fused kernel family (``tp_conv_*``) for one per-row plan (same descriptor, dtype, weights, config)."""

    def __init__(self, plan: _Plan):
        self.plan = plan
        self.key = dataclasses.replace(plan.key, fused=True)
        self._mod = None

    @property
    def module(self):
        if self._mod is None:
            self._mod = kernel_cache.load(self.key)
        return self._mod

    @property
    def piece(self) -> int:
        """Edges per piece of a node target (``segments.py``): SEGMENT_ROW_BLOCKS row blocks."""
        return self.plan.block_b * segments.SEGMENT_ROW_BLOCKS

    def _summed(self, target: str, launch, like: torch.Tensor, index: torch.Tensor, graph) -> torch.Tensor:
        """A target on nodes: `launch(segments, buffer)` writes each piece's sum into its row of the buffer
        (``segments.py``), the fixup sums the split nodes' partial rows; the node rows come back."""
        rows, dim = graph.rows[target], self.plan.dims[target]
        if index.shape[0] == 0 or rows == 0 or dim == 0:
            return like.new_zeros(rows, dim)
        seg = graph.segments(target, index, self.piece)
        buf = like.new_empty(seg.buffer_rows, dim)
        launch(seg, buf)
        slots = seg.fixups.shape[0]
        if slots:
            launch_kernel(getattr(self.module, f"tp_conv_fixup_{target}"), (slots,), buf, seg.fixups, slots,
                          BLOCK_B=self.plan.block_b, **self.plan.launch_opts)
        return buf[:rows]

    def launch(self, target: str, part: str, operands: tuple[torch.Tensor, ...], src: torch.Tensor,
               dst: torch.Tensor, graph: segments.Graph) -> torch.Tensor:
        """One operation over the edges: operands in ``plan.slots(target)`` order, x1 given on its nodes
        (``graph.rows["x1"]`` rows), g on the destination nodes (``graph.rows["g"]`` rows), x2 and w per edge
        (w: ``[W]`` when shared).  A target on nodes comes back ``[rows, dim]``, summed over its edges."""
        plan = self.plan
        slots = plan.slots(target)
        ops = {s: t.contiguous() for s, t in zip(slots, operands)}
        e = src.shape[0]
        like = next(iter(ops.values()))
        for s, t in ops.items():
            _check_device(t)
            if t.dtype != like.dtype or t.device != like.device:
                raise TypeError("convolution operands must share dtype and device")
            rows = graph.rows[s] if s in codegen.CONV_ROWS else e
            want = (plan.dims[s],) if s == "w" and plan.shared else (rows, plan.dims[s])
            if tuple(t.shape) != want:  # the kernels index raw memory: never launch on a wrong shape
                raise ValueError(f"operand {s}: expected shape {want}, got {tuple(t.shape)}")
        dim = plan.dims[target]
        src, dst = src.contiguous(), dst.contiguous()
        weighted_only = part == "weighted" and target != "w"
        if weighted_only and e:  # a second derivative through the weight gradient: its kernels, all at once
            plan.compile_ahead("conv_weighted", like, e,
                               lambda: precompile.conv_jobs(self, "weighted", like.dtype, src.dtype, e))
        name = f"tp_conv_{target}" + ("_weighted" if weighted_only else "")
        args = [ops[s] for s in slots]

        def run(programs: int, *rest) -> None:
            with torch.cuda.device(like.device) if like.device.type == "cuda" else contextlib.nullcontext():
                for fname, blocks in self.module.KERNELS[name]:
                    launch_kernel(getattr(self.module, fname), (programs * blocks,), *args, src, dst, *rest, e,
                                  BLOCK_B=plan.block_b, **plan.launch_opts)

        if target in codegen.CONV_ROWS:  # rows on nodes: one program per piece of the node's sorted edges
            return self._summed(target, lambda seg, buf: run(seg.programs, seg.perm, seg.pieces, buf), like,
                                src if target == "x1" else dst, graph)
        row_blocks = -(-e // plan.block_b)
        if target == "w" and plan.shared:
            if e == 0 or dim == 0:
                return like.new_zeros(dim)
            row_blocks = -(-row_blocks // self.module.SHARED_W_ROW_BLOCKS)  # programs loop over row blocks
            out = like.new_empty(row_blocks, dim)  # one partial sum per group of row blocks
        else:
            out = like.new_empty(e, dim)
        if e and dim:
            run(row_blocks, out)
        return out.sum(0) if target == "w" and plan.shared else out

    @property
    def fused_backward(self) -> bool:
        return "tp_conv_backward" in self.module.KERNELS

    def backward_all(self, x1_nodes, x2, g_nodes, w, src, dst, graph: segments.Graph) -> tuple:
        """(dx1 on x1's nodes, dx2, dW) of the convolution's output gradient `g_nodes`, in one pass (the fused
        backward, ``backward_codegen``: dx1 summed per piece of each source node's edges, dx2 through partials)."""
        plan = self.plan
        x1_nodes, x2, g_nodes, w = (t.contiguous() for t in (x1_nodes, x2, g_nodes, w))
        e = src.shape[0]
        check_operands(x2, [(s, t, (rows, plan.dims[s])) for s, t, rows in (
            ("x1", x1_nodes, x1_nodes.shape[0]), ("x2", x2, e), ("g", g_nodes, g_nodes.shape[0]), ("w", w, e))])
        dx2, dw = x2.new_empty(e, plan.dims["x2"]), x2.new_empty(e, plan.dims["w"])
        partial = x2.new_empty(e, len(self.module.BACKWARD_COLUMNS))
        src, dst = src.contiguous(), dst.contiguous()
        row_blocks = -(-e // plan.block_b)

        def run(seg, dx1_buf):
            with torch.cuda.device(x2.device) if x2.device.type == "cuda" else contextlib.nullcontext():
                for fname, blocks in self.module.KERNELS["tp_conv_backward"]:
                    launch_kernel(getattr(self.module, fname), (seg.programs * blocks,), x1_nodes, x2, g_nodes, w,
                                  src, dst, seg.perm, seg.pieces, dx1_buf, partial, dw, e, BLOCK_B=plan.block_b,
                                  **plan.launch_opts)
                launch_kernel(self.module.tp_conv_backward_dx2, (row_blocks,), partial, dx2, e,
                              BLOCK_B=plan.block_b, **plan.launch_opts)

        if e == 0 or x1_nodes.shape[0] == 0:  # no edges (or no source nodes to hold any): zero gradients
            return x2.new_zeros(x1_nodes.shape[0], plan.dims["x1"]), dx2.zero_(), dw.zero_()
        dx1 = self._summed("x1", run, x2, src, graph)
        return dx1, dx2, dw


_CONV_PLANS: dict = {}


def _conv_plan(plan: _Plan) -> _ConvPlan:
    cp = _CONV_PLANS.get(id(plan))
    if cp is None or cp.plan is not plan:
        cp = _CONV_PLANS[id(plan)] = _ConvPlan(plan)
    return cp


class _ConvTPOp(torch.autograd.Function):
    """K_target over the edges of a graph (see ``_ConvPlan.launch``): the fused counterpart of ``_TPOp``.

    The forward of the convolution is target g; its backward (and every higher derivative) is again
    an operation of the family, with the target slot filled by the incoming gradient: the derivative
    by a slot read through an index is a sum into that slot's node rows, which the kernels do with
    atomics, and a slot written through an index is read through it.  So gathered node features
    and per-edge gradients never exist in memory, at any order of derivative.
    """

    @staticmethod
    def forward(ctx, cplan: _ConvPlan, target: str, part: str, src: torch.Tensor, dst: torch.Tensor,
                graph: segments.Graph, *operands):
        ctx.cplan, ctx.target, ctx.part, ctx.graph = cplan, target, part, graph
        ctx.save_for_backward(src, dst, *operands)
        return cplan.launch(target, part, operands, src, dst, graph)

    @staticmethod
    def backward(ctx, grad):
        plan, target = ctx.cplan.plan, ctx.target
        part = "weighted" if target == "w" else ctx.part
        src, dst, *ops = ctx.saved_tensors
        slots = plan.slots(target)
        full = dict(zip(slots, ops))
        full[target] = grad
        if fused_backward_applies(ctx.cplan, ctx, ctx.needs_input_grad[6:]):
            grads = ctx.cplan.backward_all(full["x1"], full["x2"], grad, full["w"], src, dst, ctx.graph)
            return (None,) * 6 + tuple(d if need else None for d, need in zip(grads, ctx.needs_input_grad[6:]))
        grads = []
        for s, need in zip(slots, ctx.needs_input_grad[6:]):
            grads.append(_ConvTPOp.apply(ctx.cplan, s, part, src, dst, ctx.graph,
                                         *(full[x] for x in plan.slots(s))) if need else None)
        return (None, None, None, None, None, None, *grads)


def _check_index(name: str, index: torch.Tensor, bound: int, device: torch.device) -> None:
    if index.dim() != 1 or index.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{name} must be a 1-D int32/int64 tensor, got {index.dtype} of shape {tuple(index.shape)}")
    if index.device != device:
        raise TypeError(f"{name} is on {index.device}, the features on {device}")
    if index.numel() == 0 or index.device.type == "meta":  # meta: the traffic model's shapes, no values
        return
    ok = ((index >= 0) & (index < bound)).all()
    if index.device.type == "cuda":  # no host sync; a bad index trips a device-side assert like index_select's
        torch._assert_async(ok, f"{name}: index out of range [0, {bound})")
    elif not bool(ok):
        raise IndexError(f"{name}: index out of range [0, {bound}) (min {int(index.min())}, max {int(index.max())})")


def conv_tensor_product(desc, x1_nodes: torch.Tensor, src: torch.Tensor, x2: torch.Tensor,
                        weight: Optional[torch.Tensor], dst: torch.Tensor, num_nodes: int, shared: bool,
                        block_b: int = 16, block_c: int = 16, num_warps: int = 4,
                        num_stages: Optional[int] = None) -> torch.Tensor:
    """Functional form on flat inputs: x1_nodes [N1, d1], src [E], x2 [E, d2], weight [E, W] / [W] (shared) /
    None, dst [E] -> [num_nodes, d_out]."""
    weights = weight_mode(desc, shared)
    plan = _plan(desc, x1_nodes.dtype, weights, block_b, block_c, num_warps, num_stages)
    ops = (x1_nodes, x2) if weights == "none" else (x1_nodes, x2, weight)
    cplan = _conv_plan(plan)
    e, mode = src.shape[0], workload(ops)
    plan.compile_ahead(f"conv_{mode}", x1_nodes, e,
                       lambda: precompile.conv_jobs(cplan, mode, x1_nodes.dtype, src.dtype, e))
    graph = segments.for_indices(src, dst, x1_nodes.shape[0], num_nodes)  # sorted once, shared by every layer
    if mode == "forward":  # nothing to differentiate: no autograd node
        return cplan.launch("g", "all", ops, src, dst, graph)
    return _ConvTPOp.apply(cplan, "g", "all", src, dst, graph, *ops)


def conv(tp, x1_nodes: torch.Tensor, src: torch.Tensor, x2: torch.Tensor, weight: Optional[torch.Tensor],
         dst: torch.Tensor, num_nodes: int, block_b: int = 16, block_c: int = 16, num_warps: int = 4,
         num_stages: Optional[int] = None) -> torch.Tensor:
    """A tensor-product module's message-passing convolution on the fused kernels, launch configuration given.

    ``out[n] = sum_{e: dst[e] == n} tp(x1_nodes[src[e]], x2[e], weight[e])``, i.e. exactly
    ``scatter(tp(gather(x1_nodes, src), x2, weight), dst, num_nodes, "sum")``.  ``tp`` gives
    desc, shared_weights and (when shared) the weights; ``weight`` is per edge ``[E, W]``
    (leading dimensions broadcasting to ``[E]``), or None for shared / unweighted descriptors.
    """
    args = _checked(tp, x1_nodes, src, x2, weight, dst, num_nodes)
    return conv_tensor_product(tp.desc, *args, tp.shared_weights, block_b, block_c, num_warps, num_stages)


def tuned_conv(tp, chooser, x1_nodes: torch.Tensor, src: torch.Tensor, x2: torch.Tensor,
               weight: Optional[torch.Tensor], dst: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """``conv`` with the configuration `chooser` (a ``launch.LaunchChooser``) picks: tuned per problem on
    CUDA (workloads "conv_forward" / "conv_forward_backward", rows = edges)."""
    x1n, src, x2, w, dst, num_nodes = _checked(tp, x1_nodes, src, x2, weight, dst, num_nodes)
    if chooser.tune is not False:
        grads = workload((x1n, x2, w)) == "forward_backward"
        chooser.choose(x1n, src.shape[0], grads, True,
                       lambda mode: _conv_runner(tp, x1n, src, x2, w, dst, num_nodes, mode),
                       lambda mode: lambda configs: compile_candidates(
                           tp, x1n, src.shape[0], f"conv_{mode}", configs,
                           lambda plan: precompile.conv_jobs(_conv_plan(plan), mode, x1n.dtype, src.dtype, src.shape[0])))
    else:
        chooser.use_fixed()
    c = chooser.config
    return conv_tensor_product(tp.desc, x1n, src, x2, w, dst, num_nodes, tp.shared_weights, c.block_b, c.block_c,
                               c.num_warps, c.num_stages)


def _conv_runner(tp, x1n, src, x2, w, dst, num_nodes, mode):
    """runner(config) -> a function running this convolution (on detached copies) with config."""
    f1, f2 = x1n.detach().contiguous(), x2.detach().contiguous()
    fw = None if w is None else w.detach().contiguous()
    d, shared = tp.desc, tp.shared_weights

    def runner(cfg):
        args = (cfg.block_b, cfg.block_c, cfg.num_warps, cfg.num_stages)
        if mode == "forward":
            def fn():
                with torch.no_grad():
                    return conv_tensor_product(d, f1, src, f2, fw, dst, num_nodes, shared, *args)
            return fn
        leaves = [t.clone().requires_grad_() for t in (f1, f2, fw) if t is not None]
        g = torch.ones(num_nodes, d.irreps_out.dim, dtype=f1.dtype, device=f1.device)

        def fn():
            with torch.enable_grad():
                y = conv_tensor_product(d, leaves[0], src, leaves[1], leaves[2] if len(leaves) > 2 else None, dst,
                                        num_nodes, shared, *args)
                return torch.autograd.grad(y, leaves, g)
        return fn
    return runner


def _checked(tp, x1_nodes, src, x2, weight, dst, num_nodes):
    """The convolution's arguments validated and normalized: (x1_nodes, src, x2 [E, d2], w, dst, num_nodes)."""
    d = tp.desc
    if x1_nodes.dim() != 2 or x1_nodes.shape[1] != d.irreps_in1.dim:
        raise ValueError(f"x1_nodes must be [num_rows, {d.irreps_in1.dim}], got {tuple(x1_nodes.shape)}")
    if x2.dim() < 1 or x2.shape[-1] != d.irreps_in2.dim:
        raise ValueError(f"x2 must be [E, {d.irreps_in2.dim}], got {tuple(x2.shape)}")
    num_nodes = int(num_nodes)
    if num_nodes < 0:
        raise ValueError(f"num_nodes must be >= 0, got {num_nodes}")
    if x1_nodes.dtype not in _DTYPES:
        raise TypeError(f"the Triton backend supports float32 and float64, got {x1_nodes.dtype}")
    for t in (x1_nodes, x2):
        _check_device(t)
    _check_index("src", src, x1_nodes.shape[0], x1_nodes.device)
    _check_index("dst", dst, num_nodes, x1_nodes.device)
    e = src.shape[0]
    if dst.shape[0] != e:
        raise ValueError(f"src and dst must have the same length, got {e} and {dst.shape[0]}")
    if tp.shared_weights:
        if weight is not None:
            raise ValueError("this TensorProduct has shared (internal) weights; do not pass `weight`")
        w, wlead = tp.weight, ()
    elif tp.weight_numel == 0:
        w, wlead = None, ()
    else:
        if weight is None:
            raise ValueError(f"per-edge weights [E, {tp.weight_numel}] are required")
        if weight.shape[-1] != tp.weight_numel:
            raise ValueError(f"weight must be [E, {tp.weight_numel}], got {tuple(weight.shape)}")
        w, wlead = weight, weight.shape[:-1]
    try:
        lead = torch.broadcast_shapes((e,), x2.shape[:-1], wlead)
    except RuntimeError:
        lead = None
    if lead != (e,):
        raise ValueError(f"x2 {tuple(x2.shape)} and weight {None if w is None else tuple(w.shape)} must have "
                         f"(or broadcast to) one row per edge ({e})")
    x2 = x2.expand(e, d.irreps_in2.dim)
    if w is not None:
        _check_device(w)
        if not tp.shared_weights:
            w = w.expand(e, tp.weight_numel)
    if x2.dtype != x1_nodes.dtype or (w is not None and w.dtype != x1_nodes.dtype):
        raise TypeError(f"x1_nodes, x2 and the weights must share a dtype (got {x1_nodes.dtype}, {x2.dtype}"
                        f"{'' if w is None else ', ' + str(w.dtype)})")
    if x2.device != x1_nodes.device or (w is not None and w.device != x1_nodes.device):
        raise TypeError("x1_nodes, x2 and the weights must be on one device")
    return x1_nodes, src, x2, w, dst, num_nodes
