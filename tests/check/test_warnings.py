"""Warnings: the spec compiles, and the CLI and the API say what is probably not meant (W0801)."""
import warnings

import pytest

import eqdsl
from eqdsl import cli
from eqdsl.api import EqdslWarning
from eqdsl.compiler import check_file

QUATERNION = """group O3
model Net {{
    input h : 8x0e @graph
    output {name} : {rep} @graph = linear(h) -> {rep}
}}
"""


@pytest.mark.parametrize("name,rep", [("quaternion", "4x0e"), ("euler_angles", "3x0e"), ("pose", "4x0e"),
                                      ("target_rot", "3x0e")])
def test_rotation_like_outputs_warn(tmp_path, name, rep):
    path = tmp_path / "q.eq"
    path.write_text(QUATERNION.format(name=name, rep=rep))
    result = check_file(path)
    assert result.ok and [(d.code, d.severity) for d in result.diagnostics] == [("W0801", "warning")]
    with pytest.warns(EqdslWarning, match="W0801"):
        eqdsl.compile_file(path)


@pytest.mark.parametrize("name,rep", [("composed", "4x0e"), ("quaternion", "5x0e"), ("energy", "3x0e")])
def test_other_outputs_do_not_warn(tmp_path, name, rep):
    path = tmp_path / "q.eq"
    path.write_text(QUATERNION.format(name=name, rep=rep))
    assert check_file(path).diagnostics == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eqdsl.compile_file(path)


def test_the_cli_prints_the_warning_and_succeeds(tmp_path, capsys):
    path = tmp_path / "q.eq"
    path.write_text(QUATERNION.format(name="quaternion", rep="4x0e"))
    assert cli.main(["compile", str(path), "-o", str(tmp_path / "q.py")]) == 0
    err = capsys.readouterr().err
    assert "warning[W0801]: output `quaternion` looks like a rotation given as a quaternion" in err
    assert "invariant scalars cannot turn with the input" in err and "1 warning" in err
    assert (tmp_path / "q.py").exists()
    assert cli.main(["explain", "W0801"]) == 0
    assert "discontinuous" in capsys.readouterr().out
