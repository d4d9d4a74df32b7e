"""What a generated module's forward() checks before it computes: every input's type, rank, sizes,
dtype and device, edge indices and ``batch`` in range, and no NaN or infinity among the features.

The generated module passes its ``INPUT_LAYOUT`` (written by the compiler, one row per input:
name, kind, placement, width, representation, spec line) and the values it was called with.  A
mistake raises ValueError (TypeError for a wrong type or dtype) naming the input, what was
expected in words and where the spec declared it, e.g.

    species: expected [num_nodes, 4] (4x0e @node, specs/nequip.eq:17), got [5, 3]

Shapes, dtypes and devices are known on the host and cost nothing to check.  The checks of values
(indices in range, finite features) read the data: on the CPU they raise the error described
above; on CUDA, and while torch.compile traces the module, they are ``torch._assert_async``
assertions, which never synchronise with the device (a failure is reported when the device next
synchronises, with the same message, as a RuntimeError).  Under ``torch.compile`` the host-side checks
become guards: an input of another shape makes it trace again, and the check raises while tracing (with
``fullgraph=True`` torch reports it as a RuntimeError quoting this message; sizes that are symbolic
while tracing print as ``?``).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch._subclasses.fake_tensor import is_fake

_ROWS = {"node": "num_nodes", "edge": "num_edges", "grid": "batch", None: "rows"}


def module_dtype_and_device(module: torch.nn.Module) -> tuple[Optional[torch.dtype], Optional[torch.device]]:
    """The dtype and device of a module's first floating parameter or buffer (None, None without any)."""
    for t in module.parameters():
        if t.is_floating_point():
            return t.dtype, t.device
    for t in module.buffers():
        if t.is_floating_point():
            return t.dtype, t.device
    return None, None


def check_inputs(layout: tuple, values: dict, *, batch: Optional[torch.Tensor] = None, num_graphs=None,
                 num_nodes: Optional[int] = None, module: Optional[torch.nn.Module] = None,
                 graph_rows: str = "num_graphs", grid_multiple: int = 1) -> None:
    """Check a forward() call against its module's INPUT_LAYOUT; see the module docstring.

    `graph_rows` names the rows of @graph values ("num_graphs", or "batch" in models without nodes);
    `grid_multiple` is what image sides must be a multiple of (the product of the pooling sizes).
    """
    dtype, device = module_dtype_and_device(module) if module is not None else (None, None)
    sizes: dict[str, tuple[int, str]] = {}  # symbolic size -> (value, the input it was read from)
    if num_nodes is not None and not _has_node_rows(layout):
        sizes["num_nodes"] = (num_nodes, "num_nodes")
    first_float: Optional[tuple[str, torch.dtype]] = None
    # features and positions first: they fix num_nodes, which the edge indices are checked against
    for name, kind, placement, width, rep, where in sorted(layout, key=lambda row: row[1] == "graph"):
        x = values[name]
        what = _what(kind, placement, rep, where)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor ({what}), got {type(x).__name__}")
        if device is not None and x.device != device:
            raise ValueError(f"{name} is on {x.device} but the model's parameters are on {device} ({what}); "
                             f"move it with {name}.to({str(device)!r})")
        if kind == "graph":
            _check_edges(name, x, what, sizes)
            continue
        if not x.is_floating_point():
            raise TypeError(f"{name}: expected a floating-point tensor ({what}), got {x.dtype}"
                            + (f"; convert it with {name}.to({dtype})" if dtype is not None else ""))
        if dtype is not None and x.dtype != dtype:
            raise TypeError(f"{name}: expected {dtype}, the model's dtype ({what}), got {x.dtype}; convert it with "
                            f"{name}.to({dtype}), or the model with model.to({x.dtype})")
        if first_float is not None and x.dtype != first_float[1]:
            raise TypeError(f"{name}: expected {first_float[1]} like {first_float[0]} ({what}), got {x.dtype}")
        first_float = first_float or (name, x.dtype)
        if placement == "grid":
            _check_image(name, x, width, what, sizes, grid_multiple)
        else:
            rows = graph_rows if placement == "graph" else _ROWS[placement]
            _check_rows(name, x, rows, width, what, sizes)
        _require_finite(name, x, what)
    if batch is not None:
        _check_batch(batch, num_graphs, sizes, device)


def _has_node_rows(layout) -> bool:
    return any(placement == "node" for _, _, placement, *_ in layout)


def _what(kind, placement, rep, where) -> str:
    if kind == "graph":
        return f"the graph's (src, dst) node indices, {where}"
    if kind == "point":
        return f"positions @{placement}, {where}"
    return f"{rep} @{placement}, {where}"


def _n(size) -> str:
    """A size for a message: while torch.compile traces, sizes are symbols that cannot be printed."""
    return "?" if torch.compiler.is_compiling() else str(int(size))


def _shape(x: torch.Tensor) -> str:
    return "[" + ", ".join(_n(s) for s in x.shape) + "]"


