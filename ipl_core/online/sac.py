"""Soft actor-critic (Haarnoja et al. 2018), the backbone of PEBBLE, SURF and MRN.

Twin critics with Polyak-averaged targets, a tanh-squashed Gaussian actor, and a learned temperature with
target entropy ``-|A|``. The equations are those of MRN Sec. 3 (Eq. 3-5). Every network has a leading
member axis of E seeds (E = 1: one run) and every loss returns one value per seed, (E,); one backward pass
of their sum gives each seed its own gradient (:mod:`ipl_core.online.members`). Taught in the chapter
"Soft actor-critic in brief" (book/online/sac.ipynb).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ipl_core.nets import CriticEnsemble, EnsembleMLP, member_noise, polyak_update
from ipl_core.online.config import OnlineConfig
from ipl_core.online.members import MemberAdam, init_generators
from ipl_core.online.replay import Batch
from ipl_core.seeding import env_seed


class TanhGaussianActor(nn.Module):
    """pi(a|s) of each of E members: a Gaussian in pre-squash space, squashed by tanh into ``[-1, 1]^|A|``.

    Inputs are (E, N, obs_dim); member e is initialised from ``generators[e]`` (see
    :class:`~ipl_core.nets.EnsembleMLP`)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dim: int, hidden_depth: int,
                 log_std_min: float = -5.0, log_std_max: float = 2.0, members: int = 1,
                 generators: Sequence[torch.Generator | None] | None = None) -> None:
        super().__init__()
        self.net = EnsembleMLP((members,), obs_dim, 2 * act_dim, (hidden_dim,) * hidden_depth,
                               generators=generators)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    @property
    def members(self) -> int:
        return self.net.layers[0].members[0]

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-std of the pre-squash Gaussian; the log-std is squashed smoothly into its bounds."""
        mean, raw = self.net(obs).chunk(2, dim=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(raw) + 1)
        return mean, log_std

    def sample(self, obs: torch.Tensor, generators: Sequence[torch.Generator | None] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action ``(E, N, |A|)`` and its log-probability (E, N), with the tanh change of
        variables. Member e's noise comes from ``generators[e]``, a CPU generator, and is moved to the
        device, so a seed draws the same noise on any device and in a batch of any size. A member whose
        generator is None draws nothing (zero noise: it is not updated at this step); ``generators=None``
        draws every member's noise from torch's global generator."""
        mean, log_std = self(obs)
        if generators is None:
            noise = torch.randn(mean.shape, dtype=mean.dtype)
        else:
            noise = member_noise(mean.shape[1:], generators, mean.dtype)
        noise = noise.to(mean.device)
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
    """Two independent Q-networks Q1(s, a), Q2(s, a) (clipped double-Q) for each of E members, evaluated
    in one batched product (:class:`~ipl_core.nets.CriticEnsemble`): (E, N, .) inputs, two (E, N) outputs."""

    def __init__(self, obs_dim: int, act_dim: int, hidden_dim: int, hidden_depth: int, members: int = 1,
                 generators: Sequence[torch.Generator | None] | None = None) -> None:
        super().__init__()
        self.heads = CriticEnsemble(obs_dim, act_dim, (hidden_dim,) * hidden_depth, num_critics=2,
                                    members=members, generators=generators)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.heads(obs, action)
        return q[:, 0], q[:, 1]


