"""The stored runs of the online studies, cell by cell: the settings each run actually used and its own
compute time. Chapters show these beside the numbers a run produced (rather than the task files' values,
which a profile may override). Taught in the chapter "PEBBLE and scripted teachers".
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from ipl_core.experiments.results import StudyResults
from ipl_core.online.config import FIELD_TYPES, OnlineConfig, study_config

SCHEDULE = ("total_steps", "num_seed_steps", "num_unsup_steps", "feedback_budget", "feedback_per_round",
            "feedback_interval", "segment_length", "mrn_interval", "hidden_dim", "batch_size")
"""The settings a chapter's schedule table shows."""


def resolved_config(stored: dict) -> OnlineConfig:
    """The :class:`~ipl_core.online.config.OnlineConfig` a cell ran with, from the parameters its
    ``config.json`` stored, resolved with today's task files."""
    params = {k: v for k, v in stored.items() if k in FIELD_TYPES and k != "task"}
    return study_config(stored["task"], **params)


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
        cfg = resolved_config(stored)
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


def with_budgets_from(feedback: StudyResults, online: StudyResults) -> pd.DataFrame:
    """``feedback``'s ``runs`` table (MRN Fig. 4: a ``feedback_budget`` axis) with the runs of ``online``
    (MRN Fig. 2-3: each task's own budget) at the budgets ``feedback`` did not train, for its tasks and
    algorithms, and a column ``study`` naming where each run comes from.

    A run is borrowed only if its resolved settings are those that ``feedback``'s cells of the same task and
    algorithm resolve to at its budget and seed; any other difference raises ``ValueError`` naming the cell
    and the fields, so the two studies' runs are never mixed across settings.
    """
    runs = feedback.tables["runs"].assign(study=feedback.info.study)
    own: dict[tuple[str, str], dict] = {}
    for _, stored in feedback.cells():
        own.setdefault((stored["task"], stored["algorithm"]), stored)
    trained = set(zip(runs["task"], runs["algorithm"], runs["feedback_budget"], strict=True))
    borrowed = []
    for folder, stored in online.cells():
        key = (stored["task"], stored["algorithm"])
        if key not in own:
            continue
        cfg = resolved_config(stored)
        if (*key, cfg.feedback_budget) in trained:
            continue
        expected = resolved_config({**own[key], "feedback_budget": cfg.feedback_budget, "seed": cfg.seed})
        differ = [name for name, value in dataclasses.asdict(cfg).items() if getattr(expected, name) != value]
        if differ:
            raise ValueError(f"{folder / 'config.json'}: {online.info.study}'s run differs from what "
                             f"{feedback.info.study} runs with feedback_budget = {cfg.feedback_budget} "
                             f"in {differ}")
        borrowed.append((stored["config_id"], cfg.seed, cfg.feedback_budget))
    if not borrowed:
        return runs
    theirs_runs = online.tables["runs"]
    picked = [theirs_runs[(theirs_runs["config_id"] == config_id) & (theirs_runs["seed"] == seed)]
              .assign(feedback_budget=budget) for config_id, seed, budget in borrowed]
    extra = pd.concat(picked, ignore_index=True).assign(study=online.info.study)
    return pd.concat([runs, extra[runs.columns]], ignore_index=True)
