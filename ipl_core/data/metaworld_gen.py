"""MetaWorld offline and preference datasets, made as in IPL Appendix B.3 (data-scaling experiments).

For one task, four sources of ``episodes_per_source`` episodes each (100 in the paper, 500 steps):

* ``expert``: the task's scripted policy with Gaussian action noise (std ``noise_std``, 1.0 in the paper);
* ``wrong_goal``: the same policy aimed at a different randomization of the task. The scripted policies
  read the object position from ``obs[4:7]`` and the goal from ``obs[-3:]``; we reset a second copy of the
  task with its own seed, and feed the policy observations whose goal is that copy's goal and whose object
  positions (current and previous frame) are shifted by the offset between that copy's objects and the real
  ones, with the same noise;
* ``other_task``: the scripted policy of another MetaWorld task (drawn per episode), with the same noise;
* ``random``: actions uniform in [-1, 1].

Episodes never terminate (MetaWorld has no terminal states); the last step of each is a time-out. The
offline dataset is written in D4RL's HDF5 layout, then preference datasets of ``query_counts`` queries of
``segment_length`` steps are drawn uniformly and labelled by ground-truth return (the oracle teacher). Every
file carries a manifest and is re-used when it matches (:mod:`ipl_core.data.store`). Taught in the appendix
"Datasets and how they are made" (book/appendix/datasets.ipynb).

:func:`regret_preferences` makes CPL's labels on the same offline data instead: dense comparisons labelled by
a regret teacher on advantages estimated with the value network of oracle IQL (CPL's MetaWorld experiments
estimate them with another critic).
"""

from __future__ import annotations

import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ipl_core.data.d4rl import load_d4rl_hdf5, write_d4rl_hdf5
from ipl_core.data.datasets import OfflineDataset
from ipl_core.data.native import save_preferences
from ipl_core.data.segments import make_preference_dataset, make_regret_preference_dataset
from ipl_core.data.store import cached, data_root, sha256_file
from ipl_core.teachers import TEACHERS

METAWORLD_TASKS = ("button-press", "drawer-open", "sweep-into", "plate-slide", "assembly")
"""The five tasks of IPL's data-scaling study (IPL Table 3)."""

SOURCES = ("expert", "wrong_goal", "other_task", "random")
"""The four behaviour sources of IPL Appendix B.3, from best to worst."""

GOAL = slice(36, 39)
OBJECTS = (slice(4, 7), slice(11, 14), slice(22, 25), slice(29, 32))
"""Object positions in MetaWorld's 39-d observation: two objects, current frame then previous frame."""


@dataclass(frozen=True)
class MetaWorldRecipe:
    """The parameters of one task's datasets; the defaults are IPL Appendix B.3's."""

    task: str = "button-press"
    """MetaWorld task name without the ``-v3`` suffix."""
    episodes_per_source: int = 100
    """Episodes of each of the four sources."""
    episode_length: int = 500
    """Steps per episode (MetaWorld's limit is 500)."""
    noise_std: float = 1.0
    """Std of the Gaussian noise added to the scripted policies' actions."""
    query_counts: tuple[int, ...] = (500, 1000, 2000, 4000)
    """Sizes of the preference datasets."""
    segment_length: int = 25
    """Steps per segment."""
    seed: int = 0
    """Seed of everything random: goals, noise, other-task choice, segment draws."""

    def __post_init__(self) -> None:
        if not 1 <= self.episode_length <= 500:
            raise ValueError(f"episode_length must lie in [1, 500], got {self.episode_length}")
        if self.episodes_per_source < 1 or self.noise_std < 0 or self.segment_length < 1:
            raise ValueError(f"invalid {self}: expected episodes >= 1, noise_std >= 0, segment_length >= 1")

    def tag(self) -> str:
        """Folder name that tells recipes apart, e.g. ``e100_l500_n1.0_s0``."""
        return f"e{self.episodes_per_source}_l{self.episode_length}_n{self.noise_std}_s{self.seed}"


