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

from ipl_core.losses import implicit_reward, ipl_preference_loss
from ipl_core.online.config import OnlineConfig
from ipl_core.online.pebble import PreferenceData
from ipl_core.online.replay import Batch
from ipl_core.online.sac import (
    Metrics,
    SACAgent,
    actor_temperature_target_step,
    critic_step,
    metrics_of,
    soft_target_value,
)


def implicit_rewards(agent: SACAgent, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor,
                     terminated: torch.Tensor, generators: Sequence[torch.Generator | None] | None
                     ) -> torch.Tensor:
    """``r_Qi(s, a) = Q_i(s, a) - gamma (1 - done) V-bar(s')`` of both critic heads, with SAC's soft target
    value as V-bar (IPL Eq. 4 through :func:`ipl_core.losses.implicit_reward`): inputs ``(E, *lead, d)`` ->
    ``(E, 2, *lead)``."""
    members, lead = obs.shape[0], obs.shape[1:-1]

    def flat(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(members, -1, x.shape[-1])

    target_v = soft_target_value(agent, flat(next_obs), generators)
    q = torch.stack(agent.critic(flat(obs), flat(action)), dim=1)
    discount = agent.cfg.gamma * (1.0 - terminated.reshape(members, -1))
    return implicit_reward(q, target_v, discount).reshape(members, 2, *lead)


def labelled_batch(data: Sequence[PreferenceData], idx: Sequence[np.ndarray], device: torch.device
                   ) -> tuple[torch.Tensor, ...]:
    """Seed e's pairs ``idx[e]`` (equally many per seed) stacked: (obs_1, act_1, obs_2, act_2, label,
    next_obs_1, terminated_1, next_obs_2, terminated_2), each (E, B, ...)."""
    rows = [d.tensors(i, device) + d.next_tensors(i, device) for d, i in zip(data, idx, strict=True)]
    return tuple(torch.stack(field) for field in zip(*rows, strict=True))


def ipl_critic_loss(agent: SACAgent, batch: Batch, data: Sequence[PreferenceData],
                    idx: Sequence[np.ndarray], generators: Sequence[torch.Generator | None]
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """IPL Eq. 6 of each member, (E,), the offline loss :func:`ipl_core.losses.ipl_preference_loss` on seed
    e's labelled pairs ``idx[e]`` and the replay batch, summed over the two critic heads (as SAC sums its
    critics' Bellman losses): preference cross-entropy plus lambda (E_pref[r^2] + E_replay[r^2]) / 2."""
    obs_1, act_1, obs_2, act_2, label, next_1, done_1, next_2, done_2 = labelled_batch(data, idx,
                                                                                       agent.device)
    ipl = ipl_preference_loss(implicit_rewards(agent, obs_1, act_1, next_1, done_1, generators),
                              implicit_rewards(agent, obs_2, act_2, next_2, done_2, generators),
                              implicit_rewards(agent, batch.obs, batch.action, batch.next_obs,
                                               batch.terminated, generators),
                              label, agent.cfg.ipl_lambda)
    total = 2 * ipl.loss
    return total, {"ipl_loss": total.detach(), "ipl_accuracy": ipl.accuracy.nan_to_num(0.0),
                   "implicit_reward_mean": ipl.reward_mean}


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
    returns_1 = implicit_rewards(agent, obs_1, act_1, next_1, done_1, generators).sum(-1)
    returns_2 = implicit_rewards(agent, obs_2, act_2, next_2, done_2, generators).sum(-1)
    return torch.sigmoid(returns_1 - returns_2)
