"""The online training loop shared by SAC, PEBBLE, SURF, MRN and IPL (one function, branches by algorithm).

Per environment step: act (random for the first ``num_seed_steps``), store the transition, run a feedback
round when the schedule says so (query selection, the scripted teacher, reward training, relabelling),
then one agent update: SAC on the state-entropy reward of s during pre-training, ``reset_update`` SAC
updates of the reset critic when pre-training ends, afterwards SAC on the learned reward (PEBBLE, SURF,
MRN), IPL's critic update, or SAC on the ground truth (``sac``); every ``mrn_interval`` steps while
feedback remains, MRN's bi-level round takes the place of that step's SAC update. It logs per-episode
return and success, evaluations with the Q-vs-Monte-Carlo MSE of MRN Table 1, feedback rounds and update
metrics, writes them atomically under ``out_dir`` and resumes from its last checkpoint. Taught in the
chapter "PEBBLE and scripted teachers" (book/online/pebble.ipynb).
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ipl_core.online.config import OnlineConfig
from ipl_core.online.envs import make_env
from ipl_core.online.ipl_online import critic_preference_probabilities, ipl_update
from ipl_core.online.mrn import mrn_update
from ipl_core.online.pebble import (
    FeedbackSchedule,
    PreferenceData,
    RewardEnsemble,
    RunningMeanStd,
    ask_teacher,
    preference_probabilities,
    select_queries,
    state_entropy_reward,
    teacher_scale,
    train_reward_ensemble,
)
from ipl_core.online.ppo import PPOAgent, gae, ppo_update
from ipl_core.online.replay import ReplayBuffer
from ipl_core.online.sac import Evaluation, SACAgent, evaluate, sac_update
from ipl_core.online.surf import train_reward_ensemble_surf
from ipl_core.results import atomic_write, write_json, write_table
from ipl_core.teachers import TEACHERS

TABLES = ("episodes", "evaluations", "rounds", "updates")


class OnlineRun(NamedTuple):
    """The tables of one run (tidy, one row per event) and its configuration."""

    config: OnlineConfig
    episodes: pd.DataFrame
    """step, episode, return (ground truth), success (any step), length."""
    evaluations: pd.DataFrame
    """step, return, success, q_mc_mse, feedback (labels so far)."""
    rounds: pd.DataFrame
    """step, feedback, queries, kept, reward_epochs, reward_loss, reward_accuracy, label_accuracy."""
    updates: pd.DataFrame
    """step, phase and the last update's metrics, every ``log_interval`` steps and when the phase changes."""
    wall_time_s: float


def _build(cfg: OnlineConfig, obs_dim: int, act_dim: int) -> tuple[Any, RewardEnsemble | None]:
    with torch.random.fork_rng(devices=[]):
        # network initialisation only, on the CPU whatever the device; sampling uses explicit generators
        torch.manual_seed(cfg.seed)
        agent = PPOAgent(obs_dim, act_dim, cfg) if cfg.algorithm == "ppo" else SACAgent(obs_dim, act_dim, cfg)
        ensemble = None
        if cfg.algorithm in ("pebble", "surf", "mrn", "ppo"):
            ensemble = RewardEnsemble(obs_dim, act_dim, cfg.ensemble_size,
                                      (cfg.reward_hidden_dim,) * cfg.reward_hidden_depth).to(cfg.device)
    return agent, ensemble


def _without_device(config: dict[str, Any]) -> dict[str, Any]:
    # where a run trains is not what it computes: a checkpoint resumes on any device
    return {k: v for k, v in config.items() if k != "device"}


def to_cpu(value: Any) -> Any:
    """``value`` with every tensor inside (nested dicts, lists, tuples) copied to the CPU: checkpoints hold
    CPU tensors, so one written on a GPU resumes on the CPU and the other way round."""
    if torch.is_tensor(value):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(to_cpu(v) for v in value)
    return value


OPTIMIZERS = {"sac": ("actor_opt", "critic_opt", "alpha_opt"), "ppo": ("optimizer",)}


