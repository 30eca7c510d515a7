"""Toy problems for the chapters and the tests: small, fast, and with a known ground truth.

- A reward over the states of a chain, seen through preferences between random-walk segments: the worked
  example of the chapter "The Bradley-Terry preference model" (book/foundations/bradley_terry.ipynb).
- A small Pendulum-v1 dataset for tests and the smoke profile of the offline chapters. Episodes of a
  uniformly random policy and of a noisy scripted controller (a PD controller towards the upright position,
  which can hold the pendulum up but not swing it up), actions rescaled to [-1, 1]. Preference pairs are
  segments drawn uniformly from the episodes and labelled by their ground-truth return (summed over the
  S - 1 transitions the learners score; 0.5 on exact ties). It exercises the algorithms in seconds and
  says nothing about the paper's benchmarks.
- A 2-D point that should reach the origin (`PointReach`), with a dataset of uniformly random actions
  (`point_reach_datasets`): a continuous task on which IPL learns a good policy in seconds on a CPU while
  behaviour cloning of the same data cannot, taught in "IPL in practice" (book/ipl/offline.ipynb).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.preferences import sample_bradley_terry_labels


def chain_reward(num_states: int) -> np.ndarray:
    """A reward over ``num_states`` chain states with two bumps of different heights, zero mean."""
    if num_states < 2:
        raise ValueError(f"num_states must be at least 2, got {num_states}")
    x = np.linspace(0.0, 1.0, num_states)
    reward = np.exp(-((x - 0.25) ** 2) / 0.01) + 2.0 * np.exp(-((x - 0.8) ** 2) / 0.005)
    return reward - reward.mean()


def random_walk_segments(
    num_states: int, num_segments: int, length: int, rng: np.random.Generator
) -> np.ndarray:
    """States visited by random walks on the chain (steps -1, 0, +1, clipped at the ends), (N, length)."""
    if length < 1 or num_segments < 1:
        raise ValueError(f"length and num_segments must be positive, got {length} and {num_segments}")
    start = rng.integers(num_states, size=(num_segments, 1))
    steps = rng.integers(-1, 2, size=(num_segments, length - 1))
    walk = np.concatenate([start, steps], axis=1).cumsum(axis=1)
    return np.clip(walk, 0, num_states - 1)


def visit_counts(segments: np.ndarray, num_states: int) -> np.ndarray:
    """Summed one-hot features of each segment, (N, num_states): a linear reward's return is w . counts."""
    counts = np.zeros((len(segments), num_states))
    np.add.at(counts, (np.arange(len(segments))[:, None], segments), 1.0)
    return counts


class ChainPreferences(NamedTuple):
    """Pairs of chain segments, their summed features, and Bradley-Terry labels drawn from the true reward."""

    counts_1: np.ndarray
    counts_2: np.ndarray
    label: np.ndarray


def chain_preferences(
    reward: np.ndarray, num_queries: int, length: int, rng: np.random.Generator
) -> ChainPreferences:
    """Sample ``num_queries`` segment pairs and label each with y ~ Bernoulli(P[1 > 2]) (IPL Eq. 1)."""
    num_states = len(reward)
    counts_1 = visit_counts(random_walk_segments(num_states, num_queries, length, rng), num_states)
    counts_2 = visit_counts(random_walk_segments(num_states, num_queries, length, rng), num_states)
    generator = torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))
    label = sample_bradley_terry_labels(
        torch.from_numpy(counts_1 @ reward), torch.from_numpy(counts_2 @ reward), generator
    ).numpy()
    return ChainPreferences(counts_1, counts_2, label)


