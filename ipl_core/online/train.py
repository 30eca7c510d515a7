"""The online training loop shared by SAC, PEBBLE, SURF, MRN, IPL and Preference PPO (one function,
branches by algorithm), for E seeds at once.

Each seed keeps its own environment (one copy per seed in a gymnasium vector environment, seeded as a run
of that seed alone), replay buffer, labels, teacher queries, label budget and random generators; the
networks of all seeds have a leading member axis (:mod:`ipl_core.online.members`) and take one batched
update together. E = 1 is a single run, the ordinary case.

Per environment step: act (random for the first ``num_seed_steps``), store the transition, run a feedback
round when the schedule says so (query selection, the scripted teacher, reward training, relabelling),
then one agent update: SAC on the state-entropy reward of s during pre-training, ``reset_update`` SAC
updates of the reset critic when pre-training ends, afterwards SAC on the learned reward (PEBBLE, SURF,
MRN), IPL's critic update, or SAC on the ground truth (``sac``); every ``mrn_interval`` steps while
feedback remains, MRN's bi-level round takes the place of that step's SAC update. It logs per-episode
return and success, evaluations with the Q-vs-Monte-Carlo MSE of MRN Table 1, feedback rounds and update
metrics, writes them atomically under each seed's ``out_dir`` and resumes from the seeds' last
checkpoints. Taught in the chapter "PEBBLE and scripted teachers" (book/online/pebble.ipynb).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ipl_core.io import atomic_write, write_json, write_table
from ipl_core.nets import require_layout
from ipl_core.online.config import OnlineConfig
from ipl_core.online.envs import make_env
from ipl_core.online.ipl_online import critic_preference_probabilities, ipl_update
from ipl_core.online.members import MemberAdam, init_generators, member_slice, stack_members
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
from ipl_core.online.replay import ReplayBuffer, Segments, relabel_members, sample_members
from ipl_core.online.sac import Evaluation, Metrics, SACAgent, evaluate, sac_update
from ipl_core.online.surf import train_reward_ensemble_surf
from ipl_core.seeding import env_seed, numpy_generator, torch_generator
from ipl_core.teachers import TEACHERS

TABLES = ("episodes", "evaluations", "rounds", "updates")
CHECKPOINT, NEXT_CHECKPOINT = "checkpoint.pt", "checkpoint.next.pt"
"""Each seed's checkpoint under ``out_dir/checkpoints/``; the next round is written beside it first."""


class OnlineRun(NamedTuple):
    """The tables of one seed's run (tidy, one row per event) and its configuration."""

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
    """Wall time of the process (shared by the seeds trained together)."""


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


class _Seed:
    """Everything of one seed that is not a network: random generators, replay buffer, labels, episode
    counters, the last update's metrics and the tables."""

    def __init__(self, cfg: OnlineConfig, obs_dim: int, act_dim: int) -> None:
        self.cfg = cfg
        self.rng = numpy_generator(cfg.seed, "batches")
        self.generator = torch_generator(cfg.seed, "policy_noise")
        self.buffer = ReplayBuffer(obs_dim, act_dim, cfg.replay_capacity)
        self.prefs, self.unlabelled, self.entropy_stats = PreferenceData(), PreferenceData(), RunningMeanStd()
        self.tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        self.recent_returns: deque[float] = deque(maxlen=cfg.return_window)
        self.recent_lengths: deque[int] = deque(maxlen=cfg.return_window)
        self.rollout: dict[str, list] = {k: [] for k in ("obs", "action", "logp", "value", "next_obs",
                                                         "terminated", "end")}
        self.episode = self.given = self.ep_length = 0
        self.ep_return, self.ep_success = 0.0, False
        self.metrics: dict[str, float] = {}
        self.phase = self.logged_phase = ""

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "generator": self.generator.get_state(),
                "buffer": self.buffer.state_dict(), "prefs": self.prefs.state_dict(),
                "unlabelled": self.unlabelled.state_dict(), "entropy_stats": dict(vars(self.entropy_stats)),
                "tables": self.tables, "recent_returns": list(self.recent_returns),
                "recent_lengths": list(self.recent_lengths), "rollout": {k: list(v) for k, v in
                                                                         self.rollout.items()},
                "episode": self.episode, "given": self.given, "ep_length": self.ep_length,
                "metrics": dict(self.metrics), "phase": self.phase, "logged_phase": self.logged_phase}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.generator.set_state(state["generator"])
        self.buffer.load_state_dict(state["buffer"])
        self.prefs.load_state_dict(state["prefs"])
        self.unlabelled.load_state_dict(state["unlabelled"])
        vars(self.entropy_stats).update(state["entropy_stats"])
        self.tables = state["tables"]
        self.recent_returns.extend(state["recent_returns"])
        self.recent_lengths.extend(state["recent_lengths"])
        self.rollout.update(state["rollout"])
        self.metrics, self.phase, self.logged_phase = state["metrics"], state["phase"], state["logged_phase"]
        # the simulator's state is not saved: a checkpoint taken mid-episode resumes with a new episode
        self.given = state["given"]
        self.episode = state["episode"] + (1 if state["ep_length"] > 0 else 0)

    def seed_of_episode(self) -> int:
        """The reset seed of the episode in progress: stream (seed, ``"train_episode"``, episode index)."""
        return env_seed(self.cfg.seed, "train_episode", self.episode)

    def set_metrics(self, metrics: Metrics, e: int, phase: str) -> None:
        self.metrics, self.phase = {k: float(v[e]) for k, v in metrics.items()}, phase


