"""Every study of the book and its settings at every profile, as data in one place.

A study is an experiment notebook ``book/experiments/<name>.ipynb`` plus a grid: for each profile, the
values of the grid axes (methods, tasks, data sizes, seeds...) and the fixed settings (steps, evaluation
schedule...). The runner expands the grid into cells and runs the notebook once per cell with those values
as papermill parameters. ``smoke`` runs in seconds on 2 CPU cores (CI and every build); ``cpu`` is a few
configurations with five seeds and 20 evaluation episodes per point (10 where the score is a return) that
2 cores finish in at most about two hours per study with ``--jobs 2``; ``full`` is the paper's grid, steps,
seeds and evaluation schedule on this book's data. Nothing else branches on the profile.
Taught in the appendix "Running the experiments at scale".
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from ipl_core import config
from ipl_core.io import PROFILES
from ipl_core.online.config import load_task_config

RUNTIME_SETTINGS = ("device",)
"""Settings that say where a cell runs, not what it computes: every study accepts them, and they are left
out of the config id, so a cell started on one device is complete (or resumes) on another."""

DEVICE_PATTERN = re.compile(r"cpu|cuda(:[0-9]+)?")


@dataclass(frozen=True)
class Study:
    """A study: its notebook, the grid axes and the fixed settings of each profile."""

    name: str
    """Name of the experiment notebook (without ``.ipynb``) and of its results folder."""
    grid: dict[str, dict[str, tuple[Any, ...]]]
    """For each profile (every one of :data:`~ipl_core.io.PROFILES`, and any of
    :data:`~ipl_core.io.EXTRA_PROFILES`), the values of each grid axis; the axis ``seed`` is always
    present."""
    settings: dict[str, dict[str, Any]]
    """For each profile, the parameters that are the same in every cell."""
    score_metrics: tuple[str, ...]
    """Columns of each run's ``metrics.parquet`` that the aggregation summarises over seeds."""
    summary_keys: tuple[str, ...] = ()
    """Grid axes the aggregation groups by; all axes but ``seed`` when empty."""
    device_use: Literal["torch", "none"] = "torch"
    """What the setting ``device`` (default ``cpu``) does: ``torch`` puts every tensor on it; ``none``
    accepts and ignores it (nothing in the study uses torch)."""


@dataclass(frozen=True)
class Cell:
    """One run of a study notebook: its parameters and where its results go."""

    study: str
    profile: str
    params: dict[str, Any]
    """Grid values and settings, passed to the notebook as papermill parameters."""
    axes: tuple[str, ...]
    """Names of the grid axes among ``params`` (the rest are settings)."""

    @property
    def config_id(self) -> str:
        """A readable, stable name of the configuration without the seed, e.g. ``method=ipl,task=drawer``."""
        keys = sorted(k for k in self.axes if k != "seed")
        readable = ",".join(f"{k}={self.params[k]}" for k in keys) or "default"
        settings = {k: v for k, v in self.params.items()
                    if k not in keys and k != "seed" and k not in RUNTIME_SETTINGS}
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return f"{readable},settings={digest}"

    @property
    def relative_dir(self) -> str:
        """``<config-id>/seed=<k>`` below ``results/<study>/<profile>/``."""
        return f"{self.config_id}/seed={self.params['seed']}"


STUDIES: dict[str, Study] = {
    "bradley-terry": Study(
        name="bradley-terry",
        grid={
            "smoke": {"num_queries": (10, 100, 1000), "seed": (0, 1)},
            "cpu": {"num_queries": (10, 30, 100, 300, 1000, 3000), "seed": tuple(range(10))},  # minutes
            "full": {"num_queries": (10, 30, 100, 300, 1000, 3000, 10000), "seed": tuple(range(30))},
        },
        settings={profile: {"num_states": 20, "segment_length": 5, "l2": 1e-3} for profile in PROFILES},
        score_metrics=("test_agreement", "reward_correlation", "test_probability_mae"),
        device_use="none",  # a closed-form logistic fit on a 20-state chain: numpy and a few torch calls
    ),
}


