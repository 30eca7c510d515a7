"""The per-task TOML files hold MRN Sec. 5.1's numbers, each with a source, and the loader fails clearly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ipl_core.experiments.studies import ONLINE_SMOKE_SETTINGS
from ipl_core.online.config import (
    CONFIG_DIR,
    OnlineConfig,
    config_sources,
    load_task_config,
    study_config,
)

# MRN Sec. 5.1: amount of feedback and bi-level frequency N per task.
MRN_SETTINGS = {
    "walker-walk": (100, 1000), "cheetah-run": (100, 5000), "quadruped-walk": (700, 3000),
    "button-press-v3": (100, 5000), "window-open-v3": (100, 5000), "door-open-v3": (1000, 10000),
    "drawer-open-v3": (1000, 5000), "sweep-into-v3": (4000, 10000), "hammer-v3": (10000, 5000),
}


def test_every_task_has_a_config_file() -> None:
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.toml")) == sorted(MRN_SETTINGS)


@pytest.mark.parametrize("task", sorted(MRN_SETTINGS))
def test_task_config_matches_the_paper(task: str) -> None:
    cfg = load_task_config(task)
    assert cfg.task == task
    assert (cfg.feedback_budget, cfg.mrn_interval) == MRN_SETTINGS[task]
    assert cfg.ensemble_size == 3 and cfg.query_selection == "disagreement" and cfg.teacher == "oracle"
    sources = config_sources(task)
    assert "MRN Sec. 5.1" in sources["feedback_budget"] and "MRN Sec. 5.1" in sources["mrn_interval"]
    # a run of the full budget fits in the run: the rounds needed start before the last step
    rounds = -(-cfg.feedback_budget // cfg.feedback_per_round)
    assert cfg.learning_starts + (rounds - 1) * cfg.feedback_interval < cfg.total_steps


def test_overrides_apply_and_are_checked() -> None:
    cfg = load_task_config("walker-walk", **ONLINE_SMOKE_SETTINGS, algorithm="pebble")
    assert cfg.total_steps == ONLINE_SMOKE_SETTINGS["total_steps"] and cfg.algorithm == "pebble"
    with pytest.raises(KeyError, match="unknown setting 'learning_rate'"):
        load_task_config("walker-walk", learning_rate=1e-3)
    with pytest.raises(TypeError, match="'total_steps' must be int"):
        load_task_config("walker-walk", total_steps="many")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "task.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "error", "match"), [
    ('[settings]\nseed = 1\n', ValueError, r"exactly the tables \[settings\] and \[sources\]"),
    ('[settings]\nseed = 1\n[sources]\n', ValueError, r"without a \[sources\] entry: \['seed'\]"),
    ('[settings]\n[sources]\nseed = "x"\n', ValueError, r"entries without a setting: \['seed'\]"),
    ('[settings]\nsede = 1\n[sources]\nsede = "x"\n', KeyError, "unknown setting 'sede'"),
    ('[settings]\ngamma = "high"\n[sources]\ngamma = "x"\n', TypeError, "'gamma' must be float"),
    ('[settings\n', ValueError, "not valid TOML"),
    ('[settings]\ngamma = 1.5\n[sources]\ngamma = "x"\n', ValueError, r"gamma must lie in \(0, 1\]"),
])
def test_loader_errors_name_the_problem(tmp_path: Path, text: str, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_task_config(_write(tmp_path, text))


def test_unknown_task_lists_known_tasks() -> None:
    with pytest.raises(FileNotFoundError, match=r"known tasks: .*walker-walk"):
        load_task_config("walker-run")


def test_ints_are_accepted_for_floats(tmp_path: Path) -> None:
    cfg = load_task_config(_write(tmp_path, '[settings]\ngamma = 1\n[sources]\ngamma = "x"\n'))
    assert cfg.gamma == 1.0 and isinstance(cfg.gamma, float)


@pytest.mark.parametrize(("field", "value", "match"), [
    ("algorithm", "ppo2", "algorithm must be one of"),
    ("query_selection", "random", "query_selection must be one of"),
    ("teacher", "expert", "teacher must be one of"),
    ("batch_size", 0, "batch_size must be positive"),
    ("critic_lr", float("nan"), "critic_lr must be finite and positive"),
    ("surf_crop", 50, "surf_crop must lie in"),
    ("surf_window", 2, "at most 2 \\* surf_window"),
    ("mrn_outer_optimizer", "sgd", "mrn_outer_optimizer must be one of"),
    ("reset_update", -1, "reset_update must be >= 0"),
    ("ensemble_size", 1, "needs ensemble_size >= 2, got 1"),
])
def test_config_validation(field: str, value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OnlineConfig(**{field: value})


def test_every_field_is_documented() -> None:
    source = (CONFIG_DIR.parents[1] / "ipl_core" / "online" / "config.py").read_text()
    for field in dataclasses.fields(OnlineConfig):
        lines = source.splitlines()
        line = next(i for i, text in enumerate(lines) if text.strip().startswith(f"{field.name}:"))
        assert lines[line + 1].strip().startswith('"""'), field.name


def test_study_config_keeps_the_toml_where_a_setting_is_none() -> None:
    toml = load_task_config("walker-walk")
    cfg = study_config("walker-walk", total_steps=None, hidden_dim=256, algorithm="sac")
    assert cfg.total_steps == toml.total_steps and cfg.hidden_dim == 256 and cfg.algorithm == "sac"
    # feedback_per_round=None keeps the task's rounds when they can spend the budget (walker: 10 x 10) ...
    assert study_config("walker-walk", feedback_per_round=None).feedback_per_round == toml.feedback_per_round
    # ... and enlarges them otherwise: 2000 labels in the 50 rounds of 1M steps need 40 per round
    assert toml.feedback_rounds == 50
    cfg = study_config("walker-walk", feedback_budget=2000, feedback_per_round=None)
    assert cfg.feedback_per_round == 40 and cfg.feedback_rounds * cfg.feedback_per_round >= 2000
    # an explicit value that cannot spend the budget is refused, naming the fields
    with pytest.raises(ValueError, match=r"feedback_budget = 2000 labels do not fit .* 50 rounds"):
        study_config("walker-walk", feedback_budget=2000, feedback_per_round=10)


def test_a_round_on_the_last_step_does_not_count() -> None:
    base = {"num_seed_steps": 1000, "num_unsup_steps": 4000, "feedback_interval": 5000,
            "feedback_per_round": 25, "feedback_budget": 75}
    # rounds at 5k, 10k, 15k; one at 20k would train a reward that no update of a 20k-step run reads
    assert OnlineConfig(total_steps=20_000, **base).feedback_rounds == 3
    assert OnlineConfig(total_steps=20_001, **base).feedback_rounds == 4
    assert OnlineConfig(total_steps=5000, algorithm="sac", **base).feedback_rounds == 0
    with pytest.raises(ValueError, match=r"3 rounds .* of feedback_per_round = 25"):
        OnlineConfig(total_steps=20_000, **{**base, "feedback_budget": 100})
    # study_config enlarges the rounds with the same count: ceil(100 / 3) = 34
    schedule = {k: v for k, v in base.items() if k not in ("feedback_per_round", "feedback_budget")}
    cfg = study_config("walker-walk", total_steps=20_000, feedback_budget=100, feedback_per_round=None,
                       **schedule)
    assert cfg.feedback_per_round == 34
