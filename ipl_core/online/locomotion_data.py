"""D4RL-style locomotion datasets made with this book's SAC: medium-replay, medium, expert, medium-expert.

D4RL's recipe (Fu et al. 2020): train SAC; *full-replay* is its whole replay buffer; the *expert* policy is
the one at the end of training; the *medium* policy is the first snapshot whose return reaches about a
third of the expert's (on D4RL's normalised scale, from a random policy's return to the expert's);
*medium-replay* is the replay buffer up to that snapshot; *medium* and *expert* hold ``collect_steps``
steps of those policies (stochastic actions); *medium-expert* concatenates the two. Training runs through
:func:`ipl_core.online.train.train_online` (tqdm, logged tables, checkpoints and resume); a policy
snapshot is written at every evaluation, as soon as it is taken, so an interrupted run keeps them. Files
are written in D4RL's HDF5 layout by :func:`ipl_core.data.d4rl.write_d4rl_hdf5`. Taught in the appendix
"Datasets and how they are made".
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from ipl_core.data.d4rl import load_d4rl_hdf5, write_d4rl_hdf5
from ipl_core.data.datasets import OfflineDataset
from ipl_core.data.segments import episode_returns
from ipl_core.data.store import cached, file_lock, read_manifest, write_manifest
from ipl_core.io import RESULTS_DIR, RunInfo, atomic_write, save_study, write_json
from ipl_core.nets import require_layout
from ipl_core.online.config import OnlineConfig
from ipl_core.online.envs import make_env
from ipl_core.online.replay import ReplayBuffer
from ipl_core.online.sac import Evaluation, TanhGaussianActor
from ipl_core.online.train import to_cpu, train_online
from ipl_core.seeding import env_seed, torch_generator

DATASETS = ("full-replay", "medium-replay", "medium", "expert", "medium-expert")
GENERATOR = "ipl_core.online.locomotion_data"


@dataclass(frozen=True)
class LocomotionRecipe:
    """How one task's datasets are made."""

    task: str = "gym:Hopper-v5"
    """Environment (any :func:`~ipl_core.online.envs.make_env` name)."""
    medium_fraction: float = 1 / 3
    """The medium policy is the first snapshot whose normalised return, (R - random) / (expert - random),
    reaches this (D4RL: about a third of the expert)."""
    train_steps: int = 1_000_000
    """SAC training steps for the expert."""
    collect_steps: int = 1_000_000
    """Steps of the medium and of the expert dataset each."""
    seed: int = 0
    """Seed of training and collection."""
    hidden_dim: int = 256
    """Width of SAC's networks (the usual MuJoCo SAC setting)."""
    batch_size: int = 256
    """SAC minibatch size."""
    lr: float = 3e-4
    """Learning rate of actor, critic and temperature."""
    num_seed_steps: int = 10_000
    """Random steps before SAC updates."""
    eval_interval: int = 10_000
    """Steps between evaluations, each of which keeps a policy snapshot (a medium candidate)."""
    eval_episodes: int = 5
    """Episodes per evaluation."""
    checkpoint_interval: int = 50_000
    """Steps between training checkpoints (0: never)."""
    init_temperature: float = 0.1
    """SAC's initial temperature (pytorch_sac / B-Pref default; 1.0 kept Hopper near 300 for 100k steps)."""

    def sac_config(self, device: str = "cpu") -> OnlineConfig:
        """SAC's configuration for this recipe, training on ``device``."""
        return OnlineConfig(
            algorithm="sac", task=self.task, seed=self.seed, total_steps=self.train_steps, device=device,
            hidden_dim=self.hidden_dim, hidden_depth=2, batch_size=self.batch_size, actor_lr=self.lr,
            critic_lr=self.lr, alpha_lr=self.lr, init_temperature=self.init_temperature,
            target_update_interval=1, replay_capacity=self.train_steps, num_seed_steps=self.num_seed_steps,
            eval_interval=self.eval_interval, eval_episodes=self.eval_episodes,
            checkpoint_interval=self.checkpoint_interval)


