"""Soft symmetry on a system with mixed symmetry: particles under gravity.

    python examples/train_soft.py [--train 512] [--steps 1500] [--out soft_out] [--quick]

Each system is 6 particles with masses m_i in [0.5, 2] at standard-normal positions; the target is the
force on each particle,

    F_i = sum_j m_i m_j (|r_ij| - 1) r_ij / |r_ij|  -  G m_i z,      r_ij = p_j - p_i,  G = 1,

springs of rest length 1 (symmetric under every rotation and reflection) plus gravity along -z
(symmetric only under rotations about the vertical axis; --gravity 0 makes the data O(3)-symmetric).
Four models learn it on the same data, each trained from the same --seeds initialisations:

* exact O(3) (examples/soft/exact.eq): equivariant under every rotation, so it cannot represent gravity;
* soft (specs/gravity_soft.eq): exactly equivariant under rotations about z (`group Axial`), pulled
  toward O(3) and the mirror x -> -x by its equivariance_penalty() (`soft group O3`, `soft group
  Mirror`), with strengths learned from the data (eqdsl.soft.tune_strengths);
* the same spec without the penalty;
* unconstrained (examples/soft/unconstrained.eq): MLPs on raw edge vectors (`approximate = true`).

Reported per model: the test force error (relative RMS), the measured equivariance error under rotations
about z and under O(3) (relative RMS of f(g x) - g f(x) on the test systems), the learned strength, and
the NERO task error along tilts (rotations about x, eqdsl.nero.task_error_along), written with a plot to
--out. Data are generated; everything is seeded.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import eqdsl
from eqdsl import nero, soft

ROOT = Path(__file__).resolve().parent.parent
PARTICLES = 6
GRAVITY = 1.0
SPECS = {  # name -> spec, whether the penalty is trained
    "exact O(3)": (ROOT / "examples" / "soft" / "exact.eq", False),
    "soft (Axial + soft O3)": (ROOT / "specs" / "gravity_soft.eq", True),
    "soft spec, no penalty": (ROOT / "specs" / "gravity_soft.eq", False),
    "unconstrained": (ROOT / "examples" / "soft" / "unconstrained.eq", False),
}


def forces(pos: np.ndarray, mass: np.ndarray, gravity: float = GRAVITY) -> np.ndarray:
    """pos [S, P, 3], mass [S, P] -> forces [S, P, 3]: springs of rest length 1 and gravity along -z."""
    r = pos[:, None, :, :] - pos[:, :, None, :]           # r[s, i, j] = p_j - p_i
    d = np.where(np.eye(pos.shape[1], dtype=bool), 1.0, np.linalg.norm(r, axis=-1))  # r_ii = 0 adds nothing
    pull = mass[:, :, None] * mass[:, None, :] * (d - 1.0) / d
    f = (pull[..., None] * r).sum(axis=2)
    f[..., 2] -= gravity * mass
    return f


def make_data(systems: int, rng, gravity: float = GRAVITY) -> dict:
    """Systems batched as one graph each, fully connected: inputs, targets and the edge index."""
    pos = rng.normal(size=(systems, PARTICLES, 3))
    mass = rng.uniform(0.5, 2.0, size=(systems, PARTICLES))
    target = forces(pos, mass, gravity)
    pairs = np.array([(i, j) for i in range(PARTICLES) for j in range(PARTICLES) if i != j]).T
    edges = np.concatenate([pairs + s * PARTICLES for s in range(systems)], axis=1)
    f32 = dict(dtype=torch.float32)
    return {"pos": torch.as_tensor(pos.reshape(-1, 3), **f32), "mass": torch.as_tensor(mass.reshape(-1, 1), **f32),
            "edges": torch.as_tensor(edges), "force": torch.as_tensor(target.reshape(-1, 3), **f32)}


def batches(data: dict, size: int, gen: torch.Generator):
    """Random batches of `size` systems (edges renumbered)."""
    systems = data["pos"].shape[0] // PARTICLES
    pick = torch.randperm(systems, generator=gen)[:size]
    rows = (pick[:, None] * PARTICLES + torch.arange(PARTICLES)).reshape(-1)
    local = torch.tensor([(i, j) for i in range(PARTICLES) for j in range(PARTICLES) if i != j]).T
    edges = torch.cat([local + k * PARTICLES for k in range(size)], dim=1)
    return {"pos": data["pos"][rows], "mass": data["mass"][rows], "edges": edges, "force": data["force"][rows]}


def relative_rms(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(((pred - target).pow(2).sum() / target.pow(2).sum()).sqrt())


def train(model, data: dict, steps: int, penalty: bool, batch: int, seed: int) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=1e-4)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        b = batches(data, batch, gen)
        inputs = {"pos": b["pos"], "mass": b["mass"], "edges": b["edges"]}
        loss = torch.nn.functional.mse_loss(model(**inputs)["force"], b["force"])
        if penalty:  # strengths from the data (does enforcing each symmetry help the fit?), then the penalty
            result = model.equivariance_penalty(**inputs)
            soft.tune_strengths(model, loss, result)
            loss = loss + result["penalty"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=512, help="training systems")
    parser.add_argument("--test", type=int, default=256, help="test systems")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32, help="systems per step")
    parser.add_argument("--gravity", type=float, default=GRAVITY, help="G (0: data symmetric under O(3))")
    parser.add_argument("--seeds", type=int, default=3, help="trainings per model (same seeds for every model)")
    parser.add_argument("--out", type=Path, default=Path("soft_out"), help="where the NERO plots and JSON go")
    parser.add_argument("--quick", action="store_true", help="a few steps on little data (the test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.train, args.test, args.steps, args.batch, args.seeds = 64, 32, 40, 8, 1
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    train_set, test_set = make_data(args.train, rng, args.gravity), make_data(args.test, rng, args.gravity)
    test_inputs = {k: test_set[k] for k in ("pos", "mass", "edges")}
    args.out.mkdir(parents=True, exist_ok=True)
    axial = ("matrix", "Axial", True, [[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]], [])
    tilts = nero.rotation_path("O3", steps=13, axis="x")  # tilts by 0, 30, ..., 360 degrees
    rows, orbit = [], {}
    for name, (spec, penalty) in SPECS.items():
        runs = []
        for seed in range(args.seeds):  # the same initial weights and batches for every model
            torch.manual_seed(seed)
            model = eqdsl.compile_file(spec).model_class()()
            start = time.perf_counter()
            train(model, train_set, args.steps, penalty, args.batch, seed=seed)
            seconds = time.perf_counter() - start
            model.eval()
            with torch.no_grad():
                error = relative_rms(model(**test_inputs)["force"], test_set["force"])
            gen = np.random.default_rng(1)
            under = [soft.equivariance_error(model, test_inputs, recipe, samples=4, rng=gen)
                     for recipe in (axial, ("irreps", "O3"))]
            along = nero.task_error_along(model, [(test_inputs, {}, {"force": test_set["force"]})], tilts,
                                          metric=relative_rms).errors["force"]
            runs.append((error, *under, soft.strengths(model) if penalty else None, seconds, along))
        mean = [float(np.mean([r[i] for r in runs])) for i in range(3)]
        spread = (min(r[0] for r in runs), max(r[0] for r in runs))
        strength = {g: float(np.mean([r[3][g] for r in runs])) for g in runs[0][3]} if penalty else None
        orbit[name] = [float(v) for v in np.mean([r[5] for r in runs], axis=0)]
        rows.append((name, sum(p.numel() for p in model.parameters()), mean[0], spread, mean[1], mean[2], strength,
                     float(np.mean([r[4] for r in runs]))))
    print(f"G = {args.gravity:g}; {args.train} training systems of {PARTICLES} particles, {args.steps} steps of {args.batch} systems; "
          f"test on {args.test} systems; mean of {args.seeds} trainings (test error: min-max in brackets)")
    print(f"{'model':<24} {'params':>7} {'test error':>22} {'equiv. error z-rot':>19} {'equiv. error O(3)':>18} "
          f"{'strength O3':>12} {'strength Mirror':>16} {'train s':>8}")
    for name, params, error, spread, ez, eo, strength, seconds in rows:
        o3, mirror = (f"{strength[g]:.3g}" if strength else "-" for g in ("O3", "Mirror"))
        shown = f"{error:.4f} [{spread[0]:.4f}-{spread[1]:.4f}]"
        print(f"{name:<24} {params:>7} {shown:>22} {ez:>19.2e} {eo:>18.2e} {o3:>12} {mirror:>16} {seconds:>8.1f}")
    print("NERO task error (relative RMS, targets rotated with the inputs) along tilts about x:")
    print(f"{'model':<24} " + " ".join(f"{a:>6.0f}" for a in tilts.angles_deg[:7]))
    for name, errs in orbit.items():
        print(f"{name:<24} " + " ".join(f"{e:>6.3f}" for e in errs[:7]))
    (args.out / "nero_tilts.json").write_text(json.dumps(
        {"what": "task error (relative RMS of forces, inputs and targets tilted together)", "path": tilts.description,
         "angles_deg": tilts.angles_deg, "errors": {k: [v if math.isfinite(v) else None for v in vs]
                                                    for k, vs in orbit.items()}}, indent=1))
    try:
        combined = nero.NeroResult(tilts, orbit, what="task error along tilts")
        nero.plot(combined, args.out / "nero_tilts.png", title="particles under gravity: task error along tilts")
    except nero.NeroError as err:  # matplotlib missing: the JSON alone
        print(f"no plot: {err}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
