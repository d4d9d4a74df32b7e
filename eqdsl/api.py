"""Python API: compile a spec and load its generated module without writing a file."""
from __future__ import annotations

import types
import warnings
from dataclasses import dataclass
from pathlib import Path

from .codegen import generate_source
from .compiler import FrontEndResult, check_file
from .diagnostics import render


class EqdslWarning(UserWarning):
    """A spec that compiles but probably not into what its author meant (codes W...; eqc explain W0801)."""


@dataclass
class CompiledSpec:
    front_end: FrontEndResult
    source: str

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.front_end.models]

    def load(self) -> types.ModuleType:
        """Execute the generated source as a fresh module and return it."""
        module = types.ModuleType(f"eqdsl_generated_{'_'.join(self.model_names)}")
        exec(compile(self.source, f"<eqdsl:{self.front_end.main}>", "exec"), module.__dict__)
        return module

    def model_class(self, name: str | None = None):
        module = self.load()
        if name is None:
            if len(self.model_names) != 1:
                raise ValueError(f"the spec has several models ({', '.join(self.model_names)}): pass name=")
            name = self.model_names[0]
        if name not in self.model_names:
            raise ValueError(f"no model `{name}` in the spec (models: {', '.join(self.model_names)})")
        return getattr(module, name)


def compile_file(path: str | Path, text: str | None = None, **overrides) -> CompiledSpec:
    """Type-check and lower a spec; raises eqdsl.CompileError (with every diagnostic) if it is invalid, and
    issues an ``EqdslWarning`` (Python's warnings) per warning of a valid one.

    Keyword arguments override consts and model parameters, like `eqc compile -D name=value`.
    """
    result = check_file(path, text=text, overrides=overrides)
    result.raise_for_errors()
    for diag in result.diagnostics:
        warnings.warn(render(diag, result.sources), EqdslWarning, stacklevel=2)
    return CompiledSpec(result, generate_source(result))


def load_source(source: str) -> dict:
    namespace: dict = {"__name__": "eqdsl_generated"}
    exec(compile(source, "<eqdsl generated>", "exec"), namespace)
    return namespace
