"""The fragmenter and the preference-dataset builder: segments stay inside episodes, labels follow returns."""

from __future__ import annotations

import numpy as np
import pytest

from ipl_core.data import (
    DataFormatError,
    OfflineDataset,
    episode_returns,
    gather_segments,
    make_preference_dataset,
    valid_segment_starts,
)
from ipl_core.data.segments import check_segments
from ipl_core.teachers import TEACHERS


def episodes_dataset(lengths: list[int], timeout_last: bool = True, seed: int = 0) -> OfflineDataset:
    """Episodes of the given lengths; the first ends in a terminal, the others in time-outs."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    terminals = np.zeros(n, dtype=bool)
    timeouts = np.zeros(n, dtype=bool)
    ends = np.cumsum(lengths) - 1
    terminals[ends[0]] = True
    timeouts[ends[1:]] = timeout_last
    obs = rng.normal(size=(n, 2)).astype(np.float32)
    return OfflineDataset(obs, rng.normal(size=(n, 1)).astype(np.float32), obs + 1,
                          rng.normal(size=n).astype(np.float32), terminals, timeouts)


def brute_force_starts(dataset: OfflineDataset, length: int) -> list[int]:
    ends = dataset.episode_ends()
    return [t for t in range(len(dataset) - length + 1) if not ends[t:t + length - 1].any()]


@pytest.mark.parametrize("length", [1, 2, 5, 7, 8, 20])
def test_valid_starts_match_brute_force(length: int) -> None:
    dataset = episodes_dataset([7, 3, 12, 5])
    assert valid_segment_starts(dataset, length).tolist() == brute_force_starts(dataset, length)


def test_check_segments_flags_crossing_and_rejects_past_end() -> None:
    dataset = episodes_dataset([7, 3, 12, 5])
    crossing = check_segments(dataset, np.array([0, 3, 10, 20]), 5, "idx")
    assert crossing.tolist() == [False, True, False, True]
    past_end = r"start index 25 .* runs past the dataset; expected 0 <= start <= 22"
    with pytest.raises(ValueError, match=past_end):
        check_segments(dataset, np.array([0, 25]), 5, "idx")
    with pytest.raises(ValueError, match=r"integer start indices"):
        check_segments(dataset, np.array([0.5]), 5, "idx")


def test_episode_returns_by_hand() -> None:
    dataset = episodes_dataset([2, 3])
    returns, lengths = episode_returns(dataset)
    np.testing.assert_allclose(returns, [dataset.rewards[:2].sum(), dataset.rewards[2:].sum()], rtol=1e-6)
    assert lengths.tolist() == [2, 3]


def test_make_preference_dataset_segments_inside_episodes_and_oracle_labels() -> None:
    dataset = episodes_dataset([30, 25, 40, 12])
    length = 10
    prefs = make_preference_dataset(dataset, 300, length, TEACHERS["oracle"], np.random.default_rng(0))
    assert len(prefs) == 300 and prefs.obs_1.shape == (300, length, 2)
    lookup = {row.tobytes(): i for i, row in enumerate(dataset.observations)}
    valid = set(brute_force_starts(dataset, length))
    for obs in (prefs.obs_1, prefs.obs_2):
        for segment in obs:
            start = lookup[segment[0].tobytes()]
            assert start in valid
            np.testing.assert_array_equal(segment, dataset.observations[start:start + length])
    r1, r2 = prefs.reward_1.sum(axis=1), prefs.reward_2.sum(axis=1)
    np.testing.assert_array_equal(prefs.label[r1 > r2], 1.0)
    np.testing.assert_array_equal(prefs.label[r1 < r2], 0.0)


def test_make_preference_dataset_is_reproducible_and_drops_skipped() -> None:
    dataset = episodes_dataset([30, 25, 40, 12])
    a = make_preference_dataset(dataset, 50, 5, TEACHERS["noisy"], np.random.default_rng(3))
    b = make_preference_dataset(dataset, 50, 5, TEACHERS["noisy"], np.random.default_rng(3))
    np.testing.assert_array_equal(a.obs_1, b.obs_1)
    np.testing.assert_array_equal(a.label, b.label)
    skipped = make_preference_dataset(dataset, 400, 5, TEACHERS["skip"], np.random.default_rng(3), scale=20.0)
    best = np.maximum(skipped.reward_1.sum(axis=1), skipped.reward_2.sum(axis=1))
    assert len(skipped) < 400 and (best > 2.0).all()


def test_no_segment_fits() -> None:
    with pytest.raises(ValueError, match=r"no segment of 50 steps fits"):
        make_preference_dataset(episodes_dataset([10, 10]),
                                5, 50, TEACHERS["oracle"], np.random.default_rng(0))


def test_gather_segments_checks_its_starts() -> None:
    dataset = episodes_dataset([7, 3, 12, 5])
    segments = gather_segments(dataset, np.array([0, 10]), 5)
    np.testing.assert_array_equal(segments["obs"][1], dataset.observations[10:15])
    with pytest.raises(DataFormatError, match=r"idx: start index 25 .* runs past the dataset"):
        gather_segments(dataset, np.array([0, 25]), 5, "idx")
    with pytest.raises(DataFormatError, match=r"idx: the segment at start index 3 \(entry 1, 5 steps\)"):
        gather_segments(dataset, np.array([0, 3, 20]), 5, "idx")
    with pytest.raises(DataFormatError, match=r"segment length 0"):
        gather_segments(dataset, np.array([0]), 0)
    with pytest.raises(DataFormatError, match=r"start index 9223372036854775807"):
        gather_segments(dataset, np.array([np.iinfo(np.int64).max]), 5)
