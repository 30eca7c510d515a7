"""Reading a study's results as the field reports them (Agarwal et al. 2021): each seed's final score, the
interquartile mean with a stratified bootstrap interval, the interval of the difference between two
methods, and figures that draw every seed.

The chapters of Part IV and Part V read their stored runs through these functions, so that every table,
figure and sentence about a comparison rests on the same statistics. A claim that one method scores higher
needs the interval of the difference to exclude 0; otherwise the page says the runs do not separate them.
Taught in the appendix "Running the experiments at scale".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ipl_core.experiments.intervals import (
    Estimate,
    difference_interval,
    interval,
    performance_profile,
    probability_of_improvement,
)


def count(n: int, noun: str) -> str:
    """``n`` with its noun in the right number: ``count(1, "seed") == "1 seed"``, ``count(5, "seed") ==
    "5 seeds"``."""
    return f"{int(n)} {noun}" if int(n) == 1 else f"{int(n)} {noun}s"


def _ordered(values: Sequence[object]) -> list:
    """Values in their natural order (numbers by size), or by their text when they do not compare."""
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def final_scores(runs: pd.DataFrame, metric: str, keys: Sequence[str], step: str = "step") -> pd.DataFrame:
    """One row per configuration (``keys``) and seed: ``metric`` at the seed's last evaluation, in a column
    ``score``. Without a ``step`` column every row is already final. A key may be NaN where it does not
    apply to a configuration (e.g. lambda for MR)."""
    keys = list(keys)
    missing = [c for c in [*keys, "seed", metric] if c not in runs]
    if missing:
        raise KeyError(f"final_scores: runs have no column(s) {missing}; columns: {list(runs.columns)}")
    rows = runs.dropna(subset=[metric])
    if step in rows:
        rows = rows.loc[rows.groupby([*keys, "seed"], dropna=False)[step].idxmax()]
    finals = rows.groupby([*keys, "seed"], as_index=False, dropna=False)[metric].mean()
    return finals.rename(columns={metric: "score"})


SUCCESS_FLOOR = 0.05
"""A success rate at or below which a MetaWorld run counts as at the floor: one success in 20 episodes."""


def at_floor(finals: pd.DataFrame, floor: float = SUCCESS_FLOOR) -> bool:
    """Whether every run of ``finals`` (a ``score`` column of success rates in [0, 1]) ends at or below
    ``floor``: a difference between such runs compares nothing."""
    if finals.empty:
        raise ValueError("at_floor: no runs to read")
    return bool((finals["score"] <= floor).all())


def estimates(finals: pd.DataFrame, keys: Sequence[str], statistic: str = "iqm",
              confidence: float = 0.95) -> pd.DataFrame:
    """Per configuration (``keys``): the ``statistic`` of the final scores over seeds with its bootstrap
    interval (columns ``point``, ``low``, ``high``, ``seeds``); NaN bounds (n/a) below two seeds."""
    rows = []
    for config, group in finals.groupby(list(keys), sort=True, dropna=False):
        config = config if isinstance(config, tuple) else (config,)
        estimate = interval([group["score"].to_numpy()], statistic, confidence)
        rows.append({**dict(zip(keys, config, strict=True)), **estimate._asdict()})
    return pd.DataFrame(rows)


def describe(estimate: Estimate | pd.Series, scale: float = 1.0, digits: int = 0) -> str:
    """``"62 [48, 75]"`` (the estimate and its interval, times ``scale``), or ``"62 [n/a]"`` below two
    seeds."""
    point, low, high = (scale * estimate[k] for k in ("point", "low", "high")) if isinstance(
        estimate, pd.Series) else (scale * estimate.point, scale * estimate.low, scale * estimate.high)
    if math.isnan(low) or math.isnan(high):
        return f"{point:.{digits}f} [n/a]"
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


MIN_SEEDS = 5
"""Seeds per configuration below which a comparison is not read either way: with two seeds a percentile
bootstrap can only return the extremes of the few possible resamples, an interval too coarse to trust."""


class Comparison(NamedTuple):
    """Two methods over the same tasks: the difference of their IQMs with its interval, and the probability
    that a run of the first scores higher than a run of the second."""

    difference: Estimate
    improvement: float
    tasks: int

    @property
    def separated(self) -> bool:
        """Whether the runs separate the methods: at least :data:`MIN_SEEDS` seeds per configuration and an
        interval of the difference that excludes 0."""
        low, high = self.difference.low, self.difference.high
        return self.difference.seeds >= MIN_SEEDS and (low > 0 or high < 0)

    def verdict(self, first: str, second: str) -> str:
        """One sentence that says what the interval allows, and no more."""
        if self.difference.seeds < MIN_SEEDS:
            return (f"with {count(self.difference.seeds, 'seed')} per configuration, too few for a bootstrap "
                    f"interval to compare {first} with {second}")
        if not self.separated:
            return f"the interval includes 0: these runs do not separate {first} from {second}"
        higher, lower = (first, second) if self.difference.low > 0 else (second, first)
        return f"the interval excludes 0: {higher} scores higher than {lower} in these runs"


def compare(finals: pd.DataFrame, column: str, first: str, second: str, tasks: Sequence[str] = (),
            statistic: str = "iqm") -> Comparison:
    """Compare the final scores of ``first`` and ``second`` (values of ``column``) over the tasks given by
    the columns ``tasks`` (pooled, stratified: each task's seeds are resampled on their own). Only tasks
    both methods ran are used; a clear error when there is none."""
    tasks = list(tasks)
    groups = finals.groupby(tasks, sort=True) if tasks else [((), finals)]
    a, b = [], []
    for _, group in groups:
        x = group.loc[group[column] == first, "score"].to_numpy()
        y = group.loc[group[column] == second, "score"].to_numpy()
        if x.size and y.size:
            a.append(x)
            b.append(y)
    if not a:
        raise ValueError(f"compare: no task has runs of both {column}={first!r} and {column}={second!r}")
    return Comparison(difference_interval(a, b, statistic), probability_of_improvement(a, b), len(a))


def plot_finals(finals: pd.DataFrame, x: str, hue: str | None = None, ax: plt.Axes | None = None,
                scale: float = 1.0, statistic: str = "iqm") -> plt.Axes:
    """Every seed's final score as a dot, and per group the ``statistic`` with its 95 % bootstrap interval
    as a bar with whiskers (no whiskers below two seeds)."""
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    data = finals.assign(score=scale * finals["score"])
    keys = [x] + ([hue] if hue else [])
    table = estimates(data, keys, statistic)
    order = _ordered(data[x].unique())
    hues = _ordered(data[hue].unique()) if hue else [None]
    width = 0.8 / len(hues)
    palette = sns.color_palette(n_colors=len(hues))
    for j, level in enumerate(hues):
        rows = table if level is None else table[table[hue] == level]
        for i, value in enumerate(order):
            row = rows[rows[x] == value]
            if row.empty:
                continue
            row = row.iloc[0]
            centre = i - 0.4 + width * (j + 0.5)
            ax.bar(centre, row.point, width * 0.9, color=palette[j], alpha=0.35,
                   label=str(level) if (level is not None and i == 0) else None)
            if not math.isnan(row.low):
                ax.errorbar(centre, row.point, yerr=[[row.point - row.low], [row.high - row.point]],
                            color=palette[j], capsize=3, lw=1.2)
            seeds = data[(data[x] == value) & ((data[hue] == level) if hue else True)]["score"].to_numpy()
            jitter = np.linspace(-0.25, 0.25, len(seeds)) * width if len(seeds) > 1 else np.zeros(1)
            ax.scatter(centre + jitter, seeds, s=14, color=palette[j], edgecolor="black", linewidth=0.4,
                       zorder=3)
    ax.set_xticks(range(len(order)), [str(v) for v in order])
    ax.set_xlabel(x)
    if hue:
        ax.legend(title=hue, fontsize="small")
    return ax


def plot_curves(runs: pd.DataFrame, y: str, hue: str, col: str | None = None, row: str | None = None,
                step: str = "step", scale: float = 1.0, height: float = 2.6, col_wrap: int | None = None,
                sharey: bool = True, hue_order: Sequence[object] | None = None) -> sns.FacetGrid:
    """Learning curves: a thin line per seed and a thick line for the mean over seeds, per ``hue`` (in
    ``hue_order``, else in natural order); ``sharey=False`` for panels on different scales."""
    data = runs.assign(**{y: scale * runs[y]}).dropna(subset=[y])
    grid = sns.FacetGrid(data, col=col, row=row, hue=hue, height=height, aspect=1.3, col_wrap=col_wrap,
                         sharey=sharey, margin_titles=row is not None,
                         hue_order=list(hue_order or _ordered(data[hue].unique())))

    def draw(*, data: pd.DataFrame, color: str, label: str, ax: plt.Axes | None = None, **_: object) -> None:
        axis = ax or plt.gca()
        for _, seed in data.groupby("seed"):
            seed = seed.sort_values(step)
            axis.plot(seed[step], seed[y], color=color, alpha=0.3, lw=0.8)
        mean = data.groupby(step)[y].mean()
        axis.plot(mean.index, mean.to_numpy(), color=color, lw=2.2, label=label)

    grid.map_dataframe(draw)
    grid.add_legend(title=hue)
    return grid


def plot_performance_profiles(finals: pd.DataFrame, column: str, tasks: Sequence[str],
                              thresholds: np.ndarray, ax: plt.Axes | None = None,
                              scale: float = 1.0) -> plt.Axes:
    """Agarwal et al.'s performance profile of each value of ``column``: the fraction of runs (each task
    weighted equally) whose final score exceeds tau, for every threshold tau."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for method, group in finals.groupby(column, sort=True):
        per_task = [g["score"].to_numpy() * scale for _, g in group.groupby(list(tasks), sort=True)]
        ax.plot(thresholds, performance_profile(per_task, thresholds), label=str(method), lw=2)
    ax.set(xlabel="threshold tau", ylabel="fraction of runs with score > tau", ylim=(-0.02, 1.02))
    ax.legend(title=column, fontsize="small")
    return ax
