"""Scores over seeds as the field reports them (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice"): the interquartile mean, stratified bootstrap confidence intervals (of a score and
of the difference between two methods), the probability of improvement, performance profiles, the sample
standard deviation, and "n/a" (NaN) wherever fewer than two seeds exist.

The bootstrap is ``scipy.stats.bootstrap``: given one sample of seeds per task, it resamples the seeds of
each task independently, which is the stratified bootstrap of Agarwal et al. (``rliable``'s own
implementation depends on ``arch``, which does not import with pandas 3). Where a paper reports another
statistic, :func:`best_of_mean_curve` computes that one (IPL Table 3: the best point of the seed-averaged
curve), to be shown beside ours and labelled as the paper's. Taught in the appendix "Running the
experiments at scale".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


def _pooled(groups: Sequence[np.ndarray], statistic: str, axis: int = -1) -> np.ndarray:
    """``statistic`` ("iqm" or "mean") of the groups' scores pooled along ``axis``."""
    if statistic not in ("iqm", "mean"):
        raise ValueError(f"statistic must be 'iqm' or 'mean', got {statistic!r}")
    values = np.concatenate(groups, axis=axis)
    return stats.trim_mean(values, 0.25, axis=axis) if statistic == "iqm" else values.mean(axis=axis)


def _bootstrap(samples: list[np.ndarray], function: Callable[..., np.ndarray], confidence: float,
               resamples: int, seed: int) -> Estimate:
    """``function(*samples)`` with a percentile bootstrap interval that resamples each sample on its own;
    NaN (n/a) bounds where a sample has fewer than two seeds."""
    estimate = float(function(*samples))
    seeds = min(s.size for s in samples)
    if seeds < 2:
        return Estimate(estimate, float("nan"), float("nan"), seeds)
    result = stats.bootstrap(samples, function, n_resamples=resamples, confidence_level=confidence,
                             method="percentile", vectorized=True, rng=np.random.default_rng(seed))
    return Estimate(estimate, float(result.confidence_interval.low), float(result.confidence_interval.high),
                    seeds)


def interval(per_task: Sequence[np.ndarray], statistic: str = "iqm", confidence: float = 0.95,
             resamples: int = 2000, seed: int = 0) -> Estimate:
    """``statistic`` ("iqm" or "mean") of the scores of all tasks pooled, with a percentile stratified
    bootstrap interval: each task's seeds (one array per task) are resampled with replacement on their own.
    With fewer than two seeds in some task, the interval is NaN (n/a): one seed has no spread to resample."""
    samples = [np.asarray(s, dtype=float).ravel() for s in per_task]
    if not samples or any(s.size == 0 for s in samples):
        raise ValueError("interval needs at least one score per task")
    _pooled(samples, statistic)  # a clear error for an unknown statistic before any resampling

    def point(*groups: np.ndarray, axis: int = -1) -> np.ndarray:
        return _pooled(groups, statistic, axis)

    return _bootstrap(samples, point, confidence, resamples, seed)


def difference_interval(first: Sequence[np.ndarray], second: Sequence[np.ndarray], statistic: str = "iqm",
                        confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> Estimate:
    """``statistic(first) - statistic(second)`` (each over its tasks pooled, one array of seeds per task, the
    tasks in the same order), with a percentile bootstrap that resamples the seeds of every method and task
    on their own. An interval that excludes 0 is what "one method scores higher" needs; NaN (n/a) where a
    task has fewer than two seeds for either method."""
    first = [np.asarray(s, dtype=float).ravel() for s in first]
    second = [np.asarray(s, dtype=float).ravel() for s in second]
    if len(first) != len(second) or not first:
        raise ValueError(f"difference_interval needs the same tasks for both methods, got {len(first)} and "
                         f"{len(second)} arrays of seeds")
    if any(s.size == 0 for s in first + second):
        raise ValueError("difference_interval needs at least one score per method and task")
    _pooled(first, statistic)  # a clear error for an unknown statistic before any resampling
    tasks = len(first)

    def difference(*groups: np.ndarray, axis: int = -1) -> np.ndarray:
        return _pooled(groups[:tasks], statistic, axis) - _pooled(groups[tasks:], statistic, axis)

    return _bootstrap(first + second, difference, confidence, resamples, seed)


def probability_of_improvement(first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> float:
    """Agarwal et al.'s probability of improvement: the chance that a run of the first method scores higher
    than a run of the second on the same task (ties count one half), averaged over tasks."""
    if len(first) != len(second) or not first:
        raise ValueError("probability_of_improvement needs the same tasks for both methods, got "
                         f"{len(first)} and {len(second)} arrays of seeds")
    chances = []
    for x, y in zip(first, second, strict=True):
        x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
        chances.append(((x[:, None] > y[None]) + 0.5 * (x[:, None] == y[None])).mean())
    return float(np.mean(chances))


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
