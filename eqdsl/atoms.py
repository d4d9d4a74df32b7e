"""Atomic structures (ase.Atoms) as inputs of compiled potentials, and energy, forces and stress from them.

    from eqdsl.atoms import atoms_to_inputs, energy_forces_stress
    inputs = atoms_to_inputs(model, [atoms_a, atoms_b], species=["H", "C", "N", "O"], cutoff=5.0)
    out = energy_forces_stress(model, inputs)       # energy [G], forces [N, 3], stress [G, 3, 3]

A potential is a compiled model with positions (@node), a one-hot species input (@node, one column
per element of `species`), a graph (the edges) and, for periodic systems, one 1x1o @edge input: the
shift that puts each edge's dst atom at its periodic image, ``r = pos[dst] - pos[src] + shift`` with
``shift = S @ cell`` (S the integer image offsets).  Neighbour lists come from vesin: periodic cells,
cells smaller than the cutoff (many images of one neighbour, each its own edge) and mixed
periodicity (slabs) alike, all pairs within the cutoff in both directions.

Stress is the derivative of the energy with respect to a strain eps applied to the positions and
the cell together (pos -> pos (1 + eps), shift -> shift (1 + eps)), divided by the volume: ASE's
convention (positive under tension), in energy per volume of the model's units.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from .extras import missing_package

# closer than this (in length units) two atoms are taken to be on top of each other: no potential is defined there
OVERLAP = 1e-4


@dataclass
class AtomsInputs:
    """What atoms_to_inputs made: the model's keyword arguments, and what stress needs besides."""
    kwargs: dict                       # the model's inputs by name, batch and num_graphs included
    positions: str                     # the name of the positions input
    shift: Optional[str]               # the name of the edge-shift input (None for a model without one)
    edge_graph: torch.Tensor           # [E] the structure each edge belongs to
    volumes: torch.Tensor              # [G] cell volumes (NaN where a structure is not periodic in 3 directions)
    num_atoms: list                    # [G] atoms per structure
    cells: Optional[torch.Tensor] = None  # [G, 3, 3] the structures' cells (rows: cell vectors; zeros without one)


