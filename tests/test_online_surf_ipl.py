"""SURF's temporal cropping and pseudo-labels; IPL online's implicit reward and regularised loss."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch

from ipl_core.online.config import OnlineConfig
from ipl_core.online.ipl_online import implicit_rewards, ipl_critic_loss
from ipl_core.online.members import MemberAdam
from ipl_core.online.pebble import PreferenceData, RewardEnsemble
from ipl_core.online.replay import Batch, Segments
from ipl_core.online.sac import SACAgent, soft_target_value
from ipl_core.online.surf import crop_masks, pseudo_label_loss, surf_iterations, train_reward_ensemble_surf


def test_crop_masks_share_one_length_per_pair_and_start_independently() -> None:
    rng = np.random.default_rng(0)
    lengths, moved = set(), False
    for _ in range(50):
        m1, m2 = crop_masks(8, stored=14, length=10, crop=3, rng=rng)
        assert m1.shape == m2.shape == (8, 14)
        assert torch.equal(m1.sum(1), m2.sum(1))  # one crop length per pair
        lengths |= set(m1.sum(1).int().tolist())
        for m in (m1, m2):
            assert torch.all((m.diff(dim=1) != 0).sum(1) <= 2)  # one contiguous window
        moved |= not torch.equal(m1, m2)
    assert lengths == set(range(7, 14)) and moved  # lengths 10 -+ 3; the two starts differ
    with pytest.raises(ValueError, match="fit in stored segments"):
        crop_masks(2, stored=12, length=10, crop=3, rng=rng)


class _Fixed(torch.nn.Module):
    """A 'reward model' whose per-step reward is the first observation feature."""

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return obs[..., 0]


def test_pseudo_labels_come_from_the_full_window_and_the_loss_from_an_independent_crop() -> None:
    """Hand-computed: stored segments of 4 steps, the teacher's window the central 2 (window 1)."""
    obs_1 = torch.tensor([[0.0, 3.0, 3.0, -10.0], [0.0, 0.1, 0.0, 0.0]]).unsqueeze(-1)
    obs_2 = torch.zeros(2, 4, 1)
    act = torch.zeros(2, 4, 1)
    # pair 0: central sums 6 vs 0, P = sigmoid(6) = 0.9975 >= tau: pseudo-label "segment 1 preferred".
    # pair 1: central sums 0.1 vs 0, P = 0.525 < tau: not used.
    masks = (torch.tensor([[0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]]),
             torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]]))
    loss, used = pseudo_label_loss(_Fixed(), obs_1, act, obs_2, act, tau=0.9, window=1, masks=masks)
    assert float(used) == pytest.approx(0.5)
    # the crop of pair 0 sums 3 - 10 = -7 against 0: cross-entropy of logit -7 with label 1 = log(1 + e^7),
    # averaged over both pairs. Labelling the crop itself would have given label 0 and log(1 + e^-7).
    expected = float(np.log1p(np.exp(7.0))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_surf_trains_a_fixed_number_of_iterations() -> None:
    assert surf_iterations(labels=30, epochs=50, batch_size=128) == 12  # ceil(50 * 30 / 128)

    class Counting(MemberAdam):
        steps: ClassVar[list[list[bool]]] = []

        def step(self, active=None):  # type: ignore[no-untyped-def]
            Counting.steps.append(active.tolist())
            return super().step(active)

    ensemble = RewardEnsemble(2, 1, 2, (8,), members=2)
    small = PreferenceData()  # the second seed has 16 labels: ceil(3 * 16 / 8) = 6 iterations
    small.add(*(Segments(*(x[:16] for x in seg)) for seg in _segments(_reward_data(2))),
              _reward_data(2).label[:16])
    results = train_reward_ensemble_surf(ensemble, Counting(ensemble.parameters(), lr=1e-3),
                                         [_reward_data(0), small], [_reward_data(1)] * 2, 8, 3,
                                         segment_length=4, window=1, crop=1, tau=0.9, weight=1.0,
                                         batch_ratio=2,
                                         rngs=[np.random.default_rng(0), np.random.default_rng(1)])
    # ceil(3 * 32 / 8) = 12 iterations for the first seed, whatever the accuracy; 6 for the second
    assert [r.epochs for r in results] == [12, 6]
    assert Counting.steps == [[True, True]] * 6 + [[True, False]] * 6
    with pytest.raises(ValueError, match="segment_length \\+ 2 window = 8"):
        train_reward_ensemble_surf(ensemble, Counting(ensemble.parameters(), lr=1e-3),
                                   [_reward_data(0)] * 2, [_reward_data(1)] * 2, 8, 3, 6, 1, 1, 0.9, 1.0, 2,
                                   [np.random.default_rng(0)] * 2)


def test_implicit_reward_is_q_minus_discounted_target_value() -> None:
    torch.manual_seed(0)
    agent = SACAgent(3, 2, OnlineConfig(hidden_dim=8, hidden_depth=1, gamma=0.9))
    obs, act, nxt = torch.randn(1, 4, 3), torch.rand(1, 4, 2), torch.randn(1, 4, 3)
    done = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    r1, r2 = implicit_rewards(agent, obs, act, nxt, done, [torch.Generator().manual_seed(5)]).unbind(1)
    v = soft_target_value(agent, nxt, [torch.Generator().manual_seed(5)])
    q1, q2 = agent.critic(obs, act)
    assert torch.allclose(r1, q1 - 0.9 * (1 - done) * v) and torch.allclose(r2, q2 - 0.9 * (1 - done) * v)
    assert torch.allclose(r1[0, 1], q1[0, 1])  # a terminal step's implicit reward is its Q-value


def test_ipl_loss_regulariser_scales_with_lambda() -> None:
    rng = np.random.default_rng(0)
    n, t = 4, 3

    def seg() -> Segments:
        o = rng.normal(size=(n, t, 3)).astype(np.float32)
        return Segments(o, rng.uniform(-1, 1, (n, t, 2)).astype(np.float32), o[..., 0], o, np.zeros((n, t)))

    data = PreferenceData()
    data.add(seg(), seg(), np.array([1.0, 0.0, 1.0, 0.0], np.float32))
    batch = Batch(torch.randn(1, 5, 3), torch.rand(1, 5, 2), torch.zeros(1, 5), torch.randn(1, 5, 3),
                  torch.zeros(1, 5))
    losses = []
    for lam in (0.0, 1.0, 2.0):
        torch.manual_seed(0)
        agent = SACAgent(3, 2, OnlineConfig(hidden_dim=8, hidden_depth=1, ipl_lambda=lam))
        loss, _ = ipl_critic_loss(agent, batch, [data], [np.arange(n)], [torch.Generator().manual_seed(0)])
        losses.append(loss.item())
    # the loss is affine in lambda: L(2) - L(1) = L(1) - L(0) = the regulariser, which is positive
    assert losses[2] - losses[1] == pytest.approx(losses[1] - losses[0], rel=1e-5)
    assert losses[1] > losses[0]


def _reward_data(seed: int) -> PreferenceData:
    rng = np.random.default_rng(seed)
    data = PreferenceData()
    pairs = []
    for _ in range(2):
        obs = rng.normal(size=(32, 6, 2)).astype(np.float32)
        pairs.append(Segments(obs, rng.normal(size=(32, 6, 1)).astype(np.float32), obs[..., 0], obs,
                              np.zeros((32, 6))))
    label = (pairs[0].true_reward.sum(1) > pairs[1].true_reward.sum(1)).astype(np.float32)
    data.add(pairs[0], pairs[1], label)
    return data


def _segments(data: PreferenceData) -> tuple[Segments, Segments]:
    assert data.obs_1 is not None and data.obs_2 is not None and data.act_1 is not None
    assert data.act_2 is not None and data.next_obs_1 is not None and data.next_obs_2 is not None
    assert data.terminated_1 is not None and data.terminated_2 is not None
    return (Segments(data.obs_1, data.act_1, data.obs_1[..., 0], data.next_obs_1, data.terminated_1),
            Segments(data.obs_2, data.act_2, data.obs_2[..., 0], data.next_obs_2, data.terminated_2))


def test_surf_reward_training_uses_both_losses() -> None:
    def train(weight: float, crop: int) -> list[torch.Tensor]:
        torch.manual_seed(0)
        ensemble = RewardEnsemble(2, 1, 2, (16,))
        optimizer = MemberAdam(ensemble.parameters(), lr=1e-2)
        train_reward_ensemble_surf(ensemble, optimizer, [_reward_data(0)], [_reward_data(1)], 8, 3, 4, 1,
                                   crop, tau=0.0, weight=weight, batch_ratio=2,
                                   rngs=[np.random.default_rng(1)])
        return [p.detach().clone() for p in ensemble.parameters()]

    plain = train(0.0, 0)
    for other in (train(1.0, 0), train(0.0, 2)):  # pseudo-labels, cropping: each changes the update
        assert not all(torch.equal(a, b) for a, b in zip(plain, other, strict=True))
