"""Run a chapter's Colab install cell where a torch is already installed, and check that torch stays.

    python tests/colab_install.py book/online/sac.ipynb            # installs (make test-py312)
    python tests/colab_install.py book/online/sac.ipynb --dry-run  # asks pip (tests/test_install.py)

The cell installs ``ipl_core`` from the book's git repository with ``"{torch_pin}"``, IPython's expansion of
``torch_pin = f"torch=={torch.__version__}"``: the torch that is already there. Here the repository is this
checkout. Exits 1, naming the versions, when pip installs
or would install another torch.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = "git+https://github.com/ipl-book/ipl-book"


def cell_requirements(chapter: Path) -> list[str]:
    """The requirements of the chapter's ``%pip install`` line, as pip receives them (options dropped)."""
    for cell in json.loads(chapter.read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "google.colab" in source:
            line = re.search(r"^\s*%pip install (.*)$", source, re.MULTILINE)
            if line is None:
                break
            return [arg for arg in shlex.split(line.group(1)) if not arg.startswith("-")]
    raise ValueError(f"{chapter}: no Colab install cell with a '%pip install' line")


def rendered(requirements: list[str], torch_version: str, checkout: Path) -> list[str]:
    """IPython's ``{torch_pin}`` filled in for ``torch_version``; the git repository is ``checkout``."""
    pin, repository = f"torch=={torch_version}", checkout.resolve().as_uri()
    return [r.replace("{torch_pin}", pin).replace(REPOSITORY, repository) for r in requirements]


def installed_torch() -> str:
    return importlib.metadata.version("torch")


def would_install(requirements: list[str]) -> dict[str, str]:
    """Name -> version of what ``pip install requirements`` would install here, from pip's dry-run report."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--report", str(report)]
        subprocess.run([*pip, *requirements], check=True)
        return {item["metadata"]["name"].lower(): item["metadata"]["version"]
                for item in json.loads(report.read_text())["install"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="only ask pip what it would install")
    parser.add_argument("--torch-version", help="the torch the cell pins (default: the installed one)")
    args = parser.parse_args()
    before = installed_torch()
    requirements = rendered(cell_requirements(args.chapter), args.torch_version or before, ROOT)
    if args.dry_run:
        other = would_install(requirements).get("torch")
    else:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *requirements], check=True)
        other = installed_torch() if installed_torch() != before else None
    if other is not None:
        print(f"error: {args.chapter}'s install cell replaces torch {before} by {other}", file=sys.stderr)
        return 1
    print(f"{args.chapter}'s install cell keeps torch {before}" + (" (dry run)" if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
