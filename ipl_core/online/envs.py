"""One gymnasium-style interface for the three suites of the online chapters.

``make_env(task, seed)`` returns a ``gymnasium.Env`` with flat float32 observations, actions in [-1, 1],
and the gymnasium 1.x step API ``(obs, reward, terminated, truncated, info)``: a time limit is a
truncation, never a terminal, so the learner keeps bootstrapping through it. ``info["success"]`` is a float
(MetaWorld's task success; always 0 elsewhere). Task names:

* DeepMind Control (``dm_control``): ``walker-walk``, ``cheetah-run``, ``quadruped-walk`` (any
  ``<domain>-<task>`` of ``suite.ALL_TASKS``); observations are the flattened observation dict; 1000 steps.
* MetaWorld 3.x: ``<name>-v3`` (e.g. ``drawer-open-v3``), goal hidden from the observation, a new random
  goal at every reset (reproducible from the seed); 500 steps; success = any ``info["success"]``.
* Gymnasium: ``gym:<id>`` (e.g. ``gym:Pendulum-v1``, ``gym:Hopper-v5``), actions rescaled to [-1, 1].

Taught in the chapter "Soft actor-critic in brief" (book/online/sac.ipynb).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

DMC_TASKS = ("walker-walk", "cheetah-run", "quadruped-walk")
"""The DeepMind Control tasks of MRN Sec. 5 (any other suite task also works)."""
METAWORLD_TASKS = ("button-press-v3", "window-open-v3", "door-open-v3", "drawer-open-v3", "sweep-into-v3",
                   "hammer-v3")
"""The MetaWorld tasks of MRN Sec. 5 (v2 in the paper; v3 is the maintained version)."""


def suite_of(task: str) -> str:
    """``"dmc"``, ``"metaworld"`` or ``"gym"`` for a task name; ValueError naming the accepted forms."""
    if not isinstance(task, str) or not task:
        raise ValueError(f"task must be a non-empty string, got {task!r}")
    if task.startswith("gym:"):
        return "gym"
    if task.endswith("-v3"):
        return "metaworld"
    if task.count("-") == 1:
        return "dmc"
    raise ValueError(
        f"unknown task {task!r}: expected '<domain>-<task>' (DeepMind Control, e.g. 'walker-walk'), "
        f"'<name>-v3' (MetaWorld, e.g. 'drawer-open-v3') or 'gym:<id>' (e.g. 'gym:Pendulum-v1')"
    )


class DMCEnv(gym.Env):
    """A dm_control suite task as a gymnasium env: flattened observations, [-1, 1] actions.

    dm_control ends every episode by its time limit (discount 1 on the last step: a truncation); an
    episode that ends with discount 0 would be a true terminal. ``episode_length`` may shorten episodes.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, domain: str, task: str, seed: int, episode_length: int | None = None) -> None:
        from dm_control import suite

        if domain == "quadruped" and not hasattr(np, "in1d"):
            # dm_control 1.0.28 (the newest that MetaWorld's MuJoCo 3.3.0 admits) builds the quadruped with
            # np.in1d, which numpy 2.4 removed; np.isin is the same on its flat arrays
            setattr(np, "in1d", np.isin)  # noqa: B010
        if (domain, task) not in suite.ALL_TASKS:
            raise ValueError(f"unknown dm_control task {domain}-{task}; known: {sorted(suite.ALL_TASKS)}")
        self._env = suite.load(domain, task, task_kwargs={"random": seed})
        obs_dim = sum(int(np.prod(spec.shape)) for spec in self._env.observation_spec().values())
        spec = self._env.action_spec()
        # actions in [-1, 1] are mapped linearly onto the task's bounds (the quadruped's are not [-1, 1]), as
        # the dmc2gym wrapper of B-Pref and MRN does; exact for the tasks whose bounds are [-1, 1]
        self._low, self._high = np.asarray(spec.minimum, np.float64), np.asarray(spec.maximum, np.float64)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, spec.shape, np.float32)
        self.episode_length = episode_length
        self._steps = 0

    @staticmethod
    def _flatten(observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in observation.values()])

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._env.task._random = np.random.RandomState(seed)  # dm_control keeps its RNG on the task
        self._steps = 0
        return self._flatten(self._env.reset().observation), {"success": 0.0}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        unit = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        timestep = self._env.step(self._low + (unit + 1.0) * (self._high - self._low) / 2)
        self._steps += 1
        terminated = bool(timestep.last() and timestep.discount == 0)
        truncated = bool(timestep.last() and not terminated)
        if self.episode_length is not None and self._steps >= self.episode_length:
            truncated = not terminated
        return self._flatten(timestep.observation), float(timestep.reward or 0.0), terminated, truncated, {
            "success": 0.0}


