"""Tests of the reward models (issue 7): shapes, parameter counts against IPL Table 4, order (in)sensitivity,
causal masking, the preference-attention weighted sum, relabelling, and a smoke fit of each model."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from ipl_core.agents import make_agent
from ipl_core.batches import OfflineBatch, sample_preference_batch, stack_batches
from ipl_core.config import OfflineConfig
from ipl_core.data.datasets import OfflineDataset
from ipl_core.nets import count_parameters
from ipl_core.offline import is_markovian, make_optimizers, mr_update, trains_by_gradient
from ipl_core.reward_models import (
    REWARD_MODELS,
    BayesianREXReward,
    MarkovianReward,
    NonMarkovianReward,
    PreferenceTransformer,
    relabel_rewards,
    relabelled,
    reward_model_accuracy,
    synthetic_preferences,
    train_reward_model,
)
from ipl_core.toy import pendulum_datasets
from ipl_core.trainer import train

torch.set_num_threads(1)

OBS, ACT = 5, 2
IQL_HOPPER = 278_537
"""IQL's networks at hopper shapes, IPL Table 4's "IPL" row (IPL trains exactly IQL's networks)."""


def small_models() -> dict[str, torch.nn.Module]:
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    return {
        "mr": MarkovianReward(OBS, ACT, (32, 32)),
        "nmr": NonMarkovianReward(OBS, ACT, embed_dim=32, generator=g),
        "pt": PreferenceTransformer(OBS, ACT, embed_dim=32, num_heads=2, max_timestep=50, generator=g),
        "pt-no-attention": PreferenceTransformer(OBS, ACT, embed_dim=32, num_heads=2, max_timestep=50,
                                                 preference_attention=False, generator=g),
        "brex": BayesianREXReward(OBS, ACT, generator=g),
    }


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    models = small_models()
    with torch.no_grad():  # give B-REX non-zero weights so that its outputs carry information
        models["brex"].weights.copy_(torch.randn(32, generator=torch.Generator().manual_seed(1)))
    return models


@pytest.fixture(scope="module")
def segments() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(4, 12, OBS, generator=g), torch.randn(4, 12, ACT, generator=g)


def test_registry_builds_every_model_at_hopper_shapes() -> None:
    assert {"mr", "nmr", "pt", "brex"} <= set(REWARD_MODELS)
    obs, act = torch.randn(2, 7, 11), torch.randn(2, 7, 3)
    for name, factory in REWARD_MODELS.items():
        model = factory(11, 3, (256, 256))
        assert model(obs, act).shape == (2, 7), name
        assert model.segment_score(obs, act).shape == (2,), name


def test_nmr_count_matches_ipl_table_4() -> None:
    # Table 4: NMR 508,746 = IQL 278,537 + the LSTM reward model.
    assert count_parameters(REWARD_MODELS["nmr"](11, 3, (256, 256))) == 508_746 - IQL_HOPPER


def test_pt_count_of_the_reference_default_matches_ipl_table_4() -> None:
    # Table 4: PT 2,942,218 = IQL + the reference code's default transformer (3 layers, no preference
    # attention).
    reference_default = PreferenceTransformer(11, 3, num_layers=3, num_heads=1, preference_attention=False)
    assert count_parameters(reference_default) == 2_942_218 - IQL_HOPPER


def test_pt_count_by_hand() -> None:
    d = 256
    embeddings = (11 * d + d) + (3 * d + d) + 1001 * d + 2 * d
    block = 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * 4 * d + 4 * d) + (4 * d * d + d)
    attention_head = d * (2 * d + 1) + 2 * d + 1
    expected = embeddings + block + 2 * d + attention_head
    assert count_parameters(REWARD_MODELS["pt"](11, 3, (256, 256))) == expected == 1_182_977


def test_brex_has_no_gradient_parameters() -> None:
    assert count_parameters(REWARD_MODELS["brex"](11, 3, (256, 256))) == 0


