"""D4RL-style datasets from SAC: the five files, their layout, episode ends, the medium pick, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ipl_core.data.d4rl import load_d4rl_hdf5
from ipl_core.data.store import read_manifest, sha256_file
from ipl_core.experiments.results import load_study
from ipl_core.online import locomotion_data
from ipl_core.online.locomotion_data import (
    DATASETS,
    PROFILES,
    RECIPES,
    LocomotionRecipe,
    generate_locomotion,
    pick_medium,
    random_policy_return,
    recipe_for,
    replay_dataset,
    save_locomotion_results,
)
from ipl_core.online.replay import ReplayBuffer

torch.set_num_threads(1)

TINY = {"task": "gym:Pendulum-v1", "train_steps": 300, "collect_steps": 150, "hidden_dim": 32,
        "batch_size": 32, "num_seed_steps": 100, "eval_interval": 100, "eval_episodes": 1,
        "checkpoint_interval": 0}


@pytest.fixture
def very_bad_random_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """300 steps teach Pendulum little: a random return far below makes every snapshot count as medium."""
    monkeypatch.setattr(locomotion_data, "random_policy_return", lambda *args: -1e9)


def test_generates_the_five_datasets(tmp_path: Path, very_bad_random_policy: None) -> None:
    paths = generate_locomotion(LocomotionRecipe(**TINY), tmp_path, progress=False)
    assert sorted(paths) == sorted(DATASETS)
    data = {name: load_d4rl_hdf5(path) for name, path in paths.items()}
    assert len(data["full-replay"]) == 300
    assert len(data["medium-replay"]) == 100  # the buffer up to the first snapshot above the threshold
    for name in ("observations", "actions", "rewards"):
        assert np.array_equal(getattr(data["medium-replay"], name), getattr(data["full-replay"], name)[:100])
    assert data["medium-replay"].timeouts[-1] and not data["full-replay"].timeouts[99]
    assert len(data["medium"]) == len(data["expert"]) == 150 and len(data["medium-expert"]) == 300
    assert np.array_equal(data["medium-expert"].observations[:150], data["medium"].observations)
    for d in data.values():
        assert d.obs_dim == 3 and d.act_dim == 1 and np.abs(d.actions).max() <= 1
        assert d.episode_ends()[-1] and not d.terminals.any()  # Pendulum never terminates
        assert np.allclose(d.next_observations[:-1][~d.episode_ends()[:-1]],
                           d.observations[1:][~d.episode_ends()[:-1]])
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["medium_policy"]["step"] == 100 and summary["expert_policy"]["step"] == 300
    assert summary["snapshots"]["step"] == [100, 200, 300] and summary["random_return"] == -1e9
    for name, path in paths.items():  # each file has a manifest whose hash is the file's
        manifest = read_manifest(path)
        assert manifest is not None and manifest["sha256"] == sha256_file(path) == summary["sha256"][name]
        assert manifest["params"]["train_steps"] == 300
    assert summary["episode_returns"]["medium"]["episodes"] == 150 // 200 + 1  # Pendulum: 200-step episodes
    assert set(summary["timings"]) == {"train_seconds", "collect_medium_seconds", "collect_expert_seconds"}
    assert summary["sizes"]["full-replay"] == 300
    saved = load_study("locomotion-datasets", root=save_locomotion_results({"pendulum": tmp_path}, "smoke",
                                                                           tmp_path / "results").parents[1])
    table = saved.tables["datasets"].set_index("dataset")
    assert table.loc["medium-expert", "transitions"] == 300 and table.loc["medium", "policy_step"] == 100
    assert list(saved.tables["evaluations"].step) == [100, 200, 300] and saved.info.steps == 300
    # a second call finds the snapshots and files and does not train again
    again = generate_locomotion(LocomotionRecipe(**TINY), tmp_path, progress=False)
    assert again == paths


def test_a_folder_made_with_another_recipe_is_refused(tmp_path: Path, very_bad_random_policy: None) -> None:
    generate_locomotion(LocomotionRecipe(**TINY), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"another recipe \(collect_steps: 150 there, 160 asked\)"):
        generate_locomotion(LocomotionRecipe(**{**TINY, "collect_steps": 160}), tmp_path, progress=False)


def test_a_snapshot_of_another_actor_layout_is_named(tmp_path: Path, very_bad_random_policy: None) -> None:
    generate_locomotion(LocomotionRecipe(**TINY), tmp_path, progress=False)
    last = sorted((tmp_path / "snapshots").glob("actor_*.pt"))[-1]
    state = torch.load(last, weights_only=False)
    state["actor"] = {k.replace("layers.", ""): v for k, v in state["actor"].items()}  # an older layout
    torch.save(state, last)
    with pytest.raises(ValueError, match=rf"{last.name} holds an actor of another layout .* delete "):
        generate_locomotion(LocomotionRecipe(**TINY), tmp_path, progress=False)


def test_medium_is_the_first_snapshot_a_third_of_the_way_to_the_expert() -> None:
    snapshots = pd.DataFrame({"step": [10, 20, 30, 40], "return": [50.0, 400.0, 300.0, 1000.0]})
    assert pick_medium(snapshots, random_return=100.0, fraction=1 / 3).step == 20  # (400-100)/900 >= 1/3
    assert pick_medium(snapshots, random_return=-500.0, fraction=1 / 3).step == 10  # 550/1500 >= 1/3
    assert pick_medium(snapshots, random_return=100.0, fraction=0.9).step == 40
    assert pick_medium(snapshots, random_return=2000.0, fraction=0.0).step == 10  # smoke: the first one
    with pytest.raises(ValueError, match=r"expert.s evaluation return 1000\.0 is not above the random"):
        pick_medium(snapshots, random_return=1000.0, fraction=1 / 3)


def test_random_policy_return_is_seeded() -> None:
    first = random_policy_return("gym:Pendulum-v1", 2, seed=5)
    assert first == random_policy_return("gym:Pendulum-v1", 2, seed=5) != random_policy_return(
        "gym:Pendulum-v1", 2, seed=6)
    assert -2 * 16.3 * 200 < first < 0  # Pendulum's reward per step lies in [-16.3, 0]


def test_profiles_override_the_recipes() -> None:
    assert recipe_for("walker2d", "full") == RECIPES["walker2d"]
    cpu = recipe_for("hopper", "cpu", seed=3)
    assert (cpu.task, cpu.train_steps, cpu.collect_steps, cpu.seed) == ("gym:Hopper-v5", 100_000, 100_000, 3)
    assert set(PROFILES) == {"smoke", "cpu", "full"}
    with pytest.raises(KeyError, match="unknown locomotion profile 'huge'"):
        recipe_for("hopper", "huge")
    with pytest.raises(KeyError, match="unknown locomotion recipe 'ant'"):
        recipe_for("ant", "cpu")


@pytest.mark.skipif(__import__("importlib").util.find_spec("mujoco") is None, reason="needs mujoco")
def test_smoke_recipe_makes_hopper_datasets_in_seconds(tmp_path: Path) -> None:
    paths = generate_locomotion(recipe_for("hopper", "smoke"), tmp_path, progress=False)
    medium_replay = load_d4rl_hdf5(paths["medium-replay"])
    assert medium_replay.obs_dim == 11 and medium_replay.act_dim == 3
    assert len(load_d4rl_hdf5(paths["medium-expert"])) == 2 * PROFILES["smoke"]["collect_steps"]
    assert medium_replay.terminals.any()  # Hopper falls: terminals are kept apart from time-outs
    assert not (medium_replay.terminals & medium_replay.timeouts).any()


def test_replay_dataset_is_chronological_after_wrapping() -> None:
    buffer = ReplayBuffer(1, 1, capacity=5)
    for t in range(8):  # episodes of 3 steps: the third step of each is a terminal
        buffer.add(np.array([t], np.float32), np.zeros(1, np.float32), float(t),
                   np.array([t + 1], np.float32), t % 3 == 2, t // 3, t % 3)
    data = replay_dataset(buffer, "test")
    assert list(data.observations[:, 0]) == [3, 4, 5, 6, 7]
    assert list(data.terminals) == [False, False, True, False, False]
    assert list(data.timeouts) == [False, False, False, False, True]  # the unfinished last episode


def test_a_device_without_cuda_stops_the_generator_before_any_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"OnlineConfig.device='cuda' but CUDA is not available"):
        generate_locomotion(LocomotionRecipe(**TINY), tmp_path / "out", progress=False, device="cuda")
    assert not (tmp_path / "out").exists()


def test_collections_of_two_seeds_or_two_policies_share_no_episode() -> None:
    """With ``seed + episode`` resets, seed 0's episode 1 began where seed 1's episode 0 did; each collection
    now resets from its own (seed, "collection", policy, episode) streams."""
    actor = locomotion_data.TanhGaussianActor(3, 1, 16, 2)
    starts = []
    for seed, policy in ((0, 0), (0, 1), (1, 0)):
        data = locomotion_data.collect(actor, "gym:Pendulum-v1", 600, seed, policy, "test")
        first = np.flatnonzero(np.r_[True, data.episode_ends()[:-1]])
        starts += [tuple(np.round(data.observations[i], 6)) for i in first]
    assert len(starts) == 9 and len(set(starts)) == 9  # 3 collections x 3 episodes of 200 steps
