"""PEBBLE's pieces: running std, k-NN entropy, ensemble, query selection, schedule, relabelling, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ipl_core.online.members import MemberAdam
from ipl_core.online.pebble import (
    FeedbackSchedule,
    PreferenceData,
    RewardEnsemble,
    RunningMeanStd,
    knn_distance,
    select_queries,
    state_entropy_reward,
    teacher_scale,
    train_reward_ensemble,
    weighted_preference_loss,
)
from ipl_core.online.replay import ReplayBuffer, relabel_members


def test_running_mean_std_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=n) for n in (1, 7, 100, 3)]
    stats = RunningMeanStd()
    for b in batches:
        stats.update(b)
    everything = np.concatenate(batches)
    assert stats.mean == pytest.approx(everything.mean()) and stats.std == pytest.approx(everything.std())
    assert stats.count == everything.size


def test_knn_distance_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    pool = torch.as_tensor(rng.normal(size=(2, 50, 3)))  # two members, each its own pool
    points = pool[:, :10]
    expected = [[np.sort(np.linalg.norm(pool[e].numpy() - p.numpy(), axis=1))[3] for p in points[e]]
                for e in range(2)]  # k = 3
    assert np.allclose(knn_distance(points, pool, k=3, chunk=7).numpy(), expected)
    with pytest.raises(ValueError, match="more than k=3"):
        knn_distance(points, pool[:, :3], k=3)


def test_state_entropy_reward_is_normalised() -> None:
    pool = torch.randn(2, 200, 2) * torch.tensor([1.0, 10.0])[:, None, None]
    stats = [RunningMeanStd(), RunningMeanStd()]
    reward = state_entropy_reward(pool[:, :50], pool, 5, stats)
    # one batch: each member's distances divided by their own std
    assert reward.std(dim=1, unbiased=False).numpy() == pytest.approx([1.0, 1.0], rel=1e-4)


def test_ensemble_mean_and_tanh_range() -> None:
    ensemble = RewardEnsemble(3, 2, size=3, hidden_dims=(8,), members=2)
    obs, act = 100 * torch.randn(2, 4, 5, 3), torch.randn(2, 4, 5, 2)
    per_model = ensemble(obs, act)
    assert per_model.shape == (2, 3, 4, 5) and per_model.abs().max() <= 1
    assert torch.allclose(ensemble.mean_reward(obs, act), per_model.mean(1))


def test_select_queries() -> None:  # one seed's member probabilities (M, N)
    probs = torch.tensor([[0.5, 0.9, 0.1, 0.5], [0.5, 0.1, 0.1, 0.6]])
    rng = np.random.default_rng(0)
    assert list(select_queries("disagreement", probs, 1, rng)) == [1]
    # each member's entropy, averaged (B-Pref): ln 2, H(0.9), H(0.1), (ln 2 + H(0.6)) / 2 = 0.693, 0.325,
    # 0.325, 0.683. The entropy of the mean P would pick {0, 1} instead (mean P of candidate 1 is 0.5).
    assert set(select_queries("entropy", probs, 2, rng)) == {0, 3}
    uniform = select_queries("uniform", probs, 4, rng)
    assert sorted(uniform) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="query selection"):
        select_queries("margin", probs, 1, rng)
    with pytest.raises(ValueError, match="cannot select 5"):
        select_queries("uniform", probs, 5, rng)
    with pytest.raises(ValueError, match="at least 2 ensemble members"):  # the std of one member is NaN
        select_queries("disagreement", probs[:1], 1, rng)


def _rounds(schedule: FeedbackSchedule, steps: int) -> list[tuple[int, int]]:
    given, asked = 0, []
    for step in range(steps):
        size = schedule.round_size(step, given)
        if size:
            asked.append((step, size))
            given += size
    return asked


def test_feedback_schedule() -> None:
    schedule = FeedbackSchedule(first=100, interval=50, per_round=30, budget=70, end=400)
    assert _rounds(schedule, 400) == [(100, 30), (150, 30), (200, 10)]


def test_no_round_is_asked_on_the_last_step_or_after() -> None:
    # a round at step 200 of a 200-step run would train a reward that no update reads
    schedule = FeedbackSchedule(first=100, interval=50, per_round=30, budget=100, end=200)
    assert _rounds(schedule, 300) == [(100, 30), (150, 30)]
    assert _rounds(FeedbackSchedule(100, 50, 30, 100, end=201), 300) == [(100, 30), (150, 30), (200, 30)]


def _filled_buffer(capacity: int, steps: int, episode_length: int) -> ReplayBuffer:
    buffer = ReplayBuffer(2, 1, capacity)
    for t in range(steps):
        episode, step = divmod(t, episode_length)
        buffer.add(np.full(2, t, np.float32), np.full(1, t, np.float32), float(t),
                   np.full(2, t + 1, np.float32), False, episode, step, reward=0.0)
    return buffer


def test_relabel_covers_the_whole_buffer_after_wrapping() -> None:
    buffers = [_filled_buffer(capacity=10, steps=25, episode_length=7) for _ in range(2)]
    buffers[1].obs *= -1
    calls = []

    def reward_fn(obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        calls.append(obs.shape)
        return obs[..., 0] * 2 + act[..., 0]

    relabel_members(buffers, reward_fn, chunk=3)
    assert calls == [(2, 3, 2)] * 3 + [(2, 1, 2)]  # every seed in each batched call
    for buffer in buffers:
        assert buffer.size == 10
        assert np.allclose(buffer.reward, 2 * buffer.obs[:, 0] + buffer.action[:, 0])
    assert sorted(buffers[0].obs[:, 0]) == list(range(15, 25))  # the 10 newest transitions


def test_segments_never_cross_episodes_or_the_write_position() -> None:
    buffer = _filled_buffer(capacity=10, steps=25, episode_length=7)
    # stored times 15..24; episodes [14..20], [21..27]: whole 3-step segments start at 15..18 and 21..22
    starts = buffer.valid_segment_starts(3)
    times = sorted(int(buffer.obs[s, 0]) for s in starts)
    assert times == [15, 16, 17, 18, 21, 22]
    seg = buffer.segments(starts, 3)
    assert np.all(np.diff(seg.obs[:, :, 0], axis=1) == 1)
    assert np.allclose(seg.next_obs[:, :, 0], seg.obs[:, :, 0] + 1)


def test_query_candidates_come_from_the_given_episodes() -> None:
    buffer = _filled_buffer(capacity=100, steps=50, episode_length=10)  # episodes 0..4, times 0..49
    rng = np.random.default_rng(0)
    recent = buffer.sample_segments(200, 3, rng, episodes=range(2, 4))
    assert set(np.unique(recent.obs[:, 0, 0] // 10)) == {2, 3}  # segments of episodes 2 and 3 only
    everything = buffer.sample_segments(200, 3, rng)
    assert set(np.unique(everything.obs[:, 0, 0] // 10)) == {0, 1, 2, 3, 4}
    with pytest.raises(ValueError, match="no complete segment"):
        buffer.sample_segments(1, 3, rng, episodes=range(7, 9))


def test_teacher_scale() -> None:
    assert teacher_scale([100.0, 300.0], segment_length=50, episode_length=1000) == pytest.approx(10.0)
    assert teacher_scale([], 50, 1000) > 0 and teacher_scale([-100.0], 50, 1000) == pytest.approx(5.0)


def _separable(rng: np.random.Generator, ties: bool = False, n: int = 64, t: int = 5) -> PreferenceData:
    """Labels prefer the larger summed first feature of two segments; with ``ties`` every other is 0.5."""
    from ipl_core.online.replay import Segments

    def segments() -> Segments:
        obs = rng.normal(size=(n, t, 2)).astype(np.float32)
        act = rng.normal(size=(n, t, 1)).astype(np.float32)
        return Segments(obs, act, obs[..., 0], obs, np.zeros((n, t)))

    s1, s2 = segments(), segments()
    labels = (s1.true_reward.sum(1) > s2.true_reward.sum(1)).astype(np.float32)
    if ties:
        labels[::2] = 0.5
    data = PreferenceData()
    data.add(s1, s2, labels)
    return data


def test_reward_training_learns_a_separable_preference() -> None:
    """Labels prefer the segment with the larger summed first feature; training reaches the accuracy stop."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    data = _separable(rng)
    ensemble = RewardEnsemble(2, 1, 3, (32,), members=2)
    optimizer = MemberAdam(ensemble.parameters(), lr=3e-3)
    before = [p.detach().clone() for p in ensemble.parameters()]
    # the second seed has no labels yet: it does not train
    first, second = train_reward_ensemble(ensemble, optimizer, [data, PreferenceData()], batch_size=16,
                                          max_epochs=200, acc_stop=0.97, rngs=[rng, np.random.default_rng(1)])
    assert first is not None and first.accuracy > 0.97 and first.epochs < 200
    assert second is None and all(torch.equal(p[1], b[1]) for p, b in zip(ensemble.parameters(), before,
                                                                           strict=True))
    with pytest.raises(ValueError, match="at least one labelled pair"):
        train_reward_ensemble(ensemble, optimizer, [PreferenceData()] * 2, 16, 1, 0.9, [rng, rng])


def test_ties_train_the_loss_but_count_neither_way_in_the_accuracy() -> None:
    """Half the labels ties (0.5), the rest separable: the accuracy is over the strict pairs, so the stop at
    0.97 still fires (counting ties as wrong would cap the accuracy at 0.5)."""
    logits, label = torch.tensor([[2.0, -1.0, 0.3, -0.2]]), torch.tensor([[1.0, 1.0, 0.5, 0.5]])
    _, _, correct, strict = weighted_preference_loss(logits, label, torch.ones(1, 4))
    assert correct.item() == 1 and strict.item() == 2
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    data = _separable(rng, ties=True)
    ensemble = RewardEnsemble(2, 1, 3, (32,), members=1)
    (result,) = train_reward_ensemble(ensemble, MemberAdam(ensemble.parameters(), lr=3e-3), [data],
                                    batch_size=16, max_epochs=200, acc_stop=0.97, rngs=[rng])
    assert result is not None and result.accuracy > 0.97 and result.epochs < 200
