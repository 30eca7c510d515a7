"""Minari datasets (the maintained successor of D4RL), read from a local folder through ``minari``.

A Minari dataset lives in ``<root>/<dataset_id>/data/`` (root: ``$MINARI_DATASETS_PATH``, else
``~/.minari/datasets``). Each episode stores T + 1 observations and T actions, rewards, ``terminations`` and
``truncations``; here they become flat D4RL-style rows with ``observations[:-1]`` and
``observations[1:]`` as (s, s'). Nothing is downloaded. Taught in the appendix "Datasets and how they are
made" (book/appendix/datasets.ipynb).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ipl_core.data.datasets import OfflineDataset
from ipl_core.data.errors import DataFormatError, as_float32, damaged, read_flags, require_numeric


def minari_root(root: str | Path | None = None) -> Path:
    """The local Minari folder: ``root``, else ``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("MINARI_DATASETS_PATH", Path.home() / ".minari" / "datasets"))


def load_minari(dataset_id: str, root: str | Path | None = None, progress: bool = False) -> OfflineDataset:
    """Read the local Minari dataset ``dataset_id`` into an ``OfflineDataset`` (flat Box observations).

    The last step of an episode that neither terminates nor truncates (a cut-off recording) is marked a
    time-out, so segments never run from one episode into the next.
    """
    from minari import MinariDataset

    path = minari_root(root) / dataset_id / "data"
    if not (path / "metadata.json").is_file():
        raise DataFormatError(
            f"{path}: no Minari dataset {dataset_id!r} (no metadata.json); expected a local dataset "
            f"under {minari_root(root)} (set MINARI_DATASETS_PATH or pass root)"
        )
    try:
        dataset = MinariDataset(path)
        total = dataset.total_episodes
    except Exception as error:  # minari raises many types (KeyError, OSError, ...) for a damaged folder
        raise damaged(path, error, "a Minari dataset") from error
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "next", "act", "rew", "term", "tout")}
    episodes = _episodes(dataset, path)
    for episode in tqdm(episodes, total=total, desc=dataset_id, disable=not progress):
        source = f"{path}: episode {episode.id}"
        obs = episode.observations
        if isinstance(obs, dict):
            raise DataFormatError(
                f"{source}: observations are a dict with keys {sorted(obs)}; expected a flat Box observation"
            )
        obs = require_numeric(np.asarray(obs), "observations", source)
        actions = require_numeric(np.asarray(episode.actions), "actions", source)
        rewards = require_numeric(np.asarray(episode.rewards), "rewards", source)
        steps = len(actions) if actions.ndim else 0
        if obs.ndim == 0 or obs.shape[0] != steps + 1:
            raise DataFormatError(f"{source}: {obs.shape} observations, {steps} actions; expected T + 1 rows")
        if rewards.shape != (steps,):
            raise DataFormatError(f"{source}: rewards of shape {rewards.shape}; expected ({steps},)")
        term = read_flags(np.asarray(episode.terminations), "terminations", source)
        tout = read_flags(np.asarray(episode.truncations), "truncations", source).copy()
        if term.shape != (steps,) or tout.shape != (steps,):
            raise DataFormatError(
                f"{source}: terminations {term.shape} and truncations {tout.shape}; expected ({steps},)"
            )
        if steps and not (term[-1] or tout[-1]):
            tout[-1] = True
        parts["obs"].append(obs[:-1].reshape(steps, -1))
        parts["next"].append(obs[1:].reshape(steps, -1))
        parts["act"].append(actions.reshape(steps, -1))
        parts["rew"].append(rewards)
        parts["term"].append(term)
        parts["tout"].append(tout)
        if (parts["obs"][-1].shape[1], parts["act"][-1].shape[1]) != (parts["obs"][0].shape[1],
                                                                       parts["act"][0].shape[1]):
            raise DataFormatError(
                f"{source}: observations of {parts['obs'][-1].shape[1]} and actions of "
                f"{parts['act'][-1].shape[1]} dims; expected those of the first episode"
            )
    if not parts["obs"] or sum(len(p) for p in parts["obs"]) == 0:
        raise DataFormatError(f"{path}: the dataset holds no steps; expected at least one episode")
    floats = {key: as_float32(np.concatenate(parts[part]), name, str(path)) for key, part, name in
              (("observations", "obs", "observations"), ("actions", "act", "actions"),
               ("next_observations", "next", "observations"), ("rewards", "rew", "rewards"))}
    try:
        return OfflineDataset(**floats, terminals=np.concatenate(parts["term"]),
                              timeouts=np.concatenate(parts["tout"]), source=f"minari:{dataset_id} ({path})")
    except ValueError as error:
        raise DataFormatError(str(error)) from error


def _episodes(dataset: Any, path: Path) -> Iterator[Any]:
    """The dataset's episodes; whatever minari raises while reading a damaged file becomes DataFormatError."""
    iterator = iter(dataset.iterate_episodes())
    while True:
        try:
            episode = next(iterator)
        except StopIteration:
            return
        except Exception as error:  # h5py and minari raise many types on a damaged file
            raise damaged(path, error, "readable Minari episodes") from error
        yield episode
