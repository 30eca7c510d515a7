"""The fragmenter: segments cut from an offline dataset, never across an episode boundary, and labelled.

A segment of S steps is S consecutive rows (s_t, a_t, r_t) of one episode: no row among its first S - 1
may end an episode (terminal or time-out); the last row may. IPL Appendix B.3 builds its MetaWorld
preference datasets by drawing segments uniformly at random and labelling them by ground-truth return;
:func:`make_preference_dataset` does that with any :class:`~ipl_core.teachers.ScriptedTeacher`. Taught in
the appendix "Datasets and how they are made" (book/appendix/datasets.ipynb).

CPL's dense comparisons (its MetaWorld experiments) score every segment once and compare
each with several others: :func:`dense_pairs` builds the pairs and
:func:`make_regret_preference_dataset` labels them with a
:class:`~ipl_core.teachers.RegretTeacher` on estimated optimal advantages. Taught in "Contrastive
Preference Learning" (book/family/cpl.ipynb).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.data.errors import DataFormatError
from ipl_core.teachers import RegretTeacher, ScriptedTeacher, estimated_advantage, segment_return_scale


def valid_segment_starts(dataset: OfflineDataset, segment_length: int) -> np.ndarray:
    """All rows t where a segment of ``segment_length`` steps fits inside one episode."""
    if segment_length < 1:
        raise ValueError(f"segment_length must be at least 1, got {segment_length}")
    n = len(dataset)
    if segment_length > n:
        return np.zeros(0, dtype=np.int64)
    ends = dataset.episode_ends().astype(np.int64)
    # ends_before[t] = number of episode ends among rows 0..t-1
    ends_before = np.concatenate([[0], np.cumsum(ends)])
    starts = np.arange(n - segment_length + 1)
    crossing = ends_before[starts + segment_length - 1] - ends_before[starts]
    return starts[crossing == 0]


def check_segments(dataset: OfflineDataset, starts: np.ndarray, segment_length: int, what: str) -> np.ndarray:
    """Boolean mask of the ``starts`` whose segment crosses an episode boundary; past-the-end starts raise."""
    starts = np.asarray(starts)
    if starts.ndim != 1 or not np.issubdtype(starts.dtype, np.integer):
        raise DataFormatError(f"{what}: expected a 1-d array of integer start indices, got {starts.dtype} "
                              f"with shape {starts.shape}")
    if segment_length < 1:
        raise DataFormatError(f"{what}: segment length {segment_length}; expected at least 1 step")
    n = len(dataset)
    bad = (starts < 0) | (starts > n - segment_length)  # not starts + length > n: that can overflow
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{what}: start index {int(starts[first])} (entry {first}) with segment length {segment_length} "
            f"runs past the dataset; expected 0 <= start <= {n - segment_length} ({n} rows)"
        )
    valid = np.zeros(n, dtype=bool)
    valid[valid_segment_starts(dataset, segment_length)] = True
    return ~valid[starts]


def gather_segments(
    dataset: OfflineDataset, starts: np.ndarray, segment_length: int, what: str = "segment starts"
) -> dict[str, np.ndarray]:
    """Observations, actions, rewards and terminals of the segments beginning at ``starts``: (K, S, ...).

    Every segment must lie inside the data and inside one episode (:func:`check_segments`); otherwise
    DataFormatError names ``what``, the first bad start and the rule it breaks.
    """
    starts = np.asarray(starts)
    crossing = check_segments(dataset, starts, segment_length, what)
    if crossing.any():
        first = int(np.flatnonzero(crossing)[0])
        raise DataFormatError(
            f"{what}: the segment at start index {int(starts[first])} (entry {first}, {segment_length} "
            f"steps) crosses an episode boundary of {dataset.source}; expected segments inside one episode "
            f"({int(crossing.sum())} such starts)"
        )
    rows = starts[:, None] + np.arange(segment_length)[None, :]
    return {
        "obs": dataset.observations[rows],
        "action": dataset.actions[rows],
        "reward": dataset.rewards[rows].astype(np.float32),
        "terminal": dataset.terminals[rows].astype(np.float32),
    }


def episode_returns(dataset: OfflineDataset) -> tuple[np.ndarray, np.ndarray]:
    """Return and length of every episode (the last one may be cut short by the end of the data)."""
    ends = np.flatnonzero(dataset.episode_ends())
    if len(ends) == 0 or ends[-1] != len(dataset) - 1:
        ends = np.append(ends, len(dataset) - 1)
    first = np.concatenate([[0], ends[:-1] + 1])
    returns = np.add.reduceat(dataset.rewards.astype(np.float64), first)
    return returns, ends - first + 1


def draw_segment_starts(offline: OfflineDataset, segment_length: int, size: tuple[int, ...],
                        rng: np.random.Generator) -> np.ndarray:
    """Start rows of shape ``size`` drawn uniformly (with replacement) among :func:`valid_segment_starts`, so
    that no segment crosses an episode boundary (IPL App. B.3); a clear error when no segment fits."""
    starts = valid_segment_starts(offline, segment_length)
    if len(starts) == 0:
        raise ValueError(
            f"{offline.source}: no segment of {segment_length} steps fits inside an episode; "
            f"expected episodes of at least {segment_length} steps"
        )
    return starts[rng.integers(0, len(starts), size=size)]


def make_preference_dataset(
    offline: OfflineDataset,
    num_queries: int,
    segment_length: int,
    teacher: ScriptedTeacher,
    rng: np.random.Generator,
    scale: float | None = None,
) -> PreferenceDataset:
    """Draw ``num_queries`` pairs of segments uniformly from ``offline`` and label them with ``teacher``.

    Start rows come from :func:`draw_segment_starts`, so no segment crosses an episode boundary. Labels are
    P[segment 1 preferred] from the ground-truth ``rewards``. ``scale`` (for the skip and equal thresholds)
    defaults to the dataset's mean episode return times ``segment_length`` / mean episode length
    (:func:`~ipl_core.teachers.segment_return_scale`). Queries the teacher skips are dropped, so the result
    may hold fewer than ``num_queries`` pairs.
    """
    if num_queries < 1:
        raise ValueError(f"num_queries must be at least 1, got {num_queries}")
    pick = draw_segment_starts(offline, segment_length, (2, num_queries), rng)
    seg_1 = gather_segments(offline, pick[0], segment_length)
    seg_2 = gather_segments(offline, pick[1], segment_length)
    if scale is None:
        returns, lengths = episode_returns(offline)
        mean_length = max(1, round(float(lengths.mean())))
        scale = abs(segment_return_scale(returns, segment_length, mean_length)) or 1.0
    answer = teacher.label(seg_1["reward"], seg_2["reward"], rng, scale=scale)
    keep = answer.keep
    if not keep.any():
        raise ValueError(f"{offline.source}: the teacher skipped all {num_queries} queries")
    return PreferenceDataset(
        obs_1=seg_1["obs"][keep], obs_2=seg_2["obs"][keep],
        action_1=seg_1["action"][keep], action_2=seg_2["action"][keep],
        label=answer.label[keep].astype(np.float32),
        reward_1=seg_1["reward"][keep], reward_2=seg_2["reward"][keep],
        terminal_1=seg_1["terminal"][keep], terminal_2=seg_2["terminal"][keep],
        source=f"{offline.source} ({num_queries} queries of {segment_length} steps)",
    )


def dense_pairs(num_segments: int, per_segment: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dense comparisons (CPL's MetaWorld experiments): each of ``num_segments`` segments is the first
    segment of ``per_segment`` pairs, its partner drawn uniformly among the *other* segments (with
    replacement).

    Returns the indices ``(first, second)`` of ``num_segments * per_segment`` pairs, segment i first in pairs
    ``[i * per_segment, (i + 1) * per_segment)``. CPL's code draws a fresh partner for every segment of every
    batch; a fixed ``per_segment`` makes the number of labels a setting that can be counted."""
    if num_segments < 2 or per_segment < 1:
        raise ValueError(f"dense_pairs needs num_segments >= 2 and per_segment >= 1, got {num_segments} "
                         f"and {per_segment}")
    first = np.repeat(np.arange(num_segments), per_segment)
    offset = rng.integers(1, num_segments, size=first.shape)  # never 0: no segment meets itself
    return first, (first + offset) % num_segments