CPU_SEEDS = (0, 1, 2, 3, 4)
"""Seeds of every configuration at the ``cpu`` profile: five, the fewest for which an interquartile mean
and a bootstrap interval across seeds mean something (Agarwal et al., 2021)."""

_METAWORLD_COMMON = {"segment_length": 25, "subsample_length": 16, "noise_std": 1.0, "data_seed": 0}
"""IPL Table 6 and Appendix B.3: segments of 25 steps sub-sampled to 16, expert noise std 1.0."""

_SCALING_SETTINGS: dict[str, dict[str, Any]] = {
    # Seconds: tiny datasets (2 episodes of 50 steps per source), 40 updates, one short evaluation.
    "smoke": {**_METAWORLD_COMMON, "episodes_per_source": 2, "episode_length": 50, "steps": 40,
              "reward_steps": 40, "eval_every": 20, "eval_episodes": 1, "log_every": 10,
              "checkpoint_every": 20},
    # A quarter of the paper's data per source, 5k updates (the paper: 200k), MR's reward trained for 2k
    # of them (the paper: 20k of 200k), 20 evaluation episodes every 1k updates (the paper: every 2.5k).
    "cpu": {**_METAWORLD_COMMON, "episodes_per_source": 25, "episode_length": 500, "steps": 5000,
            "reward_steps": 2000, "eval_every": 1000, "eval_episodes": 20, "log_every": 250,
            "checkpoint_every": 1000},
    # IPL Appendix B.3 and Table 6: 100 episodes per source, 200k updates, 20 episodes every 2,500 steps.
    "full": {**_METAWORLD_COMMON, "episodes_per_source": 100, "episode_length": 500, "steps": 200_000,
             "reward_steps": 20_000, "eval_every": 2500, "eval_episodes": 20, "log_every": 1000,
             "checkpoint_every": 10_000},
}
"""The data recipe and schedule of ipl-metaworld-scaling at each of the profiles every study has; the
budget, sensitivity and CPL studies share them."""

STUDIES["ipl-metaworld-scaling"] = Study(
    name="ipl-metaworld-scaling",
    grid={
        # CPL (Hejna et al. 2024) and BC on the segments (CPL's SFT baseline) run beside IPL and MR at every
        # profile, on the same return-labelled pairs (BC reads the labels after its first phase).
        "smoke": {"method": ("ipl", "mr", "cpl", "bc"), "task": ("button-press",), "num_queries": (20,),
                  "seed": (0,)},
        # 16 configurations x 5 seeds; the IPL and MR cells took 2 h 27 min of wall time with --jobs 2 and
        # 5 seeds per process, CPL and BC add about 0.4 h (the dry run's estimate).
        "cpu": {"method": ("ipl", "mr", "cpl", "bc"), "task": ("button-press", "drawer-open"),
                "num_queries": (500, 2000), "seed": CPU_SEEDS},
        "full": {"method": ("ipl", "mr", "cpl", "bc"),
                 "task": ("button-press", "drawer-open", "sweep-into", "plate-slide", "assembly"),
                 "num_queries": (500, 1000, 2000, 4000), "seed": (0, 1, 2, 3, 4)},
        # One cell of IPL Table 3 at the paper's scale on CPU cores: the full profile's settings, IPL and MR
        # on drawer-open with 4,000 queries (the paper: 96.6 +- 1.3 and 94.6 +- 3.9), five seeds.
        "paper-cpu": {"method": ("ipl", "mr"), "task": ("drawer-open",), "num_queries": (4000,),
                      "seed": (0, 1, 2, 3, 4)},
    },
    # paper-cpu: the full profile's settings unchanged, so each of its cells is the full profile's cell of the
    # same name (checkpoints every 10k updates: a run stopped part-way resumes from the last)
    settings={**_SCALING_SETTINGS, "paper-cpu": _SCALING_SETTINGS["full"]},
    score_metrics=("success", "return"),
)