RECIPES: dict[str, LocomotionRecipe] = {
    "hopper": LocomotionRecipe(task="gym:Hopper-v5"),
    "walker2d": LocomotionRecipe(task="gym:Walker2d-v5"),
}
"""Hopper-v5 and Walker2d-v5 with D4RL's settings (1M SAC steps, 1M collected steps per policy)."""

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"train_steps": 1_500, "collect_steps": 1_000, "hidden_dim": 32, "batch_size": 32,
              "num_seed_steps": 500, "eval_interval": 500, "eval_episodes": 1, "checkpoint_interval": 0,
              "medium_fraction": 0.0},
    "cpu": {"train_steps": 100_000, "collect_steps": 100_000, "eval_interval": 10_000},
    "full": {},
}
"""Overrides of :data:`RECIPES` per profile. ``smoke`` takes seconds (its datasets test the pipeline, not
the learning, so its medium policy is simply the first snapshot); ``cpu`` is what one core does in about
an hour (2026-11-29, both tasks at once on 2 cores: 62 and 58 minutes of SAC, 3 minutes of collection
each); ``full`` is D4RL's 1M training and 1M collected steps."""


def recipe_for(name: str, profile: str, seed: int = 0) -> LocomotionRecipe:
    """The recipe of task ``name`` (a key of :data:`RECIPES`) at ``profile`` (a key of :data:`PROFILES`)."""
    if name not in RECIPES:
        raise KeyError(f"unknown locomotion recipe {name!r}; expected one of {sorted(RECIPES)}")
    if profile not in PROFILES:
        raise KeyError(f"unknown locomotion profile {profile!r}; expected one of {sorted(PROFILES)}")
    return dataclasses.replace(RECIPES[name], seed=seed, **PROFILES[profile])


def replay_dataset(buffer: ReplayBuffer, source: str) -> OfflineDataset:
    """The buffer's transitions in the order they happened; the last step of each episode (and of the
    buffer) that is not terminal is marked as a timeout."""
    n = buffer.size
    order = (np.arange(n) + buffer.position) % buffer.capacity if n == buffer.capacity else np.arange(n)
    episode = buffer.episode[order]
    terminals = buffer.terminated[order] > 0
    ends = np.append(episode[1:] != episode[:-1], True)
    return OfflineDataset(buffer.obs[order].copy(), buffer.action[order].copy(),
                          buffer.next_obs[order].copy(), buffer.true_reward[order].copy(), terminals,
                          ends & ~terminals, source)


def first_steps(data: OfflineDataset, n: int, source: str) -> OfflineDataset:
    """The first ``n`` rows of chronological data; the last one, unless terminal, becomes a timeout."""
    if not 0 < n <= len(data):
        raise ValueError(f"{data.source}: cannot take the first {n} of {len(data)} rows")
    timeouts = data.timeouts[:n].copy()
    timeouts[-1] = not data.terminals[n - 1]
    return OfflineDataset(data.observations[:n], data.actions[:n], data.next_observations[:n],
                          data.rewards[:n], data.terminals[:n], timeouts, source)


def random_policy_return(task: str, episodes: int, seed: int) -> float:
    """Mean return of uniformly random actions (D4RL's "random" reference); the actions and the reset of
    episode i come from the recipe seed's ``random_reference`` streams."""
    env = make_env(task, env_seed(seed, "random_reference"))
    env.action_space.seed(env_seed(seed, "random_reference", 0))
    total = 0.0
    for i in range(episodes):
        env.reset(seed=env_seed(seed, "random_reference", 1, i))
        done = False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
    return total / episodes


def pick_medium(snapshots: pd.DataFrame, random_return: float, fraction: float) -> pd.Series:
    """The first snapshot (rows ``step``, ``return``, in step order, the expert last) whose normalised return
    (R - random) / (expert - random) reaches ``fraction``; with ``fraction`` <= 0, the first snapshot.
    Raises ValueError if the expert is no better than the random policy."""
    if fraction <= 0:
        return snapshots.iloc[0]
    expert = float(snapshots["return"].iloc[-1])
    if expert <= random_return:
        raise ValueError(f"the expert's evaluation return {expert:.1f} is not above the random policy's "
                         f"{random_return:.1f}: train longer")
    normalised = (snapshots["return"] - random_return) / (expert - random_return)
    return snapshots[normalised >= fraction].iloc[0]


