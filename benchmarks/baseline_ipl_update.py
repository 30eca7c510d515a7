"""The IPL-IQL update as ``ipl_core`` computed it before the seed axis (commit 1bda037), kept only as the
"before" of ``bench_ipl_updates.py``: a Python loop over the Q heads, V evaluated separately on s and s',
one unfused Adam per network and ``torch.distributions.Normal`` for log pi. Same arithmetic as today's
``ipl_core.offline.ipl_update`` with E = 1: the benchmark prints the largest weight difference after three
steps of each from the same weights (summation order alone separates them).
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import nn


def _mlp(in_dim: int, out_dim: int, hidden: tuple[int, ...], generator: torch.Generator) -> nn.Sequential:
    dims, layers = [in_dim, *hidden, out_dim], []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        linear = nn.Linear(a, b)
        last = i == len(dims) - 2
        nn.init.orthogonal_(linear.weight, gain=1.0 if last else 2**0.5, generator=generator)
        nn.init.zeros_(linear.bias)
        layers += [linear] if last else [linear, nn.ReLU()]
    return nn.Sequential(*layers)


class BaselineAgent(nn.Module):
    """Two Q heads, V and a Gaussian actor, initialised in the order ``make_agent`` uses."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: tuple[int, ...], generator: torch.Generator):
        super().__init__()
        self.heads = nn.ModuleList(_mlp(obs_dim + act_dim, 1, hidden, generator) for _ in range(2))
        self.value = _mlp(obs_dim, 1, hidden, generator)
        self.actor = _mlp(obs_dim, act_dim, hidden, generator)
        self.log_std = nn.Parameter(torch.zeros(act_dim))
        self.target = copy.deepcopy(self.heads).requires_grad_(False)

    def q(self, heads: nn.ModuleList, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, act], dim=-1)
        return torch.stack([head(x).squeeze(-1) for head in heads])

    def v(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value(obs).squeeze(-1)


def baseline_optimizers(agent: BaselineAgent, lr: float) -> dict[str, torch.optim.Optimizer]:
    return {"critic": torch.optim.Adam(agent.heads.parameters(), lr=lr),
            "value": torch.optim.Adam(agent.value.parameters(), lr=lr),
            "actor": torch.optim.Adam([*agent.actor.parameters(), agent.log_std], lr=lr)}


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def baseline_ipl_update(agent: BaselineAgent, optimizers: dict[str, torch.optim.Optimizer],
                        obs: torch.Tensor, act: torch.Tensor, next_obs: torch.Tensor, discount: torch.Tensor,
                        label: torch.Tensor, pairs: int, length: int, cfg) -> None:
    """One step: V (expectile), Q (IPL Eq. 6 on implicit rewards), pi (AWR), Polyak. Rows [0, BT) are
    segment 1, [BT, 2BT) segment 2, the rest offline."""
    with torch.no_grad():
        target_q = agent.q(agent.target, obs, act).min(dim=0).values
    diff = target_q - agent.v(obs)
    weight = torch.where(diff < 0, 1 - cfg.expectile, cfg.expectile)
    _step(optimizers["value"], (weight * diff.square()).mean())
    with torch.no_grad():
        clip = 1.0 / (cfg.lam * (1.0 - cfg.discount))
        next_v = agent.v(next_obs).clamp(-clip, clip)
    reward = agent.q(agent.heads, obs, act) - discount * next_v
    n = pairs * length
    r_1, r_2, r_off = reward.split([n, n, reward.shape[1] - 2 * n], dim=1)
    r_1, r_2 = r_1.reshape(2, pairs, length), r_2.reshape(2, pairs, length)
    logits = (r_1.sum(-1) - r_2.sum(-1)).reshape(-1)
    bt = F.binary_cross_entropy_with_logits(logits, label.expand(2, -1).reshape(-1))
    regulariser = 0.5 * cfg.lam * torch.cat([r_1, r_2], -1).square().mean()
    regulariser = regulariser + 0.5 * cfg.lam * r_off.square().mean()
    _step(optimizers["critic"], bt + regulariser)
    with torch.no_grad():
        advantage = target_q - agent.v(obs)
    mean = torch.tanh(agent.actor(obs))
    std = agent.log_std.clamp(-5.0, 2.0).exp().expand_as(mean)
    log_prob = torch.distributions.Normal(mean, std).log_prob(act).sum(-1)
    weight = torch.exp(cfg.beta * advantage).clamp(max=cfg.max_weight)
    _step(optimizers["actor"], -(weight * log_prob).mean())
    with torch.no_grad():
        for target, source in zip(agent.target.parameters(), agent.heads.parameters(), strict=True):
            target.lerp_(source, cfg.target_tau)