def _expect_size(sizes, symbol: str, value: int, name: str, expected: str, x: torch.Tensor, what: str) -> None:
    """The first input that has a symbolic size fixes it; every later one must agree."""
    if symbol not in sizes:
        sizes[symbol] = (value, name)
        return
    known, source = sizes[symbol]
    if value != known:
        raise ValueError(f"{name}: expected {expected} with {symbol} = {_n(known)} (from {source}) ({what}), "
                         f"got {_shape(x)}")


def _check_rows(name, x, rows: str, width: int, what: str, sizes) -> None:
    expected = f"[{rows}, {width}]"
    if x.dim() != 2 or x.shape[1] != width:
        raise ValueError(f"{name}: expected {expected} ({what}), got {_shape(x)}")
    _expect_size(sizes, rows, x.shape[0], name, expected, x, what)


def _check_image(name, x, channels: int, what: str, sizes, multiple: int) -> None:
    expected = f"[batch, {channels}, H, W]"
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{name}: expected {expected} ({what}), got {_shape(x)}")
    if x.shape[2] != x.shape[3]:
        raise ValueError(f"{name}: expected square images, H == W ({what}), got {_shape(x)}; the group acts on "
                         f"the pixel grid by rotations, which need a square")
    if x.shape[2] % multiple:
        raise ValueError(f"{name}: the image side must be a multiple of {multiple}, the product of the pooling "
                         f"sizes ({what}), got {_shape(x)}; crop or pad to a multiple of {multiple}")
    _expect_size(sizes, "batch", x.shape[0], name, expected, x, what)
    _expect_size(sizes, "image side", x.shape[2], name, expected, x, what)


def _check_edges(name, x, what: str, sizes) -> None:
    if x.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name}: expected an integer tensor ({what}), got {x.dtype}; convert it with {name}.long()")
    if x.dim() != 2 or x.shape[0] != 2:
        raise ValueError(f"{name}: expected [2, num_edges] ({what}), got {_shape(x)}")
    _expect_size(sizes, "num_edges", x.shape[1], name, "[2, num_edges]", x, what)
    if "num_nodes" not in sizes or x.numel() == 0:
        return
    n, source = sizes["num_nodes"]
    message = f"{name}: node indices must be in [0, num_nodes) with num_nodes = {_n(n)} (from {source}) ({what})"
    require(x.min() >= 0, message, lambda: _first_outside(x, 0, n))
    require(x.max() < n, message, lambda: _first_outside(x, 0, n))


def _check_batch(batch, num_graphs, sizes, device) -> None:
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"batch: expected a torch.Tensor of graph ids, got {type(batch).__name__}")
    if isinstance(num_graphs, bool) or not isinstance(num_graphs, int) or num_graphs < 1:
        raise TypeError(f"num_graphs: expected a positive int (the number of graphs in the batch), got {num_graphs!r}")
    if batch.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"batch: expected an integer tensor of graph ids, got {batch.dtype}; convert it with batch.long()")
    if device is not None and batch.device != device:
        raise ValueError(f"batch is on {batch.device} but the model's parameters are on {device}")
    if batch.dim() != 1 or ("num_nodes" in sizes and batch.shape[0] != sizes["num_nodes"][0]):
        n = sizes.get("num_nodes")
        expected = f"[num_nodes] with num_nodes = {_n(n[0])} (from {n[1]})" if n else "[num_nodes]"
        raise ValueError(f"batch: expected {expected}, the graph of each node, got {_shape(batch)}")
    if batch.numel() == 0:
        return
    message = f"batch: graph ids must be in [0, num_graphs) with num_graphs = {_n(num_graphs)}"
    require(batch.min() >= 0, message, lambda: _first_outside(batch, 0, num_graphs))
    require(batch.max() < num_graphs, message, lambda: _first_outside(batch, 0, num_graphs))


def _require_finite(name, x, what: str) -> None:
    if x.numel() == 0:
        return
    require(torch.isfinite(x).all(), f"{name}: every value must be finite ({what})", lambda: _non_finite(x))


def checks_on_host(t: torch.Tensor) -> bool:
    """Whether a check of `t`'s values can raise on the host: a CPU tensor with values (not on CUDA, not
    while torch.compile traces, not a fake tensor of torch.export's tracing)."""
    return t.device.type == "cpu" and not torch.compiler.is_compiling() and not is_fake(t)


def require(condition: torch.Tensor, message: str, detail) -> None:
    """`condition` (a 0-d bool tensor) must hold; `detail()` adds specifics when it does not (on the host;
    elsewhere a torch._assert_async assertion with `message`)."""
    if checks_on_host(condition):
        if not bool(condition):
            raise ValueError(f"{message}; {detail()}")
    else:
        torch._assert_async(condition, message)


def _first_outside(x: torch.Tensor, low: int, high: int) -> str:
    bad = ((x < low) | (x >= high)).nonzero()
    where = ", ".join(str(int(i)) for i in bad[0])
    return f"got {int(x[tuple(bad[0])])} at [{where}] ({len(bad)} out of range)"


def _non_finite(x: torch.Tensor) -> str:
    bad = (~torch.isfinite(x)).nonzero()
    where = ", ".join(str(int(i)) for i in bad[0])
    return f"found {len(bad)} NaN or infinite value{'s' if len(bad) != 1 else ''}, the first at [{where}]"
