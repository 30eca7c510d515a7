"""Damaged files of every layout: each load ends in a DataFormatError that names the file, or a correct load.

Real-layout files (D4RL with and without ``next_observations``, Robomimic, Preference Transformer label
pickles, the native ``.npz`` plain and compressed, a local Minari dataset) are damaged with a fixed seed:
truncation, overwritten and flipped bytes, and hand-made layout damage (wrong dtypes, groups where datasets
belong, NaN flags, ragged and out-of-range labels). Nothing may be written beside the files. A load that
succeeds must equal the damaged files read plainly (h5py, np.load, pickle), so damage that lands in the
data itself loads as what the file now holds, and nothing is silently changed on the way.
"""

from __future__ import annotations

import importlib.util
import pickle
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ipl_core.data import (
    DataFormatError,
    OfflineDataset,
    PreferenceDataset,
    load_d4rl_hdf5,
    load_preferences,
    load_pt_human_labels,
    load_robomimic_hdf5,
    qlearning_dataset,
    save_preferences,
)

SEED = 17
BYTE_CASES = 45
"""Byte-level damages per damaged file."""

ROBO_KEYS = ("object", "robot0_eef_pos")


@dataclass
class Layout:
    """One file layout: a folder of files, the loader that reads it, and what a correct load looks like."""

    name: str
    files: dict[str, bytes]
    """Relative path -> bytes of the undamaged layout."""
    targets: tuple[str, ...]
    """The files that byte damage is applied to."""
    load: Callable[[Path], Any]
    check: Callable[[Any, Path], None]
    """Asserts that a successful load is well formed and equals the case folder's files read plainly."""