def potential_inputs(model) -> dict:
    """The roles of a potential's inputs: {'positions', 'species', 'edges', 'shift'} -> input name.

    Read from the class's INPUT_LAYOUT; anything else among the inputs is an error that says what a
    potential takes."""
    layout = getattr(model, "INPUT_LAYOUT", None)
    if layout is None:
        raise TypeError(f"{type(model).__name__} is not a module compiled by eqdsl (it has no INPUT_LAYOUT)")
    roles, other = {}, []
    for name, kind, placement, width, rep, where in layout:
        role = {"point": "positions", "graph": "edges"}.get(kind)
        if role is None and placement == "node":
            role = "species"
        elif role is None and placement == "edge" and rep == "1x1o":
            role = "shift"
        if role is None or role in roles:
            other.append(f"{name} ({rep} @{placement}, {where})")
            continue
        roles[role] = name
    missing = [r for r in ("positions", "species", "edges") if r not in roles]
    if "energy" not in [row[0] for row in getattr(model, "OUTPUTS", ())]:
        missing.append("an output named energy")
    if missing or other:
        raise TypeError(f"{type(model).__name__} is not a potential: it needs positions @node, one species input "
                        f"@node, a graph, optionally a 1x1o @edge shift, and gives an energy"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; cannot feed {', '.join(other)}" if other else ""))
    return roles


def species_columns(symbols: Sequence[str], species: Sequence[str]) -> np.ndarray:
    """The column of each atom's element in `species`; an element not in it is a ValueError naming it."""
    column = {s: i for i, s in enumerate(species)}
    unknown = sorted({s for s in symbols if s not in column})
    if unknown:
        raise ValueError(f"element{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} not in the model's species "
                         f"{list(species)}: a model only knows the elements it was trained on")
    return np.array([column[s] for s in symbols], dtype=np.int64)


def neighbour_list(atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """(edges [2, E] as (src, dst), shifts [E, 3] in length units) of every pair closer than `cutoff`.

    Periodic directions are ``atoms.pbc``; shifts are ``S @ cell`` so that ``pos[dst] - pos[src] + shift``
    is the vector from src to the image of dst."""
    try:
        import vesin
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(missing_package("vesin", "eqdsl.atoms (neighbour lists)")) from e
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell.array, dtype=np.float64)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if not np.isfinite(positions).all():
        raise ValueError("the positions contain NaN or infinite values")
    if pbc.any():
        periodic_vectors = cell[pbc]
        rank = np.linalg.matrix_rank(periodic_vectors, tol=1e-9 * max(1.0, float(np.abs(cell).max())))
        if rank < len(periodic_vectors):
            raise ValueError(f"the cell's periodic vectors {periodic_vectors.tolist()} are linearly dependent (zero "
                             f"volume or area); set the cell, or pbc=False for a molecule")
    i, j, shifts, d = vesin.NeighborList(cutoff=float(cutoff), full_list=True).compute(
        positions, cell, pbc, quantities="ijSd")
    close = np.flatnonzero(d < OVERLAP)
    if len(close):
        a, b = int(i[close[0]]), int(j[close[0]])
        raise ValueError(f"atoms {a} and {b} overlap (distance {d[close[0]]:.2e}, below {OVERLAP}); "
                         f"no potential is defined for atoms on top of each other")
    edges = np.stack([i, j]).astype(np.int64)
    return edges, shifts.astype(np.float64) @ cell


def atoms_to_inputs(model, structures, species: Sequence[str], cutoff: float,
                    dtype: Optional[torch.dtype] = None, device=None) -> AtomsInputs:
    """The inputs of a potential for one ase.Atoms or a list of them (a batch of graphs).

    dtype and device default to the model's.  A structure of several atoms with no pair within the
    cutoff is an error (it is almost always a unit mistake: positions in Angstrom, the cutoff too)."""
    from .backends.reference.inputs import module_dtype_and_device

    roles = potential_inputs(model)
    # a compiled module's own dtype and device; an exported potential names its dtype (it runs on the CPU)
    model_dtype, model_device = (module_dtype_and_device(model) if isinstance(model, torch.nn.Module)
                                 else (model.dtype, torch.device("cpu")))
    dtype = dtype or model_dtype or torch.get_default_dtype()
    device = device or model_device or "cpu"
    structures = [structures] if not isinstance(structures, (list, tuple)) else list(structures)
    if not structures:
        raise ValueError("no structures given")
    width = next(row[3] for row in model.INPUT_LAYOUT if row[0] == roles["species"])
    if len(species) != width:
        raise ValueError(f"species lists {len(species)} elements but the model's {roles['species']} input has "
                         f"{width} columns: one per element, in the order the model was trained with")
    parts = {"species": [], "pos": [], "edges": [], "shift": [], "batch": [], "edge_graph": []}
    volumes, offset = [], 0
    for g, atoms in enumerate(structures):
        n = len(atoms)
        if n == 0:
            raise ValueError(f"structure {g} has no atoms")
        edges, shifts = neighbour_list(atoms, cutoff)
        if n > 1 and edges.shape[1] == 0:
            raise ValueError(f"structure {g} ({atoms.get_chemical_formula()}): no pair of atoms is within the cutoff "
                             f"{cutoff}; check the units (positions and cutoff in the same length unit)")
        if getattr(type(model), "FRAME_AVERAGED", False) and np.asarray(atoms.pbc).any():
            raise ValueError(f"structure {g} is periodic but {type(model).__name__} averages over frames of its "
                             "positions (frame(pos)), which wrapping an atom into the cell would change: use it on "
                             "molecules (pbc=False)")
        if roles.get("shift") is None and len(shifts) and np.abs(shifts).max() > 0:
            raise ValueError(f"structure {g} is periodic but {type(model).__name__} has no 1x1o @edge shift input: "
                             f"it can only see molecules (pbc=False)")
        parts["species"].append(species_columns(atoms.get_chemical_symbols(), species))
        parts["pos"].append(np.asarray(atoms.positions, dtype=np.float64))
        parts["edges"].append(edges + offset)
        parts["shift"].append(shifts)
        parts["batch"].append(np.full(n, g, dtype=np.int64))
        parts["edge_graph"].append(np.full(edges.shape[1], g, dtype=np.int64))
        volumes.append(abs(float(np.linalg.det(atoms.cell.array))) if all(atoms.pbc) else float("nan"))
        offset += n
    columns = np.concatenate(parts["species"])
    onehot = np.zeros((len(columns), width))
    onehot[np.arange(len(columns)), columns] = 1.0
    as_float = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    kwargs = {roles["species"]: as_float(onehot),
              roles["positions"]: as_float(np.concatenate(parts["pos"])),
              roles["edges"]: torch.as_tensor(np.concatenate(parts["edges"], axis=1), device=device),
              "batch": torch.as_tensor(np.concatenate(parts["batch"]), device=device),
              "num_graphs": len(structures)}
    if roles.get("shift") is not None:
        kwargs[roles["shift"]] = as_float(np.concatenate(parts["shift"]).reshape(-1, 3))
    cells = np.stack([np.asarray(a.cell.array, dtype=np.float64) for a in structures])
    return AtomsInputs(kwargs, roles["positions"], roles.get("shift"),
                       torch.as_tensor(np.concatenate(parts["edge_graph"]), device=device),
                       torch.as_tensor(volumes, dtype=dtype, device=device), [len(a) for a in structures],
                       as_float(cells))


def strained(pos: torch.Tensor, shift: Optional[torch.Tensor], strain: torch.Tensor, batch: torch.Tensor,
             edge_graph: torch.Tensor) -> tuple:
    """pos (1 + eps) and shift (1 + eps), with each structure's strain eps [G, 3, 3]: d energy / d eps at
    eps = 0 is the virial."""
    pos = pos + torch.einsum("ni,nij->nj", pos, strain[batch])
    if shift is not None:
        shift = shift + torch.einsum("ei,eij->ej", shift, strain[edge_graph])
    return pos, shift


def symmetric(virial: torch.Tensor) -> torch.Tensor:
    return 0.5 * (virial + virial.transpose(1, 2))


@contextmanager
def without_gradient_outputs(model):
    """The model's forward() leaves out the outputs it computes from grad(...) (its forces): for callers
    that differentiate the energy themselves, so that no backward pass runs twice."""
    if not getattr(model, "GRADIENT_OUTPUTS", ()):
        yield model
        return
    before = model.gradient_outputs
    model.gradient_outputs = False
    try:
        yield model
    finally:
        model.gradient_outputs = before


def energy_forces_stress(model, inputs: AtomsInputs, stress: bool = True, training: bool = False) -> dict:
    """{'energy': [G], 'forces': [N, 3], 'stress': [G, 3, 3] (with `stress`)} of a potential.

    The strain eps [G, 3, 3] (zero) enters as pos (1 + eps) and shift (1 + eps) per structure; the stress
    is dE/deps / volume, symmetrised.  With `training` the results keep their graph (to train on them).

    A potential that takes its own derivatives (an exported one: eqdsl.export.ExportedPotential) answers
    through its own ``energy_forces_stress(inputs, stress)``."""
    own = getattr(model, "energy_forces_stress", None)
    if own is not None and not isinstance(model, torch.nn.Module):
        if training:
            raise ValueError(f"{type(model).__name__} is a deployment artifact: it cannot be trained")
        return own(inputs, stress=stress)
    kwargs = dict(inputs.kwargs)
    pos = kwargs[inputs.positions].detach().requires_grad_(True)
    num_graphs = kwargs["num_graphs"]
    if stress:
        if inputs.shift is None:
            raise ValueError(f"{type(model).__name__} has no shift input: stress needs a periodic potential")
        if torch.isnan(inputs.volumes).any():
            raise ValueError("stress needs cells periodic in all three directions (a volume); got a structure "
                             "with pbc not all True")
        eps = torch.zeros(num_graphs, 3, 3, dtype=pos.dtype, device=pos.device, requires_grad=True)
        kwargs[inputs.positions], kwargs[inputs.shift] = strained(pos, kwargs[inputs.shift], eps, kwargs["batch"],
                                                                  inputs.edge_graph)
    else:
        kwargs[inputs.positions] = pos
    with torch.enable_grad(), without_gradient_outputs(model):
        out = model(**kwargs)
        energy = out["energy"].reshape(num_graphs)
        wrt = [pos, eps] if stress else [pos]
        grads = torch.autograd.grad(energy.sum(), wrt, create_graph=training)
    result = {"energy": energy, "forces": -grads[0]}
    if stress:
        virial = grads[1]
        result["stress"] = symmetric(virial) / inputs.volumes[:, None, None]
    if not training:
        result = {k: v.detach() for k, v in result.items()}
    return result