def profile_table(profile: str, reference: str = "full") -> list[dict[str, Any]]:
    """What ``profile`` shrinks, study by study, read from ``STUDIES`` (so it cannot drift from what
    runs): the number of cells, each grid axis as "values at profile of values at reference", and every
    setting whose value differs from ``reference``'s, written "value (reference value)". A setting
    ``None`` takes the value of the task's file (the online studies, ``configs/online/<task>.toml``); it
    is read from the file of the profile's first task."""
    if profile not in PROFILES or reference not in PROFILES:
        raise KeyError(f"unknown profile {profile!r} or {reference!r}; expected one of {PROFILES}")

    def show(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)

    rows = []
    for name, study in STUDIES.items():
        grid, full = study.grid[profile], study.grid[reference]
        axes = [f"{axis} {len(values)} of {len(full[axis])}" if set(values) != set(full[axis])
                else f"{axis} {len(values)}" for axis, values in grid.items()]
        task_file = load_task_config(grid["task"][0]) if "algorithm" in grid else None
        ours, theirs = (
            {key: getattr(task_file, key) if value is None and task_file else value
             for key, value in settings.items()}
            for settings in (study.settings[profile], study.settings[reference])
        )
        changed = [f"{key} {show(value)} ({show(theirs.get(key))})" for key, value in ours.items()
                   if value != theirs.get(key)]
        rows.append({"study": name, "cells": len(expand(name, profile)), "grid": ", ".join(axes),
                     "changed settings (reference value)": "; ".join(changed) or "none"})
    return rows


def get_study(name: str) -> Study:
    """The study called ``name``; a clear error lists the known ones otherwise."""
    if name not in STUDIES:
        raise KeyError(f"unknown study {name!r}; known studies: {sorted(STUDIES)}")
    return STUDIES[name]


def check_device(study: Study, device: Any) -> str:
    """``device`` if ``study`` can run there; else a ValueError naming the setting and what was expected
    (for the torch studies, :func:`ipl_core.config.check_device`: CUDA present, index in range)."""
    setting = f"study {study.name!r}: setting device"
    if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
        raise ValueError(f"{setting}={device!r} is not a device; expected 'cpu', 'cuda' or 'cuda:N'")
    if study.device_use == "torch":
        config.check_device(device, setting)
    return device


def expand(name: str, profile: str, **overrides: tuple[Any, ...] | Any) -> list[Cell]:
    """All cells of a study at a profile, in a stable order. ``overrides`` replace grid axes (a tuple of
    values) or settings (one value), e.g. ``expand("ipl-metaworld-scaling", "cpu", seed=(0,))``. Every
    study has the setting ``device`` (default ``cpu``, see :data:`RUNTIME_SETTINGS`), checked here by
    :func:`check_device`, so a bad device stops the runner before any work."""
    study = get_study(name)
    if profile not in study.grid:
        raise KeyError(f"unknown profile {profile!r} for study {name!r}; expected one of {tuple(study.grid)}")
    grid = dict(study.grid[profile])
    settings = {**dict(study.settings[profile]), "device": "cpu"}
    for key, value in overrides.items():
        if key in grid:
            grid[key] = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        elif key in settings:
            settings[key] = value
        else:
            raise KeyError(
                f"study {name!r} has no grid axis or setting {key!r}; "
                f"axes: {sorted(grid)}, settings: {sorted(settings)}"
            )
    check_device(study, settings["device"])
    axes = list(grid)
    return [
        Cell(name, profile, {**settings, **dict(zip(axes, values, strict=True))}, tuple(axes))
        for values in itertools.product(*(grid[a] for a in axes))
    ]


ONLINE_SMOKE_SETTINGS: dict[str, Any] = {
    "total_steps": 600, "episode_length": 100, "hidden_dim": 64, "hidden_depth": 2, "batch_size": 64,
    "replay_capacity": 600, "num_seed_steps": 100, "num_unsup_steps": 100, "segment_length": 10,
    "reward_hidden_dim": 32, "reward_batch_size": 16, "reward_max_epochs": 20, "feedback_budget": 40,
    "feedback_per_round": 10, "feedback_interval": 100, "mrn_interval": 100, "mrn_outer_batch": 16,
    "surf_crop": 2, "surf_reward_epochs": 20, "surf_unlabelled_ratio": 10, "ipl_pref_batch": 8,
    "ppo_rollout_steps": 100, "ppo_epochs": 2, "ppo_minibatch": 50, "ppo_hidden_dim": 32,
    "eval_interval": 300, "eval_episodes": 1, "log_interval": 100, "checkpoint_interval": 0,
}
"""Overrides of any task's TOML that make an online run finish in seconds on 2 CPU cores: 600 steps of
100-step episodes, 64-unit networks, 40 labels in rounds of 10 every 100 steps, two evaluations."""

