"""One step of ``offline.ipl_update`` against the authors' IPL-IQL step, re-typed here from the structure of
``IPL_IQL.train_step`` in jhejna/inverse-preference-learning (``research/algs/ipl_iql.py``): their label
convention (1 = the second segment preferred), their per-source loss weights
(``value_replay_weight = chi2_replay_weight = policy_replay_weight = 0.5``, ours ``balance_losses``), their
clip ``1 / (chi2_coeff (1 - discount))`` per row, their temperature as a divisor (``exp(A / beta')`` with
``beta' = 1 / beta``), written with plain torch operations and none of ``ipl_core.losses``. Both steps
start from the same weights and fresh Adam states on the same batch; the actor's Gaussian log-likelihood is
the shared network's own (the comparison is of the update, not of the policy's parametrisation).

Tolerance: the two steps compute the same sums in other orders (a mean of means against a weighted sum),
which parts their losses by a few units of float32's roundoff; Adam's first step moves each parameter by
about its learning rate whatever the gradient's size, so a weight moves by at most ``lr`` times the relative
gap of its gradient. ``rtol = atol = 1e-5`` is about 100 float32 roundoffs: far below the 3e-4 a step moves
every weight, so a wrong term (a missing factor of 1/2, the other label, V before or after its own step)
fails, as the second test checks.
"""

from __future__ import annotations

import copy

import pytest
import torch

from ipl_core.agents import Agent, make_agent
from ipl_core.batches import OfflineBatch, PreferenceBatch, stack_batches
from ipl_core.config import OfflineConfig
from ipl_core.offline import ipl_update, make_optimizers

OBS, ACT, PAIRS, LENGTH, N = 4, 2, 6, 5, 8


def _batch() -> tuple[PreferenceBatch, OfflineBatch]:
    g = torch.Generator().manual_seed(3)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    terminal = torch.zeros(PAIRS, LENGTH)
    terminal[0, 3] = 1.0  # one terminal inside a segment: its row bootstraps nothing
    pref = PreferenceBatch(r(PAIRS, LENGTH, OBS), r(PAIRS, LENGTH, ACT).tanh(), r(PAIRS, LENGTH, OBS),
                           r(PAIRS, LENGTH, ACT).tanh(), torch.tensor([1.0, 0.0, 0.5, 1.0, 0.0, 1.0]),
                           terminal, torch.zeros(PAIRS, LENGTH))
    off = OfflineBatch(r(N, OBS), r(N, ACT).tanh(), r(N, OBS), r(N), (torch.arange(N) == 2).float())
    return stack_batches([pref]), stack_batches([off])


