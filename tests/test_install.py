"""Installing ipl_core: ranges in pyproject.toml, the book's lock file, the version check at import, and the
chapters' Colab cell, which installs the library beside the torch already there."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from colab_install import cell_requirements
from packaging.requirements import Requirement

import ipl_core

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
LOCK = ROOT / "requirements" / "lock-py311.txt"
CHAPTERS = sorted(p for p in (ROOT / "book").rglob("*.ipynb")
                  if "_build" not in p.parts and "google.colab" in p.read_text())


def requirements() -> list[Requirement]:
    extras = [r for extra in PROJECT["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in PROJECT["dependencies"] + extras]


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{LOCK.name}: {line!r} is not an exact pin"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_library_takes_ranges_and_the_lock_pins_them() -> None:
    pins = locked()
    for requirement in requirements():
        assert requirement.specifier and "==" not in str(requirement.specifier), f"{requirement} is a pin"
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{requirement.name} is not in {LOCK.name}"
        pin = pins[name]
        assert requirement.specifier.contains(pin), f"{LOCK.name}: {name} {pin} is not {requirement}"
    assert pins["torch"] == "2.13.0", "the book's lock takes the CPU build of torch 2.13.0"
    assert pins["jupyter-book"].startswith("1."), "Jupyter Book must stay on 1.x"


def test_environment_yml_installs_the_lock() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip == [f"-r {LOCK.relative_to(ROOT)}", "-e .[envs,book,cluster,test]"]
    assert "python=3.11" in env["dependencies"]


def test_the_version_check_reads_pyproject() -> None:
    assert PROJECT["requires-python"] == ipl_core.SUPPORTED_PYTHON
    assert f"torch{ipl_core.SUPPORTED_TORCH}" in PROJECT["dependencies"]


@pytest.mark.parametrize(("found", "ok"), [("2.11.0+cu130", True), ("2.13.0+cpu", True), ("2.99", True),
                                           ("2.10.1", False), ("3.0.0a0", False), ("1.13.1", False)])
def test_check_version_bounds(found: str, ok: bool) -> None:
    if ok:
        ipl_core.check_version("torch", found, ipl_core.SUPPORTED_TORCH)
    else:
        with pytest.raises(ImportError, match=rf"^ipl_core needs torch >=2.11,<3; found torch {found}$"):
            ipl_core.check_version("torch", found, ipl_core.SUPPORTED_TORCH)


def test_an_unsupported_torch_stops_at_import() -> None:
    code = "import torch; torch.__version__ = '2.9.1+cu128'; import ipl_core"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ImportError: ipl_core needs torch >=2.11,<3; found torch 2.9.1+cu128")


def test_an_unsupported_python_stops_at_import() -> None:
    older = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10.*/bin/python3.10")))
    if not older:
        pytest.skip("no Python 3.10 interpreter (pyenv) to try the check with")
    result = subprocess.run([older[-1], "-c", "import ipl_core"], cwd=ROOT, capture_output=True, text=True)
    version = subprocess.run([older[-1], "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip()
    assert result.stderr.strip().splitlines()[-1] == (
        f"ImportError: ipl_core needs Python >=3.11; found Python {version}")


def test_every_colab_cell_is_one_command_with_its_extras() -> None:
    assert len(CHAPTERS) >= 16
    for chapter in CHAPTERS:
        library, torch = cell_requirements(chapter)
        assert torch == "{torch_pin}", chapter
        sources = ["".join(c["source"]) for c in json.loads(chapter.read_text())["cells"]]
        assert any('torch_pin = f"torch=={torch.__version__}"' in s for s in sources), chapter
        extras = Requirement(library.split(" @ ")[0]).extras
        assert "book" in extras and extras <= set(PROJECT["optional-dependencies"]), chapter
    with pytest.raises(ValueError, match="no Colab install cell"):
        cell_requirements(ROOT / "book" / "experiments" / "ipl-locomotion.ipynb")


def test_the_colab_cell_keeps_the_installed_torch() -> None:
    """pip's dry run of the cell's command, the checkout in place of the git repository: torch stays. The
    same command with another torch in the pin (as if the machine had torch 2.12.0) would replace it, and
    the check says so."""
    script = [sys.executable, str(ROOT / "tests" / "colab_install.py"), str(ROOT / "book/online/sac.ipynb"),
              "--dry-run"]
    kept = subprocess.run(script, capture_output=True, text=True)
    assert kept.returncode == 0, kept.stderr
    assert "keeps torch" in kept.stdout
    replaced = subprocess.run([*script, "--torch-version", "2.12.0"], capture_output=True, text=True)
    assert replaced.returncode == 1
    assert "replaces torch" in replaced.stderr and "by 2.12.0" in replaced.stderr
