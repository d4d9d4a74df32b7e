"""Read a spec and everything it imports, in dependency order, reporting unreadable files and cycles."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..diagnostics import Diagnostic, Span
from ..syntax import ast
from ..syntax.parser import parse


@dataclass
class Program:
    main: str
    specs: list[ast.Spec] = field(default_factory=list)       # imports first, main last
    sources: dict[str, str] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def display_path(path: Path) -> str:
    """Paths relative to the working directory when possible, so messages carry no absolute paths."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def decode(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def load(path: str | Path, text: str | None = None) -> Program:
    path = Path(path)
    prog = Program(display_path(path))
    _load(path, text, prog, stack=[], done=set(), importer=None)
    return prog


def _load(path: Path, text: str | None, prog: Program, stack: list[Path], done: set, importer: Span | None) -> None:
    key = path.resolve()
    name = display_path(path)
    if key in stack:
        chain = " -> ".join(display_path(p) for p in stack[stack.index(key):]) + f" -> {name}"
        prog.diagnostics.append(Diagnostic("E0106", f"import cycle through `{name}`", importer,
                                           "this import closes a cycle", notes=[f"cycle: {chain}"],
                                           hints=["move the shared declarations into a file both can import"]))
        return
    if key in done:
        return
    if text is None:
        try:
            data = path.read_bytes()
        except OSError as err:
            what = "cannot read spec" if importer is None else f"cannot import `{name}`"
            prog.diagnostics.append(Diagnostic("E0107", what, importer, err.strerror or "unreadable",
                                               hints=["import paths are relative to the importing file"]))
            return
        text = decode(data)
        if text is None:
            prog.diagnostics.append(Diagnostic("E0005", f"`{name}` is not a UTF-8 text file", importer or Span(name, 1, 1, 1, 2),
                                               "binary or undecodable content", hints=["a spec is plain text"]))
            return
    prog.sources[name] = text
    spec, diags = parse(text, name)
    if diags:
        prog.diagnostics.extend(diags)
        done.add(key)
        return
    stack.append(key)
    for decl in spec.decls:
        if isinstance(decl, ast.Import):
            _load(path.parent / decl.path, None, prog, stack, done, decl.span)
    stack.pop()
    done.add(key)
    prog.specs.append(spec)
