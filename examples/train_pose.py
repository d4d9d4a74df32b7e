"""A point cloud's orientation: the continuous 6D output of an equivariant model against quaternions.

    python examples/train_pose.py [--train 1000] [--steps 1500] [--quick]

Data: one fixed asymmetric template of 8 labelled points (4 species), rotated by a uniformly random
rotation R, moved by a random translation, with Gaussian noise (std 0.02) on every point and the points in
random order; the target is R. Three models, trained alike on the Frobenius loss |R_pred - R|^2 (Adam, the
same steps and batches), are compared by the geodesic error angle arccos((tr(R_pred^T R) - 1) / 2) on test
clouds:

* specs/pose_6d.eq: equivariant, orthonormalize(a, b) of two equivariant vectors (Zhou et al.'s 6D
  representation, equivariant by construction: it only has to learn the template's own orientation);
* 6D baseline (examples/pose/unconstrained.eq): an MLP on raw edge vectors, its 6 outputs Gram-Schmidt'ed;
* quaternion baseline: the same MLP, its first 4 outputs normalised to a unit quaternion (the
  discontinuous representation the paper compares against).

Data are generated; everything is seeded.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import eqdsl
from eqdsl.backends.reference import orthonormalize
from eqdsl.reps import so3

ROOT = Path(__file__).resolve().parent.parent
POINTS = 8
NOISE = 0.02


def template(rng) -> tuple[np.ndarray, np.ndarray]:
    """An asymmetric cloud (distinct covariance eigenvalues, no symmetry) with one-hot species."""
    pos = rng.normal(size=(POINTS, 3)) * np.array([1.5, 1.0, 0.6])
    species = np.eye(4)[np.arange(POINTS) % 4]
    return pos - pos.mean(0), species


def make_data(n: int, shape, rng) -> dict:
    pos0, species0 = shape
    rotations = np.stack([so3.random_rotation(rng) for _ in range(n)])
    clouds, kinds = [], []
    for R in rotations:
        order = rng.permutation(POINTS)
        clouds.append((pos0 @ R.T + rng.normal(size=3) + rng.normal(size=(POINTS, 3)) * NOISE)[order])
        kinds.append(species0[order])
    pairs = np.array([(i, j) for i in range(POINTS) for j in range(POINTS) if i != j]).T
    f32 = dict(dtype=torch.float32)
    return {"pos": torch.as_tensor(np.stack(clouds), **f32), "species": torch.as_tensor(np.stack(kinds), **f32),
            "R": torch.as_tensor(rotations, **f32), "pairs": torch.as_tensor(pairs)}


def batch_inputs(data: dict, idx: torch.Tensor) -> dict:
    k = len(idx)
    edges = torch.cat([data["pairs"] + i * POINTS for i in range(k)], dim=1)
    return {"species": data["species"][idx].reshape(-1, 4), "pos": data["pos"][idx].reshape(-1, 3), "edges": edges,
            "batch": torch.arange(k).repeat_interleave(POINTS), "num_graphs": k}


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True)).unbind(-1)
    return torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], dim=-1).reshape(-1, 3, 3)


READOUTS = {  # model output -> rotation
    "equivariant 6D (specs/pose_6d.eq)": (ROOT / "specs" / "pose_6d.eq", lambda out: out["orientation"]),
    "6D baseline (MLP on edge vectors)": (ROOT / "examples" / "pose" / "unconstrained.eq",
                                          lambda out: orthonormalize([out["numbers"][:, :3], out["numbers"][:, 3:]])),
    "quaternion baseline (same MLP)": (ROOT / "examples" / "pose" / "unconstrained.eq",
                                       lambda out: quaternion_to_matrix(out["numbers"][:, :4])),
}


def geodesic_degrees(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    cos = ((pred.transpose(-1, -2) @ target).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    return torch.rad2deg(torch.arccos(cos.clamp(-1.0, 1.0)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="a few steps (the test)")
    args = parser.parse_args(argv)
    if args.quick:
        args.train, args.test, args.steps, args.batch = 64, 32, 30, 8
    rng = np.random.default_rng(0)
    shape = template(rng)
    train_set, test_set = make_data(args.train, shape, rng), make_data(args.test, shape, rng)
    test_inputs = batch_inputs(test_set, torch.arange(args.test))
    rows = []
    for name, (spec, readout) in READOUTS.items():
        torch.manual_seed(0)
        model = eqdsl.compile_file(spec).model_class()()
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=1e-4)
        gen = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for _ in range(args.steps):
            idx = torch.randint(0, args.train, (args.batch,), generator=gen)
            loss = (readout(model(**batch_inputs(train_set, idx))) - train_set["R"][idx]).pow(2).sum((-1, -2)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        seconds = time.perf_counter() - start
        with torch.no_grad():
            err = geodesic_degrees(readout(model(**test_inputs)), test_set["R"])
        rows.append((name, sum(p.numel() for p in model.parameters()), float(err.mean()), float(err.median()),
                     float(err.max()), seconds))
    print(f"{args.train} training clouds of {POINTS} points (noise {NOISE}), {args.steps} steps of {args.batch}; "
          f"geodesic error on {args.test} test clouds, degrees")
    print(f"{'model':<36} {'params':>7} {'mean':>8} {'median':>8} {'max':>8} {'train s':>8}")
    for name, params, mean, median, worst, seconds in rows:
        print(f"{name:<36} {params:>7} {mean:>8.2f} {median:>8.2f} {worst:>8.2f} {seconds:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
