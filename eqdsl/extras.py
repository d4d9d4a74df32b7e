"""Which install brings each package that eqdsl imports only when a feature needs it.

A missing one is reported as one line naming what to install, never as a traceback: `eqc` turns the
ModuleNotFoundError of such an import into that line (exit status 2), and the runtimes raise their own
errors with `missing_package`.
"""
from __future__ import annotations

# import name -> (distribution, extra of eqdsl that installs it; None: a dependency of eqdsl itself)
OPTIONAL = {
    "torch": ("torch", None),
    "scipy": ("scipy", None),
    "triton": ("triton", "triton"),
    "matplotlib": ("matplotlib", "plots"),
    "e3nn": ("e3nn", "bench"),
    "cuequivariance": ("cuequivariance-torch", "anchors"),
    "cuequivariance_torch": ("cuequivariance-torch", "anchors"),
    "openequivariance": ("openequivariance", "anchors"),
    "ase": ("ase", "examples"),  # also in `atoms`: eqdsl.ase names that extra itself
    "vesin": ("vesin", "atoms"),
    "tqdm": ("tqdm", "examples"),
    "nequip": ("nequip", "nequip"),
    "mace": ("mace-torch", "mace"),
}


def missing_package(module: str, what: str, extra: str | None = None) -> str | None:
    """One line saying that `what` needs `module` and how to install it; None for a package not listed here.

    `extra` names the extra to install where it is not the one OPTIONAL lists (a package in several)."""
    top = module.partition(".")[0]
    known = OPTIONAL.get(top)
    if known is None:
        return None
    dist, extra = known[0], extra or known[1]
    if extra is None:
        return f"{what} needs `{top}`, a dependency of eqdsl that is not installed: pip install {dist}"
    return f'{what} needs `{top}`, which is not installed: pip install "eqdsl[{extra}]" (or pip install {dist})'