ONLINE_CPU_SETTINGS: dict[str, Any] = {
    **dict.fromkeys(ONLINE_SMOKE_SETTINGS), "total_steps": 20_000, "hidden_dim": 256, "batch_size": 256,
    "num_unsup_steps": 4000, "feedback_per_round": 25, "feedback_interval": 4000, "surf_reward_epochs": 50,
    "ppo_rollout_steps": 2000,
    "eval_interval": 5000, "eval_episodes": 10, "log_interval": 1000, "checkpoint_interval": 5000,
}
"""About 6-7 minutes of compute per seed with five seeds per process and two processes at once on 2 cores
(measured 2026-11-30: SAC and MRN 5.5 min, SURF 6.9, PEBBLE 7.4; one seed per process, 2026-11-29, took
10-13 min, Preference PPO 2 min and IPL online 30 min, whose critic also scores 16 labelled pairs of
50-step segments at every update). 20k steps of walker-walk (MRN's released walker command: 1M),
networks of 256 units and batches of 256 (the paper: 1024), 1k random and 4k unsupervised steps (the paper:
1k and 9k), the task's label budget in four rounds, at steps 5k, 9k, 13k and 17k (the last round's labels
have 3k steps to reach the policy; MRN: a round every 20k), ten evaluation episodes every 5k steps (the
paper: every 10k). SURF keeps its walker settings (tau 0.99, mu 4, 100 unlabelled pairs per label) but
trains 50 epochs' worth of reward iterations per round where its command trains 1000 (40 instead of 782
iterations by 100 labels): one iteration of those settings took 20.5 s for five seeds on one core
(2026-12-07), so the command's 1,955 iterations over the four rounds would take 11 hours. Far too short to
learn to walk: it compares the methods' first 20k steps, not MRN's scores. ``None`` keeps the task's TOML
value."""

ONLINE_FULL_SETTINGS: dict[str, Any] = dict.fromkeys(ONLINE_SMOKE_SETTINGS)
"""MRN Sec. 5.1 and B-Pref: every value of ``configs/online/<task>.toml`` unchanged (``None``)."""

_MRN_TASKS = ("walker-walk", "cheetah-run", "quadruped-walk", "button-press-v3", "window-open-v3",
              "door-open-v3", "drawer-open-v3", "sweep-into-v3", "hammer-v3")
"""MRN Fig. 2 (six MetaWorld tasks) and Fig. 3 (three DeepMind Control tasks)."""

STUDIES["online"] = Study(
    name="online",
    grid={
        "smoke": {"algorithm": ("sac", "pebble", "surf", "mrn", "ipl", "ppo"),
                  "task": ("walker-walk", "door-open-v3"), "seed": (0,)},
        # MRN's comparison (SAC with the true reward, PEBBLE, SURF, MRN) on Walker, five seeds: 1 h 05 min
        # with --jobs 2 --seeds-per-process 5 (2026-11-30). IPL online, Preference PPO and Door Open run at
        # smoke and full only.
        "cpu": {"algorithm": ("sac", "pebble", "surf", "mrn"), "task": ("walker-walk",), "seed": CPU_SEEDS},
        # MRN Fig. 2-3 and Table 1: every method on nine tasks, ten seeds (plus IPL online, IPL Fig. 5).
        "full": {"algorithm": ("sac", "pebble", "surf", "mrn", "ipl", "ppo"), "task": _MRN_TASKS,
                 "seed": tuple(range(10))},
    },
    settings={"smoke": ONLINE_SMOKE_SETTINGS, "cpu": ONLINE_CPU_SETTINGS, "full": ONLINE_FULL_SETTINGS},
    score_metrics=("return", "success", "q_mc_mse"),
)

