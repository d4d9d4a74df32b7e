"""How each IR op becomes PyTorch source: a table from op name to a lowering function.

A lowering gets the module writer `w`, the node id, its attributes `a`, the names of its inputs `x`
(port -> variable), their types `ins` and its own type `t`, and returns the expression of the node's
value; layers with state register a submodule through `w.module`.  Models over matrix groups run the
solved maps of eqdsl.backends.reference.matrix_maps (`rg`) and conv2d (`rc`) where their layers differ.
"""
from __future__ import annotations

from typing import Callable

Lowering = Callable[..., str]


IRREPS_LOWERINGS: dict[str, Lowering] = {}
MATRIX_GROUP_LOWERINGS: dict[str, Lowering] = {}


def lowers(*ops: str, table: dict = IRREPS_LOWERINGS):
    def register(fn):
        for op in ops:
            table[op] = fn
        return fn
    return register


def lowering_table(group_recipe: tuple) -> dict[str, Lowering]:
    """The ops of a model over this group: matrix groups replace the layers whose runtime differs."""
    if group_recipe[0] == "irreps":
        return IRREPS_LOWERINGS
    return {**IRREPS_LOWERINGS, **MATRIX_GROUP_LOWERINGS}


# -- graph structure ----------------------------------------------------------------------------
def _indexed(w, x_type, index: str, size: str) -> tuple[str, str]:
    """An index into `size` rows and the number of rows, for values expressed in a frame: offset per copy."""
    if x_type.frame is None:
        return index, size
    frames = w.frames[x_type.frame][0]
    return f"{frames}.rows({index}, {size})", f"{frames}.count * {size}"


@lowers("gather")
def _gather(w, node, a, x, ins, t):
    w.needs["graph"] = True
    index, _ = _indexed(w, ins["x"], a["index"], "num_nodes")
    return f"rt.gather({x['x']}, {index})"


@lowers("scatter_sum", "scatter_mean", "scatter_max")
def _scatter(w, node, a, x, ins, t):
    w.needs["graph"] = True
    index, size = _indexed(w, ins["x"], a["index"], "num_nodes")
    return f"rt.scatter({x['x']}, {index}, {size}, {w.ir.node(node)['op'][8:]!r})"


@lowers("sum_nodes", "mean_nodes", "max_nodes", "sum_edges", "mean_edges", "max_edges")
def _pool(w, node, a, x, ins, t):
    w.needs["batch"] = True
    reduce, over = w.ir.node(node)["op"].split("_")
    if over == "edges":
        w.needs["graph"] = True
    index, size = _indexed(w, ins["x"], "batch" if over == "nodes" else "batch[src]", "num_graphs")
    return f"rt.pool({x['x']}, {index}, {size}, {reduce!r})"


@lowers("orthonormalize")
def _orthonormalize(w, node, a, x, ins, t):
    return f"rt.orthonormalize([{', '.join(x[f'xs.{i}'] for i in range(a['xs']))}])"


# -- frame averaging --------------------------------------------------------------------------------
# The graph of each row of a value, by placement (None: the rows are the graphs).
_ROW_GRAPH = {"node": "batch", "edge": "batch[src]", "graph": "None"}


@lowers("frame")
def _frame(w, node, a, x, ins, t):
    w.needs["batch"] = True
    w.frames[a["label"]] = (w.name_of(node), a["method"])
    m = w.module(node, "frame", f"rt.frames.FrameMaker(G, {a['method']!r}, {a['frames']}, where={a['label']!r})")
    return f"{m}({x['pos']}, batch, num_graphs)"


def _frame_args(w, node, f_type, value_type, rep) -> tuple[str, str, str]:
    """For to_frame / from_frame: the frame's variable, the module computing `rep`'s matrices at the frame's
    elements ("None" without a rep) and the graph of each row of the value."""
    frames, method = w.frames[f_type.frame]
    if value_type.placement == "edge":
        w.needs["graph"] = True
    act = "None" if rep is None else w.module(node, "frame_action", f"rt.frames.action(G, {w.rep(rep)}, {method!r})")
    return frames, act, _ROW_GRAPH[value_type.placement]


@lowers("to_frame")
def _to_frame(w, node, a, x, ins, t):
    frames, act, rows = _frame_args(w, node, ins["f"], ins["x"], None if a["point"] else ins["x"].rep)
    return f"rt.frames.to_frame({x['x']}, {frames}, {act}, {rows}, point={a['point']})"


