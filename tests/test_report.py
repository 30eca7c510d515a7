"""ipl_core.experiments.report: final scores, estimates, comparisons and figures on hand-made runs."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from ipl_core.experiments.report import (
    compare,
    describe,
    estimates,
    final_scores,
    plot_curves,
    plot_finals,
    plot_performance_profiles,
)

matplotlib.use("Agg")


def make_runs(scores: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    """Two evaluations per seed: a distractor at step 0 and the given final score at step 10."""
    rows = []
    for (method, task), finals in scores.items():
        for seed, final in enumerate(finals):
            rows.append({"method": method, "task": task, "seed": seed, "step": 0, "success": -1.0})
            rows.append({"method": method, "task": task, "seed": seed, "step": 10, "success": final})
    return pd.DataFrame(rows)


def test_final_scores_take_each_seeds_last_evaluation() -> None:
    runs = make_runs({("ipl", "a"): [0.2, 0.4], ("mr", "a"): [0.1]})
    finals = final_scores(runs, "success", ["method", "task"])
    assert finals.sort_values(["method", "seed"])["score"].tolist() == [0.2, 0.4, 0.1]
    with pytest.raises(KeyError, match="no column"):
        final_scores(runs, "return", ["method"])


def test_estimates_and_their_description() -> None:
    finals = final_scores(make_runs({("ipl", "a"): [0.0, 0.5, 0.5, 1.0], ("mr", "a"): [0.3]}), "success",
                          ["method", "task"])
    table = estimates(finals, ["method"]).set_index("method")
    assert table.loc["ipl", "point"] == pytest.approx(0.5) and table.loc["ipl", "seeds"] == 4
    assert math.isnan(table.loc["mr", "low"])
    assert describe(table.loc["mr"], scale=100) == "30 [n/a]"
    text = describe(table.loc["ipl"], scale=100)
    assert text.startswith("50 [") and "n/a" not in text


def test_compare_says_only_what_the_interval_allows() -> None:
    rng = np.random.default_rng(0)
    clear = {("ipl", t): list(rng.normal(1.0, 0.1, 5)) for t in "ab"}
    clear |= {("mr", t): list(rng.normal(0.0, 0.1, 5)) for t in "ab"}
    result = compare(final_scores(make_runs(clear), "success", ["method", "task"]), "method", "ipl", "mr",
                     ["task"])
    assert result.tasks == 2 and result.separated and result.improvement == 1.0
    assert "ipl scores higher than mr" in result.verdict("ipl", "mr")
    same = {("ipl", "a"): list(rng.normal(0.0, 1.0, 5)), ("mr", "a"): list(rng.normal(0.0, 1.0, 5))}
    result = compare(final_scores(make_runs(same), "success", ["method", "task"]), "method", "ipl", "mr",
                     ["task"])
    assert not result.separated and "do not separate" in result.verdict("ipl", "mr")
    two_seeds = {("ipl", "a"): [1.0, 0.9], ("mr", "a"): [0.0, 0.1]}  # an interval far from 0, but 2 seeds
    result = compare(final_scores(make_runs(two_seeds), "success", ["method", "task"]), "method", "ipl", "mr")
    assert result.difference.low > 0 and not result.separated
    assert "too few" in result.verdict("ipl", "mr")
    one_seed = {("ipl", "a"): [1.0], ("mr", "a"): [0.0]}
    with pytest.raises(ValueError, match="no task has runs of both"):
        compare(final_scores(make_runs(one_seed), "success", ["method", "task"]), "method", "ipl", "bc")


def test_figures_draw_every_seed() -> None:
    runs = make_runs({("ipl", "a"): [0.2, 0.4, 0.6], ("mr", "a"): [0.1, 0.3], ("ipl", "b"): [0.5, 0.7]})
    finals = final_scores(runs, "success", ["method", "task"])
    ax = plot_finals(finals, x="task", hue="method", scale=100)
    dots = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert dots == len(finals) == 7
    grid = plot_curves(runs, "success", hue="method", col="task")
    lines = sum(len(axis.lines) for axis in grid.axes.flat)
    assert lines == 7 + 3  # a thin line per seed and a mean line per method and task
    ax = plot_performance_profiles(finals, "method", ["task"], np.linspace(0, 1, 11))
    assert len(ax.lines) == 2
    matplotlib.pyplot.close("all")


def test_at_floor_reads_every_run() -> None:
    from ipl_core.experiments.report import SUCCESS_FLOOR, at_floor

    assert at_floor(pd.DataFrame({"score": [0.0, SUCCESS_FLOOR]}))
    assert not at_floor(pd.DataFrame({"score": [0.0, 0.0, SUCCESS_FLOOR + 0.05]}))  # one run off the floor
    with pytest.raises(ValueError, match="no runs"):
        at_floor(pd.DataFrame({"score": []}))
