"""IPL Tables 1, 2 and 7 on the SAC-made locomotion data: preference files of 100-step segments, the
variants of the paper's columns, D4RL's normalised score, lambda = 0, and the smoke cell end to end."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ipl_core import trainer
from ipl_core.config import preset
from ipl_core.data.d4rl import write_d4rl_hdf5
from ipl_core.data.datasets import OfflineDataset
from ipl_core.data.locomotion_prefs import (
    HUMAN_LABEL_QUERIES,
    HUMAN_LABEL_SEGMENT_LENGTH,
    locomotion_preferences,
    preference_path,
)
from ipl_core.data.native import load_preferences
from ipl_core.data.segments import make_preference_dataset
from ipl_core.experiments.locomotion import (
    D4RL_REFERENCE_RETURNS,
    d4rl_normalized_score,
    relabel_with_reward_model,
    split_dataset,
)
from ipl_core.experiments.studies import expand, get_study
from ipl_core.experiments.variants import TABLE_COLUMNS, VARIANTS, variant_config
from ipl_core.offline import target_clip
from ipl_core.teachers import TEACHERS, ScriptedTeacher

torch.set_num_threads(1)

EPISODES = (150, 60, 300, 99, 100, 250, 40)
"""Episode lengths: three can hold no 100-step segment, one holds exactly one."""


def episodic_dataset(seed: int = 0, obs_dim: int = 5, act_dim: int = 2) -> OfflineDataset:
    """Observations carry the row index (column 0) and the episode index (column 1); random rewards."""
    rng = np.random.default_rng(seed)
    n = sum(EPISODES)
    episode = np.repeat(np.arange(len(EPISODES)), EPISODES)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    obs[:, 0], obs[:, 1] = np.arange(n), episode
    ends = np.cumsum(EPISODES) - 1
    terminals = np.zeros(n, bool)
    terminals[ends[::2]] = True  # every other episode ends in a terminal state, the rest time out
    timeouts = np.zeros(n, bool)
    timeouts[ends[1::2]] = True
    return OfflineDataset(
        obs,
        rng.uniform(-1, 1, (n, act_dim)).astype(np.float32),
        np.roll(obs, -1, axis=0),
        rng.normal(size=n).astype(np.float32),
        terminals,
        timeouts,
        "episodic",
    )


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    return write_d4rl_hdf5(tmp_path / "medium-replay.hdf5", episodic_dataset())


def test_segments_of_100_steps_stay_inside_one_episode_and_labels_follow_the_returns(data_file: Path) -> None:
    path = locomotion_preferences(data_file)
    assert path == preference_path(data_file, 500, 100, "oracle", 0) and path.parent == data_file.parent
    prefs = load_preferences(path)
    assert len(prefs) == HUMAN_LABEL_QUERIES["medium-replay"] == 500
    assert prefs.segment_length == HUMAN_LABEL_SEGMENT_LENGTH == 100
    for obs in (prefs.obs_1, prefs.obs_2):
        assert (np.diff(obs[:, :, 0], axis=1) == 1).all(), "a segment skips rows"
        assert (obs[:, :, 1] == obs[:, :1, 1]).all(), "a segment crosses an episode boundary"
        assert set(np.unique(obs[:, 0, 1]).astype(int)) <= {0, 2, 4, 5}  # the episodes of >= 100 steps
    assert set(np.unique(prefs.obs_1[prefs.obs_1[:, 0, 1] == 4][:, 0, 0])) == {60 + 150 + 300 + 99}
    expected = np.where(prefs.reward_1.sum(1) > prefs.reward_2.sum(1), 1.0, 0.0)
    np.testing.assert_array_equal(prefs.label, expected)


def test_the_file_is_reused_and_a_changed_source_or_teacher_is_an_error(
    data_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = locomotion_preferences(data_file, num_queries=20)
    first = path.stat().st_mtime_ns
    assert locomotion_preferences(data_file, num_queries=20) == path
    assert path.stat().st_mtime_ns == first, "an identical request rebuilt the file"
    monkeypatch.setitem(TEACHERS, "oracle", ScriptedTeacher(beta=2.0))
    with pytest.raises(ValueError, match="teacher_params"):
        locomotion_preferences(data_file, num_queries=20)
    monkeypatch.undo()
    write_d4rl_hdf5(data_file, episodic_dataset(seed=1))
    with pytest.raises(ValueError, match="data_sha256"):
        locomotion_preferences(data_file, num_queries=20)
    path.unlink()
    assert len(load_preferences(locomotion_preferences(data_file, num_queries=20))) == 20


def test_query_counts_follow_the_human_label_datasets(tmp_path: Path) -> None:
    data = episodic_dataset()
    expert = write_d4rl_hdf5(tmp_path / "medium-expert.hdf5", data)
    assert len(load_preferences(locomotion_preferences(expert))) == 100
    medium = write_d4rl_hdf5(tmp_path / "medium.hdf5", data)
    with pytest.raises(KeyError, match="pass num_queries"):
        locomotion_preferences(medium)
    with pytest.raises(KeyError, match="unknown teacher"):
        locomotion_preferences(expert, teacher="sleepy")
    with pytest.raises(FileNotFoundError, match="locomotion_data"):
        locomotion_preferences(tmp_path / "nowhere" / "medium-replay.hdf5")


def test_a_noisy_teacher_gets_its_own_file(data_file: Path) -> None:
    oracle = load_preferences(locomotion_preferences(data_file, num_queries=200))
    mistaken = load_preferences(locomotion_preferences(data_file, num_queries=200, teacher="mistake"))
    flipped = (oracle.label != mistaken.label).mean()
    assert 0.02 < flipped < 0.25  # B-Pref's Mistake teacher flips 10% of the labels


def test_variants_map_to_the_papers_columns() -> None:
    base = preset("locomotion")
    assert (
        base.num_layers,
        base.hidden_dim,
        base.beta,
        base.pref_batch_size,
        base.subsample_length,
        base.lam,
        base.steps,
    ) == (2, 256, 3.0, 8, 64, 0.5, 1_000_000)  # IPL Table 5
    configs = {name: variant_config(name, "locomotion") for name in [*TABLE_COLUMNS, "ipl-lambda-0"]}
    assert configs["iql"].method == "iql" and configs["mr"].method == "mr"
    assert configs["ipl"] == base.replace(method="ipl")
    assert configs["ipl-no-aug"] == base.replace(method="ipl", subsample_length=0)
    assert configs["ipl-lambda-0"] == base.replace(method="ipl", lam=0.0)
    assert configs["ipl-xql"] == base.replace(method="ipl-xql", alpha=2.0)
    assert configs["brex"].method == "brex"
    for name in ("nmr", "pt"):
        assert configs[name].method == "iql" and VARIANTS[name].reward_model == name
    with pytest.raises(KeyError, match="unknown variant"):
        variant_config("ipl-everything", "locomotion")


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_the_study_grid_uses_known_variants_and_datasets(profile: str) -> None:
    cells = expand("ipl-locomotion", profile)
    for cell in cells:
        assert cell.params["variant"] in VARIANTS
        task, kind = split_dataset(cell.params["dataset"])
        assert task in D4RL_REFERENCE_RETURNS and kind in HUMAN_LABEL_QUERIES
    grid = get_study("ipl-locomotion").grid
    assert {"iql", "mr", "ipl", "ipl-no-aug"} <= set(grid["cpu"]["variant"])  # oracle, MR, IPL, Table 2
    assert set(grid["full"]["variant"]) == {*TABLE_COLUMNS, "ipl-lambda-0"} and len(grid["full"]["seed"]) == 5
    assert len(grid["full"]["dataset"]) == 4


def test_d4rl_normalized_score_matches_its_reference_points() -> None:
    assert d4rl_normalized_score("hopper", -20.272305) == pytest.approx(0.0)
    assert d4rl_normalized_score("hopper", 3234.3) == pytest.approx(100.0)
    assert d4rl_normalized_score("walker2d", 1.629008 + 0.5 * (4592.3 - 1.629008)) == pytest.approx(50.0)
    # by hand: 100 (1000 + 20.272305) / (3234.3 + 20.272305) = 31.3489...
    assert d4rl_normalized_score("hopper", 1000.0) == pytest.approx(31.34894, abs=1e-4)
    np.testing.assert_allclose(d4rl_normalized_score("walker2d", np.array([1.629008, 4592.3])), [0.0, 100.0])
    with pytest.raises(KeyError, match="no D4RL reference"):
        d4rl_normalized_score("halfcheetah", 0.0)
    with pytest.raises(ValueError, match="<task>-<kind>"):
        split_dataset("ant-medium")


def short_config(variant: str, **changes: object):
    return variant_config(
        variant,
        "locomotion",
        steps=4,
        log_every=1,
        eval_every=0,
        hidden_dim=32,
        offline_batch_size=32,
        reward_steps=4,
        **changes,
    )


def small_problem() -> tuple[OfflineDataset, object]:
    offline = episodic_dataset()
    prefs = make_preference_dataset(offline, 30, 100, TEACHERS["oracle"], np.random.default_rng(0))
    return offline, prefs


@pytest.mark.parametrize(("variant", "length"), [("ipl", 64), ("ipl-no-aug", 100), ("mr", 64)])
def test_ipl_without_augmentation_sees_whole_segments(
    variant: str, length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline, prefs = small_problem()
    seen: list[int] = []
    sample = trainer.sample_preference_batch

    def recording(*args, **kwargs):
        batch = sample(*args, **kwargs)
        seen.append(batch.obs_1.shape[1])
        return batch

    monkeypatch.setattr(trainer, "sample_preference_batch", recording)
    trainer.train(short_config(variant), offline, prefs, progress=False)
    assert seen == [length] * 4


def test_lambda_zero_trains_without_clipping_and_stays_finite() -> None:
    offline, prefs = small_problem()
    cfg = short_config("ipl-lambda-0")
    assert cfg.lam == 0.0 and target_clip(cfg) is None
    assert target_clip(short_config("ipl")) == pytest.approx(1 / (0.5 * 0.01))
    result = trainer.train(cfg, offline, prefs, progress=False)
    values = result.metrics.value.to_numpy()
    assert len(values) > 0 and np.isfinite(values).all()
    assert all(torch.isfinite(p).all() for p in result.agent.parameters())


def test_two_phase_variants_relabel_the_offline_data_and_others_do_not() -> None:
    offline, prefs = small_problem()
    [same], [accuracy] = relabel_with_reward_model("ipl", offline, prefs, short_config("ipl"), [0])
    assert same is offline and math.isnan(accuracy)
    [relabelled, other], [accuracy, _] = relabel_with_reward_model("nmr", offline, prefs, short_config("nmr"),
                                                                    [0, 1])
    assert not np.array_equal(relabelled.rewards, other.rewards)  # each seed fits its own model
    assert relabelled.rewards.shape == offline.rewards.shape and np.isfinite(relabelled.rewards).all()
    assert not np.allclose(relabelled.rewards, offline.rewards)
    np.testing.assert_array_equal(relabelled.observations, offline.observations)
    assert 0.0 <= accuracy <= 1.0


@pytest.mark.slow
def test_the_smoke_cell_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """About 30 s: smoke SAC data for Hopper in a fresh data folder, then one cell of the study."""
    from ipl_core.experiments.run import cell_dir, run_grid

    monkeypatch.setenv("IPL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MUJOCO_GL", "egl")
    (cell,) = expand("ipl-locomotion", "smoke", variant=("ipl-lambda-0",))
    run_grid([cell], tmp_path / "results")
    out = cell_dir(cell, tmp_path / "results")
    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics.step) == [0, cell.params["steps"]]
    assert np.isfinite(metrics[["return", "normalized_score", "pref_accuracy"]].to_numpy()).all()
    np.testing.assert_allclose(metrics.normalized_score, d4rl_normalized_score("hopper", metrics["return"]))
    assert (metrics.num_pairs == cell.params["num_queries"]).all()
    assert list((tmp_path / "data" / "locomotion" / "smoke" / "hopper").glob("medium-replay.prefs-*.npz"))
