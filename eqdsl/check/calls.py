"""Calls in a spec: a layer's call bound to its typing rule (arguments by position and keyword, defaults,
`-> R`), the rule applied and its error placed on the argument it names; a block call inlined.

A part of ``Checker`` (``checker.py``), which supplies evaluation (``eval_value``, ``eval_rep``,
``eval_int``, ...), the statements of a block, and ``fail``.
"""
from __future__ import annotations

from ..ir import frame_rules, gaunt_rules, ops, type_rules
from ..ir.activations import PARITY
from ..ir.irreps_rules import shared_path_channels, tp_descriptor
from ..ir.types import tensor
from ..reps.irreps import Irreps
from ..syntax import ast
from . import rotations
from .scope import Failed, Scope, scope_items
from .values import Block, EdgeIndex, Node, Poison

# Ops that make copies of values (frames, orientation grids): what their labels call them.
_COPIES = {"frame": "frame", "orientations": "orientation grid"}
# Ops the checker applies for operators and indexing; a spec cannot call them by name.
INTERNAL_OPS = {"input", "add", "sub", "mul", "div", "neg", "scale", "add_const", "pow", "gather", "conv"}


class CallBinding:
    def _call(self, call: ast.Call, scope, ctx, out):
        target = scope.lookup(call.func)
        if isinstance(target, Block):
            return self._inline(target.decl, call, scope, ctx, out)
        op = self.ops.get(call.func)
        if op is None or call.func in INTERNAL_OPS:
            if call.func == "sh":
                self.fail("E0207", "`sh(L)` names a representation; for the harmonics of a vector use spherical_harmonics(r, lmax = L)",
                          call.span, "a representation, not a value")
            other = ops.OPS.get(call.func)
            if other is not None and call.func not in INTERNAL_OPS:  # a layer of the other family of groups
                self.fail("E0103", f"`{call.func}` is a layer of {ops.FAMILY_GROUPS[other.families[0]]}, not of "
                          f"{self.group.name}", call.func_span, f"not a layer of {self.group.name}",
                          hints=[f"for {self.group.name} use {ops.COUNTERPARTS[call.func]}"] if call.func in ops.COUNTERPARTS else [])
            known = [n for n in self.ops if n not in INTERNAL_OPS] + [n for n, v in scope_items(scope) if isinstance(v, Block)]
            self.fail("E0103", f"unknown layer or function `{call.func}`", call.func_span, "not defined",
                      hints=type_rules.suggest(call.func, known))
        values, attrs = self._bind(op, call, scope, ctx)
        if op.name == "grad" and ctx.ir.node(values["x"][0].id)["op"] != "input":
            self.fail("E0603", "grad differentiates with respect to a model input", values["x"][1], "not an input",
                      hints=["differentiate with respect to the input itself, e.g. -grad(energy, pos)"])
        if out is not None:
            if op.out == "defines":
                attrs["out"] = out[0]
            out_span = out[1]
        else:
            out_span = None
            if op.out == "defines" and op.name not in ("tensor_product", "mlp"):
                self.fail("E0104", f"`{op.name}` needs its output representation: {op.name}(...) -> R", call.span,
                          "output representation missing")
            if op.out == "defines":
                attrs["out"] = None
        if op.name == "mlp":
            attrs["open"] = attrs["out"] is None
        if op.name in _COPIES:  # the label values expressed in these copies carry: what made them, and where
            attrs["label"] = self._copies_label(op.name, call.span, ctx)
        if op.name == "tensor_product":
            self._resolve_open_weights(values, attrs, ctx)
        spans = {name: span for name, (_, span) in values.items()}
        node = self._apply(op.name, values, attrs, call.span, ctx, arg_spans={**spans, **self._attr_spans(op, call), "out": out_span},
                           out_expr=out[2] if out is not None else None)
        if op.name == "orthonormalize" and self.group.rep_family == "irreps" and attrs.get("xs") == 2:
            self._determines_rotation(values, ctx)
        if node.type.is_open:
            ctx.open_mlps[node.id] = call.span
        if out is not None and op.out != "defines":
            self._check_declared(node.type, tensor(out[0], None), out[1], f"the result of {op.name}")
        return node

    def _determines_rotation(self, values, ctx) -> None:
        """orthonormalize(a, b) with a and b constant multiples of one vector can never give a rotation."""
        common = rotations.always_parallel(ctx.ir, values["xs.0"][0].id, values["xs.1"][0].id)
        if common is not None:
            d = ctx.ir.node(common)
            where = f"`{d['name']}`" if d["name"] else f"the value at line {d['span'].line}" if d["span"] else "one value"
            self.fail("E0801", "these two vectors are parallel whatever the input", values["xs.1"][1],
                      "a constant multiple of the first", notes=[f"both are linear maps of one vector copy in {where}"],
                      hints=["build the second vector from other features, e.g. a different tensor-product path or "
                             "another sum over nodes"])

    def _copies_label(self, op: str, span, ctx) -> str:
        """"frame made at FILE:LINE:COL" (or "orientation grid ...") of the call, numbered when a repeat or block
        makes it again."""
        label = frame_rules.label(_COPIES[op], f"{span.file}:{span.line}:{span.column}")
        taken = {d["attrs"].get("label") for _, d in ctx.ir.graph.nodes(data=True) if d.get("op") in _COPIES}
        k = 1
        while (label if k == 1 else f"{label} ({k})") in taken:
            k += 1
        return label if k == 1 else f"{label} ({k})"

    def _attr_spans(self, op, call: ast.Call) -> dict:
        spans = {kw.name: kw.value.span for kw in call.kwargs}
        positional = [p for p in op.params if not p.keyword_only]
        for p, arg in zip(positional, call.args):
            spans.setdefault(p.name, arg.span)
        return spans

    def _resolve_open_weights(self, values, attrs, ctx):
        """An MLP with an open size feeding `weights =` takes the tensor product's weight count."""
        w = values.get("weights")
        a, b = values.get("a"), values.get("b")
        if w is None or not w[0].type.is_open or a is None or b is None:
            return
        if a[0].type.kind != "tensor" or b[0].type.kind != "tensor" or a[0].type.rep is None or b[0].type.rep is None:
            return
        if attrs.get("mode") == "gaunt":
            numel = gaunt_rules.weight_numel(self.group, a[0].type.rep, b[0].type.rep, attrs)
            if numel is None:
                return  # reported by the tensor product's own rule
        else:
            try:
                d = tp_descriptor(self.group, a[0].type.rep, b[0].type.rep, attrs)
                numel = (shared_path_channels(a[0].type.rep, b[0].type.rep, d.irreps_out, attrs["mode"])
                         if attrs.get("share_paths") else d.weight_numel)
            except type_rules.TypeRuleError:
                return  # reported by the tensor product's own rule
        node = ctx.ir.node(w[0].id)
        node["attrs"]["out"] = Irreps.of([(numel, self.group.trivial)])
        node["attrs"]["open"] = False
        node["type"] = tensor(node["attrs"]["out"], node["type"].placement)
        ctx.open_mlps.pop(w[0].id, None)
        values["weights"] = (Node(w[0].id, node["type"]), w[1])

    def _bind(self, op: type_rules.Op, call: ast.Call, scope, ctx):
        values, attrs = {}, {}
        positional = [p for p in op.params if not p.keyword_only]
        args = list(call.args)
        for p in positional:
            if p.kind in ("values*", "ints*"):
                rest, args = args, []
                if p.kind == "values*":
                    for i, a in enumerate(rest):
                        values[f"{p.name}.{i}"] = (self._as_node(self.eval_value(a, scope, ctx), a, ctx), a.span)
                    attrs[p.name] = len(rest)
                else:
                    attrs[p.name] = tuple(self.eval_int(a, scope) for a in rest)
                    for a, size in zip(rest, attrs[p.name]):
                        if size < 1:
                            self.fail("E0108", "sizes must be positive", a.span, f"`{size}`")
                continue
            if not args:
                break
            self._bind_one(p, args.pop(0), values, attrs, scope, ctx)
        if args:
            self.fail("E0104", f"`{op.name}` takes {len(positional)} positional argument{'s' if len(positional) != 1 else ''}, got {len(call.args)}",
                      args[0].span, "unexpected argument", hints=[_signature(op)])
        seen = set()
        for kw in call.kwargs:
            p = op.param(kw.name)
            if p is None or p.kind in ("values*", "ints*"):
                self.fail("E0104", f"`{op.name}` has no argument `{kw.name}`", kw.name_span, "unknown argument",
                          hints=type_rules.suggest(kw.name, [q.name for q in op.params]) + [_signature(op)])
            if kw.name in seen or kw.name in attrs or kw.name in values:
                self.fail("E0104", f"argument `{kw.name}` given twice", kw.name_span, "repeated")
            seen.add(kw.name)
            self._bind_one(p, kw.value, values, attrs, scope, ctx)
        for p in op.params:
            if p.name in values or p.name in attrs or p.kind in ("values*", "ints*"):
                continue
            if p.default is type_rules.REQUIRED:
                self.fail("E0104", f"`{op.name}` is missing its argument `{p.name}`", call.span, "missing argument",
                          hints=[_signature(op)])
            if p.kind != "value":
                attrs[p.name] = p.default
        return values, attrs

    def _bind_one(self, p: type_rules.Param, expr, values, attrs, scope, ctx):
        if p.kind == "value":
            values[p.name] = (self._as_node(self.eval_value(expr, scope, ctx), expr, ctx), expr.span)
        elif p.kind == "int":
            attrs[p.name] = self.eval_int(expr, scope)
        elif p.kind == "float":
            attrs[p.name] = self.eval_float(expr, scope)
            self._note_param(attrs, p.name, "id", expr, scope)
        elif p.kind == "bool":
            v = self.eval_static(expr, scope, "boolean")
            if not isinstance(v, bool):
                self.fail("E0108", f"`{p.name}` is true or false", expr.span, "not a boolean")
            attrs[p.name] = v
        elif p.kind == "rep":
            attrs[p.name] = self.eval_rep(expr, scope)
        elif p.kind in ("act", "choice"):
            options = tuple(PARITY) if p.kind == "act" else p.choices
            if not isinstance(expr, ast.Name) or expr.name not in options:
                shown = expr.name if isinstance(expr, ast.Name) else "this"
                self.fail("E0108", f"`{shown}` is not a valid `{p.name}`", expr.span, f"choose one of: {', '.join(options)}",
                          hints=type_rules.suggest(shown, options))
            attrs[p.name] = expr.name
        else:
            raise TypeError(p.kind)

    def _apply(self, opname, values, attrs, span, ctx, arg_spans=None, out_expr=None) -> Node:
        op = self.ops[opname]
        ins = {}
        for name, (node, _) in values.items():
            ins[name] = node.type
        if op.param("xs") is not None:  # variadic values arrive as xs.0, xs.1, ...
            ins = {"xs": [ins[f"xs.{i}"] for i in range(attrs["xs"])]}
        try:
            vtype, derived = op.infer(self.group, ins, attrs)
        except type_rules.TypeRuleError as err:
            self._rule_error(err, values, arg_spans, span, out_expr)
        node = ctx.ir.add(opname, vtype, {**attrs, **derived}, span,
                          inputs=[(name, n.id) for name, (n, _) in values.items()], scope=ctx.scope_label)
        if ctx.support is not None:  # a block the values reaching this layer leave always zero
            err = ctx.support.visit(node, opname, {name: n.id for name, (n, _) in values.items()}, {**attrs, **derived})
            if err is not None:
                self._rule_error(err, values, arg_spans, span, out_expr)
        return Node(node, vtype)

    def _rule_error(self, err: type_rules.TypeRuleError, values, arg_spans, span, out_expr):
        """Report a rule's error at the argument it names (or the call)."""
        spans = {name: s for name, (_, s) in values.items()}
        if arg_spans:
            spans.update({k: v for k, v in arg_spans.items() if v is not None})
        where = spans.get(err.where, span)
        if err.where == "out" and out_expr is not None:
            where = self.reps.term_span(self, out_expr, err.message, where)
        self.fail(err.code, err.message, where, err.label, err.notes, err.hints)

    # -- blocks ----------------------------------------------------------------------------------
    def _inline(self, decl: ast.BlockDecl, call: ast.Call, scope, ctx, out):
        if decl.name in ctx.inline_stack:
            chain = " -> ".join(ctx.inline_stack[ctx.inline_stack.index(decl.name):] + [decl.name])
            self.fail("E0105", f"block `{decl.name}` calls itself", call.span, "recursive call",
                      notes=[f"call chain: {chain}"], hints=["blocks are inlined; use `repeat` for a fixed number of layers"])
        names = [p.name for p in decl.params]
        if len(call.args) > len(names):
            self.fail("E0104", f"block `{decl.name}` takes {len(names)} arguments, got {len(call.args)}", call.args[len(names)].span,
                      "unexpected argument", hints=[f"{decl.name}({', '.join(names)})"])
        bound = {}
        for p, a in zip(decl.params, call.args):
            bound[p.name] = (self.eval_value(a, scope, ctx), a)
        for kw in call.kwargs:
            if kw.name not in names:
                self.fail("E0104", f"block `{decl.name}` has no parameter `{kw.name}`", kw.name_span, "unknown argument",
                          hints=type_rules.suggest(kw.name, names))
            if kw.name in bound:
                self.fail("E0104", f"argument `{kw.name}` given twice", kw.name_span, "repeated")
            bound[kw.name] = (self.eval_value(kw.value, scope, ctx), kw.value)
        inner = Scope(parent=self.globals)
        if ctx.has_graph:
            inner.names["src"], inner.names["dst"] = EdgeIndex("src"), EdgeIndex("dst")
        for p in decl.params:
            if p.name not in bound:
                self.fail("E0104", f"block `{decl.name}` is missing its argument `{p.name}`", call.span, "missing argument",
                          hints=[f"{decl.name}({', '.join(names)})"])
            value, arg = bound[p.name]
            if p.type is not None:
                node = self._as_node(value, arg, ctx)
                declared = self._type(p.type, inner, ctx, is_input=False)
                self._check_declared(node.type, declared, arg.span, f"argument `{p.name}`")
            inner.names[p.name] = value
        outer_label = ctx.scope_label
        ctx.scope_label = (outer_label + " > " if outer_label else "") + f"block {decl.name}"
        ctx.inline_stack.append(decl.name)
        try:
            result = self._statements(decl.body, inner, ctx, in_model=False)
        finally:
            ctx.inline_stack.pop()
            ctx.scope_label = outer_label
        if result is None:
            self.fail("E0604", f"block `{decl.name}` does not return a value", decl.name_span, "no `return`",
                      hints=["end the block with `return expression`"])
        if isinstance(result, Poison):
            raise Failed()
        if decl.returns is not None:
            node = self._as_node(result, call, ctx)
            self._check_declared(node.type, tensor(self.eval_rep(decl.returns, self.globals), None), call.span,
                                 f"the result of block `{decl.name}`")
        if out is not None:
            node = self._as_node(result, call, ctx)
            self._check_declared(node.type, tensor(out[0], None), out[1], f"the result of block `{decl.name}`")
        return result



def _signature(op: type_rules.Op) -> str:
    parts = []
    for p in op.params:
        if p.kind == "values*":
            parts.append(f"{p.name}...")
        elif p.kind == "ints*":
            parts.append("sizes...")
        elif p.default is type_rules.REQUIRED:
            parts.append(p.name)
        else:
            parts.append(f"{p.name} = {p.default if not isinstance(p.default, bool) else str(p.default).lower()}")
    tail = " -> R" if op.out == "defines" else ""
    return f"usage: {op.name}({', '.join(parts)}){tail}"
