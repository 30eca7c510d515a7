"""Preference datasets of the locomotion data, labelled by a scripted teacher instead of people.

IPL Section 4.2 trains on D4RL locomotion data with the human labels of the Preference Transformer
(Kim et al. 2023): pairs of 100-step segments, 500 queries for each medium-replay dataset and 100 for each
medium-expert one (IPL App. B.2; the released files are ``human_label/<env>-medium-replay-v2/indices_num500``
and ``human_label/<env>-medium-expert-v2/indices_num100`` of github.com/csmile-1006/PreferenceTransformer,
labelled with ``--query_len 100``). Neither the D4RL files nor those labels can be downloaded here, so
:func:`locomotion_preferences` draws the same number of pairs of the same length from a D4RL-layout HDF5
(this book's SAC-made data, :mod:`ipl_core.online.locomotion_data`) and labels them with a B-Pref teacher
(:data:`ipl_core.teachers.TEACHERS`, the oracle by default). The file is written next to the data in the
native format (:mod:`ipl_core.data.native`) with a manifest, and reused when it exists. Taught in the
reproduction chapter "IPL Table 1, 2 and 7 on locomotion" (book/reproduction/ipl_locomotion.ipynb).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from ipl_core.data.d4rl import load_d4rl_hdf5
from ipl_core.data.native import save_preferences
from ipl_core.data.segments import make_preference_dataset
from ipl_core.data.store import cached, read_manifest, sha256_file
from ipl_core.teachers import TEACHERS

GENERATOR = "ipl_core.data.locomotion_prefs"

HUMAN_LABEL_QUERIES: dict[str, int] = {"medium-replay": 500, "medium-expert": 100}
"""Queries of Kim et al.'s human-label datasets by D4RL dataset kind (IPL App. B.2; the PT repository's
``indices_num500`` / ``indices_num100`` files for hopper and walker2d)."""

HUMAN_LABEL_SEGMENT_LENGTH = 100
"""k = 100 steps per segment for every locomotion dataset (IPL App. B.2 and Table 5)."""


def preference_path(data_file: str | Path, num_queries: int, segment_length: int, teacher: str,
                    seed: int) -> Path:
    """``<data>.prefs-<teacher>-q<num_queries>-k<segment_length>-seed<seed>.npz`` beside ``data_file``."""
    data_file = Path(data_file)
    return data_file.with_name(
        f"{data_file.stem}.prefs-{teacher}-q{num_queries}-k{segment_length}-seed{seed}.npz")


def default_queries(data_file: str | Path) -> int:
    """The human-label query count of the dataset kind named by the file (``medium-replay.hdf5`` -> 500)."""
    kind = Path(data_file).stem
    if kind not in HUMAN_LABEL_QUERIES:
        raise KeyError(f"{data_file}: no human-label query count for dataset kind {kind!r} (known: "
                       f"{sorted(HUMAN_LABEL_QUERIES)}); pass num_queries")
    return HUMAN_LABEL_QUERIES[kind]


def locomotion_preferences(data_file: str | Path, num_queries: int | None = None,
                           segment_length: int = HUMAN_LABEL_SEGMENT_LENGTH, teacher: str = "oracle",
                           seed: int = 0) -> Path:
    """Make (or reuse) the preference dataset of a D4RL-layout HDF5 and return the path of its ``.npz``.

    ``num_queries`` pairs (default: :data:`HUMAN_LABEL_QUERIES` of the file's kind) of ``segment_length``
    steps are drawn uniformly inside episodes (:func:`~ipl_core.data.segments.make_preference_dataset`)
    with ``np.random.default_rng(seed)`` and labelled by ``TEACHERS[teacher]`` from the ground-truth
    rewards. The manifest records the data file's sha256 and the teacher's parameters: an existing file
    made from other data or by another teacher raises a ValueError naming what differs.
    """
    data_file = Path(data_file)
    if not data_file.is_file():
        raise FileNotFoundError(f"{data_file}: no such dataset; make it with `python -m "
                                "ipl_core.online.locomotion_data <task> --profile <p> --out <dir>`")
    if teacher not in TEACHERS:
        raise KeyError(f"unknown teacher {teacher!r}; expected one of {sorted(TEACHERS)}")
    if num_queries is None:
        num_queries = default_queries(data_file)
    params: dict[str, Any] = {
        "data_file": data_file.name, "data_sha256": sha256_file(data_file), "num_queries": int(num_queries),
        "segment_length": int(segment_length), "teacher": teacher,
        "teacher_params": dataclasses.asdict(TEACHERS[teacher]),
    }
    path = preference_path(data_file, num_queries, segment_length, teacher, seed)
    manifest = read_manifest(path)
    if path.is_file() and manifest is not None:
        wanted = json.loads(json.dumps(params))  # as the manifest stores it (inf -> Infinity -> inf)
        made = {**manifest.get("params", {}), "generator": manifest.get("generator"),
                "seed": manifest.get("seed")}
        wanted |= {"generator": GENERATOR, "seed": seed}
        differ = sorted(k for k in wanted if made.get(k) != wanted[k])
        if differ:
            details = "; ".join(f"{k}: {made.get(k)!r} there, {wanted[k]!r} now" for k in differ)
            raise ValueError(f"{path} does not match the data or teacher asked for ({details}); delete it "
                             "to draw the pairs again")

    def build(tmp: Path) -> None:
        offline = load_d4rl_hdf5(data_file)
        prefs = make_preference_dataset(offline, num_queries, segment_length, TEACHERS[teacher],
                                        np.random.default_rng(seed))
        save_preferences(tmp, prefs)

    path, _ = cached(path, GENERATOR, params, seed, build)
    return path
