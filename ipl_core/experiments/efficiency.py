"""IPL's efficiency studies on MetaWorld: the parameters of a variant and the run of one grid cell.

The studies ``ipl-metaworld-budget`` (``ipl-64``, ``mr-35``, ``mr-64``: IPL Table 4, Table 8, Fig. 2 left) and
``ipl-metaworld-sensitivity`` (``ipl-lambda-<x>``, ``mr-reward-steps-<n>``: Fig. 2 middle and right, Fig. 8)
name variants of :data:`ipl_core.experiments.variants.VARIANTS` on the ``metaworld`` preset (Table 6); their
notebooks call :func:`run_variant`. Taught in "IPL Fig. 2 and Table 8" (book/reproduction/ipl_efficiency).
``ipl-metaworld-precision`` (``ipl-fp32``, ``ipl-bf16``) runs the same way; the IPL chapter
(book/ipl/offline) reads it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ipl_core.experiments.variants import get_variant, variant_config
from ipl_core.nets import count_parameters

METAWORLD_OBS_DIM, METAWORLD_ACT_DIM = 39, 4
"""MetaWorld 3 observation and action sizes (the shapes of IPL Table 4's budget rows)."""


def variant_parameters(
    variant: str, obs_dim: int = METAWORLD_OBS_DIM, act_dim: int = METAWORLD_ACT_DIM
) -> int:
    """Learnable parameters of ``variant``'s agent (the quantity of IPL Table 4), at MetaWorld shapes."""
    from ipl_core.agents import make_agent

    cfg = variant_config(variant, "metaworld")
    return count_parameters(make_agent(cfg.method, obs_dim, act_dim, cfg.hidden_dims))


def describe_variant(variant: str, **settings: Any) -> dict[str, Any]:
    """The columns that tell variants apart in a results table: label, method, widths, lambda (None where
    the method is not IPL), reward steps (None where it has no reward model) and parameter count, for the
    config :func:`~ipl_core.experiments.variants.variant_config` resolves with ``settings``."""
    cfg = variant_config(variant, "metaworld", **settings)
    return {
        "variant": variant,
        "label": get_variant(variant).label,
        "method": cfg.method,
        "hidden_dim": cfg.hidden_dim,
        "num_layers": cfg.num_layers,
        "lam": cfg.lam if cfg.method.startswith("ipl") else None,
        "reward_steps": cfg.reward_steps if cfg.method == "mr" else None,
        "num_parameters": variant_parameters(variant),
    }


def run_variant(
    variant: str,
    task: str,
    num_queries: int,
    seeds: Sequence[int],
    out_dirs: Sequence[str | Path],
    *,
    episodes_per_source: int,
    episode_length: int,
    segment_length: int,
    noise_std: float,
    data_seed: int,
    progress: bool = False,
    **settings: Any,
) -> list[pd.DataFrame]:
    """One cell of an efficiency study, all its ``seeds`` in one process: make (or reuse) the task's
    MetaWorld data with the recipe of IPL App. B.3, train ``variant`` on the preference data alone
    (D_o = {(s, a, s') in D_p}, IPL Sec. 4.3) for every seed at once (:func:`ipl_core.trainer.train_seeds`,
    seed k's checkpoints in ``out_dirs[k]``) and evaluate every ``settings["eval_every"]`` steps on fresh
    goals (evaluation seeds 10,000 + seed). ``settings`` are OfflineConfig fields (steps, reward_steps,
    eval_every, eval_episodes, device, ...). Returns, per seed, one row per evaluation: seed, step, success,
    return, pref_accuracy, and the columns of :func:`describe_variant`."""
    from ipl_core.data.metaworld_gen import MetaWorldRecipe, generate_metaworld, make_metaworld_env
    from ipl_core.data.native import load_preferences
    from ipl_core.trainer import GymEvaluator, train_seeds

    recipe = MetaWorldRecipe(
        task=task,
        episodes_per_source=episodes_per_source,
        episode_length=episode_length,
        noise_std=noise_std,
        query_counts=(num_queries,),
        segment_length=segment_length,
        seed=data_seed,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Constant.*")  # the scripted policies' chatter
        files = generate_metaworld(recipe, progress=False)
    preferences = load_preferences(files.preferences[num_queries])
    offline = preferences.transitions()
    config = variant_config(variant, "metaworld", **settings)
    evaluator = GymEvaluator(
        lambda seed: make_metaworld_env(task, seed=seed),
        episodes=config.eval_episodes,
        seeds=seeds,
        max_episode_steps=episode_length,
    )
    results = train_seeds(config, seeds, offline, preferences, out_dirs=list(out_dirs), evaluate=evaluator,
                          progress=progress)
    return [result.evaluations().assign(**describe_variant(variant, **settings)) for result in results]