def _build(cfg: OnlineConfig, seeds: Sequence[int], obs_dim: int, act_dim: int
           ) -> tuple[Any, RewardEnsemble | None]:
    """The agent of all seeds (initial weights on the CPU from each seed's generators, then moved to the
    device) and, for the reward-learning methods, the reward ensembles (each seed's ``"reward_init"``)."""
    agent: Any = (PPOAgent if cfg.algorithm == "ppo" else SACAgent)(obs_dim, act_dim, cfg, seeds)
    ensemble = None
    if cfg.algorithm in ("pebble", "surf", "mrn", "ppo"):
        ensemble = RewardEnsemble(obs_dim, act_dim, cfg.ensemble_size,
                                  (cfg.reward_hidden_dim,) * cfg.reward_hidden_depth, len(seeds),
                                  init_generators(seeds, "reward_init")).to(cfg.device)
    return agent, ensemble


def _ppo_step(agent: PPOAgent, ensemble: RewardEnsemble, runs: list[_Seed], cfg: OnlineConfig,
              global_step: int) -> tuple[Metrics, str]:
    """Score every seed's finished rollout (state entropy during pre-training, else the reward ensemble),
    then one batched PPO update of all seeds."""
    def rollout(key: str) -> np.ndarray:
        return np.stack([np.asarray(r.rollout[key]) for r in runs])

    obs, action = rollout("obs").astype(np.float32), rollout("action").astype(np.float32)
    if global_step <= cfg.learning_starts:
        pool = torch.as_tensor(np.stack([r.buffer.obs[: r.buffer.size] for r in runs]), device=agent.device)
        rewards = state_entropy_reward(torch.as_tensor(obs, device=agent.device), pool, cfg.topk,
                                       [r.entropy_stats for r in runs]).cpu().numpy()
        phase = "unsupervised"
    else:
        rewards, phase = ensemble.relabel_fn(obs, np.clip(action, -1.0, 1.0)), "ppo"
    next_values = agent.value_estimate(torch.as_tensor(rollout("next_obs").astype(np.float32)), None).numpy()
    values, terminated, end = rollout("value"), rollout("terminated"), rollout("end")
    estimates = [gae(rewards[e].astype(np.float64), values[e], next_values[e], terminated[e], end[e],
                     cfg.gamma, cfg.ppo_gae_lambda) for e in range(len(runs))]
    advantages, returns = (np.stack(x) for x in zip(*estimates, strict=True))
    metrics = ppo_update(agent, obs, action, rollout("logp"), advantages, returns, [r.rng for r in runs])
    agent.updates += 1
    return {**metrics, "rollout_reward": rewards.mean(axis=1).astype(np.float64)}, phase


