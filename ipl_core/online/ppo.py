"""Preference PPO (Christiano et al. 2017; B-Pref's re-implementation with PPO): the on-policy baseline.

The same reward ensemble, queries, teacher and schedule as PEBBLE; the learner is PPO (Schulman et al.
2017) instead of SAC, so nothing is relabelled: each rollout is scored by the current reward model when
it is used. Advantages are GAE estimates that bootstrap through time-limit truncations and stop at true
terminals. The loop lives in :func:`ipl_core.online.train.train_online` (``algorithm="ppo"``). Taught in
the chapter "PEBBLE and scripted teachers" (book/online/pebble.ipynb).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ipl_core.nets import mlp
from ipl_core.online.config import OnlineConfig


class PPOAgent(nn.Module):
    """A Gaussian policy with a state-independent log-std and a separate value network."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: OnlineConfig) -> None:
        super().__init__()
        self.cfg = cfg
        hidden = (cfg.ppo_hidden_dim,) * cfg.ppo_hidden_depth
        self.policy = mlp(obs_dim, act_dim, hidden, activation=nn.Tanh, output_gain=0.01)
        self.log_std = nn.Parameter(torch.zeros(act_dim))
        self.value = mlp(obs_dim, 1, hidden, activation=nn.Tanh, output_gain=1.0)
        self.device = torch.device(cfg.device)
        self.to(self.device)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=cfg.ppo_lr)
        self.updates = 0

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi(a|s) of unclipped actions and the policy's entropy, per state."""
        mean, log_std = self.policy(obs), self.log_std.expand(action.shape)
        z = (action - mean) / log_std.exp()
        logp = (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        entropy = (log_std + 0.5 * (1 + math.log(2 * math.pi))).sum(-1)
        return logp, entropy

    @torch.no_grad()
    def sample(self, obs: np.ndarray, generator: torch.Generator) -> tuple[np.ndarray, float, float]:
        """An unclipped action (the environment receives it clipped to [-1, 1]), its log-prob and V(s). The
        noise is drawn on the CPU from ``generator`` whatever the device."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        mean = self.policy(x)
        action = mean + self.log_std.exp() * torch.randn(mean.shape, generator=generator).to(self.device)
        return action.squeeze(0).cpu().numpy(), float(self.log_prob(x, action)[0]), float(self.value(x))

    @torch.no_grad()
    def act(self, obs: np.ndarray, generator: torch.Generator | None,
            deterministic: bool = False) -> np.ndarray:
        """The evaluation action: the clipped mean (or a clipped sample)."""
        if deterministic or generator is None:
            mean = self.policy(torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0))
            return np.clip(mean.squeeze(0).cpu().numpy(), -1.0, 1.0)
        return np.clip(self.sample(obs, generator)[0], -1.0, 1.0)

    @torch.no_grad()
    def value_estimate(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """V(s), the on-policy critic's estimate of the return (compared with Monte-Carlo returns)."""
        return self.value(obs.to(self.device)).squeeze(-1).cpu()


def gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray, terminated: np.ndarray,
        episode_end: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates and value targets of one rollout, in time order.

    delta_t = r_t + gamma (1 - terminated_t) V(s'_t) - V(s_t) bootstraps through truncations (V(s'_t) is
    the value of the real next state), and the recursion A_t = delta_t + gamma lambda A_{t+1} stops at
    every episode end (terminated or truncated) and at the end of the rollout.
    """
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    advantages = np.zeros_like(deltas, dtype=np.float64)
    running = 0.0
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + (0.0 if episode_end[t] else gamma * lam * running)
        advantages[t] = running
    return advantages, advantages + values


def ppo_loss(agent: PPOAgent, obs: torch.Tensor, action: torch.Tensor, old_logp: torch.Tensor,
             advantages: torch.Tensor, returns: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate objective + value regression - entropy bonus (PPO, Schulman et al. 2017)."""
    cfg = agent.cfg
    logp, entropy = agent.log_prob(obs, action)
    ratio = (logp - old_logp).exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - cfg.ppo_clip, 1 + cfg.ppo_clip) * advantages)
    value_loss = (agent.value(obs).squeeze(-1) - returns).pow(2).mean()
    loss = -surrogate.mean() + cfg.ppo_vf_coef * value_loss - cfg.ppo_ent_coef * entropy.mean()
    clipped = ((ratio - 1).abs() > cfg.ppo_clip).float().mean()
    return loss, {"policy_loss": -surrogate.mean().item(), "value_loss": value_loss.item(),
                  "clip_fraction": clipped.item()}


def ppo_update(agent: PPOAgent, obs: np.ndarray, action: np.ndarray, old_logp: np.ndarray,
               advantages: np.ndarray, returns: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """``ppo_epochs`` passes over the rollout in shuffled minibatches; advantages normalised per minibatch."""
    cfg = agent.cfg
    tensors = [torch.as_tensor(x, dtype=torch.float32, device=agent.device)
               for x in (obs, action, old_logp, advantages, returns)]
    metrics: dict[str, float] = {}
    for _ in range(cfg.ppo_epochs):
        order = rng.permutation(len(obs))
        for start in range(0, len(obs), cfg.ppo_minibatch):
            idx = torch.as_tensor(order[start:start + cfg.ppo_minibatch], device=agent.device)
            o, a, lp, adv, ret = (t[idx] for t in tensors)
            adv = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)
            loss, metrics = ppo_loss(agent, o, a, lp, adv, ret)
            agent.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), cfg.ppo_max_grad_norm)
            agent.optimizer.step()
    return metrics
