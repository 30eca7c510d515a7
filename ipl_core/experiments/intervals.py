"""Scores over seeds as the field reports them (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice"): the interquartile mean, stratified bootstrap confidence intervals, performance
profiles, the sample standard deviation, and "n/a" (NaN) wherever fewer than two seeds exist.

The bootstrap is ``scipy.stats.bootstrap``: given one sample of seeds per task, it resamples the seeds of
each task independently, which is the stratified bootstrap of Agarwal et al. (``rliable``'s own
implementation depends on ``arch``, which does not import with pandas 3). Where a paper reports another
statistic, :func:`best_of_mean_curve` computes that one (IPL Table 3: the best point of the seed-averaged
curve), to be shown beside ours and labelled as the paper's. Taught in the appendix "Running the
experiments at scale".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % of all scores (25 % trimmed from each end)."""
    scores = np.asarray(scores, dtype=float).ravel()
    if scores.size == 0:
        raise ValueError("iqm needs at least one score, got none")
    return float(stats.trim_mean(scores, 0.25))


class Estimate(NamedTuple):
    """A point estimate over seeds (and tasks) with its confidence interval."""

    point: float
    low: float
    """Lower end of the interval; NaN where fewer than two seeds exist."""
    high: float
    seeds: int
    """Seeds per task (the smallest count when tasks differ)."""


def interval(per_task: Sequence[np.ndarray], statistic: str = "iqm", confidence: float = 0.95,
             resamples: int = 2000, seed: int = 0) -> Estimate:
    """``statistic`` ("iqm" or "mean") of the scores of all tasks pooled, with a percentile stratified
    bootstrap interval: each task's seeds (one array per task) are resampled with replacement on their own.
    With fewer than two seeds in some task, the interval is NaN (n/a): one seed has no spread to resample."""
    samples = [np.asarray(s, dtype=float).ravel() for s in per_task]
    if not samples or any(s.size == 0 for s in samples):
        raise ValueError("interval needs at least one score per task")
    if statistic not in ("iqm", "mean"):
        raise ValueError(f"statistic must be 'iqm' or 'mean', got {statistic!r}")

    def point(*groups: np.ndarray, axis: int = -1) -> np.ndarray:
        values = np.concatenate(groups, axis=axis)
        return stats.trim_mean(values, 0.25, axis=axis) if statistic == "iqm" else values.mean(axis=axis)

    estimate = float(point(*samples))
    seeds = min(s.size for s in samples)
    if seeds < 2:
        return Estimate(estimate, float("nan"), float("nan"), seeds)
    result = stats.bootstrap(samples, point, n_resamples=resamples, confidence_level=confidence,
                             method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return Estimate(estimate, float(result.confidence_interval.low), float(result.confidence_interval.high),
                    seeds)


def sample_std(scores: np.ndarray) -> float:
    """Standard deviation over seeds with ddof = 1; NaN (n/a) for fewer than two seeds."""
    scores = np.asarray(scores, dtype=float).ravel()
    return float(scores.std(ddof=1)) if scores.size >= 2 else float("nan")


def performance_profile(per_task: Sequence[np.ndarray], thresholds: np.ndarray) -> np.ndarray:
    """The fraction of all runs (seeds x tasks, each task weighted equally) whose score exceeds each
    threshold tau: Agarwal et al.'s performance profile, a curve to compare methods over tasks."""
    thresholds = np.asarray(thresholds, dtype=float)
    return np.mean([(np.asarray(s, dtype=float)[:, None] > thresholds[None]).mean(axis=0) for s in per_task],
                   axis=0)


def best_of_mean_curve(curves: pd.DataFrame, step: str = "step", value: str = "value") -> tuple[float, int]:
    """The paper's statistic of IPL Table 3: average the curves over seeds, then take the best point.
    ``curves`` has one row per (seed, step); returns the best mean and its step."""
    mean = curves.groupby(step)[value].mean()
    return float(mean.max()), int(mean.idxmax())
