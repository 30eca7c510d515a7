"""Scripted teachers: preference labels from ground-truth rewards, with B-Pref's human-like failures.

A scripted teacher stands in for a person: it compares the ground-truth returns of two segments and
answers which one it prefers. B-Pref (Lee et al. 2021, Sec. 3.2) makes the
answers less perfect in five ways, one parameter each: a finite rationality ``beta`` (Bradley-Terry
sampling instead of an argmax), a myopic discount ``gamma`` (late steps count more), a mistake probability
``eps_mistake`` (the label is flipped), a skip threshold (queries where neither segment did anything are not
answered) and an equal threshold (near-ties are answered "equally good", label 0.5). MRN (Liu et al. 2022,
Sec. 5.1) and PEBBLE/SURF label with the oracle teacher. Taught in the appendix "Datasets and how they are
made" (book/appendix/datasets.ipynb).

A *regret* teacher (:class:`RegretTeacher`, Knox et al. 2022, 2024; the labels of CPL, Hejna et al. 2024)
compares the sums of the segments' optimal advantages A*(s_t, a_t) instead of their rewards: exact A* on
tabular problems (:func:`ipl_core.tabular.optimal_advantage`), an estimate from per-step rewards and a value
function where only a simulator is available (:func:`estimated_advantage`). Taught in "The regret preference
model" (book/family/regret.ipynb).

Label orientation: ``label`` is P[segment 1 preferred], so 1 means segment 1, 0 segment 2, 0.5 equal.
(B-Pref's code stores the opposite, 1 for segment 2, and -1 for equal.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


class TeacherLabels(NamedTuple):
    """The answers of a teacher to N queries."""

    label: np.ndarray
    """(N,) float in {0, 0.5, 1}: P[segment 1 preferred]. Entries with ``keep`` False are not answers."""
    keep: np.ndarray
    """(N,) bool: False where the teacher skipped the query; drop those pairs before training."""


def segment_return_scale(episode_returns: np.ndarray, segment_length: int, episode_length: int) -> float:
    """The ``scale`` of the skip and equal thresholds: the mean return of a segment-long stretch of behaviour.

    B-Pref sets it to the mean ground-truth return of the agent's recent episodes (the last 10 in its
    online runs) times ``segment_length / episode_length``, so that the thresholds follow the agent as it
    improves. For an offline dataset pass the returns of its episodes.
    """
    returns = np.asarray(episode_returns, dtype=np.float64)
    if returns.size == 0 or not np.isfinite(returns).all():
        raise ValueError(f"episode_returns must be a non-empty array of finite values, got {returns!r}")
    if segment_length <= 0 or episode_length <= 0:
        raise ValueError(
            f"segment_length and episode_length must be positive, got {segment_length} and {episode_length}"
        )
    return float(returns.mean() * segment_length / episode_length)


def discounted_segment_return(reward: np.ndarray, gamma: float) -> np.ndarray:
    """Myopic return of each segment (rows of ``reward``): step t of T weighted ``gamma ** (T - 1 - t)``.

    With gamma < 1 the last steps weigh most, B-Pref's model of a person who remembers the end of a clip.
    """
    length = reward.shape[1]
    weights = gamma ** np.arange(length - 1, -1, -1, dtype=np.float64)
    return reward.astype(np.float64) @ weights


@dataclass(frozen=True)
class ScriptedTeacher:
    """A simulated teacher with B-Pref's five parameters; the defaults are B-Pref's perfect "oracle".

    Labelling follows B-Pref's order: skip and equal are decided on the undiscounted returns, the label on
    the discounted ones (Bradley-Terry with ``beta``, or the larger return when ``beta`` is infinite), then
    a mistake flips it, then near-ties are overwritten with 0.5. Both thresholds are fractions of ``scale``
    (see :func:`segment_return_scale`); B-Pref's reference code multiplies the threshold by the fraction
    twice (it squares epsilon), this implementation multiplies once.
    """

    beta: float = math.inf
    """Rationality of Bradley-Terry sampling, P[1] = sigmoid(beta (R1 - R2)); inf: deterministic."""
    gamma: float = 1.0
    """Myopic discount: step t of a T-step segment weighs ``gamma ** (T - 1 - t)``."""
    eps_mistake: float = 0.0
    """Probability that a label is flipped (y -> 1 - y)."""
    skip_threshold: float = 0.0
    """Skip a query when both undiscounted returns are at or below this fraction of ``scale`` (0: never)."""
    equal_threshold: float = 0.0
    """Answer 0.5 when ``|R1 - R2|`` is below this fraction of ``scale`` (0: only exact ties)."""

    def __post_init__(self) -> None:
        if not self.beta > 0:
            raise ValueError(f"ScriptedTeacher.beta must be positive (inf: deterministic), got {self.beta}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"ScriptedTeacher.gamma must lie in (0, 1], got {self.gamma}")
        if not 0 <= self.eps_mistake <= 1:
            raise ValueError(f"ScriptedTeacher.eps_mistake must lie in [0, 1], got {self.eps_mistake}")
        for name in ("skip_threshold", "equal_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"ScriptedTeacher.{name} must be finite and >= 0, got {value}")

    def label(
        self, reward_1: np.ndarray, reward_2: np.ndarray, rng: np.random.Generator, scale: float = 1.0
    ) -> TeacherLabels:
        """Answer N queries from per-step ground-truth rewards ``reward_i`` of shape (N, T).

        ``scale`` is the typical return of a segment (positive; see :func:`segment_return_scale`); the
        random draws (one uniform for Bradley-Terry, one for mistakes, per query) come from ``rng`` only.
        """
        reward_1, reward_2 = np.asarray(reward_1), np.asarray(reward_2)
        if reward_1.ndim != 2 or reward_1.shape != reward_2.shape:
            raise ValueError(
                f"ScriptedTeacher.label expects reward_1 and reward_2 of equal shape (N, T), got "
                f"{reward_1.shape} and {reward_2.shape}"
            )
        for name, reward in (("reward_1", reward_1), ("reward_2", reward_2)):
            if not np.isfinite(reward).all():
                raise ValueError(f"ScriptedTeacher.label: {name} holds NaN or infinite values")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"ScriptedTeacher.label: scale must be finite and positive, got {scale}")
        n = reward_1.shape[0]
        sum_1, sum_2 = reward_1.sum(axis=1, dtype=np.float64), reward_2.sum(axis=1, dtype=np.float64)
        keep = np.ones(n, dtype=bool)
        if self.skip_threshold > 0:
            keep = np.maximum(sum_1, sum_2) > self.skip_threshold * scale
        near_tie = np.abs(sum_1 - sum_2) < self.equal_threshold * scale

        seen_1 = discounted_segment_return(reward_1, self.gamma)
        seen_2 = discounted_segment_return(reward_2, self.gamma)
        uniform_bt, uniform_mistake = rng.random(n), rng.random(n)
        if math.isinf(self.beta):
            label = 0.5 * (1.0 + np.sign(seen_1 - seen_2))
        else:
            p_first = 0.5 * (1.0 + np.tanh(0.5 * self.beta * (seen_1 - seen_2)))  # = sigmoid, no overflow
            label = (uniform_bt < p_first).astype(np.float64)
        mistake = uniform_mistake < self.eps_mistake
        label[mistake] = 1.0 - label[mistake]
        label[near_tie] = 0.5
        return TeacherLabels(label=label, keep=keep)


TEACHERS: dict[str, ScriptedTeacher] = {
    "oracle": ScriptedTeacher(),
    "noisy": ScriptedTeacher(beta=1.0),
    "mistake": ScriptedTeacher(eps_mistake=0.1),
    "skip": ScriptedTeacher(skip_threshold=0.1),
    "equal": ScriptedTeacher(equal_threshold=0.1),
    "myopic": ScriptedTeacher(gamma=0.9),
}
"""B-Pref's six simulated teachers (Lee et al. 2021, Sec. 3.2 and its teacher table): Oracle (beta = inf,
gamma = 1, no mistakes, skips or ties), Stoc ("noisy" here, beta = 1), Mistake (eps = 0.1), Skip
(threshold 0.1), Equal (threshold 0.1) and Myopic (gamma = 0.9); each changes one parameter of the oracle."""


def estimated_advantage(reward: np.ndarray, value: np.ndarray, gamma: float,
                        terminal: np.ndarray | None = None) -> np.ndarray:
    """Per-step estimates of the optimal advantage, A(s_t, a_t) ~ r_t + gamma V(s_{t+1}) - V(s_t), (N, T).

    ``reward`` is (N, T), ``value`` (N, T + 1) holds V at the T + 1 states of each segment, ``terminal``
    (N, T) marks steps after which the episode ended (no bootstrap). This is the one-sample temporal
    difference of V: with V = V* it is an unbiased estimate of A*(s_t, a_t) (exact for deterministic
    transitions), and its sum telescopes to the segment's return plus gamma-weighted V at the end minus V
    at the start. Where only a simulator is available, V can come from a critic trained on the
    ground-truth reward (CPL labels its MetaWorld data with a SAC critic, A = Q - V) or from Monte-Carlo
    returns of a scripted expert; the labels are then those of that estimate, not of the exact A*.
    """
    reward, value = np.asarray(reward, dtype=np.float64), np.asarray(value, dtype=np.float64)
    if reward.ndim != 2 or value.shape != (reward.shape[0], reward.shape[1] + 1):
        raise ValueError(f"estimated_advantage expects reward (N, T) and value (N, T + 1), got "
                         f"{reward.shape} and {value.shape}")
    if not 0 <= gamma <= 1:
        raise ValueError(f"estimated_advantage: gamma must lie in [0, 1], got {gamma}")
    continues = 1.0 if terminal is None else 1.0 - np.asarray(terminal, dtype=np.float64)
    return reward + gamma * continues * value[:, 1:] - value[:, :-1]


@dataclass(frozen=True)
class RegretTeacher:
    """The regret preference model (Knox et al.): P[segment 1] = logistic(beta (sum_t A*_1 - sum_t A*_2)),
    with per-step optimal advantages A* instead of rewards; beta = inf answers with the larger sum.

    Segment sums are undiscounted, as CPL's reference code sums them and as this book sums returns. The
    partial-return teacher :class:`ScriptedTeacher` given the same advantages as "rewards" labels the same
    way; this class exists so that the model a label set assumes is named where it is made."""

    beta: float = math.inf
    """Rationality, as :attr:`ScriptedTeacher.beta`."""
    eps_mistake: float = 0.0
    """Probability that a label is flipped."""

    def label(self, advantage_1: np.ndarray, advantage_2: np.ndarray,
              rng: np.random.Generator) -> TeacherLabels:
        """Answer N queries from per-step optimal advantages ``advantage_i`` (N, T); every query is kept."""
        teacher = ScriptedTeacher(beta=self.beta, eps_mistake=self.eps_mistake)
        return teacher.label(advantage_1, advantage_2, rng)
