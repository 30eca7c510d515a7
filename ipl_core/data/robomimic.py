"""Robomimic's low-dimensional HDF5 demos, flattened the way Preference Transformer's indices expect.

A Robomimic file (Mandlekar et al. 2021) holds ``data/<demo>/{actions, rewards, dones, obs/<key>}`` with one
group per demonstration. Demos are read in the order h5py lists them (alphabetical: demo_0, demo_1,
demo_10, ...), each demo's low-dimensional ``obs`` keys are concatenated in the order given, and the last
step of every demo is dropped (its next observation is not stored), so row i of demo d is
(obs[i], action[i], reward[i], obs[i + 1]). Taught in the appendix "Datasets and how they are made"
(book/appendix/datasets.ipynb).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ipl_core.data.datasets import OfflineDataset
from ipl_core.data.errors import (
    DataFormatError,
    as_float32,
    open_hdf5,
    read_flags,
    read_hdf5_array,
    require_group,
)

ROBOMIMIC_LOW_DIM_KEYS = (
    "object", "robot0_joint_pos", "robot0_joint_pos_cos", "robot0_joint_pos_sin", "robot0_joint_vel",
    "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "robot0_gripper_qvel",
)
"""The low-dimensional observation keys Preference Transformer concatenates for Lift, Can and Square."""


def load_robomimic_hdf5(path: str | Path, obs_keys: Sequence[str] = ROBOMIMIC_LOW_DIM_KEYS) -> OfflineDataset:
    """Read a Robomimic ``low_dim.hdf5`` into one flat ``OfflineDataset`` (see the module docstring).

    ``terminals`` copy the demo's ``dones``; the last kept step of a demo that is not terminal is marked
    ``timeouts`` (the demo ends there). Every failure raises DataFormatError naming the file, the demo and
    the key.
    """
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "next", "act", "rew", "term", "tout")}
    with open_hdf5(path, "a Robomimic HDF5 file with a 'data' group of demos") as handle:
        if "data" not in handle:
            raise DataFormatError(f"{path}: no group 'data'; expected data/<demo> (has {list(handle)})")
        data = require_group(handle, "data", str(path))
        demos = list(data.keys())
        if not demos:
            raise DataFormatError(f"{path}: group 'data' holds no demos; expected at least one")
        for demo in demos:
            group = require_group(data, demo, f"{path}: data")
            source = f"{path}: data/{demo}"
            actions = read_hdf5_array(group, "actions", source, (2,))
            rewards = read_hdf5_array(group, "rewards", source, (1,))
            dones = read_flags(read_hdf5_array(group, "dones", source, (1,)), "dones", source)
            obs = _concatenate_obs(group, obs_keys, len(actions), source)
            steps = len(actions)
            for name, array in (("rewards", rewards), ("dones", dones)):
                if len(array) != steps:
                    raise DataFormatError(f"{source}: key {name!r} has {len(array)} rows; expected {steps}")
            if steps < 2:
                continue
            if parts["obs"] and (obs.shape[1], actions.shape[1]) != (parts["obs"][0].shape[1],
                                                                     parts["act"][0].shape[1]):
                raise DataFormatError(
                    f"{source}: observations of {obs.shape[1]} and actions of {actions.shape[1]} dims; "
                    f"expected {parts['obs'][0].shape[1]} and {parts['act'][0].shape[1]} like the first demo"
                )
            terminal = dones[: steps - 1]
            timeout = np.zeros(steps - 1, dtype=bool)
            timeout[-1] = not terminal[-1]
            parts["obs"].append(obs[:-1])
            parts["next"].append(obs[1:])
            parts["act"].append(actions[:-1])
            parts["rew"].append(rewards[:-1])
            parts["term"].append(terminal)
            parts["tout"].append(timeout)
    if not parts["obs"]:
        raise DataFormatError(f"{path}: every demo is shorter than 2 steps; expected at least one transition")
    source = str(path)
    floats = {key: as_float32(np.concatenate(parts[part]), name, source) for key, part, name in
              (("observations", "obs", "obs"), ("actions", "act", "actions"),
               ("next_observations", "next", "obs"), ("rewards", "rew", "rewards"))}
    try:
        return OfflineDataset(**floats, terminals=np.concatenate(parts["term"]),
                              timeouts=np.concatenate(parts["tout"]), source=source)
    except ValueError as error:
        raise DataFormatError(str(error)) from error


def _concatenate_obs(group: object, obs_keys: Sequence[str], steps: int, source: str) -> np.ndarray:
    """The demo's ``obs/<key>`` arrays for ``obs_keys``, each (steps, d_k), side by side."""
    if "obs" not in group:  # type: ignore[operator]
        raise DataFormatError(f"{source}: missing group 'obs'; expected obs/<key> for keys {list(obs_keys)}")
    obs = require_group(group, "obs", source)
    columns = []
    for key in obs_keys:
        array = read_hdf5_array(obs, key, f"{source}/obs", (1, 2))
        if len(array) != steps:
            raise DataFormatError(f"{source}/obs: key {key!r} has {len(array)} rows; expected {steps}")
        columns.append(array.reshape(steps, -1))
    return np.concatenate(columns, axis=1)
