"""Loading a study's results for the book: the tables :func:`ipl_core.io.save_study` wrote, with the
:class:`ipl_core.io.RunInfo` of the run that made them, so that a chapter says which profile, seeds, steps
and device made each number. Taught in the appendix "Running the experiments at scale".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ipl_core.io import PROFILES, RESULTS_DIR, RunInfo


@dataclass(frozen=True)
class StudyResults:
    """The tables of one study at one profile, with the run that made them."""

    info: RunInfo
    tables: dict[str, pd.DataFrame]


def load_study(study: str, root: str | Path = RESULTS_DIR, profile: str | None = None) -> StudyResults:
    """Load a study's results: the given profile, or else the largest profile that has completed.

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
            return StudyResults(info, tables)
    raise FileNotFoundError(
        f"no results for study {study!r} (profiles tried: {candidates}) under {base}; "
        f"make them with `python -m ipl_core.experiments.run {study} --profile smoke` (or `make experiments`)"
    )
