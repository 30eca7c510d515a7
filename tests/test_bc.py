"""ipl_core.bc: behaviour cloning recovers a deterministic behaviour policy and rejects bad data."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from ipl_core.bc import behaviour_cloning
from ipl_core.data.datasets import OfflineDataset


def _dataset(actions_of: Callable[[np.ndarray], np.ndarray], n: int = 512, seed: int = 0) -> OfflineDataset:
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    act = actions_of(obs).astype(np.float32)
    zeros = np.zeros(n, np.float32)
    return OfflineDataset(obs, act, obs, zeros, zeros, zeros, source="bc-test")


def test_behaviour_cloning_recovers_a_deterministic_policy() -> None:
    target = lambda obs: np.clip(-0.8 * obs[:, ::-1], -1, 1)  # noqa: E731
    data = _dataset(target)
    actor = behaviour_cloning(data, (32, 32), steps=1500, batch_size=128, lr=3e-3, seed=0)
    test_obs = np.random.default_rng(1).uniform(-1, 1, size=(200, 2)).astype(np.float32)
    error = np.abs(actor.act(torch.as_tensor(test_obs)[None])[0].numpy() - target(test_obs)).max()
    assert error < 0.15
    untrained = behaviour_cloning(data, (32, 32), steps=1, seed=0)
    assert np.abs(untrained.act(torch.as_tensor(test_obs)[None])[0].numpy() - target(test_obs)).max() > 0.3


def test_behaviour_cloning_is_seeded() -> None:
    data = _dataset(lambda obs: np.tanh(obs))
    a = behaviour_cloning(data, (16,), steps=20, seed=4)
    b = behaviour_cloning(data, (16,), steps=20, seed=4)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_behaviour_cloning_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"actions in \[-1, 1\]"):
        behaviour_cloning(_dataset(lambda obs: 3 * obs), steps=1)
    with pytest.raises(ValueError, match="steps"):
        behaviour_cloning(_dataset(lambda obs: obs), steps=0)
