"""The equivariance type checker: resolves names, infers every value's type and lowers models to the IR.

It walks each model's statements in order, evaluating expressions either at
compile time (numbers, representations) or into IR nodes whose types come from
the rules in ``eqdsl/ir/ops.py``.  Errors become diagnostics; an expression that failed
evaluates to POISON so that one mistake produces one message.  ``repeat`` bodies
and block calls are unrolled/inlined: every iteration and call gets its own nodes
(and so its own parameters).  Binding a call to its rule and inlining a block call are
``calls.CallBinding``'s part; representations are evaluated by the group family's
``rep_expressions``.
"""
from __future__ import annotations

import keyword
import math
import re

from ..diagnostics import DiagnosticSink, Span
from ..groups import GROUPS
from ..groups.recipe import recipe_of
from ..reps.family import family_of
from ..ir import frame_rules, ops, type_rules
from ..ir.graph import ModelIR
from ..ir.types import PLACEMENTS, ValueType, same_rep, tensor
from ..syntax import ast
from . import rep_expressions, soft_symmetry
from .calls import CallBinding
from .rep_expressions import RepExpressions
from .scope import Failed, ModelContext, Scope
from .values import POISON, Block, EdgeIndex, Node, Poison, RepValue, Static


def _group_declarations():
    """Group declarations other than O3 and SO3: numpy and the matrix groups load only when a spec needs them."""
    from . import group_declarations
    return group_declarations

# Names the generated Python module uses for itself (see eqdsl/codegen).
GENERATED_NAMES = {"self", "batch", "num_graphs", "num_nodes", "create_graph", "backend", "torch", "rt", "rt_grad",
                   "TensorProductLayer", "G", "Irreps",
                   "tpd", "Optional", "Dict", "annotations", "check_inputs"}
# Generated temporaries are named n0012 or h_n0012; inputs may not look like them.
GENERATED_PATTERN = re.compile(r"^(.*_)?n\d+$")

MAX_REPEAT = 1000

RESERVED = {"src", "dst", "position", "graph"}
# Output names that suggest an orientation (W0801 when it is 3 or 4 numbers).
ROTATION_LIKE = re.compile(r"(?:^|_)(?:quaternions?|quats?|euler|angles?|rotations?|rot|orientations?|attitudes?|poses?)"
                           r"(?:$|_)", re.I)