STUDIES["online-feedback"] = Study(
    name="online-feedback",
    grid={
        "smoke": {"algorithm": ("pebble", "surf", "mrn"), "task": ("walker-walk", "door-open-v3"),
                  "feedback_budget": (20, 40), "seed": (0,)},
        # PEBBLE against MRN on Walker with 400 labels, five seeds; the chapter reads their 100-label runs
        # from `online`, whose cpu cells have the same settings (walker's budget), rather than training
        # them twice. 400 labels took 6,650 s of compute for the ten seeds with --jobs 2
        # --seeds-per-process 5 on 2 cores (2026-11-30). SURF and Door Open (the rest of MRN Fig. 4) would
        # take the study past two hours, so they run at smoke and full only.
        "cpu": {"algorithm": ("pebble", "mrn"), "task": ("walker-walk",), "feedback_budget": (400,),
                "seed": CPU_SEEDS},
        # MRN Fig. 4: three methods, Walker and Door Open, 100 to 2000 labels, five seeds.
        "full": {"algorithm": ("pebble", "surf", "mrn"), "task": ("walker-walk", "door-open-v3"),
                 "feedback_budget": (100, 400, 1000, 2000), "seed": tuple(range(5))},
    },
    # The budget is a grid axis here. In cpu and full, labels per round are None: the notebook keeps the
    # task's rounds and enlarges them only where the schedule could not spend the budget otherwise.
    settings={
        "smoke": {k: v for k, v in ONLINE_SMOKE_SETTINGS.items() if k != "feedback_budget"},
        "cpu": {k: v for k, v in ONLINE_CPU_SETTINGS.items() if k != "feedback_budget"}
        | {"feedback_per_round": None},
        "full": {k: v for k, v in ONLINE_FULL_SETTINGS.items() if k != "feedback_budget"},
    },
    score_metrics=("return", "success", "q_mc_mse"),
)


# --- IPL efficiency and sensitivity on MetaWorld (IPL Table 8, Fig. 2, Fig. 8) -------------------------
# The axis `variant` names an entry of ipl_core.experiments.variants.VARIANTS (changes to the metaworld
# preset); both studies use the data recipe and schedules of ipl-metaworld-scaling at every profile.

STUDIES["ipl-metaworld-budget"] = Study(
    name="ipl-metaworld-budget",
    grid={
        "smoke": {"variant": ("ipl-64", "mr-35", "mr-64"), "task": ("button-press",), "num_queries": (20,),
                  "seed": (0,)},
        # 6 configurations x 5 seeds of small networks: about 15 minutes with --jobs 2.
        "cpu": {"variant": ("ipl-64", "mr-35", "mr-64"), "task": ("button-press", "drawer-open"),
                "num_queries": (500,), "seed": CPU_SEEDS},
        # IPL Table 8: four tasks (Assembly omitted), four data sizes, five seeds.
        "full": {"variant": ("ipl-64", "mr-35", "mr-64"),
                 "task": ("button-press", "drawer-open", "sweep-into", "plate-slide"),
                 "num_queries": (500, 1000, 2000, 4000), "seed": (0, 1, 2, 3, 4)},
    },
    settings=dict(_SCALING_SETTINGS),
    score_metrics=("success", "return"),
)

STUDIES["ipl-metaworld-sensitivity"] = Study(
    name="ipl-metaworld-sensitivity",
    grid={
        "smoke": {"variant": ("ipl-lambda-0", "ipl-lambda-0.5", "mr-reward-steps-20"),
                  "task": ("drawer-open",), "num_queries": (20,), "seed": (0,)},
        # Table 6's 3x256 networks, 5 configurations x 5 seeds: about 40 minutes with --jobs 2. Three
        # lambdas, and MR's reward trained for 200 or 2k of the 5k updates (the scaling study's MR: 2k).
        "cpu": {"variant": ("ipl-lambda-0", "ipl-lambda-0.5", "ipl-lambda-2", "mr-reward-steps-200",
                            "mr-reward-steps-2000"),
                "task": ("drawer-open",), "num_queries": (500,), "seed": CPU_SEEDS},
        # IPL Fig. 2 middle and right, Fig. 8 (Drawer Open, 500 queries): five lambdas, five reward-step
        # counts around the default 20k of 200k, five seeds.
        "full": {"variant": ("ipl-lambda-0", "ipl-lambda-0.125", "ipl-lambda-0.5", "ipl-lambda-2",
                             "ipl-lambda-8", "mr-reward-steps-2000", "mr-reward-steps-5000",
                             "mr-reward-steps-20000", "mr-reward-steps-50000", "mr-reward-steps-200000"),
                 "task": ("drawer-open",), "num_queries": (500,), "seed": (0, 1, 2, 3, 4)},
    },
    settings=dict(_SCALING_SETTINGS),
    score_metrics=("success", "return"),
)


