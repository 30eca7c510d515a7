"""The losses of IQL, XQL, AWR/AWAC and IPL, each a short function next to its equation.

Element-wise building blocks (:func:`expectile_loss`, :func:`linex_loss`, :func:`awr_weights`,
:func:`implicit_reward`) return tensors; the losses an optimiser minimises return their value and their
metrics as a NamedTuple, like :func:`ipl_core.preferences.preference_loss`. Every loss takes a leading member
axis E (independent seeds; E = 1 for one run) and returns one value per member: the optimiser steps their sum,
whose gradient is each member's own gradient, since members share no parameters. Taught in "IPL in practice"
(book/ipl/offline.ipynb), "Oracle IQL" (book/baselines/oracle_iql.ipynb) and, for :func:`cpl_loss`,
"Contrastive Preference Learning" (book/family/cpl.ipynb).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ipl_core.preferences import preference_loss


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """``|tau - 1(u < 0)| u^2`` element-wise, with u = Q(s, a) - V(s) (IQL Eq. 5; IPL Sec. 4.1).

    With tau > 0.5, V is pushed towards an upper expectile of Q over the data's actions."""
    if not 0.0 < expectile < 1.0:
        raise ValueError(f"expectile must lie in (0, 1), got {expectile}")
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return weight * diff.square()


def linex_loss(diff: torch.Tensor, alpha: float, max_z: float | None = 7.0) -> torch.Tensor:
    """exp(z) - z - 1 element-wise with z = (Q(s, a) - V(s)) / alpha: XQL's Gumbel regression
    (IPL Algorithm 1, where the text's ``Q - V / alpha`` means ``(Q - V) / alpha``; XQL Eq. 11).

    Its minimiser over V is the soft maximum alpha log E[exp(Q / alpha)]. ``max_z`` clips z from above as
    XQL's reference code does (exp overflows otherwise); None disables the clip."""
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    z = diff / alpha
    if max_z is not None:
        z = z.clamp(max=max_z)
    return torch.exp(z) - z - 1.0


def awr_weights(advantage: torch.Tensor, beta: float, max_weight: float = 100.0) -> torch.Tensor:
    """exp(beta * A(s, a)) clipped at ``max_weight``: the weights of advantage-weighted regression
    (IQL Eq. 7, IPL Algorithm 2, as IQL writes the temperature).

    The IPL reference code writes exp(A / beta') instead: its beta' is 1 / beta (0.33 for beta = 3)."""
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got {beta}")
    return torch.exp(beta * advantage).clamp(max=max_weight)


def implicit_reward(q: torch.Tensor, next_v: torch.Tensor, discount: torch.Tensor,
                    clip: float | None = None) -> torch.Tensor:
    """r_Q(s, a) = Q(s, a) - discount * V(s'), the inverse Bellman operator (IPL Eq. 4 with T*).

    ``q`` is (E, num_critics, N), one row per member and head (no minimum over heads here); ``next_v``
    (E, N) is detached (only Q learns from the preference loss); ``discount`` (E, N) is
    gamma * (1 - terminal). ``clip`` bounds V(s') to [-clip, clip] first, as the reference implementation
    does with clip = 1 / (lam (1 - gamma)), the largest value a reward held in [-1/lam, 1/lam] by the
    regulariser can produce."""
    next_v = next_v.detach()
    if clip is not None:
        next_v = next_v.clamp(-clip, clip)
    return q - (discount * next_v).unsqueeze(-2)


def _member_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over every axis but the first (the member axis): (E, ...) -> (E,)."""
    return x.flatten(1).mean(1)


class IPLLoss(NamedTuple):
    """The regularised preference loss of IPL Eq. 6 and its metrics, one value per member, (E,)."""

    loss: torch.Tensor
    """preference + regulariser, what each member's critic minimises."""
    preference: torch.Tensor
    """Bradley-Terry binary cross-entropy of the implicit segment returns (Eq. 2 with Eq. 5)."""
    regulariser: torch.Tensor
    """lam * psi(r): lam E[r^2] over the preference transitions and the offline batch, half each."""
    accuracy: torch.Tensor
    """Share of strictly labelled pairs (over pairs and heads) ranked correctly by the implicit reward."""
    reward_mean: torch.Tensor
    """Mean implicit reward over all transitions of the batch."""
    reward_abs: torch.Tensor
    """Mean absolute implicit reward: the scale the regulariser controls."""