@lowers("from_frame")
def _from_frame(w, node, a, x, ins, t):
    frames, act, rows = _frame_args(w, node, ins["f"], ins["y"], a["out"] if a["rotate"] else None)
    return f"rt.frames.from_frame({x['y']}, {frames}, {act}, {rows}, rotate={a['rotate']})"


# -- position-orientation space ------------------------------------------------------------------------
@lowers("orientations")
def _orientations(w, node, a, x, ins, t):
    w.frames[a["label"]] = (w.name_of(node), "orientations")
    w.approximate.append(("orientations", node))  # equivariant up to the grid's resolution
    m = w.module(node, "orientations", f"rt.orientations.OrientationGrid({a['dim']}, {a['n']}, where={a['label']!r})")
    return f"{m}()"


def _grid(w, grid_type) -> str:
    return w.frames[grid_type.frame][0]


@lowers("to_orientations")
def _to_orientations(w, node, a, x, ins, t):
    return f"rt.orientations.to_orientations({x['x']}, {_grid(w, ins['O'])}, {a['blocks']!r})"


@lowers("pair_invariants")
def _pair_invariants(w, node, a, x, ins, t):
    return f"rt.orientations.pair_invariants({x['r']}, {_grid(w, ins['O'])})"


@lowers("orientation_conv")
def _orientation_conv(w, node, a, x, ins, t):
    m = w.module(node, "orientation_conv", f"rt.orientations.OrientationConv({t.rep.dim}, {a['basis']})")
    return f"{m}({x['h']}, {_grid(w, ins['O'])})"


@lowers("from_orientations")
def _from_orientations(w, node, a, x, ins, t):
    return f"rt.orientations.from_orientations({x['y']}, {_grid(w, ins['O'])}, {a['blocks']!r})"


# -- layers ---------------------------------------------------------------------------------------
def _selected(w, node, a, x, one_map: str, selected: str) -> str:
    """`linear(x, by = s)`: one map per column of s (`selected` builds the layer from the list of
    maps), else the map itself."""
    if a.get("approximate"):  # an unconstrained path beside the equivariant map
        w.approximate.append(("linear", node))
        t_in, t_out = w.ir.node(dict(w.ir.inputs_of(node))["x"])["type"], w.ir.node(node)["type"]
        eq = one_map if a["equivariant_part"] else "None"
        m = w.module(node, "linear", f"rt.soft_layers.WithResidual({eq}, {t_in.rep.dim}, {t_out.rep.dim})")
        return f"{m}({x['x']})"
    if "by" not in x:
        return f"{w.module(node, 'linear', one_map)}({x['x']})"
    m = w.module(node, "linear", selected.format(maps=f"[{one_map} for _ in range({a['selectors']})]"))
    return f"{m}({x['x']}, {x['by']})"


@lowers("linear")
def _linear(w, node, a, x, ins, t):
    return _selected(w, node, a, x, f"rt.Linear({w.rep(ins['x'].rep)}, {w.rep(a['out'])}, bias={a['bias']})",
                     "SelectedLinearLayer(G, {maps}, backend=backend)")


@lowers("symmetric_contraction")
def _symmetric_contraction(w, node, a, x, ins, t):
    m = w.module(node, "contraction", f"SymmetricContractionLayer(G, {w.rep(ins['x'].rep)}, {w.rep(a['out'])}, "
                                      f"correlation={a['correlation']}, selectors={a.get('selectors', 0)}, "
                                      "backend=backend)")
    return f"{m}({x['x']}, {x['by']})" if "by" in x else f"{m}({x['x']})"


