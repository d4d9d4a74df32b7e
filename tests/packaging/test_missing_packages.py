"""A package that is not installed is one line naming what to install (exit status 2), never a traceback."""
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]


def run_without(module: str, code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter in which importing `module` fails as if it were not installed."""
    hide = f"import sys; sys.modules[{module!r}] = None\n"
    return subprocess.run([sys.executable, "-c", hide + code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def eqc_without(module: str, *argv: str) -> subprocess.CompletedProcess:
    return run_without(module, f"import sys\nfrom eqdsl.cli import main\nsys.exit(main({list(argv)!r}))")


def assert_one_line(proc, *words):
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_eqc_check_without_torch():
    proc = eqc_without("torch", "check", "specs/nequip.eq")
    assert proc.returncode == 2
    assert_one_line(proc, "eqc check", "`torch`", "pip install torch")


def test_eqc_compile_without_scipy_on_a_matrix_group_spec():
    proc = eqc_without("scipy", "compile", "specs/deepsets.eq")
    assert proc.returncode == 2
    assert_one_line(proc, "eqc compile", "`scipy`", "pip install scipy")


def test_compiling_an_o3_spec_needs_neither_torch_nor_scipy():
    proc = run_without("torch", "import sys; sys.modules['scipy'] = None\nfrom eqdsl.cli import main\n"
                                "sys.exit(main(['compile', 'specs/nequip.eq']))")
    assert proc.returncode == 0, proc.stderr
    assert "class NequIP" in proc.stdout


def test_training_example_without_ase_names_the_examples_extra():
    proc = run_without("ase", "import runpy, sys\nsys.argv = ['train_emt.py', '--quick']\n"
                              "runpy.run_path('examples/train_emt.py', run_name='__main__')")
    assert_one_line(proc, "`ase`", 'pip install "eqdsl[examples]"')


def test_eqc_check_on_the_triton_backend_without_triton():
    proc = eqc_without("triton", "check", "specs/nequip.eq", "-D", "layers=2", "--backend", "triton", "--trials", "1")
    assert proc.returncode == 2
    assert_one_line(proc, "eqc check", "`triton`", 'pip install "eqdsl[triton]"')


def test_the_triton_backend_without_triton_raises_its_own_error():
    proc = run_without("triton", "from eqdsl.backends.triton import kernel_cache\n"
                                 "try:\n    kernel_cache.load(None)\n"
                                 "except kernel_cache.TritonUnavailable as err:\n    print(type(err).__name__, err)\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("TritonNotInstalled the Triton backend needs `triton`")


def test_the_calculator_and_neighbour_lists_name_the_atoms_extra():
    """Library calls, not commands: the error is a ModuleNotFoundError whose message is the one line."""
    for module, code in [("ase", "from eqdsl.ase import Calculator"),
                         ("vesin", "from ase.build import bulk\nfrom eqdsl.atoms import neighbour_list\n"
                                   "neighbour_list(bulk('Cu'), 4.0)")]:
        proc = run_without(module, code)
        assert proc.returncode != 0
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("ModuleNotFoundError:") and f"needs `{module}`" in last, proc.stderr
        assert 'pip install "eqdsl[atoms]"' in last, last