def collect(actor: TanhGaussianActor, task: str, steps: int, seed: int, policy: int, source: str,
            progress: bool = False) -> OfflineDataset:
    """``steps`` transitions of ``actor`` (on any device) with sampled actions; its actions and the reset of
    its episode i come from the recipe seed's ``collection`` streams of policy number ``policy``."""
    device = next(actor.parameters()).device
    env = make_env(task, env_seed(seed, "collection", policy))
    generator = torch_generator(seed, "collection", policy)
    rows: dict[str, list] = {k: [] for k in ("obs", "act", "next", "rew", "term", "timeout")}
    episode = 0
    obs, _ = env.reset(seed=env_seed(seed, "collection", policy, episode))
    for t in tqdm(range(steps), disable=not progress, desc=f"collect {source}", mininterval=2.0):
        with torch.no_grad():
            x = torch.as_tensor(obs, device=device)[None, None]  # one member, one state
            action = actor.sample(x, [generator])[0][0, 0].cpu().numpy()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(rows, (obs, action, next_obs, reward, terminated,
                                     (truncated or t == steps - 1) and not terminated), strict=True):
            rows[key].append(value)
        obs = next_obs
        if terminated or truncated:
            episode += 1
            obs, _ = env.reset(seed=env_seed(seed, "collection", policy, episode))
    return OfflineDataset(np.asarray(rows["obs"], np.float32), np.asarray(rows["act"], np.float32),
                          np.asarray(rows["next"], np.float32), np.asarray(rows["rew"], np.float32),
                          np.asarray(rows["term"], bool), np.asarray(rows["timeout"], bool), source)


def _actor(recipe: LocomotionRecipe, obs_dim: int, act_dim: int, snapshot: dict, device: str
           ) -> TanhGaussianActor:
    """The policy of a snapshot (``actor``: its weights, ``file``: where it was read); a snapshot whose
    weights are named otherwise (made by another version of the actor) stops with an error naming it."""
    actor = TanhGaussianActor(obs_dim, act_dim, recipe.hidden_dim, 2)
    require_layout(snapshot["actor"], actor, snapshot["file"], "an actor",
                   f"delete {Path(snapshot['file']).parents[1]} to make its datasets again")
    actor.load_state_dict(snapshot["actor"])
    return actor.to(device)


def generate_locomotion(recipe: LocomotionRecipe, out_dir: str | Path, progress: bool = True,
                        device: str = "cpu") -> dict[str, Path]:
    """Train, snapshot, collect and write the four datasets under ``out_dir`` (resumable); returns paths.

    Each file gets a manifest (:mod:`ipl_core.data.store`: recipe, sha256, packages, machine);
    ``summary.json`` records every snapshot's return, the random policy's, the chosen policies, the sizes
    and episode returns. Raises ValueError if ``out_dir`` was made with another recipe. Holds the lock
    ``out_dir/generation.lock`` throughout, so parallel cells that need the datasets make them once.
    SAC trains and the policies collect on ``device`` (checked before any work); snapshots and checkpoints
    hold CPU tensors, so a generation started on one device can finish on another.
    """
    cfg = recipe.sac_config(device)  # a bad device stops here, before any file is written
    out = Path(out_dir)
    with file_lock(out / "generation.lock"):
        return _generate_locomotion(recipe, cfg, out, progress)