def _settle_round(dirs: Sequence[Path]) -> None:
    """Finish or undo a round of checkpoints that a crash cut short: when every seed has the round's new
    checkpoint (moved into place or still aside) the ones aside are moved in, otherwise they are deleted
    and the seeds resume together from the round before."""
    pending = [d / NEXT_CHECKPOINT for d in dirs if (d / NEXT_CHECKPOINT).is_file()]
    if not pending:
        return
    step = torch.load(pending[0], map_location="cpu", weights_only=False)["step"]
    complete = all((d / NEXT_CHECKPOINT).is_file() or ((d / CHECKPOINT).is_file() and torch.load(
        d / CHECKPOINT, map_location="cpu", weights_only=False)["step"] == step) for d in dirs)
    for path in pending:
        if complete:
            os.replace(path, path.with_name(CHECKPOINT))
        else:
            path.unlink()


def _vector_env(cfg: OnlineConfig, seeds: Sequence[int]) -> gym.vector.SyncVectorEnv:
    """One environment per seed, built as a single run of that seed builds it; each is reset by the loop
    when its own episode ends."""
    length = cfg.episode_length or None
    return gym.vector.SyncVectorEnv([partial(make_env, cfg.task, env_seed(seed, "train_env"), length)
                                     for seed in seeds],
                                    autoreset_mode=gym.vector.AutoresetMode.DISABLED)


def train_online(cfg: OnlineConfig, out_dir: str | Path | None = None, progress: bool = True,
                 resume: bool = True, stop_at: int | None = None,
                 on_evaluation: Callable[[int, Evaluation, Any, ReplayBuffer], None] | None = None
                 ) -> OnlineRun:
    """One seed, ``cfg.seed``: :func:`train_online_seeds` with E = 1."""
    return train_online_seeds(cfg, [cfg.seed], None if out_dir is None else [out_dir], progress, resume,
                              stop_at, on_evaluation)[0]


