"""One step from runs to tables: collect every cell of a study, summarise over seeds, record the run.

Writes ``results/<study>/<profile>/runs.parquet`` (every metric row of every cell, with its grid values),
``summary.parquet`` (per configuration and metric: final and best score, mean +- std over seeds and a
bootstrap confidence interval) and ``run.json``. Taught in the appendix "Running the experiments at scale".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ipl_core.results import RESULTS_DIR, RunInfo, save_study
from ipl_core.studies import get_study


def collect_runs(
    study: str, profile: str, results_dir: Path = RESULTS_DIR, table: str = "metrics"
) -> pd.DataFrame:
    """Every complete cell's ``<table>.parquet`` (by default ``metrics``) with its configuration as extra
    columns; chapters use other tables of the cells (e.g. ``rounds``) the same way."""
    axes = list(get_study(study).grid[profile])
    frames = []
    for config_file in sorted((Path(results_dir) / study / profile).glob("*/seed=*/config.json")):
        config = json.loads(config_file.read_text())
        metrics_file = config_file.parent / f"{table}.parquet"
        if not metrics_file.is_file():
            raise FileNotFoundError(f"{config_file.parent}: complete cell without {table}.parquet")
        metrics = pd.read_parquet(metrics_file)
        for axis in axes:
            metrics[axis] = config[axis]
        metrics["config_id"] = config["config_id"]
        frames.append(metrics)
    if not frames:
        raise FileNotFoundError(
            f"no complete runs of study {study!r} at profile {profile!r} under {results_dir}"
        )
    non_empty = [f for f in frames if not f.empty]  # a cell may log no rows (SAC has no feedback rounds)
    return pd.concat(non_empty or frames, ignore_index=True)


def bootstrap_ci(
    values: np.ndarray, rng: np.random.Generator, level: float = 0.95, resamples: int = 2000
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values`` (over seeds)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    means = rng.choice(values, size=(resamples, len(values)), replace=True).mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def summarize(
    runs: pd.DataFrame, keys: list[str], metrics: list[str], step: str = "step", seed: int = 0
) -> pd.DataFrame:
    """Per configuration (``keys``) and metric: the final score (last step of each seed) as mean, std and
    bootstrap CI over seeds, and the best score, the maximum over steps of the seed-averaged curve
    (as IPL Table 3 reports it). Without a ``step`` column, best equals final."""
    rng = np.random.default_rng(seed)
    rows = []
    for config, group in runs.groupby(keys, sort=True) if keys else [((), runs)]:
        config = config if isinstance(config, tuple) else (config,)
        for metric in metrics:
            if step in group:
                last = group.loc[group.groupby("seed")[step].idxmax()]
                curve = group.groupby(step)[metric].mean()
                best_mean, best_step = float(curve.max()), int(curve.idxmax())
            else:
                last = group
                best_mean, best_step = float(group.groupby("seed")[metric].mean().mean()), -1
            finals = last.groupby("seed")[metric].mean().to_numpy()
            low, high = bootstrap_ci(finals, rng)
            rows.append(
                {
                    **dict(zip(keys, config, strict=True)),
                    "metric": metric,
                    "final_mean": float(finals.mean()),
                    "final_std": float(finals.std(ddof=0)),
                    "final_ci_low": low,
                    "final_ci_high": high,
                    "best_mean": best_mean,
                    "best_step": best_step,
                    "num_seeds": len(finals),
                }
            )
    return pd.DataFrame(rows)


def aggregate(study: str, profile: str, results_dir: Path = RESULTS_DIR) -> Path:
    """Collect, summarise and record a study's runs at a profile; return the folder written."""
    spec = get_study(study)
    runs = collect_runs(study, profile, results_dir)
    axes = [a for a in spec.grid[profile] if a != "seed"]
    metrics = list(spec.score_metrics)
    missing = [m for m in metrics if m not in runs]
    if missing:
        raise KeyError(
            f"study {study!r}: metrics {missing} are not in the runs' metrics.parquet "
            f"(columns: {sorted(runs.columns)})"
        )
    summary = summarize(runs, list(spec.summary_keys or axes), metrics)
    configs = [
        json.loads(p.read_text()) for p in (Path(results_dir) / study / profile).glob("*/seed=*/config.json")
    ]
    settings = spec.settings[profile]
    steps = settings.get("steps", settings.get("total_steps"))
    if steps is None and "step" in runs:  # left to the task's TOML (online studies at `full`): the runs say
        steps = int(runs["step"].max())
    commits = sorted({c["commit"] for c in configs})
    devices = sorted({c["device_description"] for c in configs})
    info = RunInfo(
        study=study,
        profile=profile,
        seeds=tuple(sorted(runs["seed"].unique().tolist())),
        steps=steps,
        device="; ".join(devices),
        commit=commits[0] if len(commits) == 1 else ";".join(commits),
        wall_time_s=float(sum(c["wall_time_s"] for c in configs)),
    )
    return save_study(study, profile, {"runs": runs, "summary": summary}, info, root=results_dir)
