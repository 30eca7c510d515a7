"""ipl_core.experiments.intervals: IQM, stratified bootstrap intervals, profiles and n/a, on
hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ipl_core.experiments.intervals import (
    best_of_mean_curve,
    difference_interval,
    interval,
    iqm,
    performance_profile,
    probability_of_improvement,
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


def test_difference_interval_is_stratified_by_method_and_task() -> None:
    """Constant seeds: every resample gives the same difference, so the interval is the point. With spread,
    a clear gap gives an interval above 0 and two draws of one distribution an interval around 0."""
    flat = difference_interval([np.ones(3), np.full(3, 2.0)], [np.zeros(3), np.ones(3)], "mean")
    assert flat.point == flat.low == flat.high == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    gap = difference_interval([rng.normal(3.0, 1.0, 10)], [rng.normal(0.0, 1.0, 10)])
    assert 0.0 < gap.low <= gap.point <= gap.high
    same = difference_interval([rng.normal(0.0, 1.0, 10)], [rng.normal(0.0, 1.0, 10)])
    assert same.low < 0.0 < same.high
    one_seed = difference_interval([np.array([1.0])], [np.array([0.0, 1.0])])
    assert one_seed.point == pytest.approx(0.5) and math.isnan(one_seed.low) and one_seed.seeds == 1
    with pytest.raises(ValueError, match="same tasks"):
        difference_interval([np.ones(2)], [np.ones(2), np.ones(2)])


def test_probability_of_improvement_counts_pairs_and_ties() -> None:
    # Task 1: 3 > 1, 3 > 2, 1 = 1 (a half), 1 < 2 -> (1 + 1 + 0.5 + 0) / 4; task 2: always higher -> 1.
    value = probability_of_improvement([np.array([3.0, 1.0]), np.array([5.0])],
                                       [np.array([1.0, 2.0]), np.array([4.0, 0.0])])
    assert value == pytest.approx((2.5 / 4 + 1.0) / 2)
