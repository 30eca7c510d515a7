"""Minibatches drawn from the data containers, as tensors, with IPL's segment sub-sampling augmentation.

:func:`sample_preference_batch` draws labelled pairs and cuts every segment of the batch to the same random
window of ``subsample_length`` observations (IPL App. B.1: one start per batch); :func:`sample_offline_batch`
draws transitions; :func:`stack_batches` stacks the batches of several members (seeds) along a leading member
axis, the layout every update of :mod:`ipl_core.offline` takes. Indices come from an explicit
``np.random.Generator``. Taught in "IPL in practice" (book/ipl/offline.ipynb).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, TypeVar

import numpy as np
import torch

from ipl_core.data.datasets import OfflineDataset, PreferenceDataset


class PreferenceBatch(NamedTuple):
    """B labelled pairs of segments of S observations each (S - 1 transitions)."""

    obs_1: torch.Tensor
    """(B, S, obs_dim)."""
    act_1: torch.Tensor
    """(B, S, act_dim)."""
    obs_2: torch.Tensor
    """(B, S, obs_dim)."""
    act_2: torch.Tensor
    """(B, S, act_dim)."""
    label: torch.Tensor
    """(B,): P[segment 1 preferred] in {0, 0.5, 1}."""
    terminal_1: torch.Tensor
    """(B, S): 1 where the transition from step t ends the episode in a terminal state."""
    terminal_2: torch.Tensor
    """(B, S)."""


class OfflineBatch(NamedTuple):
    """N transitions (s, a, r, s', terminal)."""

    obs: torch.Tensor
    """(N, obs_dim)."""
    act: torch.Tensor
    """(N, act_dim)."""
    next_obs: torch.Tensor
    """(N, obs_dim)."""
    reward: torch.Tensor
    """(N,): ground truth; only the oracle reads it."""
    terminal: torch.Tensor
    """(N,): 1 where s' is terminal (no bootstrapping); time-outs are not terminals."""


def _tensor(array: np.ndarray, device: str | torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32), device=device)


def sample_preference_batch(data: PreferenceDataset, batch_size: int, subsample_length: int,
                            rng: np.random.Generator, device: str | torch.device = "cpu") -> PreferenceBatch:
    """Draw ``batch_size`` pairs uniformly (with replacement) and cut one random window of
    ``subsample_length`` observations, start ~ Unif{0, ..., S - s}, shared by the whole batch
    (IPL App. B.1). ``subsample_length=0`` keeps the whole segments."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    length = data.segment_length
    if subsample_length == 0:
        subsample_length = length
    if not 2 <= subsample_length <= length:
        raise ValueError(
            f"subsample_length must lie in [2, {length}] (the segments hold {length} observations) or be 0, "
            f"got {subsample_length}"
        )
    index = rng.integers(0, len(data), size=batch_size)
    start = int(rng.integers(0, length - subsample_length + 1))
    window = slice(start, start + subsample_length)

    def terminal(array: np.ndarray | None) -> torch.Tensor:
        if array is None:
            return torch.zeros(batch_size, subsample_length, device=device)
        return _tensor(array[index, window], device)

    return PreferenceBatch(
        _tensor(data.obs_1[index, window], device), _tensor(data.action_1[index, window], device),
        _tensor(data.obs_2[index, window], device), _tensor(data.action_2[index, window], device),
        _tensor(data.label[index], device), terminal(data.terminal_1), terminal(data.terminal_2),
    )


def sample_offline_batch(data: OfflineDataset, batch_size: int, rng: np.random.Generator,
                         device: str | torch.device = "cpu") -> OfflineBatch:
    """Draw ``batch_size`` transitions uniformly with replacement (none for ``batch_size=0``)."""
    if batch_size < 0:
        raise ValueError(f"batch_size must be non-negative, got {batch_size}")
    index = rng.integers(0, len(data), size=batch_size)
    return OfflineBatch(
        _tensor(data.observations[index], device), _tensor(data.actions[index], device),
        _tensor(data.next_observations[index], device), _tensor(data.rewards[index], device),
        _tensor(data.terminals[index], device),
    )


def full_preference_batch(data: PreferenceDataset, device: str | torch.device = "cpu") -> PreferenceBatch:
    """Every pair with whole segments (for evaluating preference accuracy on a dataset)."""
    n, length = len(data), data.segment_length

    def terminal(array: np.ndarray | None) -> torch.Tensor:
        return torch.zeros(n, length, device=device) if array is None else _tensor(array, device)

    return PreferenceBatch(
        _tensor(data.obs_1, device), _tensor(data.action_1, device), _tensor(data.obs_2, device),
        _tensor(data.action_2, device), _tensor(data.label, device), terminal(data.terminal_1),
        terminal(data.terminal_2),
    )


Batch = TypeVar("Batch", PreferenceBatch, OfflineBatch)


def stack_batches(batches: Sequence[Batch]) -> Batch:
    """The members' batches stacked along a new leading member axis: fields (E, ...)."""
    return type(batches[0])(*(torch.stack(fields) for fields in zip(*batches, strict=True)))


def expand_batch(batch: Batch, members: int) -> Batch:
    """One batch seen by every member, without copying: fields (E, ...)."""
    return type(batch)(*(field.unsqueeze(0).expand(members, *field.shape) for field in batch))
