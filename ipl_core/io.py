"""Files the library writes: atomically, and with the record of the run that made them.

:func:`atomic_write` (and its JSON and parquet forms) is how the trainer, the data store, policies and the
command line write files. :func:`save_study` writes a study's results as data under
``results/<study>/<profile>/{run.json, <table>.parquet, ...}``, ``run.json`` being the :class:`RunInfo`
of the run that made them; :func:`ipl_core.experiments.results.load_study` reads them back for the book.
Taught in the appendix "Running the experiments at scale".
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch

PROFILES = ("smoke", "cpu", "full")
"""Run profiles from smallest to largest, which every study defines; the book shows the largest one that
has results."""
EXTRA_PROFILES = ("paper-cpu",)
"""Profiles that only some studies define and that a page reads only by name: ``paper-cpu`` runs a few
cells of the ``full`` profile, at its settings, on CPU cores (a paper's result at the paper's scale)."""
ALL_PROFILES = PROFILES + EXTRA_PROFILES

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository the package runs from (``data/``, ``results/`` and ``book/`` lie under it)."""
RESULTS_DIR = REPO_ROOT / "results"


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A crash leaves either the old file or the new one, never a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n"))


def write_table(path: str | Path, table: pd.DataFrame) -> Path:
    """Write a tidy table as parquet, atomically."""
    return atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))


def git_commit(repo: Path = REPO_ROOT) -> str:
    """The commit the code ran at, with ``+dirty`` when the work tree had changes; ``unknown`` outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def has_change(commit: str, path: str, text: str | None = None, repo: Path = REPO_ROOT) -> bool | None:
    """Whether ``commit`` descends from the first commit that added ``path`` (with ``text``: that first put
    ``text`` into it), i.e. whether code of that commit has the change. ``commit`` may be a run record's
    ``commit``: several commits joined by ``;`` (a run whose cells ran at several), each perhaps ending in
    ``+dirty``; it has the change only if every one has it. None where the history cannot tell (no git, a
    commit it does not hold, an empty ``commit``)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)

    commits = [c.removesuffix("+dirty") for c in commit.split(";") if c]
    try:
        search = ["-S", text] if text is not None else ["--diff-filter=A"]
        first = git("log", "--reverse", "--format=%H", *search, "--", path).stdout.split()
        unknown = any(git("cat-file", "-e", f"{c}^{{commit}}").returncode for c in commits)
        if not first or not commits or unknown:
            return None
        return all(git("merge-base", "--is-ancestor", first[0], c).returncode == 0 for c in commits)
    except OSError:
        return None


def device_description(device: str = "cpu") -> str:
    """A human-readable name of the device a run used, e.g. ``cpu (2 cores, x86_64)``."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({os.cpu_count()} cores, {platform.machine()})"


@dataclass(frozen=True)
class RunInfo:
    """The record of the run that produced a study's results."""

    study: str
    """Name of the experiment notebook, e.g. ``bradley-terry``."""
    profile: str
    """One of :data:`ALL_PROFILES`."""
    seeds: tuple[int, ...]
    """Seeds the run used."""
    steps: int | None
    """Training steps per seed, or None where a study has no steps (a closed-form fit)."""
    device: str = field(default_factory=device_description)
    """Where it ran."""
    commit: str = field(default_factory=git_commit)
    """The code version."""
    finished: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    """When it finished (UTC)."""
    wall_time_s: float = float("nan")
    """Wall-clock seconds the run took."""
    torch_version: str = torch.__version__
    """The torch it ran with."""

    def describe(self) -> str:
        """One sentence for the book: which run made these numbers, with every commit its cells ran at in
        full, each marked "+dirty" when the work tree had uncommitted changes."""
        steps = f", {self.steps} steps per seed" if self.steps else ""
        commits = self.commits
        code = f"commit {commits[0]}" if len(commits) == 1 else f"commits {', '.join(commits)}"
        return (f"profile {self.profile}, seeds {list(self.seeds)}{steps}, on {self.device}, {code}, "
                f"{self.wall_time_s:.0f} s of compute")

    @property
    def commits(self) -> list[str]:
        """Every commit the run's cells ran at (``commit`` joins them with ";")."""
        return self.commit.split(";")


def save_study(
    study: str, profile: str, tables: dict[str, pd.DataFrame], info: RunInfo, root: str | Path = RESULTS_DIR
) -> Path:
    """Write each table, then ``run.json`` (which marks completion), under ``root/study/profile``."""
    if profile not in ALL_PROFILES:
        raise ValueError(f"profile must be one of {ALL_PROFILES}, got {profile!r}")
    out = Path(root) / study / profile
    for name, table in tables.items():
        write_table(out / f"{name}.parquet", table)
    write_json(out / "run.json", asdict(info))
    return out
