"""Golden tests of the diagnostics for the invalid-spec corpus in tests/invalid/.

Every ``tests/invalid/NAME.eq`` is compiled with the CLI exactly as a user would
(``eqc compile tests/invalid/NAME.eq --emit ir`` from the repository root) and its
standard error is compared with ``tests/invalid/NAME.expected``.

* ``EQDSL_UPDATE_GOLDEN=1 python -m pytest tests/e2e/test_golden_diagnostics.py``
  rewrites the goldens; read the diff before committing it.
* File names carry the code they test (``E0203_tp_parity.eq``); multi-error files
  are named ``multi_E0201_E0203_..._what.eq`` and list their codes in the order
  they are reported (sorted by position).  Both are checked, so a golden cannot
  silently drift to another error.
* ``tests/invalid/imports/`` holds files the corpus imports; they are not cases.
* ``E0005_latin1_comment.eq`` is committed as Latin-1 bytes (invalid UTF-8 but no
  NUL, so git still treats it as text); the NUL-byte flavour of E0005 is written
  at run time in ``test_nul_bytes_are_not_a_text_file``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from eqdsl import cli
from eqdsl.codes import CODES
from eqdsl.compiler import check_file
from eqdsl.diagnostics import render_all

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "invalid"
CASES = sorted(p.name for p in CORPUS.glob("*.eq"))
UPDATE = os.environ.get("EQDSL_UPDATE_GOLDEN", "") == "1"
CODE = re.compile(r"E\d{4}")
HEADER = re.compile(r"^error\[(E\d{4})\]: ", re.M)


def _expected_path(name: str) -> Path:
    return CORPUS / (name[: -len(".eq")] + ".expected")


def _codes_in_name(name: str) -> list[str]:
    return CODE.findall(name)


def _compile(name: str, monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.chdir(REPO)
    capsys.readouterr()
    rc = cli.main(["compile", f"tests/invalid/{name}", "--emit", "ir"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_corpus_is_not_empty():
    assert len(CASES) >= len(CODES)


def test_every_code_has_a_case():
    covered = {code for name in CASES for code in _codes_in_name(name)}
    missing = sorted(set(CODES) - covered)
    assert not missing, f"no invalid spec in tests/invalid/ for {missing}"


def test_names_use_known_codes():
    for name in CASES:
        codes = _codes_in_name(name)
        assert codes, f"{name}: corpus files are named after the code(s) they test"
        assert all(c in CODES for c in codes), f"{name}: unknown code in the name"
        if not name.startswith("multi_"):
            assert name.startswith(codes[0] + "_") and len(codes) == 1, name
        else:
            assert len(codes) >= 2, f"{name}: a multi-error case names two codes or more"


def test_no_orphan_goldens():
    cases = {n[: -len(".eq")] for n in CASES}
    orphans = sorted(p.name for p in CORPUS.glob("*.expected") if p.stem not in cases)
    assert not orphans, f"goldens without a spec: {orphans}"


@pytest.mark.parametrize("name", CASES)
def test_golden(name, monkeypatch, capsys):
    rc, out, err = _compile(name, monkeypatch, capsys)
    assert rc == 1, f"{name} compiled without errors"
    assert out == "", "nothing may be written to stdout when compilation fails"
    path = _expected_path(name)
    if UPDATE:
        path.write_bytes(err.encode("utf-8"))
    assert path.exists(), f"missing golden {path.name}: run with EQDSL_UPDATE_GOLDEN=1 and review it"
    expected = path.read_bytes().decode("utf-8")
    assert err == expected


@pytest.mark.parametrize("name", CASES)
def test_golden_names_its_code(name):
    path = _expected_path(name)
    if not path.exists():
        pytest.skip("golden not generated yet")
    text = path.read_bytes().decode("utf-8")
    codes = _codes_in_name(name)
    first = text.split("\n", 1)[0]
    assert first.startswith(f"error[{codes[0]}]: "), f"{path.name} starts with `{first}`, not error[{codes[0]}]"
    reported = HEADER.findall(text)
    if name.startswith("multi_"):
        # every error of the file, reported in one run, in source order
        assert reported == codes, f"{path.name} reports {reported}, its name promises {codes}"
    assert text.endswith(f"{len(reported)} error{'s' if len(reported) != 1 else ''} found\n")


def test_nul_bytes_are_not_a_text_file(tmp_path):
    spec = tmp_path / "binary.eq"
    spec.write_bytes(b"group O3\n\x00\x01\x02model Net {\n}\n")
    result = check_file(spec)
    assert [d.code for d in result.diagnostics] == ["E0005"]
    assert "binary.eq" in render_all(result.diagnostics, result.sources)


def test_invalid_utf8_import_is_not_a_text_file(tmp_path):
    (tmp_path / "lib.eq").write_bytes(b"rep R = 8x0e  # \xff\xfe\n")
    main = tmp_path / "main.eq"
    main.write_text('group O3\nimport "lib.eq"\nmodel Net {\n    input x : R\n    output y = x\n}\n')
    result = check_file(main)
    assert [d.code for d in result.diagnostics] == ["E0005"]
    d = result.diagnostics[0]
    assert d.span is not None and d.span.line == 2, "the error points at the import that read the file"
    render_all(result.diagnostics, result.sources)


def test_a_reader_that_stops_early_gets_no_traceback():
    """`eqc explain CODE | head -1`: the closed pipe ends the command quietly (exit 141), not with a traceback."""
    import subprocess
    import sys
    code = ("import os, sys\nfrom eqdsl import cli\n"
            "r, w = os.pipe()\nos.close(r)\nos.dup2(w, sys.stdout.fileno())\n"  # a reader that has gone away
            "sys.exit(cli.main(['explain', 'E0211']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr
