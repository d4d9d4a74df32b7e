"""Every shipped spec keeps computing the same numbers: outputs recorded once, from fixed seeds, are
compared with what the module generated now computes (float64, reference backend).

The recorded file is evidence that a change of the compiler left the generated models' arithmetic
alone; rewrite it (`python tests/e2e/test_same_numbers.py --write`) only for a change that is meant
to alter a model's numbers, and say so in the commit.
"""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import eqdsl
from eqdsl.testing import random_sample

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.eq"))
RECORDED = ROOT / "tests" / "golden" / "outputs.json"


def outputs_of(spec: Path) -> dict:
    """{model: {output: nested list}} for the spec's models built under torch seed 0 on sample seed 0."""
    compiled = eqdsl.compile_file(spec)
    result = {}
    for name in compiled.model_names:
        cls = compiled.model_class(name)
        torch.manual_seed(0)
        model = cls(backend="reference").double()
        sample = random_sample(cls, np.random.default_rng(0))
        out = model(**sample.inputs, **sample.kwargs)
        result[name] = {k: v.detach().tolist() for k, v in sorted(out.items())}
    return result


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_spec_computes_the_recorded_numbers(spec):
    recorded = json.loads(RECORDED.read_text())
    assert spec.stem in recorded, f"no recorded outputs for {spec.name}: run this file with --write"
    now = outputs_of(spec)
    assert set(now) == set(recorded[spec.stem])
    for model, outputs in recorded[spec.stem].items():
        assert set(now[model]) == set(outputs)
        for name, values in outputs.items():
            np.testing.assert_allclose(np.array(now[model][name]), np.array(values), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{spec.name}: {model}.{name}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/e2e/test_same_numbers.py --write")
    RECORDED.write_text(json.dumps({p.stem: outputs_of(p) for p in SPECS}, indent=0) + "\n")
    print(f"wrote {RECORDED.relative_to(ROOT)}")
