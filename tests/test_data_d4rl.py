"""D4RL HDF5 layout: round trip, the qlearning_dataset view, and clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from ipl_core.data import DataFormatError, OfflineDataset, load_d4rl_hdf5, qlearning_dataset, write_d4rl_hdf5


def make_offline(n: int = 40, obs_dim: int = 3, act_dim: int = 2, seed: int = 0) -> OfflineDataset:
    """Three episodes: a terminal at row 9, a time-out at row 24, and an open end."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n + 1, obs_dim)).astype(np.float32)
    terminals = np.zeros(n, dtype=bool)
    timeouts = np.zeros(n, dtype=bool)
    terminals[9] = True
    timeouts[24] = True
    observations, next_observations = obs[:-1].copy(), obs[1:]
    observations[[10, 25]] = rng.normal(size=(2, obs_dim))  # each new episode starts from a reset state
    return OfflineDataset(observations, rng.normal(size=(n, act_dim)).astype(np.float32), next_observations,
                          rng.normal(size=n).astype(np.float32), terminals, timeouts)


def write_raw(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            handle.create_dataset(key, data=value)
    return path


def raw_arrays(dataset: OfflineDataset) -> dict[str, np.ndarray]:
    return {key: getattr(dataset, key) for key in
            ("observations", "actions", "next_observations", "rewards", "terminals", "timeouts")}


def test_round_trip(tmp_path: Path) -> None:
    dataset = make_offline()
    path = write_d4rl_hdf5(tmp_path / "d.hdf5", dataset, attrs={"env": "toy"},
                           extras={"infos/qpos": np.zeros((len(dataset), 2))})
    loaded = load_d4rl_hdf5(path)
    for key, value in raw_arrays(dataset).items():
        np.testing.assert_array_equal(getattr(loaded, key), value)
    assert loaded.source == str(path)
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file may remain"
    with h5py.File(path) as handle:
        assert handle.attrs["env"] == "toy" and "infos/qpos" in handle


def d4rl_reference(data: dict[str, np.ndarray]) -> tuple[list[int], dict[str, np.ndarray]]:
    """D4RL's qlearning_dataset loop (terminate_on_end=False) on raw file arrays, written out step by step."""
    rows, out = [], {k: [] for k in ("observations", "actions", "next_observations", "rewards", "terminals")}
    for i in range(len(data["rewards"]) - 1):
        if data["timeouts"][i]:
            continue
        rows.append(i)
        out["observations"].append(data["observations"][i].astype(np.float32))
        out["next_observations"].append(data["observations"][i + 1].astype(np.float32))
        out["actions"].append(data["actions"][i].astype(np.float32))
        out["rewards"].append(data["rewards"][i].astype(np.float32))
        out["terminals"].append(bool(data["terminals"][i]))
    return rows, {k: np.array(v) for k, v in out.items()}


def test_qlearning_view_matches_d4rl_loop() -> None:
    dataset = make_offline()
    view = qlearning_dataset(dataset)
    rows, reference = d4rl_reference(raw_arrays(dataset))
    assert view.index.tolist() == rows
    terminal = reference["terminals"]
    assert terminal.sum() == 1
    for key, expected in reference.items():
        got = getattr(view.dataset, key)
        if key == "next_observations":  # the one documented difference: terminal rows keep the stored s'
            np.testing.assert_array_equal(got[~terminal], expected[~terminal])
            np.testing.assert_array_equal(got[terminal], dataset.next_observations[view.index[terminal]])
            assert not np.array_equal(got[terminal], expected[terminal])
        else:
            np.testing.assert_array_equal(got, expected)
    assert 24 not in view.index and 39 not in view.index  # the time-out row and the last row are dropped
    np.testing.assert_array_equal(view.dataset.observations, dataset.observations[view.index])
    # episode ends in the view: the terminal (row 9), the step before the dropped time-out (23), the end
    ends = view.index[view.dataset.episode_ends()]
    assert ends.tolist() == [9, 23, 38]
    assert view.dataset.terminals[view.index == 9].all() and not view.dataset.timeouts[view.index == 9].any()


def test_qlearning_view_reads_next_states_as_d4rl_does() -> None:
    """Where a stored s' disagrees with observations[i + 1] on a non-terminal row, the view follows D4RL."""
    dataset = make_offline()
    arrays = raw_arrays(dataset)
    arrays["next_observations"] = arrays["next_observations"] + 1.0
    shifted = OfflineDataset(**arrays)
    view = qlearning_dataset(shifted)
    _, reference = d4rl_reference(arrays)
    live = ~reference["terminals"]
    np.testing.assert_array_equal(view.dataset.next_observations[live], reference["next_observations"][live])


def d4rl_layout(dataset: OfflineDataset, with_next: bool) -> dict[str, np.ndarray]:
    """What D4RL's files hold: locomotion v2 with next_observations, AntMaze and Adroit without."""
    arrays = raw_arrays(dataset)
    if not with_next:
        arrays.pop("next_observations")
    n = len(dataset)
    arrays.update({"infos/qpos": np.zeros((n, 5)), "infos/goal": np.ones((n, 2)),
                   "infos/action_log_probs": np.zeros(n), "metadata/algorithm": np.bytes_(b"SAC"),
                   "metadata/policy/fc0/weight": np.zeros((4, 3), dtype=np.float32)})
    return arrays


@pytest.mark.parametrize("with_next", [True, False])
@pytest.mark.parametrize("float_flags", [False, True])
def test_published_layouts_load(tmp_path: Path, with_next: bool, float_flags: bool) -> None:
    """gzip, infos/* and metadata/* groups, float 0/1 flags, with or without next_observations."""
    dataset = make_offline()
    arrays = d4rl_layout(dataset, with_next)
    if float_flags:
        arrays["terminals"] = arrays["terminals"].astype(np.float32)
        arrays["timeouts"] = arrays["timeouts"].astype(np.float64)
    path = tmp_path / "layout.hdf5"
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            options = {"compression": "gzip"} if np.ndim(value) else {}
            handle.create_dataset(key, data=value, **options)
        handle.attrs["env_name"] = "toy-v2"
    loaded = load_d4rl_hdf5(path)
    for key in ("observations", "actions", "rewards", "terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(dataset, key))
    assert loaded.terminals.dtype == bool and loaded.timeouts.dtype == bool
    if with_next:
        np.testing.assert_array_equal(loaded.next_observations, dataset.next_observations)
    else:  # derived as D4RL does: row i + 1's observation; the last row repeats its own
        np.testing.assert_array_equal(loaded.next_observations[:-1], dataset.observations[1:])
        np.testing.assert_array_equal(loaded.next_observations[-1], dataset.observations[-1])
    view = qlearning_dataset(loaded)
    rows, reference = d4rl_reference(arrays)
    assert view.index.tolist() == rows
    live = ~reference["terminals"]
    np.testing.assert_array_equal(view.dataset.next_observations[live], reference["next_observations"][live])
    if not with_next:  # no stored s' to keep: the view equals D4RL's on every row, terminal ones too
        np.testing.assert_array_equal(view.dataset.next_observations, reference["next_observations"])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: a.pop("timeouts"), "missing key 'timeouts'"),
        (lambda a: a.update(terminals=np.where(np.arange(40) == 5, np.nan, 0.0)),
         r"key 'terminals' holds 1 values other than 0 and 1 \(e.g. \['nan'\]\)"),
        (lambda a: a.update(timeouts=np.full(40, 2, dtype=np.int8)), r"key 'timeouts' holds 40 values other"),
        (lambda a: a.update(rewards=np.array([b"x"] * 40)),
         r"key 'rewards' holds dtype \|S1; expected numbers"),
        (lambda a: a.update(rewards=np.zeros((40, 3))), "key 'rewards' has shape"),
        (lambda a: a.update(actions=np.zeros((39, 2))), "key 'actions' has 39 rows; expected 40"),
        (lambda a: a.update(observations=np.zeros(40)), "key 'observations' has shape"),
        (lambda a: a["rewards"].__setitem__(3, np.nan), "'rewards' holds 1 NaN"),
        (lambda a: a["observations"].__setitem__((0, 0), np.inf), "'observations' holds 1 NaN, infinite"),
        (lambda a: a.update(next_observations=np.zeros((40, 4))), "'next_observations' has shape"),
    ],
)
def test_bad_content_is_named(tmp_path: Path, change, match: str) -> None:
    arrays = {k: v.copy() for k, v in raw_arrays(make_offline()).items()}
    change(arrays)
    path = write_raw(tmp_path / "bad.hdf5", arrays)
    with pytest.raises(DataFormatError, match=match) as info:
        load_d4rl_hdf5(path)
    assert str(path) in str(info.value)


