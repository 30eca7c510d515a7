"""The offline trainer: any method of :mod:`ipl_core.offline`, for E >= 1 seeds at once, with logging,
evaluation, atomic checkpoints and exact resumption.

:func:`train_seeds` builds one agent whose members are the seeds (:func:`ipl_core.agents.make_agent`) and
runs the method's update on their stacked batches; every member draws its batches from its own
``np.random.Generator`` and its actor noise from its own ``torch.Generator``, so E seeds trained together
equal E separate runs up to float rounding. :func:`train` is the single-seed case, E = 1.

Output folder layout, one folder per seed (when ``out_dirs`` is given): ``config.json`` (the resolved
config), ``metrics.parquet`` (a tidy table: one row per step, kind, metric and value) and ``checkpoint.pt``
(that member's networks, optimiser moments, random states, step and metric rows, all on the CPU, so a
checkpoint written on a GPU resumes on a CPU and back). A run started again with the same folders and
config resumes from its checkpoints and reproduces, bit for bit on CPU, the metrics of a run that was never
interrupted. Taught in "IPL in practice" (book/ipl/offline.ipynb).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ipl_core.agents import PREFERENCE_METHODS, Agent, make_agent
from ipl_core.batches import (
    expand_batch,
    full_preference_batch,
    sample_offline_batch,
    sample_preference_batch,
    stack_batches,
)
from ipl_core.config import OfflineConfig, check_device
from ipl_core.data.datasets import OfflineDataset, PreferenceDataset
from ipl_core.io import atomic_write, write_json, write_table
from ipl_core.nets import set_precision, to_action_box
from ipl_core.offline import (
    Optimizers,
    is_markovian,
    make_optimizers,
    preference_accuracy,
    trains_by_gradient,
    update_function,
)
from ipl_core.seeding import env_seed, numpy_generator, torch_generator

Evaluator = Callable[[Agent], list[dict[str, float]]]
"""Maps an agent of E members to one dict of evaluation metrics per member, e.g. ``{"return": ...,
"success": ...}``."""

CHECKPOINT = "checkpoint.pt"
NEXT_CHECKPOINT = "checkpoint.next.pt"
METRICS = "metrics.parquet"
CONFIG = "config.json"


@dataclass
class TrainResult:
    """What :func:`train` returns, and :func:`train_seeds` for each seed."""

    agent: Agent
    """The trained agent of this seed, a single member (on ``cfg.device``)."""
    metrics: pd.DataFrame
    """Tidy table: method, seed, step, kind ("train" or "eval"), metric, value."""
    steps_done: int
    """Gradient steps taken in total (less than ``cfg.steps`` only when stopped by ``stop_at``)."""
    wall_time_s: float
    """Seconds the call took (for all its seeds together)."""

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


def _check_resumable(saved: dict[str, Any], cfg: OfflineConfig, path: Path) -> None:
    current = _config_dict(cfg)
    differ = sorted(k for k in current if k not in ("steps", "device") and saved.get(k) != current[k])
    if differ:
        raise ValueError(
            f"{path} was made with a different config (fields {differ}: "
            f"{ {k: saved.get(k) for k in differ} } vs { {k: current[k] for k in differ} }); "
            "use a new output folder or the same config"
        )


# --- One member's slice of the batched state, and back (the checkpoint of a seed) -----------------------

_REWARD = "reward_model.models."


def member_state(state: dict[str, torch.Tensor], e: int) -> dict[str, torch.Tensor]:
    """Member e's part of an agent's ``state_dict``, on the CPU: the state of a one-member agent. Every
    network has a leading member axis, except the reward models, which are one module per member."""
    out = {}
    for name, value in state.items():
        if name.startswith(_REWARD):
            index, rest = name.removeprefix(_REWARD).split(".", 1)
            if int(index) == e:
                out[f"{_REWARD}0.{rest}"] = value.detach().cpu().clone()
        else:
            out[name] = value[e:e + 1].detach().cpu().clone()
    return out


def stack_member_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`member_state`: one agent's ``state_dict`` from its members' states."""
    out = {}
    for name in states[0]:
        if name.startswith(_REWARD):
            rest = name.removeprefix(f"{_REWARD}0.")
            out |= {f"{_REWARD}{e}.{rest}": state[name] for e, state in enumerate(states)}
        else:
            out[name] = torch.cat([state[name] for state in states])
    return out


