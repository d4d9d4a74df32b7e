"""The front-end pipeline as straight-line code: load, parse, check, then the IR passes (verified between them)."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

from .check.checker import Checker
from .check.loader import display_path, load
from .diagnostics import CompileError, Diagnostic, DiagnosticSink, Span
from .ir.graph import ModelIR
from .ir.passes import PASSES, run_passes
from .ir.verify import verify


@dataclass
class FrontEndResult:
    main: str
    models: list[ModelIR] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def raise_for_errors(self) -> None:
        if not self.ok:
            raise CompileError(self.diagnostics, self.sources)


def check_file(path: str | Path, text: str | None = None, overrides: dict | None = None,
               verify_ir: bool | None = None, passes: bool = True, fuse: bool = True) -> FrontEndResult:
    """Parse and type-check a spec (and its imports); returns models in the IR, after the passes of
    eqdsl.ir.passes (none with `passes=False`; `fuse=False` leaves message passing unfused), and all
    diagnostics."""
    try:
        return _check(path, text, overrides, verify_ir, passes, fuse)
    except RecursionError:
        # deeply nested expressions exhaust the recursive tree walkers; report instead of crashing
        name = display_path(Path(path))
        diag = Diagnostic("E0001", "expressions are nested too deeply", Span(name, 1, 1, 1, 2),
                          "the compiler's nesting limit was reached", hints=["split the expression into named steps"])
        return FrontEndResult(name, sources={}, diagnostics=[diag])


def _check(path, text, overrides, verify_ir, passes, fuse) -> FrontEndResult:
    program = load(path, text)
    result = FrontEndResult(program.main, sources=program.sources)
    sink = DiagnosticSink()
    for d in program.diagnostics:
        sink.add(d)
    if not sink.has_errors:
        checker = Checker(sink, overrides)
        result.models = checker.check_program(program.specs, program.main)
        for name in checker.overrides:
            sink.error("E0101", f"`-D {name}=...` names no constant or model parameter", None,
                       hints=["override a `const` or a model parameter by its name"])
    result.diagnostics = sink.sorted()
    if verify_ir is None:
        verify_ir = os.environ.get("EQDSL_VERIFY", "") not in ("", "0")
    if result.ok:
        result.models = [run_passes(m, PASSES if passes else (), fuse=fuse,
                                    verify=functools.partial(verify, memo={}) if verify_ir else None)
                         for m in result.models]
    return result