STUDIES["ipl-metaworld-precision"] = Study(
    name="ipl-metaworld-precision",
    grid={
        "smoke": {"variant": ("ipl-fp32", "ipl-bf16"), "task": ("button-press",), "num_queries": (20,),
                  "seed": (0,)},
        # IPL in float32 and with bfloat16 hidden layers, two tasks, 500 queries, five seeds each.
        "cpu": {"variant": ("ipl-fp32", "ipl-bf16"), "task": ("button-press", "drawer-open"),
                "num_queries": (500,), "seed": CPU_SEEDS},
        "full": {"variant": ("ipl-fp32", "ipl-bf16"), "task": ("button-press", "drawer-open"),
                 "num_queries": (500, 4000), "seed": (0, 1, 2, 3, 4)},
    },
    settings=dict(_SCALING_SETTINGS),
    score_metrics=("success", "return"),
)


# --- CPL's labels on the same MetaWorld data (CPL's MetaWorld experiments: dense comparisons) -----
# CPL's own labels on the MetaWorld data of the scaling study (the "dense" comparisons of CPL's MetaWorld
# experiments): segments are drawn uniformly from the offline data and each is compared with
# ``comparisons_per_segment`` others drawn at random (:func:`ipl_core.data.segments.dense_pairs`); a regret
# teacher labels each pair by the sums of the segments' estimated optimal advantages, A(s_t, a_t) = r_t +
# gamma V(s_{t+1}) - V(s_t), with V the value network of oracle IQL trained on the ground-truth reward of
# the whole offline dataset (:func:`ipl_core.data.metaworld_gen.regret_preferences`; CPL's authors use a SAC
# critic, A = Q - V). The pairs of the scaling study are return-labelled; this study changes the labels and
# keeps everything else, so its cells read beside the scaling study's cells of the same task.

STUDIES["cpl-metaworld"] = Study(
    name="cpl-metaworld",
    grid={
        "smoke": {"method": ("cpl", "ipl", "bc"), "task": ("button-press",), "seed": (0,)},
        # CPL against IPL on one task, five seeds: 10 seeds. The dry run estimates 0.6 CPU-hours at rates
        # measured under load (IPL 17 updates/s), about 17 minutes of wall time with --jobs 2 and one seed
        # per process (IPL's 5-seed group alone takes 27), plus one fit of the oracle's value network (5k
        # IQL updates) that every cell shares, cached under data/: 2 CPU-minutes, 4 minutes of wall time
        # under a load of 6 (measured 2026-11-29; 9 % of the 4,000 regret labels disagree with return).
        "cpu": {"method": ("cpl", "ipl"), "task": ("drawer-open",), "seed": CPU_SEEDS},
        # CPL Table 1's state-based dense columns on the four of its six MetaWorld tasks that this book's
        # data recipe covers, with BC (CPL's SFT) beside them, five seeds.
        "full": {"method": ("cpl", "ipl", "bc"),
                 "task": ("button-press", "drawer-open", "sweep-into", "plate-slide"),
                 "seed": (0, 1, 2, 3, 4)},
    },
    settings={
        # The scaling study's data and schedules; CPL's labels replace the return-labelled pairs. As many
        # segments as 20 (smoke), 500 (cpu) or 1,000 (full) of its pairs hold (CPL's datasets: 2,500), each
        # the first segment of 4 comparisons; the value network behind the advantages trains for value_steps
        # updates.
        "smoke": {**_SCALING_SETTINGS["smoke"], "num_segments": 40, "comparisons_per_segment": 4,
                  "value_steps": 40},
        "cpu": {**_SCALING_SETTINGS["cpu"], "num_segments": 1000, "comparisons_per_segment": 4,
                "value_steps": 5000},
        "full": {**_SCALING_SETTINGS["full"], "num_segments": 2000, "comparisons_per_segment": 4,
                 "value_steps": 200_000},
    },
    score_metrics=("success", "return"),
)


