"""SURF's temporal cropping and pseudo-labels; IPL online's implicit reward and regularised loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ipl_core.online.config import OnlineConfig
from ipl_core.online.ipl_online import implicit_reward, ipl_critic_loss
from ipl_core.online.pebble import PreferenceData, RewardEnsemble, train_reward_ensemble
from ipl_core.online.replay import Batch, Segments
from ipl_core.online.sac import SACAgent, soft_target_value
from ipl_core.online.surf import pseudo_label_loss, temporal_crop, train_reward_ensemble_surf


def test_temporal_crop_takes_contiguous_windows_of_one_length() -> None:
    n, t = 6, 10
    time = torch.arange(t, dtype=torch.float32)
    obs = time.view(1, t, 1).expand(n, t, 2).clone()
    act = time.view(1, t, 1).expand(n, t, 1).clone()
    rng = np.random.default_rng(0)
    lengths = set()
    for _ in range(30):
        o1, a1, o2, _ = temporal_crop(obs, act, obs, act, max_crop=3, rng=rng)
        assert o1.shape[1] == o2.shape[1] == a1.shape[1] and 7 <= o1.shape[1] <= 10
        lengths.add(o1.shape[1])
        for x in (o1[..., 0], o2[..., 0]):
            assert torch.all(x.diff(dim=1) == 1)  # contiguous
        assert torch.equal(o1[..., 0], a1[..., 0])  # observations and actions cropped together
    assert lengths == {7, 8, 9, 10}
    with pytest.raises(ValueError, match="max_crop"):
        temporal_crop(obs, act, obs, act, max_crop=10, rng=rng)


class _Fixed(torch.nn.Module):
    """A 'reward model' whose per-step reward is the first observation feature."""

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return obs[..., 0]


def test_pseudo_labels_only_above_the_threshold() -> None:
    obs_1 = torch.tensor([[[5.0]], [[0.1]], [[-5.0]]])  # logits 5, 0.1, -5 against zeros
    obs_2 = torch.zeros(3, 1, 1)
    act = torch.zeros(3, 1, 1)
    loss, used = pseudo_label_loss(_Fixed(), obs_1, act, obs_2, act, tau=0.9)
    assert used == pytest.approx(2 / 3)
    expected = 2 * torch.nn.functional.softplus(torch.tensor(-5.0)) / 3  # confident pairs, own labels
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_implicit_reward_is_q_minus_discounted_target_value() -> None:
    torch.manual_seed(0)
    agent = SACAgent(3, 2, OnlineConfig(hidden_dim=8, hidden_depth=1, gamma=0.9))
    obs, act, nxt = torch.randn(4, 3), torch.rand(4, 2), torch.randn(4, 3)
    done = torch.tensor([0.0, 1.0, 0.0, 0.0])
    r1, r2 = implicit_reward(agent, obs, act, nxt, done, torch.Generator().manual_seed(5))
    v = soft_target_value(agent, nxt, torch.Generator().manual_seed(5))
    q1, q2 = agent.critic(obs, act)
    assert torch.allclose(r1, q1 - 0.9 * (1 - done) * v) and torch.allclose(r2, q2 - 0.9 * (1 - done) * v)
    assert torch.allclose(r1[1], q1[1])  # a terminal step's implicit reward is its Q-value


def test_ipl_loss_regulariser_scales_with_lambda() -> None:
    rng = np.random.default_rng(0)
    n, t = 4, 3

    def seg() -> Segments:
        o = rng.normal(size=(n, t, 3)).astype(np.float32)
        return Segments(o, rng.uniform(-1, 1, (n, t, 2)).astype(np.float32), o[..., 0], o, np.zeros((n, t)))

    data = PreferenceData()
    data.add(seg(), seg(), np.array([1.0, 0.0, 1.0, 0.0], np.float32))
    batch = Batch(torch.randn(5, 3), torch.rand(5, 2), torch.zeros(5), torch.randn(5, 3), torch.zeros(5))
    losses = []
    for lam in (0.0, 1.0, 2.0):
        torch.manual_seed(0)
        agent = SACAgent(3, 2, OnlineConfig(hidden_dim=8, hidden_depth=1, ipl_lambda=lam))
        loss, _ = ipl_critic_loss(agent, batch, data, np.arange(n), torch.Generator().manual_seed(0))
        losses.append(loss.item())
    # the loss is affine in lambda: L(2) - L(1) = L(1) - L(0) = the regulariser, which is positive
    assert losses[2] - losses[1] == pytest.approx(losses[1] - losses[0], rel=1e-5)
    assert losses[1] > losses[0]


def _reward_data(seed: int) -> PreferenceData:
    rng = np.random.default_rng(seed)
    data = PreferenceData()
    pairs = []
    for _ in range(2):
        obs = rng.normal(size=(32, 6, 2)).astype(np.float32)
        pairs.append(Segments(obs, rng.normal(size=(32, 6, 1)).astype(np.float32), obs[..., 0], obs,
                              np.zeros((32, 6))))
    label = (pairs[0].true_reward.sum(1) > pairs[1].true_reward.sum(1)).astype(np.float32)
    data.add(pairs[0], pairs[1], label)
    return data


def _train(surf: bool, weight: float, max_crop: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    ensemble = RewardEnsemble(2, 1, 2, (16,))
    optimizer = torch.optim.Adam(ensemble.parameters(), lr=1e-2)
    rng = np.random.default_rng(1)
    if surf:
        train_reward_ensemble_surf(ensemble, optimizer, _reward_data(0), _reward_data(1), 8, 3, 1.1, max_crop,
                                   tau=0.0, weight=weight, batch_ratio=2, rng=rng)
    else:
        train_reward_ensemble(ensemble, optimizer, _reward_data(0), 8, 3, 1.1, rng)
    return [p.detach().clone() for p in ensemble.parameters()]


def test_surf_reward_training_is_pebbles_plus_cropping_and_pseudo_labels() -> None:
    pebble = _train(surf=False, weight=0.0, max_crop=0)
    same = _train(surf=True, weight=0.0, max_crop=0)  # no crop, no pseudo-labels: PEBBLE's update exactly
    assert all(torch.equal(a, b) for a, b in zip(pebble, same, strict=True))
    pseudo = _train(surf=True, weight=1.0, max_crop=0)
    cropped = _train(surf=True, weight=0.0, max_crop=3)
    assert not all(torch.equal(a, b) for a, b in zip(pebble, pseudo, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(pebble, cropped, strict=True))
