"""One step from runs to tables: collect exactly the cells of a study's grid, summarise over seeds, record
the run.

Writes ``results/<study>/<profile>/runs.parquet`` (every metric row of every cell, with its grid values),
``summary.parquet`` (per configuration and metric: the final score over seeds as mean, sample std,
interquartile mean and bootstrap intervals, n/a below two seeds, and the best point of the seed-averaged
curve, the statistic IPL Table 3 reports) and ``run.json``. Only the cells the grid names (their config ids
and seeds) are read: cells made with other settings are named and left out, and a damaged cell stops the
aggregation, named, before anything is written. :func:`check` compares what is stored with what the cells
on disk give. Taught in the appendix "Running the experiments at scale".
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ipl_core.experiments.intervals import best_of_mean_curve, interval, iqm, sample_std
from ipl_core.experiments.studies import Cell, expand, get_study
from ipl_core.io import RESULTS_DIR, RunInfo, save_study


class CellError(ValueError):
    """Cells of a study that cannot be aggregated, each named with what is wrong."""


def _cell_folder(results_dir: Path, cell: Cell) -> Path:
    return Path(results_dir) / cell.study / cell.profile / cell.relative_dir


def _read_cell(folder: Path, cell: Cell, table: str) -> tuple[dict, pd.DataFrame] | str:
    """The cell's config and table, or what is wrong with them."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"config.json is not readable JSON ({type(error).__name__})"
    if not isinstance(config, dict):
        return "config.json does not hold an object"
    if config.get("config_id") != cell.config_id or config.get("seed") != cell.params["seed"]:
        return (f"config.json names config {config.get('config_id')!r}, seed {config.get('seed')!r}; "
                f"expected {cell.config_id!r}, seed {cell.params['seed']!r}")
    missing = sorted(k for k in ("commit", "device_description", "wall_time_s") if k not in config)
    if missing:
        return f"config.json lacks {missing}"
    try:
        frame = pd.read_parquet(folder / f"{table}.parquet")
    except FileNotFoundError:
        return f"complete cell without {table}.parquet"
    except Exception as error:  # pyarrow raises many types for a damaged file
        return f"{table}.parquet is not readable ({type(error).__name__}: {error})"
    return config, frame


def collect_runs(study: str, profile: str, results_dir: Path = RESULTS_DIR, table: str = "metrics",
                 cells: list[Cell] | None = None) -> pd.DataFrame:
    """The ``<table>.parquet`` (by default ``metrics``) of every complete cell of the grid (``cells``, by
    default ``expand(study, profile)``), with its grid values and config id as extra columns; chapters use
    other tables of the cells (e.g. ``rounds``) the same way. Cells on disk that the grid does not name are
    named in a warning and left out; a damaged cell raises :class:`CellError` naming it."""
    return _collect(study, profile, Path(results_dir), table, cells)[0]


def _collect(study: str, profile: str, results_dir: Path, table: str,
             cells: list[Cell] | None) -> tuple[pd.DataFrame, list[dict]]:
    cells = expand(study, profile) if cells is None else cells
    axes = list(get_study(study).grid[profile])
    base = results_dir / study / profile
    expected = {cell.relative_dir for cell in cells}
    foreign = sorted(str(p.parent.relative_to(base)) for p in base.glob("*/seed=*/config.json")
                     if str(p.parent.relative_to(base)) not in expected)
    if foreign:
        warnings.warn(f"{base}: {len(foreign)} complete cell(s) are not in the {profile} grid of {study!r} "
                      f"(other settings or seeds) and are left out: {foreign[:5]}", stacklevel=3)
    frames, configs, bad = [], [], []
    for cell in cells:
        folder = _cell_folder(results_dir, cell)
        if not (folder / "config.json").is_file():
            continue  # not run yet, or interrupted
        read = _read_cell(folder, cell, table)
        if isinstance(read, str):
            bad.append(f"{folder}: {read}")
            continue
        config, frame = read
        for axis in axes:
            frame[axis] = cell.params[axis]
        frame["config_id"] = cell.config_id
        frames.append(frame)
        configs.append(config)
    if bad:
        raise CellError("cannot aggregate these cells:\n" + "\n".join(bad))
    if not frames:
        raise FileNotFoundError(f"no complete cells of study {study!r} at profile {profile!r} under {base}")
    non_empty = [f for f in frames if not f.empty]  # a cell may log no rows (SAC has no feedback rounds)
    return pd.concat(non_empty or frames, ignore_index=True), configs


