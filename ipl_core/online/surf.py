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

import numpy as np
import torch
import torch.nn.functional as F

from ipl_core.online.pebble import PreferenceData, RewardEnsemble, RewardTraining


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


def cropped_logits(member: torch.nn.Module, obs_1: torch.Tensor, act_1: torch.Tensor, obs_2: torch.Tensor,
                   act_2: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Bradley-Terry logits (MRN Eq. 1) of the member's rewards summed over each segment's crop."""
    return (member(obs_1, act_1) * masks[0]).sum(-1) - (member(obs_2, act_2) * masks[1]).sum(-1)


def pseudo_label_loss(member: torch.nn.Module, obs_1: torch.Tensor, act_1: torch.Tensor,
                      obs_2: torch.Tensor, act_2: torch.Tensor, tau: float, window: int,
                      masks: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, float]:
    """SURF's semi-supervised loss on unlabelled pairs.

    The hard pseudo-label is the member's own preference on the uncropped central steps, kept where its
    confidence max(P, 1 - P) is at least ``tau``; the cross-entropy is taken on the crops ``masks``.
    Returns the loss (mean over all unlabelled pairs, unconfident ones counting zero) and the share used.
    """
    reward_1, reward_2 = member(obs_1, act_1), member(obs_2, act_2)
    with torch.no_grad():
        p = torch.sigmoid(central(reward_1, window).sum(-1) - central(reward_2, window).sum(-1))
        label = (p > 0.5).float()
        keep = (torch.maximum(p, 1 - p) >= tau).float()
    logits = (reward_1 * masks[0]).sum(-1) - (reward_2 * masks[1]).sum(-1)
    loss = (F.binary_cross_entropy_with_logits(logits, label, reduction="none") * keep).mean()
    return loss, keep.mean().item()


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


def train_reward_ensemble_surf(ensemble: RewardEnsemble, optimizer: torch.optim.Optimizer,
                               data: PreferenceData, unlabelled: PreferenceData, batch_size: int,
                               epochs: int, segment_length: int, window: int, crop: int, tau: float,
                               weight: float, batch_ratio: int, rng: np.random.Generator) -> RewardTraining:
    """SURF's reward update: :func:`surf_iterations` steps, each on ``batch_size`` cropped labelled pairs
    plus ``weight`` times :func:`pseudo_label_loss` on ``batch_size * batch_ratio`` unlabelled pairs per
    member. Pairs hold ``segment_length + 2 window`` steps. Returns the iterations, the mean supervised
    loss and the members' accuracy on the cropped labelled pairs."""
    n, members, device = len(data), len(ensemble.members), ensemble.device
    if n == 0:
        raise ValueError("train_reward_ensemble_surf needs at least one labelled pair")
    iterations = surf_iterations(n, epochs, batch_size)
    stored = segment_length + 2 * window
    labelled = [_Shuffled(n, rng) for _ in range(members)]
    unlabelled_order = [_Shuffled(len(unlabelled), rng) for _ in range(members)] if len(unlabelled) else []
    loss_sum = acc_sum = 0.0
    seen = 0
    for _ in range(iterations):
        total = torch.zeros((), device=device)
        for m, member in enumerate(ensemble.members):
            *pairs, label = data.tensors(labelled[m].next(batch_size), device)
            if pairs[0].shape[1] != stored:
                raise ValueError(f"SURF pairs must hold segment_length + 2 window = {stored} steps, "
                                 f"got {pairs[0].shape[1]}")
            masks = crop_masks(label.shape[0], stored, segment_length, crop, rng, device)
            logits = cropped_logits(member, *pairs, masks)
            loss = F.binary_cross_entropy_with_logits(logits, label)
            loss_sum += loss.item() * label.shape[0]
            acc_sum += ((logits > 0).float() == label).float().sum().item()
            seen += label.shape[0]
            if unlabelled_order and weight > 0:
                *u_pairs, _ = unlabelled.tensors(unlabelled_order[m].next(batch_size * batch_ratio), device)
                masks = crop_masks(u_pairs[0].shape[0], stored, segment_length, crop, rng, device)
                loss = loss + weight * pseudo_label_loss(member, *u_pairs, tau, window, masks)[0]
            total = total + loss
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    return RewardTraining(iterations, loss_sum / seen, acc_sum / seen)
