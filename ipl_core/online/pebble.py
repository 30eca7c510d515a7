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
import torch.nn.functional as F

from ipl_core.nets import EnsembleMLP
from ipl_core.online.members import MemberAdam
from ipl_core.online.replay import Segments
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
    """Distance from each point to its k-th nearest neighbour in ``pool``, not counting the point itself,
    for each member: points (E, N, d), pool (E, P, d) -> (E, N).

    The points are drawn from the pool, so the nearest "neighbour" at distance 0 is the point: the
    (k+1)-th smallest distance is the k-th neighbour's (PEBBLE Sec. 4.1, the particle-based estimate).
    """
    if pool.shape[1] <= k:
        raise ValueError(f"knn_distance needs more than k={k} points in the pool, got {pool.shape[1]}")
    out = []
    for first in range(0, points.shape[1], chunk):
        block = points[:, first:first + chunk]
        smallest = torch.full((*block.shape[:2], k + 1), float("inf"), dtype=points.dtype,
                              device=points.device)
        for start in range(0, pool.shape[1], chunk):
            dist = torch.cdist(block, pool[:, start:start + chunk])
            smallest = torch.cat([smallest, dist], dim=2).topk(k + 1, dim=2, largest=False).values
        out.append(smallest[..., k])
    return torch.cat(out, dim=1)


def state_entropy_reward(obs: torch.Tensor, pool: torch.Tensor, k: int, stats: Sequence[RunningMeanStd]
                         ) -> torch.Tensor:
    """PEBBLE's intrinsic reward of a transition (s, a, s'): the k-NN distance of s in its member's buffer,
    divided by that member's running std (PEBBLE Eq. 3 writes log(c + distance); the released B-Pref code
    uses the distance). obs (E, N, d), pool (E, P, d), one normaliser per member -> (E, N)."""
    distance = knn_distance(obs, pool, k)
    values = distance.cpu().numpy()
    for member_stats, member_values in zip(stats, values, strict=True):
        member_stats.update(member_values)
    scale = torch.tensor([max(st.std, 1e-8) for st in stats], dtype=distance.dtype, device=distance.device)
    return distance / scale[:, None]


