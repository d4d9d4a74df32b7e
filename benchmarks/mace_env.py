"""A virtualenv with mace-torch for the comparisons with MACE (tests/interop/test_mace.py).

mace-torch 0.3.16 pins e3nn 0.4.4 while eqdsl's test extra (and nequip 0.19) use e3nn 0.6, so MACE runs
in an environment of its own: made once, at $EQDSL_MACE_ENV or ~/.cache/eqdsl/mace-torch-0.3.16, with
this process's torch version, mace-torch, and eqdsl installed editable from this source tree (so it runs
the code under test).  Scripts run there with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1: e3nn 0.4.4 reads its
own constants with torch.load, which torch >= 2.6 refuses by default.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

MACE = "mace-torch==0.3.16"
# eqdsl's own dependencies besides torch (mace-torch brings numpy, scipy and ase); vesin for eqdsl.atoms
EXTRA = ["lark>=1.1.9", "vesin>=0.5"]


class MaceEnvError(RuntimeError):
    """The environment could not be made (the message holds pip's output)."""


def source_root() -> Path:
    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").exists():  # an installed wheel: nothing to install editable from
        raise MaceEnvError(f"the MACE environment installs eqdsl from its source tree; {root} is not one")
    return root


def env_dir() -> Path:
    return Path(os.environ.get("EQDSL_MACE_ENV") or Path.home() / ".cache" / "eqdsl" / MACE.replace("==", "-"))


def python() -> Path:
    """The environment's interpreter, making or updating the environment first."""
    import torch

    where = env_dir()
    exe = where / "bin" / "python"
    want = {"mace": MACE, "torch": torch.__version__.split("+")[0], "eqdsl": str(source_root()), "extra": EXTRA}
    stamp = where / "eqdsl-env.json"
    if exe.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return exe
    if not exe.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(where)
    _pip(exe, f"torch=={want['torch']}")   # first, so that mace-torch does not pull another build
    _pip(exe, MACE, *EXTRA)
    _pip(exe, "--no-deps", "-e", want["eqdsl"])
    stamp.write_text(json.dumps(want))
    return exe


def _pip(exe: Path, *args: str) -> None:
    done = subprocess.run([str(exe), "-m", "pip", "install", "--quiet", *args], capture_output=True, text=True)
    if done.returncode:
        raise MaceEnvError(f"pip install {' '.join(args)} failed in {exe.parent.parent}:\n{done.stdout}{done.stderr}")


def run_json(*argv, timeout: float = 1800) -> dict:
    """Run the environment's python with `argv` (a script and its arguments, or "-m", a module, ...) and read
    the JSON object its last stdout line holds."""
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", PYTHONWARNINGS="ignore")
    argv = [str(a) for a in argv]
    done = subprocess.run([str(python()), *argv], capture_output=True, text=True, env=env, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        raise MaceEnvError(f"{' '.join(argv)} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(lines[-1])


if __name__ == "__main__":
    print(python())
    sys.exit(0)
