"""SURF (Park et al. 2022): semi-supervised reward learning with pseudo-labels and temporal cropping.

SURF stores segments ``window`` steps longer on each side than the ``T`` steps the teacher judges (the
central ``T``), and at each feedback round also stores unlabelled pairs. While training the reward
ensemble, each member (i) scores every labelled pair on a temporal crop: one length L ~ U{T - c .. T + c}
per pair, each of the two segments at its own random start; (ii) labels each unlabelled pair with its own
prediction on the uncropped central ``T`` steps, keeps the pairs predicted with confidence at least
``tau``, and applies the cross-entropy against those hard labels to an independent crop of the pair,
weighted by ``lambda``. It trains a fixed number of minibatch iterations. Taught in the chapter
"SURF" (book/online/surf.ipynb).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ipl_core.online.members import MemberAdam
from ipl_core.online.pebble import (
    PreferenceData,
    RewardEnsemble,
    RewardTraining,
    gather_pairs,
    weighted_preference_loss,
)


def crop_masks(n: int, stored: int, length: int, crop: int, rng: np.random.Generator,
               device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """0/1 masks (n, stored) of SURF's temporal crops: per pair one length L in [length - crop,
    length + crop] and, for each of the two segments, a window of L steps at its own uniform start."""
    if not 0 <= crop < length or length + crop > stored:
        raise ValueError(f"crops of {length} -+ {crop} steps must be positive and fit in stored segments of "
                         f"{stored} steps")
    lengths = rng.integers(length - crop, length + crop + 1, size=n)
    steps = np.arange(stored)[None, :]
    masks = []
    for _ in range(2):
        starts = rng.integers(0, stored - lengths + 1)[:, None]
        masks.append(torch.as_tensor((steps >= starts) & (steps < starts + lengths[:, None]),
                                     dtype=torch.float32, device=device))
    return masks[0], masks[1]


def central(rewards: torch.Tensor, window: int) -> torch.Tensor:
    """The central steps of per-step rewards (..., T + 2 window): what the teacher judged."""
    return rewards[..., window:rewards.shape[-1] - window]


def pseudo_label_loss(rewards: Any, obs_1: torch.Tensor, act_1: torch.Tensor, obs_2: torch.Tensor,
                      act_2: torch.Tensor, tau: float, window: int, masks: tuple[torch.Tensor, torch.Tensor],
                      weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """SURF's semi-supervised loss on unlabelled pairs (..., B, T, d), with ``rewards`` the per-step reward
    function of each model ((..., B, T, d) -> (..., B, T)).

    The hard pseudo-label is the model's own preference on the uncropped central steps, kept where its
    confidence max(P, 1 - P) is at least ``tau``; the cross-entropy is taken on the crops ``masks``.
    Returns the loss (mean over the pairs of ``weight`` 1, default all, unconfident ones counting zero) and
    the share used, each (...).
    """
    reward_1, reward_2 = rewards(obs_1, act_1), rewards(obs_2, act_2)
    weight = torch.ones(reward_1.shape[:-1], device=reward_1.device) if weight is None else weight
    with torch.no_grad():
        p = torch.sigmoid(central(reward_1, window).sum(-1) - central(reward_2, window).sum(-1))
        label = (p > 0.5).float()
        keep = (torch.maximum(p, 1 - p) >= tau).float() * weight
    logits = (reward_1 * masks[0]).sum(-1) - (reward_2 * masks[1]).sum(-1)
    count = weight.sum(-1).clamp(min=1.0)
    loss = (F.binary_cross_entropy_with_logits(logits, label, reduction="none") * keep).sum(-1) / count
    return loss, keep.sum(-1) / count


def surf_iterations(labels: int, epochs: int, batch_size: int) -> int:
    """SURF's fixed number of reward-training iterations: ceil(epochs * labels / batch_size)."""
    return math.ceil(epochs * labels / batch_size)


class _Shuffled:
    """Minibatches of indices from a permutation, reshuffled when it runs out (each member its own)."""

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n, self.rng, self.order, self.start = n, rng, rng.permutation(n), 0

    def next(self, size: int) -> np.ndarray:
        idx = self.order[self.start:self.start + size]
        self.start += size
        if self.start >= self.n:
            self.order, self.start = self.rng.permutation(self.n), 0
        return idx


