"""Lower a checked model (the IR) to the source of a PyTorch nn.Module.

The output is deterministic (nodes in lexicographic topological order, no
timestamps or absolute paths) and never pastes spec text into code: variables
are named after the spec's own (validated) names, made unique with a suffix,
spec text appears otherwise only inside repr()'d string literals, and echoed
spec lines are stripped of anything that could end a comment.
"""
from __future__ import annotations

import math

from ..groups.recipe import group_from_recipe
from ..ir.frame_rules import FRAME_OPS
from ..ir.graph import ModelIR
from ..ir.ops import DISCRETISED
from ..reps.family import family_of
from .lowering import lowering_table
from .names import LocalNames, RepConstants


def safe_comment(text: str) -> str:
    """Spec text fit for a single-line Python comment: printable characters only."""
    return "".join(c if c.isprintable() else "?" for c in text).strip()


def _float(x: float) -> str:
    return repr(float(x))


class _ModelWriter:
    def __init__(self, ir: ModelIR, sources: dict[str, str], reps: RepConstants, origin: tuple[str, str]):
        self.ir = ir
        self.origin = origin  # (the spec's path as given, the sha256 of it and its imports)
        self.sources = sources
        self.reps = reps
        self.var: dict[str, str] = {}
        self.names = LocalNames(name for name, _ in ir.inputs)
        self.init: list[str] = []
        self.body: list[str] = []
        self.gradient_body: list[str] = []  # what grad(...) gives and all that depends on it (gradient outputs)
        self.float_params = self._float_params()
        self.needs = {"graph": False, "batch": False, "grad": set()}
        self.approximate: list[tuple[str, str]] = []  # (op, node) of layers declared approximately equivariant
        self.frames: dict[str, tuple[str, str]] = {}  # frame label -> (its variable, how it is made)
        self.table = lowering_table(ir.group_recipe)

    # -- naming ------------------------------------------------------------------------
    def _float_params(self) -> list[str]:
        """Model parameters that only feed float attributes: they become constructor arguments."""
        refs = set()
        for node in self.ir.graph.nodes:
            for _, param, _ in self.ir.node(node)["attrs"].get("param_refs", {}).values():
                refs.add(param)
        return [p for p in self.ir.params if p in refs and isinstance(self.ir.params[p], (int, float))
                and not isinstance(self.ir.params[p], bool)]

    def name_of(self, node: str) -> str:
        return self.var[node]

    def _assign_name(self, node: str) -> str:
        d = self.ir.node(node)
        if d["op"] == "input":
            name = d["name"]
        elif d["name"]:
            name = self.names.fresh(d["name"])
        elif d["op"] == "gather":  # pos[dst] reads as pos_dst
            name = self.names.fresh(f"{self.var[dict(self.ir.inputs_of(node))['x']]}_{d['attrs']['index']}")
        else:
            name = self.names.fresh(d["op"], numbered=True)
        self.var[node] = name
        return name

    def rep(self, rep) -> str:
        """The module-level constant holding a representation (named after the spec's rep where it has one)."""
        return self.reps.constant(rep, self.ir.rep_names.get(str(rep)))

    def attr(self, node: str, key: str) -> str:
        """A float attribute, read from the constructor argument when it is a model parameter."""
        attrs = self.ir.node(node)["attrs"]
        ref = attrs.get("param_refs", {}).get(key)
        if ref is None or ref[1] not in self.float_params:
            return _float(attrs[key])
        how, param, power = ref
        value = f"self.param_{param}" if power == 1.0 else f"self.param_{param} ** {_float(power)}"
        return {"id": value, "neg": f"(-{value})", "inv": f"(1.0 / {value})"}[how]

    # -- lowering -------------------------------------------------------------------------
    def write(self) -> str:
        # values computed from a gradient come after all others, in their own section of forward(), so a
        # caller that differentiates the energy itself (stress, export) can leave them out
        self.from_gradient = self._from_gradient()
        last_line = {False: None, True: None}
        for node in self.ir.order():
            d = self.ir.node(node)
            name = self._assign_name(node)
            if d["op"] == "input":
                continue
            section = node in self.from_gradient
            body = self.gradient_body if section else self.body
            span = d["span"]
            where = (span.file, span.line, d["scope"]) if span is not None else None  # a new comment per iteration
            if where != last_line[section] and span is not None:
                body.append(f"# {self._origin(span, d['scope'])}")
                last_line[section] = where
            expr = self.lower(node, d)
            body.append(f"{name} = {expr}")
        return self._assemble()

    def _from_gradient(self) -> set:
        """The nodes that are grad(...) or read one."""
        found = set()
        for node in self.ir.order():
            if self.ir.node(node)["op"] == "grad" or any(src in found for _, src in self.ir.inputs_of(node)):
                found.add(node)
        return found

    def _origin(self, span, scope: str = "") -> str:
        """`file:line: the spec line`, with the block call / repeat iteration an inlined line belongs to."""
        text = self.sources.get(span.file, "").split("\n")
        line = text[span.line - 1] if 0 < span.line <= len(text) else ""
        code = line.split("#", 1)[0] if "#" in line else line
        where = f" [{scope}]" if scope else ""
        return safe_comment(f"{span.file}:{span.line}{where}: {code.strip()}")

    def args(self, node: str) -> dict[str, str]:
        return {port: self.name_of(src) for port, src in self.ir.inputs_of(node)}

    def module(self, node: str, kind: str, ctor: str) -> str:
        attr = f"{kind}_{node[1:]}"
        self.init.append(f"self.{attr} = {ctor}")
        return f"self.{attr}"

    def lower(self, node: str, d: dict) -> str:
        lowering = self.table.get(d["op"])
        if lowering is None:
            raise NotImplementedError(f"no lowering for op {d['op']!r}")
        ins = {port: self.ir.node(src)["type"] for port, src in self.ir.inputs_of(node)}
        args = self.args(node)
        frame = d["type"].frame
        if frame is not None and d["op"] not in FRAME_OPS:  # values outside the frame, seen from each of its copies
            for port, vt in ins.items():
                if vt.kind == "tensor" and vt.frame is None:
                    args[port] = f"{self.frames[frame][0]}.lift({args[port]})"
        return lowering(self, node, d["attrs"], args, ins, d["type"])

    def tp_descriptor(self, node, a, ins) -> str:
        """The expression of a Clebsch-Gordan product's descriptor."""
        keep = f"{self.rep(a['filter'])}.irreps_set()" if a.get("filter") is not None else "None"
        out = self.rep(a["out"]) if a.get("out") is not None else "None"
        return f"tpd.describe(G, {self.rep(ins['a'].rep)}, {self.rep(ins['b'].rep)}, {a['mode']!r}, out={out}, keep={keep})"

    def tp_module(self, node, a, ins) -> str:
        desc = self.tp_descriptor(node, a, ins)
        shared = a["shared_weights"]
        return self.module(node, "tp", f"TensorProductLayer({desc}, shared_weights={shared}, backend=backend)")

    # -- assembly ------------------------------------------------------------------------------
    def _assemble(self) -> str:
        ir = self.ir
        inputs = [(name, self.ir.node(node)["type"]) for name, node in ir.inputs]
        graph_input = next((name for name, t in inputs if t.kind == "graph"), None)
        node_inputs = [name for name, t in inputs if t.kind != "graph" and t.placement == "node"]
        params = ", ".join(f"{p}: float = {_float(ir.params[p])}" for p in self.float_params)
        sig_inputs = [name for name, _ in inputs]
        extra = []
        takes_num_nodes = not node_inputs and (self.needs["graph"] or self.needs["batch"])
        if self.needs["batch"]:  # pooling over nodes or edges needs to know which graph each row belongs to
            extra += ["batch: Optional[torch.Tensor] = None", "num_graphs: Optional[int] = None"]
        if takes_num_nodes:
            extra += ["num_nodes: int = 0"]
        sig = ", ".join(["self"] + sig_inputs + (["*"] + extra if extra else []))
        lines = [f"class {ir.name}(torch.nn.Module):"]
        lines += [f"    {line}" if line else "" for line in self._docstring(inputs)]
        lines.append("")
        lines += [f"    {line}" for line in self._metadata(inputs)]
        # what rebuilds this class: overridden constants and the parameters not taken by the constructor
        compile_time = {**ir.consts, **{k: v for k, v in ir.params.items() if k not in self.float_params}}
        lines.append(f"    COMPILE_TIME_PARAMETERS = {compile_time!r}")
        lines.append(f"    FLOAT_PARAMETERS = {tuple(self.float_params)!r}  # constructor arguments, as self.param_<name>")
        gradient_outputs = tuple(name for name, node in ir.outputs if node in self.from_gradient)
        lines.append(f"    GRADIENT_OUTPUTS = {gradient_outputs!r}  # outputs computed from grad(...): left out with gradient_outputs=False")
        # what a checkpoint records and is checked against on loading (eqdsl.checkpoint)
        lines.append(f"    SPEC = {self.origin[0]!r}")
        lines.append(f"    SPEC_SHA256 = {self.origin[1]!r}")
        lines.append("")
        ctor = ", ".join([p for p in [params] if p] + ['backend: str = "auto"', "check_inputs: bool = True"]
                         + (["gradient_outputs: bool = True"] if self.needs["grad"] else []))
        lines.append(f"    def __init__(self, *, {ctor}):")
        lines.append("        super().__init__()")
        lines.append("        self.check_inputs = bool(check_inputs)  # forward() checks its inputs (shapes, dtypes, ranges)")
        if self.needs["grad"]:
            lines.append("        # False: forward() leaves out GRADIENT_OUTPUTS, for callers that differentiate the energy themselves")
            lines.append("        self.gradient_outputs = bool(gradient_outputs)")
        if self.ir.group_recipe[0] == "irreps":
            lines.append("        # tensor products: 'auto' (Triton on CUDA tensors, the reference on CPU), 'reference' or 'triton'")
        else:
            lines.append("        # the solved maps of matrix groups run on the reference runtime only: no silent substitute for 'triton'")
            lines.append("        if backend not in ('auto', 'reference'):")
            lines.append("            raise ValueError(f\"backend={backend!r}: this model has no Triton kernels (layers of a matrix group); \"")
            lines.append("                             \"use backend='auto' or 'reference'\")")
        for p in self.float_params:
            lines.append(f"        self.param_{p} = float({p})")
        lines += [f"        {line}" for line in self.init]
        if self.soft_groups():
            lines.append("        # log strength of each soft group's penalty, learned from the data by eqdsl.soft.tune_strengths")
            lines.append(f"        self.register_buffer('soft_log_strength', torch.zeros({len(self.soft_groups())}))")
        lines.append("")
        lines.append(f"    def forward({sig}) -> Dict[str, torch.Tensor]:")
        body = self._input_check(inputs, takes_batch=self.needs["batch"], takes_num_nodes=takes_num_nodes)
        if graph_input is not None:
            body.append(f"src, dst = {graph_input}[0], {graph_input}[1]")
        if node_inputs:
            body.append(f"num_nodes = {node_inputs[0]}.shape[0]")
        for name, t in inputs:
            if t.placement == "grid":
                body.append(f"{name} = {name}.movedim(1, -1)  # images arrive [batch, C, H, W]; layers act on the last axis")
        if self.needs["batch"] or "batch" in sig:
            body.append("if batch is None:")
            body.append("    batch = torch.zeros(num_nodes, dtype=torch.long, device=" + self._device_expr(inputs) + ")")
            body.append("    num_graphs = 1")
            body.append("elif num_graphs is None:")
            body.append("    raise ValueError('pass num_graphs together with batch (it fixes the output shape)')")
        if self.needs["grad"]:
            body.append("create_graph = torch.is_grad_enabled()  # keep the graph for training on gradients")
            body.append("with torch.set_grad_enabled(create_graph or self.gradient_outputs):")
            inner = ["if self.gradient_outputs:"]
            for name in sorted(self.needs["grad"]):
                inner.append(f"    if not {name}.requires_grad:")
                inner.append("        if torch.compiler.is_compiling():")
                inner.append(f"            raise RuntimeError({('under torch.compile, pass ' + name + ' with requires_grad=True: this model differentiates with respect to it')!r})")
                inner.append(f"        {name} = {name}.detach().requires_grad_(True)")
            inner += self.body
            inner.append("if self.gradient_outputs:")
            inner += ["    " + line for line in self.gradient_body]
            body += ["    " + line for line in inner]
        else:
            body += self.body

        def out(name, node):
            return f"{name!r}: {self.name_of(node)}" + (".movedim(-1, 1)" if self.ir.node(node)["type"].placement == "grid" else "")
        plain = [(name, node) for name, node in ir.outputs if node not in self.from_gradient]
        from_gradient = [(name, node) for name, node in ir.outputs if node in self.from_gradient]
        if from_gradient:
            result = self.names.fresh("outputs")
            body.append(f"{result} = {{{', '.join(out(n, node) for n, node in plain)}}}")
            body.append("if self.gradient_outputs:")
            body += [f"    {result}[{name!r}] = {self.name_of(node)}" for name, node in from_gradient]
            body.append(f"return {result}")
        else:
            body.append(f"return {{{', '.join(out(n, node) for n, node in plain)}}}")
        lines += [f"        {line}" for line in body]
        if self.soft_groups():
            lines += [f"    {line}" if line else "" for line in self._penalty_method()]
        return "\n".join(lines) + "\n"

    def _metadata(self, inputs) -> list[str]:
        """What eqdsl.testing needs to act on inputs and outputs with group elements."""
        def row(name, t):
            return (name, t.kind, str(t.rep) if t.rep is not None else None, t.placement)
        outs = [row(name, self.ir.node(node)["type"]) for name, node in self.ir.outputs]
        group = self.ir.group if self.ir.group_recipe[0] == "irreps" else self.ir.group_recipe
        lines = [f"GROUP = {group!r}",
                 f"INPUTS = {tuple(row(n, t) for n, t in inputs)!r}",
                 f"OUTPUTS = {tuple(outs)!r}",
                 f"INPUT_LAYOUT = {self._input_layout(inputs)!r}"]
        if any(t.placement == "grid" for _, t in inputs):  # image sides: a multiple of the product of the poolings
            lines.append(f"GRID_MULTIPLE = {self._grid_multiple()!r}")
        if self._made("frame"):  # frame averaging
            lines.append("FRAME_AVERAGED = True")
        if self._made("frame") or any(self.ir.node(n)["type"].kind == "rotation" for _, n in self.ir.outputs):
            # PCA frames and rotations need enough points in general position per graph (eqc check makes them)
            lines.append(f"MIN_NODES_PER_GRAPH = {self._point_dim()}")
        if self.soft_groups():  # symmetries equivariance_penalty() measures (eqdsl.soft)
            lines.append(f"SOFT_GROUPS = {tuple(self.soft_groups())!r}")
        if self.approximate:  # spec lines of layers that are only approximately equivariant (eqc check reports them)
            where = tuple((op, f"{self.ir.node(n)['span'].file}:{self.ir.node(n)['span'].line}") for op, n in self.approximate)
            lines.append(f"APPROXIMATE = {where!r}")
        return lines

    def _made(self, how: str) -> bool:
        """Whether the model makes copies of values this way: frames, orientation grids."""
        return any((how == "orientations") == (method == "orientations") for _, method in self.frames.values())

    def soft_groups(self) -> list:
        """(name, recipe) of the soft groups; layers with unconstrained paths make the model's own group soft too."""
        # sampled kernels and orientation grids are approximate by discretisation: no penalty can remove that
        own = [(self.ir.group, self.ir.group_recipe)] if any(op not in DISCRETISED for op, _ in self.approximate) else []
        return own + [(name, recipe) for name, recipe in self.ir.soft_groups]

    def _penalty_method(self) -> list[str]:
        return ["",
                "def equivariance_penalty(self, *args, samples: int = 1, **kwargs) -> Dict[str, torch.Tensor]:",
                '    """Takes forward()\'s arguments.  Per soft group H (SOFT_GROUPS), \'error/H\': the mean squared',
                "    equivariance error of the outputs under `samples` random elements of H, relative to their mean",
                "    square; 'strength/H': its strength lambda_H; 'penalty': sum_H lambda_H error_H, zero for a model",
                "    equivariant under every soft group, to add to the task loss.  The strengths are learned from the",
                '    data with eqdsl.soft.tune_strengths."""',
                "    from eqdsl.soft import equivariance_penalty",
                "    return equivariance_penalty(self, args, kwargs, samples=samples)"]

    def _input_layout(self, inputs) -> tuple:
        """Per input: (name, kind, placement, width, representation, spec line), for rt.check_inputs."""
        dim = self._point_dim()
        rows = []
        for name, node in self.ir.inputs:
            t, span = self.ir.node(node)["type"], self.ir.node(node)["span"]
            width = dim if t.kind == "point" else (t.rep.dim if t.rep is not None else None)
            where = f"{span.file}:{span.line}" if span is not None else self.ir.name
            rows.append((name, t.kind, t.placement, width, str(t.rep) if t.rep is not None else None, where))
        return tuple(rows)

    def _grid_multiple(self) -> int:
        """What image sides must be a multiple of: the product of the pooling sizes along any path."""
        factor: dict[str, int] = {}
        for node in self.ir.order():
            d = self.ir.node(node)
            f = 1
            for _, src in self.ir.inputs_of(node):
                f = math.lcm(f, factor[src])
            if d["op"] in ("avg_pool2d", "max_pool2d"):
                f *= d["attrs"]["size"]
            factor[node] = f
        return math.lcm(1, *factor.values())

    def _input_check(self, inputs, takes_batch: bool, takes_num_nodes: bool) -> list[str]:
        """The first lines of forward(): the inputs checked against INPUT_LAYOUT unless check_inputs=False."""
        names = ", ".join(f"{name!r}: {name}" for name, _ in inputs)
        has_nodes = any(t.placement in ("node", "edge") or t.kind == "graph" for _, t in inputs)
        args = [f"{{{names}}}", "module=self"]
        if takes_batch:
            args += ["batch=batch", "num_graphs=num_graphs"]
        if takes_num_nodes:
            args.append("num_nodes=num_nodes")
        if not has_nodes:
            args.append("graph_rows='batch'")
        if any(t.placement == "grid" for _, t in inputs):
            args.append("grid_multiple=self.GRID_MULTIPLE")
        return ["if self.check_inputs:", f"    rt.check_inputs(self.INPUT_LAYOUT, {', '.join(args)})"]

    def _device_expr(self, inputs) -> str:
        first = next(name for name, t in inputs if t.kind != "graph")
        return f"{first}.device"

    def _point_dim(self) -> int:
        g = group_from_recipe(self.ir.group_recipe)
        return family_of(g).point_dim(g)

    def _docstring(self, inputs) -> list[str]:
        ir = self.ir
        out = [f'"""{ir.name}: equivariant under {ir.group}, generated by eqdsl.', ""]
        out.append("forward() inputs:")
        dim = self._point_dim()
        # models without nodes (images, one sample per row) call their @graph rows the batch
        has_nodes = any(t.placement in ("node", "edge") or t.kind == "graph" for _, t in inputs)
        rows = "num_graphs" if has_nodes else "batch"
        for name, t in inputs:
            out.append(f"    {name}: {_shape(t, dim, rows)}")
        out.append("returns a dict:")
        for name, node in ir.outputs:
            note = " (left out with gradient_outputs=False)" if node in self.from_gradient else ""
            out.append(f"    {name!r}: {_shape(ir.node(node)['type'], dim, rows)}{note}")
        out.append('"""')
        return out


def _shape(t, point_dim: int = 3, graph_rows: str = "num_graphs") -> str:
    rows = {"node": "num_nodes", "edge": "num_edges", "graph": graph_rows, "grid": "batch", None: "..."}[t.placement]
    if t.kind == "graph":
        return "[2, num_edges] long tensor of (src, dst) node indices"
    if t.kind == "point":
        return f"[{rows}, {point_dim}] positions"
    if t.kind == "rotation":
        return f"[{rows}, {point_dim}, {point_dim}] rotation matrices (columns {t.rep})"
    if t.placement == "grid":
        return f"[batch, {t.rep.dim}, H, W] image of features {t.rep}"
    return f"[{rows}, {t.rep.dim}] features {t.rep} @{t.placement}"


def lower_model(ir: ModelIR, sources: dict[str, str], reps: RepConstants, origin: tuple[str, str]) -> str:
    """The class of one model; the representations it uses are added to `reps` (module-level constants).
    `origin` is (spec path, spec sha256), written into the class for checkpoints."""
    return _ModelWriter(ir, sources, reps, origin).write()
