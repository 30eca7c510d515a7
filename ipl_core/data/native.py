"""The book's own preference format: one ``.npz`` that every generator writes and every trainer reads.

Keys: ``obs_1``, ``obs_2`` (N, S, obs_dim), ``action_1``, ``action_2`` (N, S, act_dim), ``label`` (N,) =
P[segment 1 preferred] in {0, 0.5, 1}; optional ``reward_1``, ``reward_2``, ``terminal_1``, ``terminal_2``
(N, S) when the ground truth is known. Taught in the appendix "Datasets and how they are made"
(book/appendix/datasets.ipynb).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ipl_core.data.datasets import PreferenceDataset
from ipl_core.data.errors import DataFormatError, read_npz
from ipl_core.io import atomic_write

REQUIRED_KEYS = ("obs_1", "obs_2", "action_1", "action_2", "label")
OPTIONAL_KEYS = ("reward_1", "reward_2", "terminal_1", "terminal_2")

RANKS = {"obs_1": 3, "obs_2": 3, "action_1": 3, "action_2": 3, "label": 1,
         "reward_1": 2, "reward_2": 2, "terminal_1": 2, "terminal_2": 2}
"""The rank each key must have: (N, S, dim), (N,) or (N, S)."""


def save_preferences(path: str | Path, dataset: PreferenceDataset) -> Path:
    """Write ``dataset`` as an uncompressed ``.npz``, atomically (temporary file, then rename)."""
    arrays = {key: getattr(dataset, key) for key in REQUIRED_KEYS}
    arrays.update({key: getattr(dataset, key) for key in OPTIONAL_KEYS if getattr(dataset, key) is not None})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a file object: np.savez would append ".npz" to a bare name
            np.savez(handle, **arrays)

    return atomic_write(path, write)


def load_preferences(path: str | Path) -> PreferenceDataset:
    """Read a native ``.npz`` preference file, plain or compressed (``np.savez_compressed``).

    Every failure (a truncated or damaged archive, a missing key, a non-numeric dtype, a wrong shape, a
    label outside {0, 0.5, 1}) raises DataFormatError naming the file and the key.
    """
    source = str(path)
    arrays = read_npz(path, REQUIRED_KEYS, f"a preference .npz with keys {REQUIRED_KEYS}", OPTIONAL_KEYS)
    for key, array in arrays.items():
        if array.ndim != RANKS[key]:
            expected = {1: "(N,)", 2: "(N, S)", 3: "(N, S, dim)"}[RANKS[key]]
            raise DataFormatError(f"{source}: key {key!r} has shape {array.shape}; expected {expected}")
    try:
        return PreferenceDataset(
            **{key: arrays[key] for key in REQUIRED_KEYS},
            **{key: arrays.get(key) for key in OPTIONAL_KEYS},
            source=source,
        )
    except ValueError as error:
        raise DataFormatError(str(error)) from error
