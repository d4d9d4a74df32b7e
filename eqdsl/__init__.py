"""eqdsl: a compiler for equivariant neural networks."""
from pathlib import Path as _Path

from .version import __version__

# In a source checkout, `grammar/` and `backends/` sit beside this package and are
# installed as `eqdsl.grammar` and `eqdsl.backends`; make them importable the same
# way when the checkout itself is on sys.path (running from the repository root).
_here = _Path(__file__).resolve().parent
if not (_here / "backends").is_dir() and (_here.parent / "pyproject.toml").is_file():
    __path__.append(str(_here.parent))  # type: ignore[name-defined]

from .api import CompiledSpec, compile_file  # noqa: E402
from .diagnostics import CompileError  # noqa: E402

__all__ = ["compile_file", "CompiledSpec", "CompileError", "__version__"]
