"""One update function per offline method, to read next to the paper's pseudocode.

Every update has the signature ``update(agent, optimizers, pref, off, cfg, step, generators) -> metrics``
and performs one gradient step of each network in a fixed order: V, then Q, then pi, then the Polyak
update of the target critic. Every tensor has a leading member axis E: an agent of E members trains E
independent seeds at once on their own batches ((E, B, S, ...) and (E, N, ...)), and every metric is (E,).
E = 1 is an ordinary single run; there is no other code path. The three IPL variants differ only where
their algorithms differ:

- :func:`ipl_update` (IPL Algorithm 2, IQL): expectile value loss;
- :func:`ipl_xql_update` (IPL Algorithm 1, XQL): linex value loss, one word away from the above;
- :func:`ipl_awac_update` (IPL Algorithm 3, AWAC): no value network, V(s') = Q_targ(s', a' ~ pi).

:func:`cpl_update` (Contrastive Preference Learning) is the same preference loss with the implicit reward of
Q replaced by alpha log pi: one network, one step, no critic and no bootstrapping. :func:`bc_update` is
behaviour cloning on the same segments (CPL's SFT baseline): the same network and step, with the
log-likelihood in place of the contrastive loss.

:func:`iql_update` is the oracle (ground-truth rewards) and :func:`mr_update` is IQL on a learned reward
model, trained concurrently for ``cfg.reward_steps`` steps. A reward model that is not trained by gradient
(B-REX) sets ``trained_by_gradient = False`` and provides ``fit(preferences, generator)``, which the
trainer calls once before the first step; :func:`mr_update` then only reads its rewards. IQL reads rewards
one transition at a time, which is exact only for Markovian models (:func:`is_markovian`); the trainer
refuses non-Markovian ones (NMR, PT) rather than feed them one-step contexts.

Choices the paper's text leaves open follow the authors' reference implementation: the implicit reward of
each Q head uses the *online* value network V(s') (detached, optionally clipped); the minimum over the
target heads feeds the value target and the advantage; a segment of S observations gives S - 1
transitions; segment returns are undiscounted sums; the networks step in the order V, Q, pi (the paper's
Algorithms 1-2 list Q first). Taught in "IPL in practice" (book/ipl/offline.ipynb).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from ipl_core.agents import Agent
from ipl_core.batches import OfflineBatch, PreferenceBatch
from ipl_core.config import OfflineConfig
from ipl_core.losses import (
    ActorLoss,
    BCLoss,
    BellmanLoss,
    CPLLoss,
    IPLLoss,
    ValueLoss,
    awr_actor_loss,
    bc_loss,
    bellman_loss,
    cpl_loss,
    implicit_reward,
    ipl_preference_loss,
    value_loss,
)
from ipl_core.preferences import preference_loss
from ipl_core.reward_models import REWARD_MODELS, RewardModel, reward_model_loss

Optimizers = dict[str, torch.optim.Optimizer]
Metrics = dict[str, torch.Tensor]
Update = Callable[[Agent, Optimizers, PreferenceBatch, OfflineBatch, OfflineConfig, int,
                   Sequence[torch.Generator]], Metrics]


class Transitions(NamedTuple):
    """Preference transitions of both segments, then offline transitions, stacked into one batch per
    member: fields (E, N, ...)."""

    obs: torch.Tensor
    act: torch.Tensor
    next_obs: torch.Tensor
    discount: torch.Tensor
    """gamma * (1 - terminal), (E, N)."""
    pairs: int
    """B, the number of preference pairs."""
    length: int
    """T = S - 1 transitions per segment."""


def stack_transitions(pref: PreferenceBatch, off: OfflineBatch, gamma: float) -> Transitions:
    """Turn each segment of S observations into S - 1 transitions (s_t, a_t, s_{t+1}) and append the
    offline ones: rows [0, BT) are segment 1, [BT, 2BT) segment 2, the rest offline."""
    pairs, length = pref.obs_1.shape[1], pref.obs_1.shape[2] - 1

    def flat(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1, 2)

    obs = torch.cat([flat(pref.obs_1[:, :, :-1]), flat(pref.obs_2[:, :, :-1]), off.obs], dim=1)
    act = torch.cat([flat(pref.act_1[:, :, :-1]), flat(pref.act_2[:, :, :-1]), off.act], dim=1)
    next_obs = torch.cat([flat(pref.obs_1[:, :, 1:]), flat(pref.obs_2[:, :, 1:]), off.next_obs], dim=1)
    terminal = torch.cat([flat(pref.terminal_1[:, :, :-1]), flat(pref.terminal_2[:, :, :-1]), off.terminal],
                         dim=1)
    return Transitions(obs, act, next_obs, gamma * (1.0 - terminal), pairs, length)


def state_values(value: Callable[[torch.Tensor], torch.Tensor], pref: PreferenceBatch,
                 off: OfflineBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """V(s) and V(s') of every row of :func:`stack_transitions`, (E, N) each, from one forward pass over
    the distinct states: the S observations of each segment (its S - 1 transitions share S - 2 of them)
    and s, s' of each offline row."""
    members, pairs, length = pref.obs_1.shape[:3]
    n = off.obs.shape[1]
    states = torch.cat([pref.obs_1.flatten(1, 2), pref.obs_2.flatten(1, 2), off.obs, off.next_obs], dim=1)
    v_1, v_2, v_off, v_next_off = value(states).split([pairs * length, pairs * length, n, n], dim=1)
    v_1, v_2 = v_1.view(members, pairs, length), v_2.view(members, pairs, length)
    v = torch.cat([v_1[:, :, :-1].flatten(1), v_2[:, :, :-1].flatten(1), v_off], dim=1)
    next_v = torch.cat([v_1[:, :, 1:].flatten(1), v_2[:, :, 1:].flatten(1), v_next_off], dim=1)
    return v, next_v


def split_rewards(reward: torch.Tensor, x: Transitions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(E, H, N) per-transition rewards -> segment 1 (E, H, B, T), segment 2 (E, H, B, T), offline
    (E, H, N - 2BT)."""
    n = x.pairs * x.length
    r_1, r_2, r_off = reward.split([n, n, reward.shape[-1] - 2 * n], dim=-1)
    shape = (*reward.shape[:2], x.pairs, x.length)
    return r_1.reshape(shape), r_2.reshape(shape), r_off


def target_clip(cfg: OfflineConfig) -> float | None:
    """1 / (lam (1 - gamma)) when ``cfg.target_clipping`` is on and lam > 0, else None."""
    if not cfg.target_clipping or cfg.lam == 0:
        return None
    return 1.0 / (cfg.lam * (1.0 - cfg.discount))


def row_weights(x: Transitions, cfg: OfflineConfig) -> torch.Tensor | None:
    """Weights of the rows of the value and actor losses: None (a plain mean over all rows, IPL Algorithm
    2's text) unless ``cfg.balance_losses``, then half the weight on the preference rows and half on the
    offline rows, as the authors' code does (all of it on the preference rows without an offline batch)."""
    if not cfg.balance_losses:
        return None
    pref_rows, rows = 2 * x.pairs * x.length, x.obs.shape[1]
    off_rows = rows - pref_rows
    share = 0.5 if off_rows else 1.0
    weight = torch.full((rows,), share / pref_rows, device=x.obs.device)
    if off_rows:
        weight[pref_rows:] = 0.5 / off_rows
    return weight


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One step on the members' summed losses: members share no parameters, so each member's gradient is
    exactly that of its own loss."""
    optimizer.zero_grad(set_to_none=True)
    loss.sum().backward()
    optimizer.step()


def _value_step(agent: Agent, optimizer: torch.optim.Optimizer, obs: torch.Tensor, target_q: torch.Tensor,
                kind: str, cfg: OfflineConfig, weight: torch.Tensor | None = None) -> ValueLoss:
    out = value_loss(target_q, agent.value(obs), kind, cfg.expectile, cfg.alpha, weight)
    _step(optimizer, out.loss)
    return out


def _ipl_critic_step(agent: Agent, optimizer: torch.optim.Optimizer, x: Transitions, next_v: torch.Tensor,
                     label: torch.Tensor, cfg: OfflineConfig,
                     clip: float | None) -> tuple[IPLLoss, torch.Tensor]:
    q = agent.critic(x.obs, x.act)
    r_1, r_2, r_off = split_rewards(implicit_reward(q, next_v, x.discount, clip), x)
    out = ipl_preference_loss(r_1, r_2, r_off, label, cfg.lam)
    _step(optimizer, out.loss)
    return out, q.detach()


def _actor_step(agent: Agent, optimizer: torch.optim.Optimizer, obs: torch.Tensor, act: torch.Tensor,
                advantage: torch.Tensor, cfg: OfflineConfig, weight: torch.Tensor | None = None) -> ActorLoss:
    out = awr_actor_loss(agent.actor.log_prob(obs, act), advantage, cfg.beta, cfg.max_weight, weight)
    _step(optimizer, out.loss)
    return out


def _metrics(critic: IPLLoss, q: torch.Tensor, value: ValueLoss | None, actor: ActorLoss) -> Metrics:
    metrics = {
        "critic_loss": critic.loss.detach(), "preference_loss": critic.preference,
        "regulariser": critic.regulariser, "pref_accuracy": critic.accuracy,
        "reward_mean": critic.reward_mean, "reward_abs": critic.reward_abs, "q_mean": q.flatten(1).mean(1),
        "actor_loss": actor.loss.detach(), "advantage": actor.advantage, "awr_weight": actor.weight,
    }
    if value is not None:
        metrics |= {"value_loss": value.loss.detach(), "v_mean": value.value_mean}
    return metrics


def ipl_update(agent: Agent, optimizers: Optimizers, pref: PreferenceBatch, off: OfflineBatch,
               cfg: OfflineConfig, step: int, generators: Sequence[torch.Generator]) -> Metrics:
    """IPL with IQL, IPL Algorithm 2: V by expectile regression on B_p u B_o towards min_i Q_targ_i;
    Q by the regularised preference loss of Eq. 6 on implicit rewards Q_i - gamma V(s') (Eq. 4);
    pi by advantage-weighted regression with A = min_i Q_targ_i(s, a) - V(s)."""
    return _ipl_value_update(agent, optimizers, pref, off, cfg, "expectile")


def ipl_xql_update(agent: Agent, optimizers: Optimizers, pref: PreferenceBatch, off: OfflineBatch,
                   cfg: OfflineConfig, step: int, generators: Sequence[torch.Generator]) -> Metrics:
    """IPL with XQL, IPL Algorithm 1: as :func:`ipl_update` but V minimises the linex (Gumbel) loss
    exp(z) - z - 1, z = (Q_targ - V) / alpha, so that V tracks the soft maximum of Q (XQL)."""
    return _ipl_value_update(agent, optimizers, pref, off, cfg, "linex")


def _ipl_value_update(agent: Agent, optimizers: Optimizers, pref: PreferenceBatch, off: OfflineBatch,
                      cfg: OfflineConfig, value_kind: str) -> Metrics:
    """One step of IPL with a value network trained by ``value_kind`` ("expectile": IQL, "linex": XQL)."""
    x = stack_transitions(pref, off, cfg.discount)
    weight = row_weights(x, cfg)
    target_q = agent.target_q(x.obs, x.act).min(dim=1).values
    value = _value_step(agent, optimizers["value"], x.obs, target_q, value_kind, cfg, weight)
    with torch.no_grad():
        v, next_v = state_values(agent.value, pref, off)  # the critic step leaves V unchanged
    critic, q = _ipl_critic_step(agent, optimizers["critic"], x, next_v, pref.label, cfg, target_clip(cfg))
    actor = _actor_step(agent, optimizers["actor"], x.obs, x.act, target_q - v, cfg, weight)
    agent.update_target(cfg.target_tau)
    return _metrics(critic, q, value, actor)


def ipl_awac_update(agent: Agent, optimizers: Optimizers, pref: PreferenceBatch, off: OfflineBatch,
                    cfg: OfflineConfig, step: int, generators: Sequence[torch.Generator]) -> Metrics:
    """IPL with AWAC, IPL Algorithm 3: no value network. V(s') = Q_targ(s', a'), a' ~ pi(.|s'), in the
    implicit reward (no clipping, as in the reference code); the advantage of the actor step is
    Q(s, a) - Q(s, a_pi), a_pi ~ pi(.|s), with Q(s, a) from before the critic step (reference code)."""
    x = stack_transitions(pref, off, cfg.discount)
    with torch.no_grad():
        next_v = agent.target_q(x.next_obs, agent.actor.sample(x.next_obs, generators)).min(dim=1).values
    critic, q = _ipl_critic_step(agent, optimizers["critic"], x, next_v, pref.label, cfg, None)
    with torch.no_grad():
        advantage = q.mean(dim=1) - agent.critic(x.obs, agent.actor.sample(x.obs, generators)).mean(dim=1)
    actor = _actor_step(agent, optimizers["actor"], x.obs, x.act, advantage, cfg, row_weights(x, cfg))
    agent.update_target(cfg.target_tau)
    return _metrics(critic, q, None, actor)


def _iql_step(agent: Agent, optimizers: Optimizers, off: OfflineBatch, reward: torch.Tensor,
              cfg: OfflineConfig) -> Metrics:
    """IQL (Kostrikov et al. Eq. 5-7) on offline transitions labelled with ``reward`` (E, N)."""
    target_q = agent.target_q(off.obs, off.act).min(dim=1).values
    value = _value_step(agent, optimizers["value"], off.obs, target_q, "expectile", cfg)
    with torch.no_grad():  # V after its step, on s and s' in one pass; the critic step leaves it unchanged
        v, next_v = agent.value(torch.cat([off.obs, off.next_obs], dim=1)).chunk(2, dim=1)
        target = reward + cfg.discount * (1.0 - off.terminal) * next_v
    critic = bellman_loss(agent.critic(off.obs, off.act), target)
    _step(optimizers["critic"], critic.loss)
    actor = _actor_step(agent, optimizers["actor"], off.obs, off.act, target_q - v, cfg)
    agent.update_target(cfg.target_tau)
    return _iql_metrics(critic, value, actor, reward)


def _iql_metrics(critic: BellmanLoss, value: ValueLoss, actor: ActorLoss, reward: torch.Tensor) -> Metrics:
    return {"critic_loss": critic.loss.detach(), "q_mean": critic.q_mean, "value_loss": value.loss.detach(),
            "v_mean": value.value_mean, "actor_loss": actor.loss.detach(), "advantage": actor.advantage,
            "awr_weight": actor.weight, "reward_mean": reward.mean(dim=1),
            "reward_abs": reward.abs().mean(dim=1)}


def iql_update(agent: Agent, optimizers: Optimizers, pref: PreferenceBatch, off: OfflineBatch,
               cfg: OfflineConfig, step: int, generators: Sequence[torch.Generator]) -> Metrics:
    """Oracle IQL: the offline dataset's ground-truth rewards; the preference batch is not read."""
    return _iql_step(agent, optimizers, off, off.reward, cfg)


def trains_by_gradient(model: RewardModel) -> bool:
    """Whether Adam trains ``model``: its ``trained_by_gradient`` attribute if set, else whether it has
    learnable parameters (B-REX has none: it is fitted once by ``fit(preferences, generator)``)."""
    default = any(p.requires_grad for p in model.parameters())
    return bool(getattr(model, "trained_by_gradient", default))


def is_markovian(model: RewardModel) -> bool:
    """Whether r(s_t, a_t) depends on the step alone, so that IQL may query it one transition at a time
    (the model's ``markovian`` attribute: True for MR and B-REX)."""
    return bool(getattr(model, "markovian", True))


def mr_update(agent: Agent, optimizers: Optimizers, pref: PreferenceBatch, off: OfflineBatch,
              cfg: OfflineConfig, step: int, generators: Sequence[torch.Generator]) -> Metrics:
    """IQL on a learned reward (MR, IPL Sec. 4.2): while ``step < cfg.reward_steps`` the reward model takes
    one Bradley-Terry step (Eq. 2) on the preference batch; IQL then reads its detached per-step rewards
    for the offline transitions."""
    models = agent.reward_model
    if models is None:
        raise ValueError(f"mr_update needs an agent with a reward model, got method {agent.method!r}")
    metrics: Metrics = {}
    if step < cfg.reward_steps and trains_by_gradient(models.models[0]):
        fit = reward_model_loss(models, pref, members=True)
        _step(optimizers["reward"], fit.loss)
        metrics |= {"reward_loss": fit.loss.detach(), "pref_accuracy": fit.accuracy}
    with torch.no_grad():
        reward = models(off.obs.unsqueeze(2), off.act.unsqueeze(2)).squeeze(2)
    return metrics | _iql_step(agent, optimizers, off, reward, cfg)


def segment_log_probs(agent: Agent, pref: PreferenceBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(a_t|s_t) of all S steps of both segments, (E, B, S) each, from one forward pass of the actor.

    All S: the regret labels (:func:`~ipl_core.data.segments.make_regret_preference_dataset`) sum the
    advantages of the same S steps (CPL's reference code labels S - 1 and scores S)."""
    pairs, length = pref.obs_1.shape[1], pref.obs_1.shape[2]
    obs = torch.cat([pref.obs_1, pref.obs_2], dim=1).flatten(1, 2)
    act = torch.cat([pref.act_1, pref.act_2], dim=1).flatten(1, 2)
    log_prob = agent.actor.log_prob(obs, act).view(-1, 2 * pairs, length)
    return log_prob[:, :pairs], log_prob[:, pairs:]


def cpl_update(agent: Agent, optimizers: Optimizers, pref: PreferenceBatch, off: OfflineBatch,
               cfg: OfflineConfig, step: int, generators: Sequence[torch.Generator]) -> Metrics:
    """CPL (Hejna et al. 2024, Sec. 3): the actor minimises :func:`~ipl_core.losses.cpl_loss` on the
    preference batch, A(s, a) = alpha log pi(a|s) summed over each segment's S steps. For the first
    ``cpl_bc_fraction`` of the steps it minimises the behaviour-cloning term alone (CPL's BC pretraining),
    and it restarts Adam (fresh moments) at the first contrastive step, as the reference code builds a new
    optimiser there. The offline batch is not read."""
    log_prob_1, log_prob_2 = segment_log_probs(agent, pref)
    out = cpl_loss(log_prob_1, log_prob_2, pref.label, cfg.cpl_alpha, cfg.cpl_bias, cfg.cpl_bc_weight)
    if step == cfg.cpl_switch_step and step > 0:
        optimizers["actor"].state.clear()  # Adam creates fresh moments at its next step
    _step(optimizers["actor"], out.bc if step < cfg.cpl_switch_step else out.loss)
    return _cpl_metrics(out)


def _cpl_metrics(out: CPLLoss) -> Metrics:
    return {"actor_loss": out.loss.detach(), "preference_loss": out.contrastive, "bc_loss": out.bc.detach(),
            "pref_accuracy": out.accuracy, "advantage": out.advantage}


def bc_update(agent: Agent, optimizers: Optimizers, pref: PreferenceBatch, off: OfflineBatch,
              cfg: OfflineConfig, step: int, generators: Sequence[torch.Generator]) -> Metrics:
    """Behaviour cloning on the preference segments, CPL's SFT baseline (CPL Table 1; as its reference code
    trains it): the actor maximises log pi(a|s) (:func:`~ipl_core.losses.bc_loss`) on every segment of the
    batch for the first ``cpl_bc_fraction`` of the steps (the share CPL pretrains for), then on the
    preferred segment of each pair only. The offline batch is not read; the labels only after the first
    phase."""
    log_prob_1, log_prob_2 = segment_log_probs(agent, pref)
    out = bc_loss(log_prob_1, log_prob_2, None if step < cfg.cpl_switch_step else pref.label)
    _step(optimizers["actor"], out.loss)
    return _bc_metrics(out)


def _bc_metrics(out: BCLoss) -> Metrics:
    return {"actor_loss": out.loss.detach(), "bc_loss": out.loss.detach(),
            "log_likelihood": out.log_likelihood}


UPDATES: dict[str, Update] = {
    "bc": bc_update,
    "cpl": cpl_update,
    "iql": iql_update,
    "ipl": ipl_update,
    "ipl-xql": ipl_xql_update,
    "ipl-awac": ipl_awac_update,
}
"""Update functions of the methods that learn no separate reward; reward models use :func:`mr_update`."""


def update_function(method: str) -> Update:
    """The update of ``method``: one of :data:`UPDATES`, or :func:`mr_update` for any reward model."""
    if method in UPDATES:
        return UPDATES[method]
    if method in REWARD_MODELS:
        return mr_update
    raise ValueError(f"method must be one of {sorted(UPDATES) + sorted(REWARD_MODELS)}, got {method!r}")


def _adam(params, lr: float) -> torch.optim.Adam:
    """Adam with its fused kernel (one kernel for all parameters, on CPU and CUDA alike)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def make_optimizers(agent: Agent, cfg: OfflineConfig) -> Optimizers:
    """One Adam per network: critic, value (if any), actor, and reward (if the reward model trains by
    gradient), whose parameter groups are its members, one group each."""
    optimizers: Optimizers = {"actor": _adam(agent.actor.parameters(), cfg.lr)}
    if agent.critic is not None:
        optimizers["critic"] = _adam(agent.critic.parameters(), cfg.lr)
    if agent.value is not None:
        optimizers["value"] = _adam(agent.value.parameters(), cfg.lr)
    models = agent.reward_model
    if models is not None and trains_by_gradient(models.models[0]):
        groups = [{"params": [p for p in m.parameters() if p.requires_grad]} for m in models.models]
        optimizers["reward"] = _adam(groups, cfg.reward_lr)
    return optimizers


@torch.no_grad()
def segment_rewards(agent: Agent, pref: PreferenceBatch,
                    cfg: OfflineConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-transition rewards (E, B, T) of both segments as each member sees them: the reward model's for a
    reward-learning agent, else the implicit reward Q - gamma V(s') averaged over heads (for IPL-AWAC,
    V(s') = Q_targ(s', mean action); for the oracle, a diagnostic of what its Q implies; for CPL, the
    advantage alpha log pi(a|s) it fits; for BC, the same alpha log pi as a diagnostic)."""
    if agent.critic is None:
        log_prob_1, log_prob_2 = segment_log_probs(agent, pref)
        return cfg.cpl_alpha * log_prob_1, cfg.cpl_alpha * log_prob_2
    if agent.reward_model is not None:
        return (agent.reward_model(pref.obs_1[:, :, :-1], pref.act_1[:, :, :-1]),
                agent.reward_model(pref.obs_2[:, :, :-1], pref.act_2[:, :, :-1]))
    none = pref.label[:, :0]
    empty = OfflineBatch(pref.obs_1[:, :0, 0], pref.act_1[:, :0, 0], pref.obs_1[:, :0, 0], none, none)
    x = stack_transitions(pref, empty, cfg.discount)
    if agent.value is None:
        next_v = agent.target_q(x.next_obs, agent.actor.act(x.next_obs)).min(dim=1).values
        clip = None
    else:
        next_v, clip = agent.value(x.next_obs), target_clip(cfg)
    reward = implicit_reward(agent.critic(x.obs, x.act), next_v, x.discount, clip).mean(dim=1, keepdim=True)
    r_1, r_2, _ = split_rewards(reward, x)
    return r_1[:, 0], r_2[:, 0]


@torch.no_grad()
def preference_accuracy(agent: Agent, pref: PreferenceBatch, cfg: OfflineConfig) -> torch.Tensor:
    """Each member's share of strictly labelled pairs whose preferred segment has the larger summed
    reward, (E,)."""
    r_1, r_2 = segment_rewards(agent, pref, cfg)
    return preference_loss(r_1.sum(-1), r_2.sum(-1), pref.label, members=True).accuracy
