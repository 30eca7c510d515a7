"""Preference PPO (Christiano et al. 2017; B-Pref's re-implementation with PPO): the on-policy baseline.

The same reward ensemble, queries, teacher and schedule as PEBBLE; the learner is PPO (Schulman et al.
2017) instead of SAC, so nothing is relabelled: each rollout is scored by the current reward model when
it is used. Advantages are GAE estimates that bootstrap through time-limit truncations and stop at true
terminals. Like SAC, every network has a leading member axis of E seeds (E = 1: one run) and every loss
returns one value per seed, (E,) (:mod:`ipl_core.online.members`). The loop lives in
:func:`ipl_core.online.train.train_online_seeds` (``algorithm="ppo"``). Taught in the chapter "PEBBLE and
scripted teachers" (book/online/pebble.ipynb).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ipl_core.nets import EnsembleMLP, member_noise
from ipl_core.online.config import OnlineConfig
from ipl_core.online.members import MemberAdam, clip_member_grad_norm_, init_generators
from ipl_core.online.sac import Metrics, metrics_of


class PPOAgent(nn.Module):
    """For each of E = ``len(seeds)`` members, a Gaussian policy with a state-independent log-std and a
    separate value network (tanh MLPs), and one :class:`~ipl_core.online.members.MemberAdam` for all.

    Member e draws its initial weights from a CPU generator seeded with ``seeds[e]`` (the policy, then the
    value network). Inputs are (E, N, obs_dim)."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: OnlineConfig, seeds: Sequence[int] | None = None
                 ) -> None:
        super().__init__()
        self.cfg = cfg
        self.seeds = [cfg.seed] if seeds is None else [int(s) for s in seeds]
        members = len(self.seeds)
        hidden = (cfg.ppo_hidden_dim,) * cfg.ppo_hidden_depth
        generators = init_generators(self.seeds)
        self.policy = EnsembleMLP((members,), obs_dim, act_dim, hidden, output_gain=0.01,
                                  generators=generators, activation=torch.tanh)
        self.log_std = nn.Parameter(torch.zeros(members, 1, act_dim))
        self.value = EnsembleMLP((members,), obs_dim, 1, hidden, output_gain=1.0, generators=generators,
                                 activation=torch.tanh)
        self.device = torch.device(cfg.device)
        self.to(self.device)
        self.optimizer = MemberAdam(self.parameters(), lr=cfg.ppo_lr)
        self.updates = np.zeros(members, np.int64)

    @property
    def members(self) -> int:
        """E, the number of members."""
        return len(self.seeds)

    def log_prob(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log pi(a|s) of unclipped actions and the policy's entropy, both (E, N)."""
        mean, log_std = self.policy(obs), self.log_std.expand(action.shape)
        z = (action - mean) / log_std.exp()
        logp = (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        entropy = (log_std + 0.5 * (1 + math.log(2 * math.pi))).sum(-1)
        return logp, entropy

    @torch.no_grad()
    def sample(self, obs: np.ndarray, generators: Sequence[torch.Generator]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One unclipped action per member (the environment receives it clipped to [-1, 1]), ``(E, |A|)``, for
        one observation per member, (E, obs_dim); its log-prob and V(s), (E,). Member e's noise comes from
        ``generators[e]``, a CPU generator, whatever the device."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(1)
        mean = self.policy(x)
        noise = member_noise(mean.shape[1:], generators).to(self.device)
        action = mean + self.log_std.exp() * noise
        logp = self.log_prob(x, action)[0][:, 0]
        value = self.value(x)[:, 0, 0]
        return action[:, 0].cpu().numpy(), logp.cpu().numpy(), value.cpu().numpy()

    @torch.no_grad()
    def act(self, obs: np.ndarray, generators: Sequence[torch.Generator] | None,
            deterministic: bool = False) -> np.ndarray:
        """The evaluation actions, ``(E, |A|)``: the clipped means (or clipped samples)."""
        if deterministic or generators is None:
            x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(1)
            return np.clip(self.policy(x)[:, 0].cpu().numpy(), -1.0, 1.0)
        return np.clip(self.sample(obs, generators)[0], -1.0, 1.0)

    @torch.no_grad()
    def value_estimate(self, obs: torch.Tensor, action: torch.Tensor | None) -> torch.Tensor:
        """V(s), (E, N), the on-policy critic's estimate of the return (compared with Monte-Carlo
        returns)."""
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
             advantages: torch.Tensor, returns: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clipped surrogate objective + value regression - entropy bonus (PPO, Schulman et al. 2017), one
    value per member, (E,), from (E, n, ...) minibatches; the metrics are (E,) tensors."""
    cfg = agent.cfg
    logp, entropy = agent.log_prob(obs, action)
    ratio = (logp - old_logp).exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1 - cfg.ppo_clip, 1 + cfg.ppo_clip) * advantages)
    value_loss = (agent.value(obs).squeeze(-1) - returns).pow(2).mean(1)
    loss = -surrogate.mean(1) + cfg.ppo_vf_coef * value_loss - cfg.ppo_ent_coef * entropy.mean(1)
    clipped = ((ratio - 1).abs() > cfg.ppo_clip).float().mean(1)
    return loss, {"policy_loss": -surrogate.mean(1).detach(), "value_loss": value_loss.detach(),
                  "clip_fraction": clipped}


def ppo_update(agent: PPOAgent, obs: np.ndarray, action: np.ndarray, old_logp: np.ndarray,
               advantages: np.ndarray, returns: np.ndarray, rngs: Sequence[np.random.Generator]) -> Metrics:
    """``ppo_epochs`` passes over each member's rollout, (E, T, ...) arrays, in minibatches shuffled by that
    member's ``rngs[e]``; advantages normalised per member and minibatch; each member's gradient clipped to
    norm ``ppo_max_grad_norm`` on its own. Returns the last minibatch's metrics, (E,) arrays."""
    cfg = agent.cfg
    tensors = [torch.as_tensor(x, dtype=torch.float32, device=agent.device)
               for x in (obs, action, old_logp, advantages, returns)]
    rows = torch.arange(agent.members, device=agent.device)[:, None]
    length = obs.shape[1]
    metrics: dict[str, torch.Tensor] = {}
    for _ in range(cfg.ppo_epochs):
        order = torch.as_tensor(np.stack([rng.permutation(length) for rng in rngs]), device=agent.device)
        for start in range(0, length, cfg.ppo_minibatch):
            idx = order[:, start:start + cfg.ppo_minibatch]
            o, a, lp, adv, ret = (t[rows, idx] for t in tensors)
            adv = (adv - adv.mean(1, keepdim=True)) / (adv.std(1, unbiased=False, keepdim=True) + 1e-8)
            loss, metrics = ppo_loss(agent, o, a, lp, adv, ret)
            agent.optimizer.zero_grad()
            loss.sum().backward()
            clip_member_grad_norm_(agent.optimizer.params, cfg.ppo_max_grad_norm)
            agent.optimizer.step()
    return metrics_of(metrics)