@lowers("tensor_product")
def _tensor_product(w, node, a, x, ins, t):
    tables = a.get("rank") or a.get("share_paths")  # CP low-rank tables, path-weight sharing: no free path
    if tables:
        kind = "SharedPathProduct" if a.get("share_paths") else "LowRankProduct"
        m = w.module(node, "low_rank", f"rt.low_rank.{kind}({w.tp_descriptor(node, a, ins)}, {a.get('rank', 0)}, "
                                       f"shared_weights={a['shared_weights']})")
    elif a["mode"] == "gaunt":
        m = w.module(node, "gaunt", f"rt.gaunt.GauntProduct({a['la']!r}, {a['lb']!r}, {a['lo']!r}, {a['channels']}, "
                                    f"{a['b_channels']}, {a['algorithm']!r}, shared_weights={a['shared_weights']})")
    else:
        m = w.tp_module(node, a, ins)
    call = f"{m}({x['a']}, {x['b']}, {x['weights']})" if "weights" in x else f"{m}({x['a']}, {x['b']})"
    if a.get("rank"):  # approximately equivariant by construction
        w.approximate.append(("low_rank", node))
    if not a.get("approximate") or tables:
        return call
    w.approximate.append(("tensor_product", node))  # an unconstrained bilinear path beside the product
    free = w.module(node, "free", f"rt.soft_layers.FreeBilinear({ins['a'].rep.dim}, {ins['b'].rep.dim}, {t.rep.dim})")
    return f"{call} + {free}({x['a']}, {x['b']})"


@lowers("conv")
def _conv(w, node, a, x, ins, t):
    w.needs["graph"] = True
    w.body.append("# gather, tensor product and scatter as one call (fused on the Triton backend)")
    m = w.tp_module(node, a, {"a": ins["x"], "b": ins["b"]})
    weights = x.get("weights", "None")
    return f"{m}.conv({x['x']}, {a['gather_index']}, {x['b']}, {weights}, {a['scatter_index']}, num_nodes)"


@lowers("gate")
def _gate(w, node, a, x, ins, t):
    m = w.module(node, "gate", f"rt.Gate({w.rep(a['scalars'])}, {w.rep(a['gates'])}, "
                               f"{w.rep(a['gated'])}, act={list(a['scalar_acts'])!r}, act_gates={a['gate_act']!r})")
    return f"{m}({x['x']})"


@lowers("norm_activation")
def _norm_activation(w, node, a, x, ins, t):
    m = w.module(node, "norm_act", f"rt.NormActivation({w.rep(ins['x'].rep)}, act={a['act']!r})")
    return f"{m}({x['x']})"


@lowers("norm")
def _norm(w, node, a, x, ins, t):
    return f"rt.norm({x['x']}, {w.rep(ins['x'].rep)})"


@lowers("dot")
def _dot(w, node, a, x, ins, t):
    return f"rt.dot({x['a']}, {x['b']}, {w.rep(ins['a'].rep)})"


@lowers("spherical_harmonics")
def _spherical_harmonics(w, node, a, x, ins, t):
    m = w.module(node, "sh", f"rt.SphericalHarmonics({a['lmax']}, normalize={a['normalize']})")
    return f"{m}({x['x']})"


@lowers("bessel")
def _bessel(w, node, a, x, ins, t):
    return f"rt.bessel_basis({x['x']}.squeeze(-1), {a['n']}, {w.attr(node, 'cutoff')})"


@lowers("gaussian")
def _gaussian(w, node, a, x, ins, t):
    return f"rt.gaussian_basis({x['x']}.squeeze(-1), {a['n']}, {w.attr(node, 'cutoff')})"


@lowers("spline")
def _spline(w, node, a, x, ins, t):
    return f"rt.spline_basis({x['x']}.squeeze(-1), {a['n']}, {w.attr(node, 'cutoff')})"


@lowers("envelope")
def _envelope(w, node, a, x, ins, t):
    return f"rt.polynomial_cutoff({x['x']}.squeeze(-1), {w.attr(node, 'cutoff')}, {float(a['p'])!r}).unsqueeze(-1)"


@lowers("mlp")
def _mlp(w, node, a, x, ins, t):
    sizes = [ins["x"].rep.dim, *a["hidden"], t.rep.dim]
    if a.get("approximate"):  # on every component of its input: not invariant
        w.approximate.append(("mlp", node))
    m = w.module(node, "mlp", f"rt.MLP({sizes!r}, act={a['act']!r})")
    return f"{m}({x['x']})"


@lowers("sphere_mlp")
def _sphere_mlp(w, node, a, x, ins, t):
    w.approximate.append(("sphere_mlp", node))  # equivariant up to the grid's resolution
    m = w.module(node, "sphere_mlp", f"rt.sphere.SphereMLP({a['la']!r}, {a['lo']!r}, {a['channels']}, "
                                     f"{a['out_channels']}, {list(a['hidden'])!r}, {a['act']!r}, {a['grid']})")
    return f"{m}({x['x']})"


