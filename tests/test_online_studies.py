"""The online studies: every profile expands, smoke cells are small, and the experiment notebooks take every
grid axis and setting as a papermill parameter."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest

from ipl_core.experiments.run import EXPERIMENTS_DIR
from ipl_core.experiments.studies import STUDIES, expand
from ipl_core.io import PROFILES
from ipl_core.online.config import FIELD_TYPES, study_config

ONLINE_STUDIES = ("online", "online-feedback")


@pytest.mark.parametrize("study", ONLINE_STUDIES)
@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_expands_to_valid_configs(study: str, profile: str) -> None:
    cells = expand(study, profile)
    assert cells and len({c.relative_dir for c in cells}) == len(cells)
    for cell in cells:
        unknown = set(cell.params) - set(FIELD_TYPES)
        assert not unknown, f"{study}/{profile}: settings that are not OnlineConfig fields: {unknown}"
    for cell in cells[:: max(1, len(cells) // 7)]:  # a sample: every algorithm and budget of small grids
        study_config(**cell.params)  # raises on a wrong type or an invalid value


@pytest.mark.parametrize("study", ONLINE_STUDIES)
@pytest.mark.parametrize("profile", PROFILES)
def test_every_label_of_every_cell_reaches_the_policy(study: str, profile: str) -> None:
    """Each cell asks its whole budget in rounds strictly before its last step (none is wasted there)."""
    seen = set()
    for cell in expand(study, profile):
        params = {k: v for k, v in cell.params.items() if k != "seed"}
        key = json.dumps(params, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        cfg = study_config(**params)
        if cfg.algorithm != "sac":
            assert cfg.feedback_rounds * cfg.feedback_per_round >= cfg.feedback_budget, key
            last_round = cfg.learning_starts + (cfg.feedback_rounds - 1) * cfg.feedback_interval
            assert last_round < cfg.total_steps, key


@pytest.mark.parametrize("study", ONLINE_STUDIES)
def test_smoke_cells_are_small(study: str) -> None:
    cells = expand(study, "smoke")
    assert len(cells) <= 12  # two tasks (walker-walk, door-open-v3): each cell takes 5-10 s on one core
    for cell in cells:
        cfg = study_config(**cell.params)
        assert cfg.total_steps <= 1000 and cfg.hidden_dim <= 64 and cfg.batch_size <= 64
        assert cfg.eval_episodes == 1 and cfg.episode_length <= 100 and cfg.checkpoint_interval == 0
        assert cfg.total_steps // cfg.eval_interval <= 2


def test_full_profile_is_the_task_files_unchanged() -> None:
    cell = expand("online", "full", algorithm=("mrn",), task=("door-open-v3",), seed=(0,))[0]
    from ipl_core.online.config import load_task_config

    assert study_config(**cell.params) == load_task_config("door-open-v3", algorithm="mrn")
    assert STUDIES["online"].grid["full"]["seed"] == tuple(range(10))  # MRN Sec. 5.1: ten runs


@pytest.mark.parametrize("study", ONLINE_STUDIES)
def test_notebook_parameters_cover_the_grid_and_settings(study: str) -> None:
    notebook = json.loads((EXPERIMENTS_DIR / f"{study}.ipynb").read_text())
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    tree = ast.parse("".join(code[0]["source"]))
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert {"profile", "run_dir", "seeds", "threads", "device"} <= names
    for profile in PROFILES:
        spec = STUDIES[study]
        missing = (set(spec.grid[profile]) - {"seed"} | set(spec.settings[profile])) - names
        assert not missing, f"{study}.ipynb has no parameter for {sorted(missing)} ({profile})"


def test_collect_runs_reads_any_table_of_the_cells(tmp_path: Path) -> None:
    """Chapters read ``rounds`` and ``episodes`` of every cell; a cell with no rows (SAC) keeps the dtypes."""
    import pandas as pd

    from ipl_core.experiments.aggregate import CellError, collect_runs

    cells = expand("online", "smoke", algorithm=("pebble", "sac"), task=("walker-walk",))
    for cell, steps in zip(cells, ([200, 300], []), strict=True):
        folder = tmp_path / "online" / "smoke" / cell.relative_dir
        folder.mkdir(parents=True)
        config = {**cell.params, "config_id": cell.config_id, "commit": "abc", "device_description": "cpu",
                  "wall_time_s": 1.0}
        (folder / "config.json").write_text(json.dumps(config))
        rounds = pd.DataFrame({"step": pd.Series(steps, dtype="int64"), "seed": 0})
        rounds.to_parquet(folder / "rounds.parquet")
    rounds = collect_runs("online", "smoke", tmp_path, table="rounds", cells=cells)
    assert list(rounds["step"]) == [200, 300] and rounds["step"].dtype == "int64"
    assert set(rounds["algorithm"]) == {"pebble"} and set(rounds["task"]) == {"walker-walk"}
    with pytest.raises(CellError, match=r"complete cell without episodes\.parquet"):
        collect_runs("online", "smoke", tmp_path, table="episodes", cells=cells)



def test_stored_cells_resolve_the_settings_each_run_used(tmp_path: Path) -> None:
    from ipl_core.experiments.results import StudyResults
    from ipl_core.experiments.stored import compute_minutes, schedule_table, stored_cells
    from ipl_core.io import RunInfo

    folder = tmp_path / "online" / "cpu"
    rows = []
    for algorithm, per_round, wall in (("pebble", 25, 600.0), ("mrn", None, 900.0), ("surf", 25, 1.0)):
        cell = folder / f"algorithm={algorithm}" / "seed=0"
        cell.mkdir(parents=True)
        config = {"algorithm": algorithm, "task": "walker-walk", "seed": 0, "feedback_per_round": per_round,
                  "total_steps": 20000, "profile": "cpu", "wall_time_s": wall}
        if per_round is not None:  # the task file's one round of 20k steps spends 25 labels, not 100
            config["feedback_budget"] = per_round
        (cell / "config.json").write_text(json.dumps(config))
        if algorithm != "surf":  # a cell on disk that the stored run did not aggregate is not read
            rows.append({"config_id": f"algorithm={algorithm}", "seed": 0, "algorithm": algorithm})
    info = RunInfo("online", "cpu", (0,), None)
    results = StudyResults(info, {"runs": pd.DataFrame(rows)}, folder)
    cells = stored_cells(results)
    table = schedule_table(cells, ("pebble", "mrn"), "walker-walk")
    assert table.loc["feedback_per_round", "pebble"] == 25 and table.loc["total_steps", "mrn"] == 20000
    # None: the task file's 10 per round, enlarged as the notebooks do so that 100 labels fit in 20k steps
    assert table.loc["feedback_per_round", "mrn"] == 100
    assert compute_minutes(cells, "walker-walk").to_dict() == {"mrn": 15.0, "pebble": 10.0}
    with pytest.raises(ValueError, match=r"no run of \['surf'\]"):
        schedule_table(cells, ("surf",), "walker-walk")
    (folder / "algorithm=mrn" / "seed=0" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"config\.json: expected the keys 'task' and 'wall_time_s'"):
        stored_cells(results)


def test_fig4_borrows_only_runs_with_its_own_settings(tmp_path: Path) -> None:
    """online-feedback's cpu grid leaves the task's own budget to online's runs: they are read beside its own
    only where their settings are what online-feedback would have run at that budget."""
    from ipl_core.experiments.results import StudyResults
    from ipl_core.experiments.stored import with_budgets_from
    from ipl_core.io import RunInfo

    base = {"task": "walker-walk", "total_steps": 20000, "num_unsup_steps": 4000, "feedback_interval": 4000,
            "feedback_per_round": None, "wall_time_s": 1.0}

    def study(name: str, cells: list[dict], root: str = "a") -> StudyResults:
        folder, rows = tmp_path / root / name / "cpu", []
        for i, params in enumerate(cells):
            config_id = f"cell{i}"
            (folder / config_id / "seed=0").mkdir(parents=True)
            config = {**base, **params, "seed": 0, "config_id": config_id}
            (folder / config_id / "seed=0" / "config.json").write_text(json.dumps(config))
            row = {"step": 20000, "return": float(i), "seed": 0, "algorithm": params["algorithm"],
                   "task": "walker-walk", "config_id": config_id}
            if name == "online-feedback":
                row["feedback_budget"] = params["feedback_budget"]
            rows.append(row)
        return StudyResults(RunInfo(name, "cpu", (0,), None), {"runs": pd.DataFrame(rows)}, folder)

    feedback = study("online-feedback", [{"algorithm": "mrn", "feedback_budget": 400}])
    online = study("online", [{"algorithm": "mrn", "feedback_per_round": 25}, {"algorithm": "sac"}])
    runs = with_budgets_from(feedback, online)
    assert sorted(zip(runs["study"], runs["feedback_budget"], strict=True)) == [("online", 100),
                                                                               ("online-feedback", 400)]
    # a run of other settings (here a longer run) is refused, not mixed in
    online = study("online", [{"algorithm": "mrn", "feedback_per_round": 25, "total_steps": 24000}], "b")
    refused = r"cell0/seed=0/config\.json: online's run differs .* \['total_steps'\]"
    with pytest.raises(ValueError, match=refused):
        with_budgets_from(feedback, online)