def summarize(runs: pd.DataFrame, keys: list[str], metrics: list[str], step: str = "step",
              seed: int = 0) -> pd.DataFrame:
    """Per configuration (``keys``) and metric, over seeds: the final score (each seed's last step) as mean,
    sample std (ddof = 1), interquartile mean, and 95 % bootstrap intervals of the mean and of the IQM
    (NaN, shown as n/a, below two seeds); and the best point of the seed-averaged curve with its step (the
    statistic IPL Table 3 reports, kept beside ours). Without a ``step`` column, best equals final."""
    rows = []
    for config, group in runs.groupby(keys, sort=True) if keys else [((), runs)]:
        config = config if isinstance(config, tuple) else (config,)
        for metric in metrics:
            if step in group:
                last = group.loc[group.groupby("seed")[step].idxmax()]
                best_mean, best_step = best_of_mean_curve(group, step, metric)
            else:
                last = group
                best_mean, best_step = float(group.groupby("seed")[metric].mean().mean()), -1
            finals = last.groupby("seed")[metric].mean().dropna().to_numpy()
            if finals.size == 0:
                continue
            mean, middle = interval([finals], "mean", seed=seed), interval([finals], "iqm", seed=seed)
            rows.append({
                **dict(zip(keys, config, strict=True)),
                "metric": metric,
                "final_mean": mean.point,
                "final_std": sample_std(finals),
                "final_ci_low": mean.low,
                "final_ci_high": mean.high,
                "final_iqm": iqm(finals),
                "final_iqm_low": middle.low,
                "final_iqm_high": middle.high,
                "best_mean": best_mean,
                "best_step": best_step,
                "num_seeds": len(finals),
            })
    return pd.DataFrame(rows)


def _finished(configs: list[dict], stored: Path) -> str:
    """When the run finished: the last cell's time, else (cells made before cells recorded it) the time the
    stored run.json gives, so that re-summarising old cells does not date them anew."""
    times = [c["finished"] for c in configs if "finished" in c]
    if times:
        return max(times)
    try:
        return json.loads(stored.read_text())["finished"]
    except (OSError, json.JSONDecodeError, KeyError):
        return datetime.now(UTC).isoformat(timespec="seconds")


def _run_info(study: str, profile: str, runs: pd.DataFrame, configs: list[dict], stored: Path) -> RunInfo:
    settings = get_study(study).settings[profile]
    steps = settings.get("steps", settings.get("total_steps"))
    if steps is None and "step" in runs:  # left to the task's TOML (online studies at `full`): the runs say
        steps = int(runs["step"].max())
    return RunInfo(
        study=study,
        profile=profile,
        seeds=tuple(sorted(runs["seed"].unique().tolist())),
        steps=steps,
        device="; ".join(sorted({c["device_description"] for c in configs})),
        commit=";".join(sorted({part for c in configs for part in c["commit"].split(";")})),
        wall_time_s=float(sum(c["wall_time_s"] for c in configs)),
        finished=_finished(configs, stored),
    )


def _tables(study: str, profile: str, results_dir: Path,
            cells: list[Cell] | None) -> tuple[dict[str, pd.DataFrame], RunInfo]:
    spec = get_study(study)
    runs, configs = _collect(study, profile, results_dir, "metrics", cells)
    axes = [a for a in spec.grid[profile] if a != "seed"]
    metrics = list(spec.score_metrics)
    missing = [m for m in metrics if m not in runs]
    if missing:
        raise KeyError(f"study {study!r}: metrics {missing} are not in the runs' metrics.parquet "
                       f"(columns: {sorted(runs.columns)})")
    summary = summarize(runs, list(spec.summary_keys or axes), metrics)
    stored = results_dir / study / profile / "run.json"
    return {"runs": runs, "summary": summary}, _run_info(study, profile, runs, configs, stored)


def aggregate(study: str, profile: str, results_dir: Path = RESULTS_DIR,
              cells: list[Cell] | None = None) -> Path:
    """Collect, summarise and record the grid's cells of a study at a profile; return the folder written.
    Nothing is written when a cell is damaged."""
    tables, info = _tables(study, profile, Path(results_dir), cells)
    return save_study(study, profile, tables, info, root=results_dir)


def check(study: str, profile: str, results_dir: Path = RESULTS_DIR,
          cells: list[Cell] | None = None) -> list[str]:
    """What disagrees between the stored ``run.json`` / ``summary.parquet`` and what the grid's cells on
    disk give: an empty list when they agree."""
    base = Path(results_dir) / study / profile
    if not (base / "run.json").is_file():
        return [f"{base}: no run.json (the study was never aggregated)"]
    tables, info = _tables(study, profile, Path(results_dir), cells)
    stored = json.loads((base / "run.json").read_text())
    problems = [f"run.json: {key} is {stored.get(key)!r}, the cells give {value!r}"
                for key, value in asdict(info).items()
                if key not in ("finished", "torch_version") and _differs(stored.get(key), value)]
    try:
        summary = pd.read_parquet(base / "summary.parquet")
    except Exception as error:  # a missing or damaged file is a finding
        return [*problems, f"summary.parquet is not readable ({type(error).__name__})"]
    fresh = tables["summary"]
    if list(summary.columns) != list(fresh.columns) or len(summary) != len(fresh):
        problems.append(f"summary.parquet has columns {list(summary.columns)} and {len(summary)} rows; the "
                        f"cells give {list(fresh.columns)} and {len(fresh)} rows")
    else:
        numeric = fresh.select_dtypes("number").columns
        close = np.isclose(summary[numeric].to_numpy(float), fresh[numeric].to_numpy(float), equal_nan=True)
        if not close.all() or not summary.drop(columns=numeric).equals(fresh.drop(columns=numeric)):
            rows = int((~close).any(axis=1).sum())
            problems.append(f"summary.parquet differs from the cells in {rows} row(s)")
    return problems


def _differs(stored: object, fresh: object) -> bool:
    if isinstance(fresh, float) and isinstance(stored, int | float):
        return not np.isclose(stored, fresh)
    if isinstance(fresh, tuple):
        return list(fresh) != stored
    return stored != fresh
