"""Soft symmetry: symmetries a model should have only approximately, pulled toward by a learned penalty.

A spec declares its exact group (`group G`: every layer is G-equivariant by construction) and any number
of soft groups (`soft group H`), symmetries the data has only in part (Kim et al., 2023, "Regularizing
Towards Soft Equivariance Under Mixed Symmetries").  Layers declared `approximate = true` (linear, mlp,
tensor_product) add unconstrained paths; a model that has them treats its own group G as soft too.

The generated module's ``equivariance_penalty(inputs...)`` returns, per soft group H, the mean squared
equivariance error of the outputs, relative to their mean square (so groups and outputs of any scale
compare),

    E_H = mean over sampled h in H and outputs y of  mean |y(h x) - h y(x)|^2 / mean |y(x)|^2

(positions move by h p, features by their representation's construction at h; see
eqdsl/check/soft_symmetry.py; the denominator is not differentiated), each group's strength
lambda_H = exp(s_H) (the buffer ``soft_log_strength``), and

    penalty = sum_H lambda_H E_H       zero for a model equivariant under every soft group

which training adds to its task loss.  The strengths are learned from the data, not from the penalty
(minimising lambda_H E_H over lambda_H would only switch it off): ``tune_strengths`` moves each s_H by the
first-order hypergradient of the task loss, the alignment of the task's gradient with the gradient that
reduces E_H.  Where making the model more symmetric under H also fits the data better, the strength grows;
where the data break H (the two gradients conflict), it falls.  After training, the strengths say how far
the data keep each symmetry.
"""
from __future__ import annotations

import inspect
import math
from typing import Dict, Optional

import numpy as np
import torch

from . import testing
from .groups.recipe import group_from_recipe
from .reps.family import family_of

STRENGTH_BOUND = math.log(1e4)  # |s_H| stays below this: lambda_H in [1e-4, 1e4]


def strengths(model) -> Dict[str, float]:
    """lambda_H of each soft group, by name."""
    s = model.soft_log_strength.exp().tolist()
    return {name: value for (name, _), value in zip(type(model).SOFT_GROUPS, s)}


def _inputs(model, args, kwargs) -> tuple[dict, dict]:
    """forward()'s inputs by name, and the other keyword arguments (batch, num_graphs, num_nodes)."""
    bound = inspect.signature(model.forward).bind(*args, **kwargs)
    names = [name for name, *_ in type(model).INPUTS]
    inputs = {n: bound.arguments[n] for n in names}
    extra = {k: v for k, v in bound.arguments.items() if k not in names}
    return inputs, extra


class _Mover:
    """Acts with one element h of a soft group on a module's inputs and outputs (differentiably)."""

    def __init__(self, cls, h: np.ndarray):
        self.cls, self.h, self.cache = cls, h, {}

    def __call__(self, kind, rep, value):
        if kind == "graph":
            return value
        if kind == "point":
            return value @ torch.as_tensor(self.h, dtype=value.dtype, device=value.device).T
        if rep not in self.cache:
            group = testing._group(self.cls.GROUP)
            self.cache[rep] = family_of(group).action(testing._irreps(self.cls.GROUP, rep), self.h)
        return testing.act_with(kind, torch.as_tensor(self.cache[rep], dtype=value.dtype, device=value.device), value)


