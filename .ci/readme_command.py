"""Print the command README.md shows under a line starting with the given words (the indented line after it).

.ci/run takes README's two commands from here, so CI runs exactly what a new user is told to run.
"""
import re
import sys
from pathlib import Path


def readme_command(lead: str, readme: str) -> str:
    match = re.search(rf"^{re.escape(lead)}[^\n]*\n\n    (\S[^\n]*)\n", readme, re.M)
    if match is None:
        raise SystemExit(f"README.md: no indented command under a line starting with {lead!r}")
    return match.group(1)


if __name__ == "__main__":
    print(readme_command(sys.argv[1], (Path(__file__).resolve().parent.parent / "README.md").read_text()))
