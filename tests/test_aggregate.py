"""Aggregation: the field's statistics over seeds, exactly the grid's cells, damaged cells named with nothing
written, and a check that finds stored tables which disagree with the cells on disk."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from ipl_core.experiments import studies
from ipl_core.experiments.aggregate import CellError, aggregate, check, collect_runs, summarize
from ipl_core.experiments.results import load_study
from ipl_core.experiments.studies import Study, expand


def test_summarize_by_hand() -> None:
    runs = pd.DataFrame({"seed": [0, 0, 1, 1], "step": [1, 2, 1, 2], "score": [1.0, 3.0, 5.0, 2.0], "k": 1})
    row = summarize(runs, ["k"], ["score"]).iloc[0]
    assert row.final_mean == pytest.approx(2.5)  # last steps: 3 and 2
    assert row.final_std == pytest.approx(math.sqrt(0.5))  # sample std, ddof = 1
    assert row.best_mean == pytest.approx(3.0) and row.best_step == 1  # curve: step 1 -> 3.0, step 2 -> 2.5
    assert row.final_ci_low <= 2.5 <= row.final_ci_high and row.num_seeds == 2


def test_one_seed_has_no_spread() -> None:
    runs = pd.DataFrame({"seed": [0, 0], "step": [1, 2], "score": [1.0, 3.0], "k": 1})
    row = summarize(runs, ["k"], ["score"]).iloc[0]
    assert row.final_mean == 3.0 and row.final_iqm == 3.0
    assert all(math.isnan(row[c]) for c in ("final_std", "final_ci_low", "final_ci_high", "final_iqm_low"))


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    study = Study(name="tiny", grid={"smoke": {"width": (1, 2), "seed": (0, 1)}},
                  settings={"smoke": {"steps": 2}}, score_metrics=("score",))
    monkeypatch.setitem(studies.STUDIES, "tiny", study)
    results = tmp_path / "results"
    for cell in expand("tiny", "smoke"):
        write_cell(results, cell, score=cell.params["width"] + cell.params["seed"])
    return results


def write_cell(results: Path, cell, score: float) -> Path:
    folder = results / "tiny" / "smoke" / cell.relative_dir
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"seed": cell.params["seed"], "step": [1, 2], "score": [0.0, score]}).to_parquet(
        folder / "metrics.parquet")
    config = {**cell.params, "config_id": cell.config_id, "commit": "c" * 40, "device_description": "cpu",
              "wall_time_s": 1.0}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_only_the_grids_cells_are_read_and_others_are_named(tiny: Path) -> None:
    # a cell of the same configuration made with other settings sits beside the grid's cells
    other = expand("tiny", "smoke", steps=99)[0]
    write_cell(tiny, other, score=1000.0)
    with pytest.warns(UserWarning, match="not in the smoke grid"):
        runs = collect_runs("tiny", "smoke", tiny)
    assert runs.score.max() == 3.0 and len(runs) == 8
    with pytest.warns(UserWarning):
        summary = pd.read_parquet(aggregate("tiny", "smoke", tiny) / "summary.parquet").set_index("width")
    assert summary.loc[1, "num_seeds"] == 2 and summary.loc[1, "final_mean"] == pytest.approx(1.5)


def test_a_damaged_cell_is_named_and_nothing_is_written(tiny: Path) -> None:
    cell = expand("tiny", "smoke")[1]
    folder = tiny / "tiny" / "smoke" / cell.relative_dir
    (folder / "metrics.parquet").write_bytes(b"not parquet")
    (tiny / "tiny" / "smoke" / expand("tiny", "smoke")[2].relative_dir / "config.json").write_text("{")
    with pytest.raises(CellError) as error:
        aggregate("tiny", "smoke", tiny)
    assert str(folder) in str(error.value) and "metrics.parquet is not readable" in str(error.value)
    assert "not readable JSON" in str(error.value)
    assert not (tiny / "tiny" / "smoke" / "summary.parquet").exists()
    assert not (tiny / "tiny" / "smoke" / "run.json").exists()


def test_a_cell_of_another_config_in_the_right_folder_is_refused(tiny: Path) -> None:
    cell = expand("tiny", "smoke")[0]
    config_file = tiny / "tiny" / "smoke" / cell.relative_dir / "config.json"
    config = json.loads(config_file.read_text()) | {"seed": 7}
    config_file.write_text(json.dumps(config))
    with pytest.raises(CellError, match="expected"):
        collect_runs("tiny", "smoke", tiny)


def test_check_finds_stale_tables(tiny: Path) -> None:
    assert check("tiny", "smoke", tiny) == ["{}: no run.json (the study was never aggregated)".format(
        tiny / "tiny" / "smoke")]
    aggregate("tiny", "smoke", tiny)
    assert check("tiny", "smoke", tiny) == []
    assert load_study("tiny", root=tiny).info.seeds == (0, 1)
    # a seed is rerun with another result, and the stored summary is now stale
    write_cell(tiny, expand("tiny", "smoke")[0], score=50.0)
    problems = check("tiny", "smoke", tiny)
    assert any("summary.parquet differs" in p for p in problems)
