"""PEBBLE (Lee et al. 2021): unsupervised pre-training, a reward ensemble, queries, relabelling.

The pieces, each with one job: the particle-based state-entropy reward with a running normaliser; an
ensemble of tanh-output Markovian reward models whose mean is the reward; candidate pairs and query
selection (uniform, disagreement, entropy); the feedback schedule; reward training with an accuracy stop.
The loop that joins them is :func:`ipl_core.online.train.train_online`. Taught in the chapter "PEBBLE and
scripted teachers" (book/online/pebble.ipynb).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from ipl_core.online.replay import Segments
from ipl_core.preferences import PreferenceLoss, preference_loss
from ipl_core.reward_models import MarkovianReward
from ipl_core.teachers import ScriptedTeacher, TeacherLabels, segment_return_scale


class RunningMeanStd:
    """Mean and variance of a stream of batches, merged exactly (Chan, Golub and LeVeque's parallel rule).

    PEBBLE divides the state-entropy reward by this running standard deviation.
    """

    def __init__(self) -> None:
        self.mean, self.var, self.count = 0.0, 0.0, 0

    def update(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64).ravel()
        n = values.size
        if n == 0:
            return
        batch_mean, batch_var = float(values.mean()), float(values.var())
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.var, self.count = m2 / total, total

    @property
    def std(self) -> float:
        return float(np.sqrt(self.var))


@torch.no_grad()
def knn_distance(points: torch.Tensor, pool: torch.Tensor, k: int, chunk: int = 4096) -> torch.Tensor:
    """Distance from each point to its k-th nearest neighbour in ``pool``, not counting the point itself.

    The points are drawn from the pool, so the nearest "neighbour" at distance 0 is the point: the
    (k+1)-th smallest distance is the k-th neighbour's (PEBBLE Sec. 4.1, the particle-based estimate).
    """
    if pool.shape[0] <= k:
        raise ValueError(f"knn_distance needs more than k={k} points in the pool, got {pool.shape[0]}")
    out = []
    for first in range(0, points.shape[0], chunk):
        block = points[first:first + chunk]
        smallest = torch.full((block.shape[0], k + 1), float("inf"), dtype=points.dtype, device=points.device)
        for start in range(0, pool.shape[0], chunk):
            dist = torch.cdist(block, pool[start:start + chunk])
            smallest = torch.cat([smallest, dist], dim=1).topk(k + 1, dim=1, largest=False).values
        out.append(smallest[:, k])
    return torch.cat(out)


def state_entropy_reward(obs: torch.Tensor, pool: torch.Tensor, k: int, stats: RunningMeanStd
                         ) -> torch.Tensor:
    """PEBBLE's intrinsic reward of a transition (s, a, s'): the k-NN distance of s in the buffer, divided
    by its running std (PEBBLE Eq. 3 writes log(c + distance); the released B-Pref code uses the distance)."""
    distance = knn_distance(obs, pool, k)
    stats.update(distance.cpu().numpy())
    return distance / max(stats.std, 1e-8)


class TanhReward(MarkovianReward):
    """A Markovian reward MLP with a tanh output, so every step's reward lies in (-1, 1) (B-Pref's choice)."""

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return torch.tanh(super().forward(obs, act))


class RewardEnsemble(torch.nn.Module):
    """M independent reward models; the learner's reward is their mean (MRN Sec. 5.1: M = 3)."""

    def __init__(self, obs_dim: int, act_dim: int, size: int, hidden_dims: Sequence[int]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(TanhReward(obs_dim, act_dim, hidden_dims) for _ in range(size))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Per-member rewards, shape ``(M, *obs.shape[:-1])``."""
        return torch.stack([member(obs, act) for member in self.members])

    @property
    def device(self) -> torch.device:
        """The device of the members' parameters."""
        return next(self.parameters()).device

    def mean_reward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self(obs, act).mean(0)

    @torch.no_grad()
    def relabel_fn(self, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        """Mean reward of numpy inputs, for :meth:`ipl_core.online.replay.ReplayBuffer.relabel`."""
        device = self.device
        return self.mean_reward(torch.as_tensor(obs, device=device),
                                torch.as_tensor(act, device=device)).cpu().numpy()


class PreferenceData:
    """Labelled (or, for SURF, unlabelled) segment pairs, grown round by round."""

    def __init__(self) -> None:
        self.obs_1: np.ndarray | None = None
        self.act_1: np.ndarray | None = None
        self.obs_2: np.ndarray | None = None
        self.act_2: np.ndarray | None = None
        self.next_obs_1: np.ndarray | None = None
        self.next_obs_2: np.ndarray | None = None
        self.terminated_1: np.ndarray | None = None
        self.terminated_2: np.ndarray | None = None
        self.label = np.zeros(0, np.float32)

    def __len__(self) -> int:
        return int(self.label.size)

    def add(self, segments_1: Segments, segments_2: Segments, label: np.ndarray) -> None:
        """Append pairs (segments_1[i], segments_2[i]) with ``label`` (NaN for unlabelled pairs)."""
        def cat(old: np.ndarray | None, new: np.ndarray) -> np.ndarray:
            return new.astype(np.float32) if old is None else np.concatenate([old, new.astype(np.float32)])
        self.obs_1, self.act_1 = cat(self.obs_1, segments_1.obs), cat(self.act_1, segments_1.action)
        self.obs_2, self.act_2 = cat(self.obs_2, segments_2.obs), cat(self.act_2, segments_2.action)
        self.next_obs_1 = cat(self.next_obs_1, segments_1.next_obs)
        self.next_obs_2 = cat(self.next_obs_2, segments_2.next_obs)
        self.terminated_1 = cat(self.terminated_1, segments_1.terminated)
        self.terminated_2 = cat(self.terminated_2, segments_2.terminated)
        self.label = np.concatenate([self.label, np.asarray(label, np.float32)])

    def tensors(self, idx: np.ndarray, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
        """(obs_1, act_1, obs_2, act_2, label) of the pairs ``idx``, on ``device``."""
        assert self.obs_1 is not None and self.act_1 is not None
        assert self.obs_2 is not None and self.act_2 is not None
        return tuple(torch.as_tensor(x[idx], device=device) for x in (self.obs_1, self.act_1, self.obs_2,
                                                                         self.act_2, self.label))

    def next_tensors(self, idx: np.ndarray, device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
        """(next_obs_1, terminated_1, next_obs_2, terminated_2) of the pairs ``idx`` (IPL), on ``device``."""
        arrays = (self.next_obs_1, self.terminated_1, self.next_obs_2, self.terminated_2)
        return tuple(torch.as_tensor(x[idx], device=device) for x in arrays if x is not None)

    def state_dict(self) -> dict:
        return dict(vars(self))

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)


@torch.no_grad()
def preference_probabilities(ensemble: RewardEnsemble, obs_1: torch.Tensor, act_1: torch.Tensor,
                             obs_2: torch.Tensor, act_2: torch.Tensor) -> torch.Tensor:
    """P_m[sigma_1 > sigma_2] of every member m (MRN Eq. 1), shape (M, N)."""
    return torch.sigmoid(ensemble(obs_1, act_1).sum(-1) - ensemble(obs_2, act_2).sum(-1))


def select_queries(method: str, probabilities: torch.Tensor, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of the ``n`` candidates to ask about, from member probabilities (M, N).

    ``uniform``: a random subset; ``disagreement``: largest std of P across members; ``entropy``: largest
    binary entropy of P, averaged over the members (B-Pref's ``get_entropy``; the entropy of the mean P
    would also count the members' disagreement).
    """
    count = probabilities.shape[1]
    if n > count:
        raise ValueError(f"cannot select {n} queries from {count} candidates")
    if method == "uniform":
        return rng.choice(count, size=n, replace=False)
    if method == "disagreement":
        score = probabilities.std(0)
    elif method == "entropy":
        p = probabilities.clamp(1e-7, 1 - 1e-7)
        score = -(p * p.log() + (1 - p) * (1 - p).log()).mean(0)
    else:
        raise ValueError(f"query selection must be 'uniform', 'disagreement' or 'entropy', got {method!r}")
    return torch.argsort(score, descending=True)[:n].cpu().numpy()


def teacher_scale(recent_returns: Sequence[float], segment_length: int, episode_length: int) -> float:
    """The teacher's threshold scale: recent mean episode return scaled to a segment (B-Pref).

    The teacher needs a positive scale; with non-positive recent returns (or none yet) the magnitude is
    used, floored at 1e-6, so thresholds stay defined (and are near zero, i.e. almost inactive).
    """
    if len(recent_returns) == 0:
        return 1e-6
    return max(abs(segment_return_scale(np.asarray(recent_returns), segment_length, episode_length)), 1e-6)


def ask_teacher(teacher: ScriptedTeacher, true_reward_1: np.ndarray, true_reward_2: np.ndarray,
                rng: np.random.Generator, scale: float) -> TeacherLabels:
    """The scripted teacher's answers to pairs of segments with ground-truth rewards (N, T)."""
    return teacher.label(true_reward_1, true_reward_2, rng, scale=scale)


@dataclass(frozen=True)
class FeedbackSchedule:
    """When and how many labels are asked: a first round, then one every ``interval`` steps, until the
    ``budget`` is spent (the last round may be smaller)."""

    first: int
    """Environment step of the first round (right after unsupervised pre-training)."""
    interval: int
    """Steps between rounds."""
    per_round: int
    """Labels asked per round."""
    budget: int
    """Total labels."""

    def round_size(self, step: int, given: int) -> int:
        """Labels to ask at ``step`` when ``given`` were already asked: 0 unless a round is due."""
        if step < self.first or (step - self.first) % self.interval != 0 or given >= self.budget:
            return 0
        return min(self.per_round, self.budget - given)


class RewardTraining(NamedTuple):
    """What one feedback round's reward training did."""

    epochs: int
    loss: float
    accuracy: float


def member_loss(member: torch.nn.Module, obs_1: torch.Tensor, act_1: torch.Tensor, obs_2: torch.Tensor,
                act_2: torch.Tensor, label: torch.Tensor) -> PreferenceLoss:
    """Bradley-Terry cross-entropy of one reward model on labelled pairs (MRN Eq. 1-2)."""
    return preference_loss(member(obs_1, act_1).sum(-1), member(obs_2, act_2).sum(-1), label)


def train_reward_ensemble(ensemble: RewardEnsemble, optimizer: torch.optim.Optimizer, data: PreferenceData,
                          batch_size: int, max_epochs: int, acc_stop: float, rng: np.random.Generator
                          ) -> RewardTraining:
    """PEBBLE's reward update: epochs over the labels (each member its own shuffle) until the mean
    training accuracy of the members exceeds ``acc_stop`` or ``max_epochs`` is reached."""
    n, members, device = len(data), len(ensemble.members), ensemble.device
    if n == 0:
        raise ValueError("train_reward_ensemble needs at least one labelled pair")
    loss_sum = acc_sum = 0.0
    epoch = 0
    while epoch < max_epochs:
        epoch += 1
        orders = [rng.permutation(n) for _ in range(members)]
        loss_sum = acc_sum = 0.0
        for start in range(0, n, batch_size):
            total = torch.zeros((), device=device)
            count = min(batch_size, n - start)
            for m, member in enumerate(ensemble.members):
                result = member_loss(member, *data.tensors(orders[m][start:start + batch_size], device))
                total = total + result.loss
                loss_sum += result.loss.item() * count
                acc_sum += 0.0 if result.accuracy.isnan() else result.accuracy.item() * count
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
        if acc_sum / (n * members) > acc_stop:
            break
    return RewardTraining(epoch, loss_sum / (n * members), acc_sum / (n * members))
