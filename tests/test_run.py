"""The study grid, the papermill runner (local threads and Ray) and the aggregation."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from ipl_core import studies
from ipl_core.aggregate import aggregate
from ipl_core.results import load_study
from ipl_core.run import cell_dir, parse_setting, run_cell, run_grid
from ipl_core.studies import Study, expand

TINY = Study(
    name="tiny",
    grid={p: {"width": (1, 2), "seed": (0, 1)} for p in ("smoke", "cpu", "full")},
    settings={p: {"steps": 3} for p in ("smoke", "cpu", "full")},
    score_metrics=("score",),
)


@pytest.fixture
def tiny_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A study whose notebook writes a 3-step learning curve that depends on width and seed."""
    monkeypatch.setitem(studies.STUDIES, "tiny", TINY)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"\nrun_dir = None\nwidth = 1\nseed = 0\nsteps = 3')
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import pandas as pd\n"
        "from ipl_core.results import write_table\n"
        "rows = [{'step': s, 'seed': seed, 'score': width * (s + 1) + 0.1 * seed} for s in range(steps)]\n"
        "write_table(run_dir + '/metrics.parquet', pd.DataFrame(rows))\n"
    )
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    nbformat.write(nb, experiments / "tiny.ipynb")
    return experiments


def test_expand_crosses_the_axes_and_applies_overrides() -> None:
    cells = expand("bradley-terry", "smoke")
    assert len(cells) == 3 * 2
    assert {c.params["num_queries"] for c in cells} == {10, 100, 1000}
    assert all(c.params["num_states"] == 20 for c in cells)
    assert len(expand("bradley-terry", "smoke", seed=(5,))) == 3
    assert [c.relative_dir for c in expand("bradley-terry", "smoke")] == [c.relative_dir for c in cells]
    assert cells[0].relative_dir.startswith("num_queries=10,settings=") and cells[0].relative_dir.endswith(
        "seed=0"
    )
    with pytest.raises(KeyError, match="no grid axis or setting 'nope'"):
        expand("bradley-terry", "smoke", nope=1)
    with pytest.raises(KeyError, match="known studies"):
        expand("missing", "smoke")
    with pytest.raises(KeyError, match="unknown profile"):
        expand("bradley-terry", "huge")


def test_a_setting_change_gives_a_new_config_id() -> None:
    a = expand("bradley-terry", "smoke")[0]
    b = expand("bradley-terry", "smoke", l2=1.0)[0]
    assert a.config_id != b.config_id


def test_local_grid_skips_complete_cells_and_reruns_incomplete_ones(tiny_study: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    cells = expand("tiny", "smoke")
    run_grid(cells, results, jobs=2, experiments_dir=tiny_study)
    out = aggregate("tiny", "smoke", results)
    summary = pd.read_parquet(out / "summary.parquet").set_index("width")
    assert summary.loc[2, "final_mean"] == pytest.approx(2 * 3 + 0.05)
    config = json.loads((cell_dir(cells[0], results) / "config.json").read_text())
    assert config["width"] == 1 and config["profile"] == "smoke"
    # A complete cell is skipped: its folder is left untouched.
    marker = cell_dir(cells[0], results) / "metrics.parquet"
    before = marker.stat().st_mtime_ns
    run_cell(cells[0], results, tiny_study)
    assert marker.stat().st_mtime_ns == before
    # A cell whose config.json is missing (killed before completion) runs again.
    (cell_dir(cells[1], results) / "config.json").unlink()
    assert run_grid(cells, results, experiments_dir=tiny_study) == [cell_dir(cells[1], results)]
    assert load_study("tiny", root=results).info.seeds == (0, 1)


def test_ray_gives_the_same_results_as_local_processes(tiny_study: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    cells = expand("tiny", "smoke", seed=(0,))
    run_grid(cells, tmp_path / "local", experiments_dir=tiny_study)
    try:
        run_grid(cells, tmp_path / "ray", ray_address="local", experiments_dir=tiny_study)
    finally:
        ray.shutdown()
    local = aggregate("tiny", "smoke", tmp_path / "local")
    remote = aggregate("tiny", "smoke", tmp_path / "ray")
    columns = ["step", "seed", "score", "width"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(local / "runs.parquet")[columns], pd.read_parquet(remote / "runs.parquet")[columns]
    )


def test_missing_notebook_is_named(tmp_path: Path, tiny_study: Path) -> None:
    cell = expand("bradley-terry", "smoke")[0]
    with pytest.raises(FileNotFoundError, match="no experiment notebook"):
        run_cell(cell, tmp_path, experiments_dir=tiny_study)


def test_set_overrides_parse_json_then_text() -> None:
    assert parse_setting("steps=5000") == ("steps", 5000)
    assert parse_setting("device=cuda") == ("device", "cuda")
    assert parse_setting("num_queries=[500, 2000]") == ("num_queries", [500, 2000])
    with pytest.raises(ValueError, match="--set expects KEY=VALUE, got 'steps'"):
        parse_setting("steps")
    overrides = dict([parse_setting("l2=0.5"), parse_setting("num_queries=[7]")])
    cells = studies.expand("bradley-terry", "smoke", **overrides)
    assert {c.params["l2"] for c in cells} == {0.5} and {c.params["num_queries"] for c in cells} == {7}


def test_steps_left_to_the_task_files_are_read_from_the_runs(
    tiny_study: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Online studies at `full` keep `total_steps` of each task's TOML (None in the profile): the run's
    recorded steps are then the last step the runs logged, so the book can still say how long they ran."""
    study = Study(name="tiny", grid={"smoke": {"width": (1,), "seed": (0,)}},
                  settings={"smoke": {"total_steps": None}}, score_metrics=("score",))
    monkeypatch.setitem(studies.STUDIES, "tiny", study)
    results = tmp_path / "results"
    run_grid(expand("tiny", "smoke"), results, experiments_dir=tiny_study)
    aggregate("tiny", "smoke", results)
    info = load_study("tiny", root=results).info
    assert info.steps == 2  # the notebook logs steps 0, 1, 2
    assert "2 steps per seed" in info.describe()
