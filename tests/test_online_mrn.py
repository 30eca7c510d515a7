"""MRN's meta-gradient (Eq. 11) is the derivative of the outer loss through the pseudo-update (Eq. 10):
checked against central finite differences in float64 on a tiny critic and reward ensemble of two seeds,
for each seed of the batch."""

from __future__ import annotations

import numpy as np
import torch

from ipl_core.online.mrn import meta_gradient, meta_loss, mrn_update, pseudo_update
from ipl_core.online.pebble import RewardEnsemble
from ipl_core.online.replay import Batch
from ipl_core.online.sac import DoubleCritic

E = 2  # seeds in the batch


def _problem(seed: int = 0):
    torch.manual_seed(seed)
    critic = DoubleCritic(2, 1, 5, 1, members=E).double()
    ensemble = RewardEnsemble(2, 1, 2, (4,), members=E).double()
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(E, *shape, generator=g, dtype=torch.float64)

    done = torch.tensor([[0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1]], dtype=torch.float64)
    batch = Batch(r(6, 2), r(6, 1), r(6), r(6, 2), done)
    target_v = r(6)
    label = torch.tensor([[1.0, 0.0, 1.0, 0.5], [0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    pairs = (r(4, 3, 2), r(4, 3, 1), r(4, 3, 2), r(4, 3, 1), label)
    return critic, ensemble, batch, target_v, pairs


def _outer(critic, ensemble, batch, target_v, pairs, inner_lr: float) -> torch.Tensor:
    reward = ensemble.mean_reward(batch.obs, batch.action)
    params = pseudo_update(critic, reward, batch, target_v, inner_lr, gamma=0.9)
    return meta_loss(critic, params, *pairs).loss.detach()


def test_meta_gradient_matches_finite_differences_for_every_seed() -> None:
    """Each reward parameter belongs to one seed: its meta-gradient is the finite difference of that
    seed's outer loss, and the other seed's outer loss does not move."""
    critic, ensemble, batch, target_v, pairs = _problem()
    inner_lr, eps = 0.5, 1e-6
    _, grads = meta_gradient(critic, ensemble, batch, target_v, pairs, inner_lr, gamma=0.9)
    checked = 0
    for p, grad in zip(ensemble.parameters(), grads, strict=True):
        per_member = p.numel() // E
        view = p.data.view(-1)
        for i in range(p.numel()):
            owner = i // per_member
            old = view[i].item()
            view[i] = old + eps
            up = _outer(critic, ensemble, batch, target_v, pairs, inner_lr)
            view[i] = old - eps
            down = _outer(critic, ensemble, batch, target_v, pairs, inner_lr)
            view[i] = old
            numeric = (up - down) / (2 * eps)
            analytic = grad.reshape(-1)[i].item()
            assert abs(numeric[owner].item() - analytic) <= 1e-5 * abs(analytic) + 1e-8, (p.shape, i)
            assert abs(numeric[1 - owner].item()) < 1e-9  # the other seed is untouched
            checked += abs(analytic) > 1e-4
    assert checked > 10  # the test is not vacuous


def test_no_inner_step_means_no_meta_gradient() -> None:
    """With alpha = 0 the pseudo-updated critic does not depend on the reward, so g_meta = 0 (Eq. 11)."""
    critic, ensemble, batch, target_v, pairs = _problem(1)
    _, grads = meta_gradient(critic, ensemble, batch, target_v, pairs, inner_lr=0.0, gamma=0.9)
    assert all(torch.count_nonzero(g) == 0 for g in grads)


def test_pseudo_update_leaves_the_critic_unchanged_and_equals_one_sgd_step() -> None:
    critic, ensemble, batch, target_v, _ = _problem(2)
    before = {k: v.detach().clone() for k, v in critic.named_parameters()}
    reward = ensemble.mean_reward(batch.obs, batch.action)
    params = pseudo_update(critic, reward, batch, target_v, inner_lr=0.1, gamma=0.9)
    assert all(torch.equal(before[k], v) for k, v in critic.named_parameters())
    # the same step with a plain optimiser
    optimizer = torch.optim.SGD(critic.parameters(), lr=0.1)
    from ipl_core.online.sac import bellman_loss

    bellman_loss(critic, batch, reward.detach(), target_v, 0.9).sum().backward()
    optimizer.step()
    assert all(torch.allclose(params[k], v) for k, v in critic.named_parameters())


def test_meta_loss_uses_the_first_step_of_each_segment() -> None:
    critic, _, _, _, pairs = _problem(3)
    params = dict(critic.named_parameters())
    obs_1, act_1, obs_2, act_2, label = pairs
    changed = [x.clone() for x in (obs_1, obs_2)]
    changed[0][:, :, 1:] += 100.0  # later steps do not enter Eq. 6
    changed[1][:, :, 1:] -= 100.0
    a = meta_loss(critic, params, obs_1, act_1, obs_2, act_2, label).loss
    b = meta_loss(critic, params, changed[0], act_1, changed[1], act_2, label).loss
    assert a.shape == (E,) and torch.allclose(a, b)
    # the two heads' cross-entropies are summed, as the released code's outer loss, per seed
    q1_a, q2_a = critic(obs_1[:, :, 0], act_1[:, :, 0])
    q1_b, q2_b = critic(obs_2[:, :, 0], act_2[:, :, 0])
    heads = [torch.nn.functional.binary_cross_entropy_with_logits(qa - qb, label, reduction="none").mean(1)
             for qa, qb in ((q1_a, q1_b), (q2_a, q2_b))]
    assert torch.allclose(a, heads[0] + heads[1])


def _mrn_setup(seed: int = 0):
    from ipl_core.online.config import OnlineConfig
    from ipl_core.online.pebble import PreferenceData
    from ipl_core.online.replay import Segments
    from ipl_core.online.sac import SACAgent

    torch.manual_seed(seed)
    cfg = OnlineConfig(hidden_dim=8, hidden_depth=1, gamma=0.9, mrn_outer_weight=0.1, mrn_outer_batch=0,
                       feedback_per_round=3, mrn_inner_lr=0.5)  # outer pairs: the last round's 3
    agent = SACAgent(2, 1, cfg)
    ensemble = RewardEnsemble(2, 1, 2, (4,))
    rng = np.random.default_rng(seed)
    data = PreferenceData()
    for _ in range(2):  # 5 older pairs, then 3 recent ones
        n = 5 if len(data) == 0 else 3
        seg = [Segments(rng.normal(size=(n, 3, 2)).astype(np.float32), rng.uniform(-1, 1, (n, 3, 1)).astype(
            np.float32), np.zeros((n, 3)), rng.normal(size=(n, 3, 2)).astype(np.float32), np.zeros((n, 3)))
            for _ in range(2)]
        data.add(seg[0], seg[1], rng.integers(0, 2, n).astype(np.float32))
    g = torch.Generator().manual_seed(seed)
    batch = Batch(torch.randn(1, 6, 2, generator=g), torch.rand(1, 6, 1, generator=g) * 2 - 1,
                  torch.zeros(1, 6), torch.randn(1, 6, 2, generator=g), torch.zeros(1, 6))
    return cfg, agent, ensemble, data, batch


def test_mrn_round_order_weight_and_recent_pairs() -> None:
    """mrn_update = pseudo-update -> weighted outer step on the 3 newest pairs -> critic step with the
    updated reward on the same batch (MRN Eq. 13) -> actor and temperature; replayed here step by step."""
    import copy

    from ipl_core.online.sac import actor_temperature_target_step, bellman_loss, soft_target_value

    cfg, agent, ensemble, data, batch = _mrn_setup()
    agent_ref, ensemble_ref = copy.deepcopy(agent), copy.deepcopy(ensemble)
    mrn_update(agent, ensemble, torch.optim.SGD(ensemble.parameters(), lr=0.2), batch, [data], cfg,
               [torch.Generator().manual_seed(7)])

    g = [torch.Generator().manual_seed(7)]
    target_v = soft_target_value(agent_ref, batch.next_obs, g)

    def pairs(idx: np.ndarray) -> tuple[torch.Tensor, ...]:
        return tuple(t[None] for t in data.tensors(idx))

    _, grads = meta_gradient(agent_ref.critic, ensemble_ref, batch, target_v, pairs(np.arange(5, 8)),
                             cfg.mrn_inner_lr, cfg.gamma)
    _, grads_all = meta_gradient(agent_ref.critic, ensemble_ref, batch, target_v, pairs(np.arange(8)),
                                 cfg.mrn_inner_lr, cfg.gamma)
    old_reward = ensemble_ref.mean_reward(batch.obs, batch.action).detach()
    with torch.no_grad():
        for p, grad in zip(ensemble_ref.parameters(), grads, strict=True):
            p -= 0.2 * 0.1 * grad  # SGD at lr 0.2 on outer_weight 0.1 times the outer loss
    for p, q in zip(ensemble.parameters(), ensemble_ref.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-7)
    assert not all(torch.allclose(a, b) for a, b in zip(grads, grads_all, strict=True))  # recent pairs matter
    new_reward = ensemble_ref.mean_reward(batch.obs, batch.action).detach()
    assert not torch.allclose(new_reward, old_reward)
    loss = bellman_loss(agent_ref.critic, batch, new_reward, target_v, cfg.gamma)
    agent_ref.critic_opt.zero_grad()
    loss.sum().backward()
    agent_ref.critic_opt.step()
    actor_temperature_target_step(agent_ref, batch.obs, g)
    for name, p in agent.state_dict().items():
        assert torch.allclose(p, agent_ref.state_dict()[name], atol=1e-6), name

    # the same round with the reward before the outer step gives another critic gradient: the order matters
    # (compared as gradients: Adam's first step moves each weight by lr times its gradient's sign, which a
    # small change of the reward need not flip)
    _, agent_old, _, _, _ = _mrn_setup()
    target = soft_target_value(agent_old, batch.next_obs, [torch.Generator().manual_seed(7)])
    params = list(agent_old.critic.parameters())
    losses = [bellman_loss(agent_old.critic, batch, reward, target, cfg.gamma).sum()
              for reward in (old_reward, new_reward)]
    before, after = (torch.autograd.grad(loss, params) for loss in losses)
    assert not all(torch.allclose(a, b) for a, b in zip(before, after, strict=True))
