"""Diagnostics: source spans, error records and their rustc-style rendering.

Every error the compiler reports about a spec is a ``Diagnostic`` with a code
(explained by ``eqc explain CODE``), a span, a one-line message, a label under
the caret, and optional notes and hints.  Passes collect diagnostics instead of
raising, so one run reports every error in a file, sorted by position.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Span:
    """A region of a source file; lines and columns are 1-based, end_column exclusive."""
    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    @staticmethod
    def of_meta(file: str, meta) -> "Span":
        return Span(file, meta.line, meta.column, meta.end_line, meta.end_column)

    @staticmethod
    def of_token(file: str, tok) -> "Span":
        end_line = tok.end_line if tok.end_line is not None else tok.line
        end_col = tok.end_column if tok.end_column is not None else tok.column + max(len(tok), 1)
        return Span(file, tok.line, tok.column, end_line, end_col)

    def to(self, other: "Span") -> "Span":
        """The span from the start of self to the end of other."""
        return Span(self.file, self.line, self.column, other.end_line, other.end_column)


@dataclass
class Diagnostic:
    code: str
    message: str
    span: Span | None
    label: str = ""
    notes: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)
    severity: str = "error"

    def sort_key(self):
        if self.span is None:
            return ("", 0, 0, self.code)
        return (self.span.file, self.span.line, self.span.column, self.code)


class CompileError(Exception):
    """Raised by the API when a spec has errors; carries every diagnostic."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str]):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        self.sources = sources
        super().__init__(render_all(self.diagnostics, sources))


class DiagnosticSink:
    """Collects diagnostics; drops exact repeats (a repeat body reports once, not per iteration)."""

    def __init__(self):
        self.items: list[Diagnostic] = []
        self._seen: set = set()

    def add(self, diag: Diagnostic) -> None:
        key = (diag.code, diag.span, diag.message)
        if key not in self._seen:
            self._seen.add(key)
            self.items.append(diag)

    def error(self, code: str, message: str, span: Span | None, label: str = "", notes=(), hints=()) -> None:
        self.add(Diagnostic(code, message, span, label, list(notes), list(hints)))

    def warning(self, code: str, message: str, span: Span | None, label: str = "", notes=(), hints=()) -> None:
        self.add(Diagnostic(code, message, span, label, list(notes), list(hints), severity="warning"))

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.items, key=Diagnostic.sort_key)


def _display(line: str) -> str:
    return line.expandtabs(4).rstrip("\r\n")


def render(diag: Diagnostic, sources: dict[str, str]) -> str:
    out = [f"{diag.severity}[{diag.code}]: {diag.message}"]
    span = diag.span
    text = sources.get(span.file) if span else None
    if span is not None:
        out.append(f"  --> {span}")
    if span is not None and text is not None:
        lines = text.split("\n")
        if 1 <= span.line <= len(lines):
            raw = lines[span.line - 1]
            src = _display(raw)
            # columns count characters of the raw line; map through tab expansion
            start = len(raw[: span.column - 1].expandtabs(4))
            if span.end_line == span.line:
                end = len(raw[: max(span.end_column - 1, span.column)].expandtabs(4))
            else:
                end = len(src)
            width = max(end - start, 1)
            gutter = " " * len(str(span.line))
            out.append(f"{gutter} |")
            out.append(f"{span.line} | {src}")
            label = f" {diag.label}" if diag.label else ""
            out.append(f"{gutter} | {' ' * start}{'^' * width}{label}")
    pad = " " * (len(str(span.line)) if span is not None and text is not None else 1)
    for note in diag.notes:
        out.append(f"{pad} = note: {note}")
    for hint in diag.hints:
        out.append(f"{pad} = hint: {hint}")
    return "\n".join(out)


def render_all(diags: list[Diagnostic], sources: dict[str, str]) -> str:
    body = "\n\n".join(render(d, sources) for d in diags)
    n = sum(1 for d in diags if d.severity == "error")
    w = len(diags) - n
    tail = f"\n\n{n} error{'s' if n != 1 else ''} found" if n else (f"\n\n{w} warning{'s' if w != 1 else ''}" if w else "")
    return body + tail