@lowers("concat")
def _concat(w, node, a, x, ins, t):
    return f"torch.cat([{', '.join(x[f'xs.{i}'] for i in range(a['xs']))}], dim=-1)"


@lowers("grad")
def _grad(w, node, a, x, ins, t):
    w.needs["grad"].add(x["x"])
    return f"rt_grad({x['y']}, {x['x']}, create_graph)"


# -- arithmetic and pointwise functions -----------------------------------------------------------
_BINARY = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


@lowers(*_BINARY)
def _binary(w, node, a, x, ins, t):
    return f"{x['a']} {_BINARY[w.ir.node(node)['op']]} {x['b']}"


@lowers("neg")
def _neg(w, node, a, x, ins, t):
    return f"-{x['x']}"


@lowers("scale")
def _scale(w, node, a, x, ins, t):
    return f"{w.attr(node, 'c')} * {x['x']}"


@lowers("add_const")
def _add_const(w, node, a, x, ins, t):
    return f"{x['x']} + {w.attr(node, 'c')}"


@lowers("pow")
def _pow(w, node, a, x, ins, t):
    return f"{x['x']} ** {float(a['k'])!r}"


@lowers("identity", "silu", "relu", "gelu", "sigmoid", "softplus", "exp", "tanh", "sin", "abs", "cos", "square")
def _pointwise(w, node, a, x, ins, t):
    return f"rt.ACTIVATIONS[{w.ir.node(node)['op']!r}]({x['x']})"


# -- matrix groups: the solved maps (bases solved on construction, cached on disk) ------------------
def matrix_group(*ops: str):
    return lowers(*ops, table=MATRIX_GROUP_LOWERINGS)


@matrix_group("linear")
def _solved_linear(w, node, a, x, ins, t):
    return _selected(w, node, a, x, f"rg.EquivariantLinear({w.rep(ins['x'].rep)}, {w.rep(a['out'])}, bias={a['bias']})",
                     "rt.SelectedLinear({maps})")


@matrix_group("bilinear")
def _bilinear(w, node, a, x, ins, t):
    m = w.module(node, "bilinear", f"rg.Bilinear({w.rep(ins['a'].rep)}, {w.rep(ins['b'].rep)}, "
                                   f"{w.rep(a['out'])})")
    return f"{m}({x['a']}, {x['b']})"


@matrix_group("gate")
def _block_gate(w, node, a, x, ins, t):
    acts = [a["act"]] * a["num_scalars"]
    m = w.module(node, "gate", f"rg.GeneralGate({a['num_scalars']}, {list(a['gated_sizes'])!r}, "
                               f"acts={acts!r}, gate_act={a['gate_act']!r})")
    return f"{m}({x['x']})"


@matrix_group("norm")
def _block_norm(w, node, a, x, ins, t):
    return f"rg.block_norm({x['x']}, {list(a['sizes'])!r})"


@matrix_group("inner")
def _inner(w, node, a, x, ins, t):
    m = w.module(node, "inner", f"rg.InvariantForm({w.rep(ins['a'].rep)})")
    return f"{m}({x['a']}, {x['b']})"


@matrix_group("group_pool")
def _group_pool(w, node, a, x, ins, t):
    return f"rg.group_pool({x['x']}, {list(a['sizes'])!r}, {a['reduce']!r})"


@matrix_group("conv2d")
def _conv2d(w, node, a, x, ins, t):
    extra = ", approximate=True" if a["sampled"] else ""
    m = w.module(node, "conv", f"rc.SteerableConv2d({w.rep(ins['x'].rep)}, {w.rep(a['out'])}, "
                               f"{a['kernel']}, bias={a['bias']}{extra})")
    if a["sampled"]:
        w.approximate.append(("conv2d", node))
    return f"{m}({x['x']})"


@matrix_group("avg_pool2d")
def _avg_pool2d(w, node, a, x, ins, t):
    return f"rc.avg_pool2d({x['x']}, {a['size']})"


@matrix_group("max_pool2d")
def _max_pool2d(w, node, a, x, ins, t):
    return f"rc.max_pool2d({x['x']}, {a['size']})"


@matrix_group("global_pool")
def _global_pool(w, node, a, x, ins, t):
    if a["reduce"] == "mean":
        return f"rc.global_mean({x['x']})"
    return f"{x['x']}.amax(dim=(1, 2))"
