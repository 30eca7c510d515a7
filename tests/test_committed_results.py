"""The committed `cpu` results are the current grid's: every study's stored aggregates agree with its cells,
and no cell of other settings lies beside them (a profile changed without a rerun fails here)."""

import warnings

import pytest

from ipl_core.experiments.aggregate import check
from ipl_core.experiments.results import RESULTS_DIR
from ipl_core.experiments.studies import STUDIES


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_the_committed_cpu_results_are_the_current_grids(study: str) -> None:
    assert (RESULTS_DIR / study / "cpu" / "run.json").is_file(), f"{study}: no committed cpu results"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        problems = check(study, "cpu")
    assert problems == []
    assert [str(w.message) for w in caught if "not in the cpu grid" in str(w.message)] == []