class SACAgent(nn.Module):
    """Actor, critic, target critic, log-temperature and their optimisers, for E = ``len(seeds)`` members.

    Member e draws its initial weights from its seed's stream ``"init"`` (the actor, then the critic); the
    critic that PEBBLE resets draws from ``"critic_reset"`` (:mod:`ipl_core.seeding`). Each optimiser is a
    :class:`~ipl_core.online.members.MemberAdam`."""

    def __init__(self, obs_dim: int, act_dim: int, cfg: OnlineConfig, seeds: Sequence[int] | None = None
                 ) -> None:
        super().__init__()
        self.cfg = cfg
        self.seeds = [cfg.seed] if seeds is None else [int(s) for s in seeds]
        members = len(self.seeds)
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.device = torch.device(cfg.device)
        generators = init_generators(self.seeds)
        self.actor = TanhGaussianActor(obs_dim, act_dim, cfg.hidden_dim, cfg.hidden_depth, cfg.log_std_min,
                                       cfg.log_std_max, members, generators).to(self.device)
        self.log_alpha = nn.Parameter(torch.full((members,), math.log(cfg.init_temperature),
                                                 device=self.device))
        self.target_entropy = -float(act_dim)
        self.actor_opt = MemberAdam(self.actor.parameters(), lr=cfg.actor_lr)
        self.alpha_opt = MemberAdam([self.log_alpha], lr=cfg.alpha_lr)
        self.reset_critic(generators)
        self.updates = np.zeros(members, np.int64)

    @property
    def members(self) -> int:
        return len(self.seeds)

    def reset_critic(self, generators: Sequence[torch.Generator] | None = None) -> None:
        """Fresh critic, target and optimiser (PEBBLE resets the critic after unsupervised pre-training);
        without ``generators``, member e draws from its seed's stream ``"critic_reset"``."""
        generators = init_generators(self.seeds, "critic_reset") if generators is None else generators
        self.critic = DoubleCritic(self.obs_dim, self.act_dim, self.cfg.hidden_dim, self.cfg.hidden_depth,
                                   self.members, generators).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.critic_opt = MemberAdam(self.critic.parameters(), lr=self.cfg.critic_lr)

    @property
    def alpha(self) -> torch.Tensor:
        """The temperatures, (E, 1), to broadcast over a batch."""
        return self.log_alpha.exp().detach().unsqueeze(1)

    @torch.no_grad()
    def act(self, obs: np.ndarray, generators: Sequence[torch.Generator | None] | None,
            deterministic: bool = False) -> np.ndarray:
        """One action per member, ``(E, |A|)``, for one observation per member, (E, obs_dim)."""
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(1)
        a = self.actor.deterministic(x) if deterministic else self.actor.sample(x, generators)[0]
        return a.squeeze(1).cpu().numpy()

    @torch.no_grad()
    def value_estimate(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """min_i Q_i(s, a), (E, N), the estimate compared with Monte-Carlo returns (MRN Table 1)."""
        return torch.min(*self.critic(obs.to(self.device), action.to(self.device))).cpu()


def member_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean over every axis but the first (the member axis): one value per member, (E,)."""
    return x.flatten(1).mean(1)


@torch.no_grad()
def soft_target_value(agent: SACAgent, next_obs: torch.Tensor,
                      generators: Sequence[torch.Generator | None] | None) -> torch.Tensor:
    """``V-bar(s') = E_{a'~pi}[min_i Q-bar_i(s', a') - alpha log pi(a'|s')]`` (under MRN Eq. 4), 1 sample,
    (E, N) from (E, N, obs_dim)."""
    next_action, next_log_prob = agent.actor.sample(next_obs, generators)
    q1, q2 = agent.critic_target(next_obs, next_action)
    return torch.min(q1, q2) - agent.alpha * next_log_prob


def bellman_loss(critic: Any, batch: Batch, reward: torch.Tensor, target_v: torch.Tensor,
                 gamma: float) -> torch.Tensor:
    """J_Q (MRN Eq. 4 and 9) of each member, (E,): squared soft Bellman residual of both heads; terminals
    do not bootstrap."""
    target = reward + gamma * (1.0 - batch.terminated) * target_v
    q1, q2 = critic(batch.obs, batch.action)
    return member_mean((q1 - target).square()) + member_mean((q2 - target).square())


Metrics = dict[str, np.ndarray]
"""Per-member metrics of an update: name -> (E,) array."""


def metrics_of(values: dict[str, torch.Tensor]) -> Metrics:
    """(E,) tensors as numpy arrays, moved from the device in one transfer."""
    names = list(values)
    stacked = torch.stack([values[n].detach().float() for n in names]).cpu().numpy()
    return {n: stacked[i].astype(np.float64) for i, n in enumerate(names)}


def critic_step(agent: SACAgent, loss: torch.Tensor, active: torch.Tensor | None) -> None:
    """Step the critic of the ``active`` members on the sum of their losses (each member's gradient is its
    own loss's)."""
    agent.critic_opt.zero_grad()
    loss.sum().backward()
    agent.critic_opt.step(active)


def sac_update(agent: SACAgent, batch: Batch, generators: Sequence[torch.Generator | None],
               reward: torch.Tensor | None = None, active: torch.Tensor | None = None) -> Metrics:
    """One SAC step of every member (or of the ``active`` ones): critic (MRN Eq. 4), actor (Eq. 5),
    temperature, then Polyak targets. ``batch`` holds (E, B, ...) tensors.

    ``reward`` replaces ``batch.reward`` (PEBBLE's state-entropy reward during pre-training).
    """
    cfg = agent.cfg
    target_v = soft_target_value(agent, batch.next_obs, generators)
    critic_loss = bellman_loss(agent.critic, batch, batch.reward if reward is None else reward, target_v,
                               cfg.gamma)
    critic_step(agent, critic_loss, active)
    rest = actor_temperature_target_step(agent, batch.obs, generators, active)
    return metrics_of({"critic_loss": critic_loss, **rest})


def actor_temperature_target_step(agent: SACAgent, obs: torch.Tensor,
                                  generators: Sequence[torch.Generator | None],
                                  active: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The rest of a SAC step after the critic's: actor (MRN Eq. 5), temperature towards the target
    entropy ``-|A|``, then the Polyak update of the target critic. Shared by SAC and IPL online. Returns
    (E,) tensors."""
    cfg = agent.cfg
    action, log_prob = agent.actor.sample(obs, generators)
    q1, q2 = agent.critic(obs, action)
    actor_loss = member_mean(agent.alpha * log_prob - torch.min(q1, q2))
    agent.actor_opt.zero_grad()
    actor_loss.sum().backward()
    agent.actor_opt.step(active)
    agent.critic_opt.zero_grad()  # the actor loss left gradients in the critic

    alpha_loss = -member_mean(agent.log_alpha.unsqueeze(1) * (log_prob.detach() + agent.target_entropy))
    agent.alpha_opt.zero_grad()
    alpha_loss.sum().backward()
    agent.alpha_opt.step(active)

    stepped = np.ones(agent.members, bool) if active is None else active.cpu().numpy()
    agent.updates += stepped
    due = stepped & (agent.updates % cfg.target_update_interval == 0)
    if due.any():
        polyak_update(agent.critic_target, agent.critic, cfg.tau, torch.as_tensor(due))
    return {"actor_loss": actor_loss, "alpha": agent.log_alpha.exp().detach(),
            "entropy": -member_mean(log_prob.detach())}


class Evaluation(NamedTuple):
    """Deterministic-policy evaluation: mean return, success rate, and the Q accuracy of MRN Table 1."""

    episode_return: float
    """Mean undiscounted ground-truth return over the episodes."""
    success: float
    """Share of episodes with any ``info["success"]`` (MetaWorld; 0 elsewhere)."""
    q_mc_mse: float
    """Mean over visited (s, a) of (value estimate - discounted Monte-Carlo return)^2 (MRN Table 1). SAC's
    soft Q includes the discounted entropy bonus of later steps and, for a learned reward, that reward's
    scale; the Monte-Carlo return of the deterministic evaluation has neither, so this measures the critic
    together with both."""


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = sum_{k >= t} gamma^(k - t) r_k for one episode (cut at its end)."""
    out = np.zeros(len(rewards), np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def evaluate(agent: Any, envs: Sequence[gym.Env], episodes: int, seeds: Sequence[int], step: int = 0
             ) -> list[Evaluation]:
    """Run ``episodes`` episodes of each member's deterministic policy in its own environment ``envs[e]``,
    all members stepping together (one batched forward pass per step); member e's episode i at evaluation
    step ``step`` is reset from stream (``seeds[e]``, ``"evaluation"``, ``step``, i) of
    :mod:`ipl_core.seeding` (the same episodes for every method of that seed).

    ``agent`` needs ``act(obs (E, obs_dim), None, deterministic=True)`` and ``value_estimate(obs (E, N,
    obs_dim), act)`` (SAC: the smaller Q; PPO: V(s)), and ``cfg.gamma``.

    The Monte-Carlo targets are the discounted ground-truth returns to the end of each episode; near a
    time-limit truncation they miss the tail, so compare MSEs between methods, as MRN Table 1 does.
    """
    members = len(envs)
    returns: list[list[float]] = [[] for _ in range(members)]
    successes: list[list[float]] = [[] for _ in range(members)]
    errors: list[list[np.ndarray]] = [[] for _ in range(members)]
    for i in range(episodes):
        obs = np.stack([env.reset(seed=env_seed(int(seed), "evaluation", step, i))[0]
                        for env, seed in zip(envs, seeds, strict=True)])
        running = np.ones(members, bool)
        rewards: list[list[float]] = [[] for _ in range(members)]
        observations: list[list[np.ndarray]] = [[] for _ in range(members)]
        actions: list[list[np.ndarray]] = [[] for _ in range(members)]
        success = np.zeros(members, bool)
        while running.any():
            action = agent.act(obs, None, deterministic=True)
            for e in np.flatnonzero(running):
                next_obs, reward, terminated, truncated, info = envs[e].step(action[e])
                observations[e].append(obs[e])
                actions[e].append(action[e])
                rewards[e].append(reward)
                success[e] |= info.get("success", 0.0) > 0
                obs[e] = next_obs
                running[e] = not (terminated or truncated)
        longest = max(len(r) for r in rewards)
        pad_obs = np.zeros((members, longest, obs.shape[1]), np.float32)
        pad_act = np.zeros((members, longest, action.shape[1]), np.float32)
        for e in range(members):
            pad_obs[e, :len(rewards[e])] = observations[e]
            pad_act[e, :len(rewards[e])] = actions[e]
        estimate = agent.value_estimate(torch.as_tensor(pad_obs), torch.as_tensor(pad_act)).double().numpy()
        for e in range(members):
            mc = discounted_returns(np.asarray(rewards[e]), agent.cfg.gamma)
            errors[e].append((estimate[e, :len(mc)] - mc) ** 2)
            returns[e].append(float(np.sum(rewards[e])))
            successes[e].append(float(success[e]))
    return [Evaluation(float(np.mean(returns[e])), float(np.mean(successes[e])),
                       float(np.mean(np.concatenate(errors[e])))) for e in range(members)]