def _ppo_step(agent: PPOAgent, ensemble: RewardEnsemble, rollout: dict[str, list], buffer: ReplayBuffer,
              cfg: OnlineConfig, global_step: int, entropy_stats: RunningMeanStd, rng: np.random.Generator
              ) -> tuple[dict[str, float], str]:
    """Score a finished rollout (state entropy during pre-training, else the reward ensemble), then PPO."""
    obs, action = np.asarray(rollout["obs"], np.float32), np.asarray(rollout["action"], np.float32)
    next_obs = np.asarray(rollout["next_obs"], np.float32)
    if global_step <= cfg.learning_starts:
        pool = torch.as_tensor(buffer.obs[: buffer.size], device=agent.device)
        rewards = state_entropy_reward(torch.as_tensor(obs, device=agent.device), pool, cfg.topk,
                                       entropy_stats).cpu().numpy()
        phase = "unsupervised"
    else:
        rewards, phase = ensemble.relabel_fn(obs, np.clip(action, -1.0, 1.0)), "ppo"
    with torch.no_grad():
        next_values = agent.value_estimate(torch.as_tensor(next_obs), None).numpy()
    advantages, returns = gae(rewards.astype(np.float64), np.asarray(rollout["value"]), next_values,
                              np.asarray(rollout["terminated"]), np.asarray(rollout["end"]), cfg.gamma,
                              cfg.ppo_gae_lambda)
    metrics = ppo_update(agent, obs, action, np.asarray(rollout["logp"]), advantages, returns, rng)
    agent.updates += 1
    return {**metrics, "rollout_reward": float(rewards.mean())}, phase


