"""The README tells the truth: its spec example compiles, and CI runs its test command."""
import re
import subprocess
import sys
from pathlib import Path

import eqdsl

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_spec_example_compiles_and_is_equivariant():
    block = next(b for b in re.findall(r"```\n(.*?)```", README, re.S) if b.lstrip().startswith("# specs/nequip.eq"))
    compiled = eqdsl.compile_file("readme_example.eq", text=block)
    from eqdsl.testing import assert_equivariant
    assert_equivariant(compiled.model_class()().double(), trials=1)


def _ci_command(lead: str) -> str:
    """What .ci/run runs for a README command: it reads them with .ci/readme_command.py."""
    proc = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_command.py"), lead],
                          capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def test_ci_runs_exactly_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"Run the tests:\n\n    (.+)\n", README).group(1) == _ci_command("Run the tests")
    main_command = re.search(r"Run the main job[^\n]*\n\n    (.+)\n", README).group(1)
    assert main_command == _ci_command("Run the main job")
    for lead in ("Run the main job", "Run the tests"):
        assert f'readme_command.py "{lead}"' in ci
    assert "python -m venv" in ci  # in a virtualenv made from nothing


def test_readme_command_lookup_fails_on_a_missing_heading():
    proc = subprocess.run([sys.executable, str(ROOT / ".ci" / "readme_command.py"), "No such heading"],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "no indented command" in proc.stderr


def test_readme_main_command_uses_shipped_spec():
    main_command = _ci_command("Run the main job")
    for spec in re.findall(r"specs/\w+\.eq", main_command):
        assert (ROOT / spec).is_file()
