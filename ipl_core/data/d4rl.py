"""D4RL's HDF5 layout: read it, write it, and the ``qlearning_dataset`` view that drops time-out steps.

D4RL (Fu et al. 2020) stores one flat array per key: ``observations`` (N, obs_dim), ``actions``
(N, act_dim), ``rewards`` (N,), ``terminals`` (N,), ``timeouts`` (N,) and, in the v2 locomotion files only,
``next_observations`` (N, obs_dim); the AntMaze and Adroit files leave it out. Files may add ``infos/*`` and
``metadata/*`` groups and are often gzip-compressed. The package ``d4rl`` needs mujoco-py and an old MuJoCo
binary, so the layout is read with h5py instead. Taught in the appendix "Datasets and how they are made"
(book/appendix/datasets.ipynb).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ipl_core.data.datasets import OfflineDataset
from ipl_core.data.errors import DataFormatError, as_float32, open_hdf5, read_flags, read_hdf5_array
from ipl_core.io import atomic_write

D4RL_KEYS = ("observations", "actions", "next_observations", "rewards", "terminals", "timeouts")
"""The keys :func:`write_d4rl_hdf5` writes and :func:`load_d4rl_hdf5` reads."""

REQUIRED_D4RL_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
"""The keys every D4RL file must hold; ``next_observations`` is optional (AntMaze and Adroit lack it)."""


def load_d4rl_hdf5(path: str | Path) -> OfflineDataset:
    """Read a D4RL-layout HDF5 file into an ``OfflineDataset``.

    The :data:`REQUIRED_D4RL_KEYS` must be present with equal lengths; other keys (``infos/*``,
    ``metadata/*``) are ignored. ``terminals`` and ``timeouts`` must be booleans or 0/1. When the file
    stores no ``next_observations`` (D4RL's AntMaze and Adroit files), they are derived as D4RL's
    ``qlearning_dataset`` does, ``observations[i + 1]``; the successor of the last row is not in the file,
    so that row repeats its own observation. On those files the successor of a time-out row and of the
    last row is not a true next state: learn from :func:`qlearning_dataset`, which drops both.
    Every failure raises DataFormatError naming the file and the key.
    """
    source = str(path)
    with open_hdf5(path, f"a D4RL HDF5 file with keys {REQUIRED_D4RL_KEYS}") as handle:
        arrays = {}
        for key in D4RL_KEYS:
            if key == "next_observations" and key not in handle:
                continue
            ndim = (2,) if key in ("observations", "actions", "next_observations") else (1,)
            arrays[key] = read_hdf5_array(handle, key, source, ndim)
    n = len(arrays["observations"])
    for key, array in arrays.items():
        if len(array) != n:
            raise DataFormatError(
                f"{source}: key {key!r} has {len(array)} rows; expected {n} like 'observations'"
            )
    terminals = read_flags(arrays["terminals"], "terminals", source)
    timeouts = read_flags(arrays["timeouts"], "timeouts", source)
    observations = arrays["observations"]
    next_observations = arrays.get("next_observations")
    if next_observations is None:
        next_observations = np.concatenate([observations[1:], observations[-1:]])
    floats = {key: as_float32(array, key, source) for key, array in
              (("observations", observations), ("actions", arrays["actions"]),
               ("next_observations", next_observations), ("rewards", arrays["rewards"]))}
    try:
        return OfflineDataset(**floats, terminals=terminals, timeouts=timeouts, source=source)
    except ValueError as error:
        raise DataFormatError(str(error)) from error


def write_d4rl_hdf5(
    path: str | Path,
    dataset: OfflineDataset,
    attrs: dict[str, str] | None = None,
    extras: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write ``dataset`` in D4RL's layout (gzip-compressed), atomically.

    ``attrs`` become file attributes; ``extras`` are further per-step arrays such as ``infos/success``
    (D4RL keeps its extras under ``infos/`` and ``metadata/`` too).
    """
    import h5py

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as handle:
            for key in D4RL_KEYS:
                handle.create_dataset(key, data=getattr(dataset, key), compression="gzip")
            for key, value in (extras or {}).items():
                handle.create_dataset(key, data=value, compression="gzip")
            for name, value in (attrs or {}).items():
                handle.attrs[name] = value

    return atomic_write(path, write)


class QLearningView(NamedTuple):
    """The rows of D4RL's ``qlearning_dataset`` and where each came from."""

    dataset: OfflineDataset
    """The kept transitions; ``timeouts`` marks the last kept step of every episode that did not terminate."""
    index: np.ndarray
    """(M,) int: row of the original dataset that each row of the view holds."""


def qlearning_dataset(dataset: OfflineDataset) -> QLearningView:
    """D4RL's ``qlearning_dataset(env)`` with its default ``terminate_on_end=False``, as an index view.

    Like D4RL it loops over rows 0..N-2 (the last row is always dropped), skips every row flagged
    ``timeouts``, and takes row i + 1's observation as the next observation, so observations, actions,
    next observations, rewards and terminals equal D4RL's everywhere but in one place: on a terminal row it
    keeps the stored next observation, where D4RL takes ``observations[i + 1]``, the first state of the
    next episode. No TD target reads it (the terminal zeroes the bootstrap). Preference Transformer's start
    indices point into this view. It also marks episode ends so that segments can respect them:
    ``timeouts`` is True on the last kept step of an episode cut by a time limit, and on the view's last row
    unless it is terminal.
    """
    n = len(dataset)
    keep = np.flatnonzero(~dataset.timeouts[: n - 1].astype(bool))
    if len(keep) == 0:
        raise DataFormatError(f"{dataset.source}: no transition is left once time-out steps are dropped")
    terminals = dataset.terminals[keep].astype(bool)
    next_observations = np.where(terminals[:, None], dataset.next_observations[keep],
                                 dataset.observations[keep + 1])
    gap = np.ones(len(keep), dtype=bool)
    gap[:-1] = keep[1:] != keep[:-1] + 1
    view = OfflineDataset(
        observations=dataset.observations[keep],
        actions=dataset.actions[keep],
        next_observations=next_observations,
        rewards=dataset.rewards[keep],
        terminals=terminals,
        timeouts=gap & ~terminals,
        source=f"{dataset.source} (qlearning view)",
    )
    return QLearningView(view, keep)
