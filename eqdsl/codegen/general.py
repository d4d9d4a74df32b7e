"""Lowering of the layers only models over matrix groups have (solved linear, bilinear and conv2d maps...).

Representations are rebuilt in the generated module with ``parse_rep(canonical string, G)``;
the layers solve (or load from the disk cache) their bases when the module is constructed.
"""
from __future__ import annotations


def _r(rep) -> str:
    return f"parse_rep({str(rep)!r}, G)"


def lower_general(w, node: str, op: str, a: dict, x: dict, ins: dict) -> str | None:
    """Source of one general-group op, or None when ``op`` is not one of them."""
    if op == "linear":
        m = w.module(node, "linear", f"rg.EquivariantLinear({_r(ins['x'].rep)}, {_r(a['out'])}, bias={a['bias']})")
        return f"{m}({x['x']})"
    if op == "bilinear":
        m = w.module(node, "bilinear", f"rg.Bilinear({_r(ins['a'].rep)}, {_r(ins['b'].rep)}, {_r(a['out'])})")
        return f"{m}({x['a']}, {x['b']})"
    if op == "gate":
        acts = [a["act"]] * a["num_scalars"]
        m = w.module(node, "gate", f"rg.GeneralGate({a['num_scalars']}, {list(a['gated_sizes'])!r}, "
                                   f"acts={acts!r}, gate_act={a['gate_act']!r})")
        return f"{m}({x['x']})"
    if op == "norm":
        return f"rg.block_norm({x['x']}, {list(a['sizes'])!r})"
    if op == "inner":
        m = w.module(node, "inner", f"rg.InvariantForm({_r(ins['a'].rep)})")
        return f"{m}({x['a']}, {x['b']})"
    if op == "group_pool":
        return f"rg.group_pool({x['x']}, {list(a['sizes'])!r}, {a['reduce']!r})"
    if op == "conv2d":
        extra = ", approximate=True" if a["sampled"] else ""
        m = w.module(node, "conv", f"rc.SteerableConv2d({_r(ins['x'].rep)}, {_r(a['out'])}, {a['kernel']}, "
                                   f"bias={a['bias']}{extra})")
        if a["sampled"]:
            w.approximate.append(("conv2d", node))
        return f"{m}({x['x']})"
    if op == "avg_pool2d":
        return f"rc.avg_pool2d({x['x']}, {a['size']})"
    if op == "max_pool2d":
        return f"rc.max_pool2d({x['x']}, {a['size']})"
    if op == "global_pool":
        if a["reduce"] == "mean":
            return f"rc.global_mean({x['x']})"
        return f"{x['x']}.amax(dim=(1, 2))"
    return None