def train_reward_ensemble_surf(ensemble: RewardEnsemble, optimizer: MemberAdam,
                               data: Sequence[PreferenceData], unlabelled: Sequence[PreferenceData],
                               batch_size: int, epochs: int, segment_length: int, window: int, crop: int,
                               tau: float, weight: float, batch_ratio: int,
                               rngs: Sequence[np.random.Generator]) -> list[RewardTraining | None]:
    """SURF's reward update of every seed e: :func:`surf_iterations` steps, each on ``batch_size`` cropped
    labelled pairs of ``data[e]`` plus ``weight`` times :func:`pseudo_label_loss` on ``batch_size *
    batch_ratio`` unlabelled pairs of ``unlabelled[e]`` per model, every draw from ``rngs[e]``. Pairs hold
    ``segment_length + 2 window`` steps. Returns, per seed, the iterations, the mean supervised loss and the
    models' accuracy on the cropped labelled pairs (None for a seed without labels, which does not train)."""
    sizes = [len(d) for d in data]
    if max(sizes) == 0:
        raise ValueError("train_reward_ensemble_surf needs at least one labelled pair, got none for any seed")
    models, device = ensemble.size, ensemble.device
    stored = segment_length + 2 * window
    for d in data:
        if d.obs_1 is not None and d.obs_1.shape[1] != stored:
            raise ValueError(f"SURF pairs must hold segment_length + 2 window = {stored} steps, "
                             f"got {d.obs_1.shape[1]}")
    iterations = [surf_iterations(n, epochs, batch_size) for n in sizes]
    labelled = [[_Shuffled(n, rng) for _ in range(models)] if n else [] for n, rng in zip(sizes, rngs,
                                                                                          strict=True)]
    unlabelled_order = [[_Shuffled(len(u), rng) for _ in range(models)] if len(u) else []
                        for u, rng in zip(unlabelled, rngs, strict=True)]
    use_unlabelled = weight > 0 and all(unlabelled_order)
    loss_sum, acc_sum, strict_sum, seen = (np.zeros(len(data)) for _ in range(4))
    for it in range(max(iterations)):
        active = np.array([it < n for n in iterations])
        idx, u_idx, l_counts, u_counts = [], [], [], []
        for e in range(len(data)):
            row, u_row = [], []
            for m in range(models):  # one model after the other, as a single run draws
                row.append(labelled[e][m].next(batch_size) if active[e] else np.zeros(0, np.int64))
                if use_unlabelled and active[e]:
                    u_row.append(unlabelled_order[e][m].next(batch_size * batch_ratio))
                else:
                    u_row.append(np.zeros(0, np.int64))
            idx.append(row)
            u_idx.append(u_row)
            l_counts.append([len(i) for i in row])
            u_counts.append([len(i) for i in u_row])
        (obs_1, act_1, obs_2, act_2, label), w = gather_pairs(data, idx, device)
        masks = _masks_in_draw_order(l_counts, u_counts, obs_1.shape[2], stored, segment_length, crop, rngs,
                                     device, active, use_unlabelled)
        logits = ((ensemble.model_rewards(obs_1, act_1) * masks[0]).sum(-1)
                  - (ensemble.model_rewards(obs_2, act_2) * masks[1]).sum(-1))
        loss, summed, correct, strict = weighted_preference_loss(logits, label, w)
        if use_unlabelled:
            (*u_pairs, _), u_weight = gather_pairs(unlabelled, u_idx, device)
            pseudo, _ = pseudo_label_loss(ensemble.model_rewards, *u_pairs, tau, window, masks[2:],
                                          u_weight)
            loss = loss + weight * pseudo
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step(torch.as_tensor(active))
        loss_sum += summed.sum(1).cpu().numpy()
        acc_sum += correct.sum(1).cpu().numpy()
        strict_sum += strict.sum(1).cpu().numpy()
        seen += np.asarray(l_counts).sum(1)
    accuracy = [a / s if s else float("nan") for a, s in zip(acc_sum, strict_sum, strict=True)]
    return [RewardTraining(iterations[e], loss_sum[e] / seen[e], accuracy[e]) if sizes[e] else None
            for e in range(len(data))]


def _masks_in_draw_order(l_counts: list[list[int]], u_counts: list[list[int]], width: int, stored: int,
                         length: int, crop: int, rngs: Sequence[np.random.Generator], device: torch.device,
                         active: np.ndarray, use_unlabelled: bool) -> tuple[torch.Tensor, ...]:
    """The labelled and unlabelled crop masks, (E, M, B, stored) each (zero for padding), drawn from each
    seed's own generator, model after model: the labelled pairs' masks, then the unlabelled ones."""
    members, models = len(l_counts), len(l_counts[0])
    u_width = max(max(row) for row in u_counts) if use_unlabelled else 0
    out = torch.zeros(2, members, models, width, stored, device=device)
    u_out = torch.zeros(2, members, models, u_width, stored, device=device)
    for e in np.flatnonzero(active):
        for m in range(models):
            count = l_counts[e][m]
            first, second = crop_masks(count, stored, length, crop, rngs[e], device)
            out[0, e, m, :count], out[1, e, m, :count] = first, second
            if use_unlabelled:
                count = u_counts[e][m]
                u_out[0, e, m, :count], u_out[1, e, m, :count] = crop_masks(count, stored, length, crop,
                                                                            rngs[e], device)
    return out[0], out[1], u_out[0], u_out[1]
