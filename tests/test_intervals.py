"""ipl_core.experiments.intervals: IQM, stratified bootstrap intervals, profiles and n/a, on
hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ipl_core.experiments.intervals import (
    best_of_mean_curve,
    interval,
    iqm,
    performance_profile,
    sample_std,
)


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert iqm(np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])) == pytest.approx(3.5)  # mean of 2..5
    with pytest.raises(ValueError, match="at least one"):
        iqm(np.array([]))


def test_sample_std_uses_ddof_one_and_is_na_for_one_seed() -> None:
    assert sample_std(np.array([1.0, 3.0])) == pytest.approx(math.sqrt(2.0))  # population std would be 1
    assert math.isnan(sample_std(np.array([1.0])))


def test_one_seed_gives_no_interval() -> None:
    estimate = interval([np.array([0.4])], "mean")
    assert estimate.point == 0.4 and math.isnan(estimate.low) and math.isnan(estimate.high)
    assert estimate.seeds == 1


def test_interval_contains_the_point_and_narrows_with_more_seeds() -> None:
    rng = np.random.default_rng(0)
    few = interval([rng.normal(1.0, 1.0, 5)], "mean")
    many = interval([rng.normal(1.0, 1.0, 200)], "mean")
    assert few.low <= few.point <= few.high and many.low <= many.point <= many.high
    assert many.high - many.low < few.high - few.low
    assert many.low < 1.0 < many.high


def test_bootstrap_is_stratified_over_tasks() -> None:
    """Two tasks whose seeds all score 0 and 1: resampling within each task never mixes them, so every
    resample pools exactly half zeros, and the interval of the mean is the single point 0.5 (a bootstrap
    over the pooled runs would spread)."""
    estimate = interval([np.zeros(4), np.ones(4)], "mean")
    assert estimate.point == estimate.low == estimate.high == pytest.approx(0.5)


def test_performance_profile_weighs_tasks_equally() -> None:
    profile = performance_profile([np.array([0.0, 1.0]), np.array([1.0, 1.0, 1.0, 1.0])],
                                  np.array([-0.5, 0.5, 1.5]))
    np.testing.assert_allclose(profile, [1.0, (0.5 + 1.0) / 2, 0.0])


def test_best_of_mean_curve_is_the_papers_statistic() -> None:
    curves = pd.DataFrame({"seed": [0, 0, 1, 1], "step": [1, 2, 1, 2], "value": [0.2, 0.9, 0.6, 0.1]})
    assert best_of_mean_curve(curves) == (pytest.approx(0.5), 2)  # means 0.4 and 0.5
