"""Shared test helpers: paths of the repository and its shipped specs."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.eq"))


@pytest.fixture
def repo_root(monkeypatch):
    monkeypatch.chdir(ROOT)
    return ROOT


def pytest_configure(config):
    """Solved bases go to a per-run temporary cache (inherited by subprocesses), never ~/.cache."""
    import os
    import tempfile
    if "EQDSL_CACHE" not in os.environ:
        os.environ["EQDSL_CACHE"] = tempfile.mkdtemp(prefix="eqdsl-test-bases-")