def make_regret_preference_dataset(
    offline: OfflineDataset,
    num_segments: int,
    per_segment: int,
    segment_length: int,
    value: Callable[[np.ndarray], np.ndarray],
    gamma: float,
    rng: np.random.Generator,
    teacher: RegretTeacher | None = None,
) -> PreferenceDataset:
    """CPL's labels: ``num_segments`` segments drawn uniformly from ``offline`` (as
    :func:`make_preference_dataset` draws them), each compared with ``per_segment`` others
    (:func:`dense_pairs`), labelled by ``teacher`` (default: the deterministic regret teacher) on the sums of
    their estimated optimal advantages.

    Step t of a segment has A(s_t, a_t) = r_t + gamma V(s_{t+1}) - V(s_t)
    (:func:`~ipl_core.teachers.estimated_advantage`), with ``value`` mapping observations (N, obs_dim) to
    V (N,) and s_{t+1} of the last step taken from ``next_observations``; a terminal step does not
    bootstrap. The sum over a segment telescopes to its return plus gamma-weighted V at its end minus V at
    its start. ``rewards`` of the result stay the ground-truth ones; labels come from the advantages."""
    starts = valid_segment_starts(offline, segment_length)
    if len(starts) == 0:
        raise ValueError(f"{offline.source}: no segment of {segment_length} steps fits inside an episode; "
                         f"expected episodes of at least {segment_length} steps")
    first, second = dense_pairs(num_segments, per_segment, rng)
    chosen = starts[rng.integers(0, len(starts), size=num_segments)]
    seg = gather_segments(offline, chosen, segment_length)
    states = np.concatenate([seg["obs"], offline.next_observations[chosen + segment_length - 1][:, None]], 1)
    values = np.asarray(value(states.reshape(-1, states.shape[-1])), dtype=np.float64)
    if values.shape != (len(states) * (segment_length + 1),):
        raise ValueError(f"value must map observations (N, obs_dim) to (N,), got {values.shape} for "
                         f"{len(states) * (segment_length + 1)} observations")
    advantage = estimated_advantage(seg["reward"], values.reshape(num_segments, segment_length + 1), gamma,
                                    seg["terminal"])
    answer = (teacher or RegretTeacher()).label(advantage[first], advantage[second], rng)
    return PreferenceDataset(
        obs_1=seg["obs"][first], obs_2=seg["obs"][second],
        action_1=seg["action"][first], action_2=seg["action"][second],
        label=answer.label.astype(np.float32),
        reward_1=seg["reward"][first], reward_2=seg["reward"][second],
        terminal_1=seg["terminal"][first], terminal_2=seg["terminal"][second],
        source=f"{offline.source} ({num_segments} segments of {segment_length} steps, {per_segment} "
               "comparisons each, regret labels)",
    )
