#!/usr/bin/env python
"""Train the NequIP spec (specs/nequip.eq) as an interatomic potential for copper clusters.

The model is compiled from the spec through eqdsl's Python API; the data are made
on the spot with ASE's EMT calculator (no downloads):

    python examples/train_emt.py                  # defaults: a few minutes on 2 CPU cores
    python examples/train_emt.py --quick          # seconds: a smoke test
    torchrun --nproc_per_node 2 examples/train_emt.py  # data-parallel, one process per core
    python examples/train_emt.py --device cuda    # on a GPU: the Triton kernels (--backend to choose)

Pipeline:
  1. compile specs/nequip.eq (``--layers``) to an nn.Module class;
  2. cut compact, non-periodic chunks out of a fcc block (the spec has no periodic
     cell shifts), strain and rattle them (seeded), label them with EMT energies and
     forces, and build radius graphs at the cutoff (both directions, no self loops);
  3. split train / validation / test, fit per-species reference energies on the
     training set and scale by the RMS training force, set avg_neighbors from the
     training graphs;
  4. train with Adam on a weighted per-atom-energy + force loss, several structures
     merged into one graph batch per step, keeping the weights that do best on the
     validation set, and report energy and force MAE on the test set next to trivial
     baselines (per-species mean energy, zero forces).

Under torchrun (or any launcher that sets RANK / WORLD_SIZE / MASTER_ADDR) it runs
data-parallel: every rank builds the same data (seeded), takes its own share of each
step's batches, gradients are averaged by DistributedDataParallel, and evaluation
metrics are all-reduced; only rank 0 prints.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

import eqdsl  # noqa: E402

SPEC = ROOT / "specs" / "nequip.eq"


# ----------------------------------------------------------------------------- options

def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("model")
    g.add_argument("--spec", default=str(SPEC), help="the .eq spec to compile")
    g.add_argument("--layers", type=int, default=2, help="interaction layers (compile-time `layers` of the spec)")
    g.add_argument("--cutoff", type=float, default=4.0,
                   help="radius-graph and model cutoff in Angstrom (4.0 reaches the first two fcc shells)")
    g = p.add_argument_group("data")
    g.add_argument("--structures", type=int, default=200, help="number of EMT-labelled clusters in all")
    g.add_argument("--min-atoms", type=int, default=13)
    g.add_argument("--max-atoms", type=int, default=40)
    g.add_argument("--elements", default="Cu",
                   help="comma-separated EMT elements (Al, Cu, Ag, Au, Ni, Pd, Pt), one species channel each; "
                        "with several, every atom draws its element at random (a random alloy)")
    g.add_argument("--lattice", type=float, default=3.61, help="fcc lattice constant of the parent block (A)")
    g.add_argument("--rattle", type=float, default=0.1, help="std of the Gaussian displacement of every atom (A)")
    g.add_argument("--strain", type=float, default=0.02, help="std of the random symmetric strain")
    g.add_argument("--val-fraction", type=float, default=0.1)
    g.add_argument("--test-fraction", type=float, default=0.1)
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, default=20, help="passes over the training set")
    g.add_argument("--steps", type=int, default=None, help="optimizer steps in all (overrides --epochs)")
    g.add_argument("--batch-size", type=int, default=4, help="structures per graph batch (per process)")
    g.add_argument("--lr", type=float, default=1e-2, help="peak Adam learning rate (cosine decay to lr/20)")
    g.add_argument("--energy-weight", type=float, default=10.0,
                   help="weight of the per-atom energy MSE (forces alone leave the size-dependent surface energy "
                        "unlearned: with weight 1 the energy barely beats the baseline)")
    g.add_argument("--force-weight", type=float, default=1.0, help="weight of the force-component MSE")
    g.add_argument("--seed", type=int, default=0, help="seeds the data, the split, the batches and the weights")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (under torchrun, cuda means cuda:LOCAL_RANK)")
    g.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    g.add_argument("--backend", choices=("auto", "reference", "triton"), default="auto",
                   help="tensor products: auto = the Triton kernels on CUDA, the reference on the CPU; triton on "
                        "the CPU needs TRITON_INTERPRET=1 (Triton's interpreter: very slow, for testing)")
    g.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads per process; the tensors are small, and one thread per process "
                        "was fastest on a 2-core machine (use torchrun to use more cores)")
    g.add_argument("--quick", action="store_true",
                   help="a seconds-long smoke run: 24 small structures, 25 steps (explicit options still win)")
    g.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    g.add_argument("--save", default=None, help="write the trained weights, normalization and generated source here")
    args = p.parse_args(argv)

    if args.quick:  # smaller defaults, unless given explicitly on the command line
        given = {a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:]) if a.startswith("--")}
        for name, value in (("structures", 24), ("max_atoms", 24), ("steps", 25)):
            if "--" + name.replace("_", "-") not in given:
                setattr(args, name, value)
    return args


# ----------------------------------------------------------------------------- distributed

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """Join the process group when launched by torchrun (RANK / WORLD_SIZE in the environment)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_sum(x: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.enabled:
        import torch.distributed as dist
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


# ----------------------------------------------------------------------------- data

@dataclass
class Structure:
    numbers: np.ndarray      # [n] channel index of every atom
    positions: np.ndarray    # [n, 3] Angstrom
    energy: float            # eV
    forces: np.ndarray       # [n, 3] eV/Angstrom
    edges: np.ndarray        # [2, E] (src, dst)

    @property
    def n(self) -> int:
        return len(self.numbers)


def radius_graph(pos: np.ndarray, cutoff: float) -> np.ndarray:
    """All ordered pairs (src, dst), src != dst, closer than cutoff: both directions, no self loops."""
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    src, dst = np.nonzero((d < cutoff) & ~np.eye(len(pos), dtype=bool))
    return np.stack([src, dst]).astype(np.int64)


def make_structures(count: int, elements: List[str], seed: int, *, min_atoms: int, max_atoms: int,
                    lattice: float, rattle: float, strain: float, cutoff: float) -> List[Structure]:
    """Compact fcc chunks (the atoms nearest a random point of a bulk block), strained, rattled, EMT-labelled."""
    from ase import Atoms
    from ase.build import bulk
    from ase.calculators.emt import EMT

    rng = np.random.default_rng(seed)
    block = bulk("Cu", "fcc", a=lattice, cubic=True).repeat((5, 5, 5)).get_positions()  # only the lattice
    centre = block.mean(axis=0)
    calc = EMT()
    out = []
    for _ in range(count):
        n = int(rng.integers(min_atoms, max_atoms + 1))
        c = centre + rng.uniform(-0.5, 0.5, 3) * lattice  # off-lattice centres give varied shapes
        pos = block[np.argsort(np.linalg.norm(block - c, axis=1), kind="stable")[:n]] - c
        eps = rng.normal(0.0, strain, (3, 3))
        pos = pos @ (np.eye(3) + 0.5 * (eps + eps.T))
        pos = pos + rng.normal(0.0, rattle, pos.shape)
        numbers = rng.integers(0, len(elements), n)
        atoms = Atoms([elements[k] for k in numbers], positions=pos, pbc=False)
        atoms.calc = calc
        energy = float(atoms.get_potential_energy())
        forces = atoms.get_forces()
        out.append(Structure(numbers, pos, energy, forces, radius_graph(pos, cutoff)))
    return out


@dataclass
class Batch:
    species: torch.Tensor   # [N, channels] one-hot
    pos: torch.Tensor       # [N, 3]
    edges: torch.Tensor     # [2, E]
    batch: torch.Tensor     # [N] graph index of every node
    num_graphs: int
    natoms: torch.Tensor    # [G]
    energy: torch.Tensor    # [G]
    forces: torch.Tensor    # [N, 3]


def collate(structs: Sequence[Structure], channels: int, dtype, device) -> Batch:
    """Merge structures into one disjoint graph: node indices of graph g are shifted by the atoms before it."""
    offsets = np.cumsum([0] + [s.n for s in structs])[:-1]
    numbers = np.concatenate([s.numbers for s in structs])
    species = np.zeros((len(numbers), channels))
    species[np.arange(len(numbers)), numbers] = 1.0
    t = lambda a, dt=dtype: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
    return Batch(
        species=t(species),
        pos=t(np.concatenate([s.positions for s in structs])),
        edges=t(np.concatenate([s.edges + o for s, o in zip(structs, offsets)], axis=1), torch.long),
        batch=t(np.repeat(np.arange(len(structs)), [s.n for s in structs]), torch.long),
        num_graphs=len(structs),
        natoms=t([s.n for s in structs]),
        energy=t([s.energy for s in structs]),
        forces=t(np.concatenate([s.forces for s in structs])),
    )


def batches_of(items: Sequence, size: int) -> List[list]:
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


# ----------------------------------------------------------------------------- model

class Potential(torch.nn.Module):
    """The compiled network in normalized units, mapped back to eV and eV/A.

    E = scale * E_net + sum_atoms e0[species],  F = scale * F_net  (F_net = -dE_net/dpos, so F = -dE/dpos).
    """

    def __init__(self, net: torch.nn.Module, e0: torch.Tensor, scale: float):
        super().__init__()
        self.net = net
        self.register_buffer("e0", e0)
        self.scale = float(scale)

    def reference_energy(self, species: torch.Tensor, batch: torch.Tensor, num_graphs: int) -> torch.Tensor:
        return torch.zeros(num_graphs, dtype=species.dtype, device=species.device).index_add(0, batch, species @ self.e0)

    def forward(self, species, pos, edges, batch, num_graphs: int) -> Dict[str, torch.Tensor]:
        shift = pos.new_zeros(edges.shape[1], 3)  # clusters, not periodic cells: every edge within the cluster
        out = self.net(species, pos, edges, shift, batch=batch, num_graphs=num_graphs)
        energy = self.scale * out["energy"].squeeze(-1) + self.reference_energy(species, batch, num_graphs)
        return {"energy": energy, "forces": self.scale * out["forces"]}


def fit_normalization(train: Sequence[Structure], channels: int):
    """Per-species reference energies (least squares of E on species counts) and the RMS force."""
    counts = np.stack([np.bincount(s.numbers, minlength=channels) for s in train]).astype(float)
    energies = np.array([s.energy for s in train])
    e0 = np.linalg.lstsq(counts, energies, rcond=None)[0]  # minimum norm: 0 for absent species
    f_rms = math.sqrt(np.mean(np.concatenate([s.forces.ravel() for s in train]) ** 2))
    return e0, f_rms


def loss_terms(pred: Dict[str, torch.Tensor], b: Batch, scale: float):
    """Squared errors in normalized units: per-atom energy [G], force components [3N]."""
    e_err = (pred["energy"] - b.energy) / b.natoms / scale
    f_err = (pred["forces"] - b.forces).reshape(-1) / scale
    return e_err.pow(2), f_err.pow(2)


@torch.no_grad()  # the model turns grad on for pos internally; no graph is kept for the parameters
def evaluate(model: Potential, structs: Sequence[Structure], args, d: Dist, channels, dtype, device) -> Dict[str, float]:
    """Metrics over `structs`, each rank taking every world-th structure, sums all-reduced."""
    # sums: |dE|/atom, |dF|, structures, force components, e_err^2, f_err^2, baseline |dE|/atom, baseline |F|
    s = torch.zeros(8, dtype=torch.float64, device=device)
    for chunk in batches_of(structs[d.rank::d.world], max(args.batch_size, 8)):
        b = collate(chunk, channels, dtype, device)
        pred = model(b.species, b.pos, b.edges, b.batch, b.num_graphs)
        e2, f2 = loss_terms(pred, b, model.scale)
        base = model.reference_energy(b.species, b.batch, b.num_graphs)
        s += torch.stack([
            ((pred["energy"] - b.energy).abs() / b.natoms).sum(), (pred["forces"] - b.forces).abs().sum(),
            torch.tensor(float(b.num_graphs)), torch.tensor(float(b.forces.numel())), e2.sum(), f2.sum(),
            ((base - b.energy).abs() / b.natoms).sum(), b.forces.abs().sum()]).to(s)
    s = all_reduce_sum(s, d).tolist()
    n_e, n_f = max(s[2], 1.0), max(s[3], 1.0)
    return {
        "energy_mae": 1e3 * s[0] / n_e,            # meV/atom
        "force_mae": 1e3 * s[1] / n_f,             # meV/A, over force components
        "loss": args.energy_weight * s[4] / n_e + args.force_weight * s[5] / n_f,
        "energy_mae_baseline": 1e3 * s[6] / n_e,   # per-species mean energy from the training set
        "force_mae_baseline": 1e3 * s[7] / n_f,    # zero forces
        "structures": int(s[2]),
    }


# ----------------------------------------------------------------------------- main

def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    t_start = time.perf_counter()
    d = setup_distributed(args.device)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(max(1, args.threads))
    try:
        result = _run(args, d, t_start)
        if d.enabled:  # no rank tears its connections down while another still uses them
            import torch.distributed as dist
            dist.barrier()
        return result
    finally:
        torch.set_num_threads(threads_before)
        if d.enabled:
            import torch.distributed as dist
            dist.destroy_process_group()


def _run(args, d: Dist, t_start: float) -> Dict:
    from tqdm.auto import tqdm

    say = print if d.main else (lambda *a, **k: None)
    device = torch.device(args.device)
    if device.type == "cuda" and d.enabled and device.index is None:
        device = torch.device("cuda", d.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dtype = getattr(torch, args.dtype)

    # 1. the model class, compiled from the spec
    spec = eqdsl.compile_file(args.spec, layers=args.layers)
    Model = spec.model_class()
    from eqdsl.groups import GROUPS
    from eqdsl.reps.irreps import Irreps
    species_rep = dict((name, rep) for name, _, rep, _ in Model.INPUTS)["species"]
    channels = Irreps.parse(species_rep, GROUPS[Model.GROUP]).dim
    elements = [e.strip() for e in args.elements.split(",") if e.strip()]
    if not 1 <= len(elements) <= channels:
        raise SystemExit(f"--elements: between 1 and {channels} elements (the spec's species rep is {species_rep})")

    # 2. data: the same on every rank (seeded), so nothing needs to be sent around
    t0 = time.perf_counter()
    data = make_structures(args.structures, elements, args.seed, min_atoms=args.min_atoms, max_atoms=args.max_atoms,
                           lattice=args.lattice, rattle=args.rattle, strain=args.strain, cutoff=args.cutoff)
    t_data = time.perf_counter() - t0

    # 3. split, normalization, avg_neighbors
    order = np.random.default_rng(args.seed + 1).permutation(len(data))
    n_val = max(1, round(args.val_fraction * len(data)))
    n_test = max(1, round(args.test_fraction * len(data)))
    test = [data[i] for i in order[:n_test]]
    val = [data[i] for i in order[n_test:n_test + n_val]]
    train = [data[i] for i in order[n_test + n_val:]]
    if len(train) < args.batch_size * d.world:
        raise SystemExit(f"{len(train)} training structures: too few for {d.world} x {args.batch_size} per step")
    e0, scale = fit_normalization(train, channels)
    avg_neighbors = sum(s.edges.shape[1] for s in train) / sum(s.n for s in train)
    say(f"{Model.__name__} from {os.path.relpath(args.spec)} (layers={args.layers}), cutoff {args.cutoff} A; "
        f"{d.world} process(es) x {torch.get_num_threads()} thread(s), {device}, {args.dtype}, "
        f"tensor products on {'triton' if args.backend == 'triton' or (args.backend == 'auto' and device.type == 'cuda') else 'reference'}")
    say(f"data: {len(data)} EMT clusters of {elements} ({args.min_atoms}-{args.max_atoms} atoms) in {t_data:.1f} s; "
        f"train/val/test {len(train)}/{len(val)}/{len(test)}; "
        f"avg_neighbors {avg_neighbors:.2f}, e0 {np.round(e0[:len(elements)], 4).tolist()} eV, "
        f"force scale {scale:.3f} eV/A")

    torch.manual_seed(args.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    net = Model(cutoff=args.cutoff, avg_neighbors=avg_neighbors, backend=args.backend)
    model = Potential(net, torch.tensor(e0), scale).to(device=device, dtype=dtype)
    train_model: torch.nn.Module = model
    if d.enabled:
        # The forces are -dE/dpos taken *inside* forward with torch.autograd.grad(..., inputs=pos,
        # create_graph=True); that inner pass runs no AccumulateGrad node of any parameter, so DDP's
        # gradient hooks fire only in loss.backward(), once per parameter, as usual.  Every parameter
        # reaches the loss, so find_unused_parameters=False (the default, and no graph walk per step).
        # find_unused_parameters=True and static_graph=True also run correctly here (checked); they
        # are just not needed.  The buffers (e0, Clebsch-Gordan tables) are constants: no need to
        # re-broadcast them before every forward (the option was renamed in newer torch).
        import inspect
        from torch.nn.parallel import DistributedDataParallel as DDP
        no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(DDP).parameters
                   else {"broadcast_buffers": False})
        train_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                          find_unused_parameters=False, **no_sync)

    steps_per_epoch = len(batches_of(train, args.batch_size)) // d.world  # equal on every rank (else DDP hangs)
    total_steps = args.steps if args.steps is not None else args.epochs * steps_per_epoch
    eval_every = min(steps_per_epoch, max(1, total_steps // 5))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(k, total_steps) / max(total_steps, 1))))

    evaluate_ = lambda structs: evaluate(model, structs, args, d, channels, dtype, device)  # noqa: E731
    first_val = evaluate_(val)
    best_val, best_state, best_step = first_val, {k: v.clone() for k, v in model.state_dict().items()}, 0
    say(f"step 0: val loss {first_val['loss']:.4f}, energy MAE {first_val['energy_mae']:.1f} meV/atom, "
        f"force MAE {first_val['force_mae']:.1f} meV/A")

    losses: List[float] = []
    val_history = [(0, first_val)]
    bar = tqdm(total=total_steps, disable=not d.main or args.no_progress, desc="train", unit="step",
               dynamic_ncols=True, file=sys.stderr, mininterval=0.1 if sys.stderr.isatty() else 15.0)
    t0 = time.perf_counter()
    step, epoch, shown = 0, 0, None
    model.train()
    while step < total_steps:
        # the same shuffled batch list on every rank; rank r takes batches r, r + world, ...
        perm = np.random.default_rng([args.seed, epoch]).permutation(len(train))
        batches = batches_of([train[i] for i in perm], args.batch_size)
        for k in range(steps_per_epoch):
            if step >= total_steps:
                break
            b = collate(batches[k * d.world + d.rank], channels, dtype, device)
            pred = train_model(b.species, b.pos, b.edges, b.batch, b.num_graphs)
            e2, f2 = loss_terms(pred, b, scale)
            loss = args.energy_weight * e2.mean() + args.force_weight * f2.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            value = all_reduce_sum(loss.detach().to(torch.float64).reshape(1), d).item() / d.world
            if not math.isfinite(value):
                raise FloatingPointError(f"loss is {value} at step {step}")
            losses.append(value)
            shown = value if shown is None else 0.9 * shown + 0.1 * value
            bar.set_postfix(loss=f"{shown:.4f}", best_val_fmae=f"{best_val['force_mae']:.0f}meV/A", refresh=False)
            bar.update()
            if step % eval_every == 0 or step == total_steps:
                m = evaluate_(val)
                val_history.append((step, m))
                if m["loss"] < best_val["loss"]:  # all-reduced: every rank takes the same decision
                    best_val, best_step = m, step
                    best_state = {k_: v.clone() for k_, v in model.state_dict().items()}
        epoch += 1
    bar.close()
    t_train = time.perf_counter() - t0

    model.load_state_dict(best_state)
    test_m = evaluate_(test)
    train_m = evaluate_(train)
    wall = time.perf_counter() - t_start
    last = val_history[-1][1]
    say(f"trained {total_steps} steps ({epoch} epochs, {d.world} x {args.batch_size} structures/step) in "
        f"{t_train:.1f} s ({1e3 * t_train / max(total_steps, 1):.0f} ms/step)")
    say(f"train loss (running) {np.mean(losses[:5]):.4f} (first 5 steps) -> {np.mean(losses[-5:]):.4f} (last 5); "
        f"val loss {first_val['loss']:.4f} -> {last['loss']:.4f} (best {best_val['loss']:.4f} at step {best_step})")
    say(f"test set: {test_m['structures']} structures (weights of step {best_step})")
    say(f"  energy MAE {test_m['energy_mae']:8.2f} meV/atom   baseline {test_m['energy_mae_baseline']:8.2f} meV/atom "
        f"(per-species mean energy)")
    say(f"  force MAE  {test_m['force_mae']:8.2f} meV/A      baseline {test_m['force_mae_baseline']:8.2f} meV/A "
        f"(zero forces)")
    say(f"  (train set: energy MAE {train_m['energy_mae']:.2f} meV/atom, force MAE {train_m['force_mae']:.2f} meV/A)")
    say(f"wall time {wall:.1f} s")

    if args.save and d.main:
        torch.save({"state_dict": model.net.state_dict(), "source": spec.source, "model": Model.__name__,
                    "layers": args.layers, "cutoff": args.cutoff, "avg_neighbors": avg_neighbors,
                    "e0": e0.tolist(), "scale": scale, "elements": elements, "dtype": args.dtype}, args.save)
        say(f"saved {args.save}")
    return {"losses": losses, "val": val_history, "first_val": first_val, "best_val": best_val,
            "test": test_m, "train": train_m, "avg_neighbors": avg_neighbors, "wall_time": wall,
            "train_time": t_train, "steps": total_steps, "world": d.world}


if __name__ == "__main__":
    try:
        main()
    except ModuleNotFoundError as err:  # ase and tqdm come with the `examples` extra: say so in one line
        from eqdsl.extras import missing_package
        line = missing_package(err.name or "", "examples/train_emt.py")
        if line is None:
            raise
        sys.exit(line)
