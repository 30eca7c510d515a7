"""The single-seed SAC of the online learners as it was before the seed axis (``nn.Linear`` networks, one
``torch.optim.Adam`` each, one run per process), kept for ``benchmarks/bench_online.py`` to time
the update before and after in one run. Not part of the library.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ipl_core.nets import mlp
from ipl_core.online.config import OnlineConfig
from ipl_core.online.replay import Batch


class TanhGaussianActor(nn.Module):
    """pi(a|s): a Gaussian in pre-squash space, squashed by tanh into ``[-1, 1]^|A|``."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dim: int, hidden_depth: int,
                 log_std_min: float = -5.0, log_std_max: float = 2.0) -> None:
        super().__init__()
        self.net = mlp(obs_dim, 2 * act_dim, (hidden_dim,) * hidden_depth)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-std of the pre-squash Gaussian; the log-std is squashed smoothly into its bounds."""
        mean, raw = self.net(obs).chunk(2, dim=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(raw) + 1)
        return mean, log_std

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action and its log-probability, with the tanh change of variables. The noise
        is drawn on the CPU (``generator`` is a CPU generator) and moved to the device, so a run draws the
        same noise on any device."""
        mean, log_std = self(obs)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype).to(mean.device)
        pre = mean + log_std.exp() * noise
        action = torch.tanh(pre)
        gaussian = -0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|
        log_det = 2 * (math.log(2) - pre - F.softplus(-2 * pre))
        return action, (gaussian - log_det).sum(-1)

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The evaluation action tanh(mean)."""
        return torch.tanh(self(obs)[0])


class DoubleCritic(nn.Module):
    """Two independent Q-networks Q1(s, a), Q2(s, a) (clipped double-Q)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dim: int, hidden_depth: int) -> None:
        super().__init__()
        self.q1 = mlp(obs_dim + act_dim, 1, (hidden_dim,) * hidden_depth)
        self.q2 = mlp(obs_dim + act_dim, 1, (hidden_dim,) * hidden_depth)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class SACAgent(nn.Module):
    """Actor, critic, target critic, log-temperature and their optimisers."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: OnlineConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.device = torch.device(cfg.device)
        self.actor = TanhGaussianActor(obs_dim, act_dim, cfg.hidden_dim, cfg.hidden_depth,
                                       cfg.log_std_min, cfg.log_std_max).to(self.device)
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.init_temperature), device=self.device))
        self.target_entropy = -float(act_dim)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)
        self.reset_critic()
        self.updates = 0

    def reset_critic(self) -> None:
        """Fresh critic, target and optimiser (PEBBLE resets the critic after unsupervised pre-training)."""
        self.critic = DoubleCritic(self.obs_dim, self.act_dim, self.cfg.hidden_dim,
                                   self.cfg.hidden_depth).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=self.cfg.critic_lr)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp().detach()

    @torch.no_grad()
    def act(self, obs: np.ndarray, generator: torch.Generator, deterministic: bool = False) -> np.ndarray:
        """One action for one observation."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        a = self.actor.deterministic(x) if deterministic else self.actor.sample(x, generator)[0]
        return a.squeeze(0).cpu().numpy()

    @torch.no_grad()
    def value_estimate(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """min_i Q_i(s, a), the estimate compared with Monte-Carlo returns (MRN Table 1)."""
        return torch.min(*self.critic(obs.to(self.device), action.to(self.device))).cpu()


@torch.no_grad()
def soft_target_value(agent: SACAgent, next_obs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``V-bar(s') = E_{a'~pi}[min_i Q-bar_i(s', a') - alpha log pi(a'|s')]`` (under MRN Eq. 4), 1 sample."""
    next_action, next_log_prob = agent.actor.sample(next_obs, generator)
    q1, q2 = agent.critic_target(next_obs, next_action)
    return torch.min(q1, q2) - agent.alpha * next_log_prob


def bellman_loss(critic: nn.Module, batch: Batch, reward: torch.Tensor, target_v: torch.Tensor,
                 gamma: float) -> torch.Tensor:
    """J_Q (MRN Eq. 4 and 9): squared soft Bellman residual of both heads; terminals do not bootstrap."""
    target = reward + gamma * (1.0 - batch.terminated) * target_v
    q1, q2 = critic(batch.obs, batch.action)
    return F.mse_loss(q1, target) + F.mse_loss(q2, target)


def sac_update(agent: SACAgent, batch: Batch, generator: torch.Generator,
               reward: torch.Tensor | None = None) -> dict[str, float]:
    """One SAC step: critic (MRN Eq. 4), actor (Eq. 5), temperature, then Polyak targets.

    ``reward`` replaces ``batch.reward`` (PEBBLE's state-entropy reward during pre-training).
    """
    cfg = agent.cfg
    target_v = soft_target_value(agent, batch.next_obs, generator)
    critic_loss = bellman_loss(agent.critic, batch, batch.reward if reward is None else reward, target_v,
                               cfg.gamma)
    agent.critic_opt.zero_grad(set_to_none=True)
    critic_loss.backward()
    agent.critic_opt.step()

    return {"critic_loss": critic_loss.item(), **actor_temperature_target_step(agent, batch.obs, generator)}


def actor_temperature_target_step(agent: SACAgent, obs: torch.Tensor, generator: torch.Generator
                                  ) -> dict[str, float]:
    """The rest of a SAC step after the critic's: actor (MRN Eq. 5), temperature towards the target
    entropy ``-|A|``, then the Polyak update of the target critic. Shared by SAC and IPL online."""
    cfg = agent.cfg
    action, log_prob = agent.actor.sample(obs, generator)
    q1, q2 = agent.critic(obs, action)
    actor_loss = (agent.alpha * log_prob - torch.min(q1, q2)).mean()
    agent.actor_opt.zero_grad(set_to_none=True)
    actor_loss.backward()
    agent.actor_opt.step()
    agent.critic_opt.zero_grad(set_to_none=True)  # the actor loss left gradients in the critic

    alpha_loss = -(agent.log_alpha * (log_prob.detach() + agent.target_entropy)).mean()
    agent.alpha_opt.zero_grad(set_to_none=True)
    alpha_loss.backward()
    agent.alpha_opt.step()

    agent.updates += 1
    if agent.updates % cfg.target_update_interval == 0:
        polyak_update(agent.critic, agent.critic_target, cfg.tau)
    return {"actor_loss": actor_loss.item(), "alpha": agent.alpha.item(), "entropy": -log_prob.mean().item()}


@torch.no_grad()
def polyak_update(source: nn.Module, target: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau source."""
    for p, p_target in zip(source.parameters(), target.parameters(), strict=True):
        p_target.lerp_(p, tau)
