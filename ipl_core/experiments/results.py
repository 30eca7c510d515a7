"""Loading a study's results for the book: the tables :func:`ipl_core.io.save_study` wrote, with the
:class:`ipl_core.io.RunInfo` of the run that made them, so that a chapter says which profile, seeds, steps
and device made each number. Taught in the appendix "Running the experiments at scale".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ipl_core.io import PROFILES, RESULTS_DIR, RunInfo

CELL_KEYS = frozenset({"seed", "seeds", "config_id", "run_dir", "commit", "wall_time_s", "device",
                       "device_description", "profile", "study", "finished", "threads"})
"""Keys of a cell's ``config.json`` that say which cell it is and where and when it ran, not what it ran."""


@dataclass(frozen=True)
class StudyResults:
    """The tables of one study at one profile, with the run that made them."""

    info: RunInfo
    tables: dict[str, pd.DataFrame]
    folder: Path
    """``results/<study>/<profile>/``: the cells of the stored run are below it."""

    def cells(self) -> list[tuple[Path, dict]]:
        """Folder and ``config.json`` of every cell the stored run aggregated (its ``runs`` table names
        their config ids and seeds), whatever today's grid of the study says."""
        runs = self.tables.get("runs")
        if runs is None or "config_id" not in runs:
            raise FileNotFoundError(f"{self.folder}: runs.parquet with a config_id column is missing")
        cells = []
        for config_id, seed in sorted(set(zip(runs["config_id"], runs["seed"], strict=True))):
            folder = self.folder / str(config_id) / f"seed={seed}"
            config_file = folder / "config.json"
            if not config_file.is_file():
                raise FileNotFoundError(f"{config_file}: a cell of the stored run has no config.json")
            cells.append((folder, json.loads(config_file.read_text())))
        return cells

    @property
    def settings(self) -> dict[str, object]:
        """The parameters every cell of the stored run shared (steps, evaluation episodes...), read from the
        cells themselves, so that a page shows the settings that made its numbers."""
        configs = [config for _, config in self.cells()]
        shared = {k: v for k, v in configs[0].items() if k not in CELL_KEYS}
        return {k: v for k, v in shared.items() if all(c.get(k) == v for c in configs)}

    def cell_table(self, table: str) -> pd.DataFrame:
        """The ``<table>.parquet`` of every cell of the stored run (e.g. an online run's ``rounds``), with
        the cell's grid values (the columns of ``runs`` that its config names) and config id added."""
        runs = self.tables["runs"]
        frames = []
        for folder, config in self.cells():
            path = folder / f"{table}.parquet"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: a cell of the stored run has no {table!r} table")
            frame = pd.read_parquet(path)
            for key, value in config.items():
                if key in runs.columns and key not in frame.columns:
                    frame[key] = value
            frames.append(frame)
        non_empty = [f for f in frames if not f.empty]
        return pd.concat(non_empty or frames, ignore_index=True)


def load_study(study: str, root: str | Path = RESULTS_DIR, profile: str | None = None,
               having: Mapping[str, object] | None = None) -> StudyResults:
    """Load a study's results: the given profile, or else the largest profile that has completed. With
    ``having`` (e.g. ``{"algorithm": "ipl"}``), only a profile whose runs include those grid values: a
    chapter about a method that only some profiles run reads the largest profile that ran it.

    Raises FileNotFoundError naming the folder and the command that makes the results.
    """
    base = Path(root) / study
    candidates = [profile] if profile else list(reversed(PROFILES))
    for name in candidates:
        run_file = base / name / "run.json"
        if run_file.is_file():
            raw = json.loads(run_file.read_text())
            raw["seeds"] = tuple(raw["seeds"])
            info = RunInfo(**raw)
            tables = {p.stem: pd.read_parquet(p) for p in sorted(run_file.parent.glob("*.parquet"))}
            runs = tables.get("runs", pd.DataFrame())
            if having and not all(key in runs and (runs[key] == value).any()
                                  for key, value in having.items()):
                continue
            return StudyResults(info, tables, run_file.parent)
    wanted = f" with runs of {dict(having)}" if having else ""
    raise FileNotFoundError(
        f"no results for study {study!r}{wanted} (profiles tried: {candidates}) under {base}; "
        f"make them with `python -m ipl_core.experiments.run {study} --profile smoke` (or `make experiments`)"
    )