@pytest.mark.parametrize("name", ["mr", "brex"])
def test_markovian_scores_ignore_step_order(models, segments, name) -> None:
    obs, act = segments
    perm = torch.randperm(obs.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(models[name].segment_score(obs[:, perm], act[:, perm]),
                                   models[name].segment_score(obs, act), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["nmr", "pt", "pt-no-attention"])
def test_non_markovian_scores_depend_on_step_order(models, segments, name) -> None:
    obs, act = segments
    perm = torch.randperm(obs.shape[1], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = models[name].segment_score(obs, act)
        after = models[name].segment_score(obs[:, perm], act[:, perm])
    assert (before - after).abs().max() > 1e-4


@pytest.mark.parametrize("name", ["nmr", "pt", "pt-no-attention"])
@pytest.mark.parametrize("t", [0, 5, 11])
def test_a_change_at_step_t_leaves_earlier_rewards_unchanged(models, segments, name, t) -> None:
    obs, act = segments
    obs_changed, act_changed = obs.clone(), act.clone()
    obs_changed[:, t] += 1.0
    act_changed[:, t] -= 1.0
    with torch.no_grad():
        before, after = models[name](obs, act), models[name](obs_changed, act_changed)
    torch.testing.assert_close(after[:, :t], before[:, :t], rtol=0, atol=1e-6)
    assert (after[:, t:] - before[:, t:]).abs().amax(dim=0).min() > 1e-6  # every later step sees it


def test_preference_attention_weighted_sum_by_hand(models, segments) -> None:
    model = models["pt"]
    obs, act = segments
    with torch.no_grad():
        out = model.head(model.hidden(obs, act))[1]  # the second segment
        d = model.pref_dim
        q, k, r = out[:, :d], out[:, d:2 * d], out[:, 2 * d]
        length = r.shape[0]
        z = []
        for i in range(length):
            logits = [float(q[i] @ k[j]) / math.sqrt(d) for j in range(length)]
            top = max(logits)
            e = [math.exp(x - top) for x in logits]
            z.append(sum(e_j * float(r[j]) for j, e_j in enumerate(e)) / sum(e))
        expected = sum(z) / length
        reward, weights = model.rewards_and_weights(obs, act)
        score = model.segment_score(obs, act)[1]
    assert score.item() == pytest.approx(expected, rel=1e-4, abs=1e-5)
    torch.testing.assert_close(reward[1], r)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(obs.shape[0]))


def test_preference_weights_see_the_whole_segment(models, segments) -> None:
    # The rewards are causal but the importance weights are not: a change at the last step moves w_0.
    model = copy.deepcopy(models["pt"]).double()  # at initialisation the weights are near uniform
    obs, act = (x.double() for x in segments)
    obs_changed = obs.clone()
    obs_changed[:, -1] += 1.0
    with torch.no_grad():
        _, before = model.rewards_and_weights(obs, act)
        _, after = model.rewards_and_weights(obs_changed, act)
    assert (after[:, 0] - before[:, 0]).abs().min() > 1e-10


def test_without_preference_attention_the_score_is_the_mean_reward(models, segments) -> None:
    obs, act = segments
    model = models["pt-no-attention"]
    with torch.no_grad():
        torch.testing.assert_close(model.segment_score(obs, act), model(obs, act).mean(dim=1))


def test_nmr_score_is_the_sum_of_its_rewards(models, segments) -> None:
    obs, act = segments
    with torch.no_grad():
        torch.testing.assert_close(models["nmr"].segment_score(obs, act), models["nmr"](obs, act).sum(dim=1))


@pytest.mark.parametrize("name", ["nmr", "pt", "brex"])
def test_bad_shapes_are_named(models, name) -> None:
    with pytest.raises(ValueError, match="obs_dim=5"):
        models[name](torch.zeros(2, 3, OBS + 1), torch.zeros(2, 3, ACT))
    with pytest.raises(ValueError, match=r"obs \(B, T, 5\)"):
        models[name](torch.zeros(2, 3, OBS), torch.zeros(2, 4, ACT))


def test_pt_rejects_segments_longer_than_its_step_table(models) -> None:
    with pytest.raises(ValueError, match="max_timestep"):
        models["pt"](torch.zeros(1, 52, OBS), torch.zeros(1, 52, ACT))


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="num_heads"):
        PreferenceTransformer(OBS, ACT, embed_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="embed_dim"):
        NonMarkovianReward(OBS, ACT, embed_dim=6)
    with pytest.raises(ValueError, match="num_features"):
        BayesianREXReward(OBS, ACT, num_features=0)


