"""SAC pieces against closed forms: the squashed-Gaussian log-density, the Bellman target, Polyak, returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ipl_core.nets import polyak_update
from ipl_core.online.config import OnlineConfig
from ipl_core.online.replay import Batch
from ipl_core.online.sac import (
    DoubleCritic,
    SACAgent,
    TanhGaussianActor,
    bellman_loss,
    discounted_returns,
    sac_update,
)

CFG = OnlineConfig(algorithm="sac", hidden_dim=16, hidden_depth=1, batch_size=8)


def test_log_prob_matches_the_change_of_variables() -> None:
    torch.manual_seed(0)
    actor = TanhGaussianActor(3, 2, 16, 1).double()
    obs = torch.randn(1, 5, 3, dtype=torch.float64)
    action, log_prob = actor.sample(obs, [torch.Generator().manual_seed(1)])
    mean, log_std = actor(obs)
    base = torch.distributions.Normal(mean, log_std.exp())
    pre = torch.atanh(action)
    expected = (base.log_prob(pre) - torch.log1p(-action.pow(2))).sum(-1)
    assert torch.allclose(log_prob, expected, atol=1e-6)
    assert torch.all(action.abs() < 1)


def test_log_std_stays_in_bounds() -> None:
    actor = TanhGaussianActor(3, 2, 16, 1, log_std_min=-5, log_std_max=2)
    _, log_std = actor(1e4 * torch.randn(1, 100, 3))
    assert log_std.min() >= -5 and log_std.max() <= 2


def test_bellman_loss_bootstraps_only_non_terminals() -> None:
    critic = DoubleCritic(1, 1, 4, 1)
    for p in critic.parameters():
        torch.nn.init.zeros_(p)  # Q = 0 everywhere
    batch = Batch(torch.zeros(1, 2, 1), torch.zeros(1, 2, 1), torch.tensor([[1.0, 1.0]]),
                  torch.zeros(1, 2, 1), torch.tensor([[0.0, 1.0]]))
    target_v = torch.tensor([[10.0, 10.0]])
    # targets: 1 + 0.5 * 10 = 6 (not terminal) and 1 (terminal); each head's MSE = (36 + 1) / 2
    loss = bellman_loss(critic, batch, batch.reward, target_v, gamma=0.5)
    assert loss.shape == (1,) and loss.item() == pytest.approx(2 * 18.5)


def test_polyak_update() -> None:
    source, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = target.weight.detach().clone()
    polyak_update(target, source, tau=0.25)
    assert torch.allclose(target.weight, 0.75 * before + 0.25 * source.weight)
    # per member: only the members marked true move
    before = target.weight.detach().clone()
    polyak_update(target, source, tau=0.25, members=torch.tensor([False, True]))
    assert torch.equal(target.weight[0], before[0])
    assert torch.allclose(target.weight[1], 0.75 * before[1] + 0.25 * source.weight[1])


def test_discounted_returns() -> None:
    assert np.allclose(discounted_returns(np.array([1.0, 2.0, 4.0]), 0.5), [1 + 1 + 1, 2 + 2, 4])


def test_sac_update_moves_every_part_and_targets_lag() -> None:
    torch.manual_seed(0)
    agent = SACAgent(3, 2, CFG)
    actor_before = [p.detach().clone() for p in agent.actor.parameters()]
    critic_before = [p.detach().clone() for p in agent.critic.parameters()]
    alpha_before = agent.alpha.item()
    batch = Batch(torch.randn(1, 8, 3), torch.rand(1, 8, 2) * 2 - 1, torch.randn(1, 8), torch.randn(1, 8, 3),
                  torch.zeros(1, 8))
    metrics = sac_update(agent, batch, [torch.Generator().manual_seed(0)])
    assert set(metrics) == {"critic_loss", "actor_loss", "alpha", "entropy"}
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, agent.critic.parameters(), strict=True))
    assert agent.alpha.item() != alpha_before
    # target_update_interval = 2: after one update the target still equals the initial critic
    target = list(agent.critic_target.parameters())
    assert all(torch.equal(a, b) for a, b in zip(critic_before, target, strict=True))
    sac_update(agent, batch, [torch.Generator().manual_seed(0)])
    target = list(agent.critic_target.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, target, strict=True))


def test_target_entropy_is_minus_action_dim() -> None:
    agent = SACAgent(3, 4, CFG)
    assert agent.target_entropy == -4.0
    assert agent.alpha.item() == pytest.approx(CFG.init_temperature)
    assert agent.act(np.zeros((1, 3), np.float32), [torch.Generator()], deterministic=True).shape == (1, 4)
