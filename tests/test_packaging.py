"""The project's shape: clean parameterised notebooks, a complete toc, ruff, CI wiring (installing:
tests/test_install.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "book").rglob("*.ipynb") if "_build" not in p.parts)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci.splitlines()[-1]
    assert "make test" in readme and "make book" in readme


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_is_clean_and_starts_with_a_smoke_parameters_cell(notebook: Path) -> None:
    nb = json.loads(notebook.read_text())
    code_cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code_cells, "a notebook without code"
    for cell in code_cells:
        assert not cell.get("outputs"), "committed with outputs"
        assert cell.get("execution_count") is None, "committed with execution counts"
    first = code_cells[0]
    assert "parameters" in first.get("metadata", {}).get("tags", []), (
        "first code cell is not tagged parameters"
    )
    assert 'profile = "smoke"' in "".join(first["source"])


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [chapter["file"] for chapter in part["chapters"]]
    return files


def test_toc_entries_exist_once_and_every_chapter_is_listed() -> None:
    files = toc_files()
    for entry in files:
        sources = [ROOT / f"{entry}{ext}" for ext in (".md", ".ipynb") if (ROOT / f"{entry}{ext}").exists()]
        assert len(sources) == 1, f"{entry}: expected exactly one of .md / .ipynb, found {sources}"
    chapters = {str(p.relative_to(ROOT).with_suffix("")) for p in NOTEBOOKS if "experiments" not in p.parts}
    assert chapters <= set(files), f"notebooks missing from _toc.yml: {sorted(chapters - set(files))}"


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(__import__("sys").executable).parent / "ruff")
    result = subprocess.run(
        [ruff, "check", "ipl_core", "tests", "benchmarks", "book"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_library_module_is_in_the_api_reference() -> None:
    api = (ROOT / "book" / "appendix" / "api.md").read_text()
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "ipl_core").rglob("*.py")
        if p.name not in {"__init__.py", "__main__.py"}
    }
    missing = sorted(m for m in modules if f"automodule:: {m}\n" not in api)
    assert not missing, f"book/appendix/api.md has no automodule for {missing}"
