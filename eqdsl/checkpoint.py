"""Checkpoints of compiled models: the weights together with what they belong to.

    from eqdsl import checkpoint
    checkpoint.save(model, "potential.pt")
    model = checkpoint.load("potential.pt", spec="specs/nequip.eq")     # compiles the spec as saved
    model = checkpoint.load("potential.pt", model_class=NequIP)         # or into a class you compiled

The file (``torch.save`` of plain data, read back with ``weights_only=True``) records the model's
name, its spec's path and sha256 (of the spec and its imports), the compile-time parameters, the
float constructor parameters (cutoff, ...), the dtype and the state dict.  Loading into a module
compiled from another spec, another model or other compile-time parameters is a CheckpointMismatch
naming both sides, never a silently different model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

FORMAT = "eqdsl-checkpoint"
VERSION = 1


class CheckpointMismatch(ValueError):
    """A checkpoint loaded into a model it was not saved from."""


def save(model: torch.nn.Module, path, **extra) -> None:
    """Write `model`'s weights and identity to `path`; `extra` (plain data: numbers, strings, lists,
    dicts, tensors) is stored beside them, e.g. species=["Cu", "Ni"]."""
    cls = type(model)
    if not hasattr(cls, "SPEC_SHA256"):
        raise TypeError(f"{cls.__name__} is not a module compiled by eqdsl (it has no SPEC_SHA256)")
    floats = next((t.dtype for t in model.state_dict().values() if t.is_floating_point()), torch.float32)
    torch.save({"format": FORMAT, "version": VERSION, "model": cls.__name__, "spec": cls.SPEC,
                "spec_sha256": cls.SPEC_SHA256, "compile_time_parameters": dict(cls.COMPILE_TIME_PARAMETERS),
                "float_parameters": {p: getattr(model, f"param_{p}") for p in cls.FLOAT_PARAMETERS},
                "dtype": str(floats).removeprefix("torch."), "state_dict": model.state_dict(), "extra": extra},
               path)


def read(path) -> dict:
    """The checkpoint's contents, checked to be one."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # a file torch cannot read, or one holding more than plain data
        raise ValueError(f"{path}: not an eqdsl checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not an eqdsl checkpoint (save one with eqdsl.checkpoint.save)")
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: checkpoint format version {data.get('version')}, this eqdsl reads {VERSION}")
    return data


def _describe(model: str, spec: str, digest: str, params: dict) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"{model} of {spec} (sha256 {digest[:12]}" + (f", {shown})" if shown else ")")


def check_matches(data: dict, model_class, path) -> None:
    """CheckpointMismatch unless `model_class` is the model the checkpoint was saved from."""
    ours = (model_class.__name__, model_class.SPEC_SHA256, dict(model_class.COMPILE_TIME_PARAMETERS))
    theirs = (data["model"], data["spec_sha256"], data["compile_time_parameters"])
    if ours != theirs:
        differs = [what for what, a, b in zip(("model", "spec", "compile-time parameters"), ours, theirs) if a != b]
        raise CheckpointMismatch(
            f"{path} was saved from {_describe(data['model'], data['spec'], data['spec_sha256'], theirs[2])} "
            f"but is loaded into {_describe(ours[0], model_class.SPEC, ours[1], ours[2])}: they differ in the "
            f"{', '.join(differs)}; compile the spec the checkpoint was saved from"
            + (f" with {', '.join(f'-D {k}={v}' for k, v in sorted(theirs[2].items()))}" if theirs[2] else ""))


def load(path, *, spec=None, model_class=None, model_name: Optional[str] = None, dtype: Optional[torch.dtype] = None,
         device="cpu", **constructor) -> torch.nn.Module:
    """A model with the checkpoint's weights, built from `model_class` or by compiling `spec` with the
    compile-time parameters it was saved with; float parameters as saved unless `constructor` overrides
    them; the dtype as saved unless `dtype` is given."""
    if (spec is None) == (model_class is None):
        raise TypeError("pass exactly one of spec= (a path to the .eq file) and model_class=")
    data = read(path)
    if model_class is None:
        from .api import compile_file

        compiled = compile_file(Path(spec), **data["compile_time_parameters"])
        name = model_name or data["model"]
        if name not in compiled.model_names:
            raise CheckpointMismatch(
                f"{path} was saved from {_describe(data['model'], data['spec'], data['spec_sha256'], data['compile_time_parameters'])}"
                f" but {spec} has no model {name} (models: {', '.join(compiled.model_names)}); load it with the spec "
                "it was saved from")
        model_class = compiled.model_class(name)
    check_matches(data, model_class, path)
    model = model_class(**{**data["float_parameters"], **constructor})
    model = model.to(device=device, dtype=dtype or getattr(torch, data["dtype"]))
    model.load_state_dict(data["state_dict"])
    return model
