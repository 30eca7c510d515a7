"""ipl_core.bc: behaviour cloning recovers a deterministic behaviour policy and rejects bad data."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from ipl_core.bc import behaviour_cloning
from ipl_core.data.datasets import OfflineDataset


def _dataset(actions_of: Callable[[np.ndarray], np.ndarray], n: int = 512, seed: int = 0) -> OfflineDataset:
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, size=(n, 2)).astype(np.float32)
    act = actions_of(obs).astype(np.float32)
    zeros = np.zeros(n, np.float32)
    return OfflineDataset(obs, act, obs, zeros, zeros, zeros, source="bc-test")


def test_behaviour_cloning_recovers_a_deterministic_policy() -> None:
    target = lambda obs: np.clip(-0.8 * obs[:, ::-1], -1, 1)  # noqa: E731
    data = _dataset(target)
    actor = behaviour_cloning(data, (32, 32), steps=1500, batch_size=128, lr=3e-3, seed=0)
    test_obs = np.random.default_rng(1).uniform(-1, 1, size=(200, 2)).astype(np.float32)
    error = np.abs(actor.act(torch.as_tensor(test_obs)[None])[0].numpy() - target(test_obs)).max()
    assert error < 0.15
    untrained = behaviour_cloning(data, (32, 32), steps=1, seed=0)
    assert np.abs(untrained.act(torch.as_tensor(test_obs)[None])[0].numpy() - target(test_obs)).max() > 0.3


def test_behaviour_cloning_is_seeded() -> None:
    data = _dataset(lambda obs: np.tanh(obs))
    a = behaviour_cloning(data, (16,), steps=20, seed=4)
    b = behaviour_cloning(data, (16,), steps=20, seed=4)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_behaviour_cloning_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"actions in \[-1, 1\]"):
        behaviour_cloning(_dataset(lambda obs: 3 * obs), steps=1)
    with pytest.raises(ValueError, match="steps"):
        behaviour_cloning(_dataset(lambda obs: obs), steps=0)


# --- "bc" as a method of make_agent: CPL's SFT baseline on the preference segments -----------------------


def test_bc_loss_by_hand() -> None:
    from ipl_core.losses import bc_loss

    # segment means: pair 0 (-1.5, -2), pair 1 (-0.5, -3); labels 1 (segment 1), 0.5 (a tie: both)
    lp1 = torch.tensor([[[-1.0, -2.0], [0.0, -1.0]]])
    lp2 = torch.tensor([[[-3.0, -1.0], [-4.0, -2.0]]])
    every = bc_loss(lp1, lp2)
    assert every.loss.item() == pytest.approx((1.5 + 2 + 0.5 + 3) / 4)
    assert every.log_likelihood.item() == pytest.approx(-(1.5 + 2 + 0.5 + 3) / 4)
    preferred = bc_loss(lp1, lp2, torch.tensor([[1.0, 0.5]]))  # segment 1 of pair 0, both of pair 1
    assert preferred.loss.item() == pytest.approx((1.5 + 0.5 + 3) / 3)
    second = bc_loss(lp1, lp2, torch.tensor([[0.0, 0.0]]))  # segment 2 of both pairs
    assert second.loss.item() == pytest.approx((2 + 3) / 2)
    assert preferred.log_likelihood.item() == every.log_likelihood.item()
    with pytest.raises(ValueError, match="label must be"):
        bc_loss(lp1, lp2, torch.ones(1, 3))


def test_bc_update_clones_every_segment_then_the_preferred_ones() -> None:
    from ipl_core.agents import make_agent
    from ipl_core.config import OfflineConfig
    from ipl_core.losses import bc_loss
    from ipl_core.offline import bc_update, make_optimizers, segment_log_probs
    from tests.test_offline import ACT, OBS, batches

    pref, off = batches()
    cfg = OfflineConfig(method="bc", hidden_dim=16, num_layers=2, steps=10, cpl_bc_fraction=0.2)
    for step, label in ((1, None), (2, pref.label)):
        agent = make_agent("bc", OBS, ACT, (16, 16), generator=torch.Generator().manual_seed(0))
        assert agent.critic is None and agent.value is None
        optimizers = make_optimizers(agent, cfg)
        assert set(optimizers) == {"actor"}
        lp1, lp2 = segment_log_probs(agent, pref)
        metrics = bc_update(agent, optimizers, pref, off, cfg, step, [])
        torch.testing.assert_close(metrics["bc_loss"], bc_loss(lp1, lp2, label).loss.detach())
        assert not torch.equal(segment_log_probs(agent, pref)[0], lp1)  # the actor moved
    # the labels of the batch (1, 0, 0.5, 1) keep 5 of its 8 segments in the second phase
    assert bc_loss(lp1, lp2, pref.label).loss.item() != pytest.approx(bc_loss(lp1, lp2).loss.item())


def test_bc_smoke_training_raises_the_likelihood_of_the_dataset_actions() -> None:
    """300 steps on 100 Pendulum pairs: the mean log pi(a|s) of every segment's actions, measured on the whole
    preference set, rises from the untrained actor's (the same seed's initial weights) by more than 0.15 nats
    per step (measured: -1.24 -> -0.97), and the logged batch log-likelihood rises too."""
    from ipl_core.agents import make_agent
    from ipl_core.batches import full_preference_batch, stack_batches
    from ipl_core.config import OfflineConfig
    from ipl_core.offline import segment_log_probs
    from ipl_core.toy import pendulum_datasets
    from ipl_core.trainer import train

    torch.set_num_threads(1)
    offline, preferences = pendulum_datasets(episodes=6, episode_length=100, num_pairs=100, segment_length=25,
                                             seed=0)
    cfg = OfflineConfig(method="bc", hidden_dim=64, num_layers=2, pref_batch_size=16, offline_batch_size=0,
                        subsample_length=16, steps=300, log_every=10, eval_every=0, checkpoint_every=0)
    result = train(cfg, offline, preferences, progress=False)
    batch = stack_batches([full_preference_batch(preferences)])

    def likelihood(agent) -> float:
        with torch.no_grad():
            return torch.cat(segment_log_probs(agent, batch), dim=1).mean().item()

    untrained = make_agent("bc", offline.obs_dim, offline.act_dim, cfg.hidden_dims,
                           generator=torch.Generator().manual_seed(cfg.seed), hidden_gain=cfg.init_gain)
    before, after = likelihood(untrained), likelihood(result.agent)
    assert after > before + 0.15, (before, after)
    rows = result.metrics[(result.metrics.kind == "train") & (result.metrics.metric == "log_likelihood")]
    curve = rows.set_index("step").value
    assert curve[300] > curve[10], curve
