"""A cost model of the layers: floating-point operations and bytes moved per row, per strategy and algorithm.

Pure arithmetic on the types and attributes (no numpy, no torch), for `algorithm = auto` and
`eqc compile --report`.  FLOPs count a multiply-add as 2 and a complex one as 8, and follow what the implementations compute: the
Gaunt product's dense table as a dense contraction, Clebsch-Gordan paths by their nonzero entries (real
Clebsch-Gordan tables have at most 2 entries per pair of input components: |m1 +- m2|).  Bytes are what one pass reads and writes
per row when every intermediate stays on chip (inputs, outputs, per-row weights: the memory floor), plus,
under "intermediates", what the reference algorithms materialise.
"""
from __future__ import annotations

import math

ITEMSIZE = 4  # float32
GAUNT_ALGORITHMS = ("dense", "grid", "fourier")


def _dim(ls) -> int:
    return sum(2 * l + 1 for l in ls)


def _fft(n: int) -> float:
    """A complex FFT of n points: 5 n log2 n."""
    return 5.0 * n * math.log2(max(n, 2))


def gaunt(plan: dict, algorithm: str, itemsize: int = ITEMSIZE) -> dict:
    """Per row: FLOPs, bytes (the floor) and intermediates of a Gaunt product with `plan` (la, lb, lo, channels,
    b_channels) by `algorithm`."""
    la, lb, lo, c, cb = plan["la"], plan["lb"], plan["lo"], plan["channels"], plan["b_channels"]
    da, db, do = _dim(la), _dim(lb), _dim(lo)
    weights = c * (da + do)  # scaling the components by their degree's weight
    if algorithm == "dense":  # the table as a dense [da, db, do] contraction, as the reference computes it
        flops, inter = c * (da * db + 2 * da * db * do), c * da * db
    elif algorithm == "grid":
        degree = max(la) + max(lb) + max(lo)
        s = (degree // 2 + 1) * (degree + 1)
        flops = 2 * s * (c * da + cb * db + c * do) + c * s
        inter = (2 * c + cb) * s
    elif algorithm == "fourier":
        p = 2 * (max(la) + max(lb)) + 1

        def convert(ls):  # grouped by |m|: each component to P theta-frequencies at two phi-frequencies
            return 8 * 2 * p * _dim(ls)
        flops = c * convert(la) + cb * convert(lb) + (2 * c + cb) * _fft(p * p) + 6 * c * p * p + c * convert(lo)
        inter = 2 * (2 * c + cb) * p * p  # complex: two numbers each
    else:
        raise ValueError(f"unknown Gaunt algorithm {algorithm!r}")
    floor = c * da + cb * db + c * do + c * (len(la) + len(lo))
    return {"flops": flops + weights, "bytes": floor * itemsize, "intermediates": inter * itemsize}


def cheapest_gaunt(plan: dict) -> str:
    """The Gaunt algorithm with the fewest FLOPs for `plan` (what `algorithm = auto` takes)."""
    return min(GAUNT_ALGORITHMS, key=lambda alg: gaunt(plan, alg)["flops"])


def clebsch_gordan(descriptor, itemsize: int = ITEMSIZE) -> dict:
    """Per row: FLOPs and bytes of a Clebsch-Gordan product (uvw, uvu, full) from its descriptor."""
    d = descriptor
    flops = 0
    for p in d.paths:
        m1, m2, mo = d.irreps_in1[p.i_in1].mul, d.irreps_in2[p.i_in2].mul, d.irreps_out[p.i_out].mul
        l1, l2, l3 = d.irreps_in1[p.i_in1].ir.l, d.irreps_in2[p.i_in2].ir.l, d.irreps_out[p.i_out].ir.l
        nnz = min(2 * (2 * l1 + 1) * (2 * l2 + 1), (2 * l1 + 1) * (2 * l2 + 1) * (2 * l3 + 1))
        if p.mode == "uvw":
            flops += 3 * m1 * m2 * nnz + 2 * m1 * m2 * mo * (2 * l3 + 1)
        elif p.mode == "uvu":
            flops += 3 * m1 * m2 * nnz + 2 * m1 * m2 * (2 * l3 + 1)
        else:
            flops += 3 * m1 * m2 * nnz
    floor = d.irreps_in1.dim + d.irreps_in2.dim + d.irreps_out.dim
    return {"flops": flops, "bytes": floor * itemsize, "intermediates": 0, "per_row_weights": d.weight_numel}


def low_rank(descriptor, rank: int, itemsize: int = ITEMSIZE) -> dict:
    """Per row: FLOPs and bytes of a CP low-rank product: every path projects its inputs on R columns, multiplies,
    weights and maps out through R columns."""
    d = descriptor
    flops = 0
    for p in d.paths:
        m1, m2 = d.irreps_in1[p.i_in1].mul, d.irreps_in2[p.i_in2].mul
        d1, d2 = d.irreps_in1[p.i_in1].ir.dim, d.irreps_in2[p.i_in2].ir.dim
        mo, d3 = d.irreps_out[p.i_out].mul, d.irreps_out[p.i_out].ir.dim
        mix = 2 * m1 * m2 * mo * rank if p.mode == "uvw" else 2 * m1 * m2 * rank
        flops += 2 * rank * (m1 * d1 + m2 * d2) + mix + 2 * mo * rank * d3
    floor = d.irreps_in1.dim + d.irreps_in2.dim + d.irreps_out.dim
    return {"flops": flops, "bytes": floor * itemsize, "intermediates": 0, "per_row_weights": d.weight_numel}


# -- eqc compile --report -----------------------------------------------------------------------------------
def _linear_params(x, out, attrs) -> int | None:
    """Weights of an irreps linear map (Schur: a matrix between the copies of each irrep), or None."""
    if not hasattr(out, "irreps_set") or not hasattr(x, "irreps_set"):
        return None  # matrix groups: the solved basis's size needs numpy
    per_ir = {}
    for m in x:
        per_ir[m.ir] = per_ir.get(m.ir, 0) + m.mul
    n = sum(per_ir.get(m.ir, 0) * m.mul for m in out)
    if attrs.get("bias"):
        n += sum(m.mul for m in out if m.ir.l == 0 and getattr(m.ir, "p", 1) == 1)
    return n * max(attrs.get("selectors", 1), 1)


def _flops_of_linear(x, out) -> int:
    per_ir = {}
    for m in x:
        per_ir[m.ir] = per_ir.get(m.ir, 0) + m.mul
    return sum(2 * per_ir.get(m.ir, 0) * m.mul * m.ir.dim for m in out)


def layer_report(ir, itemsize: int = ITEMSIZE) -> list[dict]:
    """Per layer of `ir` with weights or a product: where it is, the operation, algorithm, parameters, FLOPs and
    bytes per row (the row being an edge or a node: `rows`) and the kernel it runs."""
    rows = []
    for node in ir.order():
        d = ir.node(node)
        op, a, t = d["op"], d["attrs"], d["type"]
        ins = {port: ir.node(src)["type"] for port, src in ir.inputs_of(node)}
        where = f"{d['span'].file}:{d['span'].line}" if d.get("span") is not None else "?"
        row = {"where": where, "op": op, "rows": (ins.get("a") or ins.get("x") or t).placement or "-",
               "algorithm": "-", "params": None, "flops": None, "bytes": None, "kernel": "reference"}
        if op in ("tensor_product", "conv") and a.get("mode") == "gaunt":
            c = gaunt(a, a["algorithm"], itemsize)
            row.update(op="tensor_product (gaunt)", algorithm=a["algorithm"],
                       params=a["weight_numel"] if a["shared_weights"] else 0, flops=c["flops"], bytes=c["bytes"],
                       kernel=f"reference gaunt.GauntProduct ({a['algorithm']}; no Triton kernel)")
        elif op == "tensor_product" and a.get("share_paths"):
            desc, rank = a["descriptor"], a.get("rank", 0)
            c_, da = desc.irreps_in1[0].mul, sum(m.ir.dim for m in desc.irreps_in1)
            db, do = desc.irreps_in2.dim, sum(m.ir.dim for m in desc.irreps_out)
            flops = (2 * rank * (da + do) * c_ + 2 * rank * db + c_ * rank) if rank else c_ * (db * da + 2 * da * db * do)
            row.update(op="tensor_product (uvu, shared paths)", algorithm=f"cp rank {rank}" if rank else "dense table",
                       params=a["weight_numel"] if a.get("shared_weights") else 0, flops=flops + c_ * do,
                       bytes=(desc.irreps_in1.dim + db + desc.irreps_out.dim
                              + (0 if a.get("shared_weights") else a["weight_numel"])) * itemsize,
                       kernel="reference low_rank.SharedPathProduct (no Triton kernel)")
        elif op == "tensor_product" and a.get("rank"):
            desc = a["descriptor"]
            c = low_rank(desc, a["rank"], itemsize)
            row.update(op=f"tensor_product ({a['mode']}, low rank)", algorithm=f"cp rank {a['rank']}",
                       params=desc.weight_numel if a.get("shared_weights") else 0, flops=c["flops"],
                       bytes=c["bytes"] + (0 if a.get("shared_weights") else desc.weight_numel * itemsize),
                       kernel="reference low_rank.LowRankProduct (no Triton kernel)")
        elif op in ("tensor_product", "conv"):
            desc = a["descriptor"]
            c = clebsch_gordan(desc, itemsize)
            mode = {"uvuv": "full"}.get(desc.paths[0].mode, desc.paths[0].mode) if desc.paths else a.get("mode")
            if op == "conv":
                row["rows"] = "edge"
            row.update(op=f"{op} ({mode})", algorithm="clebsch-gordan",
                       params=desc.weight_numel if a.get("shared_weights") else 0, flops=c["flops"],
                       bytes=(c["bytes"] + (0 if a.get("shared_weights") else desc.weight_numel * itemsize)),
                       kernel=("Triton fused gather-product-scatter on CUDA, reference otherwise" if op == "conv" else
                               "Triton per-row kernel on CUDA, reference otherwise"))
        elif op == "linear" and "x" in ins and ins["x"].rep is not None:
            n = _linear_params(ins["x"].rep, t.rep, a)
            row.update(params=n, flops=_flops_of_linear(ins["x"].rep, t.rep) if n is not None else None,
                       bytes=(ins["x"].rep.dim + t.rep.dim) * itemsize,
                       kernel="Triton selected linear on CUDA, reference otherwise" if a.get("selectors") else "reference")
        elif op == "mlp" and "x" in ins and ins["x"].rep is not None and t.rep is not None:
            sizes = [ins["x"].rep.dim, *a["hidden"], t.rep.dim]
            n = sum(p * q for p, q in zip(sizes, sizes[1:]))
            row.update(params=n, flops=2 * n, bytes=(sizes[0] + sizes[-1]) * itemsize)
        elif op == "orientation_conv":
            c = t.rep.dim
            row.update(params=4 * a["basis"] + a["basis"] * c, kernel="reference (grid x grid kernel per channel)")
        elif op == "symmetric_contraction":
            row.update(kernel="Triton contraction kernel on CUDA, reference otherwise")
        else:
            continue
        rows.append(row)
    return rows


def format_report(ir, itemsize: int = ITEMSIZE) -> str:
    """The table `eqc compile --report` prints for one model."""
    head = ("layer", "operation", "algorithm", "params", "FLOPs/row", "bytes/row", "per", "kernel")
    body = [(r["where"], r["op"], r["algorithm"], "-" if r["params"] is None else f"{r['params']:,}",
             "-" if r["flops"] is None else f"{r['flops']:,.0f}", "-" if r["bytes"] is None else f"{r['bytes']:,}",
             r["rows"], r["kernel"]) for r in layer_report(ir, itemsize)]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    lines = [f"{ir.name}: cost per row (an edge or a node), float32 bytes, every intermediate kept on chip",
             "  " + "  ".join(h.ljust(w) for h, w in zip(head, widths))]
    lines += ["  " + "  ".join(str(x).ljust(w) for x, w in zip(r, widths)) for r in body]
    return "\n".join(lines)
