"""Preference Transformer's real human labels, joined with their offline dataset into segment pairs.

Kim et al. 2023 publish, per dataset, a folder ``human_label/<env>/`` with three pickles:
``indices_num<N>[_q<L>]`` (start rows of the first segments, N ints), ``indices_2_num<N>[_q<L>]`` (start
rows of the second segments) and ``label_human`` (N ints: 0 = the first segment is better, 1 = the second,
-1 = neither). Query length L is 100 for the D4RL locomotion sets and 100 (mh) or 50 (ph) for Robomimic;
the ``_q<L>`` suffix, when present, says which. The start rows index D4RL's ``qlearning_dataset`` view
(:func:`ipl_core.data.d4rl.qlearning_dataset`) for D4RL and the Robomimic loader's rows for Robomimic.
Here the label becomes P[first segment preferred]: 0 -> 1.0, 1 -> 0.0, -1 -> 0.5. Taught in the appendix
"Datasets and how they are made" (book/appendix/datasets.ipynb).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Literal

import numpy as np

from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.data.errors import DataFormatError, require_file
from ipl_core.data.segments import check_segments, gather_segments

D4RL_QUERY_LENGTH = 100
"""Steps per segment of Preference Transformer's D4RL labels, whose file names carry no ``_q<L>``."""

PT_LABEL_TO_PROBABILITY = {0: 1.0, 1: 0.0, -1: 0.5}
"""Preference Transformer's ``label_human`` value -> P[first segment preferred]."""

_INDEX_FILE = re.compile(r"^indices(?P<second>_2)?_num(?P<num>\d+)(?:_q(?P<q>\d+))?$")


def _load_pickle(path: Path) -> np.ndarray:
    """A pickled 1-d list or array of integers from ``path``; anything else raises DataFormatError."""
    require_file(path, "a pickled list or array of integers")
    try:
        with open(path, "rb") as handle:
            value = pickle.load(handle)  # the published format; open only trusted files
    except Exception as error:  # a damaged pickle can raise almost any type (TypeError, MemoryError, ...)
        raise DataFormatError(
            f"{path}: cannot be unpickled ({type(error).__name__}: {error}); the file may be truncated"
        ) from error
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError, MemoryError) as error:  # a ragged list, for one
        raise DataFormatError(
            f"{path}: holds a {type(value).__name__} that is not a flat list of integers ({error}); "
            f"expected a 1-d list of integers"
        ) from error
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise DataFormatError(
            f"{path}: holds {array.dtype} with shape {array.shape}; expected a 1-d list of integers"
        )
    if array.dtype == np.uint64 and len(array) and array.max() > np.iinfo(np.int64).max:
        raise DataFormatError(f"{path}: holds integers above {np.iinfo(np.int64).max}; expected row indices")
    return array.astype(np.int64)


def find_pt_label_files(label_dir: str | Path) -> tuple[Path, Path, Path, int | None]:
    """The index files and the label file of a ``human_label/<env>/`` folder, and L if the names say it."""
    label_dir = Path(label_dir)
    if not label_dir.is_dir():
        raise DataFormatError(f"{label_dir}: no such folder; expected a PT folder human_label/<env>/")
    first = second = None
    query_length: int | None = None
    for entry in sorted(label_dir.iterdir()):
        match = _INDEX_FILE.match(entry.name)
        if match:
            if match["second"]:
                second = entry
            else:
                first = entry
            if match["q"]:
                query_length = int(match["q"])
    labels = label_dir / "label_human"
    for name, found in (("indices_num<N>[_q<L>]", first), ("indices_2_num<N>[_q<L>]", second),
                        ("label_human", labels if labels.exists() else None)):
        if found is None:
            raise DataFormatError(
                f"{label_dir}: missing file {name!r}; expected indices_num*, indices_2_num* and label_human "
                f"(found {sorted(p.name for p in label_dir.iterdir())})"
            )
    assert first is not None and second is not None
    return first, second, labels, query_length


