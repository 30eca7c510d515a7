"""``python -m build`` makes a wheel and an sdist with the right metadata, and the wheel installed into a
fresh virtual environment without extras runs the quick-start's core path (the cells of
book/appendix/own_data.ipynb tagged ``core``) and the ``ipl-train`` command.

The fresh environment downloads nothing: its base dependencies (and only those, found from the wheel's own
metadata) are exposed from the test's environment through a folder of links, so a dependency the wheel
forgets, or an extra the core path needs without declaring it, fails the test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
NOTEBOOK = ROOT / "book" / "appendix" / "own_data.ipynb"



def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def base_requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"ipl_core-{PYPROJECT['project']['version']}.dist-info/METADATA").decode()
    return [Requirement(r) for r in Parser().parsestr(text).get_all("Requires-Dist")]


def dependency_closure(requirements: list[Requirement]) -> set[str]:
    """Names of the installed distributions the requirements need: markers evaluated for the extras each
    requirement asks of its distribution (e.g. torch's CUDA build needs ``cuda-toolkit[cudart,...]``)."""
    seen: set[tuple[str, str]] = set()
    todo = [r for r in requirements if r.marker is None or r.marker.evaluate({"extra": ""})]
    while todo:
        requirement = todo.pop()
        dist = metadata.distribution(requirement.name)
        name = dist.metadata["Name"].lower()
        new = {(name, extra) for extra in {"", *requirement.extras}} - seen
        seen |= new
        for text in dist.requires or [] if new else []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": extra}) for _, extra in new):
                todo.append(sub)
    return {name for name, _ in seen}


def link_distributions(names: set[str], folder: Path) -> None:
    """Link the top-level files and folders of each distribution (and its metadata) into ``folder``."""
    folder.mkdir()
    for name in names:
        dist = metadata.distribution(name)
        site = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops - {"__pycache__"}:
            if (site / top).exists() and not (folder / top).exists():
                (folder / top).symlink_to(site / top)


def test_build_makes_wheel_and_sdist_and_the_wheel_runs_the_core_path_without_extras(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "ipl_core", source / "ipl_core", ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", dist, source)
    version = PYPROJECT["project"]["version"]
    wheel, sdist = dist / f"ipl_core-{version}-py3-none-any.whl", dist / f"ipl_core-{version}.tar.gz"
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in dist.iterdir())

    # metadata: the base ranges, the four extras, the console script; every module in both archives
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = Parser().parsestr(archive.read(f"ipl_core-{version}.dist-info/METADATA").decode())
        entry_points = archive.read(f"ipl_core-{version}.dist-info/entry_points.txt").decode()
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "ipl_core").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert set(info.get_all("Provides-Extra")) == {"envs", "book", "cluster", "test"}
    required = {(r.name, r.specifier) for r in base_requirements(wheel) if r.marker is None}
    assert required == {(r.name, r.specifier) for r in map(Requirement, PYPROJECT["project"]["dependencies"])}
    assert "ipl-train = ipl_core.cli:main" in entry_points
    with tarfile.open(sdist) as archive:
        members = {Path(m).relative_to(f"ipl_core-{version}").as_posix() for m in archive.getnames()[1:]}
    assert {"pyproject.toml", "README.md"} | modules <= members

    # a fresh environment with the base dependencies only
    deps = tmp_path / "deps"
    link_distributions(dependency_closure(base_requirements(wheel)), deps)
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip())
    (site / "ipl_core_deps.pth").write_text(f"{deps}\n")
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "TMPDIR": str(tmp_path),
           "PYTHONNOUSERSITE": "1", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    # Python 3.11's venv brings an old setuptools, which would hide the one torch requires
    run(python, "-m", "pip", "uninstall", "--yes", "setuptools", env=env)
    run(python, "-m", "pip", "install", "--no-index", wheel, env=env)
    where = run(python, "-c", "import ipl_core, importlib.util as u; print(ipl_core.__file__); "
                "print(u.find_spec('gymnasium'), u.find_spec('matplotlib'))", env=env, cwd=tmp_path).stdout
    assert where.startswith(str(site / "ipl_core")), where
    assert "None None" in where, "an extra leaked into the fresh environment"

    # the quick-start's core path, as the page runs it
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"]
             if c["cell_type"] == "code" and "core" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) >= 10
    script = tmp_path / "core_path.py"
    script.write_text("\n\n".join("".join(c["source"]) for c in cells) + "\n")
    output = run(python, script, env=env, cwd=tmp_path).stdout
    assert "exit status 0" in output and "exit status 2" in output
    (folder,) = tmp_path.glob("ipl-own-data-*")

    # the console script on the files the page wrote, then its policy in a few lines
    data, labels = folder / "point-mixed-v0.hdf5", folder / "human_label" / "point-mixed-v0"
    command = [venv / "bin" / "ipl-train", "--data", data, "--labels", labels, "--steps", "4", "--out",
               tmp_path / "cli", "--set", "hidden_dim=16", "--set", "subsample_length=8", "--no-progress"]
    assert "seed 0: 4 steps" in run(*command, env=env, cwd=tmp_path).stdout
    acted = run(python, "-c", "from ipl_core import load_policy; import numpy as np; "
                f"print(load_policy({str(tmp_path / 'cli' / 'seed=0')!r}).act(np.zeros(2)).shape)",
                env=env, cwd=tmp_path).stdout
    assert acted.strip() == "(2,)"
    bad = subprocess.run([str(a) for a in [*command, "--query-length", "7"]], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert bad.returncode == 2 and "the name says query length 20; got 7" in bad.stderr, bad.stderr