def offline_arrays(n: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    """Episodes of 100 steps: a terminal at row 49, time-outs at 149 and 249."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n + 1, 4)).astype(np.float32)
    terminals = np.zeros(n, dtype=bool)
    timeouts = np.zeros(n, dtype=bool)
    terminals[49] = True
    timeouts[[149, 249]] = True
    return {"observations": obs[:-1], "actions": rng.normal(size=(n, 2)).astype(np.float32),
            "next_observations": obs[1:], "rewards": rng.normal(size=n).astype(np.float32),
            "terminals": terminals, "timeouts": timeouts}


def hdf5_bytes(folder: Path, name: str, datasets: dict[str, Any], compression: str | None) -> bytes:
    path = folder / name
    with h5py.File(path, "w") as handle:
        for key, value in datasets.items():
            if isinstance(value, dict):  # a group where a dataset belongs
                for sub, array in value.items():
                    handle.create_dataset(f"{key}/{sub}", data=array)
                continue
            options = {"compression": compression} if compression and np.ndim(value) else {}
            handle.create_dataset(key, data=value, **options)
    return path.read_bytes()


def check_offline(result: Any, n: int, obs_dim: int, act_dim: int) -> None:
    assert isinstance(result, OfflineDataset)
    assert (len(result), result.obs_dim, result.act_dim) == (n, obs_dim, act_dim)
    assert result.terminals.dtype == bool and result.timeouts.dtype == bool
    for array in (result.observations, result.actions, result.next_observations, result.rewards):
        assert array.dtype == np.float32 and np.isfinite(array).all()


def check_d4rl(result: Any, case: Path) -> None:
    """The loaded rows equal the file's arrays read plainly with h5py."""
    check_offline(result, 300, 4, 2)
    with h5py.File(case / "d.hdf5") as handle:
        raw = {key: np.asarray(handle[key]) for key in handle if isinstance(handle[key], h5py.Dataset)}
    for key in ("observations", "actions", "rewards"):
        np.testing.assert_array_equal(getattr(result, key), raw[key].astype(np.float32))
    for key in ("terminals", "timeouts"):
        np.testing.assert_array_equal(getattr(result, key), raw[key].astype(bool))
    expected_next = raw.get("next_observations", np.concatenate([raw["observations"][1:],
                                                                  raw["observations"][-1:]]))
    np.testing.assert_array_equal(result.next_observations, expected_next.astype(np.float32))


def d4rl_layouts(folder: Path) -> Iterator[Layout]:
    arrays = offline_arrays()
    extras = {"infos/qpos": np.zeros((300, 3)), "metadata/algorithm": np.bytes_(b"SAC")}
    check = check_d4rl
    load = lambda case: load_d4rl_hdf5(case / "d.hdf5")  # noqa: E731
    yield Layout("d4rl-gzip", {"d.hdf5": hdf5_bytes(folder, "a.hdf5", arrays | extras, "gzip")},
                 ("d.hdf5",), load, check)
    without = {k: v for k, v in arrays.items() if k != "next_observations"}
    yield Layout("d4rl-no-next", {"d.hdf5": hdf5_bytes(folder, "b.hdf5", without | extras, None)},
                 ("d.hdf5",), load, check)
    damage: list[tuple[str, Callable[[dict], None]]] = [
        ("group", lambda a: a.update(rewards={"r": a["rewards"]})),
        ("group-obs", lambda a: a.update(observations={"0": a["observations"]})),
        ("nan-terminals", lambda a: a.update(terminals=np.where(a["terminals"], np.nan, 0.0))),
        ("two-timeouts", lambda a: a.update(timeouts=a["timeouts"].astype(np.int8) * 2)),
        ("string-rewards", lambda a: a.update(rewards=a["rewards"].astype("S8"))),
        ("complex-actions", lambda a: a.update(actions=a["actions"].astype(np.complex64))),
        ("compound-obs", lambda a: a.update(observations=np.zeros(300, dtype=[("x", "f4"), ("y", "i4")]))),
        ("scalar-rewards", lambda a: a.update(rewards=np.float32(1.0))),
        ("rank-3-obs", lambda a: a.update(observations=a["observations"][:, :, None].repeat(2, axis=2))),
        ("short-actions", lambda a: a.update(actions=a["actions"][:-1])),
        ("wide-next", lambda a: a.update(next_observations=np.zeros((300, 5), np.float32))),
        ("inf-obs", lambda a: a["observations"].__setitem__((3, 1), np.inf)),
        ("huge-obs", lambda a: a.update(observations=np.full((300, 4), 1e300))),
        ("no-terminals", lambda a: a.pop("terminals")),
        ("empty", lambda a: a.update({k: v[:0] for k, v in a.items()})),
    ]
    for label, change in damage:
        changed = {k: v.copy() for k, v in arrays.items()}
        change(changed)
        data = hdf5_bytes(folder, f"{label}.hdf5", changed, None)
        yield Layout(f"d4rl-{label}", {"d.hdf5": data}, (), load, check)


def robomimic_layouts(folder: Path) -> Iterator[Layout]:
    def demos(lengths: dict[str, int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for demo, steps in lengths.items():
            dones = np.zeros(steps)
            dones[-1] = 1
            out[f"data/{demo}/actions"] = np.full((steps, 2), float(len(out)), dtype=np.float32)
            out[f"data/{demo}/rewards"] = np.arange(steps, dtype=np.float32)
            out[f"data/{demo}/dones"] = dones
            for k, key in enumerate(ROBO_KEYS):
                out[f"data/{demo}/obs/{key}"] = np.ones((steps, k + 1), dtype=np.float32) * k
        return out

    base = demos({"demo_0": 30, "demo_1": 25, "demo_10": 40, "demo_2": 20})
    load = lambda case: load_robomimic_hdf5(case / "low_dim.hdf5", obs_keys=ROBO_KEYS)  # noqa: E731
    def check(result: Any, case: Path) -> None:
        """Rows equal each demo's arrays read plainly, in h5py's order, without each demo's last step."""
        check_offline(result, 29 + 24 + 39 + 19, 3, 2)
        with h5py.File(case / "low_dim.hdf5") as handle:
            demos = [handle["data"][demo] for demo in handle["data"]]
            actions = np.concatenate([np.asarray(d["actions"])[:-1] for d in demos])
            rewards = np.concatenate([np.asarray(d["rewards"])[:-1] for d in demos])
            obs = np.concatenate([np.concatenate([np.asarray(d["obs"][k]).reshape(len(d["actions"]), -1)
                                                  for k in ROBO_KEYS], axis=1)[:-1] for d in demos])
        np.testing.assert_array_equal(result.actions, actions.astype(np.float32))
        np.testing.assert_array_equal(result.rewards, rewards.astype(np.float32))
        np.testing.assert_array_equal(result.observations, obs.astype(np.float32))

    yield Layout("robomimic-gzip", {"low_dim.hdf5": hdf5_bytes(folder, "r.hdf5", base, "gzip")},
                 ("low_dim.hdf5",), load, check)
    yield Layout("robomimic", {"low_dim.hdf5": hdf5_bytes(folder, "r2.hdf5", base, None)},
                 ("low_dim.hdf5",), load, check)
    damage: list[tuple[str, Callable[[dict], None]]] = [
        ("group-actions", lambda a: a.update({"data/demo_1/actions": {"x": np.zeros((25, 2))}})),
        ("nan-dones", lambda a: a.update({"data/demo_0/dones": np.full(30, np.nan)})),
        ("string-obs", lambda a: a.update({"data/demo_2/obs/object": np.array([b"a"] * 20)})),
        ("wide-actions", lambda a: a.update({"data/demo_2/actions": np.zeros((20, 3))})),
        ("obs-dataset", lambda a: [a.pop(k) for k in list(a) if k.startswith("data/demo_1/obs")]
         and a.update({"data/demo_1/obs": np.zeros((25, 3))})),
    ]
    for label, change in damage:
        changed = dict(base)
        change(changed)
        data = hdf5_bytes(folder, f"r-{label}.hdf5", changed, None)
        yield Layout(f"robomimic-{label}", {"low_dim.hdf5": data}, (), load, check)
    data_dataset = {"data": np.zeros(3), "mask/x": np.zeros(2)}
    data = hdf5_bytes(folder, "r-d.hdf5", data_dataset, None)
    yield Layout("robomimic-data-dataset", {"low_dim.hdf5": data}, (), load, check)


def native_layouts(folder: Path) -> Iterator[Layout]:
    rng = np.random.default_rng(1)
    n, length = 20, 8
    prefs = PreferenceDataset(
        obs_1=rng.normal(size=(n, length, 3)), obs_2=rng.normal(size=(n, length, 3)),
        action_1=rng.normal(size=(n, length, 2)), action_2=rng.normal(size=(n, length, 2)),
        label=rng.choice([0.0, 0.5, 1.0], size=n), reward_1=rng.normal(size=(n, length)),
        reward_2=rng.normal(size=(n, length)),
    )
    plain = save_preferences(folder / "p.npz", prefs).read_bytes()
    arrays = {k: getattr(prefs, k) for k in ("obs_1", "obs_2", "action_1", "action_2", "label", "reward_1",
                                             "reward_2")}
    np.savez_compressed(folder / "c.npz", **arrays)

    def check(result: Any, case: Path) -> None:
        assert isinstance(result, PreferenceDataset)
        assert (len(result), result.segment_length, result.obs_dim, result.act_dim) == (n, length, 3, 2)
        with np.load(case / "p.npz") as archive:
            for key in set(archive.files) & set(arrays):  # other members are ignored by the loader
                np.testing.assert_array_equal(getattr(result, key), archive[key])

    load = lambda case: load_preferences(case / "p.npz")  # noqa: E731
    yield Layout("native", {"p.npz": plain}, ("p.npz",), load, check)
    yield Layout("native-compressed", {"p.npz": (folder / "c.npz").read_bytes()}, ("p.npz",), load, check)
    damage: list[tuple[str, Callable[[dict], None]]] = [
        ("object-label", lambda a: a.update(label=np.array([None] * n))),
        ("string-obs", lambda a: a.update(obs_1=np.full((n, length, 3), "a"))),
        ("scalar-action", lambda a: a.update(action_1=np.float64(0.0))),
        ("label-2", lambda a: a.update(label=np.full(n, 2.0))),
        ("nan-reward", lambda a: a["reward_1"].__setitem__((0, 0), np.nan)),
        ("short-obs", lambda a: a.update(obs_2=a["obs_2"][:, :-1])),
    ]
    for label, change in damage:
        changed = {k: v.copy() for k, v in arrays.items()}
        change(changed)
        np.savez(folder / f"{label}.npz", **changed)  # allow_pickle is on when saving: objects get in
        yield Layout(f"native-{label}", {"p.npz": (folder / f"{label}.npz").read_bytes()}, (), load, check)


def pt_layouts(view: OfflineDataset) -> Iterator[Layout]:
    # view rows: episode 0..48 (terminal), 50..148 -> 49..147, then 148..246, then 247..297
    starts_1 = [0, 60, 150, 250, 10, 100, 200, 30]
    starts_2 = [20, 70, 160, 260, 25, 120, 220, 5]
    labels = [0, 1, -1, 0, 1, 1, 0, -1]
    n, length = len(labels), 10

    def folder_files(first: Any, second: Any, label: Any) -> dict[str, bytes]:
        return {f"lab/indices_num{n}_q{length}": pickle.dumps(first),
                f"lab/indices_2_num{n}_q{length}": pickle.dumps(second),
                "lab/label_human": pickle.dumps(label)}

    def check(result: Any, case: Path) -> None:
        """Labels and segments equal what the pickles, read plainly, say."""
        assert isinstance(result, PreferenceDataset)
        assert 1 <= len(result) <= n and result.segment_length == length and result.obs_dim == 4
        first, second, label = (pickle.loads((case / name).read_bytes()) for name in folder_files(0, 0, 0))
        expected = np.array([{0: 1.0, 1: 0.0, -1: 0.5}[int(v)] for v in label])
        np.testing.assert_array_equal(result.label, expected)
        np.testing.assert_array_equal(result.obs_1[:, 0], view.observations[np.asarray(first, dtype=int)])
        np.testing.assert_array_equal(result.obs_2[:, 0], view.observations[np.asarray(second, dtype=int)])

    load = lambda case: load_pt_human_labels(case / "lab", view)  # noqa: E731
    base = folder_files(starts_1, np.array(starts_2, dtype=np.int32), labels)
    yield Layout("pt", base, tuple(base), load, check)
    odd: list[tuple[str, Any, Any, Any]] = [
        ("ragged", starts_1, starts_2, [[0, 1], [1]] * 4),
        ("label-2", starts_1, starts_2, [0, 2] * 4),
        ("float-labels", starts_1, starts_2, np.array(labels, dtype=float)),
        ("past-end", [*starts_1[:-1], 295], starts_2, labels),
        ("negative", starts_1, [-1, *starts_2[1:]], labels),
        ("crossing", [*starts_1[:-1], 45], starts_2, labels),
        ("huge-start", [*starts_1[:-1], 2**62], starts_2, labels),
        ("too-big-int", [*starts_1[:-1], 2**70], starts_2, labels),
        ("uint64", np.array([*starts_1[:-1], 2**63 + 3], dtype=np.uint64), starts_2, labels),
        ("dict", {"a": 1}, starts_2, labels),
        ("2d", [starts_1, starts_1], starts_2, labels),
        ("short", starts_1[:-2], starts_2, labels),
        ("none", None, starts_2, labels),
        ("strings", [str(s) for s in starts_1], starts_2, labels),
        ("empty", [], [], []),
    ]
    for label, first, second, lab in odd:
        yield Layout(f"pt-{label}", folder_files(first, second, lab), (), load, check)


def minari_layout(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Layout]:
    if importlib.util.find_spec("minari") is None:  # an optional dependency (the "envs" extra)
        return
    import gymnasium as gym
    import minari
    from minari.data_collector import EpisodeBuffer

    from ipl_core.data.minari_io import load_minari

    root = folder / "minari"
    rng = np.random.default_rng(2)
    buffers = []
    for episode, (steps, terminated) in enumerate(((12, False), (9, True), (15, False))):
        buffers.append(EpisodeBuffer(
            id=episode, observations=list(rng.normal(size=(steps + 1, 3)).astype(np.float32)),
            actions=list(rng.uniform(-2, 2, size=(steps, 1)).astype(np.float32)),
            rewards=list(rng.normal(size=steps)), terminations=[False] * (steps - 1) + [terminated],
            truncations=[False] * (steps - 1) + [not terminated],
        ))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    env = gym.make("Pendulum-v1")
    minari.create_dataset_from_buffers(
        "toy/fuzz-v0", buffers, env=env, eval_env=env, algorithm_name="random", author="test",
        author_email="test@example.org", code_permalink="none", description="three toy episodes",
    )
    monkeypatch.delenv("MINARI_DATASETS_PATH")
    data = root / "toy" / "fuzz-v0" / "data"
    files = {f"toy/fuzz-v0/data/{p.name}": p.read_bytes() for p in data.iterdir() if p.is_file()}
    targets = tuple(sorted(files))
    yield Layout("minari", files, targets, lambda case: load_minari("toy/fuzz-v0", root=case),
                 lambda result, case: check_offline(result, 36, 3, 1))


def damage_bytes(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random byte-level damage: truncation, overwritten bytes, flipped bits or a zeroed block."""
    kind = ("truncate", "overwrite", "flip", "zero")[int(rng.integers(4))]
    size = len(data)
    buffer = bytearray(data)
    if kind == "truncate":
        return kind, bytes(buffer[: int(rng.integers(1, size))])
    at = int(rng.integers(size))
    if kind == "overwrite":
        count = len(buffer[at:at + int(rng.integers(1, 17))])
        buffer[at:at + count] = rng.integers(0, 256, size=count, dtype=np.uint8).tobytes()
    elif kind == "flip":
        for _ in range(int(rng.integers(1, 4))):
            where = int(rng.integers(size))
            buffer[where] ^= 1 << int(rng.integers(8))
    else:
        count = len(buffer[at:at + int(rng.integers(1, 65))])
        buffer[at:at + count] = bytes(count)
    return kind, bytes(buffer)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def run_case(layout: Layout, files: dict[str, bytes], damaged: str | None, case: Path) -> str:
    """Write ``files`` into a fresh ``case`` folder, load them, and check the outcome; returns it."""
    shutil.rmtree(case, ignore_errors=True)
    for name, data in files.items():
        (case / name).parent.mkdir(parents=True, exist_ok=True)
        (case / name).write_bytes(data)
    before = snapshot(case)
    try:
        result = layout.load(case)
    except DataFormatError as error:
        names = [str(case / name) for name in files] + [str(case / Path(name).parent) for name in files]
        assert any(name in str(error) for name in names), f"{layout.name} {damaged}: {error} names no file"
        outcome = "error"
    else:
        layout.check(result, case)
        outcome = "loaded"
    assert snapshot(case) == before, f"{layout.name} {damaged}: the loader wrote into the folder"
    return outcome


def test_damaged_files_raise_named_errors_or_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = tmp_path / "build"
    build.mkdir()
    view = qlearning_dataset(OfflineDataset(**offline_arrays())).dataset
    layouts = [*d4rl_layouts(build), *robomimic_layouts(build), *native_layouts(build), *pt_layouts(view),
               *minari_layout(build, monkeypatch)]
    rng = np.random.default_rng(SEED)
    outcomes: Counter[tuple[str, str]] = Counter()
    for layout in layouts:
        expected = "loaded" if layout.targets else "error"  # hand-made damage must be caught
        assert run_case(layout, layout.files, None, tmp_path / "case") == expected, layout.name
        for target in layout.targets:
            for _ in range(BYTE_CASES):
                kind, data = damage_bytes(layout.files[target], rng)
                files = layout.files | {target: data}
                outcome = run_case(layout, files, f"{target} ({kind})", tmp_path / "case")
                outcomes[(layout.name, outcome)] += 1
    total = sum(outcomes.values())
    print(f"{total} damaged files: {dict(sorted(outcomes.items()))}")
    assert total >= 400, outcomes
    for name in {layout.name for layout in layouts if layout.targets}:
        assert outcomes[(name, "error")] > 0, f"no damage to {name} was detected: {outcomes}"
