"""Results as data: atomic writes, the run record, and loading the largest profile."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ipl_core.experiments.results import load_study
from ipl_core.io import RunInfo, atomic_write, save_study, write_json


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_text().strip().endswith("}")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_save_and_load_round_trip_prefers_the_largest_profile(tmp_path: Path) -> None:
    table = pd.DataFrame({"seed": [0, 1], "score": [0.5, 0.7]})
    for profile, scale in (("smoke", 1.0), ("cpu", 2.0)):
        info = RunInfo(study="s", profile=profile, seeds=(0, 1), steps=10, wall_time_s=1.0)
        save_study("s", profile, {"metrics": table.assign(score=table.score * scale)}, info, root=tmp_path)
    loaded = load_study("s", root=tmp_path)
    assert loaded.info.profile == "cpu"
    assert loaded.tables["metrics"]["score"].tolist() == [1.0, 1.4]
    assert load_study("s", root=tmp_path, profile="smoke").info.seeds == (0, 1)
    assert "profile cpu," in loaded.info.describe() and "`" not in loaded.info.describe()


def test_an_extra_profile_is_read_only_by_name(tmp_path: Path) -> None:
    """A paper-cpu run (a few full-profile cells) never stands in for a study's cpu or full results."""
    table = pd.DataFrame({"seed": [0], "score": [0.5]})
    for profile in ("cpu", "paper-cpu"):
        info = RunInfo(study="s", profile=profile, seeds=(0,), steps=10)
        save_study("s", profile, {"metrics": table}, info, root=tmp_path)
    assert load_study("s", root=tmp_path).info.profile == "cpu"
    assert load_study("s", root=tmp_path, profile="paper-cpu").info.profile == "paper-cpu"
    with pytest.raises(ValueError, match="profile must be one of"):
        save_study("s", "gpu", {"metrics": table}, RunInfo(study="s", profile="gpu", seeds=(0,), steps=1),
                   root=tmp_path)


def test_every_study_defines_the_profiles_and_only_known_extras() -> None:
    from ipl_core.experiments.studies import STUDIES, expand
    from ipl_core.io import EXTRA_PROFILES, PROFILES

    for name, study in STUDIES.items():
        assert set(study.grid) == set(study.settings), name
        assert set(PROFILES) <= set(study.grid) <= set(PROFILES + EXTRA_PROFILES), name
    # paper-cpu is a subset of the full profile's cells, with their settings and so their folders
    paper = expand("ipl-metaworld-scaling", "paper-cpu")
    full = {c.relative_dir for c in expand("ipl-metaworld-scaling", "full")}
    assert paper and {c.relative_dir for c in paper} <= full
    with pytest.raises(KeyError, match="unknown profile 'paper-cpu' for study 'bradley-terry'"):
        expand("bradley-terry", "paper-cpu")


def test_having_picks_the_largest_profile_that_ran_those_grid_values(tmp_path: Path) -> None:
    for profile, algorithms in (("smoke", ["sac", "ipl"]), ("cpu", ["sac", "sac"])):
        runs = pd.DataFrame({"algorithm": algorithms, "seed": [0, 1]})
        info = RunInfo(study="s", profile=profile, seeds=(0, 1), steps=10)
        save_study("s", profile, {"runs": runs}, info, root=tmp_path)
    assert load_study("s", root=tmp_path).info.profile == "cpu"
    assert load_study("s", root=tmp_path, having={"algorithm": "ipl"}).info.profile == "smoke"
    with pytest.raises(FileNotFoundError, match=r"with runs of \{'algorithm': 'ppo'\}"):
        load_study("s", root=tmp_path, having={"algorithm": "ppo"})


def test_a_run_without_run_json_is_not_complete(tmp_path: Path) -> None:
    (tmp_path / "s" / "full").mkdir(parents=True)
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "s" / "full" / "metrics.parquet")
    with pytest.raises(FileNotFoundError, match=r"python -m ipl_core\.experiments\.run s"):
        load_study("s", root=tmp_path)


def test_unknown_profile_is_rejected(tmp_path: Path) -> None:
    info = RunInfo(study="s", profile="huge", seeds=(0,), steps=1)
    with pytest.raises(ValueError, match="profile must be one of"):
        save_study("s", "huge", {}, info, root=tmp_path)


def test_describe_names_every_commit_in_full_with_its_dirty_flag() -> None:
    info = RunInfo(study="s", profile="cpu", seeds=(0, 1), steps=5, device="cpu",
                   commit="a" * 40 + ";" + "b" * 40 + "+dirty", wall_time_s=3.0)
    text = info.describe()
    assert f"commits {'a' * 40}, {'b' * 40}+dirty" in text
    assert info.commits == ["a" * 40, "b" * 40 + "+dirty"]


def test_a_stored_run_gives_its_own_settings_and_cell_tables(tmp_path: Path) -> None:
    """Settings and extra tables come from the cells the stored run aggregated, not from today's grid: a
    cell on disk that the run did not aggregate is ignored, and a missing table names its file."""
    base = tmp_path / "study" / "cpu"
    for config_id, method in (("method=a", "a"), ("method=b", "b"), ("method=old", "old")):
        for seed in (0, 1):
            folder = base / config_id / f"seed={seed}"
            write_json(folder / "config.json", {"method": method, "seed": seed, "steps": 100,
                                                "eval_episodes": 20 if method != "old" else 5,
                                                "commit": f"c{seed}", "config_id": config_id})
            pd.DataFrame({"step": [10], "queries": [seed]}).to_parquet(folder / "rounds.parquet")
    runs = pd.DataFrame({"method": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "step": [10] * 4,
                         "config_id": ["method=a", "method=a", "method=b", "method=b"]})
    info = RunInfo(study="study", profile="cpu", seeds=(0, 1), steps=100, wall_time_s=1.0)
    save_study("study", "cpu", {"runs": runs}, info, root=tmp_path)
    study = load_study("study", root=tmp_path)
    assert study.settings == {"steps": 100, "eval_episodes": 20}  # method differs, commit is the cell's
    rounds = study.cell_table("rounds")
    assert sorted(zip(rounds.method, rounds.queries, strict=True)) == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    with pytest.raises(FileNotFoundError, match="updates"):
        study.cell_table("updates")
