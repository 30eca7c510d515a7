"""SURF (Park et al. 2022): semi-supervised reward learning with pseudo-labels and temporal cropping.

At each feedback round SURF also stores unlabelled pairs. While training the reward ensemble, each
member (i) sees temporally cropped segments (a random window of each segment, independently for the two
segments of a pair) and (ii) adds a loss on unlabelled pairs that it itself predicts with confidence
above ``tau``, using its own prediction as a hard pseudo-label, weighted by ``lambda``. Taught in the
chapter "SURF" (book/online/surf.ipynb).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ipl_core.online.pebble import (
    PairTensors,
    PreferenceData,
    RewardEnsemble,
    RewardTraining,
    train_reward_ensemble,
)


def temporal_crop(obs_1: torch.Tensor, act_1: torch.Tensor, obs_2: torch.Tensor, act_2: torch.Tensor,
                  max_crop: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """Crop every segment of a batch to one random length ``T - c``, c ~ U{0..max_crop}, each segment at
    its own random start (SURF's temporal data augmentation)."""
    n, length = obs_1.shape[:2]
    if not 0 <= max_crop < length:
        raise ValueError(f"max_crop must lie in [0, {length}), got {max_crop}")
    new_length = length - int(rng.integers(0, max_crop + 1))
    offsets = torch.arange(new_length)
    out = []
    for obs, act in ((obs_1, act_1), (obs_2, act_2)):
        starts = torch.as_tensor(rng.integers(0, length - new_length + 1, size=n))
        idx = starts[:, None] + offsets[None, :]
        rows = torch.arange(n)[:, None]
        out += [obs[rows, idx], act[rows, idx]]
    return tuple(out)


def pseudo_label_loss(member: torch.nn.Module, obs_1: torch.Tensor, act_1: torch.Tensor,
                      obs_2: torch.Tensor, act_2: torch.Tensor, tau: float) -> tuple[torch.Tensor, float]:
    """Cross-entropy against the member's own confident hard labels; zero weight where max(P, 1-P) <= tau.

    Returns the loss (mean over all unlabelled pairs of the batch) and the share of pairs used.
    """
    logits = member(obs_1, act_1).sum(-1) - member(obs_2, act_2).sum(-1)
    with torch.no_grad():
        p = torch.sigmoid(logits)
        label = (p > 0.5).to(logits.dtype)
        mask = (torch.maximum(p, 1 - p) > tau).to(logits.dtype)
    loss = (F.binary_cross_entropy_with_logits(logits, label, reduction="none") * mask).mean()
    return loss, mask.mean().item()


def train_reward_ensemble_surf(ensemble: RewardEnsemble, optimizer: torch.optim.Optimizer,
                               data: PreferenceData, unlabelled: PreferenceData, batch_size: int,
                               max_epochs: int, acc_stop: float, max_crop: int, tau: float,
                               weight: float, batch_ratio: int, rng: np.random.Generator
                               ) -> RewardTraining:
    """:func:`~ipl_core.online.pebble.train_reward_ensemble` with every labelled batch temporally cropped
    and, per member, ``weight`` times the pseudo-label loss on ``batch_size * batch_ratio`` cropped
    unlabelled pairs."""

    def crop(pairs: PairTensors) -> PairTensors:
        return temporal_crop(*pairs, max_crop, rng)  # type: ignore[return-value]

    def pseudo_labels(member: torch.nn.Module) -> torch.Tensor:
        if len(unlabelled) == 0 or weight <= 0:
            return torch.zeros(())
        *pairs, _ = unlabelled.tensors(rng.integers(0, len(unlabelled), size=batch_size * batch_ratio))
        return weight * pseudo_label_loss(member, *crop(tuple(pairs)), tau)[0]

    return train_reward_ensemble(ensemble, optimizer, data, batch_size, max_epochs, acc_stop, rng,
                                 augment=crop, extra_loss=pseudo_labels)