def ipl_preference_loss(reward_1: torch.Tensor, reward_2: torch.Tensor, reward_offline: torch.Tensor,
                        label: torch.Tensor, lam: float) -> IPLLoss:
    """IPL Eq. 6 (Algorithm 2's critic step): Bradley-Terry on implicit rewards plus an L2 regulariser.

    ``reward_i`` (E, H, B, T) are the implicit rewards of segment i's T transitions per member and head,
    summed undiscounted into segment returns; ``reward_offline`` (E, H, N) those of the offline batch
    (N may be 0); ``label`` (E, B) is P[segment 1 preferred] in {0, 0.5, 1}. The regulariser
    lam E_{D_p u D_o}[r^2] weighs the preference and the offline transitions equally (IPL Sec. 3.3):
    0.5 lam mean(r_pref^2) + 0.5 lam mean(r_off^2), and lam mean(r_pref^2) without an offline batch."""
    if reward_1.shape != reward_2.shape or reward_1.ndim != 4:
        raise ValueError(f"reward_1 and reward_2 must both be (E, H, B, T), got {tuple(reward_1.shape)} and "
                         f"{tuple(reward_2.shape)}")
    members, heads, pairs = reward_1.shape[:3]
    if label.shape != (members, pairs):
        raise ValueError(f"label must be (E, B) = ({members}, {pairs}), got {tuple(label.shape)}")
    if reward_offline.ndim != 3 or reward_offline.shape[:2] != (members, heads):
        raise ValueError(f"reward_offline must be (E, H, N) = ({members}, {heads}, N), got "
                         f"{tuple(reward_offline.shape)}")
    if lam < 0:
        raise ValueError(f"lam must be non-negative, got {lam}")
    labels = label.to(reward_1.dtype).unsqueeze(1).expand(-1, heads, -1)
    bt = preference_loss(reward_1.sum(-1), reward_2.sum(-1), labels, members=True)
    pref_sq = _member_mean(torch.cat([reward_1, reward_2], dim=-1).square())
    if reward_offline.shape[-1] > 0:
        regulariser = 0.5 * lam * pref_sq + 0.5 * lam * _member_mean(reward_offline.square())
    else:
        regulariser = lam * pref_sq
    with torch.no_grad():
        flat = torch.cat([reward_1.flatten(2), reward_2.flatten(2), reward_offline], dim=-1)
        reward_mean, reward_abs = _member_mean(flat), _member_mean(flat.abs())
    return IPLLoss(bt.loss + regulariser, bt.loss.detach(), regulariser.detach(), bt.accuracy,
                   reward_mean, reward_abs)


class ValueLoss(NamedTuple):
    """A value-regression loss and its metrics, one value per member, (E,)."""

    loss: torch.Tensor
    """Mean of the element-wise loss over the batch."""
    value_mean: torch.Tensor
    """Mean of V(s) over the batch."""


def _weighted_mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Each member's mean of x (E, N), or its weighted sum with ``weight`` (N,) summing to one."""
    return _member_mean(x) if weight is None else (x * weight).sum(dim=-1)


def value_loss(target_q: torch.Tensor, v: torch.Tensor, kind: str, expectile: float = 0.7,
               alpha: float = 2.0, weight: torch.Tensor | None = None) -> ValueLoss:
    """min_V E[L(Q_target(s, a) - V(s))] with L the expectile loss (``kind="expectile"``, IQL / IPL
    Algorithm 2) or the linex loss (``kind="linex"``, XQL / IPL Algorithm 1). ``target_q`` and ``v`` are
    (E, N); ``target_q`` is detached. ``weight`` (N,), summing to one, replaces the plain mean over rows."""
    diff = target_q.detach() - v
    if kind == "expectile":
        loss = expectile_loss(diff, expectile)
    elif kind == "linex":
        loss = linex_loss(diff, alpha)
    else:
        raise ValueError(f"kind must be 'expectile' or 'linex', got {kind!r}")
    return ValueLoss(_weighted_mean(loss, weight), _member_mean(v.detach()))


