"""Generated modules check their inputs: for every shipped spec, wrong inputs made from the module's own
INPUTS metadata each raise the named error (the input, what was expected, the spec line), the right ones
raise nothing, and check_inputs=False turns the checks off."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl.testing import random_sample

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.eq"), key=lambda p: p.stem)
_CLASSES: dict = {}


def model_class(spec: Path):
    if spec not in _CLASSES:
        overrides = {"layers": 2} if re.search(r"\blayers\s*=", spec.read_text()) else {}
        _CLASSES[spec] = eqdsl.compile_file(spec, **overrides).model_class()
    return _CLASSES[spec]


def sample_for(cls):
    torch.manual_seed(0)
    model = cls().double()
    return model, random_sample(cls, np.random.default_rng(0))


def wrong_inputs(cls, sample):
    """(description, input name, replacement value, error type, words the message must contain)."""
    cases = []
    first_of = {}
    for name, kind, rep, placement in cls.INPUTS:
        x = sample.inputs[name]
        if kind == "graph":
            far = x.clone()
            far[1, 0] = sample.num_nodes + 3
            negative = x.clone()
            negative[0, -1] = -1
            cases += [("float edge index", name, x.double(), TypeError, "integer tensor"),
                      ("edge index past the last node", name, far, ValueError, "node indices must be in"),
                      ("negative edge index", name, negative, ValueError, "node indices must be in"),
                      ("three rows of edges", name, torch.cat([x, x[:1]]), ValueError, "expected [2, num_edges]")]
            continue
        nan = x.clone()
        nan.view(-1)[x.numel() // 2] = float("nan")
        cases += [("NaN", name, nan, ValueError, "must be finite"),
                  ("float32 in a float64 model", name, x.float(), TypeError, "torch.float64"),
                  ("a numpy array", name, x.numpy(), TypeError, "expected a torch.Tensor"),
                  ("an integer tensor", name, x.long(), TypeError, "floating-point"),
                  ("on another device than the model", name, x.to("meta"), ValueError, "is on meta")]
        if placement == "grid":
            cases += [("non-square image", name, x[..., :-1], ValueError, "square"),
                      ("one channel too many", name, torch.cat([x, x[:, :1]], 1), ValueError, "expected [batch, "),
                      ("no batch axis", name, x[0], ValueError, "expected [batch, ")]
            if x.shape[-1] % 4 == 0:
                cropped = x[..., 1:-1, 1:-1]  # side 16 -> 14: not a multiple of the pooling sizes
                multiple = cls.GRID_MULTIPLE
                if multiple > 1 and cropped.shape[-1] % multiple:
                    cases.append(("image side not a multiple of the pooling", name, cropped, ValueError,
                                  f"multiple of {multiple}"))
            continue
        cases += [("one column too many", name, torch.cat([x, x[:, :1]], 1), ValueError, "expected ["),
                  ("a missing column", name, x[:, 1:], ValueError, "expected ["),
                  ("a batch axis in front", name, x[None], ValueError, "expected [")]
        if placement in first_of:  # rows must agree with the input that fixed them
            cases.append(("one row short", name, x[:-1], ValueError, f"(from {first_of[placement]})"))
        first_of.setdefault(placement, name)
    return cases


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_right_inputs_pass_and_each_wrong_input_raises_its_error(spec):
    cls = model_class(spec)
    model, sample = sample_for(cls)
    model(**sample.inputs, **sample.kwargs)  # the right inputs: nothing raised
    cases = wrong_inputs(cls, sample)
    assert cases
    for what, name, value, error, words in cases:
        inputs = {**sample.inputs, name: value}
        with pytest.raises(error) as caught:
            model(**inputs, **sample.kwargs)
        message = str(caught.value)
        assert message.startswith(name), (what, message)
        assert words in message, (what, message)
        line = next(row[5] for row in cls.INPUT_LAYOUT if row[0] == name)
        assert line.startswith(f"specs/{spec.name}:") and line in message, (what, message)


@pytest.mark.parametrize("spec", ["lorentz_jets", "mace", "nequip", "so3_dipole", "tetris"])  # the ones taking batch
def test_batch_and_num_graphs_are_checked(spec):
    cls = model_class(ROOT / "specs" / f"{spec}.eq")
    model, sample = sample_for(cls)
    assert "batch" in sample.kwargs
    batch, num_graphs = sample.kwargs["batch"], sample.kwargs["num_graphs"]
    past = batch.clone()
    past[-1] = num_graphs
    for kwargs, error, words in [({"batch": past, "num_graphs": num_graphs}, ValueError, "graph ids must be in"),
                                 ({"batch": batch.double(), "num_graphs": num_graphs}, TypeError, "integer tensor"),
                                 ({"batch": batch[:-1], "num_graphs": num_graphs}, ValueError, "batch: expected [num_nodes]"),
                                 ({"batch": batch, "num_graphs": 0}, TypeError, "num_graphs: expected a positive int")]:
        with pytest.raises(error, match=re.escape(words)):
            model(**sample.inputs, **kwargs)


def test_the_message_names_input_shape_representation_and_spec_line():
    cls = model_class(ROOT / "specs" / "nequip.eq")
    model, sample = sample_for(cls)
    species = sample.inputs["species"][:, :3]
    with pytest.raises(ValueError) as caught:
        model(**{**sample.inputs, "species": species}, **sample.kwargs)
    n = sample.num_nodes
    line = next(row[5] for row in cls.INPUT_LAYOUT if row[0] == "species")
    assert str(caught.value) == f"species: expected [num_nodes, 4] (4x0e @node, {line}), got [{n}, 3]"


def test_check_inputs_false_turns_the_checks_off():
    cls = model_class(ROOT / "specs" / "nequip.eq")
    torch.manual_seed(0)
    model = cls(check_inputs=False).double()
    sample = random_sample(cls, np.random.default_rng(0))
    with pytest.raises(RuntimeError) as caught:  # unchecked: whatever the first layer makes of it
        model(**{**sample.inputs, "species": sample.inputs["species"][:, :3]}, **sample.kwargs)
    assert "species" not in str(caught.value)


def test_checks_hold_under_torch_compile():
    """Traced into the graph (fullgraph): value checks become assertions that raise with the same words, and
    shape checks become guards, so that an input of another shape is traced again and its check raises."""
    torch._dynamo.reset()
    cls = model_class(ROOT / "specs" / "so3_dipole.eq")
    torch.manual_seed(0)
    model = cls()
    sample = random_sample(cls, np.random.default_rng(0), dtype=torch.float32)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    pos = sample.inputs["pos"].clone().requires_grad_(True)
    out = compiled(**{**sample.inputs, "pos": pos}, **sample.kwargs)
    eager = model(**{**sample.inputs, "pos": pos}, **sample.kwargs)
    for key in eager:
        torch.testing.assert_close(out[key], eager[key])
    bad = pos.detach().clone()
    bad[1, 2] = float("inf")
    with pytest.raises(RuntimeError, match="pos: every value must be finite"):
        compiled(**{**sample.inputs, "pos": bad.requires_grad_(True)}, **sample.kwargs)
    narrow = {**sample.inputs, "pos": pos, "z": sample.inputs["z"][:, :3]}
    with pytest.raises(RuntimeError, match=re.escape("z: expected [num_nodes, 4]")):
        compiled(**narrow, **sample.kwargs)
    torch._dynamo.reset()
    with pytest.raises(ValueError, match=re.escape("z: expected [num_nodes, 4]")):  # without fullgraph: eager's error
        torch.compile(model, backend="aot_eager")(**narrow, **sample.kwargs)


def test_the_overhead_benchmark_runs_and_times_the_checks_alone(capsys):
    from eqdsl.benchmarks import input_checks

    input_checks.main(["--specs", "tetris", "deepsets", "--nodes", "8", "--graphs", "2", "--rounds", "2", "--calls", "1"])
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [(r[0], r[1]) for r in rows] == [("tetris", "forward"), ("tetris", "forward+backward"),
                                            ("deepsets", "forward"), ("deepsets", "forward+backward")]
    assert all(float(r[-2]) > 0 for r in rows)  # the checks alone take time: they were found and run
    with pytest.raises(SystemExit, match="no shipped spec named"):
        input_checks.main(["--specs", "../pyproject"])
