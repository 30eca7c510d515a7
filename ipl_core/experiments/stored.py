"""The stored runs of the online studies, cell by cell: the settings each run actually used and its own
compute time. Chapters show these beside the numbers a run produced (rather than the task files' values,
which a profile may override). Taught in the chapter "PEBBLE and scripted teachers".
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from ipl_core.experiments.results import StudyResults
from ipl_core.online.config import FIELD_TYPES, study_config

SCHEDULE = ("total_steps", "num_seed_steps", "num_unsup_steps", "feedback_budget", "feedback_per_round",
            "feedback_interval", "segment_length", "mrn_interval", "hidden_dim", "batch_size")
"""The settings a chapter's schedule table shows."""


def stored_cells(results: StudyResults) -> pd.DataFrame:
    """One row per cell of a stored online run (the cells its ``runs`` table aggregated): every resolved
    :class:`~ipl_core.online.config.OnlineConfig` field and ``wall_time_s``, the cell's own compute time.

    The settings are resolved with today's task files from the parameters the cell stored, so a field that a
    profile leaves at its task-file value shows today's value (the cell's ``commit`` says which code ran).
    """
    rows = []
    for folder, stored in results.cells():
        if "task" not in stored or "wall_time_s" not in stored:
            raise ValueError(f"{folder / 'config.json'}: expected the keys 'task' and 'wall_time_s' of a "
                             "finished online cell")
        params = {k: v for k, v in stored.items() if k in FIELD_TYPES and k != "task"}
        cfg = study_config(stored["task"], **params)
        rows.append({**dataclasses.asdict(cfg), "wall_time_s": float(stored["wall_time_s"]),
                     "commit": stored.get("commit", "")})
    return pd.DataFrame(rows)


def schedule_table(cells: pd.DataFrame, algorithms: tuple[str, ...], task: str) -> pd.DataFrame:
    """The ``SCHEDULE`` settings of ``algorithms`` on ``task`` (one column per algorithm), as run."""
    chosen = cells[cells["algorithm"].isin(algorithms) & (cells["task"] == task)]
    missing = sorted(set(algorithms) - set(chosen["algorithm"]))
    if missing:
        raise ValueError(f"the stored cells have no run of {missing} on task {task!r}")
    return chosen.groupby("algorithm")[list(SCHEDULE)].first().T[list(algorithms)]


def compute_minutes(cells: pd.DataFrame, task: str) -> pd.Series:
    """Mean wall-clock minutes of one run (one seed) of each algorithm on ``task``."""
    return cells[cells["task"] == task].groupby("algorithm")["wall_time_s"].mean() / 60.0
