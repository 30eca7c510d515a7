"""The chain problem of the Bradley-Terry chapter."""

from __future__ import annotations

import numpy as np
import pytest

from ipl_core.toy import chain_preferences, chain_reward, random_walk_segments, visit_counts


def test_random_walks_stay_on_the_chain_and_move_at_most_one_state() -> None:
    walks = random_walk_segments(6, 500, 8, np.random.default_rng(0))
    assert walks.shape == (500, 8)
    assert walks.min() >= 0 and walks.max() <= 5
    assert np.abs(np.diff(walks, axis=1)).max() <= 1


def test_visit_counts_count_each_visit() -> None:
    counts = visit_counts(np.array([[0, 1, 1], [2, 2, 2]]), 3)
    assert counts.tolist() == [[1, 2, 0], [0, 0, 3]]


def test_labels_prefer_the_higher_return_more_often() -> None:
    reward = chain_reward(10)
    prefs = chain_preferences(reward, 4000, 5, np.random.default_rng(1))
    better_first = prefs.counts_1 @ reward > prefs.counts_2 @ reward + 1.0
    assert prefs.label[better_first].mean() > 0.75
    assert set(np.unique(prefs.label)) <= {0.0, 1.0}


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="num_states"):
        chain_reward(1)
    with pytest.raises(ValueError, match="positive"):
        random_walk_segments(5, 0, 3, np.random.default_rng(0))


# --- PointReach: the continuous task of the offline chapter's "closing the loop" ---------------------


def test_point_reach_moves_clips_and_times_out() -> None:
    from ipl_core.toy import PointReach

    env = PointReach(episode_length=3, speed=0.1)
    obs, _ = env.reset(seed=0)
    again, _ = PointReach(episode_length=3).reset(seed=0)
    np.testing.assert_array_equal(obs, again)
    nxt, reward, terminated, truncated, _ = env.step(np.array([1.0, -1.0]))
    np.testing.assert_allclose(nxt, np.clip(obs + np.array([0.1, -0.1]), -1, 1))
    assert reward == pytest.approx(-np.linalg.norm(nxt))
    assert not terminated and not truncated
    env.step(np.array([5.0, 5.0]))  # clipped to the action box: moves by at most 0.1 per axis
    _, _, _, truncated, _ = env.step(np.zeros(2))
    assert truncated
    env._position = np.array([0.99, -0.99])
    corner, _, _, _, _ = env.step(np.array([1.0, -1.0]))
    np.testing.assert_array_equal(corner, [1.0, -1.0])
    with pytest.raises(ValueError, match="speed"):
        PointReach(speed=0.0)


def test_point_reach_datasets_are_random_actions_labelled_by_return() -> None:
    from ipl_core.toy import point_reach_datasets

    offline, prefs = point_reach_datasets(episodes=5, episode_length=12, num_pairs=50, segment_length=4,
                                          seed=3)
    assert offline.observations.shape == (60, 2) and offline.actions.shape == (60, 2)
    assert np.abs(offline.actions).max() <= 1.0 and offline.actions.std() > 0.4  # uniform on [-1, 1]: 0.58
    assert offline.timeouts.reshape(5, 12)[:, -1].all() and offline.timeouts.sum() == 5
    np.testing.assert_allclose(offline.rewards, -np.linalg.norm(offline.next_observations, axis=1), rtol=1e-6)
    returns_1, returns_2 = prefs.reward_1[:, :-1].sum(1), prefs.reward_2[:, :-1].sum(1)
    expected = np.where(returns_1 > returns_2, 1.0, np.where(returns_1 < returns_2, 0.0, 0.5))
    np.testing.assert_array_equal(prefs.label, expected)
    with pytest.raises(ValueError, match="segment_length"):
        point_reach_datasets(episodes=2, episode_length=5, segment_length=6)