def make_metaworld_env(task: str, seed: int) -> Any:
    """A goal-observable single-task MetaWorld 3 env with a fresh, reproducible goal at every reset."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE

    name = f"{task}-v3-goal-observable"
    if name not in ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE:
        raise KeyError(f"unknown MetaWorld task {task!r}; expected a v3 task such as {METAWORLD_TASKS}")
    env = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE[name](seed=seed)
    env._freeze_rand_vec = False  # otherwise every reset keeps the first goal
    env.seeded_rand_vec = True  # goals come from the env's seeded generator, not numpy's global one
    env.seed(seed)
    return env


def scripted_policy(task: str) -> Any:
    """MetaWorld's scripted expert of ``task``."""
    from metaworld.policies import ENV_POLICY_MAP

    return ENV_POLICY_MAP[f"{task}-v3"]()


def other_tasks(task: str) -> list[str]:
    """Every MetaWorld v3 task with a scripted policy, except ``task``."""
    from metaworld.policies import ENV_POLICY_MAP

    return sorted(name.removesuffix("-v3") for name in ENV_POLICY_MAP if name != f"{task}-v3")


def rollout(env: Any, act: Callable[[np.ndarray], np.ndarray], length: int, obs: np.ndarray,
            record: Callable[[Any], None] | None = None) -> dict:
    """Run one episode of ``length`` steps from ``obs``; arrays of s, a, r, s' and per-step success.

    ``record(env)``, if given, is called before each step (the renderer keeps MuJoCo's state there).
    """
    observations, actions, rewards, successes = [obs], [], [], []
    for _ in range(length):
        if record is not None:
            record(env)
        action = np.clip(act(obs), -1.0, 1.0).astype(np.float32)
        obs, reward, _terminated, truncated, info = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        successes.append(float(info.get("success", 0.0)))
        if truncated:
            break
    states = np.asarray(observations, dtype=np.float32)
    return {"obs": states[:-1], "next": states[1:], "action": np.asarray(actions),
            "reward": np.asarray(rewards, dtype=np.float32),
            "success": np.asarray(successes, dtype=np.float32)}


def collect_source(
    recipe: MetaWorldRecipe, source: str, progress: bool = True, record: Callable[[Any], None] | None = None
) -> tuple[OfflineDataset, dict]:
    """The ``episodes_per_source`` episodes of one source, and per-step extras (``success``, ``episode``).

    ``record`` is passed to :func:`rollout`; the episodes are the same with or without it.
    """
    if source not in SOURCES:
        raise KeyError(f"unknown source {source!r}; expected one of {SOURCES}")
    rng = np.random.default_rng([recipe.seed, SOURCES.index(source), zlib.crc32(recipe.task.encode())])
    env = make_metaworld_env(recipe.task, int(rng.integers(2**31)))
    decoy = make_metaworld_env(recipe.task, int(rng.integers(2**31))) if source == "wrong_goal" else None
    noise = recipe.noise_std
    episodes = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Constant.*")  # scripted policies warn on every step
        label = f"{recipe.task}:{source}"
        for _ in tqdm(range(recipe.episodes_per_source), desc=label, disable=not progress):
            obs, _ = env.reset()
            if source == "random":
                def act(o: np.ndarray) -> np.ndarray:
                    return rng.uniform(-1.0, 1.0, size=4)
            else:
                name = recipe.task if source != "other_task" else str(rng.choice(other_tasks(recipe.task)))
                policy = scripted_policy(name)
                view = _wrong_goal_view(obs, decoy.reset()[0]) if decoy is not None else (lambda o: o)

                def act(o: np.ndarray, policy: Any = policy, view: Callable = view) -> np.ndarray:
                    return policy.get_action(view(o)) + rng.normal(0.0, noise, size=4)
            episodes.append(rollout(env, act, recipe.episode_length, obs, record))
    offline = _stack(episodes, f"metaworld:{recipe.task}:{source}")
    extras = {"success": np.concatenate([e["success"] for e in episodes]),
              "episode": np.concatenate([np.full(len(e["reward"]), i) for i, e in enumerate(episodes)])}
    return offline, extras


