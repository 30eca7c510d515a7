"""Networks and agents: initialisation, the actor, target copies, and IPL Table 4's parameter counts."""

from __future__ import annotations

import math

import pytest
import torch

import ipl_core
from ipl_core import reward_models
from ipl_core.agents import make_agent
from ipl_core.nets import (
    LOG_STD_MAX,
    CriticEnsemble,
    EnsembleMLP,
    GaussianActor,
    count_parameters,
    frozen_copy,
    mlp,
    polyak_update,
)


def test_mlp_is_orthogonal_with_zero_biases_and_reproducible() -> None:
    net = mlp(8, 8, (8, 8), generator=torch.Generator().manual_seed(0))
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 3
    for layer, gain in zip(linears, (math.sqrt(2), math.sqrt(2), 1.0), strict=True):
        w = layer.weight.detach()
        torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(8), atol=1e-5, rtol=0)
        assert torch.count_nonzero(layer.bias) == 0
    again = mlp(8, 8, (8, 8), generator=torch.Generator().manual_seed(0))
    other = mlp(8, 8, (8, 8), generator=torch.Generator().manual_seed(1))
    assert torch.equal(linears[0].weight, again[0].weight)
    assert not torch.equal(linears[0].weight, other[0].weight)


def test_mlp_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError, match="hidden_dims"):
        mlp(3, 1, (0,))


def test_ensemble_mlp_members_equal_mlps_built_with_their_generators() -> None:
    """Member m of an EnsembleMLP is the mlp() a single run with generators[m] builds: same weights, same
    outputs."""
    seeds = (3, 7)
    ensemble = EnsembleMLP((2,), 5, 2, (8, 8), generators=[torch.Generator().manual_seed(s) for s in seeds])
    x = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    out = ensemble(x)
    assert out.shape == (2, 4, 2)
    for m, seed in enumerate(seeds):
        single = mlp(5, 2, (8, 8), generator=torch.Generator().manual_seed(seed))
        linears = [layer for layer in single if isinstance(layer, torch.nn.Linear)]
        for linear, layer in zip(linears, ensemble.layers, strict=True):
            torch.testing.assert_close(layer.weight[m], linear.weight, rtol=0, atol=0)
        torch.testing.assert_close(out[m], single(x[m]))
    with pytest.raises(ValueError, match="EnsembleMLP expects"):
        ensemble(torch.zeros(3, 4, 5))


def test_actor_mean_is_squashed_and_log_std_is_clamped() -> None:
    actor = GaussianActor(3, 2, (16,), generators=[torch.Generator().manual_seed(0)])
    with torch.no_grad():
        actor.log_std.fill_(10.0)
    obs = 100 * torch.randn(1, 5, 3, generator=torch.Generator().manual_seed(1))
    mean, std = actor.mean_std(obs)
    assert mean.abs().max() <= 1.0
    torch.testing.assert_close(std.expand_as(mean), torch.full((1, 5, 2), math.exp(LOG_STD_MAX)))
    torch.testing.assert_close(actor.act(obs), mean)
    # log_prob is the Normal log-density summed over action dimensions.
    act = torch.zeros(1, 5, 2)
    expected = torch.distributions.Normal(mean, std.expand_as(mean)).log_prob(act).sum(-1)
    torch.testing.assert_close(actor.log_prob(obs, act), expected)
    sample = actor.sample(obs, [torch.Generator().manual_seed(2)])
    assert torch.equal(sample, actor.sample(obs, [torch.Generator().manual_seed(2)]))


def test_critic_ensemble_heads_differ() -> None:
    critic = CriticEnsemble(3, 1, (16,), num_critics=2, generators=[torch.Generator().manual_seed(0)])
    q = critic(torch.randn(1, 4, 3), torch.randn(1, 4, 1))
    assert q.shape == (1, 2, 4)
    assert not torch.equal(q[0, 0], q[0, 1])


