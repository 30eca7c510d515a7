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

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from ipl_core.online.config import OnlineConfig
from ipl_core.online.members import MemberAdam
from ipl_core.online.pebble import PreferenceData, RewardEnsemble, gather_pairs, weighted_preference_loss
from ipl_core.online.replay import Batch
from ipl_core.online.sac import (
    Metrics,
    SACAgent,
    actor_temperature_target_step,
    bellman_loss,
    critic_step,
    metrics_of,
    soft_target_value,
)
from ipl_core.preferences import PreferenceLoss

Params = dict[str, torch.Tensor]


def pseudo_update(critic: nn.Module, reward: torch.Tensor, batch: Batch, target_v: torch.Tensor,
                  inner_lr: float, gamma: float) -> Params:
    """theta-hat = theta - alpha grad_theta J_Q(theta, psi) (MRN Eq. 9-10) of every member, kept
    differentiable in psi.

    ``reward`` = r_psi(s, a) of the batch, (E, B), still attached to psi's graph; the critic is not
    modified. The members share no parameter, so the gradient of the sum of their losses is, member by
    member, the gradient of that member's own loss.
    """
    params = dict(critic.named_parameters())

    def q_fn(obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return functional_call(critic, params, (obs, action))

    loss = bellman_loss(q_fn, batch, reward, target_v, gamma).sum()
    grads = torch.autograd.grad(loss, tuple(params.values()), create_graph=True)
    return {name: p - inner_lr * g for (name, p), g in zip(params.items(), grads, strict=True)}


def meta_loss(critic: nn.Module, params: Params, obs_1: torch.Tensor, act_1: torch.Tensor,
              obs_2: torch.Tensor, act_2: torch.Tensor, label: torch.Tensor,
              weight: torch.Tensor | None = None) -> PreferenceLoss:
    """L_meta (MRN Eq. 6-7) of each member, (E,): Bradley-Terry cross-entropy of Q_theta-hat(s_0, a_0) of
    the two segments (E, B, T, d), summed over the two critic heads as in the released code (MRN Eq. 7 has
    one Q), averaged over the pairs of ``weight`` 1 (default all); the accuracy is the heads' mean."""
    q1_a, q2_a = functional_call(critic, params, (obs_1[:, :, 0], act_1[:, :, 0]))
    q1_b, q2_b = functional_call(critic, params, (obs_2[:, :, 0], act_2[:, :, 0]))
    weight = torch.ones_like(label) if weight is None else weight
    loss, accuracy = torch.zeros(label.shape[0], device=label.device), 0.0
    strict = (label != 0.5).float() * weight
    for a, b in ((q1_a, q1_b), (q2_a, q2_b)):
        head_loss, *_ = weighted_preference_loss(a - b, label, weight)
        loss = loss + head_loss
        with torch.no_grad():
            correct = (((a - b) > 0) == (label > 0.5)).float() * strict
            accuracy = accuracy + 0.5 * correct.sum(-1) / strict.sum(-1)
    return PreferenceLoss(loss, accuracy)  # type: ignore[arg-type]


def meta_gradient(critic: nn.Module, ensemble: RewardEnsemble, batch: Batch, target_v: torch.Tensor,
                  pairs: tuple[torch.Tensor, ...], inner_lr: float, gamma: float,
                  weight: torch.Tensor | None = None) -> tuple[PreferenceLoss, list[torch.Tensor]]:
    """The outer loss of each member and g_meta = d L_meta(theta-hat(psi)) / d psi for each reward
    parameter (MRN Eq. 11); member e's rows of the gradient are those of its own loss."""
    reward = ensemble.mean_reward(batch.obs, batch.action)
    params = pseudo_update(critic, reward, batch, target_v, inner_lr, gamma)
    outer = meta_loss(critic, params, *pairs, weight=weight)
    grads = torch.autograd.grad(outer.loss.sum(), list(ensemble.parameters()), allow_unused=True)
    return outer, [torch.zeros_like(p) if g is None else g for p, g in zip(ensemble.parameters(), grads,
                                                                            strict=True)]


def mrn_update(agent: SACAgent, ensemble: RewardEnsemble, outer_optimizer: MemberAdam, batch: Batch,
               data: Sequence[PreferenceData], cfg: OnlineConfig,
               generators: Sequence[torch.Generator | None], active: torch.Tensor | None = None) -> Metrics:
    """One bi-level round of every member (or of the ``active`` ones), in place of that step's SAC update
    (MRN Sec. 4.2, in the released code's order).

    On one replay ``batch``: the pseudo-update of the critic (MRN Eq. 9-10); ``cfg.mrn_outer_iters`` outer
    steps of psi by ``outer_optimizer`` on ``cfg.mrn_outer_weight`` times the outer loss of seed e's most
    recent ``cfg.mrn_outer_batch`` (0: ``cfg.feedback_per_round``) labelled pairs of ``data[e]`` (Eq. 7,
    11-12); then the critic's step with the updated reward on the same batch (Eq. 13), the actor's and the
    temperature's (Eq. 5) and the Polyak target update.
    """
    target_v = soft_target_value(agent, batch.next_obs, generators)
    count = cfg.mrn_outer_batch or cfg.feedback_per_round
    recent = [[np.arange(max(0, len(d) - count), len(d))] for d in data]
    (obs_1, act_1, obs_2, act_2, label), weight = gather_pairs(data, recent, agent.device)
    pairs = (obs_1[:, 0], act_1[:, 0], obs_2[:, 0], act_2[:, 0], label[:, 0])
    meta: dict[str, torch.Tensor] = {}
    for _ in range(cfg.mrn_outer_iters):
        outer, grads = meta_gradient(agent.critic, ensemble, batch, target_v, pairs, cfg.mrn_inner_lr,
                                     cfg.gamma, weight[:, 0])
        outer_optimizer.zero_grad()
        for p, g in zip(ensemble.parameters(), grads, strict=True):
            p.grad = cfg.mrn_outer_weight * g
        outer_optimizer.step(active)
        norm = torch.sqrt(sum(g.pow(2).flatten(1).sum(1) for g in grads))  # type: ignore[arg-type]
        meta = {"meta_loss": outer.loss.detach(), "meta_accuracy": outer.accuracy, "meta_grad_norm": norm}
    with torch.no_grad():
        reward = ensemble.mean_reward(batch.obs, batch.action)
    critic_loss = bellman_loss(agent.critic, batch, reward, target_v, cfg.gamma)
    critic_step(agent, critic_loss, active)
    rest = actor_temperature_target_step(agent, batch.obs, generators, active)
    return metrics_of({**meta, "critic_loss": critic_loss, **rest})