class Checker(CallBinding):
    def __init__(self, sink: DiagnosticSink, overrides: dict | None = None):
        self.sink = sink
        self.group = None
        self.group_span = None
        self.globals = Scope()
        self.overrides = dict(overrides or {})
        self.overridden_consts: dict = {}  # const name -> the value given for it (-D), recorded in every model
        self.soft_groups: list = []  # (name, group, span) of `soft group` declarations
        self._def_spans: dict = {}  # (id(scope), name) -> where it was defined, for duplicate-definition notes

    @property
    def reps(self) -> RepExpressions:
        """How this spec's group writes and evaluates representations."""
        return rep_expressions.for_group(self.group)

    @property
    def ops(self) -> dict:
        """The typing rules of this spec's group family (matrix groups' rules load scipy, so only when used)."""
        return ops.ops_for(self.group)

    # -- errors ---------------------------------------------------------------------------
    def fail(self, code, message, span, label="", notes=(), hints=()):
        self.sink.error(code, message, span, label, notes, hints)
        raise Failed()

    # -- program --------------------------------------------------------------------------
    def check_program(self, specs: list[ast.Spec], main_file: str) -> list[ModelIR]:
        # the main spec's group is authoritative; imports must agree with it
        for spec in sorted(specs, key=lambda sp: sp.file != main_file):
            for decl in spec.decls:
                if isinstance(decl, ast.GroupDecl) and not decl.soft:
                    self._group(decl)
        if self.group is None:
            if any(isinstance(d, ast.GroupDecl) and not d.soft for spec in specs for d in spec.decls):
                return []  # the group declaration itself was reported
            span = Span(main_file, 1, 1, 1, 2)
            self.sink.error("E0601", "no symmetry group declared", span, "the spec needs a group",
                            hints=[f"start the spec with `group O3` (known: {', '.join(GROUPS)})"])
            return []
        for spec in specs:
            for decl in spec.decls:
                if isinstance(decl, ast.GroupDecl) and decl.soft:
                    self._soft_group(decl)
        models = []
        for spec in specs:
            for decl in spec.decls:
                try:
                    if isinstance(decl, ast.ConstDecl):
                        self._define(self.globals, decl.name, decl.name_span, self._const(decl))
                    elif isinstance(decl, ast.RepDecl):
                        self._define(self.globals, decl.name, decl.name_span, RepValue(self.eval_rep(decl.value, self.globals)))
                    elif isinstance(decl, ast.BlockDecl):
                        self._define(self.globals, decl.name, decl.name_span, Block(decl))
                    elif isinstance(decl, ast.ModelDecl) and spec.file == main_file:
                        models.append(decl)
                except Failed:
                    if hasattr(decl, "name"):
                        self.globals.names.setdefault(decl.name, POISON)
        if not models:
            self.sink.error("E0601", "no model in this spec", Span(main_file, 1, 1, 1, 2), "nothing to compile",
                            hints=["declare one: model Name { input ...  output ... }"])
        return [ir for ir in (self.check_model(m) for m in models) if ir is not None]

    def _declared(self, decl: ast.GroupDecl):
        """The group a `group` or `soft group` declaration names (raises Failed after reporting E0109)."""
        if decl.value is None and decl.name in GROUPS:  # O3 / SO3: no matrix-group machinery (numpy) needed
            return GROUPS[decl.name]
        return _group_declarations().declared_group(decl, self)

    def _group(self, decl: ast.GroupDecl) -> None:
        try:
            group = self._declared(decl)
        except Failed:
            return
        if self.group is not None and group != self.group:
            self.sink.error("E0109", f"conflicting groups `{self.group.name}` and `{decl.name}`", decl.span,
                            "a spec and its imports share one group", notes=[f"the main spec declares it at {self.group_span}"])
            return
        if self.group is None:
            self.group, self.group_span = group, decl.span

    def _soft_group(self, decl: ast.GroupDecl) -> None:
        """`soft group G`: a symmetry the model should only approximately have (see eqdsl/soft.py)."""
        try:
            group = self._declared(decl)
        except Failed:
            return
        point_dim = soft_symmetry.point_dim
        if group == self.group:
            self.sink.error("E0703", f"the model is already exactly equivariant under `{decl.name}`", decl.span,
                            "the declared group itself", hints=["declare the larger symmetry the data only approximately has"])
        elif point_dim(group) != point_dim(self.group):
            self.sink.error("E0703", f"`{decl.name}` acts on {point_dim(group)}-dimensional points, {self.group.name} on "
                            f"{point_dim(self.group)}-dimensional ones", decl.span, "a different space",
                            notes=["a soft group acts on the model's positions and features through the same coordinates"])
        elif any(name == decl.name for name, _, _ in self.soft_groups):
            self.sink.error("E0102", f"soft group `{decl.name}` is declared twice", decl.span, "declared twice")
        else:
            self.soft_groups.append((decl.name, group, decl.span))

    def _check_soft_actions(self, ir: ModelIR) -> None:
        """Every soft group must act on every input and output, through the same construction of its rep."""
        for soft_name, group, _ in self.soft_groups:
            elements = soft_symmetry.probe_elements(group)
            for what, rows in (("input", ir.inputs), ("output", ir.outputs)):
                for name, node in rows:
                    d = ir.node(node)
                    reason = soft_symmetry.cannot_act(self.group, elements, d["type"])
                    if reason is not None:
                        self.sink.error("E0703", f"soft group `{soft_name}` cannot act on {what} `{name}` ({d['type']})",
                                        d["span"], reason,
                                        hints=["a soft group acts through each value's own representation: positions, "
                                               "scalars, V and what sums, products and duals build from them; O(3) irreps "
                                               "for reflections (SO(3) irreps have rotations only)"])

    def _const(self, decl: ast.ConstDecl):
        if decl.name in self.overrides:
            self.overridden_consts[decl.name] = self.overrides.pop(decl.name)
            return Static(self.overridden_consts[decl.name])
        return Static(self.eval_static(decl.value, self.globals, "number or bool"))

    def _first_note(self, scope: Scope, name: str) -> list[str]:
        first = self._def_spans.get((id(scope), name))
        return [f"first defined at {first.file}:{first.line}:{first.column}"] if first else []

    def _define(self, scope: Scope, name: str, span: Span, value) -> None:
        if name in RESERVED:
            self.fail("E0102", f"`{name}` is reserved", span, "choose another name")
        prev, where = scope.names.get(name), scope
        if prev is None and scope is not self.globals:
            prev, where = self.globals.names.get(name), self.globals
        if prev is not None and not isinstance(prev, Poison):
            self.fail("E0102", f"`{name}` is already defined", span, "defined twice", notes=self._first_note(where, name),
                      hints=["rename one of the two"])
        scope.names[name] = value
        self._def_spans[(id(scope), name)] = span

    # -- static evaluation ------------------------------------------------------------------
    def _finite(self, value, span):
        if isinstance(value, float) and not math.isfinite(value):
            self.fail("E0108", "numbers must be finite", span, "overflows to infinity or is not a number")
        return value

    def eval_static(self, expr, scope: Scope, want: str):
        if isinstance(expr, ast.Num):
            return self._finite(expr.value, expr.span)
        if isinstance(expr, ast.Bool):
            return expr.value
        if isinstance(expr, ast.Name):
            val = scope.lookup(expr.name)
            if isinstance(val, Static):
                return val.value
            if isinstance(val, Poison):
                raise Failed()
            if val is None:
                self._unknown_name(expr, scope)
            self.fail("E0207", f"`{expr.name}` is not a compile-time {want}", expr.span, f"expected a {want}")
        if isinstance(expr, ast.Neg):
            v = self.eval_static(expr.operand, scope, want)
            if isinstance(v, bool):
                self.fail("E0207", "cannot negate a boolean", expr.span)
            return -v
        if isinstance(expr, ast.BinOp):
            a = self.eval_static(expr.left, scope, want)
            b = self.eval_static(expr.right, scope, want)
            if isinstance(a, bool) or isinstance(b, bool):
                self.fail("E0207", "arithmetic on booleans", expr.span)
            if expr.op == "**" and isinstance(a, int) and isinstance(b, int) and abs(b) > 64:
                self.fail("E0108", "integer powers are limited to exponents up to 64", expr.span)
            try:
                if expr.op == "/":
                    value = a / b
                else:
                    value = {"+": a + b, "-": a - b, "*": a * b}[expr.op] if expr.op != "**" else a ** b
            except (ZeroDivisionError, OverflowError) as err:
                self.fail("E0108", f"cannot evaluate: {err}", expr.span)
            if isinstance(value, complex):
                self.fail("E0108", "this power has no real value", expr.span)
            return self._finite(value, expr.span)
        hints = []
        if isinstance(expr, ast.IrrepsLit) and expr.text[-1] == "e" and "x" not in expr.text:
            hints.append(f"`{expr.text}` reads as an irrep; write a float exponent as 1.0e+3 or 1E3")
        self.fail("E0207", f"expected a compile-time {want}", expr.span, "not a constant expression", hints=hints)

    def eval_int(self, expr, scope) -> int:
        v = self.eval_static(expr, scope, "integer")
        if isinstance(v, bool) or not isinstance(v, int):
            self.fail("E0108", f"expected an integer, got `{v}`", expr.span, "not an integer")
        return v

    def eval_float(self, expr, scope) -> float:
        v = self.eval_static(expr, scope, "number")
        if isinstance(v, bool):
            self.fail("E0108", "expected a number, got a boolean", expr.span)
        try:
            v = float(v)
        except OverflowError:
            v = math.inf
        if not math.isfinite(v):
            self.fail("E0108", "expected a finite number", expr.span, "not finite")
        return v

    def eval_rep(self, expr, scope: Scope):
        """The representation `expr` denotes, written as the group's family of representations writes it."""
        return self.reps.evaluate(self, expr, scope)

    def _unknown_name(self, expr: ast.Name, scope: Scope):
        hints = type_rules.suggest(expr.name, scope.visible() | {"src", "dst"})
        if expr.name in ("src", "dst"):
            self.fail("E0502", f"`{expr.name}` needs a graph input", expr.span, "no graph in this model",
                      hints=["declare the edge index: input edges : graph"])
        self.fail("E0101", f"unknown name `{expr.name}`", expr.span, "not defined here", hints=hints)

    # -- models -------------------------------------------------------------------------------
    def _python_name(self, name: str, span: Span, what: str) -> None:
        if keyword.iskeyword(name) or name in GENERATED_NAMES or GENERATED_PATTERN.match(name):
            self.sink.error("E0110", f"{what} `{name}` cannot be used in the generated Python module", span,
                            "a Python keyword or a name the module uses itself", hints=[f"rename it, e.g. `{name}_`"])

    def check_model(self, decl: ast.ModelDecl) -> ModelIR | None:
        self._python_name(decl.name, decl.name_span, "model name")
        params = {}
        scope = Scope(parent=self.globals)
        ir = ModelIR(decl.name, self.group.name, params, span=decl.span, group_recipe=recipe_of(self.group),
                     rep_names=self._rep_names(), consts=dict(self.overridden_consts))
        ctx = ModelContext(ir)
        ctx.support = self.reps.support_tracker(self.group, ir)
        self._ctx = ctx
        for p in decl.params:
            try:
                value = self.overrides.pop(p.name) if p.name in self.overrides else self.eval_static(p.default, self.globals, "number or bool")
                params[p.name] = value
                self._python_name(p.name, p.name_span, "parameter name")
                self._define(scope, p.name, p.name_span, Static(value, param=p.name))
            except Failed:
                scope.names[p.name] = POISON
        self._statements(decl.body, scope, ctx, in_model=True)
        ir.soft_groups = [(name, recipe_of(group)) for name, group, _ in self.soft_groups]
        self._check_soft_actions(ir)
        for node, span in ctx.open_mlps.items():
            self.sink.error("E0205", "the output size of this MLP is never determined", span, "size left open",
                            hints=["give its size with `-> Kx0e`, or use it as tensor-product weights"])
        if not any(isinstance(stmt, ast.Output) for stmt in decl.body):
            self.sink.error("E0601", f"model `{decl.name}` has no outputs", decl.name_span, "nothing is returned",
                            hints=["add `output name : type = expression`"])
        return ir

    def _rep_names(self) -> dict[str, str]:
        """The spec's `rep NAME = ...` declarations by the text of their value (the first name of a rep wins)."""
        names: dict[str, str] = {}
        for name, value in self.globals.names.items():
            if isinstance(value, RepValue):
                names.setdefault(str(value.rep), name)
        return names

    def _statements(self, body, scope: Scope, ctx: ModelContext, in_model: bool):
        returned = None
        for stmt in body:
            try:
                if returned is not None:
                    self.fail("E0604", "statement after return", stmt.span, "never runs")
                if isinstance(stmt, ast.Input):
                    self._input(stmt, scope, ctx, in_model)
                elif isinstance(stmt, ast.Output):
                    self._output(stmt, scope, ctx, in_model)
                elif isinstance(stmt, ast.Assign):
                    self._assign(stmt.name, stmt.name_span, self.eval_value(stmt.value, scope, ctx), scope)
                elif isinstance(stmt, ast.Repeat):
                    self._repeat(stmt, scope, ctx, in_model)
                elif isinstance(stmt, ast.Return):
                    if in_model:
                        self.fail("E0604", "`return` belongs in a block", stmt.span, "not in a model",
                                  hints=["models return values with `output name = ...`"])
                    returned = self.eval_value(stmt.value, scope, ctx)
            except Failed:
                if getattr(stmt, "name", None) in RESERVED:
                    pass  # src, dst, position, graph keep their meaning
                elif isinstance(stmt, ast.Assign):
                    scope.names[stmt.name] = POISON  # a failed rebinding silences uses of the stale value
                elif isinstance(stmt, (ast.Input, ast.Output)):
                    scope.names.setdefault(stmt.name, POISON)  # a rejected duplicate keeps the first binding
                elif isinstance(stmt, ast.Return):
                    returned = POISON
        return returned

    def _assign(self, name, span, value, scope: Scope):
        if name in RESERVED:
            self.fail("E0102", f"`{name}` is reserved", span, "choose another name")
        if isinstance(self.globals.names.get(name), (RepValue, Block, Static)) and name not in scope.names:
            self.fail("E0102", f"`{name}` is already defined at the top of the spec", span, "shadows a declaration",
                      notes=self._first_note(self.globals, name), hints=["choose another name"])
        if isinstance(value, Node):
            node = self._ctx.ir.node(value.id)
            if node["name"] is None:
                node["name"] = name
        scope.names[name] = value

    def _input(self, stmt: ast.Input, scope, ctx, in_model):
        if not in_model:
            self.fail("E0604", "`input` belongs at the top level of a model", stmt.span, "not allowed here")
        self._python_name(stmt.name, stmt.name_span, "input name")
        vtype = self._type(stmt.type, scope, ctx, is_input=True)
        if vtype.kind == "graph":
            if ctx.has_graph:
                self.fail("E0102", "a model takes one graph", stmt.span, "second graph input")
            ctx.has_graph = True
            scope.names["src"], scope.names["dst"] = EdgeIndex("src"), EdgeIndex("dst")
        if stmt.name in scope.names or stmt.name in RESERVED:
            self.fail("E0102", f"`{stmt.name}` is already defined", stmt.name_span, "defined twice",
                      notes=self._first_note(scope, stmt.name))
        node = ctx.ir.add("input", vtype, {"type": vtype, "name": stmt.name}, stmt.span, scope=ctx.scope_label)
        ctx.ir.node(node)["name"] = stmt.name
        ctx.ir.inputs.append((stmt.name, node))
        self._define(scope, stmt.name, stmt.name_span, Node(node, vtype))

    def _type(self, texpr: ast.TypeExpr, scope, ctx, is_input: bool) -> ValueType:
        placement = texpr.placement
        if placement is not None and placement not in PLACEMENTS:
            self.fail("E0108", f"unknown placement `@{placement}`", texpr.placement_span, "not a placement",
                      hints=type_rules.suggest(placement, PLACEMENTS) + ["placements: @node, @edge, @graph, @grid"])
        if placement == "grid" and not self.reps.images:
            self.fail("E0308", f"images (@grid) need a group acting on the plane, not {self.group.name}",
                      texpr.placement_span, "no grid action",
                      hints=["declare e.g. `group D4` (rotations by 90 degrees and reflections of the image)"])
        e = texpr.expr
        if isinstance(e, ast.Name) and e.name == "graph":
            if placement is not None:
                self.fail("E0108", "a graph has no placement", texpr.placement_span, "remove this")
            return ValueType("graph", None, None)
        if isinstance(e, ast.Name) and e.name == "rotation" and scope.lookup("rotation") is None:
            if is_input:
                self.fail("E0801", "rotations are outputs, not inputs", e.span, "not an input type",
                          hints=["pass the vectors that determine it, e.g. two 1x1o inputs"])
            return ValueType("rotation", None, placement)
        if isinstance(e, ast.Name) and e.name == "position":
            if placement not in (None, "node"):
                self.fail("E0108", "positions are per node", texpr.placement_span, "use @node")
            return ValueType("point", None, "node")
        if is_input and placement is None:
            placement = "node"
        return tensor(self.eval_rep(e, scope), placement)

    def _output(self, stmt: ast.Output, scope, ctx, in_model):
        if not in_model:
            self.fail("E0604", "`output` belongs at the top level of a model", stmt.span, "not allowed here",
                      hints=["blocks give their result with `return`"])
        value = self.eval_value(stmt.value, scope, ctx)
        node = self._as_node(value, stmt.value, ctx)
        if stmt.type is not None:
            declared = self._type(stmt.type, scope, ctx, is_input=False)
            self._check_declared(node.type, declared, stmt.type.span, f"output `{stmt.name}`")
        if node.type.kind in ("graph", "frame", "orientations") or node.type.is_open:
            self.fail("E0207", "outputs are features or positions", stmt.value.span, f"this is {node.type}")
        if node.type.frame is not None:
            kind = frame_rules.kind_of(node.type.frame)
            self.fail(kind.code, f"an output is still expressed in {kind.noun}", stmt.value.span,
                      f"in the {node.type.frame}", notes=[kind.why], hints=[kind.leave])
        if any(n == stmt.name for n, _ in ctx.ir.outputs):
            self.fail("E0102", f"output `{stmt.name}` is already defined", stmt.name_span, "defined twice")
        ctx.ir.outputs.append((stmt.name, node.id))
        self._warn_rotation_like(stmt, node.type)
        self._assign(stmt.name, stmt.name_span, node, scope)

    def _warn_rotation_like(self, stmt: ast.Output, t: ValueType) -> None:
        """W0801: an orientation given as a quaternion (4 numbers) or angles (3): discontinuous, and as invariant
        scalars unable to turn with the input."""
        if t.kind != "tensor" or t.rep is None or t.rep.dim not in (3, 4) or not ROTATION_LIKE.search(stmt.name):
            return
        what = "a quaternion" if t.rep.dim == 4 else "three angles"
        invariant = same_rep(t.rep, family_of(self.group).scalars(self.group, t.rep.dim))
        self.sink.warning("W0801", f"output `{stmt.name}` looks like a rotation given as {what}", stmt.name_span,
                          f"{t.rep.dim} numbers",
                          notes=["every representation of rotations in 4 or fewer numbers is discontinuous, hard to learn "
                                 "(Zhou et al., 2019)"] + (["invariant scalars cannot turn with the input"] if invariant else []),
                          hints=[f"output {stmt.name} : rotation = orthonormalize(a, b), of two equivariant vectors"])

    def _check_declared(self, actual: ValueType, declared: ValueType, span, what):
        if actual.is_open:
            self.fail("E0205", f"the size of {what} is still open", span, "an MLP without a final size",
                      hints=[f"give the MLP its output size: mlp(...) -> {declared.rep if declared.kind == 'tensor' else 'K'}"])
        if declared.kind != actual.kind or (declared.kind == "tensor" and not same_rep(actual.rep, declared.rep)):
            shown = declared.rep if declared.kind == "tensor" else declared.kind
            got = actual.rep if actual.kind == "tensor" else actual.kind
            self.fail("E0204", f"{what} is declared `{shown}` but is `{got}`", span, "declared type differs",
                      notes=[f"inferred: {actual}"],
                      hints=[f"declare `{got}`, or map the value with linear(...) -> {shown}"]
                      if actual.kind == declared.kind == "tensor" else [])
        if declared.placement is not None and declared.placement != actual.placement:
            self.fail("E0505", f"{what} is declared @{declared.placement} but lives @{actual.placement}", span,
                      "placement differs", hints=["pool with sum_nodes(...) or scatter with scatter_sum(...)"])

    def _repeat(self, stmt: ast.Repeat, scope, ctx, in_model):
        n = self.eval_static(stmt.count, scope, "integer")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            self.fail("E0602", f"repeat needs a non-negative integer count, got `{n}`", stmt.count.span,
                      "not a non-negative integer")
        if n > MAX_REPEAT:
            self.fail("E0602", f"repeat count {n} is larger than {MAX_REPEAT}", stmt.count.span, "too many layers",
                      notes=["repeat bodies are unrolled: every iteration gets its own layers and parameters"])
        outer = ctx.scope_label
        for i in range(n):
            ctx.scope_label = f"{outer}repeat {i + 1}/{n}" + (" > " if outer else "")
            ctx.scope_label = ctx.scope_label.rstrip(" >")
            self._statements(stmt.body, scope, ctx, in_model=in_model)
        ctx.scope_label = outer

    # -- value evaluation ----------------------------------------------------------------------------
    def eval_value(self, expr, scope: Scope, ctx: ModelContext):
        if isinstance(expr, ast.Num) or isinstance(expr, ast.Bool):
            return Static(self._finite(expr.value, expr.span))
        if isinstance(expr, ast.Name):
            val = scope.lookup(expr.name)
            if val is None and expr.name in self.reps.predefined:
                return RepValue(self.eval_rep(expr, scope))
            if val is None:
                self._unknown_name(expr, scope)
            if isinstance(val, Poison):
                raise Failed()
            if isinstance(val, Node):  # an open MLP may have been resolved since it was bound
                return Node(val.id, ctx.ir.node(val.id)["type"])
            return val
        if isinstance(expr, ast.Attr) and self.reps.attributes_are_reps:
            return RepValue(self.eval_rep(expr, scope))
        if isinstance(expr, ast.IrrepsLit):
            return RepValue(self.eval_rep(expr, scope))
        if isinstance(expr, ast.Str):
            self.fail("E0207", "strings are only used by import", expr.span, "unexpected string")
        if isinstance(expr, ast.Neg):
            v = self.eval_value(expr.operand, scope, ctx)
            if isinstance(v, Static) and not isinstance(v.value, bool):
                return Static(-v.value)
            x = self._as_node(v, expr.operand, ctx)
            return self._apply("neg", {"x": (x, expr.operand.span)}, {}, expr.span, ctx)
        if isinstance(expr, ast.BinOp):
            return self._binop(expr, scope, ctx)
        if isinstance(expr, ast.Index):
            return self._gather(expr, scope, ctx)
        if isinstance(expr, ast.Arrow):
            return self._arrow(expr, scope, ctx)
        if isinstance(expr, ast.Call):
            return self._call(expr, scope, ctx, out=None)
        if isinstance(expr, ast.Attr):
            self.fail("E0103", f"unknown attribute `.{expr.name}`", expr.span, "no attributes on values")
        raise TypeError(f"unhandled expression {expr!r}")

    def _as_node(self, v, expr, ctx) -> Node:
        if isinstance(v, Node):
            return v
        if isinstance(v, Static):
            self.fail("E0207", f"expected features, got the constant `{v.value}`", expr.span, "a compile-time constant")
        if isinstance(v, RepValue):
            self.fail("E0207", f"expected features, got the representation `{v.rep}`", expr.span,
                      "a representation, not a value", hints=["representations go after `->` or in declarations"])
        if isinstance(v, EdgeIndex):
            self.fail("E0502", f"`{v.which}` is an edge index, not features", expr.span, "an index",
                      hints=[f"use it to gather node features: h[{v.which}]"])
        if isinstance(v, Block):
            self.fail("E0207", f"block `{v.decl.name}` is used without calling it", expr.span, "call it: name(...)")
        raise Failed()

    def _looks_like_rep(self, expr, scope) -> bool:
        """Whether an expression is a representation by its form (checked before evaluating anything)."""
        if isinstance(expr, ast.IrrepsLit):
            return True
        if isinstance(expr, ast.Name):
            val = scope.lookup(expr.name)
            return isinstance(val, RepValue) or (val is None and expr.name in self.reps.predefined)
        if isinstance(expr, (ast.Attr, ast.Call)):
            return self.reps.is_rep_form(expr)
        if isinstance(expr, ast.BinOp):
            return self._looks_like_rep(expr.left, scope) or self._looks_like_rep(expr.right, scope)
        return False

    def _binop(self, expr: ast.BinOp, scope, ctx):
        power_of_rep = (expr.op == "**" and self.reps.power_binds_to_arrow and isinstance(expr.left, ast.Arrow)
                        and self._looks_like_rep(expr.left.rep, scope))  # `-> V**3` reads as (... -> V) ** 3
        if power_of_rep or (isinstance(expr.left, ast.Arrow) and expr.op in "+*" and self._looks_like_rep(expr.right, scope)
                            and not isinstance(expr.right, ast.Num)):
            left_rep = expr.left.rep
            what = {"+": "sum", "*": "product", "**": "power"}[expr.op]
            self.fail("E0207", f"a representation {what} after `->` needs parentheses",
                      left_rep.span.to(expr.right.span), "`->` takes one operand",
                      hints=[f"write `-> ({_text(left_rep)} {expr.op} {_text(expr.right)})`"])
        a = self.eval_value(expr.left, scope, ctx)
        b = self.eval_value(expr.right, scope, ctx)
        if isinstance(a, Static) and isinstance(b, Static):
            value = self.eval_static(expr, scope, "number")
            if expr.op == "**" and a.param is not None and b.param is None and isinstance(b.value, (int, float)) \
                    and not isinstance(b.value, bool):
                return Static(value, param=a.param, power=a.power * float(b.value))  # still the parameter's value
            return Static(value)
        if isinstance(a, RepValue) or isinstance(b, RepValue):
            bad = expr.left if isinstance(a, RepValue) else expr.right
            self._as_node(a if isinstance(a, RepValue) else b, bad, ctx)
        la, lb = expr.left.span, expr.right.span
        if expr.op in "+-":
            if isinstance(b, Static):
                x = self._as_node(a, expr.left, ctx)
                c = float(b.value) if expr.op == "+" else -float(b.value)
                return self._apply("add_const", {"x": (x, la)}, _with_ref({"c": c}, "id" if expr.op == "+" else "neg", b),
                                   expr.span, ctx)
            if isinstance(a, Static):
                x = self._as_node(b, expr.right, ctx)
                if expr.op == "-":
                    x = self._apply("neg", {"x": (x, lb)}, {}, expr.right.span, ctx)
                return self._apply("add_const", {"x": (x, lb)}, _with_ref({"c": float(a.value)}, "id", a), expr.span, ctx)
            op = "add" if expr.op == "+" else "sub"
            return self._apply(op, {"a": (self._as_node(a, expr.left, ctx), la), "b": (self._as_node(b, expr.right, ctx), lb)},
                               {}, expr.span, ctx)
        if expr.op == "*":
            if isinstance(a, Static) or isinstance(b, Static):
                s, v, vs = (a, b, lb) if isinstance(a, Static) else (b, a, la)
                x = self._as_node(v, expr.right if v is b else expr.left, ctx)
                return self._apply("scale", {"x": (x, vs)}, _with_ref({"c": float(s.value)}, "id", s), expr.span, ctx)
            return self._apply("mul", {"a": (self._as_node(a, expr.left, ctx), la), "b": (self._as_node(b, expr.right, ctx), lb)},
                               {}, expr.span, ctx)
        if expr.op == "/":
            if isinstance(b, Static):
                if float(b.value) == 0.0:
                    self.fail("E0108", "division by zero", lb, "zero")
                x = self._as_node(a, expr.left, ctx)
                return self._apply("scale", {"x": (x, la)}, _with_ref({"c": 1.0 / float(b.value)}, "inv", b), expr.span, ctx)
            if isinstance(a, Static):
                self.fail("E0304", "a constant divided by features", expr.span, "not supported",
                          hints=["write c * (1 / x) with an invariant x as x ** -1"])
            return self._apply("div", {"a": (self._as_node(a, expr.left, ctx), la), "b": (self._as_node(b, expr.right, ctx), lb)},
                               {}, expr.span, ctx)
        if expr.op == "**":
            if not isinstance(b, Static):
                self.fail("E0304", "exponents must be compile-time constants", lb, "not a constant")
            return self._apply("pow", {"x": (self._as_node(a, expr.left, ctx), la)}, {"k": float(b.value)}, expr.span, ctx)
        raise TypeError(expr.op)

    @staticmethod
    def _param_of(value) -> str | None:
        return value.param if isinstance(value, Static) else None

    def _note_param(self, attrs, attr, how, expr, scope):
        """Remember that a float attribute is a model parameter (how: id, neg, inv; of a power of it), so generated
        modules can take it as a constructor argument instead of a baked-in number."""
        value = scope.lookup(expr.name) if isinstance(expr, ast.Name) else None
        param = self._param_of(value)
        if param is not None:
            attrs.setdefault("param_refs", {})[attr] = (how, param, value.power)

    def _gather(self, expr: ast.Index, scope, ctx):
        v = self.eval_value(expr.value, scope, ctx)
        idx = self.eval_value(expr.index, scope, ctx)
        if not isinstance(idx, EdgeIndex):
            self.fail("E0502", "index node values with `src` or `dst`", expr.index.span, "not an edge index",
                      hints=["h[src] gives each edge the features of its source node"])
        if isinstance(v, Node) and v.type.kind == "graph":
            self.fail("E0502", "the graph itself cannot be indexed", expr.value.span, "a graph",
                      hints=["index node features instead: h[src]"])
        x = self._as_node(v, expr.value, ctx)
        return self._apply("gather", {"x": (x, expr.value.span)}, {"index": idx.which}, expr.span, ctx)

    def _arrow(self, expr: ast.Arrow, scope, ctx):
        declared = self.eval_rep(expr.rep, scope)
        if isinstance(expr.value, ast.Call):
            return self._call(expr.value, scope, ctx, out=(declared, expr.rep.span, expr.rep))
        v = self._as_node(self.eval_value(expr.value, scope, ctx), expr.value, ctx)
        self._check_declared(v.type, tensor(declared, None), expr.rep.span, "this value")
        return v


def _text(expr) -> str:
    """Spec text of a simple representation expression, for hints."""
    if isinstance(expr, ast.IrrepsLit):
        return expr.text
    if isinstance(expr, ast.Name):
        return expr.name
    if isinstance(expr, ast.Num):
        return str(expr.value)
    if isinstance(expr, ast.Attr):
        return f"{_text(expr.value)}.{expr.name}"
    if isinstance(expr, ast.BinOp):
        return f"{_text(expr.left)} {expr.op} {_text(expr.right)}"
    return "..."


def _with_ref(attrs: dict, how: str, value) -> dict:
    """Attach a parameter reference for attribute "c" when the constant is a model parameter."""
    if isinstance(value, Static) and value.param is not None:
        attrs["param_refs"] = {"c": (how, value.param, value.power)}
    return attrs