def _scripted_action(obs: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    theta = np.arctan2(obs[1], obs[0])
    torque = -(8.0 * theta + 1.0 * obs[2]) / 2.0  # PD towards theta = 0, in units of the maximal torque
    return np.clip(torque + noise * rng.standard_normal(), -1.0, 1.0).reshape(1)


def pendulum_datasets(episodes: int = 12, episode_length: int = 100, num_pairs: int = 200,
                      segment_length: int = 25, seed: int = 0) -> tuple[OfflineDataset, PreferenceDataset]:
    """Roll out ``episodes`` episodes (alternately random, scripted with noise 0.3, scripted with noise
    1.0) and draw ``num_pairs`` labelled pairs of ``segment_length`` observations."""
    import gymnasium as gym

    if segment_length < 2 or segment_length > episode_length:
        raise ValueError(f"segment_length must lie in [2, episode_length={episode_length}], "
                         f"got {segment_length}")
    rng = np.random.default_rng(seed)
    env = gym.make("Pendulum-v1", max_episode_steps=episode_length)

    def policy(obs: np.ndarray, episode: int) -> np.ndarray:
        kind = episode % 3
        if kind == 0:
            return rng.uniform(-1.0, 1.0, size=1)
        return _scripted_action(obs, 0.3 if kind == 1 else 1.0, rng)

    offline = _rollouts(env, policy, episodes, episode_length, seed, action_scale=2.0, source="pendulum-toy")
    env.close()
    return offline, _return_labelled_pairs(offline, episodes, episode_length, num_pairs, segment_length, rng)


def _rollouts(env: Any, policy: Callable[[np.ndarray, int], np.ndarray], episodes: int, episode_length: int,
              seed: int, action_scale: float, source: str) -> OfflineDataset:
    """``episodes`` episodes of ``episode_length`` steps, episode i reset with seed ``10,000 seed + i``; the
    environment receives ``action_scale`` times the policy's action in [-1, 1], the dataset stores the
    action itself. The last step of each episode is a time-out, never a terminal."""
    obs_l, act_l, next_l, rew_l, timeout_l = [], [], [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed * 10_000 + episode)
        for t in range(episode_length):
            action = policy(obs, episode)
            next_obs, reward, _, _, _ = env.step(action_scale * action)
            obs_l.append(obs)
            act_l.append(action)
            next_l.append(next_obs)
            rew_l.append(reward)
            timeout_l.append(t == episode_length - 1)
            obs = next_obs
    f32 = np.float32
    return OfflineDataset(
        np.asarray(obs_l, f32), np.asarray(act_l, f32), np.asarray(next_l, f32), np.asarray(rew_l, f32),
        np.zeros(len(rew_l), f32), np.asarray(timeout_l, f32), source=source,
    )


def _return_labelled_pairs(offline: OfflineDataset, episodes: int, episode_length: int, num_pairs: int,
                           segment_length: int, rng: np.random.Generator) -> PreferenceDataset:
    """Pairs of segments drawn uniformly from equal-length episodes, labelled by their summed true reward."""
    f32 = np.float32
    starts = rng.integers(0, episode_length - segment_length + 1, size=(num_pairs, 2))
    eps = rng.integers(0, episodes, size=(num_pairs, 2))
    index = (eps * episode_length + starts)[..., None] + np.arange(segment_length)  # (N, 2, S)
    rewards = offline.rewards[index]
    returns = rewards[..., :-1].sum(-1)
    label = np.where(returns[:, 0] > returns[:, 1], 1.0, np.where(returns[:, 0] < returns[:, 1], 0.0, 0.5))
    return PreferenceDataset(
        offline.observations[index[:, 0]], offline.observations[index[:, 1]],
        offline.actions[index[:, 0]], offline.actions[index[:, 1]], label.astype(f32),
        reward_1=rewards[:, 0], reward_2=rewards[:, 1],
        terminal_1=np.zeros_like(rewards[:, 0]), terminal_2=np.zeros_like(rewards[:, 1]),
        source=offline.source,
    )


class PointReach:
    """A point in the box [-1, 1]^2 that should reach the origin: a minimal gymnasium-style environment.

    Observation: the position (2-d). Action in [-1, 1]^2: the position moves by ``speed * action`` and is
    clipped to the box. Reward: minus the distance to the origin after the move. Episodes start uniformly
    in the box and are cut after ``episode_length`` steps (a time-out, never a terminal).
    """

    metadata: dict = {"render_modes": []}  # noqa: RUF012 - the attributes gymnasium's vector API reads
    render_mode = None
    spec = None

    def __init__(self, episode_length: int = 30, speed: float = 0.1) -> None:
        import gymnasium as gym

        if episode_length < 1 or not speed > 0:
            raise ValueError(f"PointReach needs episode_length >= 1 and speed > 0, "
                             f"got episode_length={episode_length}, speed={speed}")
        self.episode_length, self.speed = episode_length, speed
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
        self._position, self._t = np.zeros(2), 0
        self._rng = np.random.default_rng()

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._position, self._t = self._rng.uniform(-1.0, 1.0, size=2), 0
        return self._position.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self._position = np.clip(self._position + self.speed * action, -1.0, 1.0)
        self._t += 1
        reward = -float(np.linalg.norm(self._position))
        return self._position.copy(), reward, False, self._t >= self.episode_length, {}

    def close(self) -> None:
        """Nothing to release; present for the gymnasium interface."""


def point_reach_datasets(episodes: int = 40, episode_length: int = 30, num_pairs: int = 200,
                         segment_length: int = 10, seed: int = 0) -> tuple[OfflineDataset, PreferenceDataset]:
    """Episodes of uniformly random actions in `PointReach`, and ``num_pairs`` pairs of
    ``segment_length`` observations labelled by their true return (0.5 on exact ties)."""
    if segment_length < 2 or segment_length > episode_length:
        raise ValueError(f"segment_length must lie in [2, episode_length={episode_length}], "
                         f"got {segment_length}")
    if episodes < 1 or num_pairs < 1:
        raise ValueError(f"episodes and num_pairs must be positive, got {episodes} and {num_pairs}")
    rng = np.random.default_rng(seed)
    offline = _rollouts(PointReach(episode_length), lambda obs, episode: rng.uniform(-1.0, 1.0, size=2),
                        episodes, episode_length, seed, action_scale=1.0, source="point-reach-toy")
    return offline, _return_labelled_pairs(offline, episodes, episode_length, num_pairs, segment_length, rng)
