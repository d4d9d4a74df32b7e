"""Compiled potentials as deployment artifacts: TorchScript, torch.export and AOTInductor packages.

    from eqdsl.export import export_potential, load_exported
    export_potential(model, "nequip.pt2", format="export")        # or "torchscript", "aoti"
    potential = load_exported("nequip.pt2")
    out = potential(species, pos, edges, shift, batch, cell)      # energy, forces, virial, stress

An artifact is one function of the model's inputs, the structure of each atom and the cells,

    (species [N, S], pos [N, 3], edges [2, E], shift [E, 3], batch [N], cell [G, 3, 3])
        -> (energy [G], forces [N, 3], virial [G, 3, 3])

(no `shift` for a potential without that input).  forces = -dE/dpos; virial = dE/d(strain), symmetrised,
for the strain ``eqdsl.atoms`` applies (pos -> pos (1 + eps), shift -> shift (1 + eps)), so that
stress = virial / |det cell| as ``energy_forces_stress`` gives it.  N, E and G are free: one artifact
serves every structure size.  The weights are inside the artifact; its metadata (``eqdsl.json``) names
the spec, its sha256, the input names and the dtype.

How: the energy and both derivatives are traced together into one graph of ATen operations with
symbolic sizes (``make_fx``), so no autograd call is left for the exporters to handle.  torch.export
exports that graph with dynamic N, E, G; AOTInductor compiles the exported program to native code (a C++
compiler is needed); TorchScript scripts it.  Tracing runs on the CPU with the reference backend.

The artifacts do not contain the generated module's input checks (they read values, which a traced
graph cannot branch on): ``load_exported`` runs them on the host before each call.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .atoms import potential_inputs, strained, symmetric, without_gradient_outputs
from .backends.reference.inputs import check_inputs, module_dtype_and_device

FORMATS = ("torchscript", "export", "aoti")
METADATA = "eqdsl.json"
# The example the graph is traced with: sizes unlike each other and unlike the fixed sizes (2 for edges,
# 3 for vectors, the species count), so that no size is taken for another while tracing.
_EXAMPLE_ATOMS = (7, 9, 11, 13, 17)
_EXAMPLE_EDGES_PER_ATOM = 5


class ExportError(ValueError):
    """A model that cannot be exported, or an artifact that cannot be read."""


class _EnergyAndDerivatives(torch.nn.Module):
    """The function an artifact holds: energy, forces and virial of a batch of structures."""

    def __init__(self, model: torch.nn.Module, roles: dict):
        super().__init__()
        self.model = model
        self.roles = roles

    def forward(self, species, pos, edges, *rest):
        shift, batch, cell = rest if "shift" in self.roles else (None, *rest)
        num_graphs = cell.shape[0]
        with torch.enable_grad(), without_gradient_outputs(self.model):
            pos = pos.detach().requires_grad_(True)
            strain = torch.zeros_like(cell).requires_grad_(True)
            moved, shift = strained(pos, shift, strain, batch, batch[edges[0]])
            kwargs = {self.roles["species"]: species, self.roles["edges"]: edges, self.roles["positions"]: moved}
            if shift is not None:
                kwargs[self.roles["shift"]] = shift
            energy = self.model(**kwargs, batch=batch, num_graphs=num_graphs)["energy"].reshape(num_graphs)
            minus_forces, virial = torch.autograd.grad(energy.sum(), [pos, strain])
        return energy.detach(), -minus_forces, symmetric(virial)


def _roles(model) -> dict:
    try:
        roles = potential_inputs(model)
    except TypeError as err:
        raise ExportError(str(err)) from None
    if "batch" not in inspect.signature(model.forward).parameters:
        raise ExportError(f"{type(model).__name__}.forward takes no batch: its energy is not pooled per structure")
    return roles


def _example(roles: dict, species_width: int, dtype, generator: torch.Generator):
    sizes = torch.tensor(_EXAMPLE_ATOMS)
    n, g = int(sizes.sum()), len(_EXAMPLE_ATOMS)
    batch = torch.repeat_interleave(torch.arange(g), sizes)
    first = torch.cumsum(sizes, 0) - sizes
    e = n * _EXAMPLE_EDGES_PER_ATOM
    edge_graph = torch.randint(0, g, (e,), generator=generator)
    src = first[edge_graph] + (torch.rand(e, generator=generator) * sizes[edge_graph]).long()
    dst = first[edge_graph] + (torch.rand(e, generator=generator) * sizes[edge_graph]).long()
    species = torch.nn.functional.one_hot(torch.randint(0, species_width, (n,), generator=generator),
                                          species_width).to(dtype)
    pos = torch.rand(n, 3, generator=generator, dtype=dtype) * 8.0
    cell = torch.eye(3, dtype=dtype).expand(g, 3, 3) * 8.0
    args = [species, pos, torch.stack([src, dst])]
    if "shift" in roles:
        args.append(torch.zeros(e, 3, dtype=dtype))
    return tuple(args + [batch, cell.contiguous()])


def _dynamic_shapes(roles: dict):
    from torch.export import Dim
    atoms, edges, graphs = Dim("num_atoms", min=1), Dim("num_edges", min=0), Dim("num_graphs", min=1)
    shapes = [{0: atoms}, {0: atoms}, {1: edges}] + ([{0: edges}] if "shift" in roles else [])
    return tuple(shapes + [{0: atoms}, {0: graphs}])


def trace(model: torch.nn.Module) -> tuple[torch.fx.GraphModule, tuple, dict]:
    """The model's energy, forces and virial as one graph of ATen operations with symbolic sizes, the
    example it was traced with, and the metadata an artifact carries."""
    from torch.fx.experimental.proxy_tensor import make_fx

    roles = _roles(model)
    dtype, device = module_dtype_and_device(model)
    dtype = dtype or torch.get_default_dtype()
    if device is not None and device.type != "cpu":
        raise ExportError(f"export traces on the CPU with the reference backend; the model is on {device}: "
                          "move it with model.cpu() (the artifact's weights are the model's)")
    layout = {row[0]: row for row in model.INPUT_LAYOUT}
    width = layout[roles["species"]][3]
    wrapper = _EnergyAndDerivatives(model, roles)
    example = _example(roles, width, dtype, torch.Generator().manual_seed(0))
    checks_before = model.check_inputs
    model.check_inputs = False  # they read values; load_exported runs them on the host instead
    try:
        # opt_einsum would choose contraction orders by the example's sizes, fixing them
        with torch.backends.opt_einsum.flags(enabled=False):
            graph = make_fx(wrapper, tracing_mode="symbolic", _allow_non_fake_inputs=True)(*example)
    finally:
        model.check_inputs = checks_before
    inputs = [roles["species"], roles["positions"], roles["edges"]] + ([roles["shift"]] if "shift" in roles else []) + ["batch", "cell"]
    meta = {"model": type(model).__name__, "spec": getattr(model, "SPEC", None),
            "spec_sha256": getattr(model, "SPEC_SHA256", None), "dtype": str(dtype).removeprefix("torch."),
            "inputs": inputs, "returns": ["energy", "forces", "virial"], "roles": roles,
            "input_layout": [list(row) for row in model.INPUT_LAYOUT],
            "outputs": [list(row) for row in model.OUTPUTS], "cutoff": getattr(model, "param_cutoff", None)}
    return graph, example, meta


def _scriptable(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """TorchScript calls ATen ops by name and resolves the overload itself (`aten.zeros_like`, not
    `aten.zeros_like.default`); sizes are `aten.size`."""
    for node in graph.graph.nodes:
        if node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload):
            node.target = torch.ops.aten.size if node.target is torch.ops.aten.sym_size.int else node.target.overloadpacket
    graph.recompile()
    return graph


def export_potential(model: torch.nn.Module, path, format: str = "export") -> Path:
    """Write `model` (a compiled potential, its weights as they are) to `path` as a TorchScript file
    (``torchscript``), a torch.export program (``export``) or an AOTInductor package (``aoti``)."""
    if format not in FORMATS:
        raise ExportError(f"format {format!r}: use one of {', '.join(FORMATS)}")
    path = Path(path)
    if format == "aoti" and path.suffix != ".pt2":
        raise ExportError(f"{path}: an AOTInductor package is a .pt2 file")
    graph, example, meta = trace(model)
    meta["format"] = format
    text = json.dumps(meta)
    if format == "torchscript":
        scripted = torch.jit.script(_scriptable(graph))
        torch.jit.save(scripted, str(path), _extra_files={METADATA: text})
        return path
    program = torch.export.export(graph, example, dynamic_shapes=_dynamic_shapes(meta["roles"]), strict=False)
    if format == "export":
        torch.export.save(program, path, extra_files={METADATA: text})
        return path
    # cpp.simdlen = 1: scalar C++ loops.  torch 2.13's vectorised CPU code for these graphs (a channelwise
    # product with l > 0 inputs feeding one with scalar outputs, as NequIP's last layer; a fully connected
    # product of scalars) writes out of bounds when the row counts are symbolic: the package corrupts the
    # heap when it runs (tests/e2e/test_export.py), while the same graph eager, exported or compiled without
    # vectorisation gives the eager numbers
    torch._inductor.aoti_compile_and_package(program, package_path=str(path),
                                             inductor_configs={"aot_inductor.metadata": {METADATA: text},
                                                               "cpp.simdlen": 1})
    return path


@dataclass
class ExportedPotential:
    """An artifact read back: call it like the model, with the cells."""
    function: object
    metadata: dict
    path: Path

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.metadata["dtype"])

    # what eqdsl.atoms and eqdsl.ase.Calculator read of a potential, as a compiled module has them
    @property
    def INPUT_LAYOUT(self) -> tuple:
        return tuple(tuple(row) for row in self.metadata["input_layout"])

    @property
    def OUTPUTS(self) -> tuple:
        return tuple(tuple(row) for row in self.metadata["outputs"])

    @property
    def param_cutoff(self):
        return self.metadata.get("cutoff")

    def energy_forces_stress(self, inputs, stress: bool = True) -> dict:
        """Energy [G], forces [N, 3] and (with `stress`) stress [G, 3, 3] of eqdsl.atoms inputs, with the
        same conditions as eqdsl.atoms.energy_forces_stress (stress needs 3-periodic cells)."""
        if stress and torch.isnan(inputs.volumes).any():
            raise ValueError("stress needs cells periodic in all three directions (a volume); got a structure "
                             "with pbc not all True")
        kw, roles = inputs.kwargs, self.metadata["roles"]
        out = self(kw[roles["species"]], kw[roles["positions"]], kw[roles["edges"]],
                   kw.get(roles.get("shift")) if "shift" in roles else None, kw["batch"], inputs.cells)
        result = {"energy": out["energy"], "forces": out["forces"]}
        if stress:
            result["stress"] = out["virial"] / inputs.volumes[:, None, None]
        return result

    def __call__(self, species, pos, edges, shift=None, batch=None, cell=None) -> dict:
        """{'energy': [G], 'forces': [N, 3], 'virial': [G, 3, 3], and 'stress' [G, 3, 3] where every
        cell has a volume}; the inputs checked on the host first."""
        roles = self.metadata["roles"]
        if cell is None or batch is None:
            raise ValueError("pass batch ([num_atoms] structure index) and cell ([num_graphs, 3, 3]; zeros for "
                             "molecules): an exported potential needs both")
        values = {roles["species"]: species, roles["positions"]: pos, roles["edges"]: edges}
        if "shift" in roles:
            if shift is None:
                raise ValueError(f"this potential takes the edge shifts `{roles['shift']}` (zeros for molecules)")
            values[roles["shift"]] = shift
        elif shift is not None:
            raise ValueError("this potential has no shift input: it is not periodic")
        if not isinstance(cell, torch.Tensor) or cell.dim() != 3 or cell.shape[1:] != (3, 3):
            raise ValueError(f"cell: expected [num_graphs, 3, 3], got {getattr(cell, 'shape', type(cell).__name__)}")
        layout = tuple(tuple(row) for row in self.metadata["input_layout"])
        check_inputs(layout, values, batch=batch, num_graphs=cell.shape[0])
        for name, x in [*values.items(), ("cell", cell)]:
            if x.is_floating_point() and x.dtype != self.dtype:
                raise TypeError(f"{name}: this artifact was exported in {self.dtype}, got {x.dtype}")
        args = [species, pos, edges] + ([shift] if "shift" in roles else []) + [batch, cell]
        energy, forces, virial = self.function(*args)
        out = {"energy": energy.detach(), "forces": forces.detach(), "virial": virial.detach()}
        volume = torch.linalg.det(cell).abs()
        if bool((volume > 0).all()):
            out["stress"] = out["virial"] / volume[:, None, None]
        return out


def _read(path) -> tuple[dict, object]:
    """The artifact's metadata, and the AOTInductor runner where reading it took loading the package
    (None for the formats that keep it as a file of their archive)."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    import zipfile
    if not zipfile.is_zipfile(path):
        raise ExportError(f"{path}: not a potential exported by eqdsl (not an archive)")
    with zipfile.ZipFile(path) as z:  # TorchScript and torch.export keep it as an extra file
        for name in z.namelist():
            if name.endswith(f"extra/{METADATA}"):
                return json.loads(z.read(name)), None
    try:  # AOTInductor keeps it in the compiled model
        runner = torch._inductor.aoti_load_package(str(path))
        return json.loads(runner.get_metadata()[METADATA]), runner
    except Exception:  # noqa: BLE001 - anything else is not an artifact of ours
        raise ExportError(f"{path}: not a potential exported by eqdsl (no {METADATA} in it)") from None


def read_metadata(path) -> dict:
    """The metadata of an artifact written by export_potential, whatever its format."""
    return _read(path)[0]


def load_exported(path, metadata: Optional[dict] = None) -> ExportedPotential:
    """Read an artifact written by export_potential (any format) in this process."""
    path = Path(path)
    meta, runner = (metadata, None) if metadata is not None else _read(path)
    fmt = meta.get("format")
    if fmt == "torchscript":
        function = torch.jit.load(str(path))
    elif fmt == "export":
        function = torch.export.load(path).module()
    elif fmt == "aoti":
        function = runner if runner is not None else torch._inductor.aoti_load_package(str(path))
    else:
        raise ExportError(f"{path}: unknown format {fmt!r} in its metadata")
    return ExportedPotential(function, meta, path)