def _generate_locomotion(recipe: LocomotionRecipe, cfg: OnlineConfig, out: Path, progress: bool
                         ) -> dict[str, Path]:
    wanted = dataclasses.asdict(recipe)
    recipe_file = out / "recipe.json"
    if recipe_file.is_file():
        made = json.loads(recipe_file.read_text())
        changed = [f"{k}: {made.get(k)!r} there, {v!r} asked" for k, v in wanted.items() if made.get(k) != v]
        if changed:
            raise ValueError(f"{out} was made with another recipe ({'; '.join(changed)}); use another "
                             "folder or delete it")
    else:
        write_json(recipe_file, wanted)
    attrs = {"recipe": json.dumps(wanted), "made_by": GENERATOR}
    snapshot_dir, full_file = out / "snapshots", out / "full-replay.hdf5"

    def on_evaluation(step: int, result: Evaluation, agent: Any, buffer: ReplayBuffer) -> None:
        state = {"actor": to_cpu(agent.actor.state_dict()), "step": step, "return": result.episode_return}
        atomic_write(snapshot_dir / f"actor_{step:09d}.pt", lambda tmp: torch.save(state, tmp))
        if step == cfg.total_steps:
            data = replay_dataset(buffer, f"{recipe.task} full-replay (SAC, {step} steps)")
            write_d4rl_hdf5(full_file, data, attrs=attrs)
            write_manifest(full_file, GENERATOR, wanted, recipe.seed, None)

    timings_file = out / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else {}
    if not full_file.is_file():
        start = time.perf_counter()
        train_online(cfg, out_dir=out / "sac", progress=progress, on_evaluation=on_evaluation)
        timings["train_seconds"] = timings.get("train_seconds", 0.0) + time.perf_counter() - start
        write_json(timings_file, timings)
    states = [torch.load(f, map_location="cpu", weights_only=False) | {"file": f}
              for f in sorted(snapshot_dir.glob("actor_*.pt"))]
    snapshots = pd.DataFrame({"step": [s["step"] for s in states], "return": [s["return"] for s in states]})
    random_return = random_policy_return(recipe.task, max(recipe.eval_episodes, 10), recipe.seed)
    medium = pick_medium(snapshots, random_return, recipe.medium_fraction)
    chosen = {"medium": states[int(medium.name)], "expert": states[-1]}
    summary: dict[str, Any] = {"random_return": random_return, "snapshots": snapshots.to_dict("list")}
    full = load_d4rl_hdf5(full_file)
    paths = {"full-replay": full_file}
    paths["medium-replay"], _ = cached(
        out / "medium-replay.hdf5", GENERATOR, {**wanted, "policy_step": int(medium.step)}, recipe.seed,
        lambda tmp: write_d4rl_hdf5(tmp, first_steps(full, int(medium.step), f"{recipe.task} medium-replay"),
                                    attrs={**attrs, "medium_step": str(int(medium.step))}))
    env = make_env(recipe.task, recipe.seed)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    for policy, (name, snapshot) in enumerate(chosen.items()):
        summary[f"{name}_policy"] = {"step": snapshot["step"], "eval_return": snapshot["return"]}
        actor = _actor(recipe, obs_dim, act_dim, snapshot, cfg.device)

        def build(tmp: Path, actor: TanhGaussianActor = actor, name: str = name, policy: int = policy,
                  step: int = snapshot["step"]) -> None:
            data = collect(actor, recipe.task, recipe.collect_steps, recipe.seed, policy,
                           f"{recipe.task} {name}", progress)
            write_d4rl_hdf5(tmp, data, attrs={**attrs, "policy_step": str(step)})

        start = time.perf_counter()
        paths[name], reused = cached(out / f"{name}.hdf5", GENERATOR,
                                     {**wanted, "policy_step": snapshot["step"]}, recipe.seed, build)
        if not reused:
            timings[f"collect_{name}_seconds"] = time.perf_counter() - start
            write_json(timings_file, timings)
    medium_data, expert_data = load_d4rl_hdf5(paths["medium"]), load_d4rl_hdf5(paths["expert"])
    mixed = OfflineDataset(*(np.concatenate([getattr(medium_data, k), getattr(expert_data, k)]) for k in
                             ("observations", "actions", "next_observations", "rewards", "terminals",
                              "timeouts")), source=f"{recipe.task} medium-expert")
    paths["medium-expert"], _ = cached(out / "medium-expert.hdf5", GENERATOR,
                                       {**wanted, "policy_steps": [int(medium.step), states[-1]["step"]]},
                                       recipe.seed, lambda tmp: write_d4rl_hdf5(tmp, mixed, attrs=attrs))
    sizes, returns = {}, {}
    for name, path in paths.items():
        data = load_d4rl_hdf5(path)
        episode_return, _ = episode_returns(data)
        sizes[name] = len(data)
        returns[name] = {"episodes": len(episode_return), "mean": float(episode_return.mean()),
                         "min": float(episode_return.min()), "max": float(episode_return.max())}
    write_json(out / "summary.json", {**summary, "recipe": wanted, "sizes": sizes, "episode_returns": returns,
                                      "sha256": {k: read_manifest(p)["sha256"] for k, p in paths.items()},
                                      "timings": timings})
    return paths