def member_optimizer_state(state: dict[str, Any], e: int, grouped: bool) -> dict[str, Any]:
    """Member e's part of an Adam ``state_dict``: the moments sliced along the member axis, or (``grouped``:
    one parameter group per member, the reward models) member e's group."""
    def cpu(value: Any) -> Any:
        return value.detach().cpu().clone() if torch.is_tensor(value) else value

    if not grouped:
        return {"state": {i: {k: cpu(v[e:e + 1] if torch.is_tensor(v) and v.ndim else v)
                              for k, v in s.items()} for i, s in state["state"].items()},
                "param_groups": state["param_groups"]}
    group = dict(state["param_groups"][e])
    ids = group["params"]
    group["params"] = list(range(len(ids)))
    return {"state": {new: {k: cpu(v) for k, v in state["state"][old].items()}
                      for new, old in enumerate(ids) if old in state["state"]},
            "param_groups": [group]}


def stack_optimizer_states(states: Sequence[dict[str, Any]], grouped: bool) -> dict[str, Any]:
    """The inverse of :func:`member_optimizer_state`."""
    if not grouped:
        merged = {i: {k: torch.cat([s["state"][i][k] for s in states]) if v.ndim else v
                      for k, v in first.items()} for i, first in states[0]["state"].items()}
        return {"state": merged, "param_groups": states[0]["param_groups"]}
    merged, groups, offset = {}, [], 0
    for s in states:
        group = dict(s["param_groups"][0])
        count = len(group["params"])
        group["params"] = list(range(offset, offset + count))
        merged |= {offset + i: v for i, v in s["state"].items()}
        groups.append(group)
        offset += count
    return {"state": merged, "param_groups": groups}


def _single_member(agent: Agent, e: int, cfg: OfflineConfig, obs_dim: int, act_dim: int) -> Agent:
    """Member e of ``agent`` as an agent of its own (the agent itself when it has one member)."""
    if agent.members == 1:
        return agent
    single = make_agent(cfg.method, obs_dim, act_dim, cfg.hidden_dims, hidden_gain=cfg.init_gain)
    set_precision(single, cfg.precision)
    single.load_state_dict(member_state(agent.state_dict(), e))
    return single.to(next(agent.parameters()).device)


def train(cfg: OfflineConfig, offline: OfflineDataset, preferences: PreferenceDataset | None, *,
          out_dir: str | Path | None = None, evaluate: Evaluator | None = None,
          eval_preferences: PreferenceDataset | None = None, progress: bool = True,
          stop_at: int | None = None) -> TrainResult:
    """Train ``cfg.method`` with seed ``cfg.seed``: :func:`train_seeds` with one seed."""
    out_dirs = None if out_dir is None else [out_dir]
    return train_seeds(cfg, [cfg.seed], offline, preferences, out_dirs=out_dirs, evaluate=evaluate,
                       eval_preferences=eval_preferences, progress=progress, stop_at=stop_at)[0]


