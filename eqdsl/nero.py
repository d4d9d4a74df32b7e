"""NERO plots (Non-Equivariance Revealed on Orbits): a model's equivariance error, or its task error,
along a one-parameter path through its group, to see where and how badly a symmetry breaks.

    from eqdsl.nero import rotation_path, equivariance_along, task_error_along, plot
    path = rotation_path(type(model).GROUP, steps=73)           # rotations about z, 0 to 360 degrees
    result = equivariance_along(model, path)                     # relative error of each output per angle
    plot(result, "nero.png")

The path: for O(3) and SO(3), rotations about an axis (x, y or z) by `steps` angles from 0 to 360
degrees; for planar groups, the rotations of the plane (SO(2), O(2): `steps` angles; Cn and Dn: their
n rotations, the only angles at which their representations are defined).  Inputs are those of
`eqc check` (random features, positions and graphs; smooth disk-masked images for image models, rotated
by interpolation, which is exact at the grid's own symmetries) or the user's own.  The error at each
angle is what `eqc check` measures for that element: max |f(g x) - g f(x)| / max |f(x)| per output.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from . import testing

AXES = {"x": 0, "y": 1, "z": 2}


class NeroError(ValueError):
    """A group without a rotation path, or inputs the sweep cannot use."""


@dataclass
class OrbitPath:
    group: object          # the module's GROUP
    angles_deg: list        # the angle of each element, degrees
    elements: list          # the elements in the group's defining representation (numpy)
    description: str
    continuous: bool = True  # False: only these elements exist (finite groups): the plot does not join them


@dataclass
class NeroResult:
    path: OrbitPath
    errors: dict            # output name -> one relative error per element (None: not measured)
    what: str = "relative equivariance error"
    meta: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """null where nothing was measured: an image output, or an output vanishing on the inputs."""
        def finite(v):
            return v if v is not None and math.isfinite(v) else None
        return {"what": self.what, "path": self.path.description, "angles_deg": self.path.angles_deg,
                "errors": {k: [finite(v) for v in vs] for k, vs in self.errors.items()}, **self.meta}


def _rotation(axis: int, theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    i, j = [k for k in range(3) if k != axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def rotation_path(group, steps: int = 73, axis: str = "z") -> OrbitPath:
    """The rotations of `group` (a module's GROUP) along one axis, 0 to 360 degrees."""
    if steps < 2:
        raise NeroError(f"steps = {steps}: a path needs at least 2 angles")
    g = testing._group(group)
    if g.rep_family == "irreps":
        if axis not in AXES:
            raise NeroError(f"axis {axis!r}: use x, y or z")
        angles = np.linspace(0.0, 360.0, steps)
        return OrbitPath(group, [float(a) for a in angles], [_rotation(AXES[axis], math.radians(a)) for a in angles],
                         f"rotations about {axis} in {g.name}, {steps} angles from 0 to 360 degrees")
    if testing._point_dim(group) != 2:
        raise NeroError(f"{g.name} has no built-in rotation path (NERO sweeps rotations of O(3), SO(3) and planar "
                        "groups)")
    if g.is_finite:
        rotations = [e for e in g.elements() if np.linalg.det(e) > 0]
        angles = [round(math.degrees(math.atan2(e[1, 0], e[0, 0])) % 360.0, 9) for e in rotations]
        order = np.argsort(angles)
        rotations, angles = [rotations[i] for i in order] + [rotations[order[0]]], [angles[i] for i in order] + [360.0]
        return OrbitPath(group, [float(a) for a in angles], rotations,
                         f"the {len(order)} rotations of {g.name} (its representations exist only there)", False)
    angles = np.linspace(0.0, 360.0, steps)
    return OrbitPath(group, [float(a) for a in angles],
                     [np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]) for t in np.radians(angles)],
                     f"rotations of the plane in {g.name}, {steps} angles from 0 to 360 degrees")


def _image_errors(model, path: OrbitPath, rng) -> dict:
    """Image models: @graph outputs under each rotation of smooth images (image outputs: None)."""
    cls = type(model)
    inputs = testing.smooth_image_inputs(cls, rng)
    errors = {name: [] for name, *_ in cls.OUTPUTS}
    for at_g in testing.image_errors_under(model, inputs, path.elements):
        for name, measured in at_g.items():
            if measured is None:
                errors[name].append(None)
            else:
                err, scale = measured
                errors[name].append(err / scale if scale >= testing.DEGENERATE else float("inf"))
    return errors