class RewardEnsemble(torch.nn.Module):
    """For each of E members (seeds), M independent tanh-output Markovian reward models r(s, a) (B-Pref's
    choice: each step's reward lies in (-1, 1)); the learner's reward is their mean (MRN Sec. 5.1: M = 3).
    All E x M models are evaluated in one batched product (:class:`~ipl_core.nets.EnsembleMLP`); seed e's
    models draw their initial weights, one after the other, from ``generators[e]``."""

    def __init__(self, obs_dim: int, act_dim: int, size: int, hidden_dims: Sequence[int], members: int = 1,
                 generators: Sequence[torch.Generator | None] | None = None) -> None:
        super().__init__()
        per_model = None if generators is None else [g for g in generators for _ in range(size)]
        self.size = size
        self.net = EnsembleMLP((members, size), obs_dim + act_dim, 1, hidden_dims, generators=per_model)

    @property
    def members(self) -> int:
        """E, the number of seeds."""
        return self.net.layers[0].members[0]

    @property
    def device(self) -> torch.device:
        """The device of the models' parameters."""
        return next(self.parameters()).device

    def model_rewards(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Each model's reward of its own inputs: ``(E, M, *lead, d) -> (E, M, *lead)``."""
        x = torch.cat([obs, act], dim=-1)
        lead = x.shape[2:-1]
        out = self.net(x.reshape(*x.shape[:2], -1, x.shape[-1]))
        return torch.tanh(out).reshape(*x.shape[:2], *lead)

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Per-model rewards of each member's inputs: ``(E, *lead, d) -> (E, M, *lead)``."""
        expand = (-1, self.size, *obs.shape[1:])
        return self.model_rewards(obs.unsqueeze(1).expand(expand),
                                  act.unsqueeze(1).expand(*expand[:-1], act.shape[-1]))

    def mean_reward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The learner's reward, the models' mean: ``(E, *lead, d) -> (E, *lead)``."""
        return self(obs, act).mean(1)

    @torch.no_grad()
    def relabel_fn(self, obs: np.ndarray, act: np.ndarray) -> np.ndarray:
        """Mean reward of numpy inputs (E, N, d) -> (E, N), for
        :func:`ipl_core.online.replay.relabel_members`."""
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
    """P_m[sigma_1 > sigma_2] of every model m of every seed (MRN Eq. 1): segments (E, N, T, d) ->
    (E, M, N)."""
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
        if probabilities.shape[0] < 2:
            raise ValueError("disagreement query selection needs at least 2 ensemble members, got 1")
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
    ``budget`` is spent (the last round may be smaller) or the run reaches ``end``."""

    first: int
    """Environment step of the first round (right after unsupervised pre-training)."""
    interval: int
    """Steps between rounds."""
    per_round: int
    """Labels asked per round."""
    budget: int
    """Total labels."""
    end: int
    """The run's last step (``total_steps``): no round is asked there or later, as its labels would train a
    reward that no update reads."""

    def round_size(self, step: int, given: int) -> int:
        """Labels to ask at ``step`` when ``given`` were already asked: 0 unless a round is due."""
        if (step < self.first or step >= self.end or (step - self.first) % self.interval != 0
                or given >= self.budget):
            return 0
        return min(self.per_round, self.budget - given)


class RewardTraining(NamedTuple):
    """What one feedback round's reward training did."""

    epochs: int
    loss: float
    accuracy: float


def gather_pairs(data: Sequence[PreferenceData], idx: Sequence[Sequence[np.ndarray]],
                 device: str | torch.device) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """The pairs ``idx[e][m]`` of seed e's data for model m, as (E, M, B, ...) tensors (obs_1, act_1, obs_2,
    act_2, label), and weights (E, M, B): 1 for a pair, 0 for the padding of a shorter index list (B is
    the longest list)."""
    width = max(max((len(i) for i in row), default=0) for row in idx)
    fields: list[list[list[np.ndarray]]] = [[], [], [], [], []]
    weights = np.zeros((len(idx), len(idx[0]), width), np.float32)
    template = next(d for d in data if len(d))  # a seed without pairs is padded with another seed's
    for e, (member, row) in enumerate(zip(data, idx, strict=True)):
        rows = [[], [], [], [], []]  # type: list[list[np.ndarray]]
        member = member if len(member) else template
        for m, pairs in enumerate(row):
            weights[e, m, :len(pairs)] = 1.0
            padded = np.concatenate([pairs, np.full(width - len(pairs), pairs[0] if len(pairs) else 0)])
            arrays = (member.obs_1, member.act_1, member.obs_2, member.act_2, member.label)
            for field, array in zip(rows, arrays, strict=True):
                field.append(array[padded.astype(np.int64)])  # type: ignore[index]
        for field, values in zip(fields, rows, strict=True):
            field.append(np.stack(values))
    tensors = tuple(torch.as_tensor(np.stack(f), device=device) for f in fields)
    return tensors, torch.as_tensor(weights, device=device)


def weighted_preference_loss(logits: torch.Tensor, label: torch.Tensor, weight: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bradley-Terry cross-entropy (MRN Eq. 1-2) of (..., B) logits averaged over the pairs of weight 1, and
    of those pairs the summed cross-entropy, the correct predictions and the count of strictly labelled
    pairs, each (...). Accuracy is correct over strict: a tie (label 0.5) trains the loss but has no right
    side to predict, so it counts neither way, as in the offline ``preference_loss``."""
    losses = F.binary_cross_entropy_with_logits(logits, label, reduction="none") * weight
    count = weight.sum(-1)
    strict = (label != 0.5).float() * weight
    correct = (((logits > 0).float() == label).float() * strict).sum(-1)
    return losses.sum(-1) / count.clamp(min=1.0), losses.detach().sum(-1), correct, strict.sum(-1)


def train_reward_ensemble(ensemble: RewardEnsemble, optimizer: MemberAdam, data: Sequence[PreferenceData],
                          batch_size: int, max_epochs: int, acc_stop: float,
                          rngs: Sequence[np.random.Generator]) -> list[RewardTraining | None]:
    """PEBBLE's reward update of every seed: epochs over seed e's labels ``data[e]`` (each model its own
    shuffle from ``rngs[e]``) until the mean training accuracy of its models (on the strictly labelled pairs;
    ties train the loss but count neither way) exceeds ``acc_stop`` or
    ``max_epochs`` is reached. The seeds train together; a seed that has stopped no longer steps. A seed
    without labels does not train (None)."""
    sizes = [len(d) for d in data]
    if max(sizes) == 0:
        raise ValueError("train_reward_ensemble needs at least one labelled pair, got none for every seed")
    members, models = len(data), ensemble.size
    device = ensemble.device
    results: list[RewardTraining | None] = [None] * members
    done = [n == 0 for n in sizes]  # a seed without labels (its teacher skipped every query) does not train
    epoch = 0
    while epoch < max_epochs and not all(done):
        epoch += 1
        training = [not d for d in done]
        orders = [[rng.permutation(n) for _ in range(models)] if on else None
                  for rng, n, on in zip(rngs, sizes, training, strict=True)]
        loss_sum, correct_sum, strict_sum = np.zeros(members), np.zeros(members), np.zeros(members)
        for start in range(0, max(n for n, on in zip(sizes, training, strict=True) if on), batch_size):
            active = np.array([on and start < n for on, n in zip(training, sizes, strict=True)])
            idx = [[o[start:start + batch_size] for o in order] if a and order is not None
                   else [np.zeros(0, np.int64)] * models for order, a in zip(orders, active, strict=True)]
            (obs_1, act_1, obs_2, act_2, label), weight = gather_pairs(data, idx, device)
            logits = (ensemble.model_rewards(obs_1, act_1).sum(-1)
                      - ensemble.model_rewards(obs_2, act_2).sum(-1))
            loss, summed, correct, strict = weighted_preference_loss(logits, label, weight)
            optimizer.zero_grad()
            loss.sum().backward()
            optimizer.step(torch.as_tensor(active))
            loss_sum += summed.sum(1).cpu().numpy()
            correct_sum += correct.sum(1).cpu().numpy()
            strict_sum += strict.sum(1).cpu().numpy()
        for e in np.flatnonzero(training):  # over the strictly labelled pairs: NaN (no stop) with ties only
            accuracy = correct_sum[e] / strict_sum[e] if strict_sum[e] else float("nan")
            if accuracy > acc_stop or epoch == max_epochs:
                results[e], done[e] = RewardTraining(epoch, loss_sum[e] / (sizes[e] * models), accuracy), True
    return results
