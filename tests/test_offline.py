"""The update functions: batches, where gradients go, target updates, and the reward-model baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ipl_core.agents import make_agent
from ipl_core.batches import (
    OfflineBatch,
    PreferenceBatch,
    sample_offline_batch,
    sample_preference_batch,
    stack_batches,
)
from ipl_core.config import OfflineConfig
from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.losses import awr_actor_loss, implicit_reward, ipl_preference_loss, value_loss
from ipl_core.offline import (
    UPDATES,
    make_optimizers,
    mr_update,
    split_rewards,
    stack_transitions,
    state_values,
    target_clip,
    update_function,
)

OBS, ACT = 3, 2


def batches(pairs: int = 4, length: int = 5, n: int = 6,
            seed: int = 0) -> tuple[PreferenceBatch, OfflineBatch]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    pref = PreferenceBatch(r(pairs, length, OBS), r(pairs, length, ACT).tanh(), r(pairs, length, OBS),
                           r(pairs, length, ACT).tanh(), torch.tensor([1.0, 0.0, 0.5, 1.0])[:pairs],
                           torch.zeros(pairs, length), torch.zeros(pairs, length))
    off = OfflineBatch(r(n, OBS), r(n, ACT).tanh(), r(n, OBS), r(n), torch.zeros(n))
    return stack_batches([pref]), stack_batches([off])  # one member: fields (1, ...)


def small_config(method: str, **changes: object) -> OfflineConfig:
    return OfflineConfig(method=method, hidden_dim=16, num_layers=2, **changes)


def agent_for(method: str):
    return make_agent(method, OBS, ACT, (16, 16), generator=torch.Generator().manual_seed(0))


GENERATORS = [torch.Generator().manual_seed(0)]


def test_segments_of_s_observations_give_s_minus_one_transitions() -> None:
    pref, off = batches(pairs=2, length=4, n=3)
    pref = pref._replace(terminal_1=torch.tensor([[[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]))
    x = stack_transitions(pref, off, gamma=0.9)
    assert x.obs.shape == (1, 2 * 2 * 3 + 3, OBS) and (x.pairs, x.length) == (2, 3)
    torch.testing.assert_close(x.obs[0, 1], pref.obs_1[0, 0, 1])
    torch.testing.assert_close(x.next_obs[0, 1], pref.obs_1[0, 0, 2])
    torch.testing.assert_close(x.obs[0, 6], pref.obs_2[0, 0, 0])
    torch.testing.assert_close(x.next_obs[0, -1], off.next_obs[0, -1])
    assert x.discount[0, 2] == 0.0 and x.discount[0, 1] == pytest.approx(0.9)
    r_1, r_2, r_off = split_rewards(torch.arange(15.0).reshape(1, 1, 15), x)
    assert r_1.tolist() == [[[[0, 1, 2], [3, 4, 5]]]] and r_2[0, 0, 1].tolist() == [9, 10, 11]
    assert r_off.tolist() == [[[12, 13, 14]]]


def test_state_values_evaluates_each_state_once_and_matches_separate_calls() -> None:
    agent, (pref, off) = agent_for("ipl"), batches()
    x = stack_transitions(pref, off, 0.99)
    v, next_v = state_values(agent.value, pref, off)
    torch.testing.assert_close(v, agent.value(x.obs))
    torch.testing.assert_close(next_v, agent.value(x.next_obs))


def test_preference_loss_reaches_only_the_critic() -> None:
    agent, (pref, off) = agent_for("ipl"), batches()
    x = stack_transitions(pref, off, 0.99)
    reward = implicit_reward(agent.critic(x.obs, x.act), agent.value(x.next_obs), x.discount)
    r_1, r_2, r_off = split_rewards(reward, x)
    ipl_preference_loss(r_1, r_2, r_off, pref.label, 0.5).loss.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.critic.parameters())
    assert all(p.grad is None for p in [*agent.value.parameters(), *agent.actor.parameters()])


def test_value_loss_reaches_only_the_value_network() -> None:
    agent, (_, off) = agent_for("ipl"), batches()
    target = agent.critic(off.obs, off.act).min(dim=1).values  # online, with a graph: must be cut
    value_loss(target, agent.value(off.obs), "expectile").loss.sum().backward()
    assert all(p.grad is not None for p in agent.value.parameters())
    assert all(p.grad is None for p in [*agent.critic.parameters(), *agent.actor.parameters()])


def test_actor_loss_reaches_only_the_actor() -> None:
    agent, (_, off) = agent_for("ipl"), batches()
    advantage = agent.critic(off.obs, off.act).min(dim=1).values - agent.value(off.obs)
    awr_actor_loss(agent.actor.log_prob(off.obs, off.act), advantage, beta=3.0).loss.sum().backward()
    assert all(p.grad is not None for p in agent.actor.parameters())
    assert all(p.grad is None for p in [*agent.critic.parameters(), *agent.value.parameters()])


@pytest.mark.parametrize("method", ["iql", "ipl", "ipl-xql", "ipl-awac", "mr"])
def test_one_update_changes_every_network_and_polyak_averages_the_target(method: str) -> None:
    agent, (pref, off) = agent_for(method), batches()
    cfg = small_config(method)
    optimizers = make_optimizers(agent, cfg)
    before = {k: v.clone() for k, v in agent.state_dict().items()}
    metrics = update_function(method)(agent, optimizers, pref, off, cfg, 0, GENERATORS)
    assert all(torch.isfinite(v).all() for k, v in metrics.items() if k != "pref_accuracy")
    after = agent.state_dict()
    # The Bradley-Terry loss is blind to a constant shift of the reward: its output bias gets no gradient.
    frozen = ("target_critic.", "reward_model.models.0.net.4.bias")
    for name in after:
        if not name.startswith(frozen):
            assert not torch.equal(before[name], after[name]), f"{name} was not updated"
    for name, param in agent.critic.named_parameters():
        expected = (1 - cfg.target_tau) * before[f"target_critic.{name}"] + cfg.target_tau * param.detach()
        torch.testing.assert_close(after[f"target_critic.{name}"], expected)


def test_ipl_and_xql_differ_only_in_the_value_loss() -> None:
    pref, off = batches()
    results = {}
    for method in ("ipl", "ipl-xql"):
        agent = agent_for(method)
        cfg = small_config(method)
        UPDATES[method](agent, make_optimizers(agent, cfg), pref, off, cfg, 0, GENERATORS)
        results[method] = agent.state_dict()
    # Same initial weights, one step: the value networks differ, and so (through V(s')) does the critic.
    assert not torch.equal(results["ipl"]["value.net.layers.0.weight"],
                           results["ipl-xql"]["value.net.layers.0.weight"])
    # The actor's advantage uses the updated V, so the actors differ too; the target critics, averaged
    # towards critics that moved by the same Adam step size, stay within lr * tau of each other.
    diff = (results["ipl"]["target_critic.net.layers.0.weight"]
            - results["ipl-xql"]["target_critic.net.layers.0.weight"]).abs().max()
    assert diff <= 2 * 3e-4 * 0.005 + 1e-9


def test_mr_trains_its_reward_only_for_reward_steps_and_iql_reads_it() -> None:
    agent, (pref, off) = agent_for("mr"), batches()
    cfg = small_config("mr", reward_steps=1)
    optimizers = make_optimizers(agent, cfg)
    w = agent.reward_model.models[0].net[0].weight
    first = w.clone()
    metrics = mr_update(agent, optimizers, pref, off, cfg, 0, GENERATORS)
    assert "reward_loss" in metrics and not torch.equal(first, w)
    second = w.clone()
    metrics = mr_update(agent, optimizers, pref, off, cfg, 1, GENERATORS)
    assert "reward_loss" not in metrics and torch.equal(second, w)
    with torch.no_grad():
        expected = agent.reward_model.models[0](off.obs[0, :, None], off.act[0, :, None])[:, 0].mean()[None]
    torch.testing.assert_close(metrics["reward_mean"], expected)


def test_oracle_iql_ignores_preferences_and_reads_ground_truth() -> None:
    agent, (_, off) = agent_for("iql"), batches()
    cfg = small_config("iql")
    metrics = UPDATES["iql"](agent, make_optimizers(agent, cfg), None, off, cfg, 0, GENERATORS)
    torch.testing.assert_close(metrics["reward_mean"], off.reward.mean()[None])


def test_ipl_without_offline_batch_trains_on_preferences_alone() -> None:
    """offline_batch_size=0 (the authors' MetaWorld setting): an empty offline batch, every network still
    steps, and the value and actor losses read the preference rows only."""
    agent, (pref, off) = agent_for("ipl"), batches()
    empty = OfflineBatch(*(field[:, :0] for field in off))
    cfg = small_config("ipl", offline_batch_size=0)
    metrics = UPDATES["ipl"](agent, make_optimizers(agent, cfg), pref, empty, cfg, 0, GENERATORS)
    assert all(torch.isfinite(v).all() for v in metrics.values())
    with pytest.raises(ValueError, match="offline_batch_size"):
        small_config("iql", offline_batch_size=0)


def test_balanced_losses_weigh_preference_and_offline_rows_equally() -> None:
    """balance_losses (the authors' code): half the weight on the 2BT preference rows, half on the N offline
    rows; off, the plain mean (one step of each differs)."""
    pref, off = batches(pairs=4, length=5, n=6)
    x = stack_transitions(pref, off, 0.99)
    from ipl_core.offline import row_weights

    weight = row_weights(x, small_config("ipl", balance_losses=True))
    assert weight.shape == (2 * 4 * 4 + 6,)
    torch.testing.assert_close(weight[:32].sum(), torch.tensor(0.5))
    torch.testing.assert_close(weight[32:], torch.full((6,), 0.5 / 6))
    assert row_weights(x, small_config("ipl")) is None
    states = []
    for balanced in (False, True):
        agent, cfg = agent_for("ipl"), small_config("ipl", balance_losses=balanced)
        UPDATES["ipl"](agent, make_optimizers(agent, cfg), pref, off, cfg, 0, GENERATORS)
        states.append(agent.state_dict()["actor.net.layers.0.weight"])
    assert not torch.equal(*states)


def test_target_clip_is_one_over_lambda_one_minus_gamma() -> None:
    assert target_clip(small_config("ipl", lam=0.5, discount=0.99)) == pytest.approx(200.0)
    assert target_clip(small_config("ipl", lam=0.0)) is None
    assert target_clip(small_config("ipl", target_clipping=False)) is None


def test_update_function_covers_reward_models_and_rejects_unknown() -> None:
    assert update_function("mr") is mr_update
    with pytest.raises(ValueError, match="method must be one of"):
        update_function("sac")


def pref_dataset(n: int = 6, length: int = 8) -> PreferenceDataset:
    # obs_1[i, t] = (t, i, 0): the time index shows which window was cut.
    t = np.broadcast_to(np.arange(length, dtype=np.float32)[None, :, None], (n, length, 1))
    i = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], (n, length, 1))
    obs = np.concatenate([t, i, np.zeros_like(t)], axis=-1)
    act = np.zeros((n, length, ACT), np.float32)
    return PreferenceDataset(obs, obs.copy(), act, act.copy(), np.ones(n, np.float32))


def test_subsampling_cuts_one_window_shared_by_the_batch() -> None:
    data = pref_dataset()
    starts = set()
    for seed in range(20):
        batch = sample_preference_batch(data, 5, 3, np.random.default_rng(seed))
        assert batch.obs_1.shape == (5, 3, OBS)
        first = batch.obs_1[:, :, 0]
        assert torch.equal(first, first[:1].expand(5, -1))  # one start for the whole batch
        assert torch.equal(first[0], first[0, 0] + torch.arange(3.0))  # consecutive steps
        starts.add(int(first[0, 0]))
    assert starts == set(range(0, 8 - 3 + 1))  # every start in {0, ..., S - s} occurs
    assert sample_preference_batch(data, 2, 0, np.random.default_rng(0)).obs_1.shape == (2, 8, OBS)
    with pytest.raises(ValueError, match="subsample_length"):
        sample_preference_batch(data, 2, 9, np.random.default_rng(0))


def test_offline_batches_are_reproducible() -> None:
    n = 10
    obs = np.arange(n * OBS, dtype=np.float32).reshape(n, OBS)
    data = OfflineDataset(obs, np.zeros((n, ACT), np.float32), np.zeros((n, OBS), np.float32),
                          np.arange(n, dtype=np.float32), np.zeros(n), np.zeros(n))
    a = sample_offline_batch(data, 4, np.random.default_rng(3))
    b = sample_offline_batch(data, 4, np.random.default_rng(3))
    assert torch.equal(a.obs, b.obs) and torch.equal(a.reward, a.obs[:, 0] / OBS)
    assert sample_offline_batch(data, 0, np.random.default_rng(3)).obs.shape == (0, OBS)
    with pytest.raises(ValueError, match="batch_size"):
        sample_offline_batch(data, -1, np.random.default_rng(3))
