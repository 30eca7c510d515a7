"""IPL's efficiency studies (IPL Table 4, Table 8, Fig. 2): the variants' configs and parameter counts, the
study grids, edge values of lambda and of MR's reward steps, and the smoke grid end to end."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ipl_core.experiments.efficiency import describe_variant, variant_parameters
from ipl_core.experiments.studies import STUDIES, expand
from ipl_core.experiments.variants import BUDGET_COLUMNS, VARIANTS, variant_config
from ipl_core.offline import target_clip
from ipl_core.toy import pendulum_datasets
from ipl_core.trainer import train

STUDY_NAMES = ("ipl-metaworld-budget", "ipl-metaworld-sensitivity", "ipl-metaworld-precision")


@pytest.fixture(scope="module")
def pendulum():
    torch.set_num_threads(1)
    return pendulum_datasets(episodes=4, episode_length=50, num_pairs=40, segment_length=20, seed=0)


@pytest.mark.parametrize(
    ("variant", "expected"),
    [("ipl-64", 14_025), ("mr-35", 14_012), ("mr-64", 34_892)],  # IPL Table 4, bottom three rows
)
def test_budget_variants_have_the_parameter_counts_of_table_4(variant: str, expected: int) -> None:
    assert variant_parameters(variant) == expected
    assert describe_variant(variant)["num_parameters"] == expected


def test_budget_variants_are_the_papers_architectures() -> None:
    ipl, mr35, mr64 = (variant_config(v, "metaworld") for v in ("ipl-64", "mr-35", "mr-64"))
    assert (ipl.method, ipl.hidden_dims, ipl.lam) == ("ipl-awac", (64, 64), 0.5)  # IPL App. B.4
    assert (mr35.method, mr35.hidden_dims) == ("mr", (35, 35))
    assert (mr64.method, mr64.hidden_dims) == ("mr", (64, 64))
    # Everything else is Table 6's MetaWorld setting.
    for cfg in (ipl, mr35, mr64):
        assert (cfg.beta, cfg.expectile, cfg.pref_batch_size, cfg.subsample_length) == (4.0, 0.7, 16, 16)


def test_the_variant_wins_over_the_study_settings_and_unknown_names_are_named() -> None:
    assert (
        variant_config("mr-reward-steps-200", "metaworld", reward_steps=2000, steps=5000).reward_steps == 200
    )
    assert variant_config("mr-35", "metaworld", reward_steps=2000).reward_steps == 2000
    assert variant_config("ipl-lambda-2", "metaworld", lam=0.5).lam == 2.0
    cfg = variant_config("ipl-lambda-0", "metaworld", steps=7, seed=3)
    assert (cfg.method, cfg.lam, cfg.steps, cfg.seed, cfg.hidden_dims) == ("ipl", 0.0, 7, 3, (256, 256, 256))
    described = describe_variant("mr-reward-steps-5000", reward_steps=2000)
    assert described["reward_steps"] == 5000 and described["lam"] is None
    with pytest.raises(KeyError, match="known variants"):
        variant_config("ipl-128", "metaworld")


def test_the_precision_variants_differ_in_precision_alone() -> None:
    fp32, bf16 = (variant_config(name, "metaworld", seed=3) for name in ("ipl-fp32", "ipl-bf16"))
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert dataclasses.replace(bf16, precision="fp32") == fp32


@pytest.mark.parametrize("study", STUDY_NAMES)
@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_every_cell_names_a_known_variant_and_uses_the_scaling_recipe(study: str, profile: str) -> None:
    cells = expand(study, profile)
    assert cells
    scaling = STUDIES["ipl-metaworld-scaling"].settings[profile]
    for cell in cells:
        assert cell.params["variant"] in VARIANTS
        assert {k: cell.params[k] for k in scaling} == scaling
        variant_config(
            cell.params["variant"], "metaworld", **{k: cell.params[k] for k in ("steps", "reward_steps")}
        )


def test_budget_grid_at_full_scale_is_table_8() -> None:
    cells = expand("ipl-metaworld-budget", "full")
    assert len(cells) == 3 * 4 * 4 * 5
    assert {c.params["variant"] for c in cells} == set(BUDGET_COLUMNS)
    assert {c.params["task"] for c in cells} == {"button-press", "drawer-open", "sweep-into", "plate-slide"}
    assert {c.params["num_queries"] for c in cells} == {500, 1000, 2000, 4000}
    assert {c.params["steps"] for c in cells} == {200_000}


def test_sensitivity_grid_is_drawer_open_with_500_queries_around_the_defaults() -> None:
    for profile in ("cpu", "full"):
        cells = expand("ipl-metaworld-sensitivity", profile)
        assert {(c.params["task"], c.params["num_queries"]) for c in cells} == {("drawer-open", 500)}
        configs = [
            variant_config(c.params["variant"], "metaworld", reward_steps=c.params["reward_steps"])
            for c in cells
        ]
        lams = {c.lam for c in configs if c.method == "ipl"}
        reward_steps = {c.reward_steps for c in configs if c.method == "mr"}
        assert {0.0, 0.5} <= lams and len(lams) >= 3  # no regulariser, Table 6's default, a larger one
        default = STUDIES["ipl-metaworld-sensitivity"].settings[profile]["reward_steps"]
        assert min(reward_steps) < default and default in reward_steps  # under-fitting against the default
        if profile == "full":  # and, at the paper's scale, over-fitting up to the whole run
            assert default < max(reward_steps) == cells[0].params["steps"]


@pytest.mark.parametrize("variant", ["ipl-lambda-0", "ipl-lambda-8", "ipl-64"])
def test_lambda_edge_values_train_to_finite_metrics(pendulum, variant: str) -> None:
    offline, preferences = pendulum
    cfg = variant_config(
        variant,
        "metaworld",
        hidden_dim=16,
        steps=20,
        log_every=5,
        eval_every=10,
        checkpoint_every=0,
        offline_batch_size=32,
        pref_batch_size=8,
    )
    result = train(cfg, offline, preferences, progress=False)
    values = result.metrics.value.to_numpy(dtype=float)
    assert np.isfinite(values).all()
    rows = result.metrics[(result.metrics.kind == "train") & (result.metrics.metric == "regulariser")]
    if cfg.lam == 0:
        assert (rows.value == 0).all()  # lambda = 0: the regulariser is off, and nothing divides by it
    else:
        assert (rows.value > 0).all()


def test_target_clipping_follows_lambda_and_is_off_at_zero() -> None:
    assert target_clip(variant_config("ipl-lambda-0", "metaworld")) is None
    assert target_clip(variant_config("ipl-lambda-0.5", "metaworld")) == pytest.approx(1 / (0.5 * 0.01))
    assert target_clip(variant_config("ipl-lambda-8", "metaworld")) == pytest.approx(1 / (8 * 0.01))


def test_mr_reward_model_stops_training_after_its_reward_steps(pendulum) -> None:
    offline, preferences = pendulum
    cfg = variant_config(
        "mr-reward-steps-20",
        "metaworld",
        reward_steps=10_000,
        hidden_dim=16,
        steps=30,
        log_every=1,
        eval_every=0,
        checkpoint_every=0,
        offline_batch_size=32,
        pref_batch_size=8,
    )
    assert cfg.reward_steps == 20
    result = train(cfg, offline, preferences, progress=False)
    reward_rows = result.metrics[result.metrics.metric == "reward_loss"]
    assert sorted(reward_rows.step) == list(range(1, 21))  # logged at steps 1..20 only
    assert math.isfinite(float(reward_rows.value.iloc[-1]))


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDY_NAMES)
def test_smoke_grid_runs_end_to_end_through_the_runner(study: str, tmp_path: Path) -> None:
    """About 40 s per study: every smoke cell through papermill, then the aggregation and load_study."""
    from ipl_core.experiments.aggregate import aggregate
    from ipl_core.experiments.results import load_study
    from ipl_core.experiments.run import run_grid

    cells = expand(study, "smoke")
    run_grid(cells, tmp_path, jobs=1)
    aggregate(study, "smoke", tmp_path)
    results = load_study(study, root=tmp_path, profile="smoke")
    runs, summary = results.tables["runs"], results.tables["summary"]
    assert set(runs.variant) == {c.params["variant"] for c in cells}
    assert {"success", "return", "num_parameters", "lam", "reward_steps"} <= set(runs.columns)
    assert set(summary.metric) == {"success", "return"}
    assert runs.step.max() == cells[0].params["steps"]
    assert results.info.profile == "smoke" and results.info.steps == cells[0].params["steps"]


def test_train_result_evaluations_has_one_row_per_evaluation_and_a_column_per_metric(pendulum) -> None:
    offline, preferences = pendulum
    cfg = variant_config("ipl-64", "metaworld", steps=20, log_every=5, eval_every=10, checkpoint_every=0,
                         offline_batch_size=32, pref_batch_size=8)
    result = train(cfg, offline, preferences, progress=False)
    wide = result.evaluations()
    tidy = result.metrics[result.metrics.kind == "eval"]
    assert sorted(wide.step) == sorted(tidy.step.unique()) and set(wide.seed) == {cfg.seed}
    for metric in tidy.metric.unique():
        expected = tidy[tidy.metric == metric].sort_values("step").value.to_numpy()
        np.testing.assert_allclose(wide.sort_values("step")[metric].to_numpy(), expected)
