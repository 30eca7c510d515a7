"""IPL online (Hejna & Sadigh 2023, Sec. 3 and App. B): PEBBLE's query loop without a reward model.

The critic's implicit reward r_Q(s, a) = Q(s, a) - gamma V-bar(s') (the inverse soft-Bellman operator,
IPL Eq. 4, with SAC's soft target value as V-targ) is scored by the Bradley-Terry model (IPL Eq. 5) and the
critic minimises the regularised preference loss (IPL Eq. 6), with psi(r) = E[r^2] weighted equally over
the labelled segments and the replay batch. The actor and temperature update as in SAC. Queries are
chosen by the disagreement of the two critic heads. Taught in the chapter "IPL online"
(book/online/ipl_online.ipynb).
"""

from __future__ import annotations

import numpy as np
import torch

from ipl_core.online.config import OnlineConfig
from ipl_core.online.pebble import PreferenceData
from ipl_core.online.replay import Batch
from ipl_core.online.sac import SACAgent, actor_temperature_target_step, soft_target_value
from ipl_core.preferences import preference_loss


def implicit_reward(agent: SACAgent, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor,
                    terminated: torch.Tensor, generator: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(T* Q_i)(s, a) = Q_i(s, a) - gamma (1 - done) V-bar(s') for both heads (IPL Eq. 4), any batch shape."""
    lead = obs.shape[:-1]
    target_v = soft_target_value(agent, next_obs.reshape(-1, next_obs.shape[-1]), generator).reshape(lead)
    q1, q2 = agent.critic(obs, action)
    bootstrap = agent.cfg.gamma * (1.0 - terminated) * target_v
    return q1 - bootstrap, q2 - bootstrap


def ipl_critic_loss(agent: SACAgent, batch: Batch, data: PreferenceData, idx: np.ndarray,
                    generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """IPL Eq. 6 for both critic heads: preference cross-entropy on implicit segment returns plus
    lambda * (E_pref[r^2] + E_replay[r^2]) / 2."""
    obs_1, act_1, obs_2, act_2, label = data.tensors(idx, agent.device)
    next_1, done_1, next_2, done_2 = data.next_tensors(idx, agent.device)
    r1_a, r2_a = implicit_reward(agent, obs_1, act_1, next_1, done_1, generator)
    r1_b, r2_b = implicit_reward(agent, obs_2, act_2, next_2, done_2, generator)
    r1_o, r2_o = implicit_reward(agent, batch.obs, batch.action, batch.next_obs, batch.terminated, generator)
    total = torch.zeros((), device=agent.device)
    accuracy = 0.0
    for seg_a, seg_b, replay in ((r1_a, r1_b, r1_o), (r2_a, r2_b, r2_o)):
        pref = preference_loss(seg_a.sum(-1), seg_b.sum(-1), label)
        reg = 0.5 * (torch.cat([seg_a, seg_b]).pow(2).mean() + replay.pow(2).mean())
        total = total + pref.loss + agent.cfg.ipl_lambda * reg
        accuracy += 0.5 * float(pref.accuracy.nan_to_num(0.0))
    return total, {"ipl_loss": total.item(), "ipl_accuracy": accuracy,
                   "implicit_reward_mean": r1_o.mean().item()}


def ipl_update(agent: SACAgent, batch: Batch, data: PreferenceData, rng: np.random.Generator,
               generator: torch.Generator) -> dict[str, float]:
    """One IPL-SAC step: the critic minimises IPL Eq. 6 instead of the Bellman residual; the actor,
    temperature and targets update exactly as in :func:`ipl_core.online.sac.sac_update`."""
    cfg: OnlineConfig = agent.cfg
    idx = rng.integers(0, len(data), size=cfg.ipl_pref_batch)
    critic_loss, metrics = ipl_critic_loss(agent, batch, data, idx, generator)
    agent.critic_opt.zero_grad(set_to_none=True)
    critic_loss.backward()
    agent.critic_opt.step()

    return {**metrics, **actor_temperature_target_step(agent, batch.obs, generator)}


@torch.no_grad()
def critic_preference_probabilities(agent: SACAgent, obs_1: torch.Tensor, act_1: torch.Tensor,
                                    next_1: torch.Tensor, done_1: torch.Tensor, obs_2: torch.Tensor,
                                    act_2: torch.Tensor, next_2: torch.Tensor, done_2: torch.Tensor,
                                    generator: torch.Generator) -> torch.Tensor:
    """P[sigma_1 > sigma_2] under each critic head's implicit reward (IPL Eq. 5), shape (2, N): the
    'ensemble' whose disagreement selects IPL's queries."""
    r1_a, r2_a = implicit_reward(agent, obs_1, act_1, next_1, done_1, generator)
    r1_b, r2_b = implicit_reward(agent, obs_2, act_2, next_2, done_2, generator)
    return torch.stack([torch.sigmoid(r1_a.sum(-1) - r1_b.sum(-1)),
                        torch.sigmoid(r2_a.sum(-1) - r2_b.sum(-1))])