def train_seeds(cfg: OfflineConfig, seeds: Sequence[int], offline: OfflineDataset | Sequence[OfflineDataset],
                preferences: PreferenceDataset | None, *, out_dirs: Sequence[str | Path] | None = None,
                evaluate: Evaluator | None = None, eval_preferences: PreferenceDataset | None = None,
                progress: bool = True, stop_at: int | None = None) -> list[TrainResult]:
    """Train ``cfg.method`` for every seed in ``seeds`` at once, as one agent of E = len(seeds) members on
    ``cfg.device``, and return one :class:`TrainResult` per seed (``cfg.seed`` is replaced by each seed).

    ``offline`` is one dataset for every seed, or one per seed (e.g. each relabelled by its own reward
    model). Every ``cfg.log_every`` steps the update's metrics (losses, batch preference accuracy, implicit
    reward scale) are logged; every ``cfg.eval_every`` steps and at the end, the preference accuracy on
    ``eval_preferences`` (default: the training pairs, whole segments) and ``evaluate(agent)`` if given.
    With ``out_dirs`` (one folder per seed), checkpoints are written every ``cfg.checkpoint_every`` steps and
    at the end, and existing checkpoints there are resumed. ``stop_at`` ends the call after that many steps
    in total without a final checkpoint, as a crash would (for tests of resumption).
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, at least one, got {seeds}")
    datasets = [offline] * len(seeds) if isinstance(offline, OfflineDataset) else list(offline)
    if len(datasets) != len(seeds):
        raise ValueError(f"offline must be one dataset or one per seed ({len(seeds)}), got {len(datasets)}")
    for data in datasets:
        _check_data(cfg, data, preferences)
        if (data.obs_dim, data.act_dim) != (datasets[0].obs_dim, datasets[0].act_dim):
            raise ValueError("the seeds' offline datasets must share obs_dim and act_dim")
    if out_dirs is not None and len(out_dirs) != len(seeds):
        raise ValueError(f"out_dirs must hold one folder per seed ({len(seeds)}), got {len(out_dirs)}")
    device = check_device(cfg.device, "OfflineConfig.device")
    start_time = time.perf_counter()
    configs = [cfg.replace(seed=seed) for seed in seeds]
    obs_dim, act_dim = datasets[0].obs_dim, datasets[0].act_dim
    agent = make_agent(cfg.method, obs_dim, act_dim, cfg.hidden_dims,
                       generator=[torch_generator(seed, "init") for seed in seeds],
                       hidden_gain=cfg.init_gain).to(device)
    set_precision(agent, cfg.precision)
    rngs = [numpy_generator(seed, "batches") for seed in seeds]
    # CPU generators on every device: a run draws the same actor noise on a CPU and a GPU.
    sample_generators = [torch_generator(seed, "policy_noise") for seed in seeds]
    models = agent.reward_model
    if models is not None:
        model = models.models[0]
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
            for member, seed in zip(models.models, seeds, strict=True):  # fitted once (e.g. B-REX)
                member.fit(preferences, torch_generator(seed, "reward_init"))
    optimizers = make_optimizers(agent, cfg)
    update = update_function(cfg.method)

    outs = [Path(d) for d in out_dirs] if out_dirs is not None else None
    step, rows = 0, [[] for _ in seeds]
    if outs is not None:
        step, rows = _resume(outs, configs, agent, optimizers, rngs, sample_generators, rows)
        for out, member_cfg in zip(outs, configs, strict=True):
            write_json(out / CONFIG, _config_dict(member_cfg))

    def checkpoint() -> None:
        """Every seed's checkpoint of this step, in two phases so that a crash never leaves the seeds at
        different steps: write them all aside, then move them into place (:func:`_settle_round`)."""
        if outs is None:
            return
        state, optimizer_states = agent.state_dict(), {k: o.state_dict() for k, o in optimizers.items()}
        for e, (out, member_cfg) in enumerate(zip(outs, configs, strict=True)):
            member = {"agent": member_state(state, e),
                      "optimizers": {k: member_optimizer_state(o, e, grouped=k == "reward")
                                     for k, o in optimizer_states.items()},
                      "numpy_rng": rngs[e].bit_generator.state, "torch_rng": sample_generators[e].get_state(),
                      "step": step, "metrics": rows[e], "config": _config_dict(member_cfg)}
            atomic_write(out / NEXT_CHECKPOINT, lambda tmp, member=member: torch.save(member, tmp))
        for e, out in enumerate(outs):
            os.replace(out / NEXT_CHECKPOINT, out / CHECKPOINT)
            write_table(out / METRICS, _table(rows[e]))

    eval_data = eval_preferences if eval_preferences is not None else preferences
    eval_batch = None
    if eval_data is not None:
        eval_batch = expand_batch(full_preference_batch(eval_data, device), len(seeds))

    def evaluation() -> None:
        values: list[dict[str, float]] = [{} for _ in seeds]
        if eval_batch is not None:
            for e, accuracy in enumerate(preference_accuracy(agent, eval_batch, cfg).tolist()):
                values[e]["pref_accuracy"] = accuracy
        if evaluate is not None:
            for e, result in enumerate(evaluate(agent)):
                values[e] |= result
        for e, member_cfg in enumerate(configs):
            rows[e].extend(_rows(step, "eval", values[e], member_cfg))

    # Oracle IQL reads no preferences: it gets no preference batch.
    needs_preferences = preferences is not None and (cfg.method in PREFERENCE_METHODS or models is not None)
    desc = f"{cfg.method} seed{'s' if len(seeds) > 1 else ''} {','.join(map(str, seeds))}"
    bar = tqdm(total=cfg.steps, initial=step, desc=desc, disable=not progress, unit="step")
    if step == 0 and cfg.eval_every > 0:
        evaluation()
    while step < cfg.steps:
        if stop_at is not None and step >= stop_at:
            break
        prefs, offs = [], []
        for rng, data in zip(rngs, datasets, strict=True):  # each seed's draws, in a fixed order
            if needs_preferences:
                prefs.append(sample_preference_batch(preferences, cfg.pref_batch_size, cfg.subsample_length,
                                                     rng, device))
            offs.append(sample_offline_batch(data, cfg.offline_batch_size, rng, device))
        pref = stack_batches(prefs) if prefs else None
        metrics = update(agent, optimizers, pref, stack_batches(offs), cfg, step, sample_generators)
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            values = {name: value.tolist() for name, value in metrics.items()}
            for e, member_cfg in enumerate(configs):
                rows[e].extend(_rows(step, "train", {k: v[e] for k, v in values.items()}, member_cfg))
            shown = ("critic_loss", "pref_accuracy")
            bar.set_postfix({k: f"{np.mean(v):.3g}" for k, v in values.items() if k in shown})
        if cfg.eval_every > 0 and (step % cfg.eval_every == 0 or step == cfg.steps):
            evaluation()
        if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0 and step != cfg.steps:
            checkpoint()
    bar.close()
    if step == cfg.steps:
        checkpoint()
    wall = time.perf_counter() - start_time
    return [TrainResult(_single_member(agent, e, cfg, obs_dim, act_dim), _table(rows[e]), step, wall)
            for e in range(len(seeds))]


def checkpoint_step(path: Path) -> int:
    """The training step a checkpoint file was written at."""
    return int(torch.load(path, map_location="cpu", weights_only=True)["step"])


def _settle_round(outs: list[Path]) -> None:
    """Finish or undo a round of checkpoints that a crash cut short. When every seed has the round's new
    checkpoint, moved into place or still aside, the ones aside are moved in; otherwise they are deleted,
    and the seeds resume together from the round before."""
    pending = [out / NEXT_CHECKPOINT for out in outs if (out / NEXT_CHECKPOINT).is_file()]
    if not pending:
        return
    new_step = checkpoint_step(pending[0])
    complete = all((out / NEXT_CHECKPOINT).is_file()
                   or ((out / CHECKPOINT).is_file() and checkpoint_step(out / CHECKPOINT) == new_step)
                   for out in outs)
    for path in pending:
        if complete:
            os.replace(path, path.with_name(CHECKPOINT))
        else:
            path.unlink()


def _resume(outs: list[Path], configs: list[OfflineConfig], agent: Agent, optimizers: Optimizers,
            rngs: list[np.random.Generator], sample_generators: list[torch.Generator],
            rows: list[list[dict[str, Any]]]) -> tuple[int, list[list[dict[str, Any]]]]:
    """Load every member's checkpoint (all or none must exist, at the same step); returns the step and the
    metric rows so far."""
    _settle_round(outs)
    paths = [out / CHECKPOINT for out in outs]
    present = [path.is_file() for path in paths]
    if not any(present):
        return 0, rows
    if not all(present):
        missing = [str(p) for p, ok in zip(paths, present, strict=True) if not ok]
        raise ValueError(f"some seeds of this run have checkpoints and others do not ({missing} missing); "
                         "resume with the same seeds per process, or delete the checkpoints")
    states = [torch.load(path, map_location="cpu", weights_only=True) for path in paths]
    steps = {int(state["step"]) for state in states}
    if len(steps) != 1:
        raise ValueError(f"the checkpoints {[str(p) for p in paths]} are at different steps {sorted(steps)}; "
                         "expected one step for all seeds of a run")
    for state, member_cfg, path in zip(states, configs, paths, strict=True):
        _check_resumable(state["config"], member_cfg, path)
    agent.load_state_dict(stack_member_states([state["agent"] for state in states]))
    for name, optimizer in optimizers.items():
        member_states = [state["optimizers"][name] for state in states]
        optimizer.load_state_dict(stack_optimizer_states(member_states, grouped=name == "reward"))
    for state, rng, generator in zip(states, rngs, sample_generators, strict=True):
        rng.bit_generator.state = state["numpy_rng"]
        generator.set_state(state["torch_rng"])
    return steps.pop(), [list(state["metrics"]) for state in states]


class GymEvaluator:
    """Evaluates the deterministic policy (the actor's mean) of every member in fresh gymnasium
    environments, all episodes of all members stepping together in one vector environment
    (``gymnasium.vector.SyncVectorEnv``) with one batched forward pass of the actors per step.

    Member e's episode i runs in ``make_env(s)``, reset with ``s``, where ``s`` is stream (``seeds[e]``,
    ``"evaluation"``, i) of :mod:`ipl_core.seeding` (MetaWorld draws its goal from the seed given to
    ``make_env``, gymnasium's MuJoCo tasks their initial state from the reset seed): the same episodes at
    every evaluation, and for every method of that seed.
    Actions in [-1, 1] are mapped linearly onto the environment's action box. Returns, per member, the mean
    episode return and, when the environment reports ``info["success"]`` (MetaWorld), the share of episodes
    that succeed at any step. An episode ends when it terminates, is truncated, or reaches
    ``max_episode_steps``.
    """

    def __init__(self, make_env: Callable[[int], Any], episodes: int, seeds: Sequence[int],
                 max_episode_steps: int | None = None) -> None:
        if episodes <= 0:
            raise ValueError(f"episodes must be positive, got {episodes}")
        if not seeds:
            raise ValueError("seeds must hold one evaluation seed per member, got none")
        self.make_env, self.episodes, self.seeds = make_env, episodes, [int(s) for s in seeds]
        self.max_episode_steps = max_episode_steps

    def __call__(self, agent: Agent) -> list[dict[str, float]]:
        from gymnasium.vector import SyncVectorEnv

        members = agent.members
        if members != len(self.seeds):
            raise ValueError(f"the agent has {members} members but the evaluator {len(self.seeds)} seeds")
        env_seeds = [env_seed(seed, "evaluation", i) for seed in self.seeds for i in range(self.episodes)]
        envs = SyncVectorEnv([partial(self.make_env, seed) for seed in env_seeds])
        low, high = envs.single_action_space.low, envs.single_action_space.high
        device = next(agent.parameters()).device
        count = len(env_seeds)
        returns, success = np.zeros(count), np.zeros(count, dtype=bool)
        active, has_success, t = np.ones(count, dtype=bool), False, 0
        obs, _ = envs.reset(seed=env_seeds)
        while active.any():
            with torch.no_grad():
                batch = torch.as_tensor(obs, dtype=torch.float32, device=device)
                batch = batch.view(members, self.episodes, -1)
                action = agent.act(batch).reshape(count, -1).cpu().numpy().astype(np.float64)
            obs, reward, terminated, truncated, info = envs.step(to_action_box(action, low, high))
            returns += np.where(active, reward, 0.0)
            if "success" in info:
                has_success = True
                success |= active & info["_success"] & info["success"].astype(bool)
            t += 1
            active &= ~(terminated | truncated)
            if self.max_episode_steps is not None and t >= self.max_episode_steps:
                active[:] = False
        envs.close()
        results = []
        for e in range(members):
            episodes = slice(e * self.episodes, (e + 1) * self.episodes)
            result = {"return": float(returns[episodes].mean())}
            if has_success:
                result["success"] = float(success[episodes].mean())
            results.append(result)
        return results
