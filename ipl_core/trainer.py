"""The offline trainer: any method of :mod:`ipl_core.offline` for ``cfg.steps`` steps, with logging,
evaluation, atomic checkpoints and exact resumption.

Output folder layout (when ``out_dir`` is given): ``config.json`` (the resolved config), ``metrics.parquet``
(a tidy table: one row per step, kind, metric and value) and ``checkpoint.pt`` (agent, optimisers, random
states, step and the metric rows so far). A run started again with the same folder and config resumes
from its checkpoint and reproduces, bit for bit on CPU, the metrics of a run that was never interrupted.
Taught in "IPL in practice" (book/ipl/offline.ipynb).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ipl_core.agents import IPL_METHODS, Agent, make_agent
from ipl_core.batches import full_preference_batch, sample_offline_batch, sample_preference_batch
from ipl_core.config import OfflineConfig
from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.offline import (
    is_markovian,
    make_optimizers,
    preference_accuracy,
    trains_by_gradient,
    update_function,
)
from ipl_core.results import atomic_write, write_json, write_table

Evaluator = Callable[[Agent], dict[str, float]]
"""Maps an agent to evaluation metrics, e.g. ``{"return": ..., "success": ...}``."""

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.parquet"
CONFIG = "config.json"


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    agent: Agent
    """The trained agent (on ``cfg.device``)."""
    metrics: pd.DataFrame
    """Tidy table: method, seed, step, kind ("train" or "eval"), metric, value."""
    steps_done: int
    """Gradient steps taken in total (less than ``cfg.steps`` only when stopped by ``stop_at``)."""
    wall_time_s: float
    """Seconds this call took."""

    def evaluations(self) -> pd.DataFrame:
        """The evaluation rows of :attr:`metrics`, one row per (seed, step) and one column per metric."""
        evals = self.metrics[self.metrics.kind == "eval"]
        wide = evals.pivot_table(index=["seed", "step"], columns="metric", values="value").reset_index()
        wide.columns.name = None
        return wide


def _check_data(cfg: OfflineConfig, offline: OfflineDataset, preferences: PreferenceDataset | None) -> None:
    if preferences is None:
        if cfg.method != "iql":
            raise ValueError(f"method {cfg.method!r} learns from preferences: pass a PreferenceDataset")
        return
    if (preferences.obs_dim, preferences.act_dim) != (offline.obs_dim, offline.act_dim):
        raise ValueError(
            f"preferences have obs_dim={preferences.obs_dim}, act_dim={preferences.act_dim} but the offline "
            f"dataset has obs_dim={offline.obs_dim}, act_dim={offline.act_dim}; expected equal"
        )
    length = preferences.segment_length
    if cfg.subsample_length > length:
        raise ValueError(f"OfflineConfig.subsample_length={cfg.subsample_length} exceeds the {length} "
                         f"observations of each preference segment; expected at most {length} (or 0)")
    if length < 2:
        raise ValueError(f"preference segments hold {length} observation(s); expected at least 2")


def _rows(step: int, kind: str, values: dict[str, float], cfg: OfflineConfig) -> list[dict[str, Any]]:
    return [{"method": cfg.method, "seed": cfg.seed, "step": step, "kind": kind, "metric": name,
             "value": float(value)} for name, value in values.items()]


def _table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = ["method", "seed", "step", "kind", "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


def _config_dict(cfg: OfflineConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _check_resumable(saved: dict[str, Any], cfg: OfflineConfig) -> None:
    current = _config_dict(cfg)
    differ = sorted(k for k in current if k != "steps" and saved.get(k) != current[k])
    if differ:
        raise ValueError(
            f"the checkpoint was made with a different config (fields {differ}: "
            f"{ {k: saved.get(k) for k in differ} } vs { {k: current[k] for k in differ} }); "
            "use a new output folder or the same config"
        )


def train(cfg: OfflineConfig, offline: OfflineDataset, preferences: PreferenceDataset | None, *,
          out_dir: str | Path | None = None, evaluate: Evaluator | None = None,
          eval_preferences: PreferenceDataset | None = None, progress: bool = True,
          stop_at: int | None = None) -> TrainResult:
    """Train ``cfg.method`` on ``offline`` transitions and ``preferences``.

    Every ``cfg.log_every`` steps the update's metrics (losses, batch preference accuracy, implicit reward
    scale) are logged; every ``cfg.eval_every`` steps and at the end, the preference accuracy on
    ``eval_preferences`` (default: the training pairs, whole segments) and ``evaluate(agent)`` if given.
    With ``out_dir``, checkpoints are written every ``cfg.checkpoint_every`` steps and at the end, and an
    existing checkpoint there is resumed. ``stop_at`` ends the call after that many steps in total without
    a final checkpoint, as a crash would (for tests of resumption).
    """
    _check_data(cfg, offline, preferences)
    start_time = time.perf_counter()
    device = torch.device(cfg.device)
    init_generator = torch.Generator().manual_seed(cfg.seed)
    agent = make_agent(cfg.method, offline.obs_dim, offline.act_dim, cfg.hidden_dims,
                       generator=init_generator)
    agent.to(device)
    model = agent.reward_model
    rng = np.random.default_rng(cfg.seed)
    sample_generator = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    if model is not None:
        if not is_markovian(model):
            raise ValueError(
                f"method {cfg.method!r}: {type(model).__name__} is not Markovian, and IQL here reads rewards "
                "one transition at a time; relabel the offline dataset with "
                "ipl_core.reward_models.relabel_rewards and train 'iql' on it instead"
            )
        if not trains_by_gradient(model):
            if not hasattr(model, "fit"):
                raise ValueError(f"method {cfg.method!r}: {type(model).__name__} is not trained by gradient "
                                 "and has no fit(preferences, generator) method to fit it once")
            model.fit(preferences, torch.Generator().manual_seed(cfg.seed + 2))  # fitted once (e.g. B-REX)
    optimizers = make_optimizers(agent, cfg)
    update = update_function(cfg.method)

    out = Path(out_dir) if out_dir is not None else None
    step, rows = 0, []
    if out is not None and (out / CHECKPOINT).is_file():
        state = torch.load(out / CHECKPOINT, map_location=device, weights_only=True)
        _check_resumable(state["config"], cfg)
        agent.load_state_dict(state["agent"])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        rng.bit_generator.state = state["numpy_rng"]
        sample_generator.set_state(state["torch_rng"].cpu() if device.type == "cpu" else state["torch_rng"])
        step, rows = int(state["step"]), list(state["metrics"])
    if out is not None:
        write_json(out / CONFIG, _config_dict(cfg))

    def checkpoint() -> None:
        if out is None:
            return
        state = {"agent": agent.state_dict(),
                 "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                 "numpy_rng": rng.bit_generator.state, "torch_rng": sample_generator.get_state(),
                 "step": step, "metrics": rows, "config": _config_dict(cfg)}
        write_table(out / METRICS, _table(rows))
        atomic_write(out / CHECKPOINT, lambda tmp: torch.save(state, tmp))

    eval_batch = None
    eval_data = eval_preferences if eval_preferences is not None else preferences
    if eval_data is not None:
        eval_batch = full_preference_batch(eval_data, device)

    def evaluation() -> None:
        values: dict[str, float] = {}
        if eval_batch is not None:
            values["pref_accuracy"] = preference_accuracy(agent, eval_batch, cfg)
        if evaluate is not None:
            values |= evaluate(agent)
        rows.extend(_rows(step, "eval", values, cfg))

    # Oracle IQL reads no preferences: it gets a batch-shaped placeholder it ignores.
    needs_preferences = preferences is not None and (cfg.method in IPL_METHODS or model is not None)
    bar = tqdm(total=cfg.steps, initial=step, desc=f"{cfg.method} seed {cfg.seed}", disable=not progress,
               unit="step")
    if step == 0 and cfg.eval_every > 0:
        evaluation()
    while step < cfg.steps:
        if stop_at is not None and step >= stop_at:
            break
        pref = (sample_preference_batch(preferences, cfg.pref_batch_size, cfg.subsample_length, rng, device)
                if needs_preferences else None)
        off = sample_offline_batch(offline, cfg.offline_batch_size, rng, device)
        metrics = update(agent, optimizers, pref, off, cfg, step, sample_generator)
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            values = {name: float(value) for name, value in metrics.items()}
            rows.extend(_rows(step, "train", values, cfg))
            shown = ("critic_loss", "pref_accuracy")
            bar.set_postfix({k: f"{v:.3g}" for k, v in values.items() if k in shown})
        if cfg.eval_every > 0 and (step % cfg.eval_every == 0 or step == cfg.steps):
            evaluation()
        if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0 and step != cfg.steps:
            checkpoint()
    bar.close()
    if step == cfg.steps:
        checkpoint()
    return TrainResult(agent, _table(rows), step, time.perf_counter() - start_time)


class GymEvaluator:
    """Evaluates the deterministic policy (the actor's mean) in fresh gymnasium environments.

    Actions in [-1, 1] are mapped linearly onto the environment's action box. Returns the mean episode
    return and, when the environment reports ``info["success"]`` (MetaWorld), the share of episodes that
    succeed at any step. Episode i is reset with seed ``seed + i``.
    """

    def __init__(self, make_env: Callable[[], Any], episodes: int, seed: int = 0,
                 max_episode_steps: int | None = None) -> None:
        if episodes <= 0:
            raise ValueError(f"episodes must be positive, got {episodes}")
        self.make_env, self.episodes, self.seed = make_env, episodes, seed
        self.max_episode_steps = max_episode_steps

    def __call__(self, agent: Agent) -> dict[str, float]:
        env = self.make_env()
        low, high = env.action_space.low, env.action_space.high
        device = next(agent.parameters()).device
        returns, successes, has_success = [], [], False
        for episode in range(self.episodes):
            obs, _ = env.reset(seed=self.seed + episode)
            total, success, t, done = 0.0, False, 0, False
            while not done:
                with torch.no_grad():
                    action = agent.act(torch.as_tensor(obs, dtype=torch.float32, device=device)[None])[0]
                action = low + (action.cpu().numpy().astype(np.float64) + 1.0) * 0.5 * (high - low)
                obs, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                if "success" in info:
                    has_success = True
                    success = success or bool(info["success"])
                t += 1
                done = terminated or truncated or (self.max_episode_steps is not None
                                                   and t >= self.max_episode_steps)
            returns.append(total)
            successes.append(float(success))
        env.close()
        result = {"return": float(np.mean(returns))}
        if has_success:
            result["success"] = float(np.mean(successes))
        return result