def test_frozen_copy_is_saved_but_not_a_parameter_and_polyak_averages() -> None:
    critic = CriticEnsemble(3, 1, (4,), generators=[torch.Generator().manual_seed(0)])
    target = frozen_copy(critic)
    assert list(target.parameters()) == []
    assert set(target.state_dict()) == set(critic.state_dict())
    old = {k: v.clone() for k, v in target.state_dict().items()}
    with torch.no_grad():
        for p in critic.parameters():
            p.add_(1.0)
    polyak_update(target, critic, 0.25)
    for name, p in critic.named_parameters():
        torch.testing.assert_close(target.get_buffer(name), 0.25 * p + 0.75 * old[name])


@pytest.mark.parametrize("method", ["ipl", "ipl-awac", "mr"])
def test_member_of_a_batched_agent_equals_the_single_seed_agent(method: str) -> None:
    """make_agent with generators (g_0, g_1) holds exactly the agents make_agent builds with g_0 and g_1."""
    batched = make_agent(method, 4, 2, (8, 8), generator=[torch.Generator().manual_seed(s) for s in (0, 1)])
    assert batched.members == 2
    from ipl_core.trainer import member_state

    for e in range(2):
        single = make_agent(method, 4, 2, (8, 8), generator=torch.Generator().manual_seed(e))
        state = member_state(batched.state_dict(), e)
        assert state.keys() == single.state_dict().keys()
        for name, value in single.state_dict().items():
            torch.testing.assert_close(state[name], value, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(
    ("method", "obs_dim", "act_dim", "hidden", "expected"),
    [
        ("ipl", 11, 3, (256, 256), 278537),  # IPL Table 4, "IPL" (hopper)
        ("mr", 11, 3, (256, 256), 348426),  # "MR"
        ("mr", 39, 4, (64, 64), 34892),  # "MR (64)" (MetaWorld)
        ("ipl-awac", 39, 4, (64, 64), 14025),  # "IPL (64)"
        ("mr", 39, 4, (35, 35), 14012),  # "MR (35)"
    ],
)
def test_parameter_counts_reproduce_table_4(method: str, obs_dim: int, act_dim: int,
                                            hidden: tuple[int, int], expected: int) -> None:
    agent = ipl_core.make_agent(method, obs_dim, act_dim, hidden)
    assert count_parameters(agent) == expected
    assert sum(p.numel() for p in agent.parameters()) == expected


def test_ipl_variants_share_networks_and_awac_drops_value_and_a_head() -> None:
    ipl, xql, iql = (make_agent(m, 11, 3, (32,)) for m in ("ipl", "ipl-xql", "iql"))
    assert count_parameters(ipl) == count_parameters(xql) == count_parameters(iql)
    awac = make_agent("ipl-awac", 11, 3, (32,))
    assert awac.value is None and awac.critic.num_critics == 1
    assert "target_critic.net.layers.0.weight" in awac.state_dict()


def test_make_agent_accepts_every_registered_reward_model(monkeypatch: pytest.MonkeyPatch) -> None:
    def tiny(obs_dim: int, act_dim: int, hidden_dims: tuple[int, ...]) -> reward_models.RewardModel:
        return reward_models.MarkovianReward(obs_dim, act_dim, (3,))

    monkeypatch.setitem(reward_models.REWARD_MODELS, "tiny", tiny)
    agent = make_agent("tiny", 2, 1, (8,))
    assert count_parameters(agent.reward_model) == (3 * 3 + 3) + (3 + 1)


def test_make_agent_is_reproducible_and_rejects_bad_input() -> None:
    a = make_agent("mr", 3, 1, (8,), generator=torch.Generator().manual_seed(0))
    b = make_agent("mr", 3, 1, (8,), generator=torch.Generator().manual_seed(0))
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), name
    with pytest.raises(ValueError, match="method must be one of"):
        make_agent("sac", 3, 1)
    with pytest.raises(ValueError, match="obs_dim"):
        make_agent("ipl", 0, 1)
    with pytest.raises(ValueError, match="hidden_dims"):
        make_agent("ipl", 3, 1, ())