def _wrong_goal_view(first: np.ndarray, decoy_first: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """What the wrong-goal expert sees: the decoy's goal, objects shifted to where the decoy put them."""
    offsets = [(part, decoy_first[part] - first[part]) for part in OBJECTS]

    def view(obs: np.ndarray) -> np.ndarray:
        seen = obs.copy()
        seen[GOAL] = decoy_first[GOAL]
        for part, shift in offsets:
            seen[part] = obs[part] + shift
        return seen

    return view


def _stack(episodes: list[dict], source: str) -> OfflineDataset:
    timeouts = []
    for episode in episodes:
        flag = np.zeros(len(episode["reward"]), dtype=bool)
        flag[-1] = True
        timeouts.append(flag)
    return OfflineDataset(
        observations=np.concatenate([e["obs"] for e in episodes]),
        actions=np.concatenate([e["action"] for e in episodes]),
        next_observations=np.concatenate([e["next"] for e in episodes]),
        rewards=np.concatenate([e["reward"] for e in episodes]),
        terminals=np.zeros(sum(len(e["reward"]) for e in episodes), dtype=bool),
        timeouts=np.concatenate(timeouts),
        source=source,
    )


@dataclass(frozen=True)
class MetaWorldData:
    """Paths of one task's generated files, and which were re-used from an earlier run."""

    offline: Path
    sources: dict[str, Path]
    preferences: dict[int, Path]
    reused: dict[str, bool]
    seconds: float


def generate_metaworld(recipe: MetaWorldRecipe, root: str | Path | None = None,
                       progress: bool = True) -> MetaWorldData:
    """Make (or re-use) one task's source files, merged offline file and preference files.

    Layout: ``<root>/metaworld/<task>/<recipe.tag()>/{sources/<source>.hdf5, offline.hdf5,
    prefs_q<n>_s<S>.npz}``, each with a manifest. Sources are cached one by one, so an interrupted run
    resumes at the first missing source.
    """
    start = time.perf_counter()
    folder = Path(root if root is not None else data_root()) / "metaworld" / recipe.task / recipe.tag()
    base = {"task": recipe.task, "episodes_per_source": recipe.episodes_per_source,
            "episode_length": recipe.episode_length, "noise_std": recipe.noise_std}
    reused: dict[str, bool] = {}
    sources = {}
    for source in SOURCES:
        def build(tmp: Path, source: str = source) -> None:
            offline, extras = collect_source(recipe, source, progress)
            write_d4rl_hdf5(tmp, offline, attrs={"source": source, "task": recipe.task},
                            extras={f"infos/{k}": v for k, v in extras.items()})
        path, reused[source] = cached(folder / "sources" / f"{source}.hdf5", f"metaworld/{source}",
                                      base | {"source": source}, recipe.seed, build)
        sources[source] = path

    def merge(tmp: Path) -> None:
        parts = [load_d4rl_hdf5(sources[s]) for s in SOURCES]
        merged = OfflineDataset(*(np.concatenate([getattr(p, key) for p in parts]) for key in (
            "observations", "actions", "next_observations", "rewards", "terminals", "timeouts")),
            source=f"metaworld:{recipe.task}")
        source_id = np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)])
        write_d4rl_hdf5(tmp, merged, attrs={"task": recipe.task, "sources": ",".join(SOURCES)},
                        extras={"infos/source_id": source_id})

    source_hashes = {s: sha256_file(p) for s, p in sources.items()}
    offline_path, reused["offline"] = cached(folder / "offline.hdf5", "metaworld/offline",
                                             base | {"sources": source_hashes}, recipe.seed, merge)
    offline = None
    preferences = {}
    for count in recipe.query_counts:
        params = {"num_queries": count, "segment_length": recipe.segment_length, "teacher": "oracle",
                  "offline_sha256": sha256_file(offline_path)}

        def build_prefs(tmp: Path, count: int = count) -> None:
            nonlocal offline
            offline = offline if offline is not None else load_d4rl_hdf5(offline_path)
            rng = np.random.default_rng([recipe.seed, 7, count])
            prefs = make_preference_dataset(offline, count, recipe.segment_length, TEACHERS["oracle"], rng)
            save_preferences(tmp, prefs)

        name = f"prefs_q{count}_s{recipe.segment_length}.npz"
        preferences[count], reused[name] = cached(folder / name, "metaworld/preferences", params, recipe.seed,
                                                  build_prefs)
    return MetaWorldData(offline_path, sources, preferences, reused, time.perf_counter() - start)