def train_online_seeds(cfg: OnlineConfig, seeds: Sequence[int], out_dirs: Sequence[str | Path] | None = None,
                       progress: bool = True, resume: bool = True, stop_at: int | None = None,
                       on_evaluation: Callable[[int, Evaluation, Any, ReplayBuffer], None] | None = None
                       ) -> list[OnlineRun]:
    """Run ``cfg`` to ``cfg.total_steps`` for each seed of ``seeds`` (``cfg.seed`` is replaced by each), all
    in one process; with ``out_dirs`` (one per seed), write each seed's tables, ``config.json`` and
    checkpoints there, and continue from ``out_dir/checkpoints/checkpoint.pt`` of every seed if they exist
    and ``resume`` is true. Seed e's run is that of ``train_online`` with seed ``seeds[e]``, up to float
    rounding.

    ``stop_at`` ends the run early after that step's checkpoint, as an interruption would (for tests).
    ``on_evaluation(step, evaluation, agent, buffer)`` is called after every evaluation, once per seed in
    order (e.g. to keep policy snapshots, see :mod:`ipl_core.online.locomotion_data`). A checkpoint at an
    episode boundary resumes exactly; one taken mid-episode starts a new episode. Networks, batches and
    reward computations live on ``cfg.device``; the replay buffers, the random generators (CPU generators)
    and the checkpoints stay on the CPU, so a checkpoint written on one device resumes on another.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"train_online_seeds needs distinct seeds, got {seeds}")
    if out_dirs is not None and len(out_dirs) != len(seeds):
        raise ValueError(f"train_online_seeds needs one out_dir per seed, got {len(out_dirs)} for {seeds}")
    started = time.perf_counter()
    configs = [dataclasses.replace(cfg, seed=s) for s in seeds]
    outs = None if out_dirs is None else [Path(d) for d in out_dirs]
    env = _vector_env(cfg, seeds)
    eval_envs = [make_env(cfg.task, env_seed(s, "evaluation_env"), cfg.episode_length or None) for s in seeds]
    obs_dim, act_dim = env.single_observation_space.shape[0], env.single_action_space.shape[0]
    device = torch.device(cfg.device)
    members = len(seeds)
    agent, ensemble = _build(cfg, seeds, obs_dim, act_dim)
    sac_like = cfg.algorithm != "ppo"
    optimizers = ("actor_opt", "critic_opt", "alpha_opt") if sac_like else ("optimizer",)
    reward_opt = MemberAdam(ensemble.parameters(), lr=cfg.reward_lr) if ensemble is not None else None
    meta_opt = reward_opt  # MRN's outer step: the reward model's own Adam, as the released code
    if ensemble is not None and cfg.mrn_outer_optimizer == "separate":
        meta_opt = MemberAdam(ensemble.parameters(), lr=cfg.mrn_outer_lr)
    runs = [_Seed(c, obs_dim, act_dim) for c in configs]
    buffers, rngs = [r.buffer for r in runs], [r.rng for r in runs]
    generators = [r.generator for r in runs]
    schedule = FeedbackSchedule(cfg.learning_starts, cfg.feedback_interval, cfg.feedback_per_round,
                                cfg.feedback_budget, cfg.total_steps)
    teacher = TEACHERS[cfg.teacher]
    start_step = 0

    if outs is not None and resume:
        dirs = [out / "checkpoints" for out in outs]
        _settle_round(dirs)
        present = [(d / CHECKPOINT).is_file() for d in dirs]
        if any(present) and not all(present):
            raise ValueError(f"some seeds have checkpoints and others do not ({dirs}); resume with the same "
                             "seeds per process, or delete the checkpoints")
        if all(present):
            states = [torch.load(d / CHECKPOINT, map_location="cpu", weights_only=False) for d in dirs]
            if len({s["step"] for s in states}) != 1:
                raise ValueError(f"the checkpoints under {dirs} are at different steps; expected one step")
            for state, c, d in zip(states, configs, dirs, strict=True):
                if _without_device(state["config"]) != _without_device(dataclasses.asdict(c)):
                    raise ValueError(f"{d / CHECKPOINT} was written with a different configuration; "
                                     "use another out_dir or resume=False")
            for state, d in zip(states, dirs, strict=True):
                require_layout(state["agent"], agent, d / CHECKPOINT, "networks",
                               "use another out_dir or resume=False")
            agent.load_state_dict(stack_members([s["agent"] for s in states]))
            for name in optimizers:
                getattr(agent, name).load_state_dict(stack_members([s[name] for s in states]))
            agent.updates = np.array([s["updates"] for s in states], np.int64)
            if ensemble is not None:
                ensemble.load_state_dict(stack_members([s["ensemble"] for s in states]))
                reward_opt.load_state_dict(stack_members([s["reward_opt"] for s in states]))  # type: ignore[union-attr]
                meta_opt.load_state_dict(stack_members([s["meta_opt"] for s in states]))  # type: ignore[union-attr]
            for run, state in zip(runs, states, strict=True):
                run.load_state_dict(state["seed"])
            start_step = states[0]["step"]

    window = cfg.surf_window if cfg.algorithm == "surf" else 0
    stored_length = cfg.segment_length + 2 * window

    def candidates(run: _Seed, pool: int, recent: range | None) -> tuple[Segments, Segments]:
        return (run.buffer.sample_segments(pool, stored_length, run.rng, recent),
                run.buffer.sample_segments(pool, stored_length, run.rng, recent))

    def feedback_round(step: int, size: int) -> None:
        methods = ["uniform" if len(r.prefs) == 0 else cfg.query_selection for r in runs]
        pools = [size if m == "uniform" else size * cfg.candidate_multiplier for m in methods]
        # the last query_episodes finished episodes of each seed (``episode`` is the one in progress)
        recents = [range(max(0, r.episode - cfg.query_episodes), r.episode) if cfg.query_episodes > 0
                   else None for r in runs]
        segs = [candidates(r, p, rec) for r, p, rec in zip(runs, pools, recents, strict=True)]
        ranked = [m != "uniform" for m in methods]
        probs = None
        if any(ranked):  # one batched pass over every seed's candidates, padded to the largest pool
            width = max(pools)

            def stack(field: str, k: int) -> torch.Tensor:
                arrays = [getattr(s[k], field) for s in segs]
                out = np.zeros((members, width, *arrays[0].shape[1:]), np.float32)
                for e, a in enumerate(arrays):
                    out[e, :len(a)] = a
                return torch.as_tensor(out, device=device)

            t = [stack(f, k) for k in (0, 1) for f in ("obs", "action")]
            if cfg.algorithm == "ipl":
                n = [stack(f, k) for k in (0, 1) for f in ("next_obs", "terminated")]
                masked = [g if r else None for g, r in zip(generators, ranked, strict=True)]
                probs = critic_preference_probabilities(agent, t[0], t[1], n[0], n[1], t[2], t[3], n[2], n[3],
                                                        masked)
            else:
                probs = preference_probabilities(ensemble, t[0], t[1], t[2], t[3])  # type: ignore[arg-type]
        for e, (run, method, pool, (seg_1, seg_2)) in enumerate(zip(runs, methods, pools, segs, strict=True)):
            if method == "uniform":
                chosen = np.arange(size)
            else:
                chosen = select_queries(method, probs[e, :, :pool], size, run.rng)  # type: ignore[index]
            pick_1 = type(seg_1)(*(x[chosen] for x in seg_1))
            pick_2 = type(seg_2)(*(x[chosen] for x in seg_2))
            length = int(np.mean(run.recent_lengths)) if run.recent_lengths else cfg.segment_length
            scale = teacher_scale(list(run.recent_returns), cfg.segment_length, length)
            judged_1, judged_2 = (x.true_reward[:, window:stored_length - window] for x in (pick_1, pick_2))
            answers = ask_teacher(teacher, judged_1, judged_2, run.rng, scale)  # SURF: the central segments
            keep = answers.keep
            run.given += size
            if keep.any():
                run.prefs.add(type(pick_1)(*(x[keep] for x in pick_1)),
                              type(pick_2)(*(x[keep] for x in pick_2)), answers.label[keep])
            if cfg.algorithm == "surf":
                n_u = size * cfg.surf_unlabelled_ratio
                u_1, u_2 = candidates(run, n_u, recents[e])
                run.unlabelled.add(u_1, u_2, np.full(n_u, np.nan, np.float32))
            row: dict[str, Any] = {"step": step, "kind": "feedback", "feedback": run.given, "queries": size,
                                   "kept": int(keep.sum())}
            true_1, true_2 = judged_1.sum(1), judged_2.sum(1)
            strict = answers.label[keep] != 0.5
            agree = ((true_1 > true_2)[keep] == (answers.label[keep] > 0.5))[strict]
            row["label_accuracy"] = float(agree.mean()) if strict.any() else float("nan")
            run.tables["rounds"].append(row)
        if ensemble is not None and any(len(r.prefs) > 0 for r in runs):
            if cfg.algorithm == "surf":
                results = train_reward_ensemble_surf(
                    ensemble, reward_opt, [r.prefs for r in runs], [r.unlabelled for r in runs],  # type: ignore[arg-type]
                    cfg.reward_batch_size, cfg.surf_reward_epochs, cfg.segment_length, cfg.surf_window,
                    cfg.surf_crop, cfg.surf_tau, cfg.surf_lambda, cfg.surf_batch_ratio, rngs)
            else:
                results = train_reward_ensemble(ensemble, reward_opt, [r.prefs for r in runs],  # type: ignore[arg-type]
                                                cfg.reward_batch_size, cfg.reward_max_epochs,
                                                cfg.reward_acc_stop, rngs)
            relabel_members(buffers, ensemble.relabel_fn)
            for run, result in zip(runs, results, strict=True):
                if result is not None:
                    run.tables["rounds"][-1].update(reward_epochs=result.epochs, reward_loss=result.loss,
                                                    reward_accuracy=result.accuracy)

    def save(step: int) -> None:
        if outs is None:
            return
        for run, out, c in zip(runs, outs, configs, strict=True):
            for name in TABLES:
                write_table(out / f"{name}.parquet", pd.DataFrame(run.tables[name]))
            write_json(out / "config.json", dataclasses.asdict(c))
        if cfg.checkpoint_interval <= 0:
            return
        agent_state = agent.state_dict()
        opt_states = {n: getattr(agent, n).state_dict() for n in optimizers}
        reward_states = None
        if ensemble is not None:
            reward_states = (ensemble.state_dict(), reward_opt.state_dict(), meta_opt.state_dict())  # type: ignore[union-attr]
        for e, (run, out, c) in enumerate(zip(runs, outs, configs, strict=True)):
            state = {"config": dataclasses.asdict(c), "step": step, "agent": member_slice(agent_state, e),
                     **{n: member_slice(s, e) for n, s in opt_states.items()},
                     "updates": int(agent.updates[e]),
                     "seed": run.state_dict()}
            if reward_states is not None:
                state.update(ensemble=member_slice(reward_states[0], e),
                             reward_opt=member_slice(reward_states[1], e),
                             meta_opt=member_slice(reward_states[2], e))
            atomic_write(out / "checkpoints" / NEXT_CHECKPOINT,
                         lambda tmp, state=state: torch.save(to_cpu(state), tmp))
        for out in outs:  # every seed's new checkpoint exists: move them in
            os.replace(out / "checkpoints" / NEXT_CHECKPOINT, out / "checkpoints" / CHECKPOINT)

    def reset(mask: np.ndarray) -> np.ndarray:
        obs, _ = env.reset(seed=[r.seed_of_episode() if m else None for r, m in zip(runs, mask, strict=True)],
                           options={"reset_mask": mask})
        return np.asarray(obs, np.float32)

    obs = reset(np.ones(members, bool))
    bar = tqdm(total=cfg.total_steps, initial=start_step, disable=not progress,
               desc=f"{cfg.algorithm} {cfg.task} x{members}", unit="step", mininterval=2.0)
    learned = cfg.algorithm in ("pebble", "surf", "mrn")
    for step in range(start_step, cfg.total_steps):
        if not sac_like:  # Preference PPO is on-policy: the policy acts from the first step
            raw_action, logp, value = agent.sample(obs, generators)
            action = np.clip(raw_action, -1.0, 1.0).astype(np.float32)
        elif step < cfg.num_seed_steps:
            action = np.stack([r.rng.uniform(-1.0, 1.0, size=act_dim).astype(np.float32) for r in runs])
        else:
            action = agent.act(obs, generators)
        next_obs, true_reward, terminated, truncated, info = env.step(action)
        next_obs = np.asarray(next_obs, np.float32)
        if learned:
            reward = ensemble.relabel_fn(obs[:, None], action[:, None])[:, 0]  # type: ignore[union-attr]
        success = np.asarray(info.get("success", np.zeros(members)), np.float64)
        for e, run in enumerate(runs):
            if not sac_like:
                for key, value_ in (("obs", obs[e]), ("action", raw_action[e]), ("logp", float(logp[e])),
                                    ("value", float(value[e])), ("next_obs", next_obs[e]),
                                    ("terminated", float(terminated[e])),
                                    ("end", bool(terminated[e] or truncated[e]))):
                    run.rollout[key].append(value_)
            # IPL has no reward model and PPO scores its rollouts itself: nothing reads their column
            stored = float(true_reward[e]) if cfg.algorithm == "sac" else float(reward[e]) if learned else 0.0
            run.buffer.add(obs[e], action[e], float(true_reward[e]), next_obs[e], bool(terminated[e]),
                           run.episode, run.ep_length, stored)
            run.ep_return += float(true_reward[e])
            run.ep_success |= bool(success[e] > 0)
            run.ep_length += 1
        obs = next_obs
        ended = np.asarray(terminated, bool) | np.asarray(truncated, bool)
        for e in np.flatnonzero(ended):
            run = runs[e]
            run.tables["episodes"].append({"step": step + 1, "episode": run.episode, "return": run.ep_return,
                                           "success": float(run.ep_success), "length": run.ep_length})
            run.recent_returns.append(run.ep_return)
            run.recent_lengths.append(run.ep_length)
            run.episode += 1
            run.ep_return, run.ep_success, run.ep_length = 0.0, False, 0
        if ended.any():
            bar.set_postfix(ret=f"{runs[int(np.flatnonzero(ended)[0])].tables['episodes'][-1]['return']:.1f}",
                            fb=runs[0].given, refresh=False)
            fresh = reset(ended)
            obs[ended] = fresh[ended]

        global_step = step + 1
        if cfg.algorithm != "sac":
            if global_step == cfg.learning_starts and sac_like:
                agent.reset_critic()  # PEBBLE: forget the values of the entropy reward
            size = schedule.round_size(global_step, runs[0].given)
            if size > 0:
                feedback_round(global_step, size)

        if not sac_like:
            if len(runs[0].rollout["obs"]) == cfg.ppo_rollout_steps:  # every seed's rollout is complete
                metrics, phase = _ppo_step(agent, ensemble, runs, cfg, global_step)  # type: ignore[arg-type]
                for e, run in enumerate(runs):
                    run.set_metrics(metrics, e, phase)
                    for values in run.rollout.values():
                        values.clear()
        elif global_step > cfg.num_seed_steps:
            _update(agent, ensemble, meta_opt, runs, cfg, global_step, device)
        for run in runs:
            if run.metrics and (global_step % cfg.log_interval == 0 or run.phase != run.logged_phase):
                run.tables["updates"].append({"step": global_step, "phase": run.phase, **run.metrics})
                run.logged_phase = run.phase

        if global_step % cfg.eval_interval == 0 or global_step == cfg.total_steps:
            results = evaluate(agent, eval_envs, cfg.eval_episodes, seeds, global_step)
            for run, result in zip(runs, results, strict=True):
                run.tables["evaluations"].append({"step": global_step, "return": result.episode_return,
                                                  "success": result.success, "q_mc_mse": result.q_mc_mse,
                                                  "feedback": run.given})
                if on_evaluation is not None:
                    on_evaluation(global_step, result, agent, run.buffer)
        if cfg.checkpoint_interval > 0 and global_step % cfg.checkpoint_interval == 0:
            save(global_step)
        bar.update(1)
        if stop_at is not None and global_step >= stop_at:
            break
    else:
        save(cfg.total_steps)
    bar.close()
    wall = time.perf_counter() - started
    return [OnlineRun(c, *(pd.DataFrame(run.tables[name]) for name in TABLES), wall)
            for c, run in zip(configs, runs, strict=True)]


def _update(agent: SACAgent, ensemble: RewardEnsemble | None, meta_opt: MemberAdam | None, runs: list[_Seed],
            cfg: OnlineConfig, global_step: int, device: torch.device) -> None:
    """The agent update of one environment step for every seed (see the module docstring)."""
    buffers, rngs = [r.buffer for r in runs], [r.rng for r in runs]
    generators = [r.generator for r in runs]
    batch = sample_members(buffers, cfg.batch_size, rngs, device)
    everyone = range(len(runs))
    if cfg.algorithm != "sac" and global_step < cfg.learning_starts:
        pool = torch.as_tensor(np.stack([b.obs[: b.size] for b in buffers]), device=device)
        intrinsic = state_entropy_reward(batch.obs, pool, cfg.topk, [r.entropy_stats for r in runs])
        metrics = sac_update(agent, batch, generators, reward=intrinsic)
        for e in everyone:
            runs[e].set_metrics(metrics, e, "unsupervised")
    elif cfg.algorithm == "ipl":
        active = np.array([len(r.prefs) > 0 for r in runs])
        if active.any():
            masked = [g if a else None for g, a in zip(generators, active, strict=True)]
            metrics = ipl_update(agent, batch, [r.prefs for r in runs], rngs, masked,
                                 None if active.all() else torch.as_tensor(active))
            for e in np.flatnonzero(active):
                runs[e].set_metrics(metrics, e, "ipl")
    elif cfg.algorithm != "sac" and global_step == cfg.learning_starts:
        for _ in range(cfg.reset_update):  # PEBBLE: the reset critic catches up (B-Pref reset_update)
            metrics = sac_update(agent, sample_members(buffers, cfg.batch_size, rngs, device), generators)
        for e in everyone:
            if cfg.reset_update > 0:
                runs[e].set_metrics(metrics, e, "reset")
            else:
                runs[e].phase = "reset"
    elif (cfg.algorithm == "mrn" and global_step % cfg.mrn_interval == 0
          and runs[0].given < cfg.feedback_budget):
        meta = np.array([len(r.prefs) > 0 for r in runs])
        parts = [(meta, "mrn"), (~meta, "sac")]
        for mask, kind in parts:
            if not mask.any():
                continue
            masked = [g if m else None for g, m in zip(generators, mask, strict=True)]
            active = None if mask.all() else torch.as_tensor(mask)
            if kind == "mrn":
                metrics = mrn_update(agent, ensemble, meta_opt, batch, [r.prefs for r in runs], cfg,  # type: ignore[arg-type]
                                     masked, active)
            else:
                metrics = sac_update(agent, batch, masked, active=active)
            for e in np.flatnonzero(mask):
                runs[e].set_metrics(metrics, e, "sac")
                if kind == "mrn":
                    runs[e].tables["rounds"].append(
                        {"step": global_step, "kind": "meta", "feedback": runs[e].given,
                         **{k: v for k, v in runs[e].metrics.items() if k.startswith("meta_")}})
        relabel_members(buffers, ensemble.relabel_fn)  # type: ignore[union-attr]
    else:
        metrics = sac_update(agent, batch, generators)
        for e in everyone:
            runs[e].set_metrics(metrics, e, "sac")
