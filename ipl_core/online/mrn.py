"""Meta-Reward-Net (Liu et al. 2022): the reward is also trained by how well a pseudo-updated critic
predicts the labelled preferences.

One bi-level step (MRN Sec. 4.2): (1) rewards r_psi(s, a) of a replay batch enter the critic's Bellman
loss J_Q (Eq. 9); (2) one differentiable SGD step on J_Q gives theta-hat(psi) (Eq. 10); (3) Q_theta-hat
scores each labelled segment by Q(s_0, a_0) of its first step (Eq. 6) and the cross-entropy with the labels
is the outer loss (Eq. 7); (4) its gradient with respect to psi (Eq. 11), obtained by back-propagating
through the pseudo-update, moves the reward (Eq. 12); (5) the critic, actor and temperature then take
their usual step on the same batch with the updated reward (Eq. 13), in place of that step's SAC update.
Taught in the chapter "Meta-Reward-Net" (book/online/mrn.ipynb).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ipl_core.online.config import OnlineConfig
from ipl_core.online.pebble import PreferenceData, RewardEnsemble
from ipl_core.online.replay import Batch
from ipl_core.online.sac import SACAgent, actor_temperature_target_step, bellman_loss, soft_target_value
from ipl_core.preferences import PreferenceLoss, preference_loss

Params = dict[str, torch.Tensor]


def pseudo_update(critic: nn.Module, reward: torch.Tensor, batch: Batch, target_v: torch.Tensor,
                  inner_lr: float, gamma: float) -> Params:
    """theta-hat = theta - alpha grad_theta J_Q(theta, psi) (MRN Eq. 9-10), kept differentiable in psi.

    ``reward`` = r_psi(s, a) of the batch, still attached to psi's graph; the critic is not modified.
    """
    params = dict(critic.named_parameters())

    def q_fn(obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return functional_call(critic, params, (obs, action))

    loss = bellman_loss(q_fn, batch, reward, target_v, gamma)  # type: ignore[arg-type]
    grads = torch.autograd.grad(loss, tuple(params.values()), create_graph=True)
    return {name: p - inner_lr * g for (name, p), g in zip(params.items(), grads, strict=True)}


def meta_loss(critic: nn.Module, params: Params, obs_1: torch.Tensor, act_1: torch.Tensor,
              obs_2: torch.Tensor, act_2: torch.Tensor, label: torch.Tensor) -> PreferenceLoss:
    """L_meta (MRN Eq. 6-7): Bradley-Terry cross-entropy of Q_theta-hat(s_0, a_0) of the two segments,
    summed over the two critic heads as in the released code (MRN Eq. 7 has one Q); the accuracy is the
    heads' mean."""
    q1_a, q2_a = functional_call(critic, params, (obs_1[:, 0], act_1[:, 0]))
    q1_b, q2_b = functional_call(critic, params, (obs_2[:, 0], act_2[:, 0]))
    head_1, head_2 = preference_loss(q1_a, q1_b, label), preference_loss(q2_a, q2_b, label)
    return PreferenceLoss(head_1.loss + head_2.loss, 0.5 * (head_1.accuracy + head_2.accuracy))


def meta_gradient(critic: nn.Module, ensemble: RewardEnsemble, batch: Batch, target_v: torch.Tensor,
                  pairs: tuple[torch.Tensor, ...], inner_lr: float, gamma: float
                  ) -> tuple[PreferenceLoss, list[torch.Tensor]]:
    """The outer loss and g_meta = d L_meta(theta-hat(psi)) / d psi for each reward parameter (MRN Eq. 11)."""
    reward = ensemble.mean_reward(batch.obs, batch.action)
    params = pseudo_update(critic, reward, batch, target_v, inner_lr, gamma)
    outer = meta_loss(critic, params, *pairs)
    grads = torch.autograd.grad(outer.loss, list(ensemble.parameters()), allow_unused=True)
    return outer, [torch.zeros_like(p) if g is None else g for p, g in zip(ensemble.parameters(), grads,
                                                                            strict=True)]


def mrn_update(agent: SACAgent, ensemble: RewardEnsemble, outer_optimizer: torch.optim.Optimizer,
               batch: Batch, data: PreferenceData, cfg: OnlineConfig, generator: torch.Generator
               ) -> dict[str, float]:
    """One bi-level round, in place of that step's SAC update (MRN Sec. 4.2, in the released code's order).

    On one replay ``batch``: the pseudo-update of the critic (MRN Eq. 9-10); ``cfg.mrn_outer_iters`` outer
    steps of psi by ``outer_optimizer`` on ``cfg.mrn_outer_weight`` times the outer loss of the most recent
    ``cfg.mrn_outer_batch`` (0: ``cfg.feedback_per_round``) labelled pairs (Eq. 7, 11-12); then the
    critic's step with the updated reward on the same batch (Eq. 13), the actor's and the temperature's
    (Eq. 5) and the Polyak target update.
    """
    target_v = soft_target_value(agent, batch.next_obs, generator)
    count = cfg.mrn_outer_batch or cfg.feedback_per_round
    recent = np.arange(max(0, len(data) - count), len(data))
    pairs = data.tensors(recent, agent.device)
    meta: dict[str, float] = {}
    for _ in range(cfg.mrn_outer_iters):
        outer, grads = meta_gradient(agent.critic, ensemble, batch, target_v, pairs, cfg.mrn_inner_lr,
                                     cfg.gamma)
        outer_optimizer.zero_grad(set_to_none=True)
        for p, g in zip(ensemble.parameters(), grads, strict=True):
            p.grad = cfg.mrn_outer_weight * g
        outer_optimizer.step()
        meta = {"meta_loss": outer.loss.item(), "meta_accuracy": outer.accuracy.item(),
                "meta_grad_norm": float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))}
    with torch.no_grad():
        reward = ensemble.mean_reward(batch.obs, batch.action)
    critic_loss = bellman_loss(agent.critic, batch, reward, target_v, cfg.gamma)
    agent.critic_opt.zero_grad(set_to_none=True)
    critic_loss.backward()
    agent.critic_opt.step()
    return {**meta, "critic_loss": critic_loss.item(), **actor_temperature_target_step(agent, batch.obs,
                                                                                         generator)}