class MetaWorldEnv(gym.Wrapper):
    """A MetaWorld 3.x single task with a hidden goal that is re-drawn at every reset.

    ``reset(seed=s)`` re-seeds the goal sequence (MetaWorld otherwise draws from the global numpy RNG);
    episodes are truncated at ``episode_length`` (at most MetaWorld's 500, past which stepping raises).
    """

    def __init__(self, name: str, seed: int, episode_length: int | None = None) -> None:
        import metaworld

        key = f"{name}-goal-hidden"
        if key not in metaworld.env_dict.ALL_V3_ENVIRONMENTS_GOAL_HIDDEN:
            known = sorted(metaworld.env_dict.ALL_V3_ENVIRONMENTS)
            raise ValueError(f"unknown MetaWorld task {name!r}; known: {known}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = metaworld.env_dict.ALL_V3_ENVIRONMENTS_GOAL_HIDDEN[key](seed=seed)
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env.seed(seed)
        super().__init__(env)
        limit = int(env.max_path_length)
        if episode_length is not None and not 0 < episode_length <= limit:
            raise ValueError(f"episode_length must lie in [1, {limit}] for MetaWorld, got {episode_length}")
        self.episode_length = episode_length or limit
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, env.observation_space.shape, np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, env.action_space.shape, np.float32)
        self._steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self.env.unwrapped.seed(seed)
        obs, info = self.env.reset()
        self._steps = 0
        return obs.astype(np.float32), {**info, "success": 0.0}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(np.clip(action, -1.0, 1.0))
        self._steps += 1
        truncated = bool(truncated or self._steps >= self.episode_length)
        return obs.astype(np.float32), float(reward), bool(terminated), truncated, {
            **info, "success": float(info.get("success", 0.0))}


class GymEnv(gym.Wrapper):
    """A gymnasium env with flat float32 observations, actions rescaled to [-1, 1] and ``info["success"]``."""

    def __init__(self, env_id: str, seed: int, episode_length: int | None = None) -> None:
        env = gym.make(env_id, max_episode_steps=episode_length) if episode_length else gym.make(env_id)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"{env_id}: the online algorithms need a continuous (Box) action space")
        env = gym.wrappers.RescaleAction(env, np.float32(-1.0), np.float32(1.0))
        super().__init__(env)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, env.observation_space.shape, np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, env.action_space.shape, np.float32)
        self.env.action_space.seed(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return np.asarray(obs, dtype=np.float32), {**info, "success": 0.0}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(np.clip(action, -1.0, 1.0))
        return np.asarray(obs, dtype=np.float32), float(reward), bool(terminated), bool(truncated), {
            **info, "success": float(info.get("success", 0.0))}


def make_env(task: str, seed: int, episode_length: int | None = None) -> gym.Env:
    """Build ``task`` (see the module docstring), seeded; ``episode_length`` shortens episodes."""
    if episode_length is not None and episode_length <= 0:
        raise ValueError(f"episode_length must be positive or None, got {episode_length}")
    suite = suite_of(task)
    if suite == "gym":
        return GymEnv(task.removeprefix("gym:"), seed, episode_length)
    if suite == "metaworld":
        return MetaWorldEnv(task, seed, episode_length)
    domain, name = task.split("-")
    return DMCEnv(domain, name.replace("-", "_"), seed, episode_length)
