"""Random streams: one mechanism (ipl_core.seeding), and no two seeds of a run share a stream: not an
initial weight of any network (those made mid-run included), not a training or an evaluation episode."""

from __future__ import annotations

import itertools
from collections import defaultdict

import gymnasium as gym
import numpy as np
import pytest
import torch
from test_online_train import _cfg

import ipl_core.seeding as seeding
from ipl_core.config import OfflineConfig
from ipl_core.online.config import OnlineConfig
from ipl_core.online.train import _build, train_online_seeds
from ipl_core.seeding import ROLES, env_seed, numpy_generator, seed_sequence, torch_generator
from ipl_core.toy import pendulum_datasets
from ipl_core.trainer import GymEvaluator, train_seeds

torch.set_num_threads(1)


def test_streams_differ_in_seed_role_and_index_and_repeat_themselves() -> None:
    keys = list(itertools.product(range(6), ROLES, range(4)))
    states = {tuple(seed_sequence(*key).generate_state(4)) for key in keys}
    assert len(states) == len(keys)
    assert len({env_seed(*key) for key in keys}) == len(keys)
    assert env_seed(3, "evaluation", 2) == env_seed(3, "evaluation", 2)
    first, again = numpy_generator(1, "batches").random(3), numpy_generator(1, "batches").random(3)
    np.testing.assert_array_equal(first, again)
    assert torch.equal(torch.rand(3, generator=torch_generator(1, "init")),
                       torch.rand(3, generator=torch_generator(1, "init")))
    # the old scheme's collision: seed s's offset-1 stream was seed s + 1's stream
    assert not torch.equal(torch.rand(3, generator=torch_generator(0, "critic_reset")),
                           torch.rand(3, generator=torch_generator(1, "init")))


def test_an_unknown_role_or_a_negative_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown random-stream role 'inti'"):
        seed_sequence(0, "inti")
    with pytest.raises(ValueError, match="non-negative"):
        env_seed(-1, "evaluation")


def _member_slices(module: torch.nn.Module, members: int) -> list[torch.Tensor]:
    """Every weight matrix of every member and sub-network (an ensemble's models, a critic's two heads),
    flattened; biases start at zero."""
    return [w.flatten() for name, p in module.named_parameters() if name.endswith("weight")
            for e in range(members) for w in p[e].detach().reshape(-1, *p.shape[-2:])]


def test_no_two_networks_of_any_seeds_start_alike() -> None:
    """Seeds 0-2 as a PEBBLE run builds them: the agent, the reward ensemble, then the reset critic; no two
    weight matrices of equal shape are equal (under the old seed + offset scheme seed 0's reward model
    equalled seed 1's reset Q1, and seed 2's first critic)."""
    cfg = OnlineConfig(algorithm="pebble", hidden_dim=16, hidden_depth=2, reward_hidden_dim=16,
                       reward_hidden_depth=2)
    agent, ensemble = _build(cfg, [0, 1, 2], 5, 2)
    slices = _member_slices(agent.actor, 3) + _member_slices(agent.critic, 3) + _member_slices(ensemble, 3)
    agent.reset_critic()
    slices += _member_slices(agent.critic, 3)
    for a, b in itertools.combinations(slices, 2):
        assert a.shape != b.shape or not torch.equal(a, b)


@pytest.fixture
def streams(monkeypatch: pytest.MonkeyPatch) -> dict[tuple, tuple]:
    """Every stream asked for while the test runs: (seed, role, *index) -> its first state words."""
    asked: dict[tuple, tuple] = {}
    original = seeding.seed_sequence

    def recording(seed: int, role: str, *index: int) -> np.random.SeedSequence:
        sequence = original(seed, role, *index)
        asked[(int(seed), role, *map(int, index))] = tuple(sequence.generate_state(4))
        return sequence

    monkeypatch.setattr(seeding, "seed_sequence", recording)
    return asked


def _by_seed(asked: dict[tuple, tuple]) -> dict[int, set[tuple]]:
    states: dict[int, set[tuple]] = defaultdict(set)
    for key, state in asked.items():
        states[key[0]].add(state)
    return states


@pytest.mark.parametrize("algorithm", ["pebble", "ppo", "ipl"])
def test_an_online_run_of_several_seeds_shares_no_stream(algorithm: str, streams: dict[tuple, tuple]) -> None:
    """Every stream of a three-seed run (networks made at the start and mid-run, every training and
    evaluation episode) belongs to one seed alone."""
    train_online_seeds(_cfg(algorithm, total_steps=300, eval_interval=150, feedback_budget=10), [0, 1, 2],
                       progress=False)
    roles = {key[1] for key in streams}
    assert {"init", "batches", "policy_noise", "train_env", "train_episode", "evaluation_env",
            "evaluation"} <= roles
    if algorithm != "ppo":
        assert "critic_reset" in roles  # made mid-run, after unsupervised pre-training
    if algorithm in ("pebble", "ppo"):
        assert "reward_init" in roles
    episodes = {key for key in streams if key[1] == "train_episode"}
    assert len(episodes) >= 3 * 3  # 100-step episodes of 300 steps, each seed
    by_seed = _by_seed(streams)
    for a, b in itertools.combinations(by_seed, 2):
        assert not by_seed[a] & by_seed[b], (a, b)


def test_an_offline_run_of_several_seeds_shares_no_stream(streams: dict[tuple, tuple]) -> None:
    offline, preferences = pendulum_datasets(episodes=2, episode_length=50, num_pairs=20, segment_length=10,
                                             seed=0)
    cfg = OfflineConfig(method="brex", hidden_dim=16, num_layers=2, steps=4, log_every=2, eval_every=2,
                        checkpoint_every=0, pref_batch_size=4, offline_batch_size=8, subsample_length=8)
    evaluator = GymEvaluator(lambda s: gym.make("Pendulum-v1", max_episode_steps=5), 3, [0, 1, 2])
    train_seeds(cfg, [0, 1, 2], offline, preferences, evaluate=evaluator, progress=False)
    assert {"init", "batches", "policy_noise", "reward_init", "evaluation"} <= {key[1] for key in streams}
    by_seed = _by_seed(streams)
    for a, b in itertools.combinations(by_seed, 2):
        assert not by_seed[a] & by_seed[b], (a, b)