def load_pt_human_labels(
    label_dir: str | Path,
    dataset: OfflineDataset,
    query_length: int | None = None,
    num_queries: int | None = None,
    on_crossing: Literal["error", "drop"] = "error",
) -> PreferenceDataset:
    """Join the human labels in ``label_dir`` with ``dataset`` (the view the indices point into).

    ``query_length`` defaults to the ``_q<L>`` of the file names (an error if neither says it). The three
    files must hold equal numbers of entries; ``num_queries`` keeps the *last* ``num_queries`` of them, as
    PT's ``load_queries_with_indices`` does (``np.arange(len(labels) - num_query, len(labels))``). A
    segment that crosses an episode boundary raises (``on_crossing="error"``) or is dropped (``"drop"``);
    the returned dataset then holds fewer pairs. Every failure raises DataFormatError naming the file.
    """
    first, second, labels_path, named_length = find_pt_label_files(label_dir)
    if query_length is None:
        if named_length is None:
            raise DataFormatError(f"{first}: the name carries no _q<L>; pass query_length "
                                  f"({D4RL_QUERY_LENGTH} for D4RL)")
        query_length = named_length
    elif named_length is not None and named_length != query_length:
        raise DataFormatError(f"{first}: the name says query length {named_length}; got {query_length}")
    if query_length < 1:
        raise DataFormatError(f"{first}: query length {query_length}; expected at least 1 step")
    starts_1, starts_2, raw = _load_pickle(first), _load_pickle(second), _load_pickle(labels_path)
    if not len(starts_1) == len(starts_2) == len(raw):
        raise DataFormatError(
            f"{labels_path}: holds {len(raw)} labels but {first.name} holds {len(starts_1)} and "
            f"{second.name} {len(starts_2)} start indices; expected equal lengths"
        )
    if num_queries is not None and num_queries < 1:
        raise ValueError(f"num_queries must be at least 1, got {num_queries}")
    n = len(raw) if num_queries is None else num_queries
    if not 1 <= n <= len(raw):
        raise DataFormatError(f"{labels_path}: holds {len(raw)} labels; expected at least {max(n, 1)}")
    offset = len(raw) - n
    last = slice(offset, len(raw))
    starts_1, starts_2, raw = starts_1[last], starts_2[last], raw[last]
    unknown = ~np.isin(raw, list(PT_LABEL_TO_PROBABILITY))
    if unknown.any():
        raise DataFormatError(
            f"{labels_path}: holds labels {sorted(set(raw[unknown].tolist()))[:5]}; expected values in "
            f"{{-1, 0, 1}} (-1 = tie, 0 = first segment better, 1 = second segment better)"
        )
    crossing = (check_segments(dataset, starts_1, query_length, str(first))
                | check_segments(dataset, starts_2, query_length, str(second)))
    if crossing.any() and on_crossing == "error":
        bad = int(np.flatnonzero(crossing)[0])
        raise DataFormatError(
            f"{label_dir}: query {offset + bad} (starts {int(starts_1[bad])}, {int(starts_2[bad])}, length "
            f"{query_length}) crosses an episode boundary of {dataset.source}; expected segments inside one "
            f"episode ({int(crossing.sum())} such queries; on_crossing='drop', or ipl-train's "
            "--drop-crossing, drops them)"
        )
    keep = ~crossing
    if not keep.any():
        raise DataFormatError(f"{label_dir}: every query crosses an episode boundary of {dataset.source}")
    seg_1 = gather_segments(dataset, starts_1[keep], query_length, str(first))
    seg_2 = gather_segments(dataset, starts_2[keep], query_length, str(second))
    label = np.vectorize(PT_LABEL_TO_PROBABILITY.__getitem__, otypes=[np.float32])(raw[keep])
    return PreferenceDataset(
        obs_1=seg_1["obs"], obs_2=seg_2["obs"], action_1=seg_1["action"], action_2=seg_2["action"],
        label=label, reward_1=seg_1["reward"], reward_2=seg_2["reward"],
        terminal_1=seg_1["terminal"], terminal_2=seg_2["terminal"], source=str(label_dir),
    )
