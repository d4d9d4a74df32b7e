"""Shared test helpers: paths of the repository and its shipped specs."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.eq"))


@pytest.fixture
def repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    return ROOT


@pytest.fixture
def float64_default():
    """torch's default dtype float64 for one test, put back afterwards (other tests build float32 models)."""
    import torch
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def pytest_configure(config):
    """Solved bases go to a per-run temporary cache (inherited by subprocesses), never ~/.cache."""
    import os
    import tempfile
    if "EQDSL_CACHE" not in os.environ:
        os.environ["EQDSL_CACHE"] = tempfile.mkdtemp(prefix="eqdsl-test-bases-")