def regret_preferences(recipe: MetaWorldRecipe, num_segments: int, per_segment: int, value_steps: int,
                       root: str | Path | None = None, progress: bool = True) -> Path:
    """Make (or re-use) CPL-style labels for the recipe's offline data: ``num_segments`` segments of
    ``recipe.segment_length`` steps, each compared with ``per_segment`` others, labelled by the regret
    teacher (:func:`~ipl_core.data.segments.make_regret_preference_dataset`).

    The optimal advantage is estimated as A = r + gamma V(s') - V(s) with V the value network of oracle
    IQL (ground-truth rewards, the metaworld preset, ``value_steps`` updates, seed ``recipe.seed``) on the
    whole offline dataset: an in-sample estimate of V* (IQL's expectile value). CPL labels its MetaWorld
    segments with the critic of a SAC agent trained online on the reward (A = Q - V); this
    book has no online SAC run for these tasks, so the offline oracle stands in. Written to
    ``<folder>/regret_n<segments>_k<per segment>_s<length>_v<value steps>.npz`` beside the recipe's files."""
    if value_steps < 1:
        raise ValueError(f"value_steps must be at least 1, got {value_steps}")
    data = generate_metaworld(replace(recipe, query_counts=()), root, progress)
    params = {"num_segments": num_segments, "per_segment": per_segment, "value_steps": value_steps,
              "segment_length": recipe.segment_length, "teacher": "regret",
              "offline_sha256": sha256_file(data.offline)}

    def build(tmp: Path) -> None:
        import torch

        from ipl_core.config import preset
        from ipl_core.trainer import train

        offline = load_d4rl_hdf5(data.offline)
        cfg = preset("metaworld", method="iql", steps=value_steps, eval_every=0, checkpoint_every=0,
                     log_every=value_steps, seed=recipe.seed)
        agent = train(cfg, offline, None, progress=progress).agent

        def value(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return agent.value(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()

        rng = np.random.default_rng([recipe.seed, 11, num_segments, per_segment])
        save_preferences(tmp, make_regret_preference_dataset(offline, num_segments, per_segment,
                                                             recipe.segment_length, value, cfg.discount, rng))

    name = f"regret_n{num_segments}_k{per_segment}_s{recipe.segment_length}_v{value_steps}.npz"
    path, _ = cached(data.offline.parent / name, "metaworld/regret-preferences", params, recipe.seed, build)
    return path


def recipe_params(recipe: MetaWorldRecipe) -> dict[str, Any]:
    """The recipe as a JSON-friendly dict (for manifests and the book)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(recipe).items()}


def measure_sources(recipe: MetaWorldRecipe) -> list[dict[str, Any]]:
    """Time the collection of each source for ``recipe`` (no files written); one row per source.

    Rows: task, source, episodes, steps, seconds, mean episode return, and the share of episodes that
    reach ``info["success"]`` at some step. The appendix extrapolates full-size generation times from these.
    """
    rows = []
    for source in SOURCES:
        start = time.perf_counter()
        offline, extras = collect_source(recipe, source, progress=False)
        seconds = time.perf_counter() - start
        episode = extras["episode"]
        returns = np.bincount(episode, weights=offline.rewards)
        success = np.bincount(episode, weights=extras["success"]) > 0
        rows.append({"task": recipe.task, "source": source, "episodes": recipe.episodes_per_source,
                     "steps": len(offline), "seconds": seconds, "mean_return": float(returns.mean()),
                     "success_rate": float(success.mean())})
    return rows


DATASET_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"tasks": ("button-press",),
              "recipe": {"episodes_per_source": 2, "episode_length": 50, "query_counts": (20, 40)}},
    "cpu": {"tasks": METAWORLD_TASKS,
            "recipe": {"episodes_per_source": 20, "episode_length": 500, "query_counts": (500, 1000)}},
    "full": {"tasks": METAWORLD_TASKS, "recipe": {}},
}
"""MetaWorld dataset sizes per profile: ``smoke`` makes tiny files in seconds, ``full`` is IPL App. B.3."""


def metaworld_recipe(task: str, profile: str, seed: int = 0) -> MetaWorldRecipe:
    """The recipe of ``task`` at ``profile`` (see :data:`DATASET_PROFILES`)."""
    if profile not in DATASET_PROFILES:
        raise KeyError(f"unknown profile {profile!r}; expected one of {sorted(DATASET_PROFILES)}")
    return MetaWorldRecipe(task=task, seed=seed, **DATASET_PROFILES[profile]["recipe"])