class BellmanLoss(NamedTuple):
    """IQL's Q regression and its metrics, one value per member, (E,)."""

    loss: torch.Tensor
    """Sum over heads of the mean squared TD error (IQL's convention)."""
    q_mean: torch.Tensor
    """Mean Q over heads and batch."""


def bellman_loss(q: torch.Tensor, target: torch.Tensor) -> BellmanLoss:
    """sum_i E[(r + gamma (1 - d) V(s') - Q_i(s, a))^2], IQL Eq. 6; ``q`` (E, H, N), ``target`` (E, N),
    detached."""
    loss = (q - target.detach().unsqueeze(-2)).square().mean(dim=-1).sum(dim=-1)
    return BellmanLoss(loss, _member_mean(q.detach()))


class ActorLoss(NamedTuple):
    """Advantage-weighted regression and its metrics, one value per member, (E,)."""

    loss: torch.Tensor
    """-E[w(s, a) log pi(a|s)]."""
    advantage: torch.Tensor
    """Mean advantage over the batch."""
    weight: torch.Tensor
    """Mean weight exp(beta A), after clipping."""


def awr_actor_loss(log_prob: torch.Tensor, advantage: torch.Tensor, beta: float,
                   max_weight: float = 100.0, row_weight: torch.Tensor | None = None) -> ActorLoss:
    """max_pi E[exp(beta A(s, a)) log pi(a|s)] as a loss (IQL Eq. 7; IPL Algorithms 1-3; AWR, AWAC), with
    ``log_prob`` and ``advantage`` (E, N). The advantage is detached: this loss trains only the actor.
    ``row_weight`` (N,), summing to one, replaces the plain mean over rows."""
    weight = awr_weights(advantage.detach(), beta, max_weight)
    return ActorLoss(-_weighted_mean(weight * log_prob, row_weight), _member_mean(advantage.detach()),
                     _member_mean(weight))


class CPLLoss(NamedTuple):
    """Contrastive Preference Learning's loss and its metrics, one value per member, (E,)."""

    loss: torch.Tensor
    """contrastive + bc_weight * bc: what each member's policy minimises."""
    contrastive: torch.Tensor
    """The (biased) Bradley-Terry cross-entropy of the segments' summed alpha log pi."""
    bc: torch.Tensor
    """Behaviour cloning, -mean log pi(a|s) over every step of both segments; it keeps its gradient, since
    CPL's pretraining steps minimise it alone."""
    accuracy: torch.Tensor
    """Share of strictly labelled pairs whose preferred segment has the larger sum of alpha log pi."""
    advantage: torch.Tensor
    """Mean implied advantage alpha log pi(a|s) over the segments' steps."""


