"""IPL online (Hejna & Sadigh 2023, Sec. 3 and App. B): PEBBLE's query loop without a reward model.

The critic's implicit reward r_Q(s, a) = Q(s, a) - gamma V-bar(s') (the inverse soft-Bellman operator,
IPL Eq. 4, with SAC's soft target value as V-targ) is scored by the Bradley-Terry model (IPL Eq. 5) and the
critic minimises the regularised preference loss (IPL Eq. 6), with psi(r) = E[r^2] weighted equally over
the labelled segments and the replay batch. The actor and temperature update as in SAC. Queries are
chosen by the disagreement of the two critic heads. Taught in the chapter "IPL online"
(book/online/ipl_online.ipynb).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ipl_core.online.config import OnlineConfig
from ipl_core.online.pebble import PreferenceData
from ipl_core.online.replay import Batch
from ipl_core.online.sac import (
    Metrics,
    SACAgent,
    actor_temperature_target_step,
    critic_step,
    member_mean,
    metrics_of,
    soft_target_value,
)
from ipl_core.preferences import preference_loss


def implicit_reward(agent: SACAgent, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor,
                    terminated: torch.Tensor, generators: Sequence[torch.Generator | None] | None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T* Q_i)(s, a) = Q_i(s, a) - gamma (1 - done) V-bar(s')`` for both heads (IPL Eq. 4), inputs
    ``(E, *lead, d)`` -> two ``(E, *lead)``."""
    lead = obs.shape[:-1]

    def flat(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1, x.shape[-1])

    target_v = soft_target_value(agent, flat(next_obs), generators).reshape(lead)
    q1, q2 = agent.critic(flat(obs), flat(action))
    bootstrap = agent.cfg.gamma * (1.0 - terminated) * target_v
    return q1.reshape(lead) - bootstrap, q2.reshape(lead) - bootstrap


def labelled_batch(data: Sequence[PreferenceData], idx: Sequence[np.ndarray], device: torch.device
                   ) -> tuple[torch.Tensor, ...]:
    """Seed e's pairs ``idx[e]`` (equally many per seed) stacked: (obs_1, act_1, obs_2, act_2, label,
    next_obs_1, terminated_1, next_obs_2, terminated_2), each (E, B, ...)."""
    rows = [d.tensors(i, device) + d.next_tensors(i, device) for d, i in zip(data, idx, strict=True)]
    return tuple(torch.stack(field) for field in zip(*rows, strict=True))


def ipl_critic_loss(agent: SACAgent, batch: Batch, data: Sequence[PreferenceData],
                    idx: Sequence[np.ndarray], generators: Sequence[torch.Generator | None]
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """IPL Eq. 6 of each member, (E,), for both critic heads: preference cross-entropy on implicit segment
    returns plus lambda * (E_pref[r^2] + E_replay[r^2]) / 2, on seed e's labelled pairs ``idx[e]``."""
    obs_1, act_1, obs_2, act_2, label, next_1, done_1, next_2, done_2 = labelled_batch(data, idx,
                                                                                       agent.device)
    r1_a, r2_a = implicit_reward(agent, obs_1, act_1, next_1, done_1, generators)
    r1_b, r2_b = implicit_reward(agent, obs_2, act_2, next_2, done_2, generators)
    r1_o, r2_o = implicit_reward(agent, batch.obs, batch.action, batch.next_obs, batch.terminated, generators)
    total = torch.zeros(label.shape[0], device=agent.device)
    accuracy = torch.zeros(label.shape[0], device=agent.device)
    for seg_a, seg_b, replay in ((r1_a, r1_b, r1_o), (r2_a, r2_b, r2_o)):
        pref = preference_loss(seg_a.sum(-1), seg_b.sum(-1), label, members=True)
        reg = 0.5 * (member_mean(torch.cat([seg_a, seg_b], dim=1).pow(2)) + member_mean(replay.pow(2)))
        total = total + pref.loss + agent.cfg.ipl_lambda * reg
        accuracy = accuracy + 0.5 * pref.accuracy.nan_to_num(0.0)
    return total, {"ipl_loss": total.detach(), "ipl_accuracy": accuracy,
                   "implicit_reward_mean": member_mean(r1_o.detach())}


def ipl_update(agent: SACAgent, batch: Batch, data: Sequence[PreferenceData],
               rngs: Sequence[np.random.Generator], generators: Sequence[torch.Generator | None],
               active: torch.Tensor | None = None) -> Metrics:
    """One IPL-SAC step of every member (or of the ``active`` ones): the critic minimises IPL Eq. 6 instead
    of the Bellman residual; the actor, temperature and targets update exactly as in
    :func:`ipl_core.online.sac.sac_update`. Seed e draws its labelled pairs with ``rngs[e]``."""
    cfg: OnlineConfig = agent.cfg
    on = [True] * len(data) if active is None else active.tolist()
    # a seed that does not step draws nothing; its rows are a stand-in that no update uses
    idx = [rng.integers(0, len(d), size=cfg.ipl_pref_batch) if a else np.zeros(cfg.ipl_pref_batch, np.int64)
           for rng, d, a in zip(rngs, data, on, strict=True)]
    template = next(d for d in data if len(d))
    critic_loss, metrics = ipl_critic_loss(agent, batch, [d if len(d) else template for d in data], idx,
                                           generators)
    critic_step(agent, critic_loss, active)
    rest = actor_temperature_target_step(agent, batch.obs, generators, active)
    return metrics_of({**metrics, **rest})


@torch.no_grad()
def critic_preference_probabilities(agent: SACAgent, obs_1: torch.Tensor, act_1: torch.Tensor,
                                    next_1: torch.Tensor, done_1: torch.Tensor, obs_2: torch.Tensor,
                                    act_2: torch.Tensor, next_2: torch.Tensor, done_2: torch.Tensor,
                                    generators: Sequence[torch.Generator | None]) -> torch.Tensor:
    """P[sigma_1 > sigma_2] under each critic head's implicit reward (IPL Eq. 5), segments (E, N, T, d) ->
    (E, 2, N): the 'ensemble' whose disagreement selects IPL's queries."""
    r1_a, r2_a = implicit_reward(agent, obs_1, act_1, next_1, done_1, generators)
    r1_b, r2_b = implicit_reward(agent, obs_2, act_2, next_2, done_2, generators)
    return torch.stack([torch.sigmoid(r1_a.sum(-1) - r1_b.sum(-1)),
                        torch.sigmoid(r2_a.sum(-1) - r2_b.sum(-1))], dim=1)