# --- Offline locomotion with the SAC-made datasets (IPL Table 1, Table 2, Table 7) ----------------------

_LOCOMOTION_COMMON = {"teacher": "oracle", "data_seed": 0, "num_queries": None}
"""Scripted labels instead of Kim et al.'s human ones; ``num_queries=None`` takes their counts (500 pairs for
medium-replay, 100 for medium-expert, :data:`ipl_core.data.locomotion_prefs.HUMAN_LABEL_QUERIES`)."""

STUDIES["ipl-locomotion"] = Study(
    name="ipl-locomotion",
    grid={
        "smoke": {"variant": ("iql", "mr", "ipl", "pt"), "dataset": ("hopper-medium-replay",), "seed": (0,)},
        # IPL against the oracle (IQL on the true reward) and MR of Table 1, and IPL without sub-sampled
        # segments (Table 2), on the two medium-replay datasets, five seeds. Measured on 2026-11-30 with
        # --jobs 2 --seeds-per-process 5 on 2 cores at 2k updates: 22 minutes of wall time, 2,618 s of
        # compute (per seed: IPL 1.5 minutes, No Aug 2, IQL and MR 0.5), hence 5k updates here: 8,325 s of
        # compute, 71 minutes of wall time with the test suite running beside it.
        "cpu": {"variant": ("ipl", "iql", "mr", "ipl-no-aug"),
                "dataset": ("hopper-medium-replay", "walker2d-medium-replay"), "seed": CPU_SEEDS},
        # IPL Table 1 and Table 7: every column on the four locomotion datasets, five seeds.
        "full": {"variant": ("iql", "mr", "nmr", "pt", "brex", "ipl", "ipl-no-aug", "ipl-lambda-0",
                             "ipl-xql"),
                 "dataset": ("hopper-medium-replay", "hopper-medium-expert", "walker2d-medium-replay",
                             "walker2d-medium-expert"),
                 "seed": (0, 1, 2, 3, 4)},
    },
    settings={
        # Seconds: the smoke SAC datasets (made in the notebook; random-policy episodes are short, so
        # 10-step segments cut to 8), 40 updates, one short evaluation.
        "smoke": {**_LOCOMOTION_COMMON, "data_profile": "smoke", "make_data": True, "num_queries": 50,
                  "segment_length": 10, "subsample_length": 8, "steps": 40, "reward_steps": 40,
                  "eval_every": 40, "eval_episodes": 1, "eval_episode_length": 100, "log_every": 10,
                  "checkpoint_every": 20},
        # The cpu datasets (100k SAC steps, 100k collected steps per policy) must exist. 5k updates (the
        # paper: 1M), MR's reward trained for 2.5k of them (the paper: 20k of 1M), ten 1000-step evaluation
        # episodes every 1250 steps.
        "cpu": {**_LOCOMOTION_COMMON, "data_profile": "cpu", "make_data": False, "segment_length": 100,
                "subsample_length": 64, "steps": 5000, "reward_steps": 2500, "eval_every": 1250,
                "eval_episodes": 10, "eval_episode_length": 1000, "log_every": 250, "checkpoint_every": 1250},
        # IPL App. B.2 and Table 5: k = 100 cut to s = 64, 1M updates, MR's reward for 20k, ten evaluation
        # episodes every 5000 steps; data from `python -m ipl_core.online.locomotion_data <task> --profile
        # full --out data/locomotion/full/<task>`.
        "full": {**_LOCOMOTION_COMMON, "data_profile": "full", "make_data": False, "segment_length": 100,
                 "subsample_length": 64, "steps": 1_000_000, "reward_steps": 20_000, "eval_every": 5000,
                 "eval_episodes": 10, "eval_episode_length": 1000, "log_every": 1000,
                 "checkpoint_every": 10_000},
    },
    score_metrics=("normalized_score", "return", "pref_accuracy"),
)