def save_locomotion_results(folders: dict[str, Path], profile: str, results_root: Path = RESULTS_DIR) -> Path:
    """Commit-sized results of finished recipes (``{task name: out_dir}``) as the study
    ``locomotion-datasets``: the SAC evaluation curves and each dataset's size and episode returns."""
    curves, rows, seconds, recipes = [], [], 0.0, []
    for name, folder in folders.items():
        summary_file = Path(folder) / "summary.json"
        if not summary_file.is_file():
            raise FileNotFoundError(f"{summary_file} is missing: run generate_locomotion for {name!r} first")
        summary = json.loads(summary_file.read_text())
        recipes.append(summary["recipe"])
        curve = pd.read_parquet(Path(folder) / "sac" / "evaluations.parquet")[["step", "return"]]
        curves.append(curve.assign(task=name, random_return=summary["random_return"]))
        policy = {"full-replay": summary["expert_policy"], "medium-replay": summary["medium_policy"],
                  "medium": summary["medium_policy"], "expert": summary["expert_policy"],
                  "medium-expert": summary["expert_policy"]}
        for dataset, stats in summary["episode_returns"].items():
            rows.append({"task": name, "dataset": dataset, "transitions": summary["sizes"][dataset],
                         "episodes": stats["episodes"], "mean_return": stats["mean"],
                         "min_return": stats["min"], "max_return": stats["max"],
                         "policy_step": policy[dataset]["step"],
                         "policy_eval_return": policy[dataset]["eval_return"]})
        seconds += sum(summary.get("timings", {}).values())
    info = RunInfo(study="locomotion-datasets", profile=profile,
                   seeds=tuple(sorted({r["seed"] for r in recipes})),
                   steps=max(r["train_steps"] for r in recipes), wall_time_s=round(seconds, 1))
    return save_study("locomotion-datasets", profile,
                      {"evaluations": pd.concat(curves, ignore_index=True), "datasets": pd.DataFrame(rows)},
                      info, root=results_root)


def main(argv: list[str] | None = None) -> int:
    """``python -m ipl_core.online.locomotion_data hopper --profile cpu --out data/locomotion/cpu/hopper``"""
    import argparse

    parser = argparse.ArgumentParser(description="Make D4RL-style locomotion datasets with SAC.")
    parser.add_argument("recipe", choices=sorted(RECIPES))
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--out", type=Path, required=True, help="output folder (resumable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest on 2 shared cores)")
    parser.add_argument("--device", default="cpu", help="torch device of SAC: cpu, cuda or cuda:N")
    parser.add_argument("--save-results", action="store_true",
                        help="also write results/locomotion-datasets/<profile>/ from every recipe finished "
                             "under the parent of --out")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    recipe = recipe_for(args.recipe, args.profile, args.seed)
    paths = generate_locomotion(recipe, args.out, device=args.device)
    for name, path in paths.items():
        print(f"{name}: {path}")
    if args.save_results:
        done = {n: args.out.parent / n for n in RECIPES if (args.out.parent / n / "summary.json").is_file()}
        print(f"results: {save_locomotion_results(done, args.profile)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