def cpl_loss(log_prob_1: torch.Tensor, log_prob_2: torch.Tensor, label: torch.Tensor, alpha: float,
             bias: float = 1.0, bc_weight: float = 0.0) -> CPLLoss:
    """CPL's loss (CPL Sec. 3.1-3.2): the regret preference model with A*(s, a) = alpha log pi(a|s).

    ``log_prob_i`` (E, B, T) are log pi(a_t|s_t) of segment i's steps, summed undiscounted into
    A_i = sum_t alpha log pi (as the reference code does); ``label`` (E, B) is P[segment 1 preferred]. The
    conservative bias ``bias`` (CPL's lambda, in (0, 1]) scales the *rejected* segment's score:
    -y log logistic(A_1 - bias A_2) - (1 - y) log logistic(A_2 - bias A_1); bias = 1 is the plain
    contrastive loss, bias < 1 rewards raising the likelihood of all data, which keeps the policy on the
    data's actions. ``bc_weight`` adds bc_weight * (-mean log pi) over every step of both segments: CPL (BC).
    Taught in "Contrastive Preference Learning" (book/family/cpl.ipynb)."""
    if log_prob_1.shape != log_prob_2.shape or log_prob_1.ndim != 3:
        raise ValueError(f"log_prob_1 and log_prob_2 must both be (E, B, T), got {tuple(log_prob_1.shape)} "
                         f"and {tuple(log_prob_2.shape)}")
    if label.shape != log_prob_1.shape[:2]:
        raise ValueError(f"label must be (E, B) = {tuple(log_prob_1.shape[:2])}, got {tuple(label.shape)}")
    if not alpha > 0:
        raise ValueError(f"alpha (CPL's temperature) must be positive, got {alpha}")
    if not 0 < bias <= 1:
        raise ValueError(f"bias (CPL's conservative lambda) must lie in (0, 1], got {bias}")
    if bc_weight < 0:
        raise ValueError(f"bc_weight must be non-negative, got {bc_weight}")
    y = label.to(log_prob_1.dtype)
    adv_1, adv_2 = alpha * log_prob_1.sum(-1), alpha * log_prob_2.sum(-1)
    nll = (y * torch.nn.functional.softplus(bias * adv_2 - adv_1)
           + (1 - y) * torch.nn.functional.softplus(bias * adv_1 - adv_2))
    contrastive = nll.mean(-1)
    bc = -torch.cat([log_prob_1, log_prob_2], dim=-1).flatten(1).mean(1)
    with torch.no_grad():
        strict = (y != 0.5).to(y.dtype)
        right = ((adv_1 > adv_2) == (y > 0.5)).to(y.dtype) * strict
        accuracy = right.sum(-1) / strict.sum(-1)  # nan without strict labels, as preference_loss
        advantage = alpha * torch.cat([log_prob_1, log_prob_2], dim=-1).flatten(1).mean(1)
    return CPLLoss(contrastive + bc_weight * bc, contrastive.detach(), bc, accuracy, advantage)


class BCLoss(NamedTuple):
    """Behaviour cloning's loss and its metric, one value per member, (E,)."""

    loss: torch.Tensor
    """-mean log pi(a|s) over the steps of the cloned segments: what each member's policy minimises."""
    log_likelihood: torch.Tensor
    """Mean log pi(a|s) over every step of both segments, cloned or not (detached)."""


def bc_loss(log_prob_1: torch.Tensor, log_prob_2: torch.Tensor, label: torch.Tensor | None = None) -> BCLoss:
    """Behaviour cloning on preference segments, max E[log pi(a|s)], as CPL's SFT baseline trains it.

    ``log_prob_i`` (E, B, T) are log pi(a_t|s_t) of segment i's steps. Without ``label`` every step of both
    segments counts; with ``label`` (E, B), P[segment 1 preferred], only the preferred segment of each pair
    does (segment 1 where label >= 0.5, segment 2 where label <= 0.5, so a tie clones both), and the loss is
    the mean over the steps of the kept segments. Taught in "Contrastive Preference Learning"
    (book/family/cpl.ipynb)."""
    if log_prob_1.shape != log_prob_2.shape or log_prob_1.ndim != 3:
        raise ValueError(f"log_prob_1 and log_prob_2 must both be (E, B, T), got {tuple(log_prob_1.shape)} "
                         f"and {tuple(log_prob_2.shape)}")
    log_prob = torch.cat([log_prob_1, log_prob_2], dim=1)  # (E, 2B, T)
    if label is None:
        keep = torch.ones(log_prob.shape[:2], dtype=log_prob.dtype, device=log_prob.device)
    else:
        if label.shape != log_prob_1.shape[:2]:
            raise ValueError(f"label must be (E, B) = {tuple(log_prob_1.shape[:2])}, "
                             f"got {tuple(label.shape)}")
        keep = torch.cat([label >= 0.5, label <= 0.5], dim=1).to(log_prob.dtype)
    per_segment = log_prob.mean(-1)  # all segments have T steps: kept steps weigh equally
    loss = -(keep * per_segment).sum(-1) / keep.sum(-1)
    return BCLoss(loss, per_segment.detach().mean(-1))