def test_empty_missing_and_truncated_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.hdf5"
    empty.write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"empty.hdf5: the file is empty"):
        load_d4rl_hdf5(empty)
    with pytest.raises(DataFormatError, match=r"nothere.hdf5: no such file"):
        load_d4rl_hdf5(tmp_path / "nothere.hdf5")
    big = make_offline(n=5000)
    path = write_d4rl_hdf5(tmp_path / "full.hdf5", big)
    data = path.read_bytes()
    cut = tmp_path / "cut.hdf5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match=r"cut.hdf5") as info:
        load_d4rl_hdf5(cut)
    assert "truncated" in str(info.value) or "HDF5" in str(info.value)
    no_rows = {k: v[:0] for k, v in raw_arrays(big).items()}
    with pytest.raises(DataFormatError, match=r"empty"):
        load_d4rl_hdf5(write_raw(tmp_path / "zero.hdf5", no_rows))


def test_group_where_a_dataset_belongs(tmp_path: Path) -> None:
    arrays = raw_arrays(make_offline())
    path = tmp_path / "group.hdf5"
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            if key == "actions":
                handle.create_dataset("actions/joint", data=value)
            else:
                handle.create_dataset(key, data=value)
    with pytest.raises(DataFormatError, match=r"group.hdf5: key 'actions' is a Group; expected an HDF5 data"):
        load_d4rl_hdf5(path)


def test_claimed_size_beyond_stored_bytes(tmp_path: Path) -> None:
    """A header that claims a huge shape with nothing stored is refused before any allocation."""
    arrays = raw_arrays(make_offline())
    path = tmp_path / "huge.hdf5"
    with h5py.File(path, "w") as handle:
        for key, value in arrays.items():
            if key == "observations":
                handle.create_dataset(key, shape=(10**9, 3), dtype=np.float32, chunks=(1024, 3))
            else:
                handle.create_dataset(key, data=value)
    with pytest.raises(DataFormatError, match=r"huge.hdf5: key 'observations' claims shape \(1000000000, 3"):
        load_d4rl_hdf5(path)