def equivariance_along(model, path: OrbitPath, sample: Optional[testing.Sample] = None, seed: int = 0) -> NeroResult:
    """The relative equivariance error of each output of `model` (float64 recommended) at every element
    of `path`, on `sample` (default: random inputs as `eqc check` makes them)."""
    cls = type(model)
    rng = np.random.default_rng(seed)
    has_images = any(p == "grid" for *_, p in cls.INPUTS)
    if has_images:
        if sample is not None:
            raise NeroError("image models are swept on smooth images made here; pass no sample")
        if any(p != "grid" for *_, p in cls.INPUTS):
            raise NeroError(f"{cls.__name__} mixes image and other inputs: not swept")
        return NeroResult(path, _image_errors(model, path, rng))
    if sample is None:
        sample = testing.random_sample(cls, rng)
    identity = np.arange(sample.num_nodes)
    edges = np.arange(sample.num_edges)
    zero = np.zeros(testing._point_dim(cls.GROUP))
    errors = {name: [] for name, *_ in cls.OUTPUTS}
    for g in path.elements:
        for name, err in testing.errors_under(model, sample, testing.Transform(g, zero, identity), edges).items():
            errors[name].append(err)
    return NeroResult(path, errors)


def task_error_along(model, data: Sequence, path: OrbitPath,
                     metric: Optional[Callable] = None) -> NeroResult:
    """A trained model's task error along the orbit (the NERO paper's plot): every (inputs, kwargs,
    targets) in `data` moved by each element of `path`, inputs and targets alike, and `metric(prediction,
    target)` (default: mean absolute error) averaged over the data, per output named in the targets."""
    import torch

    cls = type(model)
    metric = metric or (lambda p, t: float((p - t).abs().mean()))
    kinds = {name: (kind, rep, placement) for name, kind, rep, placement in cls.OUTPUTS}
    names = sorted({name for _, _, targets in data for name in targets})
    unknown = [n for n in names if n not in kinds]
    if unknown:
        raise NeroError(f"targets {', '.join(unknown)} are not outputs of {cls.__name__}")
    errors = {name: [] for name in names}
    zero = np.zeros(testing._point_dim(cls.GROUP))
    for g in path.elements:
        totals = {name: 0.0 for name in names}
        for inputs, kwargs, targets in data:
            rows = next((inputs[n].shape[0] for n, k, r, p in cls.INPUTS if p == "node"), 0)
            edges = next((inputs[n].shape[1] for n, k, r, p in cls.INPUTS if k == "graph"), 0)
            t = testing.Transform(g, zero, np.arange(rows))
            moved = {n: testing._act(cls.GROUP, k, r, p, inputs[n], t, np.arange(edges), np.arange(rows))
                     for n, k, r, p in cls.INPUTS}
            with torch.no_grad():
                out = model(**moved, **kwargs)
            for name in names:
                kind, rep, placement = kinds[name]
                target = testing._act(cls.GROUP, kind, rep, placement, targets[name], t, np.arange(edges), np.arange(rows))
                totals[name] += metric(out[name], target)
        for name in names:
            errors[name].append(totals[name] / max(len(data), 1))
    return NeroResult(path, errors, what="task error")


def plot(result: NeroResult, path, title: Optional[str] = None) -> Path:
    """One line per output against the angle, log scale (errors below 1e-17 drawn at 1e-17)."""
    try:
        import matplotlib
    except ModuleNotFoundError:
        from .extras import missing_package
        raise NeroError(missing_package("matplotlib", "a NERO plot")) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in result.errors.items():
        points = [(a, max(v, 1e-17)) for a, v in zip(result.path.angles_deg, values) if v is not None]
        if points:
            ax.semilogy(*zip(*points), marker="o", markersize=3, label=name,
                        linestyle="-" if result.path.continuous else ":")
    ax.set_xlabel("rotation angle (degrees)")
    ax.set_ylabel(result.what)
    ax.set_xlim(0, 360)
    ax.set_xticks(range(0, 361, 45))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title or result.path.description, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_json(result: NeroResult, path) -> Path:
    path = Path(path)
    path.write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return path
