"""The native .npz preference format: round trip and clear errors on bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ipl_core.data import DataFormatError, PreferenceDataset, load_preferences, save_preferences


def make_prefs(n: int = 6, length: int = 4, with_truth: bool = True) -> PreferenceDataset:
    rng = np.random.default_rng(0)
    truth = {}
    if with_truth:
        truth = {"reward_1": rng.normal(size=(n, length)), "reward_2": rng.normal(size=(n, length)),
                 "terminal_1": np.zeros((n, length)), "terminal_2": np.zeros((n, length))}
    return PreferenceDataset(
        obs_1=rng.normal(size=(n, length, 3)), obs_2=rng.normal(size=(n, length, 3)),
        action_1=rng.normal(size=(n, length, 2)), action_2=rng.normal(size=(n, length, 2)),
        label=np.array([0.0, 0.5, 1.0, 1.0, 0.0, 0.5])[:n], **truth,
    )


@pytest.mark.parametrize("with_truth", [True, False])
def test_round_trip(tmp_path: Path, with_truth: bool) -> None:
    prefs = make_prefs(with_truth=with_truth)
    path = save_preferences(tmp_path / "p.npz", prefs)
    assert path.name == "p.npz" and not list(tmp_path.glob(".*"))
    loaded = load_preferences(path)
    for key in ("obs_1", "obs_2", "action_1", "action_2", "label", "reward_1", "terminal_2"):
        expected = getattr(prefs, key)
        if expected is None:
            assert getattr(loaded, key) is None
        else:
            np.testing.assert_array_equal(getattr(loaded, key), expected)


def _arrays(prefs: PreferenceDataset) -> dict[str, np.ndarray]:
    return {k: getattr(prefs, k) for k in ("obs_1", "obs_2", "action_1", "action_2", "label", "reward_1")}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: a.pop("action_2"), r"missing key\(s\) \['action_2'\]"),
        (lambda a: a.update(label=np.array([0, 1, 2, 1, 0, 1.0])), r"field 'label' holds \[2.0\]"),
        (lambda a: a.update(label=np.array([-1.0, 1, 1, 1, 0, 1])), r"field 'label' holds \[-1.0\]"),
        (lambda a: a.update(obs_2=np.zeros((6, 5, 3))), r"field 'obs_2' has shape \(6, 5, 3\)"),
        (lambda a: a.update(reward_1=np.full((6, 4), np.nan)), "field 'reward_1' holds 24 NaN"),
        (lambda a: a.update(label=np.zeros((6, 2))), r"key 'label' has shape \(6, 2\); expected \(N,\)"),
        (lambda a: a.update(label=np.zeros(0)), "no preference pairs"),
    ],
)
def test_bad_content_is_named(tmp_path: Path, change, match: str) -> None:
    arrays = _arrays(make_prefs())
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataFormatError, match=match) as info:
        load_preferences(path)
    assert str(path) in str(info.value)


def test_empty_and_truncated_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(DataFormatError, match=r"empty.npz: the file is empty"):
        load_preferences(empty)
    path = save_preferences(tmp_path / "p.npz", make_prefs())
    cut = tmp_path / "cut.npz"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataFormatError, match=r"cut.npz: cannot be read .*expected a preference .npz"):
        load_preferences(cut)


def test_damaged_compressed_member_is_named(tmp_path: Path) -> None:
    """A bit flipped inside a deflated member makes zlib fail; the error must name the file."""
    path = tmp_path / "c.npz"
    np.savez_compressed(path, **_arrays(make_prefs()))
    data = bytearray(path.read_bytes())
    data[120] ^= 0xFF  # inside the first member's deflate stream, after its 30-byte header and name
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match=r"c.npz: cannot be read \(error: Error -3 while decompressing"):
        load_preferences(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: a.update(obs_1=np.full((6, 4, 3), "x")), r"key 'obs_1' holds dtype <U1; expected numbers"),
        (lambda a: a.update(action_1=np.zeros(6)), r"key 'action_1' has shape \(6,\); expected \(N, S, d"),
        (lambda a: a.update(label=np.float64(1.0)), r"key 'label' has shape \(\); expected \(N,\)"),
        (lambda a: a.update(reward_1=np.zeros((6, 4), complex)), r"key 'reward_1' holds dtype complex128"),
    ],
)
def test_wrong_dtypes_and_ranks_are_named(tmp_path: Path, change, match: str) -> None:
    arrays = _arrays(make_prefs())
    change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataFormatError, match=match):
        load_preferences(path)
