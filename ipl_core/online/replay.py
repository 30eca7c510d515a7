"""The replay buffer of the online algorithms: transitions, segments for queries, and relabelling.

Besides (s, a, r, s', terminated) it keeps the ground-truth reward (seen only by the scripted teacher),
and each transition's episode id and step within the episode, so that segments never straddle two
episodes or the buffer's write position. Taught in the chapter "PEBBLE and scripted teachers".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch


class Batch(NamedTuple):
    """A minibatch of transitions as float32 tensors."""

    obs: torch.Tensor
    action: torch.Tensor
    reward: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor
    """1.0 where s' is terminal (no bootstrapping); a time-limit truncation is 0."""


class Segments(NamedTuple):
    """N segments of T steps: obs and next_obs (N, T, obs_dim), action (N, T, act_dim), the rest (N, T)."""

    obs: np.ndarray
    action: np.ndarray
    true_reward: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray


class ReplayBuffer:
    """A ring buffer of transitions, stored as numpy arrays."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int) -> None:
        if capacity <= 0:
            raise ValueError(f"ReplayBuffer capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.action = np.zeros((capacity, act_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.true_reward = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.episode = np.full(capacity, -1, np.int64)
        self.step = np.zeros(capacity, np.int64)
        self.position = 0
        self.size = 0

    def add(self, obs: np.ndarray, action: np.ndarray, true_reward: float, next_obs: np.ndarray,
            terminated: bool, episode: int, step: int, reward: float | None = None) -> None:
        """Store one transition; ``reward`` (the learner's reward) defaults to the ground truth."""
        i = self.position
        self.obs[i], self.action[i], self.next_obs[i] = obs, action, next_obs
        self.true_reward[i] = true_reward
        self.reward[i] = true_reward if reward is None else reward
        self.terminated[i] = float(terminated)
        self.episode[i], self.step[i] = episode, step
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        if self.size == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer")
        return rng.integers(0, self.size, size=batch_size)

    def batch(self, indices: np.ndarray, device: str | torch.device = "cpu") -> Batch:
        """The transitions at ``indices`` as tensors."""
        def t(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x[indices], device=device)
        return Batch(t(self.obs), t(self.action), t(self.reward), t(self.next_obs), t(self.terminated))

    def sample(self, batch_size: int, rng: np.random.Generator, device: str | torch.device = "cpu") -> Batch:
        """A uniform minibatch (with replacement)."""
        return self.batch(self.sample_indices(batch_size, rng), device)

    def valid_segment_starts(self, length: int) -> np.ndarray:
        """Slots where ``length`` consecutive steps of one episode start (a segment never wraps episodes)."""
        if length <= 0:
            raise ValueError(f"segment length must be positive, got {length}")
        if self.size < length:
            return np.zeros(0, np.int64)
        starts = np.arange(self.size)
        ends = (starts + length - 1) % self.capacity
        ok = (ends < self.size) & (self.episode[starts] == self.episode[ends])
        ok &= self.step[ends] - self.step[starts] == length - 1
        return starts[ok]

    def segments(self, starts: np.ndarray, length: int) -> Segments:
        """The segments of ``length`` steps beginning at slots ``starts``."""
        idx = (np.asarray(starts)[:, None] + np.arange(length)[None, :]) % self.capacity
        return Segments(self.obs[idx], self.action[idx], self.true_reward[idx], self.next_obs[idx],
                        self.terminated[idx])

    def sample_segments(self, n: int, length: int, rng: np.random.Generator, episodes: range | None = None
                        ) -> Segments:
        """``n`` segments drawn uniformly (with replacement) among the valid starts; with ``episodes``, only
        among those of the episode ids in that range (B-Pref, SURF and MRN draw query candidates from the
        last 100 finished episodes)."""
        starts = self.valid_segment_starts(length)
        if episodes is not None:
            ids = self.episode[starts]
            starts = starts[(ids >= episodes.start) & (ids < episodes.stop)]
        if starts.size == 0:
            raise ValueError(f"the ReplayBuffer holds no complete segment of {length} steps yet "
                             f"(size {self.size}, episodes {episodes})")
        return self.segments(rng.choice(starts, size=n), length)

    def state_dict(self) -> dict[str, np.ndarray | int]:
        names = ("obs", "next_obs", "action", "reward", "true_reward", "terminated", "episode", "step")
        return {**{n: getattr(self, n)[: self.size].copy() for n in names},
                "position": self.position, "size": self.size}

    def load_state_dict(self, state: dict) -> None:
        size = int(state["size"])
        for name in ("obs", "next_obs", "action", "reward", "true_reward", "terminated", "episode", "step"):
            getattr(self, name)[:size] = state[name]
        self.position, self.size = int(state["position"]), size


def sample_members(buffers: Sequence[ReplayBuffer], batch_size: int, rngs: Sequence[np.random.Generator],
                   device: str | torch.device = "cpu") -> Batch:
    """One minibatch per seed, seed e's from ``buffers[e]`` with ``rngs[e]``, stacked: (E, B, ...) tensors."""
    rows = [buffer.batch(buffer.sample_indices(batch_size, rng)) for buffer, rng in zip(buffers, rngs,
                                                                                          strict=True)]
    return Batch(*(torch.stack(field).to(device) for field in zip(*rows, strict=True)))


def relabel_members(buffers: Sequence[ReplayBuffer],
                    reward_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    chunk: int = 10_000) -> None:
    """Overwrite the learner's reward of every transition of every seed's buffer (all of one size) with
    ``reward_fn(obs (E, n, d), action (E, n, d))`` -> (E, n): one batched pass over all seeds (PEBBLE
    relabels the whole buffer after each reward update; this covers all ``size`` slots, so it stays
    correct after the ring has wrapped)."""
    size = buffers[0].size
    if any(b.size != size for b in buffers):
        raise ValueError(f"relabel_members expects buffers of one size, got {[b.size for b in buffers]}")
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        rewards = reward_fn(np.stack([b.obs[start:stop] for b in buffers]),
                            np.stack([b.action[start:stop] for b in buffers]))
        for b, r in zip(buffers, rewards, strict=True):
            b.reward[start:stop] = r