def test_relabel_rewards_respects_episodes_and_chunks(models) -> None:
    g = torch.Generator().manual_seed(5)
    obs, act = torch.randn(23, OBS, generator=g), torch.randn(23, ACT, generator=g)
    ends = torch.zeros(23, dtype=torch.bool)
    ends[9] = True  # episodes are steps 0-9 and 10-22
    with torch.no_grad():
        for name in ("mr", "pt"):
            rewards = relabel_rewards(models[name], obs, act, ends, context=4)
            # the chunk holding steps 12-13 of the second episode starts at step 10
            torch.testing.assert_close(rewards[10:14], models[name](obs[None, 10:14], act[None, 10:14])[0])
        mr = relabel_rewards(models["mr"], obs, act, ends, context=4)
        torch.testing.assert_close(mr, models["mr"](obs[:, None], act[:, None])[:, 0])
        changed = obs.clone()
        changed[9] += 1.0  # the last step of episode 1 cannot move episode 2's rewards
        pt_before = relabel_rewards(models["pt"], obs, act, ends, context=50)
        pt_after = relabel_rewards(models["pt"], changed, act, ends, context=50)
    torch.testing.assert_close(pt_after[10:], pt_before[10:])
    assert (pt_after[9] - pt_before[9]).abs() > 1e-6
    with pytest.raises(ValueError, match="episode_ends"):
        relabel_rewards(models["mr"], obs, act, ends[:-1])


def test_train_reward_model_rejects_brex_and_bad_arguments(models) -> None:
    prefs, _ = synthetic_preferences(4, 3, OBS, ACT, torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="not trained by gradient"):
        train_reward_model(models["brex"], prefs, 1, rng)
    with pytest.raises(ValueError, match="steps"):
        train_reward_model(models["mr"], prefs, 0, rng)
    with pytest.raises(TypeError, match="PreferenceDataset"):
        train_reward_model(models["mr"], (prefs,), 1, rng)


def test_synthetic_preferences_label_by_the_true_return() -> None:
    prefs, theta = synthetic_preferences(50, 6, OBS, ACT, torch.Generator().manual_seed(0))
    assert theta.norm().item() == pytest.approx(1.0, abs=1e-6)
    # the return of the S - 1 transitions of each segment decides the label
    returns_1, returns_2 = prefs.reward_1[:, :-1].sum(axis=1), prefs.reward_2[:, :-1].sum(axis=1)
    assert ((returns_1 > returns_2) == (prefs.label == 1.0)).all()
    assert not ((prefs.reward_1.sum(axis=1) > prefs.reward_2.sum(axis=1)) == (prefs.label == 1.0)).all()
    with pytest.raises(ValueError, match="theta"):
        synthetic_preferences(5, 6, OBS, ACT, torch.Generator(), theta=torch.ones(3))


@pytest.fixture(scope="module")
def problem() -> tuple:
    g = torch.Generator().manual_seed(0)
    train, theta = synthetic_preferences(1000, 10, OBS, ACT, g)
    test, _ = synthetic_preferences(300, 10, OBS, ACT, g, theta=theta)
    return train, test


@pytest.mark.parametrize("name", ["mr", "nmr", "pt", "pt-no-attention", "brex"])
def test_each_model_learns_a_small_synthetic_problem(problem, name) -> None:
    train, test = problem
    model = small_models()[name]
    if name == "brex":
        model.fit_posterior(train, torch.Generator().manual_seed(2), num_steps=1000, burn_in=500)
    else:
        untrained = reward_model_accuracy(model, test)
        log = train_reward_model(model, train, 300, np.random.default_rng(1), batch_size=32, lr=1e-3)
        assert log.loss[-50:].mean() < log.loss[:50].mean(), untrained
    assert reward_model_accuracy(model, test) > 0.85


@pytest.mark.parametrize("method", ["nmr", "pt", "brex"])
def test_make_agent_builds_iql_plus_the_reward_model_and_tells_the_trainer_how_to_use_it(method) -> None:
    agent = make_agent(method, 11, 3)
    [model] = agent.reward_model.models
    assert isinstance(model, {"nmr": NonMarkovianReward, "pt": PreferenceTransformer,
                              "brex": BayesianREXReward}[method])
    assert count_parameters(agent) == IQL_HOPPER + count_parameters(model)
    assert trains_by_gradient(model) == (method != "brex")
    assert is_markovian(model) == (method == "brex")


