"""Preference Transformer human labels: the published folder layout joined with the qlearning view."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from ipl_core.data import (
    DataFormatError,
    OfflineDataset,
    load_d4rl_hdf5,
    load_pt_human_labels,
    qlearning_dataset,
    write_d4rl_hdf5,
)


def d4rl_file(tmp_path: Path) -> Path:
    """Two 30-step episodes that hit a time limit, then one that terminates after 20 steps."""
    rng = np.random.default_rng(1)
    n = 80
    obs = np.arange(n + 1, dtype=np.float32)[:, None].repeat(2, axis=1)
    timeouts = np.zeros(n, dtype=bool)
    timeouts[[29, 59]] = True
    terminals = np.zeros(n, dtype=bool)
    terminals[79] = True
    dataset = OfflineDataset(obs[:-1], rng.normal(size=(n, 1)).astype(np.float32), obs[1:],
                             rng.normal(size=n).astype(np.float32), terminals, timeouts)
    return write_d4rl_hdf5(tmp_path / "toy-medium-v2.hdf5", dataset)


def write_labels(folder: Path, starts_1: list, starts_2: list, labels: list, suffix: str = "_q10") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    n = len(labels)
    for name, value in ((f"indices_num{n}{suffix}", starts_1), (f"indices_2_num{n}{suffix}", starts_2),
                        ("label_human", labels)):
        with open(folder / name, "wb") as handle:
            pickle.dump(value, handle)
    return folder


def test_join_orientation_and_ties(tmp_path: Path) -> None:
    view = qlearning_dataset(load_d4rl_hdf5(d4rl_file(tmp_path)))
    # view rows 0..28 = episode 1 (row 29 dropped), 29..57 = episode 2, 58..76 = episode 3
    folder = write_labels(tmp_path / "human_label" / "toy-medium-v2", [0, 30, 58], [15, 40, 60], [0, 1, -1])
    prefs = load_pt_human_labels(folder, view.dataset)
    assert prefs.segment_length == 10 and len(prefs) == 3
    np.testing.assert_array_equal(prefs.label, [1.0, 0.0, 0.5])  # 0: first better, 1: second, -1: tie
    np.testing.assert_array_equal(prefs.obs_1[1], view.dataset.observations[30:40])
    # the original row behind view row 30 is 31: the time-out row 29 was dropped
    assert prefs.obs_1[1, 0, 0] == 31.0
    np.testing.assert_array_equal(prefs.reward_2[2], view.dataset.rewards[60:70])

def test_num_queries_keeps_the_last_queries_as_pt_does(tmp_path: Path) -> None:
    """PT's load_queries_with_indices reads positions np.arange(len(labels) - num_query, len(labels))."""
    view = qlearning_dataset(load_d4rl_hdf5(d4rl_file(tmp_path)))
    folder = write_labels(tmp_path / "lab", [0, 30, 58], [15, 40, 60], [0, 1, -1])
    last_two = load_pt_human_labels(folder, view.dataset, num_queries=2)
    np.testing.assert_array_equal(last_two.label, [0.0, 0.5])
    np.testing.assert_array_equal(last_two.obs_1[:, 0, 0], view.dataset.observations[[30, 58], 0])
    np.testing.assert_array_equal(last_two.obs_2[:, 0, 0], view.dataset.observations[[40, 60], 0])
    assert len(load_pt_human_labels(folder, view.dataset, num_queries=3)) == 3


def test_crossing_segments_error_or_drop(tmp_path: Path) -> None:
    view = qlearning_dataset(load_d4rl_hdf5(d4rl_file(tmp_path)))
    folder = write_labels(tmp_path / "lab", [0, 25], [40, 40], [0, 0])  # 25..34 crosses the end at 28
    with pytest.raises(DataFormatError, match=r"query 1 \(starts 25, 40, length 10\) crosses an episode"):
        load_pt_human_labels(folder, view.dataset)
    kept = load_pt_human_labels(folder, view.dataset, on_crossing="drop")
    assert len(kept) == 1


@pytest.mark.parametrize(
    ("starts_1", "labels", "match"),
    [
        ([0, 70], [0, 0], r"indices_num2_q10: start index 70 .* runs past the dataset"),
        ([0, 5], [0, 2], r"label_human: holds labels \[2\]; expected values in \{-1, 0, 1\}"),
        ([0, 5], [0.5, 1.0], r"label_human: holds float64 .* expected a 1-d list of integers"),
        ([0, 5], [0], r"label_human: holds 1 labels but indices_num2_q10 holds 2 .* expected equal lengths"),
        ([0, -3], [0, 1], r"start index -3"),
    ],
)
def test_bad_label_files(tmp_path: Path, starts_1: list, labels: list, match: str) -> None:
    view = qlearning_dataset(load_d4rl_hdf5(d4rl_file(tmp_path)))
    folder = tmp_path / "lab"
    write_labels(folder, starts_1, [1, 2], [0, 0])
    with open(folder / "label_human", "wb") as handle:
        pickle.dump(labels, handle)
    with pytest.raises(DataFormatError, match=match):
        load_pt_human_labels(folder, view.dataset)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    view = qlearning_dataset(load_d4rl_hdf5(d4rl_file(tmp_path)))
    folder = write_labels(tmp_path / "lab", [0], [1], [0], suffix="")
    with pytest.raises(DataFormatError, match=r"carries no _q<L>; pass query_length"):
        load_pt_human_labels(folder, view.dataset)
    assert len(load_pt_human_labels(folder, view.dataset, query_length=5)) == 1
    (folder / "indices_2_num1").unlink()
    with pytest.raises(DataFormatError, match=r"missing file 'indices_2_num<N>\[_q<L>\]'"):
        load_pt_human_labels(folder, view.dataset, query_length=5)
    folder = write_labels(tmp_path / "lab2", [0], [1], [0])
    with pytest.raises(DataFormatError, match=r"the name says query length 10; got 5"):
        load_pt_human_labels(folder, view.dataset, query_length=5)
    (folder / "label_human").write_bytes(b"\x80\x04\x95")
    with pytest.raises(DataFormatError, match=r"label_human: cannot be unpickled"):
        load_pt_human_labels(folder, view.dataset)
    (folder / "label_human").write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"label_human: the file is empty"):
        load_pt_human_labels(folder, view.dataset)


def test_too_few_entries_for_num_queries(tmp_path: Path) -> None:
    view = qlearning_dataset(load_d4rl_hdf5(d4rl_file(tmp_path)))
    folder = write_labels(tmp_path / "lab", [0, 5], [1, 2], [0, 1])
    with pytest.raises(DataFormatError, match=r"label_human: holds 2 labels; expected at least 3"):
        load_pt_human_labels(folder, view.dataset, num_queries=3)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ([[0, 1], [1]], r"label_human: holds a list that is not a flat list of integers"),
        ({"labels": [0, 1]}, r"label_human: holds object with shape \(\) ?; expected a 1-d list of integers"),
        (np.array([2**63 + 1, 0], dtype=np.uint64), r"label_human: holds integers above"),
    ],
)
def test_ragged_and_odd_pickles_are_named(tmp_path: Path, content: object, match: str) -> None:
    view = qlearning_dataset(load_d4rl_hdf5(d4rl_file(tmp_path)))
    folder = write_labels(tmp_path / "lab", [0, 5], [1, 2], [0, 1])
    with open(folder / "label_human", "wb") as handle:
        pickle.dump(content, handle)
    with pytest.raises(DataFormatError, match=match):
        load_pt_human_labels(folder, view.dataset)
