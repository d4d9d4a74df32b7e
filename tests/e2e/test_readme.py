"""The README tells the truth: its spec example compiles, and CI runs its test command."""
import re
from pathlib import Path

import eqdsl

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_readme_spec_example_compiles_and_is_equivariant():
    block = next(b for b in re.findall(r"```\n(.*?)```", README, re.S) if b.lstrip().startswith("# specs/nequip.eq"))
    compiled = eqdsl.compile_file("readme_example.eq", text=block)
    from eqdsl.testing import assert_equivariant
    assert_equivariant(compiled.model_class()().double(), trials=1)


def test_ci_runs_the_readme_test_command():
    test_command = re.search(r"Run the tests:\n\n    (.+)\n", README).group(1)
    runner = test_command.split("&&")[-1].strip()
    assert runner in (ROOT / ".ci" / "run").read_text()


def test_readme_main_command_uses_shipped_spec():
    main_command = re.search(r"PyTorch:\n\n    (.+)\n", README).group(1)
    for spec in re.findall(r"specs/\w+\.eq", main_command):
        assert (ROOT / spec).is_file()
