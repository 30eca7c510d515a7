"""MetaWorld generator (IPL App. B.3) at smoke size, and the manifest cache that re-uses its files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ipl_core.data import load_d4rl_hdf5, load_preferences
from ipl_core.data.metaworld_gen import (
    GOAL,
    OBJECTS,
    SOURCES,
    MetaWorldRecipe,
    _wrong_goal_view,
    collect_source,
    generate_metaworld,
    measure_sources,
)
from ipl_core.data.store import cached, data_root, manifest_path

pytest.importorskip("metaworld")

SMOKE = MetaWorldRecipe(task="drawer-open", episodes_per_source=2, episode_length=30, query_counts=(5, 8),
                        segment_length=10, seed=3)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("data")
    return root, generate_metaworld(SMOKE, root=root, progress=False)


def test_layout_and_content(generated) -> None:
    root, out = generated
    assert out.offline.parent == root / "metaworld" / "drawer-open" / SMOKE.tag()
    assert not any(out.reused.values())
    offline = load_d4rl_hdf5(out.offline)
    assert len(offline) == len(SOURCES) * 2 * 30 and offline.obs_dim == 39 and offline.act_dim == 4
    assert not offline.terminals.any()
    assert np.flatnonzero(offline.timeouts).tolist() == list(range(29, 240, 30))
    assert np.abs(offline.actions).max() <= 1.0
    for count, path in out.preferences.items():
        prefs = load_preferences(path)
        assert len(prefs) == count and prefs.segment_length == 10
        r1, r2 = prefs.reward_1.sum(axis=1), prefs.reward_2.sum(axis=1)
        np.testing.assert_array_equal(prefs.label, np.where(r1 > r2, 1.0, np.where(r1 < r2, 0.0, 0.5)))
    manifest = json.loads(manifest_path(out.offline).read_text())
    assert manifest["generator"] == "metaworld/offline" and manifest["seed"] == 3
    assert manifest["packages"]["metaworld"] != "missing" and len(manifest["sha256"]) == 64


def test_second_run_reuses_everything(generated) -> None:
    root, first = generated
    again = generate_metaworld(SMOKE, root=root, progress=False)
    assert all(again.reused.values())
    assert again.offline == first.offline


def test_goals_change_between_episodes_and_seed_reproduces() -> None:
    recipe = MetaWorldRecipe(task="button-press", episodes_per_source=3, episode_length=5, seed=1)
    offline, extras = collect_source(recipe, "expert", progress=False)
    starts = offline.observations[::5]
    assert len({tuple(np.round(s[4:7], 5)) for s in starts}) == 3  # the button moves between episodes
    again, _ = collect_source(recipe, "expert", progress=False)
    np.testing.assert_array_equal(offline.observations, again.observations)
    np.testing.assert_array_equal(offline.actions, again.actions)
    other, _ = collect_source(MetaWorldRecipe(task="button-press", episodes_per_source=3, episode_length=5,
                                              seed=2), "expert", progress=False)
    assert not np.array_equal(other.observations, offline.observations)
    assert extras["episode"].tolist() == [0] * 5 + [1] * 5 + [2] * 5


def test_wrong_goal_view_moves_goal_and_objects() -> None:
    first = np.arange(39, dtype=float)
    decoy = first + 100.0
    view = _wrong_goal_view(first, decoy)
    later = first + 1.0
    seen = view(later)
    np.testing.assert_array_equal(seen[GOAL], decoy[GOAL])
    for part in OBJECTS:
        np.testing.assert_array_equal(seen[part], later[part] + 100.0)
    np.testing.assert_array_equal(seen[:4], later[:4])  # the hand is where it is
    np.testing.assert_array_equal(later, first + 1.0)  # the real observation is not modified


def test_cache_rebuilds_on_new_parameters_or_tampering(tmp_path: Path) -> None:
    calls = []

    def build(tmp: Path) -> None:
        calls.append(1)
        tmp.write_text(f"build {len(calls)}")

    path = tmp_path / "x.txt"
    assert cached(path, "g", {"a": 1}, 0, build) == (path, False)
    assert cached(path, "g", {"a": 1}, 0, build) == (path, True)
    assert cached(path, "g", {"a": 2}, 0, build) == (path, False)
    assert cached(path, "g", {"a": 2}, 1, build) == (path, False)
    path.write_text("tampered")
    assert cached(path, "g", {"a": 2}, 1, build) == (path, False)
    assert len(calls) == 4 and path.read_text() == "build 4"


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def build(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cached(tmp_path / "y.txt", "g", {}, 0, build)
    assert [p.name for p in tmp_path.iterdir()] == ["y.txt.lock"]  # no data, no manifest: only the lock


def test_data_root_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IPL_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path
    monkeypatch.delenv("IPL_DATA_DIR")
    assert data_root().name == "data"


def test_bad_recipe_and_task() -> None:
    with pytest.raises(ValueError, match=r"episode_length must lie in \[1, 500\]"):
        MetaWorldRecipe(episode_length=600)
    with pytest.raises(KeyError, match="unknown MetaWorld task 'no-such-task'"):
        collect_source(MetaWorldRecipe(task="no-such-task", episodes_per_source=1, episode_length=2),
                       "expert")


@pytest.mark.slow
def test_sources_are_ordered_by_return() -> None:
    """Full-length episodes: the noisy expert earns more than random actions (IPL App. B.3's premise)."""
    rows = {row["source"]: row for row in measure_sources(
        MetaWorldRecipe(task="drawer-open", episodes_per_source=3, episode_length=500))}
    assert rows["expert"]["mean_return"] > rows["random"]["mean_return"]
    assert rows["expert"]["success_rate"] >= rows["random"]["success_rate"]
