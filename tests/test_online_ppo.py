"""Preference PPO's pieces: GAE against a hand computation (truncation vs terminal), the clipped loss, and
the member axis (each member's update is that of a run of its seed alone)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerance import run_tolerance, scaled_gap

from ipl_core.online.config import OnlineConfig
from ipl_core.online.members import member_slice
from ipl_core.online.ppo import PPOAgent, gae, ppo_loss, ppo_update


def test_gae_bootstraps_truncations_and_stops_at_episode_ends() -> None:
    gamma, lam = 0.5, 0.5
    rewards = np.array([1.0, 1.0, 1.0, 1.0])
    values = np.array([0.0, 0.0, 0.0, 0.0])
    next_values = np.array([2.0, 2.0, 2.0, 2.0])
    terminated = np.array([0.0, 1.0, 0.0, 0.0])  # step 1 ends in a terminal state
    end = np.array([False, True, True, False])  # step 2 is truncated; step 3 ends the rollout
    advantages, returns = gae(rewards, values, next_values, terminated, end, gamma, lam)
    deltas = np.array([1 + 0.5 * 2, 1.0, 1 + 0.5 * 2, 1 + 0.5 * 2])  # no bootstrap only at the terminal
    expected = np.array([deltas[0] + 0.25 * deltas[1], deltas[1], deltas[2], deltas[3]])
    assert np.allclose(advantages, expected) and np.allclose(returns, expected + values)


def test_log_prob_matches_torch_distributions() -> None:
    torch.manual_seed(0)
    agent = PPOAgent(3, 2, OnlineConfig(ppo_hidden_dim=8, ppo_hidden_depth=1))
    with torch.no_grad():
        agent.log_std.copy_(torch.tensor([-0.3, 0.2]))
    obs, action = torch.randn(1, 5, 3), torch.randn(1, 5, 2)
    logp, entropy = agent.log_prob(obs, action)
    dist = torch.distributions.Normal(agent.policy(obs), agent.log_std.exp())
    assert torch.allclose(logp, dist.log_prob(action).sum(-1), atol=1e-6)
    assert torch.allclose(entropy, dist.entropy().sum(-1), atol=1e-6)


def test_ppo_loss_clips_the_ratio() -> None:
    torch.manual_seed(0)
    agent = PPOAgent(2, 1, OnlineConfig(ppo_hidden_dim=8, ppo_hidden_depth=1, ppo_clip=0.2, ppo_vf_coef=0.0))
    obs, action = torch.randn(1, 4, 2), torch.randn(1, 4, 1)
    logp, _ = agent.log_prob(obs, action)
    old = logp.detach() - np.log(2.0)  # ratio = 2 everywhere
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    loss, metrics = ppo_loss(agent, obs, action, old, advantages, torch.zeros(1, 4))
    # positive advantages are clipped at 1.2; negative ones keep the unclipped 2 (the pessimistic min)
    assert loss.shape == (1,) and loss.item() == pytest.approx(-(1.2 + 1.2 - 2 - 2) / 4, abs=1e-5)
    assert metrics["clip_fraction"].item() == 1.0


def test_ppo_update_raises_the_probability_of_good_actions() -> None:
    torch.manual_seed(0)
    cfg = OnlineConfig(ppo_hidden_dim=16, ppo_hidden_depth=1, ppo_lr=1e-2, ppo_epochs=20, ppo_minibatch=32)
    agent = PPOAgent(1, 1, cfg)
    obs = np.zeros((1, 64, 1), np.float32)
    action = np.random.default_rng(0).normal(size=(1, 64, 1)).astype(np.float32)
    with torch.no_grad():
        old_logp = agent.log_prob(torch.as_tensor(obs), torch.as_tensor(action))[0].numpy()
    advantages = action[..., 0].astype(np.float64)  # actions above 0 are better
    ppo_update(agent, obs, action, old_logp, advantages, advantages, [np.random.default_rng(0)])
    assert agent.policy(torch.zeros(1, 1, 1)).item() > 0.1


def test_members_update_as_their_seeds_alone() -> None:
    """Two members updated together end where each seed's own agent, updated alone on its own rollout and
    shuffling generator, ends; the gradient clip acts on each member's norm (it binds: max norm 0.05)."""
    cfg = OnlineConfig(ppo_hidden_dim=16, ppo_hidden_depth=2, ppo_lr=1e-2, ppo_epochs=3, ppo_minibatch=16,
                       ppo_max_grad_norm=0.05)
    seeds, data = [3, 8], np.random.default_rng(0)
    obs = data.normal(size=(2, 40, 3)).astype(np.float32)
    action = data.normal(size=(2, 40, 2)).astype(np.float32)
    advantages = data.normal(size=(2, 40)) * np.array([[1.0], [10.0]])
    returns = data.normal(size=(2, 40))
    together = PPOAgent(3, 2, cfg, seeds)
    with torch.no_grad():
        old_logp = together.log_prob(torch.as_tensor(obs), torch.as_tensor(action))[0].numpy() - 0.1
    metrics = ppo_update(together, obs, action, old_logp, advantages, returns,
                         [np.random.default_rng(s) for s in seeds])
    assert set(metrics) == {"policy_loss", "value_loss", "clip_fraction"}
    assert metrics["value_loss"].shape == (2,)
    assert not np.allclose(together.log_std[0].detach(), together.log_std[1].detach())
    for e, seed in enumerate(seeds):
        alone = PPOAgent(3, 2, cfg, [seed])
        single = ppo_update(alone, obs[e:e + 1], action[e:e + 1], old_logp[e:e + 1], advantages[e:e + 1],
                            returns[e:e + 1], [np.random.default_rng(seed)])
        # 3 epochs of 3 minibatches: the float32 tolerance of 9 updates (tests/tolerance.py); the policy
        # loss is a mean of terms of size ~1 (normalised advantages) that cancel, so its scale is 1
        tolerance = run_tolerance(cfg.ppo_epochs * 3)
        mine = member_slice(together.state_dict(), e)
        for name, value in alone.state_dict().items():
            assert scaled_gap(mine[name].flatten().numpy(), value.flatten().numpy()) <= tolerance, name
        for name, value in single.items():
            floor = 1.0 if name == "policy_loss" else 0.0
            assert scaled_gap(np.atleast_1d(metrics[name][e]), np.atleast_1d(value), floor) <= tolerance, name
