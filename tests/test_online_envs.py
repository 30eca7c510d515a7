"""The three suites behind one gymnasium 1.x API: shapes, truncation (never terminal), seeding."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ipl_core.online.envs import make_env, suite_of

DMC = pytest.mark.skipif(importlib.util.find_spec("dm_control") is None,
                         reason="dm_control is not installed (the envs extra leaves it out on Python 3.13, "
                                "where labmaze has no wheel)")


@pytest.mark.parametrize(("task", "obs_dim", "act_dim"), [
    pytest.param("walker-walk", 24, 6, marks=DMC), ("drawer-open-v3", 39, 4), ("gym:Pendulum-v1", 3, 1),
])
def test_api_and_truncation(task: str, obs_dim: int, act_dim: int) -> None:
    env = make_env(task, seed=0, episode_length=5)
    obs, info = env.reset(seed=0)
    assert obs.shape == (obs_dim,) and obs.dtype == np.float32 and "success" in info
    assert env.action_space.shape == (act_dim,)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    for t in range(5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs.dtype == np.float32 and isinstance(reward, float) and isinstance(info["success"], float)
        assert not terminated  # none of these tasks has a true terminal
        assert truncated == (t == 4)


@DMC
def test_dmc_default_episode_is_1000_steps() -> None:
    env = make_env("cheetah-run", seed=0)
    env.reset(seed=0)
    zeros = np.zeros(env.action_space.shape, np.float32)
    steps, truncated = 0, False
    while not truncated:
        *_, truncated, _ = env.step(zeros)
        steps += 1
    assert steps == 1000


@DMC
def test_dmc_reset_seed_is_reproducible() -> None:
    env = make_env("walker-walk", seed=0)
    first = env.reset(seed=3)[0]
    env.reset(seed=4)
    assert np.array_equal(env.reset(seed=3)[0], first)
    assert not np.array_equal(env.reset(seed=4)[0], first)


def test_metaworld_goal_is_hidden_and_redrawn_reproducibly() -> None:
    env = make_env("drawer-open-v3", seed=0)
    env.reset(seed=7)
    goals = [env.unwrapped._target_pos.copy()]
    obs = env.reset()[0]
    goals.append(env.unwrapped._target_pos.copy())
    assert np.all(obs[-3:] == 0)  # the goal is not in the observation
    assert not np.allclose(goals[0], goals[1])  # a new goal at every reset
    env.reset(seed=7)
    assert np.allclose(env.unwrapped._target_pos, goals[0])


def test_metaworld_default_episode_length_is_500() -> None:
    assert make_env("button-press-v3", seed=0).episode_length == 500
    with pytest.raises(ValueError, match="episode_length must lie in"):
        make_env("button-press-v3", seed=0, episode_length=501)


@pytest.mark.parametrize("bad", ["", "walker", "walker-walk-fast", 3])
def test_bad_task_names(bad: object) -> None:
    with pytest.raises(ValueError, match="task"):
        suite_of(bad)  # type: ignore[arg-type]


@DMC
def test_unknown_tasks_in_each_suite() -> None:
    with pytest.raises(ValueError, match="unknown dm_control task"):
        make_env("walker-fly", seed=0)
    with pytest.raises(ValueError, match="unknown MetaWorld task"):
        make_env("door-fly-v3", seed=0)


TASK_FILES = sorted((Path(__file__).resolve().parents[1] / "configs" / "online").glob("*.toml"))


@pytest.mark.parametrize("task", [pytest.param(p.stem, marks=DMC) if "-v3" not in p.stem else p.stem
                                  for p in TASK_FILES])
def test_every_task_file_makes_an_env_that_steps(task: str) -> None:
    """Every task the online studies name builds and steps with the installed simulators (the quadruped
    needs numpy's removed in1d, which ipl_core.online.envs restores, and has bounds other than [-1, 1])."""
    env = make_env(task, seed=0, episode_length=3)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, reward, *_ = env.step(env.action_space.sample())
    assert np.isfinite(obs).all() and np.isfinite(reward)


@DMC
def test_dmc_actions_are_mapped_onto_the_task_bounds() -> None:
    """[-1, 1] onto the quadruped's own bounds; the walker's are [-1, 1] already and pass unchanged."""
    quadruped, walker = make_env("quadruped-walk", seed=0), make_env("walker-walk", seed=0)
    spec = quadruped.unwrapped._env.action_spec()
    sent = []
    for env in (quadruped, walker):
        env.reset(seed=0)
        inner = env.unwrapped._env
        step = inner.step
        inner.step = lambda a, step=step: (sent.append(np.array(a)), step(a))[1]
    quadruped.step(-np.ones(12, np.float32))
    quadruped.step(np.ones(12, np.float32))
    action = np.linspace(-1, 1, 6).astype(np.float32)
    walker.step(action)
    np.testing.assert_array_equal(sent[0], spec.minimum)
    np.testing.assert_array_equal(sent[1], spec.maximum)
    np.testing.assert_array_equal(sent[2], action)  # exactly: the affine map is the identity there