def _reset_critic(agent: SACAgent, seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        agent.reset_critic()


def train_online(cfg: OnlineConfig, out_dir: str | Path | None = None, progress: bool = True,
                 resume: bool = True, stop_at: int | None = None,
                 on_evaluation: Callable[[int, Evaluation, Any, ReplayBuffer], None] | None = None
                 ) -> OnlineRun:
    """Run ``cfg`` to ``cfg.total_steps``; with ``out_dir``, write tables, ``config.json`` and checkpoints
    there, and continue from ``out_dir/checkpoints/checkpoint.pt`` if it exists and ``resume`` is true.

    ``stop_at`` ends the run early after that step's checkpoint, as an interruption would (for tests).
    ``on_evaluation(step, evaluation, agent, buffer)`` is called after every evaluation (e.g. to keep
    policy snapshots, see :mod:`ipl_core.online.locomotion_data`).
    A checkpoint at an episode boundary resumes exactly; one taken mid-episode starts a new episode.
    Networks, batches and reward computations live on ``cfg.device``; the replay buffer, the random
    generators (CPU generators) and the checkpoints stay on the CPU, so a checkpoint written on one device
    resumes on another.
    """
    started = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else None
    env = make_env(cfg.task, cfg.seed, cfg.episode_length or None)
    eval_env = make_env(cfg.task, cfg.seed + 10_000, cfg.episode_length or None)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    device = torch.device(cfg.device)
    agent, ensemble = _build(cfg, obs_dim, act_dim)
    agent_kind = "ppo" if cfg.algorithm == "ppo" else "sac"
    agent.updates = getattr(agent, "updates", 0)
    rollout: dict[str, list] = {k: [] for k in ("obs", "action", "logp", "value", "next_obs", "terminated",
                                                "end")}
    reward_opt = torch.optim.Adam(ensemble.parameters(), lr=cfg.reward_lr) if ensemble else None
    meta_opt = reward_opt  # MRN's outer step: the reward model's own Adam, as the released code
    if ensemble is not None and cfg.mrn_outer_optimizer == "separate":
        meta_opt = torch.optim.Adam(ensemble.parameters(), lr=cfg.mrn_outer_lr)
    buffer = ReplayBuffer(obs_dim, act_dim, cfg.replay_capacity)
    prefs, unlabelled, entropy_stats = PreferenceData(), PreferenceData(), RunningMeanStd()
    schedule = FeedbackSchedule(cfg.learning_starts, cfg.feedback_interval, cfg.feedback_per_round,
                                cfg.feedback_budget)
    teacher = TEACHERS[cfg.teacher]
    rng = np.random.default_rng(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    recent_returns: deque[float] = deque(maxlen=cfg.return_window)
    recent_lengths: deque[int] = deque(maxlen=cfg.return_window)
    start_step, episode, given = 0, 0, 0
    phase = logged_phase = ""
    metrics: dict[str, float] = {}

    if out is not None and resume and (out / "checkpoints" / "checkpoint.pt").is_file():
        state = torch.load(out / "checkpoints" / "checkpoint.pt", map_location="cpu", weights_only=False)
        if _without_device(state["config"]) != _without_device(dataclasses.asdict(cfg)):
            raise ValueError(f"{out / 'checkpoint.pt'} was written with a different configuration; "
                             "use another out_dir or resume=False")
        agent.load_state_dict(state["agent"])
        for name in OPTIMIZERS[agent_kind]:
            getattr(agent, name).load_state_dict(state[name])
        agent.updates = state["updates"]
        rollout.update(state["rollout"])
        metrics, phase, logged_phase = state["metrics"], state["phase"], state["logged_phase"]
        if ensemble is not None:
            ensemble.load_state_dict(state["ensemble"])
            reward_opt.load_state_dict(state["reward_opt"])  # type: ignore[union-attr]
            meta_opt.load_state_dict(state["meta_opt"])  # type: ignore[union-attr]
        buffer.load_state_dict(state["buffer"])
        prefs.load_state_dict(state["prefs"])
        unlabelled.load_state_dict(state["unlabelled"])
        vars(entropy_stats).update(state["entropy_stats"])
        rng.bit_generator.state = state["rng"]
        generator.set_state(state["generator"])
        tables = state["tables"]
        recent_returns.extend(state["recent_returns"])
        recent_lengths.extend(state["recent_lengths"])
        # the simulator's state is not saved: a checkpoint taken mid-episode resumes with a new episode
        start_step, given = state["step"], state["given"]
        episode = state["episode"] + (1 if state["ep_length"] > 0 else 0)

    def learned_reward(obs: np.ndarray, action: np.ndarray) -> float:
        if cfg.algorithm in ("ipl", "ppo") or ensemble is None:
            return 0.0  # IPL has no reward model, PPO scores its rollouts itself: nothing reads this column
        return float(ensemble.relabel_fn(obs[None], action[None])[0])

    window = cfg.surf_window if cfg.algorithm == "surf" else 0
    stored_length = cfg.segment_length + 2 * window

    def feedback_round(step: int, size: int) -> None:
        nonlocal given
        first = len(prefs) == 0
        method = "uniform" if first else cfg.query_selection  # an untrained model cannot rank candidates
        pool = size if method == "uniform" else size * cfg.candidate_multiplier
        # the last query_episodes finished episodes (``episode`` is the one in progress)
        recent = range(max(0, episode - cfg.query_episodes), episode) if cfg.query_episodes > 0 else None
        seg_1 = buffer.sample_segments(pool, stored_length, rng, recent)
        seg_2 = buffer.sample_segments(pool, stored_length, rng, recent)
        if method == "uniform":
            chosen = np.arange(size)
        else:
            t = [torch.as_tensor(x, device=device)
                 for x in (seg_1.obs, seg_1.action, seg_2.obs, seg_2.action)]
            if cfg.algorithm == "ipl":
                n = [torch.as_tensor(x, device=device) for x in (seg_1.next_obs, seg_1.terminated,
                                                                 seg_2.next_obs, seg_2.terminated)]
                probs = critic_preference_probabilities(agent, t[0], t[1], n[0], n[1], t[2], t[3], n[2], n[3],
                                                        generator)
            else:
                probs = preference_probabilities(ensemble, *t)  # type: ignore[arg-type]
            chosen = select_queries(method, probs, size, rng)
        pick_1 = type(seg_1)(*(x[chosen] for x in seg_1))
        pick_2 = type(seg_2)(*(x[chosen] for x in seg_2))
        scale = teacher_scale(list(recent_returns), cfg.segment_length,
                              int(np.mean(recent_lengths)) if recent_lengths else cfg.segment_length)
        judged_1, judged_2 = (x.true_reward[:, window:stored_length - window] for x in (pick_1, pick_2))
        answers = ask_teacher(teacher, judged_1, judged_2, rng, scale)  # SURF: the central segment_length
        keep = answers.keep
        given += size
        if keep.any():
            prefs.add(type(pick_1)(*(x[keep] for x in pick_1)), type(pick_2)(*(x[keep] for x in pick_2)),
                      answers.label[keep])
        if cfg.algorithm == "surf":
            n_u = size * cfg.surf_unlabelled_ratio
            u_1 = buffer.sample_segments(n_u, stored_length, rng, recent)
            u_2 = buffer.sample_segments(n_u, stored_length, rng, recent)
            unlabelled.add(u_1, u_2, np.full(n_u, np.nan, np.float32))
        row: dict[str, Any] = {"step": step, "kind": "feedback", "feedback": given, "queries": size,
                               "kept": int(keep.sum())}
        true_1, true_2 = judged_1.sum(1), judged_2.sum(1)
        strict = answers.label[keep] != 0.5
        agree = ((true_1 > true_2)[keep] == (answers.label[keep] > 0.5))[strict]
        row["label_accuracy"] = float(agree.mean()) if strict.any() else float("nan")
        if ensemble is not None and len(prefs) > 0:
            if cfg.algorithm == "surf":
                result = train_reward_ensemble_surf(
                    ensemble, reward_opt, prefs, unlabelled, cfg.reward_batch_size,  # type: ignore[arg-type]
                    cfg.reward_max_epochs, cfg.segment_length, cfg.surf_window, cfg.surf_crop, cfg.surf_tau,
                    cfg.surf_lambda, cfg.surf_batch_ratio, rng)
            else:
                result = train_reward_ensemble(ensemble, reward_opt, prefs, cfg.reward_batch_size,  # type: ignore[arg-type]
                                               cfg.reward_max_epochs, cfg.reward_acc_stop, rng)
            buffer.relabel(ensemble.relabel_fn)
            row.update(reward_epochs=result.epochs, reward_loss=result.loss, reward_accuracy=result.accuracy)
        tables["rounds"].append(row)

    def save(step: int) -> None:
        if out is None:
            return
        for name in TABLES:
            write_table(out / f"{name}.parquet", pd.DataFrame(tables[name]))
        write_json(out / "config.json", dataclasses.asdict(cfg))
        if cfg.checkpoint_interval > 0:
            state = {
                "config": dataclasses.asdict(cfg), "agent": agent.state_dict(), "updates": agent.updates,
                **{n: getattr(agent, n).state_dict() for n in OPTIMIZERS[agent_kind]},
                "rollout": {k: list(v) for k, v in rollout.items()},
                "metrics": dict(metrics), "phase": phase, "logged_phase": logged_phase,
                "ensemble": ensemble.state_dict() if ensemble else None,
                "reward_opt": reward_opt.state_dict() if reward_opt else None,
                "meta_opt": meta_opt.state_dict() if meta_opt else None,
                "buffer": buffer.state_dict(), "prefs": prefs.state_dict(),
                "unlabelled": unlabelled.state_dict(), "entropy_stats": dict(vars(entropy_stats)),
                "rng": rng.bit_generator.state, "generator": generator.get_state(), "tables": tables,
                "recent_returns": list(recent_returns), "recent_lengths": list(recent_lengths),
                "step": step, "episode": episode, "given": given, "ep_length": ep_length,
            }
            atomic_write(out / "checkpoints" / "checkpoint.pt", lambda tmp: torch.save(to_cpu(state), tmp))

    obs, _ = env.reset(seed=cfg.seed + episode)
    ep_return, ep_success, ep_length = 0.0, False, 0
    bar = tqdm(total=cfg.total_steps, initial=start_step, disable=not progress,
               desc=f"{cfg.algorithm} {cfg.task}", unit="step", mininterval=2.0)
    for step in range(start_step, cfg.total_steps):
        if cfg.algorithm == "ppo":  # on-policy: the policy acts from the first step
            raw_action, logp, value = agent.sample(obs, generator)
            action = np.clip(raw_action, -1.0, 1.0).astype(np.float32)
        elif step < cfg.num_seed_steps:
            action = rng.uniform(-1.0, 1.0, size=act_dim).astype(np.float32)
        else:
            action = agent.act(obs, generator)
        next_obs, true_reward, terminated, truncated, info = env.step(action)
        if cfg.algorithm == "ppo":
            for key, value_ in (("obs", obs), ("action", raw_action), ("logp", logp), ("value", value),
                                ("next_obs", next_obs), ("terminated", float(terminated)),
                                ("end", terminated or truncated)):
                rollout[key].append(value_)
        reward = true_reward if cfg.algorithm == "sac" else learned_reward(obs, action)
        buffer.add(obs, action, true_reward, next_obs, terminated, episode, ep_length, reward)
        ep_return += true_reward
        ep_success |= info.get("success", 0.0) > 0
        ep_length += 1
        obs = next_obs
        if terminated or truncated:
            tables["episodes"].append({"step": step + 1, "episode": episode, "return": ep_return,
                                       "success": float(ep_success), "length": ep_length})
            recent_returns.append(ep_return)
            recent_lengths.append(ep_length)
            bar.set_postfix(ret=f"{ep_return:.1f}", fb=given, refresh=False)
            episode += 1
            obs, _ = env.reset(seed=cfg.seed + episode)
            ep_return, ep_success, ep_length = 0.0, False, 0

        global_step = step + 1
        if cfg.algorithm != "sac":
            if global_step == cfg.learning_starts and cfg.algorithm != "ppo":
                _reset_critic(agent, cfg.seed)  # PEBBLE: forget the values of the entropy reward
            size = schedule.round_size(global_step, given)
            if size > 0:
                feedback_round(global_step, size)

        if cfg.algorithm == "ppo":
            if len(rollout["obs"]) == cfg.ppo_rollout_steps:
                metrics, phase = _ppo_step(agent, ensemble, rollout, buffer, cfg, global_step, entropy_stats,
                                           rng)  # type: ignore[arg-type]
                for values in rollout.values():
                    values.clear()
        elif global_step > cfg.num_seed_steps:
            batch = buffer.sample(cfg.batch_size, rng, device)
            if cfg.algorithm != "sac" and global_step < cfg.learning_starts:
                pool = torch.as_tensor(buffer.obs[: buffer.size], device=device)
                intrinsic = state_entropy_reward(batch.obs, pool, cfg.topk, entropy_stats)
                metrics, phase = sac_update(agent, batch, generator, reward=intrinsic), "unsupervised"
            elif cfg.algorithm == "ipl":
                if len(prefs) > 0:
                    metrics, phase = ipl_update(agent, batch, prefs, rng, generator), "ipl"
            elif cfg.algorithm != "sac" and global_step == cfg.learning_starts:
                for _ in range(cfg.reset_update):  # PEBBLE: the reset critic catches up (B-Pref reset_update)
                    metrics = sac_update(agent, buffer.sample(cfg.batch_size, rng, device), generator)
                phase = "reset"
            elif (cfg.algorithm == "mrn" and global_step % cfg.mrn_interval == 0 and len(prefs) > 0
                  and given < cfg.feedback_budget):
                metrics = mrn_update(agent, ensemble, meta_opt, batch, prefs, cfg, generator)  # type: ignore[arg-type]
                buffer.relabel(ensemble.relabel_fn)  # type: ignore[union-attr]
                tables["rounds"].append({"step": global_step, "kind": "meta", "feedback": given,
                                         **{k: v for k, v in metrics.items() if k.startswith("meta_")}})
                phase = "sac"
            else:
                metrics, phase = sac_update(agent, batch, generator), "sac"
        if metrics and (global_step % cfg.log_interval == 0 or phase != logged_phase):
            tables["updates"].append({"step": global_step, "phase": phase, **metrics})
            logged_phase = phase

        if global_step % cfg.eval_interval == 0 or global_step == cfg.total_steps:
            result = evaluate(agent, eval_env, cfg.eval_episodes, seed=cfg.seed + 10_000 + global_step)
            tables["evaluations"].append({"step": global_step, "return": result.episode_return,
                                          "success": result.success, "q_mc_mse": result.q_mc_mse,
                                          "feedback": given})
            if on_evaluation is not None:
                on_evaluation(global_step, result, agent, buffer)
        if cfg.checkpoint_interval > 0 and global_step % cfg.checkpoint_interval == 0:
            save(global_step)
        bar.update(1)
        if stop_at is not None and global_step >= stop_at:
            break
    else:
        save(cfg.total_steps)
    bar.close()
    frames = {name: pd.DataFrame(tables[name]) for name in TABLES}
    return OnlineRun(cfg, frames["episodes"], frames["evaluations"], frames["rounds"], frames["updates"],
                     time.perf_counter() - started)