def equivariance_penalty(model, args, kwargs, samples: int = 1, rng: Optional[np.random.Generator] = None) -> dict:
    """The soft groups' errors, strengths, penalty and loss terms (see the module docstring) for one
    forward() call's inputs.  Elements are drawn from `rng`, by default from one seeded by torch's
    generator (so torch.manual_seed makes runs repeatable)."""
    cls = type(model)
    if samples < 1:
        raise ValueError("samples must be at least 1")
    if rng is None:
        rng = np.random.default_rng(int(torch.randint(0, 2 ** 62, ())))
    inputs, extra = _inputs(model, args, kwargs)
    out = model(**inputs, **extra)
    errors = []
    for _, recipe in cls.SOFT_GROUPS:
        group = group_from_recipe(recipe)
        total = 0.0
        for _ in range(samples):
            move = _Mover(cls, family_of(group).sample(group, rng))
            moved = {name: move(kind, rep, inputs[name]) for name, kind, rep, _ in cls.INPUTS}
            out_moved = model(**moved, **extra)
            for name, kind, rep, _ in cls.OUTPUTS:
                if name in out:
                    scale = out[name].detach().pow(2).mean().clamp(min=torch.finfo(out[name].dtype).tiny)
                    total = total + (out_moved[name] - move(kind, rep, out[name])).pow(2).mean() / scale
        errors.append(total / samples)
    lam = model.soft_log_strength.exp()
    result = {"penalty": sum(l * e for l, e in zip(lam, errors))}
    for (name, _), e, l in zip(cls.SOFT_GROUPS, errors, lam):
        result[f"error/{name}"] = torch.as_tensor(e, dtype=lam.dtype, device=lam.device)
        result[f"strength/{name}"] = l
    return result


def tune_strengths(model, task_loss: torch.Tensor, penalty: dict, lr: float = 0.05) -> Dict[str, float]:
    """One step of the strengths: s_H += lr * cos(grad task_loss, grad E_H) over the model's parameters
    (the first-order hypergradient of the task loss after a step on the penalty, normalised), bounded to
    +-ln(1e4).  Call it with the step's task loss and ``equivariance_penalty`` result, before their
    backward(); it keeps their graphs.  Returns the alignment per group."""
    cls = type(model)
    params = [p for p in model.parameters() if p.requires_grad]
    task = torch.autograd.grad(task_loss, params, retain_graph=True, allow_unused=True)
    aligned = {}
    with torch.no_grad():
        for k, (name, _) in enumerate(cls.SOFT_GROUPS):
            error = penalty[f"error/{name}"]
            if not error.requires_grad:  # exactly zero whatever the weights: nothing to learn from
                aligned[name] = 0.0
                continue
            with torch.enable_grad():
                grads = torch.autograd.grad(error, params, retain_graph=True, allow_unused=True)
            dot = sum(float((a * b).sum()) for a, b in zip(task, grads) if a is not None and b is not None)
            norm_t = math.sqrt(sum(float(a.pow(2).sum()) for a in task if a is not None))
            norm_e = math.sqrt(sum(float(b.pow(2).sum()) for b in grads if b is not None))
            cos = dot / (norm_t * norm_e) if norm_t > 0 and norm_e > 0 else 0.0
            model.soft_log_strength[k] = (model.soft_log_strength[k] + lr * cos).clamp(-STRENGTH_BOUND, STRENGTH_BOUND)
            aligned[name] = cos
    return aligned


def equivariance_error(model, inputs: dict, group, samples: int = 4, rng: Optional[np.random.Generator] = None,
                       **kwargs) -> float:
    """The measured equivariance error of a (trained) model on a user's inputs under a group (a recipe, a
    group, or a module's GROUP): sqrt(sum |f(h x) - h f(x)|^2 / sum |f(x)|^2) over every output, averaged
    over `samples` random elements h."""
    cls = type(model)
    rng = rng if rng is not None else np.random.default_rng(0)
    g = group_from_recipe(group) if isinstance(group, tuple) else testing._group(group) if isinstance(group, str) else group
    total = 0.0
    with torch.no_grad():
        out = model(**inputs, **kwargs)
        for _ in range(samples):
            move = _Mover(cls, family_of(g).sample(g, rng))
            moved = model(**{name: move(kind, rep, inputs[name]) for name, kind, rep, _ in cls.INPUTS}, **kwargs)
            num = den = 0.0
            for name, kind, rep, _ in cls.OUTPUTS:
                num += float((moved[name] - move(kind, rep, out[name])).pow(2).sum())
                den += float(out[name].pow(2).sum())
            total += math.sqrt(num / den) if den > 0 else math.inf
    return total / samples