def _authors_step(agent: Agent, optimizers: dict, pref: PreferenceBatch, off: OfflineBatch,
                  cfg: OfflineConfig, wrong: str = "") -> None:
    """IPL_IQL.train_step, one member (E = 1), re-typed: V, then Q, then pi, then the target."""
    def flat(x: torch.Tensor) -> torch.Tensor:  # (1, B, S, ...) -> (B (S - 1), ...), the first S - 1 steps
        return x[0, :, :-1].reshape(-1, *x.shape[3:])

    def nxt(x: torch.Tensor) -> torch.Tensor:
        return x[0, :, 1:].reshape(-1, *x.shape[3:])

    obs = torch.cat([flat(pref.obs_1), flat(pref.obs_2), off.obs[0]])[None]
    act = torch.cat([flat(pref.act_1), flat(pref.act_2), off.act[0]])[None]
    next_obs = torch.cat([nxt(pref.obs_1), nxt(pref.obs_2), off.next_obs[0]])[None]
    done = torch.cat([flat(pref.terminal_1), flat(pref.terminal_2), off.terminal[0]])
    discount = cfg.discount * (1.0 - done)
    split = [PAIRS * (LENGTH - 1), PAIRS * (LENGTH - 1), N]

    def balanced(rows: torch.Tensor) -> torch.Tensor:  # (1 - w) (mean_1 + mean_2) / 2 + w mean_replay
        a, b, c = torch.split(rows, split, dim=-1)
        return 0.5 * (a.mean() + b.mean()) / 2 + 0.5 * c.mean()

    with torch.no_grad():
        target_q = agent.target_critic(obs, act)[0].min(dim=0).values
    diff = target_q - agent.value(obs)[0]
    v_loss = balanced((cfg.expectile - (diff < 0).float()).abs() * diff.square())
    optimizers["value"].zero_grad()
    v_loss.backward()
    optimizers["value"].step()

    qs = agent.critic(obs, act)[0]  # (heads, rows)
    with torch.no_grad():
        next_v = agent.value(next_obs)[0]
        q_lim = 1.0 / (cfg.lam * (1.0 - discount))
        next_v = torch.maximum(torch.minimum(next_v, q_lim), -q_lim)
    reward = qs - discount * next_v
    r1, r2, rr = torch.split(reward, split, dim=1)
    heads = reward.shape[0]
    logits = r2.view(heads, PAIRS, -1).sum(-1) - r1.view(heads, PAIRS, -1).sum(-1)
    labels = (1.0 - pref.label[0]).expand(heads, -1)  # theirs: 1 = the second segment preferred
    if wrong == "label":
        labels = 1.0 - labels
    q_loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    chi2_fb = cfg.lam * 0.5 * (r1.square().mean() + r2.square().mean())
    if wrong == "chi2":
        chi2_fb = chi2_fb * 2
    chi2 = 0.5 * chi2_fb + 0.5 * cfg.lam * rr.square().mean()
    optimizers["critic"].zero_grad()
    (q_loss + chi2).backward()
    optimizers["critic"].step()

    with torch.no_grad():
        adv = target_q - agent.value(obs)[0]
        exp_adv = torch.exp(adv / (1.0 / cfg.beta)).clamp(max=cfg.max_weight)
    actor_loss = balanced(exp_adv * -agent.actor.log_prob(obs, act)[0])
    optimizers["actor"].zero_grad()
    actor_loss.backward()
    optimizers["actor"].step()

    with torch.no_grad():
        targets = dict(agent.target_critic.named_buffers())
        for name, param in agent.critic.named_parameters():
            targets[name].copy_(cfg.target_tau * param + (1 - cfg.target_tau) * targets[name])


def _both_steps(wrong: str = "") -> tuple[Agent, Agent]:
    cfg = OfflineConfig(method="ipl", hidden_dim=32, num_layers=2, lam=0.5, discount=0.99, beta=4.0,
                        balance_losses=True, target_clipping=True)
    ours = make_agent("ipl", OBS, ACT, (32, 32), generator=torch.Generator().manual_seed(0))
    # a target critic apart from the critic, as after training, so the min over target heads matters
    with torch.no_grad():
        for buffer in ours.target_critic.buffers():
            buffer.add_(0.1 * torch.randn(buffer.shape, generator=torch.Generator().manual_seed(1)))
    theirs = copy.deepcopy(ours)
    pref, off = _batch()
    ipl_update(ours, make_optimizers(ours, cfg), pref, off, cfg, 0, [torch.Generator().manual_seed(0)])
    _authors_step(theirs, make_optimizers(theirs, cfg), pref, off, cfg, wrong)
    return ours, theirs


def _max_gap(a: Agent, b: Agent) -> float:
    theirs = b.state_dict()
    return max((x - theirs[name]).abs().max().item() for name, x in a.state_dict().items())


def test_one_ipl_step_equals_the_authors_step() -> None:
    ours, theirs = _both_steps()
    expected = theirs.state_dict()  # every network and the target critic
    for name, x in ours.state_dict().items():
        torch.testing.assert_close(x, expected[name], rtol=1e-5, atol=1e-5,
                                   msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("wrong", ["label", "chi2"])
def test_a_wrong_term_in_the_reference_parts_the_steps(wrong: str) -> None:
    ours, theirs = _both_steps(wrong)
    assert _max_gap(ours, theirs) > 1e-4  # about the learning rate: one Adam step in another direction