@pytest.mark.parametrize("method", ["nmr", "pt"])
def test_one_concurrent_update_trains_the_reward_model(method) -> None:
    g = torch.Generator().manual_seed(0)
    agent = make_agent(method, OBS, ACT, (32, 32), generator=g)
    cfg = OfflineConfig(method=method, hidden_dim=32, num_layers=2, reward_steps=1)
    prefs, _ = synthetic_preferences(8, 6, OBS, ACT, g)
    pref = stack_batches([sample_preference_batch(prefs, 4, 0, np.random.default_rng(0))])
    obs, act, next_obs = (torch.randn(6, OBS, generator=g), torch.randn(6, ACT, generator=g).tanh(),
                          torch.randn(6, OBS, generator=g))
    off = stack_batches([OfflineBatch(obs, act, next_obs, torch.zeros(6), torch.zeros(6))])
    weights = [p for p in agent.reward_model.parameters() if p.requires_grad and p.ndim == 2]
    before = [w.clone() for w in weights]
    metrics = mr_update(agent, make_optimizers(agent, cfg), pref, off, cfg, 0, [torch.Generator()])
    assert "reward_loss" in metrics and torch.isfinite(metrics["critic_loss"])
    assert all(not torch.equal(b, w) for b, w in zip(before, weights, strict=True))  # every weight matrix


def test_brex_is_fitted_once_by_the_hook_then_read_by_iql() -> None:
    g = torch.Generator().manual_seed(0)
    agent = make_agent("brex", OBS, ACT, (32, 32), generator=g)
    cfg = OfflineConfig(method="brex", hidden_dim=32, num_layers=2)
    prefs, _ = synthetic_preferences(50, 6, OBS, ACT, g)
    [model] = agent.reward_model.models
    posterior = model.fit(prefs, torch.Generator().manual_seed(1))
    assert posterior.samples.shape == (20_000, 32)
    assert 0.1 < posterior.acceptance_rate < 0.6  # adapted towards 30% during burn-in
    assert "reward" not in make_optimizers(agent, cfg)
    off = stack_batches([OfflineBatch(torch.randn(6, OBS, generator=g), torch.randn(6, ACT, generator=g),
                                      torch.randn(6, OBS, generator=g), torch.zeros(6), torch.zeros(6))])
    metrics = mr_update(agent, make_optimizers(agent, cfg), None, off, cfg, 0, [torch.Generator()])
    with torch.no_grad():
        expected = model(off.obs[0, :, None], off.act[0, :, None]).mean()[None]
    assert expected.abs() > 0
    torch.testing.assert_close(metrics["reward_mean"], expected)


def test_two_phase_pipeline_relabels_an_offline_dataset() -> None:
    g = torch.Generator().manual_seed(0)
    prefs, _ = synthetic_preferences(200, 8, OBS, ACT, g)
    model = NonMarkovianReward(OBS, ACT, embed_dim=16, generator=g)
    train_reward_model(model, prefs, 20, np.random.default_rng(0), batch_size=16, lr=1e-3)
    n = 30
    obs, act = torch.randn(n, OBS, generator=g), torch.randn(n, ACT, generator=g)
    terminals = np.zeros(n)
    terminals[11] = 1.0
    offline = OfflineDataset(obs.numpy(), act.numpy(), obs.roll(-1, 0).numpy(), np.zeros(n, np.float32),
                             terminals, np.zeros(n))
    relabelled_offline = relabelled(offline, model, context=8)
    with torch.no_grad():
        expected = relabel_rewards(model, obs, act, torch.as_tensor(offline.episode_ends()), context=8)
        chunk = model(obs[None, 12:20], act[None, 12:20])[0]  # episode 2 starts at step 12
    torch.testing.assert_close(torch.as_tensor(relabelled_offline.rewards[12:20]), chunk)
    np.testing.assert_array_equal(relabelled_offline.rewards, expected.numpy())
    np.testing.assert_array_equal(relabelled_offline.observations, offline.observations)
    assert "NonMarkovianReward" in relabelled_offline.source


def test_trainer_fits_brex_once_and_the_two_phase_pipeline_serves_nmr() -> None:
    offline, prefs = pendulum_datasets(episodes=4, episode_length=50, num_pairs=50, segment_length=10, seed=0)
    cfg = OfflineConfig(method="brex", hidden_dim=16, num_layers=2, steps=20, log_every=10, eval_every=20,
                        checkpoint_every=0, pref_batch_size=4, offline_batch_size=16, subsample_length=0)
    result = train(cfg, offline, prefs, progress=False)
    assert result.agent.reward_model.models[0].weights.norm().item() == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="relabel_rewards"):  # IQL would read NMR one step at a time
        train(cfg.replace(method="nmr"), offline, prefs, progress=False)
    model = NonMarkovianReward(offline.obs_dim, offline.act_dim, embed_dim=16,
                               generator=torch.Generator().manual_seed(0))
    train_reward_model(model, prefs, 10, np.random.default_rng(0), batch_size=8)
    iql = train(cfg.replace(method="iql"), relabelled(offline, model, context=10), prefs, progress=False)
    assert np.isfinite(iql.metrics.value).all()
